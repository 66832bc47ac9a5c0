"""The event table: required data, the payload's base fields, and the per-notification filters."""

from __future__ import annotations


import pytest

from notifier.errors import (
    InvalidEventData,
    InvalidInput,
    InvalidNotificationConfig,
    UnknownEvent,
)
from notifier.events import EVENTS, build_event_data, get_event, split_repository, validate_event
from notifier.filters import passing_vulnerabilities

REPOSITORY = "acme/web"
BUILD_EVENTS = ("build_queued", "build_start", "build_success", "build_failure",
                "build_cancelled")
MIRROR_EVENTS = ("repo_mirror_sync_started", "repo_mirror_sync_success",
                 "repo_mirror_sync_failed")

# events.md: name → (title, level, data a producer may send)
SPEC = {
    "repo_push": ("Push to Repository", "primary", {"updated_tags": ["latest", "v1"]}),
    "build_queued": ("Dockerfile Build Queued", "info", {"build_id": "abc1234def"}),
    "build_start": ("Dockerfile Build Started", "info", {"build_id": "abc1234def"}),
    "build_success": ("Dockerfile Build Successfully Completed", "success",
                      {"build_id": "abc1234def"}),
    "build_failure": ("Dockerfile Build Failed", "error", {"build_id": "abc1234def"}),
    "build_cancelled": ("Dockerfile Build Cancelled", "info", {"build_id": "abc1234def"}),
    "vulnerability_found": ("Package Vulnerability Found", "info",
                            {"tags": ["latest"],
                             "vulnerability": {"id": "CVE-1", "priority": "High"}}),
    "repo_mirror_sync_started": ("Repository Mirror Started", "info", {"message": "src/img"}),
    "repo_mirror_sync_success": ("Repository Mirror Success", "success", {"message": "src/img"}),
    "repo_mirror_sync_failed": ("Repository Mirror Unsuccessful", "error",
                                {"message": "src/img"}),
}


def vulnerability(priority: str) -> dict:
    return {"id": f"CVE-{priority}", "priority": priority}


def build_data(ref: str | None) -> dict:
    return {"build_id": "b1", "trigger_metadata": {} if ref is None else {"ref": ref}}


def vulnerability_data(*priorities: str) -> dict:
    if len(priorities) == 1:
        return {"vulnerability": vulnerability(priorities[0])}
    return {"vulnerabilities": [vulnerability(p) for p in priorities]}


# --- the table ---------------------------------------------------------------------------

def test_the_table_holds_exactly_the_ten_events():
    assert set(EVENTS) == set(SPEC)


@pytest.mark.parametrize("event", sorted(SPEC))
def test_title_and_level_follow_the_spec(event):
    title, level, _ = SPEC[event]
    assert (get_event(event).title, get_event(event).level) == (title, level)


@pytest.mark.parametrize("event", sorted(SPEC))
def test_valid_data_is_accepted(event):
    data = SPEC[event][2]
    assert validate_event(REPOSITORY, event, data) == data


def test_a_vulnerabilities_list_is_accepted():
    data = vulnerability_data("High", "Low")
    assert validate_event(REPOSITORY, "vulnerability_found", data) == data


def refused_cases():
    """(event, data, the field the message must name)."""
    yield "repo_push", {}, "updated_tags"
    yield "repo_push", {"updated_tags": []}, "updated_tags"
    yield "repo_push", {"updated_tags": ["latest", 7]}, "updated_tags"
    yield "repo_push", {"updated_tags": "latest"}, "updated_tags"
    for event in BUILD_EVENTS:
        yield event, {}, "build_id"
        yield event, {"build_id": 42}, "build_id"
        yield event, {"build_id": ""}, "build_id"
    yield "vulnerability_found", {}, "vulnerability"
    yield "vulnerability_found", {"vulnerability": "High"}, "vulnerability"
    yield "vulnerability_found", {"vulnerability": {"id": "CVE-1"}}, "vulnerability.priority"
    yield "vulnerability_found", {"vulnerability": {"priority": 1}}, "vulnerability.priority"
    yield "vulnerability_found", {"vulnerabilities": []}, "vulnerabilities"
    yield "vulnerability_found", {"vulnerabilities": vulnerability("High")}, "vulnerabilities"
    yield ("vulnerability_found", {"vulnerabilities": [vulnerability("High"), {"id": "CVE-2"}]},
           "vulnerabilities[1].priority")
    for event in MIRROR_EVENTS:
        yield event, {}, "message"
        yield event, {"message": ["not", "text"]}, "message"


@pytest.mark.parametrize(("event", "data", "field"), list(refused_cases()))
def test_missing_or_mistyped_data_is_refused_naming_event_and_field(event, data, field):
    with pytest.raises(InvalidEventData) as caught:
        validate_event(REPOSITORY, event, data)

    assert f"event '{event}'" in str(caught.value)
    assert f"'{field}'" in str(caught.value)


