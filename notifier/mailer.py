"""Sending e-mail over SMTP (host, port, STARTTLS or implicit TLS, optional login)."""

from __future__ import annotations

from email.message import EmailMessage

from config import Settings


class Mailer:
    """Sends one message; raises DeliveryError subclasses on failure."""

    @classmethod
    def from_settings(cls, settings: Settings) -> "Mailer":
        return cls()

    def send(self, message: EmailMessage) -> None:
        raise NotImplementedError
