"""The database tables: notifications, events, deliveries and their attempts (the ledger)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every database (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; use UTC-aware datetimes")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class DeliveryState(str, enum.Enum):
    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"
    SKIPPED = "skipped"


FINAL_STATES = frozenset({DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.SKIPPED})


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_repository_event", "repository", "event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(
        String(36), unique=True, default=lambda: str(uuid.uuid4())
    )
    repository: Mapped[str] = mapped_column(String(512))
    event: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(255))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    event_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    number_of_failures: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Event(Base):
    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    repository: Mapped[str] = mapped_column(String(512), index=True)
    name: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    performer: Mapped[dict[str, Any]] = mapped_column(default=dict)
    published_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_state_next_attempt", "state", "next_attempt_at"),
        # The history pages: one notification's, and everyone's, newest first.
        Index("ix_deliveries_notification_created", "notification_uuid", "created_at", "id"),
        Index("ix_deliveries_created", "created_at", "id"),
        Index("ix_deliveries_state_created", "state", "created_at"),  # retention
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    notification_uuid: Mapped[str] = mapped_column(
        ForeignKey("notifications.uuid", ondelete="CASCADE")
    )
    method: Mapped[str] = mapped_column(String(64))
    # The receiver its attempts go to (Method.endpoint): bounds attempts in flight per receiver.
    endpoint: Mapped[str | None] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Attempts made before the latest redelivery: a redelivered delivery gets a full schedule.
    attempts_before_redelivery: Mapped[int] = mapped_column(Integer, default=0,
                                                            server_default="0")
    next_attempt_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
    enqueued_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


def still_in(state: DeliveryState) -> ColumnElement[bool]:
    """The delivery is (still) in ``state``: for a statement that finds deliveries by their
    key (the id, the event) and checks their state. Written so that no index can serve it
    (``IS NOT DISTINCT FROM``, which means ``=`` as the state is never NULL): where PostgreSQL
    has no statistics of the table (never analyzed: a new ledger, or autovacuum behind), a
    state index costs it as little as the key's, and it took the state index, walking every
    pending delivery for each claim, record and fan-out."""
    return Delivery.state.is_not_distinct_from(state.value)


_PACED = text("slow_limit IS NOT NULL")


class EndpointSlot(Base):
    """Per endpoint: attempts in flight (the claim adds one under the bound; a trigger on
    deliveries takes it back whenever a delivering row changes state or goes away, so the count
    stays exact on every path), and the wait ticket handed to deliveries refused while full."""

    __tablename__ = "endpoint_slots"
    __table_args__ = (  # the few paced endpoints, for fan-out (migration 0011)
        Index("ix_endpoint_slots_paced", "endpoint", postgresql_where=_PACED,
              sqlite_where=_PACED),
    )

    endpoint: Mapped[str] = mapped_column(String(300), primary_key=True)
    in_flight: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Epoch seconds until which earlier refused deliveries already wait: the next one waits
    # one slot's share of a round longer (no count of the backlog).
    busy_until_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # NULL while the endpoint answers in time. An attempt that times out halves its bound (at
    # least 1), an answer in time raises it by one until it is the setting's again (NULL): a
    # receiver that hangs holds one worker slot, not the setting's bound of them.
    slow_limit: Mapped[int | None] = mapped_column(Integer)


class Attempt(Base):
    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    duration_ms: Mapped[int | None]
    status_code: Mapped[int | None]
    error_kind: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    response_excerpt: Mapped[str | None] = mapped_column(Text)


class DeadLetter(Base):
    """A broker message that failed for a reason other than the database being away, kept
    (with the reason) instead of being retried forever or dropped; see notifier.deadletters."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task: Mapped[str] = mapped_column(String(64))
    # The task's arguments as JSON text (ASCII-escaped, so any payload can be stored).
    message: Mapped[str] = mapped_column(Text)
    event_id: Mapped[str | None] = mapped_column(String(128), index=True)
    repository: Mapped[str | None] = mapped_column(String(255))
    event: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    tries: Mapped[int] = mapped_column(Integer)
    dead_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- the directory: who exists, who belongs where, who may do what -----------------------------

class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrganizationAdmin(Base):
    __tablename__ = "organization_admins"

    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)


class Team(Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"),
                                         primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)


class RepositoryPermission(Base):
    """A user's or a team's role on a repository: read, write or admin."""

    __tablename__ = "repository_permissions"
    __table_args__ = (
        UniqueConstraint("repository", "user_id"),
        UniqueConstraint("repository", "team_id"),
        CheckConstraint("(user_id IS NULL) <> (team_id IS NULL)", name="one_grantee"),
        CheckConstraint("role IN ('read', 'write', 'admin')", name="known_role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository: Mapped[str] = mapped_column(String(512), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(8))


class AuthorizedEmail(Base):
    """An e-mail address allowed to receive a repository's notifications once confirmed."""

    __tablename__ = "authorized_emails"
    __table_args__ = (UniqueConstraint("repository", "email"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository: Mapped[str] = mapped_column(String(512))
    email: Mapped[str] = mapped_column(String(320))
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    code_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class InAppNotification(Base):
    """One in-app notification for a user, or for an organization (shown to its admins)."""

    __tablename__ = "inapp_notifications"
    __table_args__ = (
        # A retried in-app delivery must not notify anyone twice.
        UniqueConstraint("delivery_id", "recipient"),
        CheckConstraint("(user_id IS NULL) <> (organization_id IS NULL)", name="one_target"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True,
                                      default=lambda: str(uuid.uuid4()))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    delivery_id: Mapped[str | None] = mapped_column(String(36))
    recipient: Mapped[str] = mapped_column(String(32))  # "user:<id>" or "org:<id>"
    kind: Mapped[str] = mapped_column(String(64))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    dismissed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token for the HTTP API, stored as its SHA-256 only."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint("kind IN ('service', 'user')", name="known_kind"),
        CheckConstraint("(kind = 'user') = (user_id IS NOT NULL)", name="user_tokens_name_a_user"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(255))  # the service's name, or the user's
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]  # none: until revoked


# --- the web UI: sign-in sessions and single-use sign-in links ---------------------------------

class UiSession(Base):
    """A signed-in browser: the cookie's SHA-256 only, and the CSRF token its forms carry."""

    __tablename__ = "ui_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class UiSigninLink(Base):
    """A single-use sign-in link (`notifier ui-link USER`), stored as its code's SHA-256."""

    __tablename__ = "ui_signin_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime]


# --- operations: heartbeats of periodic jobs ----------------------------------------------------

class Heartbeat(Base):
    """The last time a periodic job (the retry scheduler) ran."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_run_at: Mapped[datetime]




class RateLimitWindow(Base):
    """How often one key (a requester, an address) used one rate limit in its current window."""

    __tablename__ = "rate_limit_windows"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of limit + key
    window_started_at: Mapped[datetime]
    used: Mapped[int] = mapped_column(Integer, default=0)
