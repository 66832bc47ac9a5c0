"""Which e-mail addresses may receive a repository's notifications (as Quay, with expiring codes).

``authorize`` records an address and mails it a single-use confirmation link; ``confirm`` takes
the code from that link. Only a SHA-256 of each code is stored, so a copy of the database cannot
confirm anything.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from config import Settings
from notifier.errors import InvalidInput, NotFound
from notifier.events import split_repository
from notifier.mailer import Mailer
from notifier.models import AuthorizedEmail, utcnow

CODE_BYTES = 32
ADDRESS_MAX = 320  # the column's size, and RFC 5321's limit

# A plain address: dot-atom local part, host name domain. No spaces, quotes, commas, angle
# brackets or line breaks, so it can go into a To header as it is.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")


def normalize_address(address: Any) -> str:
    """``address`` with its domain in lower case; InvalidInput unless it is one plain address."""
    if not isinstance(address, str) or len(address) > ADDRESS_MAX \
            or not ADDRESS.fullmatch(address):
        raise InvalidInput(f"Invalid e-mail address: {address!r}")
    local, _, domain = address.partition("@")
    return f"{local}@{domain.lower()}"


def hash_code(code: str) -> str:
    """What is stored of a confirmation code: its SHA-256, in hex."""
    return hashlib.sha256(code.encode()).hexdigest()


def get_authorization(session: Session, repository: str, address: str) -> AuthorizedEmail:
    """The record for ``address`` on ``repository``, confirmed or not; NotFound otherwise."""
    record = _find(session, repository, normalize_address(address))
    if record is None:
        raise NotFound(f"{address} has no e-mail authorization for {repository}")
    return record


def is_confirmed(session: Session, repository: str, address: Any) -> bool:
    """Whether ``address`` is confirmed for ``repository`` (False for a malformed address)."""
    try:
        record = _find(session, repository, normalize_address(address))
    except InvalidInput:
        return False
    return record is not None and record.confirmed


def unconfirmed_reason(session: Session, repository: str, address: Any) -> str | None:
    """Why ``address`` may not receive ``repository``'s notifications, and what confirms it; None
    when it is confirmed."""
    try:
        address = normalize_address(address)
    except InvalidInput:
        return "it is not one plain e-mail address"
    record = _find(session, repository, address)
    if record is not None and record.confirmed:
        return None
    authorize_command = f"'notifier email authorize {repository} {address}'"
    confirm = "opening the link (or 'notifier email confirm CODE' with its code) confirms it"
    if record is None:
        return (f"{address} is not confirmed for {repository} yet; {authorize_command} mails "
                f"it a confirmation link, and {confirm}")
    return (f"{address} has not used its confirmation link yet; {confirm}, and "
            f"{authorize_command} mails a new link")


def authorize(session: Session, repository: str, address: str, *, settings: Settings,
              mailer: Mailer, now: datetime | None = None) -> AuthorizedEmail:
    """Record ``address`` for ``repository`` and mail it a fresh confirmation link.

    An address already confirmed gets no mail. A failed send raises (a DeliveryError) so that the
    caller's transaction rolls back and nothing is stored.
    """
    split_repository(repository)
    address = normalize_address(address)
    record = _find(session, repository, address)
    if record is not None and record.confirmed:
        return record
    if record is None:
        record = AuthorizedEmail(repository=repository, email=address, confirmed=False)
        session.add(record)
    code = _new_code()
    record.code_hash = hash_code(code)
    record.code_expires_at = (now or utcnow()) + timedelta(seconds=settings.email_code_ttl_s)
    session.flush()
    mailer.send(confirmation_message(record, code, settings))
    return record


def confirm(session: Session, code: Any, *, now: datetime | None = None) -> AuthorizedEmail:
    """Confirm the address whose link carried ``code``; the code cannot be used again."""
    record = None
    if isinstance(code, str) and code:
        record = session.scalars(
            select(AuthorizedEmail).where(AuthorizedEmail.code_hash == hash_code(code))
            .with_for_update()
        ).first()
    if record is None:
        raise NotFound("Unknown or already used confirmation code")
    if record.code_expires_at is None or record.code_expires_at <= (now or utcnow()):
        raise InvalidInput("The confirmation code has expired")
    record.confirmed = True
    record.code_hash = None
    record.code_expires_at = None
    session.flush()
    return record


def confirmation_link(code: str, settings: Settings) -> str:
    """``<scheme>://<server_hostname>/authrepoemail?code=<code>``."""
    query = urlencode({"code": code})
    return f"{settings.preferred_url_scheme}://{settings.server_hostname}/authrepoemail?{query}"


def confirmation_message(record: AuthorizedEmail, code: str, settings: Settings) -> EmailMessage:
    """The e-mail asking the address's owner to confirm."""
    message = EmailMessage()
    message["Subject"] = ("E-mail address authorization requested for repository "
                          f"{record.repository}")
    message["From"] = settings.mail_sender
    message["To"] = record.email
    message.set_content(
        f"Someone asked to send notifications of the repository {record.repository} to this "
        f"address.\n\nTo allow it, open this link:\n\n{confirmation_link(code, settings)}\n\n"
        f"The link works once and expires at "
        f"{record.code_expires_at.isoformat(timespec='minutes')}. "
        f"If you did not ask for this, ignore this message.\n"
    )
    return message


def _find(session: Session, repository: str, address: str) -> AuthorizedEmail | None:
    return session.scalars(
        select(AuthorizedEmail).where(AuthorizedEmail.repository == repository,
                                      AuthorizedEmail.email == address)
    ).first()


def _new_code() -> str:
    """A confirmation code that never starts with '-': `notifier email confirm CODE` would
    read it as an option (one code in 64 did)."""
    while (code := secrets.token_urlsafe(CODE_BYTES)).startswith("-"):
        pass
    return code
