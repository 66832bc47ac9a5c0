"""The web UI in Debian's Chromium (headless, Playwright), against a real uvicorn process, real
workers (PostgreSQL + Redis) and loopback receivers, and aiosmtpd for the e-mail flow."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from notifier.models import InAppNotification, Notification
from tests.fleet import wait_until
from tests.smtp import SmtpServer
from tests.ui_support import WAIT_MS, chromium_or_skip, screenshot_path, seed_people, start_ui_api

pytestmark = pytest.mark.fleet

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect


@pytest.fixture(scope="module")
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="module")
def ui(redis_fleet, smtp, tmp_path_factory):
    """The UI's URL: an API process whose mail goes to the test SMTP server."""
    group, url = start_ui_api(redis_fleet, tmp_path_factory.mktemp("ui"), {
        "NOTIFIER_SMTP_HOST": "127.0.0.1", "NOTIFIER_SMTP_PORT": str(smtp.port),
        "NOTIFIER_MAIL_SENDER": "notifier@registry.example.com"})
    yield url
    group.stop()


@pytest.fixture(scope="module")
def browser():
    executable = chromium_or_skip()
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable,
                                          args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield launched
        launched.close()


@pytest.fixture
def people(redis_fleet):
    return seed_people(redis_fleet.factory)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    made = context.new_page()
    yield made
    context.close()


def sign_in(page, ui: str, token: str, next_path: str = "/") -> None:
    page.goto(f"{ui}/signin?next={next_path}")
    page.get_by_label("Your user token", exact=True).fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def settings_url(ui: str, repository: str) -> str:
    return f"{ui}/repository/{repository}?tab=settings"


def count_notifications(fleet, repository: str) -> int:
    with fleet.factory() as session:
        return session.scalar(select(func.count()).select_from(Notification)
                              .where(Notification.repository == repository))


def create_webhook(page, ui: str, repository: str, url: str, title: str) -> str:
    """Create a webhook through the form; returns the secret the page shows once."""
    page.goto(settings_url(ui, repository))
    page.get_by_role("link", name=re.compile("Create (the first )?notification")).first.click()
    page.get_by_label("Event", exact=True).select_option("repo_push")
    page.get_by_label("Method", exact=True).select_option("webhook")
    page.get_by_label("Webhook URL", exact=True).fill(url)
    page.get_by_label("Title", exact=True).fill(title)
    page.get_by_role("button", name="Create notification").click()
    expect(page.get_by_role("heading", name="Webhook created")).to_be_visible()
    return page.locator("#secret").input_value()


def row(page, title: str):
    return page.locator("tr", has=page.get_by_text(title, exact=True))


# --- tests ------------------------------------------------------------------------------------

def test_signed_out_visitor_and_reader_are_refused(page, ui, people):
    page.goto(settings_url(ui, people.repository))
    expect(page).to_have_url(re.compile(r"/signin\?next="))
    expect(page.get_by_label("Your user token", exact=True)).to_be_visible()

    page.get_by_label("Your user token", exact=True).fill("ntf_not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".field-error")).to_contain_text("not valid")

    sign_in(page, ui, people.tokens[people.reader],
            f"/repository/{people.repository}?tab=settings")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.locator(".error-box")).to_contain_text(f"admin of repository {people.repository}")


