"""E-mail authorization over the API (as Quay), end to end with a real SMTP server (aiosmtpd): the
mailed link confirms the address, which an e-mail notification then accepts; expired, used and
unknown codes; SMTP failures store nothing; who may ask."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from notifier.db import transaction
from notifier.email_auth import authorize
from notifier.mailer import Mailer
from notifier.models import AuthorizedEmail, utcnow
from tests.api_support import api_settings, make_api
from tests.conftest import REDIS_SERVER, create_database, drop_database
from tests.smtp import SmtpServer, free_port

ADDRESS = "dev@example.com"
LINK = re.compile(r"https://registry\.example\.com(/authrepoemail\?code=[A-Za-z0-9_-]+)")
NOT_AUTHORIZED = ("The specified e-mail address is not authorized to receive notifications for "
                  "this repository")
ALLOWED = [("owner", "alice/app"), ("org_admin", "acme/web"), ("team_admin", "acme/web")]
REFUSED = [("reader", "acme/web", 403), ("reader", "alice/app", 403),
           ("owner", "acme/web", 403), ("org_admin", "alice/app", 403),
           ("team_admin", "alice/app", 403), ("service", "acme/web", 403),
           ("none", "acme/web", 401)]


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def api(api_template, redis_db, smtp):
    """The API on its own copy of the personas' database, mailing through ``smtp``."""
    template, tokens = api_template
    database = create_database("notifier_api_mail", template=template)
    settings = api_settings(database, f"{REDIS_SERVER}/{redis_db}").model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_timeout_s": 5})
    made = make_api(settings, tokens)
    yield made
    made.client.app.state.engine.dispose()
    drop_database(database)


def authorized_email(repository: str = "acme/web", address: str = ADDRESS) -> str:
    return f"/api/v1/repository/{repository}/authorizedemail/{address}"


def ask(api, persona: str = "org_admin", repository: str = "acme/web",
        address: str = ADDRESS):
    return api.call(persona, "POST", authorized_email(repository, address))


def link_in(message) -> str:
    """The path and query of the confirmation link a mail carries."""
    [path] = LINK.findall(message.get_content())
    return path


def record(api, persona: str = "org_admin", repository: str = "acme/web") -> dict:
    response = api.call(persona, "GET", authorized_email(repository))
    assert response.status_code == 200, response.text
    return response.json()


def stored_count(api) -> int:
    with api.client.app.state.factory() as session:
        return session.scalar(select(func.count()).select_from(AuthorizedEmail))


def create_email_notification(api):
    return api.call("org_admin", "POST", "/api/v1/repository/acme/web/notification/", json={
        "event": "repo_push", "method": "email", "config": {"email": ADDRESS},
        "eventConfig": {}})


# --- who may ask -------------------------------------------------------------------------------

@pytest.mark.parametrize(("persona", "repository"), ALLOWED)
def test_a_repository_admin_may_ask_and_read(api, smtp, persona, repository):
    namespace, name = repository.split("/")
    expected = {"email": ADDRESS, "repository": name, "namespace": namespace,
                "confirmed": False}

    asked = ask(api, persona, repository)

    assert (asked.status_code, asked.json()) == (200, expected)
    assert record(api, persona, repository) == expected
    [mail] = smtp.inbox.messages
    assert mail["To"] == ADDRESS
    assert repository in mail["Subject"]


@pytest.mark.parametrize(("persona", "repository", "status"), REFUSED)
def test_anyone_else_may_neither_ask_nor_read(api, smtp, persona, repository, status):
    error_type = {401: "invalid_token", 403: "insufficient_scope"}[status]

    for method in ("POST", "GET"):
        response = api.call(persona, method, authorized_email(repository))
        assert (method, response.status_code, response.json()["error_type"]) == (
            method, status, error_type)
    assert smtp.inbox.envelopes == []
    assert stored_count(api) == 0


def test_an_address_never_asked_for_is_not_found(api):
    response = api.call("owner", "GET", authorized_email("alice/app"))

    assert (response.status_code, response.json()["error_type"]) == (404, "not_found")


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_malformed_address_is_refused(api, smtp, method):
    response = api.call("org_admin", method, authorized_email(address="dev at example.com"))

    assert response.status_code == 400
    assert "Invalid e-mail address" in response.json()["error_message"]
    assert smtp.inbox.envelopes == []


# --- the flow ----------------------------------------------------------------------------------

def test_the_mailed_link_authorizes_the_address_for_email_notifications(api, smtp):
    refused = create_email_notification(api)
    assert refused.status_code == 400
    assert refused.json()["error_message"] == refused.json()["detail"] == (
        f"{NOT_AUTHORIZED}: {ADDRESS} is not confirmed for acme/web yet; 'notifier email "
        f"authorize acme/web {ADDRESS}' mails it a confirmation link, and opening the link (or "
        f"'notifier email confirm CODE' with its code) confirms it")

    asked = ask(api)
    assert "code" not in asked.json()
    page = api.client.get(link_in(smtp.inbox.messages[-1]))

    assert (page.status_code, page.headers["content-type"]) == (200, "text/html; charset=utf-8")
    assert f"{ADDRESS} is now authorized for acme/web" in page.text
    assert record(api)["confirmed"] is True
    created = create_email_notification(api)
    assert created.status_code == 201, created.text
    assert (created.json()["method"], created.json()["config"]) == ("email", {"email": ADDRESS})


