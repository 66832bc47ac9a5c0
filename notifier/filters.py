"""Per-notification filters (``event_config``): ``ref-regex`` for builds, ``level`` for
vulnerabilities. Checked when a notification is created, applied at fan-out."""

from __future__ import annotations

import re
from typing import Any

from notifier.errors import InvalidNotificationConfig

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
    try:
        re.compile(pattern)
    except re.error as exc:
        raise InvalidNotificationConfig(f"Invalid ref-regex {pattern!r}: {exc}") from None


def ref_matches(event_config: dict, data: dict) -> bool:
    pattern = event_config.get("ref-regex")
    if not pattern:
        return True
    metadata = data.get("trigger_metadata")
    ref = metadata.get("ref") if isinstance(metadata, dict) else None
    return isinstance(ref, str) and re.match(pattern, ref) is not None


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
