"""What every UI page shares: templates, the signed-in user, CSRF, HTML error pages, headers.

Pages answer HTML, never the API's JSON errors: a route of ``UiRoute`` turns the domain's
errors into an error page with the same status the API would answer (403, 404, 400).
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Annotated, Any, Callable
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy.orm import Session

from notifier.api.deps import SessionDep, require_repository_admin
from notifier.api.errors import ApiError
from notifier.api.tokens import Principal
from notifier.errors import InvalidInput, NotFound
from notifier.inapp import count_undismissed, list_inbox
from notifier.methods.webhook import ROTATION_OVERLAP
from notifier.models import Notification
from notifier.notifications import get_notification
from notifier.ui import present
from notifier.ui.sessions import SignedIn, find_session

HERE = Path(__file__).parent
SESSION_COOKIE = "notifier_session"
SIGNIN_CSRF_COOKIE = "notifier_signin_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
BELL_ITEMS = 10
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                                "form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
templates.globals.update(present.TEMPLATE_HELPERS)
templates.globals["rotation_overlap_h"] = int(ROTATION_OVERLAP.total_seconds() // 3600)


class SignInRequired(Exception):
    """No valid session: the page answers with a redirect to /signin."""


class UiRoute(APIRoute):
    """Every UI route: the domain's errors become HTML error pages, not JSON."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/signin?{urlencode({'next': target})}", 303)
            except ApiError as exc:
                return error_page(request, exc.status, str(exc))
            except NotFound as exc:
                return error_page(request, 404, str(exc))
            except InvalidInput as exc:
                return error_page(request, 400, str(exc))
        return route


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    titles = {400: "Bad request", 403: "Not allowed", 404: "Not found", 503: "Unavailable"}
    return render(request, "error.html", status=status,
                  title=titles.get(status, "Error"), message=message, viewer=None)


def render(request: Request, template: str, *, status: int = 200, viewer: "Viewer | None",
           **context: Any) -> HTMLResponse:
    """A page with the security headers; ``viewer`` fills the header (bell, sign-out)."""
    body = templates.get_template(template).render(request=request, viewer=viewer, **context)
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def local_path(url: str | None, default: str = "/") -> str:
    """``url`` if it is a path on this site, else ``default``: no open redirect via ``next``."""
    if url and url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return default


# --- who is signed in --------------------------------------------------------------------------

class Viewer:
    """The signed-in user of one request, with their bell (loaded once, when a page asks)."""

    def __init__(self, session: Session, signed_in: SignedIn):
        self.session = session
        self.name = signed_in.user
        self.csrf_token = signed_in.csrf_token
        self._bell: tuple[int, list[dict[str, Any]]] | None = None

    @property
    def principal(self) -> Principal:
        return Principal("user", self.name)

    def bell(self) -> tuple[int, list[dict[str, Any]]]:
        """(count of undismissed in-app notifications, the newest of them, presented)."""
        if self._bell is None:
            items, _ = list_inbox(self.session, self.name, limit=BELL_ITEMS, dismissed=False)
            self._bell = (count_undismissed(self.session, self.name),
                          [present.inbox_item(item) for item in items])
        return self._bell


def get_viewer(request: Request, session: SessionDep) -> Viewer:
    signed_in = find_session(session, request.cookies.get(SESSION_COOKIE))
    if signed_in is None:
        raise SignInRequired()
    return Viewer(session, signed_in)


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


# --- forms and CSRF ----------------------------------------------------------------------------

async def form_data(request: Request) -> dict[str, str]:
    """An url-encoded form body as a dict (the last value of a repeated field wins)."""
    if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        return {}
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace"),
                          keep_blank_values=True))


FormDep = Annotated[dict[str, str], Depends(form_data)]


def csrf_matches(expected: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(expected.encode(), sent.encode())


def require_csrf(request: Request, viewer: ViewerDep, form: FormDep) -> Viewer:
    """403 unless the form (or the X-CSRF-Token header) carries the session's CSRF token."""
    sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not csrf_matches(viewer.csrf_token, sent):
        raise ApiError(403, "This form is missing its security token or it is stale: "
                            "reload the page and try again")
    return viewer


PosterDep = Annotated[Viewer, Depends(require_csrf)]


def new_signin_csrf() -> str:
    return secrets.token_urlsafe(24)


# --- repositories and notifications, as the API checks them ------------------------------------

def admin_repository(session: Session, viewer: Viewer, repository: str) -> str:
    """``repository`` once the viewer is one of its admins (403 page otherwise)."""
    require_repository_admin(session, viewer.principal, repository)
    return repository


def admin_notification(session: Session, viewer: Viewer, repository: str,
                       uuid: str) -> Notification:
    """The notification ``uuid`` of ``repository`` for one of its admins; another
    repository's uuid is a 404, exactly as one that does not exist."""
    admin_repository(session, viewer, repository)
    notification = get_notification(session, uuid)
    if notification.repository != repository:
        raise NotFound(f"no notification {uuid}")
    return notification


def repository_url(repository: str, **query: str) -> str:
    """The settings tab of a repository (Quay's URL), with extra query parameters."""
    return f"/repository/{quote(repository)}?{urlencode({'tab': 'settings', **query})}"


def notification_url(notification: Notification, rest: str = "") -> str:
    return f"/repository/{quote(notification.repository)}/notification/{notification.uuid}{rest}"
