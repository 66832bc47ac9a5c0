"""slack: an incoming-webhook message, the HTML message converted to mrkdwn."""

from __future__ import annotations

from typing import Any

from notifier.errors import InvalidNotificationConfig
from notifier.http import HttpResult
from notifier.methods.base import (CreateContext, DeliveryContext, Method, Services,
                                   url_endpoint)
from notifier.methods.chat import ChatMessage, post, required_text
from notifier.mrkdwn import escape_text, html_to_mrkdwn
from notifier.netpolicy import url_refusal

COLOURS = {"info": "#ffffff", "warning": "warning", "error": "danger",
           "success": "good", "primary": "good"}


class SlackMethod(Method):
    name = "slack"
    secret_keys = ("url",)

    def endpoint(self, config: dict[str, Any]) -> str | None:
        return url_endpoint(config.get("url"))

    def validate_config(self, config: dict[str, Any], context: CreateContext) -> dict[str, Any]:
        """A Slack Callback URL: https, to a host the network policy allows."""
        url = required_text(config, "url", "Missing Slack Callback URL")
        refusal = url_refusal(url, context.allowed_networks, schemes=("https",))
        if refusal:
            raise InvalidNotificationConfig(f"Invalid Slack Callback URL: {refusal}")
        return dict(config)

    def send(self, context: DeliveryContext, services: Services) -> HttpResult:
        """POST the summary, with the message as a coloured mrkdwn attachment."""
        message = ChatMessage.for_delivery(context)
        summary = escape_text(message.summary)  # producer text: no <!channel>, no disguised links
        body = {
            "text": summary,
            "username": services.settings.slack_username,
            "attachments": [{
                "fallback": summary,
                "text": html_to_mrkdwn(message.html),
                "color": COLOURS[message.level],
                "mrkdwn_in": ["text"],
            }],
        }
        return post(services, context.config["url"], body)
