"""Authorizing e-mail addresses: a mailed single-use link, expiring codes, only hashes stored;
on PostgreSQL and SQLite, with a real SMTP server."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from notifier.db import transaction
from notifier.email_auth import authorize, confirm, get_authorization, is_confirmed
from notifier.errors import InvalidInput, NotFound, RetryableDeliveryError
from notifier.mailer import Mailer
from notifier.models import AuthorizedEmail, utcnow
from tests.smtp import SmtpServer, free_port

ADDRESS = "dev@example.com"
LINK = re.compile(r"https://registry\.example\.com/authrepoemail\?code=([A-Za-z0-9_-]+)")


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def settings(smtp):
    return smtp.settings(email_code_ttl_s=3600)


@pytest.fixture
def mailer(settings):
    return Mailer.from_settings(settings)


def request_code(factory, repository, settings, mailer, smtp, *, now=None,
                 address=ADDRESS) -> str:
    """Authorize ``address`` and return the code its newest e-mail carries."""
    with transaction(factory) as session:
        authorize(session, repository, address, settings=settings, mailer=mailer, now=now)
    [code] = LINK.findall(smtp.inbox.messages[-1].get_content())
    return code


def stored(factory, repository, address=ADDRESS) -> list[AuthorizedEmail]:
    with factory() as session:
        return list(session.scalars(select(AuthorizedEmail).where(
            AuthorizedEmail.repository == repository, AuthorizedEmail.email == address)))


def test_authorize_mails_a_link_and_stores_only_the_codes_hash(factory, unique_repo, settings,
                                                               mailer, smtp):
    now = utcnow()
    code = request_code(factory, unique_repo, settings, mailer, smtp, now=now)

    [received] = smtp.inbox.messages
    assert received["To"] == ADDRESS
    assert received["From"] == settings.mail_sender
    assert unique_repo in received["Subject"]
    [record] = stored(factory, unique_repo)
    assert record.confirmed is False
    assert record.code_hash == hashlib.sha256(code.encode()).hexdigest()
    assert record.code_expires_at == now + timedelta(seconds=3600)
    assert len(code) >= 40


def test_a_code_confirms_once(factory, unique_repo, settings, mailer, smtp):
    code = request_code(factory, unique_repo, settings, mailer, smtp)
    with transaction(factory) as session:
        assert not is_confirmed(session, unique_repo, ADDRESS)
        record = confirm(session, code)
        assert (record.email, record.repository, record.confirmed) == (ADDRESS, unique_repo, True)
    with transaction(factory) as session:
        assert is_confirmed(session, unique_repo, ADDRESS)
        assert get_authorization(session, unique_repo, ADDRESS).code_hash is None
        with pytest.raises(NotFound, match="^Unknown or already used confirmation code$"):
            confirm(session, code)


@pytest.mark.parametrize("code", ["", "not-a-code", None])
def test_an_unknown_code_is_not_found(factory, code):
    with transaction(factory) as session, pytest.raises(NotFound):
        confirm(session, code)


def test_an_expired_code_is_refused(factory, unique_repo, settings, mailer, smtp):
    sent_at = utcnow() - timedelta(days=1)
    code = request_code(factory, unique_repo, settings, mailer, smtp, now=sent_at)
    with transaction(factory) as session:
        with pytest.raises(InvalidInput, match="^The confirmation code has expired$"):
            confirm(session, code, now=sent_at + timedelta(seconds=3600))
        assert confirm(session, code, now=sent_at + timedelta(seconds=3599)).confirmed


def test_asking_again_replaces_the_code(factory, unique_repo, settings, mailer, smtp):
    first = request_code(factory, unique_repo, settings, mailer, smtp)
    second = request_code(factory, unique_repo, settings, mailer, smtp)
    assert first != second
    assert len(stored(factory, unique_repo)) == 1
    with transaction(factory) as session:
        with pytest.raises(NotFound):
            confirm(session, first)
        assert confirm(session, second).confirmed


def test_a_confirmed_address_gets_no_second_mail(factory, unique_repo, settings, mailer, smtp):
    code = request_code(factory, unique_repo, settings, mailer, smtp)
    with transaction(factory) as session:
        confirm(session, code)
    with transaction(factory) as session:
        record = authorize(session, unique_repo, ADDRESS, settings=settings, mailer=mailer)
    assert record.confirmed
    assert len(smtp.inbox.envelopes) == 1


def test_the_domain_is_matched_in_any_case(factory, unique_repo, settings, mailer, smtp):
    code = request_code(factory, unique_repo, settings, mailer, smtp, address="Dev@Example.COM")
    with transaction(factory) as session:
        assert confirm(session, code).email == "Dev@example.com"
        assert is_confirmed(session, unique_repo, "Dev@EXAMPLE.com")
        assert not is_confirmed(session, unique_repo, "dev@example.com")


def test_confirmation_is_per_repository(factory, unique_repo, settings, mailer, smtp):
    code = request_code(factory, unique_repo, settings, mailer, smtp)
    with transaction(factory) as session:
        confirm(session, code)
        assert not is_confirmed(session, unique_repo + "-other", ADDRESS)
        with pytest.raises(NotFound):
            get_authorization(session, unique_repo + "-other", ADDRESS)


@pytest.mark.parametrize("address", [
    "dev@example.com\r\nBcc: victim@example.net",
    "dev@example.com\nBcc: victim@example.net",
    "dev@example.com\n",
    "dev@example.com, victim@example.net",
    "Dev <dev@example.com>",
    "dev @example.com",
    "dev@exa mple.com",
    "dev@@example.com",
    "dev@example.com@other.com",
    "devexample.com",
    "@example.com",
    "dev@",
    "",
    "a" * 310 + "@example.com",
])
def test_a_bad_address_is_refused_and_nothing_is_sent(factory, unique_repo, settings, mailer,
                                                      smtp, address):
    with transaction(factory) as session, pytest.raises(InvalidInput, match="Invalid e-mail"):
        authorize(session, unique_repo, address, settings=settings, mailer=mailer)
    assert smtp.inbox.envelopes == []
    assert stored(factory, unique_repo, address) == []


def test_a_bad_repository_is_refused(factory, settings, mailer, smtp):
    with transaction(factory) as session, pytest.raises(InvalidInput, match="namespace/name"):
        authorize(session, "no-slash", ADDRESS, settings=settings, mailer=mailer)
    assert smtp.inbox.envelopes == []


def test_nothing_is_stored_when_the_mail_cannot_be_sent(factory, unique_repo, settings):
    unreachable = Mailer.from_settings(settings.model_copy(update={"smtp_port": free_port()}))
    with pytest.raises(RetryableDeliveryError):
        with transaction(factory) as session:
            authorize(session, unique_repo, ADDRESS, settings=settings, mailer=unreachable)
    assert stored(factory, unique_repo) == []


def test_a_confirmation_code_never_starts_like_an_option():
    from notifier.email_auth import _new_code

    assert not any(_new_code().startswith("-") for _ in range(2000))  # 1 in 64 would
