"""How the pages show things: times, events with their filters, methods with their targets
(secrets masked by the methods themselves), in-app notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from notifier.events import EVENTS, get_event
from notifier.filters import level_threshold, severity_name
from notifier.inapp import DISABLED_KIND
from notifier.masking import mask
from notifier.methods import get_method

METHOD_TITLES = {"webhook": "Webhook POST", "slack": "Slack", "email": "E-mail",
                 "quay_notification": "In-app notification", "flowdock": "Flowdock",
                 "hipchat": "HipChat"}


def when(value: datetime | str | None) -> str:
    """A time as people read it, in UTC to the second; an em dash for none."""
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def event_title(name: str) -> str:
    event = EVENTS.get(name)
    return event.title if event else name


def event_filter(name: str, event_config: dict[str, Any]) -> str | None:
    """The notification's filter in words, or None."""
    if event_config.get("ref-regex"):
        return f"refs matching {event_config['ref-regex']}"
    if event_config.get("level") not in (None, ""):
        return f"severity {severity_name(level_threshold(event_config['level']))} or worse"
    return None


def method_target(method: str, config: dict[str, Any]) -> str:
    """Where a notification goes, as the masked view shows it."""
    shown = get_method(method).masked_config(config)
    if method == "quay_notification":
        target = shown.get("target") or {}
        kind = {"org": "organization"}.get(target.get("kind"), target.get("kind"))
        return f"{kind} {target.get('name')}"
    if method == "hipchat":
        return f"room {shown.get('room_id')}, token {shown.get('notification_token')}"
    if method == "flowdock":
        return f"token {shown.get('flow_api_token')}"
    return str(shown.get("url") or shown.get("email") or "")


def method_title(name: str) -> str:
    return METHOD_TITLES.get(name, name)


def repo_path(repository: str) -> str:
    """The repository's pages start here (its name quoted; it may hold ``/``)."""
    return f"/repository/{quote(repository)}"


def repository_link(repository: str) -> str:
    return f"{repo_path(repository)}?tab=settings"


def inbox_item(item: dict[str, Any]) -> dict[str, Any]:
    """An in-app notification as the bell shows it: level, one line, where it links."""
    data = item["metadata"] or {}
    repository = data.get("repository")
    if item["kind"] == DISABLED_KIND:
        title = data.get("title") or event_title(data.get("event", ""))
        link = repository_link(repository) + f"#n-{data.get('notification_uuid')}" \
            if repository else None
        return {"id": item["id"], "level": "error", "created": item["created"],
                "summary": f"Notification \u201c{title}\u201d of {repository} was disabled: "
                           f"{data.get('reason')}",
                "link": link, "link_text": "Open the notification", "extra": None}
    event = EVENTS.get(item["kind"])
    try:
        summary = event.summary(data) if event else item["kind"]
        level = event.level_for(data) if event else "info"
    except (KeyError, TypeError, ValueError, AttributeError):  # data stored by an older version
        summary, level = (event.title if event else item["kind"]), "info"
    extra = data.get("homepage") if isinstance(data.get("homepage"), str) else None
    if extra and not extra.startswith(("https://", "http://")):
        extra = None
    return {"id": item["id"], "level": level, "created": item["created"], "summary": summary,
            "link": repository_link(repository) if isinstance(repository, str) else None,
            "link_text": repository, "extra": extra}


def event_choices() -> list[tuple[str, str]]:
    return [(name, event.title) for name, event in EVENTS.items()]


def event_kind(name: str) -> str:
    return get_event(name).kind if name in EVENTS else ""


TEMPLATE_HELPERS = {"when": when, "event_title": event_title, "filter_text": event_filter,
                    "method_target": method_target, "method_title": method_title,
                    "repository_link": repository_link, "repo_path": repo_path, "masked": mask}
