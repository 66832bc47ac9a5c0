"""A real SMTP server on loopback for tests (aiosmtpd) that keeps what it accepts."""

from __future__ import annotations

import email
import email.policy
import socket
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from config import Settings, load_settings

START_TIMEOUT_S = 5.0


def free_port() -> int:
    """A loopback port nobody listens on right now (aiosmtpd cannot start on port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """aiosmtpd handler: keeps what it accepts; ``rcpt_reply``/``data_reply`` refuse instead."""

    def __init__(self):
        self.envelopes = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[EmailMessage]:
        return [email.message_from_bytes(envelope.original_content, policy=email.policy.default)
                for envelope in self.envelopes]


class SmtpServer:
    """``with SmtpServer(**aiosmtpd_options) as server:`` a started server; stopped on exit."""

    def __init__(self, **options):
        self.inbox = Inbox()
        self.port = free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port,
                                     ready_timeout=START_TIMEOUT_S, **options)

    def __enter__(self) -> "SmtpServer":
        self.controller.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.controller.stop()

    def settings(self, **overrides) -> Settings:
        """Test settings whose SMTP server is this one."""
        return load_settings(**{
            "smtp_host": "127.0.0.1", "smtp_port": self.port, "smtp_timeout_s": 5,
            "server_hostname": "registry.example.com", "preferred_url_scheme": "https",
            "mail_sender": "notifier@registry.example.com", **overrides,
        })
