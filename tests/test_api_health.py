"""Health checks answer without a login, so they say nothing an outsider could use."""

from __future__ import annotations

from fastapi.testclient import TestClient

from config import load_settings
from notifier.api import create_app


def test_readyz_does_not_show_the_database_error(tmp_path):
    settings = load_settings(
        database_url="postgresql://secretuser:hunter2@127.0.0.1:1/notifier?connect_timeout=2",
        broker_url=f"filesystem://{tmp_path / 'broker'}")
    client = TestClient(create_app(settings))

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["error_message"] == "database not ready (the API's log says why)"
    for leak in ("secretuser", "hunter2", "127.0.0.1", "connection"):
        assert leak not in response.text
