"""The email method: its config check against confirmed addresses, and a multipart send to a real
SMTP server; on PostgreSQL and SQLite."""

from __future__ import annotations

import uuid

import pytest

from notifier.db import transaction
from notifier.email_auth import confirm, hash_code
from notifier.errors import InvalidNotificationConfig, PermanentDeliveryError
from notifier.events import build_event_data, get_event
from notifier.http import HttpClient
from notifier.mailer import Mailer
from notifier.methods import CreateContext, DeliveryContext, Services, get_method
from notifier.methods.email import EmailMethod
from notifier.models import AuthorizedEmail, utcnow
from tests.smtp import SmtpServer

EMAIL = EmailMethod()
ADDRESS = "dev@example.com"
NOT_AUTHORIZED = ("The specified e-mail address is not authorized to receive notifications "
                  "for this repository")
CONFIRMS = "opening the link (or 'notifier email confirm CODE' with its code) confirms it"


def not_confirmed_yet(repository: str, address: str = ADDRESS) -> str:
    return (f"{NOT_AUTHORIZED}: {address} is not confirmed for {repository} yet; "
            f"'notifier email authorize {repository} {address}' mails it a confirmation link, "
            f"and {CONFIRMS}")


def link_not_used(repository: str, address: str = ADDRESS) -> str:
    return (f"{NOT_AUTHORIZED}: {address} has not used its confirmation link yet; {CONFIRMS}, "
            f"and 'notifier email authorize {repository} {address}' mails a new link")


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def services(smtp, factory) -> Services:
    settings = smtp.settings()
    http = HttpClient(timeout_s=2, allowed=(), user_agent="test", retry_after_max_s=0)
    return Services(settings=settings, http=http, factory=factory,
                    mailer=Mailer.from_settings(settings))


def add_address(factory, repository: str, address: str = ADDRESS, *,
                confirmed: bool = True) -> None:
    """An authorization record, confirmed through ``confirm`` as a link would."""
    code = uuid.uuid4().hex
    with transaction(factory) as session:
        session.add(AuthorizedEmail(repository=repository, email=address, confirmed=False,
                                    code_hash=hash_code(code),
                                    code_expires_at=utcnow().replace(year=2999)))
    if confirmed:
        with transaction(factory) as session:
            confirm(session, code)


def delivery(repository: str, event: str, data: dict, address: str = ADDRESS) -> DeliveryContext:
    event_data = build_event_data(repository, event, data, server_hostname="registry.example.com",
                                  scheme="https")
    return DeliveryContext(delivery_id=str(uuid.uuid4()), event=event, repository=repository,
                           event_data=event_data, config={"email": address}, attempt=1,
                           now=utcnow(), performer={"entity_name": "alice"})


# --- validate_config ---------------------------------------------------------------------------

def test_the_registry_names_the_email_method():
    assert isinstance(get_method("email"), EmailMethod)


@pytest.mark.parametrize("config", [{}, {"email": ""}, {"email": None}])
def test_a_missing_address_is_refused(factory, unique_repo, config):
    with factory() as session, \
            pytest.raises(InvalidNotificationConfig, match="^Missing e-mail address$"):
        EMAIL.validate_config(config, CreateContext(unique_repo, session=session))


@pytest.mark.parametrize("setup", ["none", "unconfirmed", "other_repository", "other_address"])
def test_an_address_not_confirmed_for_the_repository_is_refused(factory, unique_repo, setup):
    if setup != "none":
        add_address(factory, unique_repo + "-other" if setup == "other_repository" else unique_repo,
                    "someone@example.com" if setup == "other_address" else ADDRESS,
                    confirmed=setup != "unconfirmed")
    with factory() as session, pytest.raises(InvalidNotificationConfig) as caught:
        EMAIL.validate_config({"email": ADDRESS}, CreateContext(unique_repo, session=session))

    expected = link_not_used if setup == "unconfirmed" else not_confirmed_yet
    assert str(caught.value) == expected(unique_repo)


@pytest.mark.parametrize("address", [["dev@example.com"], 42, "dev@example.com\nBcc: x@y.z"])
def test_an_address_that_is_not_one_plain_address_is_refused(factory, unique_repo, address):
    add_address(factory, unique_repo)
    with factory() as session, pytest.raises(InvalidNotificationConfig) as caught:
        EMAIL.validate_config({"email": address}, CreateContext(unique_repo, session=session))

    assert str(caught.value) == f"{NOT_AUTHORIZED}: it is not one plain e-mail address"


def test_an_address_is_named_as_stored_domain_in_lower_case(factory, unique_repo):
    with factory() as session, pytest.raises(InvalidNotificationConfig) as caught:
        EMAIL.validate_config({"email": "Dev@EXAMPLE.com"},
                              CreateContext(unique_repo, session=session))

    assert str(caught.value) == not_confirmed_yet(unique_repo, "Dev@example.com")


def test_a_confirmed_address_is_accepted(factory, unique_repo):
    add_address(factory, unique_repo)
    with factory() as session:
        config = EMAIL.validate_config({"email": ADDRESS},
                                       CreateContext(unique_repo, session=session))
    assert config == {"email": ADDRESS}


# --- send --------------------------------------------------------------------------------------

def test_send_delivers_text_and_escaped_html(factory, unique_repo, services, smtp):
    add_address(factory, unique_repo)
    context = delivery(unique_repo, "repo_push", {"updated_tags": ["v1", "<script>x</script>"]})

    assert EMAIL.send(context, services) is None

    [envelope] = smtp.inbox.envelopes
    assert envelope.rcpt_tos == [ADDRESS]
    [received] = smtp.inbox.messages
    assert received.get_content_type() == "multipart/alternative"
    assert received["Subject"] == get_event("repo_push").summary(context.event_data)
    assert received["Subject"] == f"Repository {unique_repo} updated"
    assert (received["From"], received["To"]) == (services.settings.mail_sender, ADDRESS)
    text = received.get_body(("plain",)).get_content()
    html = received.get_body(("html",)).get_content()
    assert "alice pushed image(s)" in text and "<script>x</script>" in text
    assert "<b>alice</b>" in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert "<script>" not in html


def test_a_summary_with_line_breaks_stays_one_subject_line(factory, unique_repo, services, smtp):
    add_address(factory, unique_repo)
    message = "mirror\r\nBcc: victim@example.net"
    EMAIL.send(delivery(unique_repo, "repo_mirror_sync_failed", {"message": message}), services)

    [envelope] = smtp.inbox.envelopes
    assert envelope.rcpt_tos == [ADDRESS]
    [received] = smtp.inbox.messages
    assert received["Bcc"] is None
    assert received["Subject"] == "Repository Mirror failed for mirror Bcc: victim@example.net"


@pytest.mark.parametrize("setup", ["never", "unconfirmed", "other_repository"])
def test_an_address_not_confirmed_at_send_time_is_permanent(factory, unique_repo, services,
                                                             smtp, setup):
    if setup != "never":
        add_address(factory, unique_repo + "-other" if setup == "other_repository" else unique_repo,
                    confirmed=setup != "unconfirmed")
    with pytest.raises(PermanentDeliveryError) as caught:
        EMAIL.send(delivery(unique_repo, "repo_push", {"updated_tags": ["v1"]}), services)
    assert caught.value.kind == "email_not_authorized"
    assert ADDRESS in str(caught.value)
    assert smtp.inbox.envelopes == []
