"""webhook: POST the event data, signed the Standard Webhooks way."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime, timezone
from typing import Any

from standardwebhooks.webhooks import Webhook

from notifier.errors import InvalidNotificationConfig
from notifier.http import HttpResult
from notifier.methods.base import CreateContext, DeliveryContext, Method, Services
from notifier.netpolicy import url_allowed

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24


def is_valid_secret(secret: Any) -> bool:
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        return False
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError:
        return False
    return len(key) >= SECRET_BYTES


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def encode_body(data: Any) -> bytes:
    """Serialise once: these exact bytes are signed and sent."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) for one secret."""
    when = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return Webhook(secret).sign(msg_id, when, body.decode())


class WebhookMethod(Method):
    name = "webhook"

    def validate_config(self, config: dict[str, Any], context: CreateContext) -> dict[str, Any]:
        url = config.get("url")
        if not url:
            raise InvalidNotificationConfig("Missing webhook URL")
        if not isinstance(url, str) or not url_allowed(url, context.allowed_networks):
            raise InvalidNotificationConfig("Invalid webhook URL")
        secret = config.get("secret")
        if secret is None:
            secret = new_secret()
        elif not is_valid_secret(secret):
            raise InvalidNotificationConfig(
                "Invalid webhook secret: must be 'whsec_' followed by base64 of 24 or more bytes"
            )
        return {**config, "secret": secret}

    def send(self, context: DeliveryContext, services: Services) -> HttpResult:
        body = encode_body(context.event_data)
        timestamp = int(context.now.timestamp())
        headers = {
            "webhook-id": context.delivery_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(context.config["secret"], context.delivery_id, timestamp, body),
            "X-Notifier-Event": context.event,
        }
        return services.http.post_json(context.config["url"], body, headers)