@pytest.mark.parametrize("data", ["text", ["updated_tags"], 3])
def test_data_that_is_not_an_object_is_refused(data):
    with pytest.raises(InvalidEventData, match="data must be a JSON object"):
        validate_event(REPOSITORY, "repo_push", data)


def test_no_data_counts_as_an_empty_object():
    with pytest.raises(InvalidEventData, match="'updated_tags'"):
        validate_event(REPOSITORY, "repo_push", None)


@pytest.mark.parametrize("name", ["x", "REPO_PUSH", "", None])
def test_an_unknown_event_is_refused(name):
    with pytest.raises(UnknownEvent) as caught:
        validate_event(REPOSITORY, name, {})

    assert str(caught.value) == f"Unknown event '{name}'"
    assert isinstance(caught.value, InvalidInput)


# --- the payload ------------------------------------------------------------------------------

def event_data(repository: str, event: str, data: dict) -> dict:
    return build_event_data(repository, event, data, server_hostname="registry.example.com",
                            scheme="https")


def test_the_payload_is_the_five_base_fields_plus_the_data():
    assert event_data("acme/web", "repo_push", {"updated_tags": ["v1"]}) == {
        "repository": "acme/web",
        "namespace": "acme",
        "name": "web",
        "docker_url": "registry.example.com/acme/web",
        "homepage": "https://registry.example.com/repository/acme/web",
        "updated_tags": ["v1"],
    }


def test_a_name_with_a_slash_splits_on_the_first_only():
    payload = event_data("acme/team/web", "repo_push", {"updated_tags": ["v1"]})

    assert (payload["namespace"], payload["name"]) == ("acme", "team/web")
    assert payload["repository"] == "acme/team/web"
    assert payload["docker_url"] == "registry.example.com/acme/team/web"
    assert payload["homepage"] == "https://registry.example.com/repository/acme/team/web"


@pytest.mark.parametrize("event", BUILD_EVENTS)
def test_build_homepages_point_at_the_build(event):
    payload = event_data("acme/web", event, {"build_id": "abc1234def"})
    assert payload["homepage"] == (
        "https://registry.example.com/repository/acme/web/build/abc1234def")


@pytest.mark.parametrize("event", [e for e in SPEC if e not in BUILD_EVENTS])
def test_other_homepages_are_the_repository(event):
    payload = event_data("acme/web", event, SPEC[event][2])
    assert payload["homepage"] == "https://registry.example.com/repository/acme/web"


@pytest.mark.parametrize(
    "repository",
    ["", "noslash", "/web", "acme/", "acme /web", "acme/we b", "acme/web\n", "\tacme/web",
     None, 42, ["acme", "web"]],
)
def test_a_bad_repository_is_refused(repository):
    with pytest.raises(InvalidInput, match="namespace/name"):
        split_repository(repository)
    with pytest.raises(InvalidInput, match="namespace/name"):
        validate_event(repository, "repo_push", SPEC["repo_push"][2])


# --- filters: ref-regex -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("event_config", "ref", "fires"),
    [
        ({}, None, True),
        ({"ref-regex": ""}, None, True),
        ({"ref-regex": "refs/heads/main"}, "refs/heads/main", True),
        ({"ref-regex": "refs/heads/main"}, "refs/heads/main-old", True),  # re.match: start only
        ({"ref-regex": "heads/main"}, "refs/heads/main", False),  # anchored at the start
        ({"ref-regex": "refs/heads/.*"}, "refs/tags/v1", False),
        ({"ref-regex": r"refs/tags/v\d+"}, "refs/tags/v12", True),
        ({"ref-regex": "refs/.*"}, None, False),  # a build without a ref does not fire
    ],
)
def test_ref_regex(event_config, ref, fires):
    assert get_event("build_success").passes(event_config, build_data(ref)) is fires


@pytest.mark.parametrize("data", [{"build_id": "b1"}, {"build_id": "b1", "trigger_metadata": None},
                                  {"build_id": "b1", "trigger_metadata": {"ref": 5}}])
def test_ref_regex_without_a_usable_ref_does_not_fire(data):
    assert get_event("build_start").passes({"ref-regex": ".*"}, data) is False


@pytest.mark.parametrize("event", BUILD_EVENTS)
def test_every_build_event_applies_ref_regex(event):
    event_type = get_event(event)
    event_type.validate_event_config({"ref-regex": "refs/heads/main"})

    assert event_type.passes({"ref-regex": "refs/heads/main"}, build_data("refs/heads/main"))
    assert not event_type.passes({"ref-regex": "refs/heads/main"}, build_data("refs/tags/v1"))


@pytest.mark.parametrize("pattern", ["refs/(heads", "[a-", "*main", "(?P<x"])
def test_an_invalid_ref_regex_is_refused_quoting_the_error(pattern):
    with pytest.raises(InvalidNotificationConfig) as caught:
        get_event("build_success").validate_event_config({"ref-regex": pattern})

    assert str(caught.value).startswith(f"Invalid ref-regex {pattern!r}: ")
    assert "RE2 syntax" in str(caught.value)


