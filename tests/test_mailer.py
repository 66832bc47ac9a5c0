"""The SMTP mailer against a real aiosmtpd server: plain, STARTTLS, implicit TLS, login, and what
each kind of failure means for the delivery."""

from __future__ import annotations

import socket
import ssl
import time
from email.message import EmailMessage

import pytest
import trustme
from aiosmtpd.smtp import AuthResult
from pydantic import SecretStr

from config import ConfigurationError
from notifier.errors import PermanentDeliveryError, RetryableDeliveryError
from notifier.mailer import Mailer
from tests.smtp import SmtpServer, free_port

USER = "mailbot"
PASSWORD = "pa55-hunter2-secret"


def message(subject: str = "Repository acme/web updated") -> EmailMessage:
    built = EmailMessage()
    built["Subject"] = subject
    built["From"] = "notifier@registry.example.com"
    built["To"] = "dev@example.com"
    built.set_content("Image(s) pushed to repository acme/web")
    return built


def plain_mailer(server: SmtpServer, **options) -> Mailer:
    return Mailer("127.0.0.1", server.port, timeout_s=5, **options)


class Authenticator:
    """Accepts USER/PASSWORD; a refusal echoes the password, as a careless server might."""

    def __init__(self):
        self.logins: list[str] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append(login)
        if (login, password) == (USER, PASSWORD):
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False,
                          message=f"535 5.7.8 bad credentials {login}:{password}")


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_tls(ca) -> ssl.SSLContext:
    """Default verification, trusting the test CA."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


# --- what arrives ------------------------------------------------------------------------------

def test_a_plain_message_arrives_with_date_and_message_id(smtp):
    plain_mailer(smtp).send(message())

    [envelope] = smtp.inbox.envelopes
    assert envelope.mail_from == "notifier@registry.example.com"
    assert envelope.rcpt_tos == ["dev@example.com"]
    [received] = smtp.inbox.messages
    assert received["Subject"] == "Repository acme/web updated"
    assert received.get_content().strip() == "Image(s) pushed to repository acme/web"
    assert received["Date"]
    assert received["Message-ID"].endswith("@registry.example.com>")


def test_from_settings_uses_the_smtp_settings():
    with SmtpServer() as server:
        mailer = Mailer.from_settings(server.settings(smtp_timeout_s=3))
        mailer.send(message())
        assert (mailer.host, mailer.port, mailer.timeout_s) == ("127.0.0.1", server.port, 3)
        assert len(server.inbox.envelopes) == 1


def test_starttls_then_login(server_tls, client_tls):
    authenticator = Authenticator()
    # The server refuses mail and AUTH before STARTTLS, so an arrival proves the order.
    with SmtpServer(tls_context=server_tls, require_starttls=True,
                    authenticator=authenticator) as server:
        plain_mailer(server, security="starttls", ssl_context=client_tls,
                     username=USER, password=SecretStr(PASSWORD)).send(message())
        assert len(server.inbox.envelopes) == 1
    assert authenticator.logins == [USER]


def test_implicit_tls(server_tls, client_tls):
    with SmtpServer(ssl_context=server_tls) as server:
        plain_mailer(server, security="tls", ssl_context=client_tls).send(message())
        assert len(server.inbox.envelopes) == 1


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_a_certificate_from_an_unknown_ca_is_refused(server_tls, security):
    options = {"tls_context": server_tls} if security == "starttls" else {"ssl_context": server_tls}
    with SmtpServer(**options) as server:
        with pytest.raises(RetryableDeliveryError, match="CERTIFICATE_VERIFY_FAILED") as caught:
            plain_mailer(server, security=security).send(message())  # the system's CAs only
        assert server.inbox.envelopes == []
    assert caught.value.kind == "smtp_unavailable"


def test_a_login_in_plain_text_is_refused_at_start_up_even_where_the_server_allows_it():
    authenticator = Authenticator()
    with SmtpServer(authenticator=authenticator, auth_require_tls=False) as server:
        with pytest.raises(ConfigurationError, match="NOTIFIER_SMTP_SECURITY to starttls or tls"):
            server.settings(smtp_username=USER, smtp_password=PASSWORD)
        assert server.inbox.envelopes == []
    assert authenticator.logins == []


def test_starttls_on_a_server_without_it_is_permanent(smtp):
    with pytest.raises(PermanentDeliveryError, match="STARTTLS") as caught:
        plain_mailer(smtp, security="starttls").send(message())
    assert caught.value.kind == "smtp_unsupported"
    assert smtp.inbox.envelopes == []


# --- failures ----------------------------------------------------------------------------------

def test_a_4xx_reply_is_retryable_with_the_servers_words(smtp):
    smtp.inbox.data_reply = "451 4.3.0 Mailbox busy, try later"
    with pytest.raises(RetryableDeliveryError) as caught:
        plain_mailer(smtp).send(message())
    assert caught.value.kind == "smtp_4xx"
    assert caught.value.status_code == 451
    assert str(caught.value) == "SMTP 451: 4.3.0 Mailbox busy, try later"


@pytest.mark.parametrize("where", ["rcpt_reply", "data_reply"])
def test_a_5xx_reply_is_permanent_with_the_servers_words(smtp, where):
    setattr(smtp.inbox, where, "550 5.7.1 Relaying denied")
    with pytest.raises(PermanentDeliveryError) as caught:
        plain_mailer(smtp).send(message())
    assert caught.value.kind == "smtp_5xx"
    assert caught.value.status_code == 550
    assert str(caught.value) == "SMTP 550: 5.7.1 Relaying denied"
    assert smtp.inbox.envelopes == []


def test_a_closed_port_is_retryable():
    with pytest.raises(RetryableDeliveryError, match="SMTP connection failed") as caught:
        Mailer("127.0.0.1", free_port(), timeout_s=5).send(message())
    assert caught.value.kind == "smtp_unavailable"


def test_a_server_that_never_greets_times_out_and_is_retryable():
    with socket.socket() as silent:  # listens, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        started = time.monotonic()
        with pytest.raises(RetryableDeliveryError, match="timed out"):
            Mailer("127.0.0.1", silent.getsockname()[1], timeout_s=0.5).send(message())
    assert time.monotonic() - started < 5


def test_a_refused_login_is_permanent_and_never_shows_the_password():
    with SmtpServer(authenticator=Authenticator(), auth_require_tls=False) as server:
        mailer = plain_mailer(server, username=USER, password=SecretStr(PASSWORD + "-wrong"))
        with pytest.raises(PermanentDeliveryError) as caught:
            mailer.send(message())
    assert caught.value.status_code == 535
    assert "bad credentials" in str(caught.value)  # the server did echo it...
    assert PASSWORD not in str(caught.value)  # ...and we blanked it out
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_a_connection_error_never_shows_the_password():
    mailer = Mailer("127.0.0.1", free_port(), username=USER, password=SecretStr(PASSWORD))
    with pytest.raises(RetryableDeliveryError) as caught:
        mailer.send(message())
    assert PASSWORD not in str(caught.value) + repr(caught.value) + repr(mailer)


def test_an_unknown_security_mode_is_refused():
    with pytest.raises(ValueError, match="security must be one of none, starttls, tls"):
        Mailer("127.0.0.1", 25, security="ssl")
