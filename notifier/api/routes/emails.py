"""E-mail authorization (as Quay): which addresses may receive a repository's notifications.

A repository admin asks for an address (POST); the address receives a single-use link
``<scheme>://<host>/authrepoemail?code=<code>``; opening it (no login) confirms the address.
Codes expire (``email_code_ttl_s``) and are stored only as hashes (see notifier.email_auth).
"""

from __future__ import annotations

import html
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from notifier.api.deps import (PrincipalDep, SessionDep, SettingsDep, rate_limit,
                               require_repository_admin)
from notifier.api.errors import ApiError
from notifier.directory import namespace_exists
from notifier.email_auth import authorize, confirm, get_authorization, normalize_address
from notifier.errors import DeliveryError, InvalidInput, NotFound
from notifier.events import split_repository
from notifier.mailer import Mailer
from notifier.models import AuthorizedEmail

router = APIRouter(tags=["e-mail authorization"])

AUTHORIZED_EMAIL = "/api/v1/repository/{repository:path}/authorizedemail/{email}"
PAGE = ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        '</head>\n<body><h1>{title}</h1><p>{message}</p></body></html>\n')


def get_mailer(request: Request) -> Mailer:
    """The app's mailer: ``app.state.mailer`` when set, else one built from the settings once."""
    state = request.app.state
    mailer = getattr(state, "mailer", None)
    if mailer is None:
        mailer = state.mailer = Mailer.from_settings(state.settings)
    return mailer


MailerDep = Annotated[Mailer, Depends(get_mailer)]


def authorization_view(record: AuthorizedEmail) -> dict[str, Any]:
    """Quay's view of an authorization: the repository's name and namespace apart, no code."""
    namespace, name = split_repository(record.repository)
    return {"email": record.email, "repository": name, "namespace": namespace,
            "confirmed": record.confirmed}


@router.get(AUTHORIZED_EMAIL)
def get_authorized_email(repository: str, email: str, session: SessionDep,
                         principal: PrincipalDep) -> dict[str, Any]:
    """Whether ``email`` was asked for and confirmed for the repository; 404 when never asked.

    Repository admins only.
    """
    require_repository_admin(session, principal, repository)
    return authorization_view(get_authorization(session, repository, email))


@router.post(AUTHORIZED_EMAIL)
def authorize_email(repository: str, email: str, session: SessionDep, principal: PrincipalDep,
                    settings: SettingsDep, mailer: MailerDep) -> dict[str, Any]:
    """Record ``email`` for the repository and mail it a fresh confirmation link.

    An address already confirmed gets no mail. 503 when the mail cannot be sent; nothing is
    stored then. Repository admins only, for a namespace of the directory; 429 past the hourly
    limits per requester and per address.
    """
    require_repository_admin(session, principal, repository)
    namespace, _ = split_repository(repository)
    if not namespace_exists(session, namespace):
        raise NotFound(f"no user or organization {namespace!r} in the directory")
    rate_limit(session, "confirmation e-mails asked for by one user",
               settings.email_confirmations_per_requester_per_hour, principal.name)
    rate_limit(session, "confirmation e-mails to one address",
               settings.email_confirmations_per_address_per_hour, normalize_address(email))
    try:
        record = authorize(session, repository, email, settings=settings, mailer=mailer)
    except DeliveryError as exc:
        # Raising rolls the request's transaction back: no record without a mail.
        raise ApiError(503, f"The confirmation e-mail could not be sent ({exc.kind}); "
                            "nothing was stored") from None
    return authorization_view(record)


@router.get("/authrepoemail", response_class=HTMLResponse)
def confirm_email(session: SessionDep,
                  code: Annotated[str, Query(description="the code the e-mail's link carries")] = ""
                  ) -> HTMLResponse:
    """Confirm the address whose e-mail carried this link (no login); answers a short page.

    400 when the code has expired, 404 when it is unknown or already used.
    """
    try:
        record = confirm(session, code)
    except InvalidInput as exc:
        return html_page(400, "E-mail address not authorized", str(exc))
    except NotFound as exc:
        return html_page(404, "E-mail address not authorized", str(exc))
    return html_page(200, "E-mail address authorized",
                     f"{record.email} is now authorized for {record.repository}")


def html_page(status: int, title: str, message: str) -> HTMLResponse:
    """A minimal page with everything escaped, never cached (it answers a one-time link)."""
    body = PAGE.format(title=html.escape(title), message=html.escape(message))
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
