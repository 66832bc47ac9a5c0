"""The repository events: one table row per event, and the payload every receiver gets.

Adding an event is adding one entry to ``EVENTS`` and its folder of message templates.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, Callable

from notifier import filters
from notifier.errors import InvalidEventData, InvalidInput, UnknownEvent

Data = dict[str, Any]


# --- what producers must send ------------------------------------------------------------------

def _fail(event: str, field: str, must: str) -> InvalidEventData:
    return InvalidEventData(f"event '{event}': field '{field}' must be {must}")


def _string_list(event: str, data: Data, field: str, *, required: bool) -> None:
    value = data.get(field)
    if value is None and not required:
        return
    if not isinstance(value, list) or (required and not value) \
            or not all(isinstance(item, str) for item in value):
        raise _fail(event, field, "a non-empty list of strings" if required else "a list of strings")


def _check_push(event: str, data: Data) -> None:
    _string_list(event, data, "updated_tags", required=True)


def _check_build(event: str, data: Data) -> None:
    if not isinstance(data.get("build_id"), str) or not data["build_id"]:
        raise _fail(event, "build_id", "a non-empty string")
    _string_list(event, data, "docker_tags", required=False)
    if not isinstance(data.get("trigger_metadata", {}), (dict, type(None))):
        raise _fail(event, "trigger_metadata", "an object")


def _check_vulnerability(event: str, field: str, vulnerability: Any) -> None:
    if not isinstance(vulnerability, dict):
        raise _fail(event, field, "an object")
    if not isinstance(vulnerability.get("priority"), str):
        raise _fail(event, f"{field}.priority", "a string")


def _check_vulnerabilities(event: str, data: Data) -> None:
    if "vulnerability" not in data and "vulnerabilities" not in data:
        raise InvalidEventData(
            f"event '{event}': needs field 'vulnerability' (or a 'vulnerabilities' list)")
    if "vulnerability" in data:
        _check_vulnerability(event, "vulnerability", data["vulnerability"])
    if "vulnerabilities" in data:
        found = data["vulnerabilities"]
        if not isinstance(found, list) or not found:
            raise _fail(event, "vulnerabilities", "a non-empty list")
        for index, vulnerability in enumerate(found):
            _check_vulnerability(event, f"vulnerabilities[{index}]", vulnerability)
    _string_list(event, data, "tags", required=False)


def _check_mirror(event: str, data: Data) -> None:
    if not isinstance(data.get("message"), str):
        raise _fail(event, "message", "a string")


# --- one-line summaries ------------------------------------------------------------------------

def _push_summary(data: Data, _config: Data) -> str:
    return f"Repository {data['repository']} updated"


def _build_summary(verb: str) -> Callable[[Data, Data], str]:
    def summary(data: Data, _config: Data) -> str:
        return f"Build {verb} for repository {data['repository']} [{data['build_id'][:7]}]"
    return summary


def _vulnerability_summary(data: Data, config: Data) -> str:
    found = filters.passing_vulnerabilities(config, data) or filters.all_vulnerabilities(data)
    where = f"in repository {data['repository']} in {len(data.get('tags') or [])} tags"
    top = filters.severity_name(min(filters.severity_index(v.get("priority")) for v in found))
    if len(found) == 1:
        return f"{top} vulnerability detected {where}"
    at_top = sum(filters.severity_name(filters.severity_index(v.get("priority"))) == top
                 for v in found)
    more = len(found) - at_top
    counted = f"{at_top} {top} and {more} more" if more else f"{at_top} {top}"
    return f"{counted} vulnerabilities were detected {where}"


def _mirror_summary(outcome: str) -> Callable[[Data, Data], str]:
    def summary(data: Data, _config: Data) -> str:
        return f"Repository Mirror {outcome} for {data['message']}"
    return summary


# --- samples for "test notification" ----------------------------------------------------------

def _push_sample(_config: Data) -> Data:
    return {"updated_tags": ["latest", "foo"]}


def _build_sample(extra: Data | None = None) -> Callable[[Data], Data]:
    def sample(_config: Data) -> Data:
        return {
            "build_id": "fake-build-id",
            "build_name": "some-fake-build",
            "docker_tags": ["latest", "foo", "bar"],
            "trigger_id": "1245634",
            "trigger_kind": "GitHub",
            "trigger_metadata": {
                "default_branch": "master",
                "ref": "refs/heads/somebranch",
                "commit": "42d4a62c53350993ea41069e9f2cfdefb0df097d",
                "commit_info": {
                    "url": "http://path/to/the/commit",
                    "message": "Some commit message",
                    "date": 1425589320,
                    "author": {"username": "fakeauthor", "url": "http://path/to/fake/author",
                               "avatar_url": "http://www.gravatar.com/avatar/fakehash"},
                },
            },
            **(extra or {}),
        }
    return sample


def _vulnerability_sample(config: Data) -> Data:
    level = config.get("level")
    priority = "Critical" if level in (None, "") else \
        filters.severity_name(filters.level_threshold(level))
    return {
        "tags": ["latest", "prod"],
        "vulnerability": {"id": "CVE-FAKE-CVE", "description": "A futurist vulnerability",
                          "link": "https://security-tracker.debian.org/tracker/CVE-FAKE-CVE",
                          "priority": priority, "has_fix": True},
    }


def _mirror_sample(_config: Data) -> Data:
    return {"message": "TEST NOTIFICATION"}


# --- the table ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class EventType:
    name: str
    title: str
    level: str  # colour of chat messages; vulnerability_found derives it from the severity
    kind: str  # push | build | vulnerability | mirror
    check_data: Callable[[str, Data], None]
    summarize: Callable[[Data, Data], str]
    sample: Callable[[Data], Data]

    @property
    def is_build(self) -> bool:
        return self.kind == "build"

    @property
    def filter_keys(self) -> frozenset[str]:
        return {"build": frozenset({"ref-regex"}),
                "vulnerability": frozenset({"level"})}.get(self.kind, frozenset())

    def validate(self, data: Data) -> None:
        self.check_data(self.name, data)

    def validate_event_config(self, event_config: Data) -> None:
        """Refuse filters this event does not know and filter values that cannot work."""
        filters.check_keys(self.name, event_config, self.filter_keys)
        filters.check_ref_regex(event_config)
        filters.check_level(event_config)

    def passes(self, event_config: Data, data: Data) -> bool:
        """Whether a notification with this ``event_config`` fires for this event data."""
        if self.kind == "build":
            return filters.ref_matches(event_config, data)
        if self.kind == "vulnerability":
            return bool(filters.passing_vulnerabilities(event_config, data))
        return True

    def summary(self, data: Data, event_config: Data | None = None) -> str:
        """One line: e-mail subject, Slack text, in-app title."""
        return self.summarize(data, event_config or {})

    def level_for(self, data: Data, event_config: Data | None = None) -> str:
        """The level (chat colour) of this event's message."""
        if self.kind != "vulnerability":
            return self.level
        found = filters.passing_vulnerabilities(event_config or {}, data) \
            or filters.all_vulnerabilities(data)
        worst = min(filters.severity_index(v.get("priority")) for v in found)
        return "error" if worst == 0 else "warning" if worst in (1, 2) else "info"