def test_create_webhook_through_the_form_and_see_it_listed(page, ui, people, redis_fleet,
                                                           receiver, tmp_path):
    sign_in(page, ui, people.tokens[people.admin])
    page.goto(settings_url(ui, people.repository))
    expect(page.get_by_text("No notifications yet.")).to_be_visible()

    page.get_by_role("link", name="Create the first notification").click()
    page.get_by_label("Event", exact=True).select_option("build_success")
    expect(page.get_by_label("Only for branches or tags matching (optional)", exact=True)).to_be_visible()
    page.get_by_label("Event", exact=True).select_option("vulnerability_found")
    expect(page.get_by_label("Minimum severity", exact=True)).to_be_visible()
    page.get_by_label("Event", exact=True).select_option("repo_push")
    page.get_by_label("Webhook URL", exact=True).fill(receiver.url)
    page.get_by_label("Body template (optional)", exact=True).fill('{"text": "${repository} got ${updated_tags[*]}"}')
    page.get_by_role("button", name="Preview the body").click()
    expect(page.locator("#preview pre")).to_contain_text(f'"text": "{people.repository} got latest, foo"')
    page.get_by_label("Title", exact=True).fill("<b>CI</b> hook")
    page.screenshot(path=str(screenshot_path(tmp_path, "ui-create-form.png")), full_page=True)
    page.get_by_role("button", name="Create notification").click()

    expect(page.get_by_role("heading", name="Webhook created")).to_be_visible()
    secret = page.locator("#secret").input_value()
    assert secret.startswith("whsec_")
    expect(page.get_by_text("Standard Webhooks")).to_be_visible()
    page.get_by_role("link", name="Back to the notifications").click()

    listed = row(page, "<b>CI</b> hook")  # typed markup is shown as text, not markup
    expect(listed).to_contain_text("Push to Repository")
    expect(listed).to_contain_text("Enabled")
    expect(listed).to_contain_text(receiver.url.split("/hook")[0])
    assert secret not in page.content()  # the list masks it
    assert count_notifications(redis_fleet, people.repository) == 1


@pytest.mark.parametrize("fill, field, message", [
    ({"event": "build_success", "Only for branches or tags matching (optional)": "refs/(heads",
      "Webhook URL": "RECEIVER"}, "#ref_regex-error", "Invalid ref-regex"),
    ({"event": "repo_push", "Webhook URL": "http://10.1.2.3/hook"}, "#webhook-url-error",
     "Invalid webhook URL"),
    ({"event": "repo_push", "method": "slack"}, "#slack-url-error", "Missing Slack Callback URL"),
], ids=["bad-ref-regex", "private-network-url", "missing-slack-url"])
def test_invalid_input_is_shown_next_to_its_field_and_nothing_is_created(
        page, ui, people, redis_fleet, receiver, fill, field, message):
    sign_in(page, ui, people.tokens[people.admin])
    page.goto(f"{ui}/repository/{people.repository}/notification/new")
    page.get_by_label("Event", exact=True).select_option(fill.pop("event"))
    page.get_by_label("Method", exact=True).select_option(fill.pop("method", "webhook"))
    for label, value in fill.items():
        page.get_by_label(label, exact=True).fill(receiver.url if value == "RECEIVER" else value)
    page.get_by_role("button", name="Create notification").click()

    expect(page.locator(field)).to_contain_text(message)
    expect(page.locator(".error-box")).to_contain_text("Nothing was created")
    described = page.locator(f"[aria-describedby~='{field[1:]}']")
    expect(described).to_have_attribute("aria-invalid", "true")
    assert count_notifications(redis_fleet, people.repository) == 0


def test_test_button_shows_the_real_result_in_the_row(page, ui, people, receiver):
    sign_in(page, ui, people.tokens[people.admin])
    create_webhook(page, ui, people.repository, receiver.url, "Tested hook")
    page.goto(settings_url(ui, people.repository))
    row(page, "Tested hook").get_by_role("button", name="Test").click()

    result = row(page, "Tested hook").locator(".test-result")
    expect(result).to_contain_text(re.compile(r"Test delivered: HTTP 200 in \d+ ms"))
    assert receiver.requests and receiver.requests[-1].headers["webhook-signature"]


