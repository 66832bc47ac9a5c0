"""Secrets stay secret: a failing webhook with a token in its URL and a failing Slack
notification leave their secrets in no log, no ledger row and no Flower task argument."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import text

from tests.fleet import free_port

pytestmark = pytest.mark.fleet

WEBHOOK_PASSWORD = "Pa55word0f7"
WEBHOOK_TOKEN = "tok3nInTheQuery9c1"
SLACK_SECRET = "sl4ckS3cretPathB2x"


def _ledger_text(fleet) -> str:
    with fleet.factory() as session:
        tables = [session.execute(text(f"SELECT * FROM {table}")).all()
                  for table in ("events", "deliveries", "attempts")]
    return repr(tables)


def test_secrets_appear_in_no_log_ledger_or_flower_task(redis_fleet, receiver, unique_repo):
    fleet = redis_fleet
    flower = fleet.start_flower()
    receiver.statuses = [500]
    port = receiver.server.server_port
    webhook = fleet.add_notification(
        unique_repo, f"http://hook:{WEBHOOK_PASSWORD}@127.0.0.1:{port}/in?token={WEBHOOK_TOKEN}")
    slack = fleet.add_notification(
        unique_repo, "", method="slack",
        config={"url": f"https://127.0.0.1:{free_port()}/services/T0/B0/{SLACK_SECRET}"})
    fleet.producer.publish(unique_repo, "repo_push", {"updated_tags": ["latest"]})

    fleet.wait_for_state(webhook.uuid, {"failed"})
    fleet.wait_for_state(slack.uuid, {"failed"})
    assert WEBHOOK_TOKEN in receiver.requests[0].path  # the secret really was used
    tasks = requests.get(f"{flower}/api/tasks", timeout=10).text
    assert "notifier.deliver" in tasks and webhook.uuid in tasks  # Flower saw the deliveries
    places = {
        "logs": "".join(fleet.log(name) for name in ("fanout", "delivery", "beat", "flower")),
        "ledger": _ledger_text(fleet),
        "flower": tasks,
    }
    secrets = [WEBHOOK_PASSWORD, WEBHOOK_TOKEN, SLACK_SECRET, webhook.config["secret"]]
    leaks = [(secret, place) for secret in secrets for place, found in places.items()
             if secret in found]
    assert leaks == []
