"""The bell: the signed-in user's in-app notifications, and dismissing one."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from notifier.api.deps import SessionDep
from notifier.inapp import list_inbox, set_dismissed
from notifier.ui import present
from notifier.ui.web import FormDep, PosterDep, UiRoute, ViewerDep, local_path, redirect, render

router = APIRouter(route_class=UiRoute, include_in_schema=False)


@router.get("/notifications")
def inbox_page(request: Request, session: SessionDep, viewer: ViewerDep) -> Response:
    """Every in-app notification of the user, newest first (the bell shows the newest few)."""
    items, more = list_inbox(session, viewer.name, limit=100)
    return render(request, "inbox.html", viewer=viewer, more=more,
                  items=[{**present.inbox_item(item), "dismissed": item["dismissed"]}
                         for item in items])


@router.post("/notifications/{notification_id}/dismiss")
def dismiss(notification_id: str, form: FormDep, session: SessionDep,
            viewer: PosterDep) -> Response:
    set_dismissed(session, viewer.name, notification_id, True)
    return redirect(local_path(form.get("next")))


@router.get("/")
def home(request: Request, viewer: ViewerDep) -> Response:
    """Open a repository's settings by name."""
    wanted = request.query_params.get("repository", "").strip().strip("/")
    if wanted:
        return redirect(present.repository_link(wanted))
    return render(request, "home.html", viewer=viewer)
