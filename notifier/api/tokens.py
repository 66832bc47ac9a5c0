"""API tokens: made once, shown once, stored as a SHA-256 only."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.directory import find_user
from notifier.models import ApiToken

TOKEN_PREFIX = "ntf_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a service (the registry) or a user of the directory."""

    kind: str  # "service" | "user"
    name: str

    @property
    def is_service(self) -> bool:
        return self.kind == "service"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, *, service: str | None = None, user: str | None = None) -> str:
    """A new token for a service name or a directory user; returns it in clear, once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    if user is not None:
        owner = find_user(session, user)
        session.add(ApiToken(token_hash=hash_token(token), kind="user", name=owner.name,
                             user_id=owner.id))
    else:
        session.add(ApiToken(token_hash=hash_token(token), kind="service", name=service))
    session.flush()
    return token


def authenticate(session: Session, token: str, service_token_hashes: frozenset[str]) -> Principal | None:
    """The principal a bearer token stands for, or None."""
    digest = hash_token(token)
    if digest in service_token_hashes:
        return Principal("service", "settings")
    found = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).first()
    return Principal(found.kind, found.name) if found else None
