"""email: the event's summary as subject, its text and HTML messages as one multipart e-mail.

The address must be confirmed for the repository (``notifier.email_auth``) when the notification
is created and again at every send, so an authorization removed later stops the mail.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from notifier.email_auth import is_confirmed, unconfirmed_reason
from notifier.errors import InvalidNotificationConfig, PermanentDeliveryError
from notifier.events import get_event
from notifier.messages import render_message
from notifier.methods.base import CreateContext, DeliveryContext, Method, Services

NOT_AUTHORIZED = ("The specified e-mail address is not authorized to receive notifications "
                  "for this repository")


class EmailMethod(Method):
    name = "email"
    service_endpoint = "smtp"

    def validate_config(self, config: dict[str, Any], context: CreateContext) -> dict[str, Any]:
        address = config.get("email")
        if not address:
            raise InvalidNotificationConfig("Missing e-mail address")
        if context.session is None:
            raise InvalidNotificationConfig(NOT_AUTHORIZED)
        reason = unconfirmed_reason(context.session, context.repository, address)
        if reason:
            raise InvalidNotificationConfig(f"{NOT_AUTHORIZED}: {reason}")
        return config

    def send(self, context: DeliveryContext, services: Services) -> None:
        address = context.config["email"]
        with services.factory() as session:
            confirmed = is_confirmed(session, context.repository, address)
        if not confirmed:
            raise PermanentDeliveryError(
                "email_not_authorized",
                f"{address} is no longer authorized to receive notifications for "
                f"{context.repository}")
        services.mailer.send(build_message(context, services.settings.mail_sender))


def build_message(context: DeliveryContext, sender: str) -> EmailMessage:
    """The notification e-mail: plain text first, HTML as the preferred alternative."""
    message = EmailMessage()
    message["Subject"] = subject(context)
    message["From"] = sender
    message["To"] = context.config["email"]
    message.set_content(_render(context, "body.txt"))
    message.add_alternative(_render(context, "body.html"), subtype="html")
    return message


def subject(context: DeliveryContext) -> str:
    """The event's summary on one line: producer text may hold line breaks (header injection)."""
    summary = get_event(context.event).summary(context.event_data, context.event_config)
    return " ".join(summary.split())


def _render(context: DeliveryContext, channel: str) -> str:
    return render_message(context.event, channel, context.event_data, context.performer,
                          event_config=context.event_config)
