"""webhook: POST the event data (or the body template applied to it), signed the Standard
Webhooks way."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

from standardwebhooks.webhooks import Webhook

from notifier.bodytemplate import Template, compile_template
from notifier.errors import InvalidNotificationConfig, PermanentDeliveryError
from notifier.http import HttpResult, encode_body
from notifier.masking import mask_url
from notifier.methods.base import (CreateContext, DeliveryContext, Method, Services,
                                   url_endpoint)
from notifier.netpolicy import url_refusal

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
ROTATION_OVERLAP = timedelta(hours=24)


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


def body_template(config: dict[str, Any]) -> Template | None:
    """The config's compiled ``template``, or None when it has none (absent, null or "")."""
    text = config.get("template")
    if text is None or text == "":
        return None
    return compile_template(text)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) for one secret."""
    when = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return Webhook(secret).sign(msg_id, when, body.decode())


def signing_secrets(config: dict[str, Any], now: datetime) -> list[str]:
    """The secret, and during a rotation the previous one too (new first)."""
    secrets_in_use = [config["secret"]]
    until = config.get("previous_secret_until")
    if config.get("previous_secret") and until and now < datetime.fromisoformat(until):
        secrets_in_use.append(config["previous_secret"])
    return secrets_in_use


def rotated(config: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The config with a new secret; the old one keeps signing for ROTATION_OVERLAP."""
    return {**config, "secret": new_secret(), "previous_secret": config["secret"],
            "previous_secret_until": (now + ROTATION_OVERLAP).isoformat()}


class WebhookMethod(Method):
    name = "webhook"
    secret_keys = ("secret", "previous_secret")
    carried_keys = ("secret", "previous_secret", "previous_secret_until")

    def endpoint(self, config: dict[str, Any]) -> str | None:
        return url_endpoint(config.get("url"))

    def masked_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """The signing secret masked, and the URL's password and query values."""
        masked = super().masked_config(config)
        if isinstance(config.get("url"), str):
            masked["url"] = mask_url(config["url"])
        return masked

    def validate_config(self, config: dict[str, Any], context: CreateContext) -> dict[str, Any]:
        url = config.get("url")
        if not url:
            raise InvalidNotificationConfig("Missing webhook URL")
        refusal = (url_refusal(url, context.allowed_networks) if isinstance(url, str)
                   else "it must be text")
        if refusal:
            raise InvalidNotificationConfig(f"Invalid webhook URL: {refusal}")
        secret = config.get("secret")
        if secret is None:
            secret = new_secret()
        elif not is_valid_secret(secret):
            raise InvalidNotificationConfig(
                "Invalid webhook secret: must be 'whsec_' followed by base64 of 24 or more bytes"
            )
        body_template(config)  # checked here; stored as the text it was given
        return {**config, "secret": secret}

    def send(self, context: DeliveryContext, services: Services) -> HttpResult:
        body = self._body(context)
        timestamp = int(context.now.timestamp())
        headers = {
            "webhook-id": context.delivery_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(
                sign(secret, context.delivery_id, timestamp, body)
                for secret in signing_secrets(context.config, context.now)),
            "X-Notifier-Event": context.event,
        }
        return services.http.post_json(context.config["url"], body, headers,
                                       present_client_cert=True)

    @staticmethod
    def _body(context: DeliveryContext) -> bytes:
        """The event data, or the body template applied to it, as the bytes to sign and send."""
        try:
            template = body_template(context.config)
            if template is not None:
                return template.render_body(context.event_data)
        except InvalidNotificationConfig as exc:  # stored before a check that now refuses it,
            raise PermanentDeliveryError("invalid_template", str(exc)) from None  # or too big
        return encode_body(context.event_data)