def test_failing_receiver_disables_it_with_reason_notice_in_bell_and_reenable(
        page, ui, people, redis_fleet, receiver, tmp_path):
    receiver.statuses = [500]
    sign_in(page, ui, people.tokens[people.admin])
    create_webhook(page, ui, people.repository, receiver.url, "Flaky hook")
    [uuid] = [n.uuid for n in _notifications(redis_fleet, people.repository)]
    for tag in ("v1", "v2", "v3"):
        redis_fleet.producer.publish(people.repository, "repo_push", {"updated_tags": [tag]})
    redis_fleet.wait_for_state(uuid, {"failed"}, count=3, timeout_s=60)
    wait_until(lambda: not redis_fleet.notification(uuid).enabled)
    redis_fleet.producer.publish(people.repository, "repo_push", {"updated_tags": ["v4"]})
    redis_fleet.wait_for_state(uuid, {"skipped"}, count=1, timeout_s=30)

    page.goto(settings_url(ui, people.repository))
    flaky = row(page, "Flaky hook")
    expect(flaky).to_contain_text("Disabled")
    expect(flaky.locator(".reason")).to_contain_text("3 failed deliveries in a row")
    expect(flaky.locator(".state")).to_contain_text("last error: receiver answered HTTP 500")
    expect(flaky).to_contain_text("since ")
    page.screenshot(path=str(screenshot_path(tmp_path, "ui-settings.png")), full_page=True)

    expect(page.get_by_test_id("bell-count")).to_have_text("1")
    page.locator("#bell summary").click()
    notice = page.locator("#bell .note").first
    expect(notice).to_contain_text("Flaky hook")
    expect(notice).to_contain_text("was disabled")
    expect(notice).to_have_class(re.compile("level-error"))
    page.screenshot(path=str(screenshot_path(tmp_path, "ui-bell.png")))
    notice.get_by_role("link", name="Open the notification").click()
    expect(page).to_have_url(re.compile(f"#n-{uuid}$"))

    receiver.statuses = [200]
    flaky = row(page, "Flaky hook")
    flaky.get_by_label(re.compile("also send the 1 skipped")).check()
    flaky.get_by_role("button", name="Re-enable").click()
    expect(row(page, "Flaky hook")).to_contain_text("Enabled")
    redis_fleet.wait_for_state(uuid, {"delivered"}, count=1, timeout_s=30)

    page.locator("#bell summary").click()
    page.locator("#bell .note").first.get_by_role("button", name="Dismiss").click()
    expect(page.get_by_test_id("bell-count")).to_have_text("0")
    with redis_fleet.factory() as session:
        assert session.scalar(select(func.count()).select_from(InAppNotification).where(
            InAppNotification.dismissed.is_(False),
            InAppNotification.metadata_["notification_uuid"].as_string() == uuid)) == 0


def test_history_attempts_redeliver_and_rotate_the_secret(page, ui, people, redis_fleet,
                                                         receiver):
    receiver.statuses = [500]
    sign_in(page, ui, people.tokens[people.admin])
    first_secret = create_webhook(page, ui, people.repository, receiver.url, "History hook")
    [uuid] = [n.uuid for n in _notifications(redis_fleet, people.repository)]
    redis_fleet.producer.publish(people.repository, "repo_push", {"updated_tags": ["v1"]})
    redis_fleet.wait_for_state(uuid, {"failed"}, count=1, timeout_s=60)

    page.goto(settings_url(ui, people.repository))
    row(page, "History hook").get_by_role("link", name="History").click()
    expect(page.get_by_role("heading", name="Delivery history")).to_be_visible()
    expect(page.locator("table.deliveries")).to_contain_text("failed")
    page.get_by_role("link", name="Attempts").first.click()
    attempts = page.locator("table.attempts tbody tr")
    expect(attempts).to_have_count(3)
    expect(attempts.first).to_contain_text("500")
    expect(page.locator("pre.payload")).to_contain_text('"updated_tags"')

    receiver.statuses = [200]
    with page.expect_navigation():  # the form posts, then comes back here: wait for both
        page.get_by_role("button", name="Send again").click()
    redis_fleet.wait_for_state(uuid, {"delivered"}, count=1, timeout_s=30)
    page.reload()
    expect(page.locator(".facts")).to_contain_text("delivered")

    page.goto(settings_url(ui, people.repository))
    row(page, "History hook").get_by_role("link", name="Secret").click()
    expect(page.locator("#secret")).not_to_have_value(first_secret)
    page.get_by_role("button", name="Reveal").click()
    expect(page.locator("#secret")).to_have_value(first_secret)
    page.get_by_role("button", name="Rotate the secret").click()
    expect(page.get_by_text("The old secret still signs every delivery for 24 hours")).to_be_visible()
    rotated = page.locator("#secret").input_value()
    assert rotated.startswith("whsec_") and rotated != first_secret
    assert redis_fleet.notification(uuid).config["previous_secret"] == first_secret