EVENTS: dict[str, EventType] = {
    event.name: event
    for event in (
        EventType("repo_push", "Push to Repository", "primary", "push",
                  _check_push, _push_summary, _push_sample),
        EventType("build_queued", "Dockerfile Build Queued", "info", "build",
                  _check_build, _build_summary("queued"), _build_sample()),
        EventType("build_start", "Dockerfile Build Started", "info", "build",
                  _check_build, _build_summary("started"), _build_sample()),
        EventType("build_success", "Dockerfile Build Successfully Completed", "success", "build",
                  _check_build, _build_summary("succeeded"), _build_sample()),
        EventType("build_failure", "Dockerfile Build Failed", "error", "build",
                  _check_build, _build_summary("failure"),
                  _build_sample({"error_message": "This is a fake error message"})),
        EventType("build_cancelled", "Dockerfile Build Cancelled", "info", "build",
                  _check_build, _build_summary("cancelled"), _build_sample()),
        EventType("vulnerability_found", "Package Vulnerability Found", "info", "vulnerability",
                  _check_vulnerabilities, _vulnerability_summary, _vulnerability_sample),
        EventType("repo_mirror_sync_started", "Repository Mirror Started", "info", "mirror",
                  _check_mirror, _mirror_summary("started"), _mirror_sample),
        EventType("repo_mirror_sync_success", "Repository Mirror Success", "success", "mirror",
                  _check_mirror, _mirror_summary("success"), _mirror_sample),
        EventType("repo_mirror_sync_failed", "Repository Mirror Unsuccessful", "error", "mirror",
                  _check_mirror, _mirror_summary("failed"), _mirror_sample),
    )
}


def get_event(name: str) -> EventType:
    """The event type called ``name``; UnknownEvent otherwise."""
    try:
        return EVENTS[name]
    except (KeyError, TypeError):
        raise UnknownEvent(str(name)) from None


REPOSITORY_PART_MAX = 255  # characters of a namespace, and of a repository's name (as Quay)


def split_repository(repository: str) -> tuple[str, str]:
    """``ns/name`` → (ns, name), splitting on the first ``/`` only."""
    if not isinstance(repository, str):
        raise InvalidInput("repository must be a string of the form 'namespace/name'")
    namespace, _, name = repository.partition("/")
    if not namespace or not name or any(c.isspace() for c in repository):
        raise InvalidInput(
            f"repository {repository!r} must be of the form 'namespace/name' without spaces"
        )
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in repository):
        raise InvalidInput(f"repository {repository[:80]!r} must not contain control characters")
    if len(namespace) > REPOSITORY_PART_MAX or len(name) > REPOSITORY_PART_MAX:
        raise InvalidInput(f"repository {repository[:80]!r}...: its namespace and its name may "
                           f"have at most {REPOSITORY_PART_MAX} characters each")
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


def sample_data(event: str, event_config: Data | None = None) -> Data:
    """Plausible data for a test notification (merged under the real repository's base fields)."""
    return get_event(event).sample(event_config or {})
