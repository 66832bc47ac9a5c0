"""The API under test: an app on its own PostgreSQL database with a directory of personas.

Personas (api.md's permission table):
- ``owner``: user alice, whose namespace holds ``alice/app`` (admin of it by name)
- ``org_admin``: oscar, admin of organization acme (admin of every ``acme/...``)
- ``team_admin``: tina, member of team acme/ops, which holds ``admin`` on ``acme/web``
- ``reader``: rita, who holds ``read`` on ``acme/web`` (and nothing on ``alice/app``)
- ``service``: the registry's service token
- ``none``: no token at all
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.testclient import TestClient

from config import Settings, load_settings
from notifier.api import create_app
from notifier.api.tokens import create_token
from notifier.db import transaction
from notifier.directory import grant, save_organization, save_team, save_user

SERVICE_TOKEN = "service-token-for-tests-0123456789"
USERS = {"owner": "alice", "org_admin": "oscar", "team_admin": "tina", "reader": "rita"}


@dataclass
class Api:
    client: TestClient
    settings: Settings
    tokens: dict[str, str]

    def headers(self, persona: str) -> dict[str, str]:
        token = self.tokens.get(persona)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def call(self, persona: str, method: str, path: str, **kwargs):
        return self.client.request(method, path, headers=self.headers(persona), **kwargs)


def api_settings(database_url: str, broker_url: str) -> Settings:
    return load_settings(
        database_url=database_url, broker_url=broker_url, service_tokens=SERVICE_TOKEN,
        allowed_networks="127.0.0.0/8", server_hostname="registry.example.com",
        preferred_url_scheme="https")


def seed_directory(factory) -> dict[str, str]:
    """The personas' directory entries; returns their tokens (and the service's)."""
    with transaction(factory) as session:
        for name in USERS.values():
            save_user(session, name, email=f"{name}@example.com")
        save_organization(session, "acme", admins=["oscar"])
        save_team(session, "acme", "ops", members=["tina"])
        grant(session, "acme/web", "admin", team="acme/ops")
        grant(session, "acme/web", "read", user="rita")
        tokens = {persona: create_token(session, user=name) for persona, name in USERS.items()}
    return {**tokens, "service": SERVICE_TOKEN}


def make_api(settings: Settings, tokens: dict[str, str]) -> Api:
    return Api(TestClient(create_app(settings)), settings, tokens)
