"""Signing in and out: with a user's API token, or a single-use link from `notifier ui-link`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from notifier.api.deps import SessionDep, SettingsDep
from notifier.errors import InvalidInput, NotFound
from notifier.models import User
from notifier.ui.sessions import end_session, start_session, use_signin_link, user_of_token
from notifier.ui.web import (
    SESSION_COOKIE,
    SIGNIN_CSRF_COOKIE,
    FormDep,
    PosterDep,
    UiRoute,
    csrf_matches,
    local_path,
    new_signin_csrf,
    redirect,
    render,
)

router = APIRouter(route_class=UiRoute, include_in_schema=False)


def _signin_page(request: Request, *, next_url: str, error: str | None = None,
                 status: int = 200) -> Response:
    token = new_signin_csrf()
    response = render(request, "signin.html", status=status, viewer=None, next_url=next_url,
                      error=error, csrf_token=token)
    # Before a session exists, the form's token is checked against this cookie (double submit).
    response.set_cookie(SIGNIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/signin")
    return response


def _signed_in(request: Request, session, user: User, settings, next_url: str) -> Response:
    cookie = start_session(session, user, ttl_s=settings.ui_session_ttl_s)
    response = redirect(local_path(next_url))
    response.set_cookie(SESSION_COOKIE, cookie, max_age=int(settings.ui_session_ttl_s),
                        httponly=True, samesite="lax", secure=request.url.scheme == "https",
                        path="/")
    response.delete_cookie(SIGNIN_CSRF_COOKIE, path="/signin")
    return response


@router.get("/signin")
def signin_form(request: Request, next: Annotated[str, Query()] = "/") -> Response:
    return _signin_page(request, next_url=local_path(next))


@router.post("/signin")
def signin(request: Request, form: FormDep, session: SessionDep,
           settings: SettingsDep) -> Response:
    next_url = local_path(form.get("next"))
    if not csrf_matches(request.cookies.get(SIGNIN_CSRF_COOKIE, ""), form.get("csrf_token")):
        return _signin_page(request, next_url=next_url, status=403,
                            error="The sign-in form was stale: try again")
    token = form.get("token", "")
    if not token.strip():
        return _signin_page(request, next_url=next_url, status=400,
                            error="Paste your token: `notifier token create --user NAME` "
                                  "makes one")
    try:
        user = user_of_token(session, token)
    except (InvalidInput, NotFound):
        return _signin_page(request, next_url=next_url, status=401,
                            error="That token is not valid: create one with "
                                  "`notifier token create --user NAME`")
    return _signed_in(request, session, user, settings, next_url)


@router.get("/signin/link")
def signin_link_page(request: Request, code: Annotated[str, Query()] = "") -> Response:
    """A button, not a sign-in: link previews and scanners must not spend the code."""
    return render(request, "signin_link.html", viewer=None, code=code)


@router.post("/signin/link")
def signin_with_link(request: Request, form: FormDep, session: SessionDep,
                     settings: SettingsDep) -> Response:
    user = use_signin_link(session, form.get("code", ""))
    return _signed_in(request, session, user, settings, "/")


@router.post("/signout")
def signout(request: Request, viewer: PosterDep, session: SessionDep) -> Response:
    end_session(session, request.cookies.get(SESSION_COOKIE))
    response = redirect("/signin")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
