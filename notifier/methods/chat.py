"""What the chat methods (slack, flowdock, hipchat) share: the message they post, the config
check for a required value, and the POST."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from notifier.errors import InvalidNotificationConfig
from notifier.events import get_event
from notifier.http import HttpResult, encode_body
from notifier.messages import render_message
from notifier.methods.base import DeliveryContext, Services


@dataclass(frozen=True)
class ChatMessage:
    """One event as chat services show it."""

    summary: str  # one line (events.md, "Summaries")
    level: str  # primary | info | success | warning | error: each method's colour
    html: str  # the event's HTML message

    @classmethod
    def for_delivery(cls, context: DeliveryContext) -> ChatMessage:
        event = get_event(context.event)
        return cls(
            summary=event.summary(context.event_data, context.event_config),
            level=event.level_for(context.event_data, context.event_config),
            html=render_message(context.event, "body.html", context.event_data,
                                context.performer, event_config=context.event_config),
        )


def required_text(config: dict[str, Any], key: str, missing: str) -> str:
    """``config[key]`` if it is a string that is not blank; else InvalidNotificationConfig."""
    value = config.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidNotificationConfig(missing)
    return value


def post(services: Services, url: str, body: dict[str, Any]) -> HttpResult:
    """Serialise ``body`` once and POST it through the one HTTP helper.

    Its errors never quote the URL, which holds the secret (Slack URL, token): keep it that way,
    never wrap them with the URL.
    """
    return services.http.post_json(url, encode_body(body))
