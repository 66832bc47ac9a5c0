"""Showing secrets without giving them away: the last 4 characters at most."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "****"
SHOWN = 4
# A path segment that looks like a token: 16+ URL-safe characters with letters and digits
# (a word such as "repository-notifications" is not one).
TOKEN_SEGMENT = re.compile(r"(?=[^/]*[0-9])(?=[^/]*[A-Za-z])[A-Za-z0-9_.~+=%-]{16,}")


def mask(value: object) -> str:
    """``****`` followed by the last 4 characters (none of a value shorter than 12)."""
    text = "" if value is None else str(value)
    return MASK + (text[-SHOWN:] if len(text) >= 3 * SHOWN else "")


def mask_url(url: str) -> str:
    """A URL with its password, every query value and token-like path segments masked; the
    host and the rest of the path stay readable."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{hostport}" if ":" in userinfo else f"{MASK}@{hostport}"
    query = urlencode([(key, mask(value)) for key, value in parse_qsl(parts.query, True)],
                      safe="*")
    path = "/".join(mask(segment) if TOKEN_SEGMENT.fullmatch(segment) else segment
                    for segment in parts.path.split("/"))
    return urlunsplit((parts.scheme, netloc, path, query, ""))
