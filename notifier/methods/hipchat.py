"""hipchat: a room notification, at the HipChat API base of the settings."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from notifier.errors import InvalidNotificationConfig
from notifier.http import HttpResult
from notifier.methods.base import CreateContext, DeliveryContext, Method, Services
from notifier.methods.chat import ChatMessage, post, required_text

COLOURS = {"info": "gray", "warning": "yellow", "error": "red",
           "success": "green", "primary": "purple"}


class HipchatMethod(Method):
    name = "hipchat"
    service_endpoint = "hipchat"
    secret_keys = ("notification_token",)

    def validate_config(self, config: dict[str, Any], context: CreateContext) -> dict[str, Any]:
        """A room notification token and a room id made of digits."""
        required_text(config, "notification_token", "Missing Hipchat Room Notification Token")
        room_id = config.get("room_id")
        if not (isinstance(room_id, str) and room_id.isascii() and room_id.isdigit()):
            raise InvalidNotificationConfig("Missing Hipchat Room ID")
        return dict(config)

    def send(self, context: DeliveryContext, services: Services) -> HttpResult:
        """POST the HTML message, coloured by level; errors notify the room."""
        message = ChatMessage.for_delivery(context)
        body = {
            "color": COLOURS[message.level],
            "message": message.html,
            "notify": message.level == "error",
            "message_format": "html",
        }
        url = notification_url(services.settings.hipchat_api_url, context.config["room_id"],
                               context.config["notification_token"])
        return post(services, url, body)


def notification_url(api_url: str, room_id: str, token: str) -> str:
    """The room-notification endpoint, authenticated by the token in the query."""
    return (f"{api_url.rstrip('/')}/v2/room/{quote(room_id, safe='')}/notification"
            f"?auth_token={quote(token, safe='')}")
