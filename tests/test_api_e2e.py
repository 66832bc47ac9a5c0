"""End to end over HTTP, against a real uvicorn process and real workers (PostgreSQL + Redis):
create a webhook, publish, read the delivery history, rotate the secret."""

from __future__ import annotations

import time

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from notifier.api.tokens import create_token
from notifier.db import transaction
from notifier.directory import save_user
from tests.fleet import FLEET_SETTINGS

pytestmark = pytest.mark.fleet

SERVICE = {"Authorization": f"Bearer {FLEET_SETTINGS['NOTIFIER_SERVICE_TOKENS']}"}
TIMEOUT_S = 10


def _owner_headers(fleet, repository: str) -> dict[str, str]:
    """A token for the user whose namespace holds ``repository`` (an admin of it)."""
    with transaction(fleet.factory) as session:
        owner = save_user(session, repository.split("/")[0]).name
        token = create_token(session, user=owner)
    return {"Authorization": f"Bearer {token}"}


def _wait_for_deliveries(url: str, headers: dict, count: int, timeout_s: float = 30) -> list:
    deadline = time.monotonic() + timeout_s
    while True:
        page = requests.get(url, headers=headers, timeout=TIMEOUT_S).json()["deliveries"]
        if sum(d["state"] == "delivered" for d in page) >= count or time.monotonic() > deadline:
            return page
        time.sleep(0.2)


def test_webhook_over_http_from_creation_to_rotated_secret(redis_fleet, receiver, unique_repo):
    api = redis_fleet.start_api()
    owner = _owner_headers(redis_fleet, unique_repo)
    base = f"{api}/api/v1/repository/{unique_repo}/notification"

    created = requests.post(f"{base}/", headers=owner, timeout=TIMEOUT_S, json={
        "event": "repo_push", "method": "webhook", "config": {"url": receiver.url},
        "eventConfig": {}, "title": "CI hook"})
    assert created.status_code == 201, created.text
    uuid = created.json()["uuid"]
    secret = requests.get(f"{base}/{uuid}/secret", headers=owner, timeout=TIMEOUT_S).json()["secret"]

    event = {"repository": unique_repo, "event": "repo_push", "data": {"updated_tags": ["v1"]}}
    published = requests.post(f"{api}/api/v1/events", headers=SERVICE, json=event,
                              timeout=TIMEOUT_S)
    assert published.status_code == 202, published.text
    [first] = receiver.wait_for(1)
    Webhook(secret).verify(first.body, first.headers)

    [delivery] = _wait_for_deliveries(f"{base}/{uuid}/deliveries", owner, 1)
    detail = requests.get(f"{base}/{uuid}/deliveries/{delivery['id']}", headers=owner,
                          timeout=TIMEOUT_S).json()
    assert detail["state"] == "delivered" and detail["id"] == first.headers["webhook-id"]
    assert [(a["number"], a["status_code"]) for a in detail["attempts"]] == [(1, 200)]

    rotated = requests.post(f"{base}/{uuid}/secret", headers=owner, timeout=TIMEOUT_S).json()
    assert rotated["secret"] != secret
    requests.post(f"{api}/api/v1/events", headers=SERVICE, json=event, timeout=TIMEOUT_S)
    second = receiver.wait_for(2)[1]
    assert len(second.headers["webhook-signature"].split(" ")) == 2
    for key in (rotated["secret"], secret):  # receivers on either secret accept it
        Webhook(key).verify(second.body, second.headers)
