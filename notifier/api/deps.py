"""What handlers depend on: the request's database session, the caller, the producer."""

from __future__ import annotations

from typing import Annotated, Iterator

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from config import Settings
from notifier.api.errors import ApiError
from notifier.api.tokens import Principal, authenticate
from notifier.directory import is_repository_admin
from notifier.producer import Producer
from notifier.ratelimit import Limit, take


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_producer(request: Request) -> Producer:
    return request.app.state.producer()


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, else rolled back."""
    with request.app.state.factory() as session, session.begin():
        yield session


# scope="function": commit before the response is sent, so a 2xx means the change is stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ProducerDep = Annotated[Producer, Depends(get_producer)]


def get_principal(request: Request, session: SessionDep) -> Principal:
    """The caller, from ``Authorization: Bearer <token>``; 401 without a valid one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    principal = None
    if scheme.lower() == "bearer" and token.strip():
        principal = authenticate(session, token.strip(), request.app.state.service_token_hashes)
    if principal is None:
        raise ApiError(401, "A valid bearer token is required", "invalid_token")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_service(principal: PrincipalDep) -> Principal:
    if not principal.is_service:
        raise ApiError(403, "This call needs a service token", "insufficient_scope")
    return principal


ServiceDep = Annotated[Principal, Depends(require_service)]


def require_user(principal: PrincipalDep) -> Principal:
    """The calling user; 403 for a service token."""
    if principal.is_service:
        raise ApiError(403, "This call needs a user's token", "insufficient_scope")
    return principal


UserDep = Annotated[Principal, Depends(require_user)]


def require_repository_admin(session: Session, principal: Principal, repository: str) -> None:
    """403 unless the caller is an admin of ``repository`` (api.md's rule)."""
    if principal.is_service or not is_repository_admin(session, principal.name, repository):
        raise ApiError(403, f"You must be an admin of repository {repository}",
                       "insufficient_scope")


def rate_limit(session: Session, what: str, count: int, key: str) -> None:
    """Count one use of an hourly limit (notifier.ratelimit); RateLimited answers 429."""
    take(session, Limit(what, count), key)
