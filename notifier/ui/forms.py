"""The create and edit form: each event's filter field, each method's fields, and where an
error of the domain's validation belongs on the page.

The form only reshapes what was typed into create's arguments; every check is the domain's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.directory import repository_admins
from notifier.errors import InvalidInput
from notifier.events import EVENTS, split_repository
from notifier.filters import SEVERITIES
from notifier.methods import METHODS
from notifier.models import Organization, RepositoryPermission, Team, User


@dataclass(frozen=True)
class Field:
    """One input of a method: the config key it fills and words an error about it uses."""

    key: str
    label: str
    kind: str = "text"  # text | url | email | password | textarea | target
    hint: str = ""
    about: tuple[str, ...] = ()  # an error message containing one of these is about this field
    required: bool = True

    def name(self, method: str) -> str:
        return f"{method}.{self.key}"


METHOD_FIELDS: dict[str, tuple[Field, ...]] = {
    "webhook": (
        Field("url", "Webhook URL", "url", "Receives a POST of the event's JSON, signed the "
              "Standard Webhooks way.", ("URL",)),
        Field("template", "Body template (optional)", "textarea",
              "JSON with ${path} expressions into the event data, e.g. "
              '{"text": "${repository} got ${updated_tags[*]}"}; empty sends the event data as it is.',
              ("template",), required=False),
    ),
    "slack": (Field("url", "Slack webhook URL", "url",
                    "An incoming-webhook URL (https://hooks.slack.com/services/…).",
                    ("Slack",)),),
    "email": (Field("email", "E-mail address", "email",
                    "The address must confirm it wants this repository's mail.",
                    ("e-mail", "mail")),),
    "quay_notification": (Field("target", "Send to", "target",
                                "A user, a team of the organization, or the organization "
                                "(its admins).", ("target", "user", "team", "rganization")),),
    "flowdock": (Field("flow_api_token", "Flow API token", "password", "", ("Flowdock",)),),
    "hipchat": (
        Field("room_id", "Room ID", "text", "The room's number.", ("Room ID",)),
        Field("notification_token", "Room notification token", "password", "", ("Token",)),
    ),
}
assert set(METHOD_FIELDS) == set(METHODS), "every method needs its form fields"

REF_REGEX_HINT = ("A regular expression matched at the start of the ref, e.g. refs/heads/main "
                  "or refs/tags/v.*; empty: every build.")


@dataclass
class Submitted:
    """What the form holds, as create takes it, and the raw values to show again."""

    event: str
    method: str
    title: str | None
    event_config: dict[str, Any]
    config: dict[str, Any]
    values: dict[str, str]


def read_form(form: dict[str, str], *, event: str | None = None,
              method: str | None = None) -> Submitted:
    """The form's fields as create's arguments (``event``/``method`` fixed when editing)."""
    event = event or form.get("event", "")
    method = method or form.get("method", "")
    event_config: dict[str, Any] = {}
    kind = EVENTS[event].kind if event in EVENTS else ""
    if kind == "build" and form.get("ref_regex", "").strip():
        event_config["ref-regex"] = form["ref_regex"].strip()
    if kind == "vulnerability" and form.get("level", "") != "":
        event_config["level"] = form["level"]
    config: dict[str, Any] = {}
    for field in METHOD_FIELDS.get(method, ()):
        value = form.get(field.name(method), "").strip()
        if field.kind == "target":
            target_kind, _, name = value.partition(":")
            if value:
                config["target"] = {"kind": target_kind, "name": name}
        elif value or field.required:
            config[field.key] = value
    title = form.get("title", "").strip() or None
    return Submitted(event, method, title, event_config, config, dict(form))


def field_errors(error: InvalidInput, submitted: Submitted) -> dict[str, str]:
    """``{field name: message}`` for one error of the domain, placed by what it is about."""
    part = getattr(error, "part", None)
    message = str(error)
    if part in ("event", "method", "title"):
        return {part: message}
    if part == "event_config":
        return {"level" if "level" in message.lower() else "ref_regex": message}
    fields = METHOD_FIELDS.get(submitted.method, ())
    for field in fields:
        if any(word in message for word in field.about):
            return {field.name(submitted.method): message}
    return {fields[0].name(submitted.method) if fields else "method": message}


def form_values(notification) -> dict[str, str]:
    """An existing notification's values in the form's names (secrets as the views mask them)."""
    method = METHODS[notification.method]
    shown = method.masked_config(notification.config)
    values = {"title": notification.title or "",
              "ref_regex": notification.event_config.get("ref-regex", ""),
              "level": str(notification.event_config.get("level", ""))}
    for field in METHOD_FIELDS[notification.method]:
        value = shown.get(field.key)
        if field.kind == "target" and isinstance(value, dict):
            value = f"{value.get('kind')}:{value.get('name')}"
        values[field.name(notification.method)] = "" if value is None else str(value)
    return values


def severity_choices() -> list[tuple[str, str]]:
    return [("", "Any severity")] + [(str(index), f"{name} or worse" if index else name)
                                     for index, name in enumerate(SEVERITIES)]


TARGETS_MAX = 200


def target_choices(session: Session, repository: str) -> list[tuple[str, str]]:
    """In-app targets from the directory: the organization, its teams, and the people who
    hold a role on the repository or administer it (value ``kind:name``)."""
    namespace, _ = split_repository(repository)
    choices: list[tuple[str, str]] = []
    organization = session.scalar(select(Organization).where(Organization.name == namespace))
    if organization is not None:
        choices.append((f"org:{namespace}", f"Organization {namespace} (its admins)"))
        teams = session.scalars(select(Team.name).where(Team.organization_id == organization.id)
                                .order_by(Team.name).limit(TARGETS_MAX))
        choices += [(f"team:{name}", f"Team {namespace}/{name}") for name in teams]
    people = {user.name for user in repository_admins(session, repository)[:TARGETS_MAX]}
    people |= set(session.scalars(
        select(User.name).join(RepositoryPermission, RepositoryPermission.user_id == User.id)
        .where(RepositoryPermission.repository == repository).limit(TARGETS_MAX)))
    choices += [(f"user:{name}", f"User {name}") for name in sorted(people)]
    return choices
