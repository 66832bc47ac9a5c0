"""The web UI's pages over HTTP (FastAPI's test client, PostgreSQL): sign-in and sessions,
CSRF, the API's permission rules, escaping and headers, the form's field errors, edits."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from notifier.db import transaction
from notifier.directory import find_user
from notifier.models import Notification, UiSession, utcnow
from notifier.ui.sessions import (create_signin_link, find_session, start_session,
                                  use_signin_link)
from notifier.errors import InvalidInput, NotFound
from tests.api_seed import PERMISSION_TABLE, add_delivery, add_notification, snapshot
from tests.cli_support import Cli, single_error_line

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(api, persona: str) -> str:
    """Sign the test client in as ``persona`` with their token; returns the CSRF token."""
    api.client.cookies.clear()
    form = api.client.get("/signin")
    answer = api.client.post("/signin", follow_redirects=False, data={
        "csrf_token": CSRF.search(form.text).group(1), "token": api.tokens[persona]})
    assert answer.status_code == 303, answer.text
    return CSRF.search(api.client.get("/notifications").text).group(1)


def settings(repository: str) -> str:
    return f"/repository/{repository}?tab=settings"


def field_errors(page: str) -> dict[str, str]:
    return dict(re.findall(r'class="field-error" id="([^"]+)-error"[^>]*>([^<]*)<', page))


# --- signing in --------------------------------------------------------------------------------

def test_a_signed_out_visitor_is_sent_to_signin_and_back(api):
    answer = api.client.get(settings("acme/web"), follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin?next=%2Frepository%2Facme%2Fweb%3Ftab%3Dsettings"
    form = api.client.get(answer.headers["location"])
    back = api.client.post("/signin", follow_redirects=False, data={
        "csrf_token": CSRF.search(form.text).group(1), "token": api.tokens["org_admin"],
        "next": "/repository/acme/web?tab=settings"})
    assert back.headers["location"] == "/repository/acme/web?tab=settings"


def test_the_session_cookie_is_httponly_lax_and_secure_on_https(api):
    api.client.base_url = "https://testserver"
    form = api.client.get("/signin")
    answer = api.client.post("/signin", follow_redirects=False, data={
        "csrf_token": CSRF.search(form.text).group(1), "token": api.tokens["owner"]})
    cookie = [h for h in answer.headers.get_list("set-cookie")
              if h.startswith("notifier_session=")][0].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie
    assert f"max-age={int(api.settings.ui_session_ttl_s)}" in cookie


@pytest.mark.parametrize("token, status", [("", 400), ("ntf_wrong", 401),
                                           ("service", 401)])
def test_signin_refuses_what_is_not_a_user_token(api, token, status):
    form = api.client.get("/signin")
    answer = api.client.post("/signin", follow_redirects=False, data={
        "csrf_token": CSRF.search(form.text).group(1),
        "token": api.tokens["service"] if token == "service" else token})
    assert answer.status_code == status
    assert "notifier token create --user NAME" in answer.text
    assert "notifier_session" not in answer.headers.get("set-cookie", "")


def test_signin_without_its_form_token_is_refused(api):
    answer = api.client.post("/signin", data={"token": api.tokens["owner"]},
                             follow_redirects=False)
    assert answer.status_code == 403


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/x", "/\\evil"])
def test_next_never_leaves_the_site(api, next_url):
    form = api.client.get("/signin")
    answer = api.client.post("/signin", follow_redirects=False, data={
        "csrf_token": CSRF.search(form.text).group(1), "token": api.tokens["owner"],
        "next": next_url})
    assert answer.headers["location"] == "/"


def test_signout_ends_the_session_on_the_server(api):
    csrf = sign_in(api, "owner")
    cookie = api.client.cookies["notifier_session"]
    assert api.client.post("/signout", data={"csrf_token": csrf},
                           follow_redirects=False).status_code == 303
    api.client.cookies.set("notifier_session", cookie)  # a copy kept by an attacker
    assert api.client.get(settings("alice/app"), follow_redirects=False).status_code == 303


def test_sessions_expire_and_links_are_single_use(api):
    factory = api.client.app.state.factory
    with transaction(factory) as session:
        user = find_user(session, "alice")
        cookie = start_session(session, user, ttl_s=60)
        assert find_session(session, cookie).user == "alice"
        assert find_session(session, cookie, now=utcnow() + timedelta(seconds=61)) is None
        stored = session.scalars(select(UiSession.token_hash)).all()
        assert cookie not in stored  # only its hash
        code = create_signin_link(session, "alice", ttl_s=60)
    with transaction(factory) as session:
        assert use_signin_link(session, code).name == "alice"
    with transaction(factory) as session, pytest.raises(NotFound, match="already used"):
        use_signin_link(session, code)
    with transaction(factory) as session:
        late = create_signin_link(session, "alice", ttl_s=60)
    with transaction(factory) as session, pytest.raises(InvalidInput, match="expired"):
        use_signin_link(session, late, now=utcnow() + timedelta(seconds=61))


def test_ui_link_prints_a_link_that_signs_in_once(api, tmp_path):
    cli = Cli(tmp_path, NOTIFIER_UI_BASE_URL="http://127.0.0.1:8123/")
    cli.env["NOTIFIER_DATABASE_URL"] = api.settings.database_url  # the API's database
    done = cli.run("ui-link", "alice")
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip()
    assert link.startswith("http://127.0.0.1:8123/signin/link?code=")
    assert "works once" in done.stderr
    code = link.split("code=", 1)[1]
    page = api.client.get(f"/signin/link?code={code}")
    assert page.status_code == 200 and 'value="' + code + '"' in page.text  # a button, not a sign-in
    first = api.client.post("/signin/link", data={"code": code}, follow_redirects=False)
    assert first.status_code == 303 and "notifier_session=" in first.headers["set-cookie"]
    api.client.cookies.clear()
    again = api.client.post("/signin/link", data={"code": code}, follow_redirects=False)
    assert again.status_code == 404 and "notifier ui-link USER" in again.text

    unknown = cli.run("ui-link", "nobody")
    assert unknown.returncode == 1
    assert single_error_line(unknown) == "error: no user named 'nobody'"


# --- the API's permission rules ----------------------------------------------------------------

@pytest.mark.parametrize("case", [c for c in PERMISSION_TABLE if c.persona not in ("service", "none")],
                         ids=lambda c: c.id)
def test_only_repository_admins_see_the_settings(api, case):
    sign_in(api, case.persona)
    answer = api.client.get(settings(case.repository))
    assert answer.status_code == (case.denied or 200)
    if case.denied:
        assert f"You must be an admin of repository {case.repository}" in answer.text


def test_another_repositorys_uuid_is_a_404_page(api):
    uuid = add_notification(api, "alice/app")
    sign_in(api, "org_admin")
    for path in ("/history", "/edit", "/secret", "/delete", "/row"):
        answer = api.client.get(f"/repository/acme/web/notification/{uuid}{path}")
        assert answer.status_code == 404, path
        assert "<h1>Not found</h1>" in answer.text


def test_forms_without_the_csrf_token_change_nothing(api):
    uuid = add_notification(api, "acme/web", enabled=False, number_of_failures=3)
    add_delivery(api, uuid, state="failed")
    sign_in(api, "org_admin")
    before = snapshot(api)
    base = f"/repository/acme/web/notification/{uuid}"
    for path, form in [("/delete", {}), ("/reset", {"redeliver_skipped": "1"}),
                       ("/edit", {"webhook.url": "http://127.0.0.1:1/x"}), ("/test", {}),
                       ("/secret/rotate", {}), ("/redeliver", {"confirmed": "1"}),
                       ("/delete", {"csrf_token": "not-the-token"})]:
        answer = api.client.post(base + path, data=form, follow_redirects=False)
        assert answer.status_code == 403, (path, answer.text)
        assert "security token" in answer.text
    answer = api.client.post("/repository/acme/web/notification/new", data={
        "event": "repo_push", "method": "webhook", "webhook.url": "http://127.0.0.1:9/"})
    assert answer.status_code == 403
    assert snapshot(api) == before


# --- pages: headers, escaping, the form ----------------------------------------------------------

def test_pages_carry_a_content_security_policy_and_escape_what_people_typed(api):
    add_notification(api, "acme/web", title='<script>alert(1)</script>')
    sign_in(api, "org_admin")
    answer = api.client.get(settings("acme/web"))
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "<script>alert(1)</script>" not in answer.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text
    assert answer.headers["cache-control"] == "no-store"


def test_the_empty_state_says_what_to_do(api):
    sign_in(api, "owner")
    page = api.client.get(settings("alice/app")).text
    assert "No notifications yet." in page and "Create the first notification" in page


@pytest.mark.parametrize("form, field, message", [
    ({"event": "build_success", "ref_regex": "(", "method": "webhook",
      "webhook.url": "http://127.0.0.1:9/h"}, "ref_regex", "Invalid ref-regex '('"),
    ({"event": "vulnerability_found", "level": "9", "method": "webhook",
      "webhook.url": "http://127.0.0.1:9/h"}, "level", "Invalid level '9'"),
    ({"event": "repo_push", "method": "webhook", "webhook.url": "http://192.168.1.1/h"},
     "webhook-url", "Invalid webhook URL"),
    ({"event": "repo_push", "method": "webhook", "webhook.url": "http://127.0.0.1:9/h",
      "webhook.template": "{not json"}, "webhook-template", "Invalid body template"),
    ({"event": "repo_push", "method": "slack"}, "slack-url", "Missing Slack Callback URL"),
    ({"event": "repo_push", "method": "hipchat", "hipchat.notification_token": "t"},
     "hipchat-room_id", "Missing Hipchat Room ID"),
    ({"event": "repo_push", "method": "hipchat", "hipchat.room_id": "12"},
     "hipchat-notification_token", "Missing Hipchat Room Notification Token"),
    ({"event": "repo_push", "method": "flowdock"}, "flowdock-flow_api_token",
     "Missing Flowdock API Token"),
    ({"event": "repo_push", "method": "quay_notification"}, "quay_notification-target",
     "Missing target"),
    ({"event": "repo_push", "method": "quay_notification",
      "quay_notification.target": "user:nobody"}, "quay_notification-target",
     "Unknown user nobody"),
    ({"event": "repo_push", "method": "email", "email.email": "x@example.com"}, "email-email",
     "not authorized"),
    ({"event": "no_such_event", "method": "webhook"}, "event", "Unknown event"),
    ({"event": "repo_push", "method": "pager"}, "method", "Unknown notification method"),
    ({"event": "repo_push", "method": "webhook", "webhook.url": "http://127.0.0.1:9/h",
      "title": "x" * 256}, "title", "title must be text"),
])
def test_each_error_is_shown_next_to_its_field_and_nothing_is_created(api, form, field,
                                                                     message):
    csrf = sign_in(api, "org_admin")
    before = snapshot(api)
    answer = api.client.post("/repository/acme/web/notification/new",
                             data={"csrf_token": csrf, **form})
    assert answer.status_code == 400
    errors = field_errors(answer.text)
    assert list(errors) == [field], errors
    assert message in errors[field].replace("&#39;", "'")
    assert snapshot(api) == before


def test_in_app_targets_come_from_the_directory(api):
    sign_in(api, "org_admin")
    page = api.client.get("/repository/acme/web/notification/new").text
    for value in ("org:acme", "team:ops", "user:oscar", "user:tina", "user:rita"):
        assert f'value="{value}"' in page


def test_edit_keeps_masked_secrets_and_validates_as_create(api):
    uuid = add_notification(api, "acme/web", method="slack",
                            config={"url": "https://127.0.0.1:9/services/T0/B0/secretpart"})
    csrf = sign_in(api, "org_admin")
    form = api.client.get(f"/repository/acme/web/notification/{uuid}/edit").text
    masked = re.search(r'name="slack.url" [^>]*value="([^"]*)"|value="([^"]*)"[^>]*name="slack.url"',
                       form)
    shown = next(g for g in masked.groups() if g)
    assert "secretpart" not in shown
    saved = api.client.post(f"/repository/acme/web/notification/{uuid}/edit",
                            data={"csrf_token": csrf, "slack.url": shown, "title": "Chat"},
                            follow_redirects=False)
    assert saved.status_code == 303
    with api.client.app.state.factory() as session:
        stored = session.scalars(select(Notification).where(Notification.uuid == uuid)).one()
        assert stored.title == "Chat"
        assert stored.config["url"] == "https://127.0.0.1:9/services/T0/B0/secretpart"

    refused = api.client.post(f"/repository/acme/web/notification/{uuid}/edit",
                              data={"csrf_token": csrf, "slack.url": "http://127.0.0.1:9/x"})
    assert refused.status_code == 400
    assert field_errors(refused.text) == {
        "slack-url": "Invalid Slack Callback URL: it must start with https://"}


def test_the_bell_counts_and_dismisses(api):
    from notifier.inapp import store_notifications
    with transaction(api.client.app.state.factory) as session:
        store_notifications(session, [find_user(session, "oscar")], kind="repo_push",
                            metadata={"repository": "acme/web", "updated_tags": ["v1"],
                                      "homepage": "https://registry.example.com/repository/acme/web"},
                            delivery_id="00000000-0000-0000-0000-000000000001")
    csrf = sign_in(api, "org_admin")
    page = api.client.get(settings("acme/web")).text
    assert 'data-testid="bell-count">1<' in page
    assert "Repository acme/web updated" in page
    note = re.search(r'action="/notifications/([0-9a-f-]+)/dismiss"', page).group(1)
    assert api.client.post(f"/notifications/{note}/dismiss",
                           data={"csrf_token": csrf, "next": "/notifications"},
                           follow_redirects=False).headers["location"] == "/notifications"
    assert 'data-testid="bell-count">0<' in api.client.get(settings("acme/web")).text
    sign_in(api, "owner")  # someone else's notification: 404
    assert api.client.post(f"/notifications/{note}/dismiss",
                           data={"csrf_token": sign_in(api, "owner")}).status_code == 404


def test_static_files_ship_in_the_package(api):
    assert "text/css" in api.client.get("/static/ui.css").headers["content-type"]
    assert api.client.get("/static/ui.js").status_code == 200

