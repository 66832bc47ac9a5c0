"""Web UI sign-in: server-side sessions and single-use sign-in links.

The browser holds a random session token; the database holds only its SHA-256 (as for API
tokens), so a copy of the database signs no one in. Each session has its own CSRF token, which
every form carries back.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from notifier.api.tokens import authenticate, hash_token
from notifier.directory import find_user
from notifier.errors import InvalidInput, NotFound
from notifier.models import UiSession, UiSigninLink, User, utcnow

TOKEN_BYTES = 32


@dataclass(frozen=True)
class SignedIn:
    """Who a browser's session stands for, and the token its forms must carry."""

    user: str
    csrf_token: str


def start_session(session: Session, user: User, *, ttl_s: float,
                  now: datetime | None = None) -> str:
    """A new session for ``user``; returns the cookie value (shown this once)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.execute(delete(UiSession).where(UiSession.expires_at <= now))  # keep the table small
    session.add(UiSession(token_hash=hash_token(token), user_id=user.id,
                          csrf_token=secrets.token_urlsafe(TOKEN_BYTES),
                          created_at=now, expires_at=now + timedelta(seconds=ttl_s)))
    session.flush()
    return token


def find_session(session: Session, token: str | None,
                 now: datetime | None = None) -> SignedIn | None:
    """The signed-in user of a cookie value, or None (unknown, expired, or no cookie)."""
    if not token:
        return None
    found = session.execute(
        select(User.name, UiSession.csrf_token, UiSession.expires_at)
        .join(User, User.id == UiSession.user_id)
        .where(UiSession.token_hash == hash_token(token))).first()
    if found is None or found.expires_at <= (now or utcnow()):
        return None
    return SignedIn(found.name, found.csrf_token)


def end_session(session: Session, token: str | None) -> None:
    """Sign out: the session's row goes, so the cookie is worth nothing even if kept."""
    if token:
        session.execute(delete(UiSession).where(UiSession.token_hash == hash_token(token)))


def user_of_token(session: Session, api_token: str) -> User:
    """The directory user an API token (``notifier token create --user``) belongs to."""
    principal = authenticate(session, api_token.strip(), frozenset())
    if principal is None or principal.is_service:
        raise InvalidInput("That is not a user token: create one with "
                           "`notifier token create --user NAME`")
    return find_user(session, principal.name)


def create_signin_link(session: Session, user_name: str, *, ttl_s: float,
                       now: datetime | None = None) -> str:
    """A single-use sign-in code for ``user_name``, valid ``ttl_s`` seconds."""
    user = find_user(session, user_name)
    code = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(UiSigninLink(code_hash=hash_token(code), user_id=user.id,
                             expires_at=(now or utcnow()) + timedelta(seconds=ttl_s)))
    session.flush()
    return code


def use_signin_link(session: Session, code: str, now: datetime | None = None) -> User:
    """The user a sign-in code was made for; the code is spent whatever happens next."""
    link = session.scalars(select(UiSigninLink).where(
        UiSigninLink.code_hash == hash_token(code or "")).with_for_update()).first()
    if link is None:
        raise NotFound("This sign-in link is unknown or was already used: "
                       "run `notifier ui-link USER` for a new one")
    session.delete(link)
    session.flush()
    if link.expires_at <= (now or utcnow()):
        raise InvalidInput("This sign-in link has expired: run `notifier ui-link USER` "
                           "for a new one")
    return session.get(User, link.user_id)
