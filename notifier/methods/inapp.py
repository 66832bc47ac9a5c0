"""quay_notification: an in-app notification for a user, each member of a team, or an
organization (shown to its admins). No network."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from notifier.db import transaction
from notifier.directory import find_organization, find_user, team_members
from notifier.errors import InvalidNotificationConfig, NotFound, PermanentDeliveryError
from notifier.events import split_repository
from notifier.inapp import store_notifications
from notifier.methods.base import CreateContext, DeliveryContext, Method, Services
from notifier.models import Organization, User

# Target kinds, with the word Quay's messages use for each.
TARGET_KINDS = {"user": "user", "org": "organization", "team": "team"}


def _target(config: dict[str, Any]) -> tuple[str, str]:
    """The (kind, name) a config names; ``Missing target`` unless it names one."""
    target = config.get("target")
    if not isinstance(target, dict):
        raise InvalidNotificationConfig("Missing target")
    kind, name = target.get("kind"), target.get("name")
    if not isinstance(kind, str) or not kind or not isinstance(name, str) or not name:
        raise InvalidNotificationConfig("Missing target")
    if kind not in TARGET_KINDS:
        raise InvalidNotificationConfig(f"Unknown target kind '{kind}': use user, org or team")
    return kind, name


def _recipients(session: Session, kind: str, name: str,
                namespace: str) -> list[User | Organization]:
    """Who gets a notification for this target now (NotFound when the target does not exist)."""
    if kind == "user":
        return [find_user(session, name)]
    if kind == "org":
        return [find_organization(session, name)]
    return team_members(session, namespace, name)  # a team of the repository's namespace


class QuayNotificationMethod(Method):
    name = "quay_notification"

    def validate_config(self, config: dict[str, Any], context: CreateContext) -> dict[str, Any]:
        kind, name = _target(config)
        namespace, _ = split_repository(context.repository)
        try:
            _recipients(context.session, kind, name, namespace)
        except NotFound:
            raise InvalidNotificationConfig(f"Unknown {TARGET_KINDS[kind]} {name}") from None
        if kind == "org" and name != namespace:
            raise InvalidNotificationConfig("Organization name must match repository namespace")
        return config

    def send(self, context: DeliveryContext, services: Services) -> None:
        kind, name = _target(context.config)
        namespace, _ = split_repository(context.repository)
        with transaction(services.factory) as session:
            try:
                recipients = _recipients(session, kind, name, namespace)
            except NotFound as exc:
                raise PermanentDeliveryError("target_gone", f"target gone: {exc}") from None
            store_notifications(session, recipients, kind=context.event,
                                metadata=context.event_data, delivery_id=context.delivery_id)
