"""The web UI, served by the API's app: sign-in, a repository's notification settings, delivery
history and the bell. A thin layer over the same domain functions and permission rules as the
API; pages are Jinja2 templates, with a little plain JavaScript for in-place updates."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles


def install_ui(app: FastAPI) -> None:
    """Add the UI's pages and its static files to ``app``."""
    from notifier.ui import auth, history, inbox, repository
    from notifier.ui.web import HERE, UiRoute

    for module in (auth, inbox, history, repository):
        app.include_router(module.router)
    # Last: its path takes everything under /repository/ that no other page took.
    settings_tab = APIRouter(route_class=UiRoute, include_in_schema=False)
    settings_tab.get("/repository/{repository:path}")(repository.settings_page)
    app.include_router(settings_tab)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
