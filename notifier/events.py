"""The repository events: one table row per event, and the payload every receiver gets.

Adding an event is adding one entry to ``EVENTS`` (and, later, its templates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from notifier import filters
from notifier.errors import InvalidEventData, InvalidInput, UnknownEvent

Data = dict[str, Any]


def _needs_tag_list(event: str, data: Data) -> None:
    tags = data.get("updated_tags")
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags):
        raise InvalidEventData(
            f"event '{event}': field 'updated_tags' must be a non-empty list of strings"
        )


def _needs_build_id(event: str, data: Data) -> None:
    build_id = data.get("build_id")
    if not isinstance(build_id, str) or not build_id:
        raise InvalidEventData(f"event '{event}': field 'build_id' must be a non-empty string")
    if not isinstance(data.get("trigger_metadata", {}), (dict, type(None))):
        raise InvalidEventData(f"event '{event}': field 'trigger_metadata' must be an object")


def _needs_message(event: str, data: Data) -> None:
    if not isinstance(data.get("message"), str):
        raise InvalidEventData(f"event '{event}': field 'message' must be a string")


def _check_vulnerability(event: str, field: str, vulnerability: Any) -> None:
    if not isinstance(vulnerability, dict):
        raise InvalidEventData(f"event '{event}': field '{field}' must be an object")
    if not isinstance(vulnerability.get("priority"), str):
        raise InvalidEventData(f"event '{event}': field '{field}.priority' must be a string")


def _needs_vulnerability(event: str, data: Data) -> None:
    if "vulnerability" not in data and "vulnerabilities" not in data:
        raise InvalidEventData(
            f"event '{event}': needs field 'vulnerability' (or a 'vulnerabilities' list)"
        )
    if "vulnerability" in data:
        _check_vulnerability(event, "vulnerability", data["vulnerability"])
    if "vulnerabilities" in data:
        found = data["vulnerabilities"]
        if not isinstance(found, list) or not found:
            raise InvalidEventData(
                f"event '{event}': field 'vulnerabilities' must be a non-empty list"
            )
        for index, vulnerability in enumerate(found):
            _check_vulnerability(event, f"vulnerabilities[{index}]", vulnerability)


@dataclass(frozen=True)
class EventType:
    name: str
    title: str
    level: str
    check_data: Callable[[str, Data], None]
    is_build: bool = False

    @property
    def filter_keys(self) -> frozenset[str]:
        if self.is_build:
            return frozenset({"ref-regex"})
        if self.name == "vulnerability_found":
            return frozenset({"level"})
        return frozenset()

    def validate(self, data: Data) -> None:
        self.check_data(self.name, data)

    def validate_event_config(self, event_config: Data) -> None:
        """Refuse filters this event does not know and filter values that cannot work."""
        filters.check_keys(self.name, event_config, self.filter_keys)
        filters.check_ref_regex(event_config)
        filters.check_level(event_config)

    def passes(self, event_config: Data, data: Data) -> bool:
        """Whether a notification with this ``event_config`` fires for this event data."""
        if self.is_build:
            return filters.ref_matches(event_config, data)
        if self.name == "vulnerability_found":
            return bool(filters.passing_vulnerabilities(event_config, data))
        return True


EVENTS: dict[str, EventType] = {
    event.name: event
    for event in (
        EventType("repo_push", "Push to Repository", "primary", _needs_tag_list),
        EventType("build_queued", "Dockerfile Build Queued", "info", _needs_build_id, True),
        EventType("build_start", "Dockerfile Build Started", "info", _needs_build_id, True),
        EventType("build_success", "Dockerfile Build Successfully Completed", "success",
                  _needs_build_id, True),
        EventType("build_failure", "Dockerfile Build Failed", "error", _needs_build_id, True),
        EventType("build_cancelled", "Dockerfile Build Cancelled", "info", _needs_build_id, True),
        EventType("vulnerability_found", "Package Vulnerability Found", "info",
                  _needs_vulnerability),
        EventType("repo_mirror_sync_started", "Repository Mirror Started", "info",
                  _needs_message),
        EventType("repo_mirror_sync_success", "Repository Mirror Success", "success",
                  _needs_message),
        EventType("repo_mirror_sync_failed", "Repository Mirror Unsuccessful", "error",
                  _needs_message),
    )
}


def get_event(name: str) -> EventType:
    """The event type called ``name``; UnknownEvent otherwise."""
    try:
        return EVENTS[name]
    except (KeyError, TypeError):
        raise UnknownEvent(str(name)) from None


def split_repository(repository: str) -> tuple[str, str]:
    """``ns/name`` → (ns, name), splitting on the first ``/`` only."""
    if not isinstance(repository, str):
        raise InvalidInput("repository must be a string of the form 'namespace/name'")
    namespace, _, name = repository.partition("/")
    if not namespace or not name or any(c.isspace() for c in repository):
        raise InvalidInput(
            f"repository {repository!r} must be of the form 'namespace/name' without spaces"
        )
    return namespace, name


def validate_event(repository: str, event: str, data: Any) -> Data:
    """Check an event as a producer hands it over; returns the data (``{}`` for None)."""
    split_repository(repository)
    event_type = get_event(event)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidEventData(f"event '{event}': data must be a JSON object")
    event_type.validate(data)
    return data


def build_event_data(repository: str, event: str, data: Data, *, server_hostname: str,
                     scheme: str) -> Data:
    """The payload receivers get: the five base fields with the producer's data merged on top."""
    namespace, name = split_repository(repository)
    homepage = f"{scheme}://{server_hostname}/repository/{namespace}/{name}"
    if get_event(event).is_build:
        homepage += f"/build/{data['build_id']}"
    base = {
        "repository": f"{namespace}/{name}",
        "namespace": namespace,
        "name": name,
        "docker_url": f"{server_hostname}/{namespace}/{name}",
        "homepage": homepage,
    }
    return {**base, **data}