def test_redeliver_since_counts_first(page, ui, people, redis_fleet, receiver):
    receiver.statuses = [500]
    sign_in(page, ui, people.tokens[people.admin])
    create_webhook(page, ui, people.repository, receiver.url, "Bulk hook")
    [uuid] = [n.uuid for n in _notifications(redis_fleet, people.repository)]
    for tag in ("v1", "v2"):
        redis_fleet.producer.publish(people.repository, "repo_push", {"updated_tags": [tag]})
    redis_fleet.wait_for_state(uuid, {"failed"}, count=2, timeout_s=60)

    receiver.statuses = [200]
    page.goto(f"{ui}/repository/{people.repository}/notification/{uuid}/history")
    page.get_by_role("button", name="Count them…").click()
    expect(page.get_by_text("2 failed or skipped deliveries")).to_be_visible()
    page.get_by_role("button", name="Send 2 again").click()
    expect(page.get_by_text("2 deliveries sent again.")).to_be_visible()
    redis_fleet.wait_for_state(uuid, {"delivered"}, count=2, timeout_s=30)


def test_a_form_post_without_the_csrf_token_changes_nothing(page, ui, people, redis_fleet,
                                                           receiver):
    sign_in(page, ui, people.tokens[people.admin])
    create_webhook(page, ui, people.repository, receiver.url, "Kept hook")
    [uuid] = [n.uuid for n in _notifications(redis_fleet, people.repository)]
    base = f"{ui}/repository/{people.repository}/notification/{uuid}"

    for path, form in [("/delete", {}), ("/delete", {"csrf_token": "forged"}),
                       ("/edit", {"webhook.url": "http://127.0.0.1:1/other"})]:
        answer = page.request.post(base + path, form=form, max_redirects=0)
        assert answer.status == 403, (path, answer.status)
        assert "security token" in answer.text()
    kept = redis_fleet.notification(uuid)
    assert kept.config["url"] == receiver.url
    assert count_notifications(redis_fleet, people.repository) == 1

    other = seed_people(redis_fleet.factory)  # another repository's uuid in the URL: 404
    sign_in(page, ui, other.tokens[other.admin])
    page.goto(f"{ui}/repository/{other.repository}/notification/{uuid}/history")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()


def test_email_is_confirmed_through_the_form_against_a_real_smtp_server(page, ui, people, smtp):
    sign_in(page, ui, people.tokens[people.admin])
    page.goto(f"{ui}/repository/{people.repository}/notification/new")
    page.get_by_label("Method", exact=True).select_option("email")
    address = f"ops-{people.admin}@example.com"
    page.get_by_label("E-mail address", exact=True).fill(address)
    page.get_by_role("button", name="Create notification").click()
    expect(page.locator("#email-email-error")).to_contain_text("not authorized")

    before = len(smtp.inbox.messages)
    page.get_by_role("button", name="Send confirmation").click()
    expect(page.locator("#email-state")).to_contain_text("Waiting for confirmation")
    wait_until(lambda: len(smtp.inbox.messages) > before)
    mail = smtp.inbox.messages[-1]
    assert mail["To"] == address
    link = re.search(r"https?://\S+/authrepoemail\?code=\S+", mail.get_content()).group(0)
    confirm_url = ui + link[link.index("/authrepoemail"):]  # the link names the registry's host

    other = page.context.new_page()
    other.goto(confirm_url)
    expect(other.get_by_role("heading", name="E-mail address authorized")).to_be_visible()
    other.close()

    expect(page.locator("#email-state")).to_contain_text("Confirmed")  # the form polls
    page.get_by_label("Title", exact=True).fill("Mail the team")
    page.get_by_role("button", name="Create notification").click()
    expect(row(page, "Mail the team")).to_contain_text(address)


def test_phone_width_page_is_usable(browser, ui, people, tmp_path):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    try:
        sign_in(page, ui, people.tokens[people.admin])
        page.goto(f"{ui}/repository/{people.repository}/notification/new")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the form scrolls sideways on a phone ({width} px)"
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        focused = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert focused != "none"
    finally:
        context.close()


# --- helpers ----------------------------------------------------------------------------------

def _notifications(fleet, repository: str) -> list[Notification]:
    with fleet.factory() as session:
        return list(session.scalars(select(Notification)
                                    .where(Notification.repository == repository)))

