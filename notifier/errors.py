"""Every error notifier raises on purpose, under one root.

The split under DeliveryError drives retries: a RetryableDeliveryError is tried again on the
schedule, a PermanentDeliveryError ends the delivery at once.

    NotifierError
    ├── InvalidInput                  bad input from a caller; nothing was accepted
    │   ├── UnknownEvent
    │   ├── InvalidEventData
    │   ├── UnknownMethod
    │   └── InvalidNotificationConfig
    ├── NotFound                      a notification, event or delivery that does not exist
    ├── BrokerUnavailable             the broker did not take a message; nothing was enqueued
    ├── DatabaseNotReady              the database is unreachable or not migrated
    ├── RateLimited                   a person asked for too much too often; try again later
    └── DeliveryError                 one attempt to deliver failed
        ├── RetryableDeliveryError    try again later (network error, 5xx, 429, forbidden address)
        └── PermanentDeliveryError    will never work
            └── ReceiverGone          the receiver answered 410: disable the notification

config.ConfigurationError (a bad setting) stays in config/, which notifier depends on.
"""

from __future__ import annotations

from config import ConfigurationError

__all__ = [
    "TIMEOUT_KIND",
    "BrokerUnavailable",
    "ConfigurationError",
    "DatabaseNotReady",
    "DeliveryError",
    "InvalidEventData",
    "InvalidInput",
    "InvalidNotificationConfig",
    "NotFound",
    "NotifierError",
    "RateLimited",
    "PermanentDeliveryError",
    "ReceiverGone",
    "RetryableDeliveryError",
    "UnknownEvent",
    "UnknownMethod",
]

# The kind of a delivery error whose attempt ran out of time (the HTTP helper's deadline):
# what endpoint pacing (notifier.pacing) reacts to.
TIMEOUT_KIND = "timeout"


class NotifierError(Exception):
    """Root of notifier's own errors."""


class InvalidInput(NotifierError, ValueError):
    """A caller's input is wrong; the message says what and where."""


class UnknownEvent(InvalidInput):
    def __init__(self, name: str):
        super().__init__(f"Unknown event '{name}'")
        self.name = name


class InvalidEventData(InvalidInput):
    """An event's data lacks a required field or has one of the wrong type."""


class UnknownMethod(InvalidInput):
    def __init__(self, name: str):
        super().__init__(f"Unknown notification method '{name}'")
        self.name = name


class InvalidNotificationConfig(InvalidInput):
    """A notification's config or event config does not validate."""


class NotFound(NotifierError, LookupError):
    """The named thing does not exist."""


class BrokerUnavailable(NotifierError):
    """The broker could not be reached; nothing was enqueued."""


class DatabaseNotReady(NotifierError):
    """The database cannot be reached or lacks the schema."""


class RateLimited(NotifierError):
    """A rate limit refused the call; ``retry_after_s`` says when one is left again."""

    def __init__(self, message: str, *, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeliveryError(NotifierError):
    """One attempt failed. ``kind`` is a short machine word; the message never holds secrets."""

    def __init__(self, kind: str, message: str, *, status_code: int | None = None,
                 response_excerpt: str | None = None, retry_after_s: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.status_code = status_code
        self.response_excerpt = response_excerpt
        self.retry_after_s = retry_after_s


class RetryableDeliveryError(DeliveryError):
    """Worth trying again later."""


class PermanentDeliveryError(DeliveryError):
    """Trying again will not help."""


class ReceiverGone(PermanentDeliveryError):
    """The receiver answered 410 Gone: it asked us to stop."""