def test_a_ref_regex_that_is_not_text_is_refused():
    with pytest.raises(InvalidNotificationConfig, match="ref-regex"):
        get_event("build_success").validate_event_config({"ref-regex": 5})


# --- filters: vulnerability level ----------------------------------------------------------------

@pytest.mark.parametrize(
    ("level", "priority", "fires"),
    [
        (None, "Unknown", True),  # no level: all fire
        ("", "Negligible", True),
        (0, "Critical", True),
        (0, "High", False),
        (1, "High", True),
        (1, "Medium", False),
        ("2", "Medium", True),  # an index given as text
        ("High", "Critical", True),
        ("high", "HIGH", True),  # names compare case-insensitively
        ("HIGH", "medium", False),
        (" Medium ", "Medium", True),
        ("Low", "Negligible", False),
        (5, "no-such-severity", True),  # an unknown severity counts as Unknown...
        (4, "no-such-severity", False),  # ...which is below Negligible
        ("Negligible", "Unknown", False),
    ],
)
def test_level(level, priority, fires):
    event_config = {} if level is None else {"level": level}
    get_event("vulnerability_found").validate_event_config(event_config)

    assert get_event("vulnerability_found").passes(event_config, vulnerability_data(priority)) \
        is fires


@pytest.mark.parametrize(
    ("priorities", "passing"),
    [
        (("Low", "Critical", "Unknown"), ["Critical"]),
        (("High", "Medium", "Critical"), ["High", "Critical"]),
        (("Low", "Medium"), []),
    ],
)
def test_a_vulnerabilities_list_fires_if_any_passes(priorities, passing):
    event_config, data = {"level": "High"}, vulnerability_data(*priorities)

    assert get_event("vulnerability_found").passes(event_config, data) is bool(passing)
    assert [v["priority"] for v in passing_vulnerabilities(event_config, data)] == passing


@pytest.mark.parametrize("level", [6, -1, "6", "Severe", True, 1.5, [1]])
def test_a_bad_level_is_refused(level):
    with pytest.raises(InvalidNotificationConfig, match="Invalid level"):
        get_event("vulnerability_found").validate_event_config({"level": level})


# --- filters: which keys an event understands ------------------------------------------------

@pytest.mark.parametrize(
    ("event", "event_config"),
    [
        ("repo_push", {}),
        ("repo_mirror_sync_failed", {}),
        ("build_failure", {"ref-regex": "refs/heads/main"}),
        ("vulnerability_found", {"level": "Critical"}),
        ("vulnerability_found", {"level": 3}),
    ],
)
def test_an_understood_event_config_is_accepted(event, event_config):
    get_event(event).validate_event_config(event_config)


@pytest.mark.parametrize(
    ("event", "event_config", "key"),
    [
        ("repo_push", {"level": 1}, "level"),
        ("repo_push", {"ref-regex": "refs/heads/main"}, "ref-regex"),
        ("build_success", {"level": 1}, "level"),
        ("vulnerability_found", {"ref-regex": "refs/"}, "ref-regex"),
        ("repo_mirror_sync_started", {"anything": True}, "anything"),
        ("build_queued", {"ref-regex": "refs/", "refregex": "x"}, "refregex"),
    ],
)
def test_an_unknown_event_config_key_is_refused(event, event_config, key):
    with pytest.raises(InvalidNotificationConfig) as caught:
        get_event(event).validate_event_config(event_config)

    assert str(caught.value) == f"Unknown eventConfig key {key!r} for event '{event}'"


# --- accepted data must never break a filter -----------------------------------------------------

@pytest.mark.parametrize(
    ("event", "event_config", "data"),
    [
        ("build_success", {"ref-regex": "refs/"},
                     {"build_id": "b1", "trigger_metadata": "refs/heads/main"}),
        ("build_start", {"ref-regex": "refs/"},
                     {"build_id": "b1", "trigger_metadata": ["refs/heads/main"]}),
        ("vulnerability_found", {"level": "High"},
                     {"vulnerability": vulnerability("Low"), "vulnerabilities": "Critical"}),
        ("build_success", {"ref-regex": "refs/"}, {"build_id": "b1", "trigger_metadata": None}),
    ],
)
def test_data_accepted_at_publish_can_be_filtered(event, event_config, data):
    try:
        validate_event(REPOSITORY, event, data)
    except InvalidEventData:
        return  # refusing it at publish time is a fine answer too
    assert get_event(event).passes(event_config, data) in (True, False)


@pytest.mark.parametrize(("repository", "says"), [
    ("acme/we\x00b", "control characters"),
    ("acme/web\x1b[31m", "control characters"),
    ("ac\u202eme/web", "control characters"),  # right-to-left override
    ("a" * 256 + "/web", "at most 255 characters each"),
    ("acme/" + "w" * 256, "at most 255 characters each"),
])
def test_a_repository_name_with_control_characters_or_too_long_is_refused(repository, says):
    with pytest.raises(InvalidInput, match=says):
        validate_event(repository, "repo_push", {"updated_tags": ["v1"]})
