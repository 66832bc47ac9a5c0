"""Request bodies of the notification, delivery and event calls.

Unknown keys are refused (400), so a misspelt key never silently does nothing. Checks that
belong to the domain (event names, method configs, filters, event data) stay in the domain, which
answers Quay's messages; these models only fix the shape.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NotificationCreate(Strict):
    """Quay's create body: note ``eventConfig`` here and ``event_config`` in the view."""

    event: str
    method: str
    config: dict[str, Any]
    event_config: dict[str, Any] | None = Field(None, alias="eventConfig")
    title: str | None = None


class NotificationUpdate(Strict):
    """The edit body: the new title, config and ``eventConfig`` (create's names and rules).

    ``event`` and ``method`` may be sent back as they are; they cannot change.
    """

    config: dict[str, Any]
    event_config: dict[str, Any] | None = Field(None, alias="eventConfig")
    title: str | None = None
    event: str | None = None
    method: str | None = None


class Redelivery(Strict):
    """Which failed or skipped deliveries of a notification to send again (default: all)."""

    since: AwareDatetime | None = Field(
        None, description="Only deliveries created at or after this time (with a zone).")
    states: list[Literal["failed", "skipped"]] | None = Field(None, min_length=1)


class EventPublish(Strict):
    """One event, as the registry publishes it (delivery.md, "Producer")."""

    repository: str
    event: str
    data: dict[str, Any] | None = None
    performer: dict[str, Any] | None = None
    event_id: str | None = None
