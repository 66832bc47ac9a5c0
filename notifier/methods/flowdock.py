"""flowdock: a message to a flow's team inbox, at the Flowdock API base of the settings."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from notifier.events import split_repository
from notifier.http import HttpResult
from notifier.methods.base import CreateContext, DeliveryContext, Method, Services
from notifier.methods.chat import ChatMessage, post, required_text

SOURCE = "notifier"  # Flowdock shows it as the sending application (letters and spaces only)


class FlowdockMethod(Method):
    name = "flowdock"
    service_endpoint = "flowdock"
    secret_keys = ("flow_api_token",)

    def validate_config(self, config: dict[str, Any], context: CreateContext) -> dict[str, Any]:
        """A flow API token."""
        required_text(config, "flow_api_token", "Missing Flowdock API Token")
        return dict(config)

    def send(self, context: DeliveryContext, services: Services) -> HttpResult:
        """POST the summary and the HTML message to the team inbox of the configured flow."""
        message = ChatMessage.for_delivery(context)
        namespace, name = split_repository(context.repository)
        body = {
            "source": SOURCE,
            "from_address": services.settings.mail_sender,
            "subject": message.summary,
            "content": message.html,
            "from_name": namespace,
            "project": f"{namespace} {name}",
            "tags": [f"#{context.event}"],
            "link": context.event_data.get("homepage"),
        }
        return post(services, inbox_url(services.settings.flowdock_api_url,
                                        context.config["flow_api_token"]), body)


def inbox_url(api_url: str, token: str) -> str:
    """The team-inbox endpoint of the flow whose API token is ``token``."""
    return f"{api_url.rstrip('/')}/v1/messages/team_inbox/{quote(token, safe='')}"
