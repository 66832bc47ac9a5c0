"""API tokens: made once, shown once, stored as a SHA-256 only."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.directory import find_user
from notifier.errors import NotFound
from notifier.models import ApiToken, utcnow

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


def create_token(session: Session, *, service: str | None = None, user: str | None = None,
                 expires_in_s: float | None = None) -> str:
    """A new token for a service name or a directory user; returns it in clear, once.

    ``expires_in_s``: it stops working that long from now (never, when None).
    """
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(seconds=expires_in_s) if expires_in_s else None
    if user is not None:
        owner = find_user(session, user)
        session.add(ApiToken(token_hash=hash_token(token), kind="user", name=owner.name,
                             user_id=owner.id, expires_at=expires_at))
    else:
        session.add(ApiToken(token_hash=hash_token(token), kind="service", name=service,
                             expires_at=expires_at))
    session.flush()
    return token


def authenticate(session: Session, token: str, service_token_hashes: frozenset[str]) -> Principal | None:
    """The principal a bearer token stands for, or None (unknown, revoked or expired)."""
    digest = hash_token(token)
    if digest in service_token_hashes:
        return Principal("service", "settings")
    found = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).first()
    if found is None or (found.expires_at is not None and found.expires_at <= utcnow()):
        return None
    return Principal(found.kind, found.name)


def list_tokens(session: Session) -> list[dict[str, Any]]:
    """Every stored token as people may see it: id, kind, name, when made and when it expires
    (never the token, which is not stored)."""
    return [{"id": t.id, "kind": t.kind, "name": t.name,
             "created": t.created_at.isoformat(timespec="seconds"),
             "expires": t.expires_at.isoformat(timespec="seconds") if t.expires_at else None}
            for t in session.scalars(select(ApiToken).order_by(ApiToken.id))]


def revoke_token(session: Session, token_id: int) -> None:
    """Delete token ``token_id``: it stops working at once. NotFound when there is none."""
    found = session.get(ApiToken, token_id)
    if found is None:
        raise NotFound(f"no token with id {token_id}")
    session.delete(found)
    session.flush()