def test_a_used_link_is_not_found(api, smtp):
    ask(api)
    link = link_in(smtp.inbox.messages[-1])
    assert api.client.get(link).status_code == 200

    again = api.client.get(link)

    assert again.status_code == 404
    assert "Unknown or already used confirmation code" in again.text
    assert record(api)["confirmed"] is True


@pytest.mark.parametrize("query", ["?code=not-a-code", "?code=", ""])
def test_an_unknown_or_missing_code_is_not_found(api, query):
    page = api.client.get(f"/authrepoemail{query}")

    assert (page.status_code, page.headers["content-type"]) == (404, "text/html; charset=utf-8")
    assert "Unknown or already used confirmation code" in page.text


def test_an_expired_link_is_refused(api, smtp):
    long_ago = utcnow() - timedelta(days=30)
    with transaction(api.client.app.state.factory) as session:
        authorize(session, "acme/web", ADDRESS, settings=api.settings,
                  mailer=Mailer.from_settings(api.settings), now=long_ago)

    page = api.client.get(link_in(smtp.inbox.messages[-1]))

    assert (page.status_code, page.headers["content-type"]) == (400, "text/html; charset=utf-8")
    assert "The confirmation code has expired" in page.text
    assert record(api)["confirmed"] is False


def test_asking_again_mails_a_new_link_and_voids_the_old_one(api, smtp):
    ask(api)
    ask(api)
    first, second = (link_in(message) for message in smtp.inbox.messages)

    assert api.client.get(first).status_code == 404
    assert api.client.get(second).status_code == 200
    assert stored_count(api) == 1


def test_a_confirmed_address_gets_no_second_mail(api, smtp):
    ask(api)
    api.client.get(link_in(smtp.inbox.messages[-1]))

    again = ask(api)

    assert (again.status_code, again.json()["confirmed"]) == (200, True)
    assert len(smtp.inbox.envelopes) == 1


def test_the_page_escapes_the_address_and_the_repository(api, smtp):
    address = "o'hara&co@example.com"
    ask(api, "owner", "alice/<i>app", address)

    page = api.client.get(link_in(smtp.inbox.messages[-1]))

    assert page.status_code == 200
    assert "o&#x27;hara&amp;co@example.com is now authorized for alice/&lt;i&gt;app" in page.text
    assert "<i>" not in page.text


# --- SMTP failures -----------------------------------------------------------------------------

def test_a_refused_mail_is_503_and_stores_nothing(api, smtp):
    smtp.inbox.rcpt_reply = "550 5.1.1 No such mailbox"

    response = ask(api)

    assert response.status_code == 503
    assert response.json()["error_type"] == "unavailable"
    assert "smtp_5xx" in response.json()["error_message"]
    assert stored_count(api) == 0


def test_an_unreachable_server_is_503_and_stores_nothing(api):
    api.client.app.state.mailer = Mailer("127.0.0.1", free_port(), timeout_s=2)

    response = ask(api)

    assert (response.status_code, response.json()["error_type"]) == (503, "unavailable")
    assert "smtp_unavailable" in response.json()["error_message"]
    assert api.call("org_admin", "GET", authorized_email()).status_code == 404


def test_the_mailer_is_built_once_per_app(api, smtp):
    ask(api)
    mailer = api.client.app.state.mailer
    ask(api, address="ops@example.com")

    assert api.client.app.state.mailer is mailer
    assert mailer.port == smtp.port
    assert len(smtp.inbox.envelopes) == 2


# --- limits: a phishing relay is not available ----------------------------------------------------

def test_confirmation_mails_to_one_address_are_limited(api, smtp):
    api.client.app.state.settings = api.settings.model_copy(
        update={"email_confirmations_per_address_per_hour": 2})

    assert [ask(api).status_code for _ in range(2)] == [200, 200]
    refused = ask(api, "owner", "alice/app")  # another requester, another repository: same address

    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.json()["error_message"].startswith(
        "Too many confirmation e-mails to one address: at most 2 per hour; try again in ")
    assert len(smtp.inbox.messages) == 2


def test_confirmation_mails_asked_by_one_requester_are_limited(api, smtp):
    api.client.app.state.settings = api.settings.model_copy(
        update={"email_confirmations_per_requester_per_hour": 2})

    assert [ask(api, address=f"a{i}@example.com").status_code for i in range(2)] == [200, 200]
    refused = ask(api, address="a3@example.com")

    assert refused.status_code == 429
    assert "confirmation e-mails asked for by one user" in refused.json()["error_message"]
    assert len(smtp.inbox.messages) == 2


def test_no_confirmation_mail_for_a_namespace_outside_the_directory(api, smtp):
    from notifier.directory import grant

    with transaction(api.client.app.state.factory) as session:
        grant(session, "ghost/click-here-to-claim", "admin", user="oscar")

    refused = ask(api, "org_admin", "ghost/click-here-to-claim")

    assert refused.status_code == 404
    assert "no user or organization 'ghost'" in refused.json()["error_message"]
    assert smtp.inbox.envelopes == []
