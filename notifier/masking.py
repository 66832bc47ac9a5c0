"""Showing secrets without giving them away: the last 4 characters at most."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "****"
SHOWN = 4


def mask(value: object) -> str:
    """``****`` followed by the last 4 characters (none of a value shorter than 12)."""
    text = "" if value is None else str(value)
    return MASK + (text[-SHOWN:] if len(text) >= 3 * SHOWN else "")


def mask_url(url: str) -> str:
    """A URL with its password and every query value masked; host and path stay readable."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{hostport}" if ":" in userinfo else f"{MASK}@{hostport}"
    query = urlencode([(key, mask(value)) for key, value in parse_qsl(parts.query, True)],
                      safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
