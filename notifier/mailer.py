"""Sending e-mail over SMTP (host, port, STARTTLS or implicit TLS, optional login).

What a failure means: a connection error, a timeout or a 4xx reply is worth trying again
(RetryableDeliveryError); a 5xx reply or a server that lacks what the settings ask for (STARTTLS,
AUTH) will not change by itself (PermanentDeliveryError). No error text ever holds the password.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from pydantic import SecretStr

from config import Settings
from notifier.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError

SECURITY_MODES = ("none", "starttls", "tls")
REDACTED = "********"


class Mailer:
    """Sends one message per call over a fresh SMTP connection; raises DeliveryError subclasses."""

    def __init__(self, host: str, port: int, *, security: str = "none",
                 username: str | None = None, password: SecretStr | None = None,
                 timeout_s: float = 10.0, ssl_context: ssl.SSLContext | None = None):
        if security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {', '.join(SECURITY_MODES)}")
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self._password = password
        self.timeout_s = timeout_s
        # None: the system's trusted CAs with host name checks, built when a connection needs it.
        self._ssl_context = ssl_context

    @classmethod
    def from_settings(cls, settings: Settings, *,
                      ssl_context: ssl.SSLContext | None = None) -> "Mailer":
        """A mailer for the SMTP server the settings name."""
        return cls(settings.smtp_host, settings.smtp_port, security=settings.smtp_security,
                   username=settings.smtp_username, password=settings.smtp_password,
                   timeout_s=settings.smtp_timeout_s, ssl_context=ssl_context)

    def send(self, message: EmailMessage) -> None:
        """Send ``message`` to its To recipients, adding Date and Message-ID when it lacks them."""
        _stamp(message)
        try:
            self._deliver(message)
            return
        except OSError as exc:  # smtplib's errors are OSErrors too
            error = self._redacted(delivery_error(exc))
        # Raised outside the handler: no __context__ holds the server's unredacted words.
        raise error

    def _deliver(self, message: EmailMessage) -> None:
        smtp = self._connect()
        try:
            if self.security == "starttls":
                smtp.starttls(context=self._tls_context())
            if self.username:
                smtp.login(self.username, self._secret())
            smtp.send_message(message)
        finally:
            _close(smtp)

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s,
                                    context=self._tls_context())
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)

    def _tls_context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()

    def _secret(self) -> str:
        return self._password.get_secret_value() if self._password else ""

    def _redacted(self, error: DeliveryError) -> DeliveryError:
        """The same error with the password blanked out, should a server have echoed it."""
        secret = self._secret()
        if secret and secret in str(error):
            return type(error)(error.kind, str(error).replace(secret, REDACTED),
                               status_code=error.status_code)
        return error


def delivery_error(exc: OSError) -> DeliveryError:
    """What an smtplib or socket error means for the delivery."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()))
        return reply_error(code, text)
    if isinstance(exc, smtplib.SMTPResponseException):
        return reply_error(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPException) \
            and not isinstance(exc, smtplib.SMTPServerDisconnected):
        # smtplib refusing by itself: no STARTTLS, no AUTH, no AUTH mechanism both sides know.
        return PermanentDeliveryError("smtp_unsupported", f"SMTP: {exc}")
    return RetryableDeliveryError("smtp_unavailable", f"SMTP connection failed: {exc}")


def reply_error(code: int, text: bytes | str) -> DeliveryError:
    """A server's reply: 5xx will never work, anything else may work later."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = " ".join(text.split())
    if 500 <= code <= 599:
        return PermanentDeliveryError("smtp_5xx", f"SMTP {code}: {text}", status_code=code)
    kind = "smtp_4xx" if 400 <= code <= 499 else "smtp_unavailable"
    return RetryableDeliveryError(kind, f"SMTP {code}: {text}", status_code=code)


def _stamp(message: EmailMessage) -> None:
    if "Date" not in message:
        message["Date"] = formatdate(usegmt=True)
    if "Message-ID" not in message:
        # An explicit domain: without one, make_msgid asks DNS for this host's name.
        sender = str(message.get("From", ""))
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ")
                                           or "localhost")


def _close(smtp: smtplib.SMTP) -> None:
    """Say QUIT, but never let a failing goodbye turn a sent message into a failed attempt."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
