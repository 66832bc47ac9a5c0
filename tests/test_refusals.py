"""Every network-policy refusal and the e-mail refusal carry their reason, Quay's words first, the
same in the command line (one error line), in the API (``error_message`` and ``detail``) and in
the web UI (next to the field); and a delivery refused by a worker whose setting differs from the
command line's says what the worker had."""

from __future__ import annotations

import html
import json
import subprocess

import pytest

from tests.api_seed import notification_path
from tests.api_support import api_settings, make_api
from tests.cli_support import COMMAND, Cli, single_error_line, succeeded
from tests.conftest import REDIS_SERVER, create_database, drop_database

POLICY = "which the network policy refuses (NOTIFIER_ALLOWED_NETWORKS allows networks)"
NOT_AUTHORIZED = ("The specified e-mail address is not authorized to receive notifications for "
                  "this repository")

# name: (method, config, the whole message)
REFUSALS = {
    "loopback": ("webhook", {"url": "http://127.0.0.1:8900/"},
                 f"Invalid webhook URL: 127.0.0.1 is a loopback address, {POLICY}"),
    "loopback by name": ("webhook", {"url": "http://localhost:8900/"},
                         f"Invalid webhook URL: localhost resolves to 127.0.0.1, a loopback "
                         f"address, {POLICY}"),
    "private": ("webhook", {"url": "http://10.1.2.3/hook"},
                f"Invalid webhook URL: 10.1.2.3 is a private address, {POLICY}"),
    "link-local": ("webhook", {"url": "http://169.254.7.7/hook"},
                   f"Invalid webhook URL: 169.254.7.7 is a link-local address, {POLICY}"),
    "metadata": ("webhook", {"url": "http://169.254.169.254/latest/meta-data"},
                 f"Invalid webhook URL: 169.254.169.254 is a cloud metadata address, {POLICY}"),
    "IPv6-mapped": ("webhook", {"url": "http://[::ffff:127.0.0.1]:8900/"},
                    f"Invalid webhook URL: ::ffff:127.0.0.1 is 127.0.0.1 in IPv6 form "
                    f"(IPv4-mapped), a loopback address, {POLICY}"),
    "not http": ("webhook", {"url": "ftp://hooks.example.com/quay"},
                 "Invalid webhook URL: it must start with http:// or https://"),
    "slack not https": ("slack", {"url": "http://hooks.slack.com/services/T0/B0/SECRET"},
                        "Invalid Slack Callback URL: it must start with https://"),
    "slack private": ("slack", {"url": "https://10.0.0.7/services/T0/B0/SECRET"},
                      f"Invalid Slack Callback URL: 10.0.0.7 is a private address, {POLICY}"),
    "e-mail not confirmed": ("email", {"email": "ops@example.com"},
                             f"{NOT_AUTHORIZED}: ops@example.com is not confirmed for acme/web "
                             f"yet; 'notifier email authorize acme/web ops@example.com' mails "
                             f"it a confirmation link, and opening the link (or 'notifier email "
                             f"confirm CODE' with its code) confirms it"),
}


@pytest.fixture
def cli(tmp_path) -> Cli:
    made = Cli(tmp_path)
    made.migrate()
    return made


@pytest.mark.parametrize(("method", "config", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_the_command_line_says_why_in_one_line(cli, method, config, message):
    result = cli.run("notification", "add", "acme/web", "--event", "repo_push", "--method",
                     method, "--config", json.dumps(config))

    assert single_error_line(result) == f"error: {message}"
    assert "SECRET" not in result.stderr


@pytest.fixture
def strict_api(api_template, redis_db):
    """The API with the network policy as shipped: NOTIFIER_ALLOWED_NETWORKS empty."""
    template, tokens = api_template
    database = create_database("notifier_api_strict", template=template)
    settings = api_settings(database, f"{REDIS_SERVER}/{redis_db}").model_copy(
        update={"allowed_networks": ()})
    made = make_api(settings, tokens)
    yield made
    made.client.app.state.engine.dispose()
    drop_database(database)


@pytest.mark.parametrize(("method", "config", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_the_api_says_why_in_error_message_and_detail(strict_api, method, config, message):
    response = strict_api.call("org_admin", "POST", notification_path("acme/web"), json={
        "event": "repo_push", "method": method, "config": config, "eventConfig": {}})

    assert response.status_code == 400
    body = response.json()
    assert body["error_message"] == body["detail"] == message
    assert "SECRET" not in response.text


@pytest.mark.parametrize(("method", "config", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_the_web_ui_says_why_next_to_the_field(strict_api, method, config, message):
    from tests.test_ui_pages import field_errors, sign_in

    csrf = sign_in(strict_api, "org_admin")
    form = {f"{method}.{key}": value for key, value in config.items()}
    answer = strict_api.client.post("/repository/acme/web/notification/new", data={
        "csrf_token": csrf, "event": "repo_push", "method": method, **form})

    assert answer.status_code == 400
    [(key, _)] = config.items()
    errors = {field: html.unescape(text) for field, text in field_errors(answer.text).items()}
    assert errors == {f"{method}-{key}": message}  # the form shows what was typed, to fix it


# --- a worker whose setting differs from the command line's ---------------------------------------

@pytest.fixture(scope="module")
def strict_fleet(tmp_path_factory):
    """Workers on the embedded default with NOTIFIER_ALLOWED_NETWORKS empty."""
    from tests.fleet import running_fleet

    workdir = tmp_path_factory.mktemp("strict-fleet")
    env = {"NOTIFIER_DATABASE_URL": f"sqlite:///{workdir / 'notifier.db'}",
           "NOTIFIER_BROKER_URL": f"filesystem://{workdir / 'broker'}",
           "NOTIFIER_ALLOWED_NETWORKS": ""}
    with running_fleet(workdir, env) as fleet:
        yield fleet


@pytest.mark.fleet
def test_a_refused_delivery_names_the_setting_the_worker_had(strict_fleet, receiver):
    """The notification is created where loopback is allowed, the workers do not allow it: the
    delivery's error says what the worker runs with, and nothing reaches the receiver."""
    def notifier(*args: str) -> str:
        env = {**strict_fleet.env, "NOTIFIER_ALLOWED_NETWORKS": "127.0.0.0/8"}
        return succeeded(subprocess.run([*COMMAND, *args], env=env, cwd=strict_fleet.workdir,
                                         capture_output=True, text=True, timeout=60))

    uuid = notifier("notification", "add", "acme/app", "--event", "repo_push", "--method",
                    "webhook", "--config", json.dumps({"url": receiver.url})).strip()
    notifier("publish", "acme/app", "repo_push", "--data", '{"updated_tags": ["latest"]}')

    [delivery] = strict_fleet.wait_for_state(uuid, {"retrying", "failed"}, timeout_s=60)
    assert delivery.last_error == (
        "127.0.0.1 is a loopback address, which the network policy refuses (this worker has "
        "NOTIFIER_ALLOWED_NETWORKS empty; set it where the workers run)")
    [listed] = json.loads(notifier("deliveries", "--notification", uuid, "--json"))
    assert listed["last_error"] == delivery.last_error
    assert receiver.requests == []
