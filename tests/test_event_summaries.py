"""Per event: the one-line summary, the chat level, and the sample data of test notifications."""

from __future__ import annotations

import pytest

from notifier.events import EVENTS, build_event_data, get_event, sample_data

REPO = "acme/web"


def event_data(event: str, data: dict) -> dict:
    return build_event_data(REPO, event, data, server_hostname="registry.example.com",
                            scheme="https")


def vulnerability(priority: str) -> dict:
    return {"id": f"CVE-{priority}", "priority": priority}


BUILD = {"build_id": "abc1234def"}
THREE_TAGS = {"tags": ["a", "b", "c"]}


@pytest.mark.parametrize(
    ("event", "data", "event_config", "summary"),
    [
        ("repo_push", {"updated_tags": ["v1"]}, {}, "Repository acme/web updated"),
        ("build_queued", BUILD, {}, "Build queued for repository acme/web [abc1234]"),
        ("build_start", BUILD, {}, "Build started for repository acme/web [abc1234]"),
        ("build_success", BUILD, {}, "Build succeeded for repository acme/web [abc1234]"),
        ("build_failure", BUILD, {}, "Build failure for repository acme/web [abc1234]"),
        ("build_cancelled", BUILD, {}, "Build cancelled for repository acme/web [abc1234]"),
        ("vulnerability_found", {**THREE_TAGS, "vulnerability": vulnerability("High")}, {},
         "High vulnerability detected in repository acme/web in 3 tags"),
        ("vulnerability_found",
         {**THREE_TAGS, "vulnerabilities": [vulnerability(p) for p in
                                            ["Critical", "critical", "Low", "High", "Medium",
                                             "Unknown", "Negligible"]]}, {},
         "2 Critical and 5 more vulnerabilities were detected in repository acme/web in 3 tags"),
        ("vulnerability_found",
         {**THREE_TAGS, "vulnerabilities": [vulnerability(p) for p in
                                            ["Critical", "Low", "High", "High"]]},
         {"level": "High"},
         "1 Critical and 2 more vulnerabilities were detected in repository acme/web in 3 tags"),
        ("vulnerability_found",
         {**THREE_TAGS, "vulnerabilities": [vulnerability("High"), vulnerability("High")]}, {},
         "2 High vulnerabilities were detected in repository acme/web in 3 tags"),
        ("repo_mirror_sync_started", {"message": "'src.example/img' with tag pattern 'v1.*'"}, {},
         "Repository Mirror started for 'src.example/img' with tag pattern 'v1.*'"),
        ("repo_mirror_sync_success", {"message": "m"}, {}, "Repository Mirror success for m"),
        ("repo_mirror_sync_failed", {"message": "m"}, {}, "Repository Mirror failed for m"),
    ],
)
def test_summary(event, data, event_config, summary):
    assert get_event(event).summary(event_data(event, data), event_config) == summary


@pytest.mark.parametrize(
    ("priorities", "level"),
    [(["Critical"], "error"), (["High"], "warning"), (["Medium"], "warning"),
     (["Low"], "info"), (["Unknown"], "info"), (["whatever"], "info"),
     (["Low", "Critical"], "error"), (["Negligible", "Medium"], "warning")],
)
def test_vulnerability_level_comes_from_the_worst_severity(priorities, level):
    data = event_data("vulnerability_found",
                      {"vulnerabilities": [vulnerability(p) for p in priorities]})
    assert get_event("vulnerability_found").level_for(data) == level


@pytest.mark.parametrize(("event", "level"), [("repo_push", "primary"), ("build_failure", "error"),
                                              ("build_success", "success"),
                                              ("repo_mirror_sync_started", "info")])
def test_other_events_have_a_fixed_level(event, level):
    assert get_event(event).level_for({}) == level


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_sample_data_is_valid_and_passes_the_notifications_own_filter(event):
    event_config = {"level": "Medium"} if event == "vulnerability_found" else {}
    data = sample_data(event, event_config)
    get_event(event).validate(data)
    full = event_data(event, data)
    assert get_event(event).passes(event_config, full)
    assert get_event(event).summary(full, event_config)


def test_sample_data_follows_events_md():
    assert sample_data("repo_push")["updated_tags"] == ["latest", "foo"]
    build = sample_data("build_failure")
    assert (build["build_id"], build["build_name"], build["trigger_kind"]) == (
        "fake-build-id", "some-fake-build", "GitHub")
    assert build["docker_tags"] == ["latest", "foo", "bar"]
    assert build["trigger_metadata"]["ref"] == "refs/heads/somebranch"
    assert build["error_message"] == "This is a fake error message"
    assert "error_message" not in sample_data("build_success")
    assert sample_data("repo_mirror_sync_failed") == {"message": "TEST NOTIFICATION"}
    assert event_data("build_start", sample_data("build_start"))["homepage"] == \
        "https://registry.example.com/repository/acme/web/build/fake-build-id"


@pytest.mark.parametrize(("level", "priority"), [(None, "Critical"), (1, "High"),
                                                 ("medium", "Medium"), ("4", "Negligible")])
def test_sample_vulnerability_has_the_configured_level(level, priority):
    config = {} if level is None else {"level": level}
    found = sample_data("vulnerability_found", config)["vulnerability"]
    assert (found["id"], found["priority"]) == ("CVE-FAKE-CVE", priority)
