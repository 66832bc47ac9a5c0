"""Per-notification filters (``event_config``): ``ref-regex`` for builds, ``level`` for
vulnerabilities. Checked when a notification is created, applied at fan-out.

A ``ref-regex`` is any user's pattern, run inside the fan-out on a producer's ref: it runs on
RE2 (google-re2), whose matching time is linear in the ref's length whatever the pattern, so no
pattern can stall the fan-out. RE2 has no backreferences, lookaround or atomic groups; a pattern
using them is refused when the notification is created.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

from notifier.errors import InvalidNotificationConfig

MAX_PATTERN_CHARS = 512  # a ref-regex longer than this is refused
MAX_REF_CHARS = 1024  # a longer ref matches no ref-regex (Git itself keeps refs far shorter)
PATTERN_MEMORY_BYTES = 1 << 20  # RE2's budget for one compiled pattern
PATTERN_CACHE_SIZE = 256  # compiled patterns kept per process: at most this many budgets
RE2_SYNTAX_HINT = ("ref-regex uses RE2 syntax: no backreferences (\\1), lookahead or "
                   "lookbehind ((?=...), (?<=...)), and repetition counts up to 1000")

SEVERITIES = ("Critical", "High", "Medium", "Low", "Negligible", "Unknown")
_SEVERITY_INDEX = {name.lower(): index for index, name in enumerate(SEVERITIES)}


def severity_index(priority: Any) -> int:
    """Critical=0 … Unknown=5; anything unrecognised counts as Unknown."""
    return _SEVERITY_INDEX.get(str(priority).lower(), len(SEVERITIES) - 1)


def level_threshold(level: Any) -> int:
    """A ``level`` given as an index or a severity name, as an index."""
    if isinstance(level, bool):
        raise InvalidNotificationConfig(f"Invalid level {level!r}")
    if isinstance(level, int) or (isinstance(level, str) and level.strip().isdigit()):
        index = int(level)
        if 0 <= index < len(SEVERITIES):
            return index
    elif isinstance(level, str) and level.strip().lower() in _SEVERITY_INDEX:
        return _SEVERITY_INDEX[level.strip().lower()]
    raise InvalidNotificationConfig(
        f"Invalid level {level!r}: use an index 0-5 or one of {', '.join(SEVERITIES)}")


def check_keys(event: str, event_config: dict, allowed: frozenset[str]) -> None:
    unknown = sorted(set(event_config) - allowed)
    if unknown:
        raise InvalidNotificationConfig(
            f"Unknown eventConfig key {unknown[0]!r} for event '{event}'")


def check_ref_regex(event_config: dict) -> None:
    pattern = event_config.get("ref-regex")
    if pattern in (None, ""):
        return
    if not isinstance(pattern, str):
        raise InvalidNotificationConfig("Invalid ref-regex: must be a string")
    compile_pattern(pattern)


def compile_pattern(pattern: str) -> Any:
    """A user's pattern compiled by RE2; InvalidNotificationConfig says why RE2 cannot run it."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InvalidNotificationConfig(
            f"Invalid ref-regex: {len(pattern)} characters, at most {MAX_PATTERN_CHARS}")
    return _compiled(pattern)


@lru_cache(maxsize=PATTERN_CACHE_SIZE)
def _compiled(pattern: str) -> Any:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = PATTERN_MEMORY_BYTES
    try:
        return re2.compile(pattern, options)
    except UnicodeEncodeError:
        raise InvalidNotificationConfig("Invalid ref-regex: not valid Unicode text") from None
    except re2.error as exc:
        problem = exc.args[0].decode(errors="replace") if exc.args else "cannot compile it"
        shown = pattern if len(pattern) <= 80 else pattern[:80] + "..."
        raise InvalidNotificationConfig(
            f"Invalid ref-regex {shown!r}: {problem}; {RE2_SYNTAX_HINT}") from None


def ref_matches(event_config: dict, data: dict) -> bool:
    """Whether the build's ref matches ``ref-regex`` from its start (as Python's re.match).

    A missing or over-long ref, or a stored pattern RE2 refuses, does not fire.
    """
    pattern = event_config.get("ref-regex")
    if not pattern:
        return True
    metadata = data.get("trigger_metadata")
    ref = metadata.get("ref") if isinstance(metadata, dict) else None
    if not isinstance(pattern, str) or not isinstance(ref, str) or len(ref) > MAX_REF_CHARS:
        return False
    try:
        return compile_pattern(pattern).match(ref) is not None
    except (InvalidNotificationConfig, UnicodeEncodeError):  # a ref that is not valid text
        return False


def severity_name(index: int) -> str:
    return SEVERITIES[index]


def all_vulnerabilities(data: dict) -> list[dict]:
    """An event's vulnerabilities: the ``vulnerabilities`` list, else the one ``vulnerability``."""
    return list(data.get("vulnerabilities") or [data.get("vulnerability") or {}])


def passing_vulnerabilities(event_config: dict, data: dict) -> list[dict]:
    """The vulnerabilities of an event that are at or above the configured level."""
    found = all_vulnerabilities(data)
    if event_config.get("level") in (None, ""):
        return list(found)
    threshold = level_threshold(event_config["level"])
    return [v for v in found if severity_index(v.get("priority")) <= threshold]


def check_level(event_config: dict) -> None:
    if event_config.get("level") not in (None, ""):
        level_threshold(event_config["level"])
