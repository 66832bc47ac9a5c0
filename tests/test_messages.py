"""Human messages: wording, links, escaping and robustness of every event's HTML and text body."""

from __future__ import annotations

import html
import re

import pytest

from notifier.errors import UnknownEvent
from notifier.events import EVENTS, build_event_data
from notifier.messages import message_context, render_message, web_url

REPOSITORY = "acme/web"
REPOSITORY_URL = "https://registry.example.com/repository/acme/web"
BUILD_ID = "abc1234def-5678"
BUILD_URL = f"{REPOSITORY_URL}/build/{BUILD_ID}"
ALICE = {"entity_name": "alice", "entity_id": 7}
CHANNELS = ("body.html", "body.txt")


def triggered_build(ref: str = "refs/heads/main", **extra) -> dict:
    """A build started by a GitHub push, as Quay sends it."""
    return {
        "build_id": BUILD_ID, "build_name": "web-ci", "docker_tags": ["latest"],
        "trigger_id": "trigger-1", "trigger_kind": "github",
        "trigger_metadata": {
            "default_branch": "main", "ref": ref, "commit": "1a2b3c4d5e6f7a8b",
            "git_url": "git@github.com:acme/web.git",
            "commit_info": {"url": "https://github.com/acme/web/commit/1a2b3c4",
                            "message": "Fix the thing", "date": "2024-05-01T10:00:00Z",
                            "author": {"username": "octocat",
                                       "url": "https://github.com/octocat"}}},
        **extra,
    }


def manual_build(**extra) -> dict:
    """A build of an uploaded Dockerfile: no trigger."""
    return {"build_id": BUILD_ID, "build_name": "web-upload", "docker_tags": ["latest"],
            "trigger_id": None, "trigger_kind": None, "trigger_metadata": {}, **extra}


def vulnerability(cve: str, priority: str) -> dict:
    return {"id": cve, "description": "bad", "link": f"https://nvd.example/{cve}",
            "priority": priority, "has_fix": True}


# event → (producer data, performer, event_config, phrases in both HTML (visible text) and text)
CASES = {
    "repo_push": ({"updated_tags": ["latest", "v1"]}, ALICE, None,
                  ["alice pushed image(s) to repository acme/web", "tags latest, v1"]),
    "build_queued": (triggered_build(), ALICE, None,
                     ["Build abc1234 queued for repository acme/web",
                      "for change 1a2b3c4 to branch main by octocat"]),
    "build_start": (triggered_build(), {}, None,
                    ["Build abc1234 started for repository acme/web",
                     "for change 1a2b3c4 to branch main by octocat"]),
    "build_success": (triggered_build(), {}, None,
                      ["Build abc1234 completed successfully for repository acme/web",
                       "for change 1a2b3c4 to branch main by octocat"]),
    "build_failure": (manual_build(error_message="step 3 exited with 1"), {}, None,
                      ["Build abc1234 failed for repository acme/web",
                       "from uploaded Dockerfile", "Error: step 3 exited with 1"]),
    "build_cancelled": (manual_build(), {}, None,
                        ["Build abc1234 was cancelled for repository acme/web",
                         "from uploaded Dockerfile"]),
    "vulnerability_found": ({"tags": ["latest", "v1"],
                             "vulnerability": vulnerability("CVE-2024-1234", "High")}, {}, None,
                            ["High vulnerability CVE-2024-1234", "detected in repository acme/web",
                             "in tags latest, v1"]),
    "repo_mirror_sync_started": ({"message": "'src.example/img' with tag pattern 'v1.*'"}, {},
                                 None, ["Repository mirror started for acme/web",
                                        "'src.example/img' with tag pattern 'v1.*'"]),
    "repo_mirror_sync_success": ({"message": "src.example/img"}, {}, None,
                                 ["Repository mirror succeeded for acme/web",
                                  "src.example/img"]),
    "repo_mirror_sync_failed": ({"message": "src.example/img: 401 Unauthorized"}, {}, None,
                                ["Repository mirror failed for acme/web",
                                 "src.example/img: 401 Unauthorized"]),
}

# The least a producer may send (events.md, "needs in data").
MINIMAL = {
    "repo_push": {"updated_tags": ["latest"]},
    **{name: {"build_id": "b1"} for name, event in EVENTS.items() if event.is_build},
    "vulnerability_found": {"vulnerability": {"priority": "High"}},
    **{name: {"message": ""} for name in EVENTS if name.startswith("repo_mirror_sync_")},
}


def event_data(event: str, data: dict, repository: str = REPOSITORY) -> dict:
    return build_event_data(repository, event, data, server_hostname="registry.example.com",
                            scheme="https")


def render_both(event: str, data: dict, performer: dict | None = None,
                event_config: dict | None = None) -> tuple[str, str]:
    """(HTML, text) for producer ``data`` in acme/web."""
    payload = event_data(event, data)
    return tuple(render_message(event, channel, payload, performer, event_config=event_config)
                 for channel in CHANNELS)


def visible(markup: str) -> str:
    """What a reader of the HTML sees: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]*>", "", markup)).split())


def test_cases_cover_every_event():
    assert set(CASES) == set(EVENTS) == set(MINIMAL)


@pytest.mark.parametrize("event", sorted(CASES))
def test_key_phrases_in_html_and_text(event):
    data, performer, event_config, phrases = CASES[event]
    body_html, body_text = render_both(event, data, performer, event_config)
    for phrase in phrases:
        assert phrase in visible(body_html), (phrase, body_html)
        assert phrase in body_text, (phrase, body_text)
    assert "<" not in body_text and "&amp;" not in body_text and "&#" not in body_text


@pytest.mark.parametrize("event", sorted(CASES))
def test_html_links_to_the_repository(event):
    data, performer, event_config, _ = CASES[event]
    body_html, body_text = render_both(event, data, performer, event_config)
    assert f'<a href="{REPOSITORY_URL}">acme/web</a>' in body_html
    assert f"acme/web ({REPOSITORY_URL})" in body_text


@pytest.mark.parametrize("event", ["repo_push", "vulnerability_found"])
def test_html_links_to_each_tag(event):
    body_html, _ = render_both(event, CASES[event][0])
    for tag in ("latest", "v1"):
        assert f'<a href="{REPOSITORY_URL}?tag={tag}&amp;tab=tags">{tag}</a>' in body_html


@pytest.mark.parametrize("event", sorted(e for e in EVENTS if EVENTS[e].is_build))
def test_build_links_to_its_build_page_and_its_repository(event):
    body_html, body_text = render_both(event, triggered_build())
    assert f'<a href="{BUILD_URL}">Build abc1234</a>' in body_html
    assert f'<a href="{REPOSITORY_URL}">' in body_html
    assert f"Build page: {BUILD_URL}" in body_text
    assert f"acme/web ({REPOSITORY_URL})" in body_text


def test_build_in_a_repository_whose_name_holds_build_keeps_its_name():
    payload = event_data("build_start", manual_build(), repository="acme/build/tools")
    context = message_context("build_start", payload)
    assert context["repository_url"] == "https://registry.example.com/repository/acme/build/tools"


HOSTILE = "<script>alert(1)</script>"


@pytest.mark.parametrize("event, data, performer", [
    ("repo_push", {"updated_tags": ["latest", HOSTILE]}, {"entity_name": HOSTILE}),
    ("build_failure", manual_build(error_message=f"{HOSTILE} <b>&"), {}),
    ("build_start", triggered_build(ref=f"refs/heads/{HOSTILE}"), {}),
    ("build_success", {**triggered_build(), "build_id": "<i>x</i>y"}, {}),
    ("vulnerability_found", {"tags": [HOSTILE], "vulnerability": vulnerability(HOSTILE, "Low")},
     {}),
    ("vulnerability_found", {"tags": ["latest"], "vulnerabilities": [
        vulnerability(HOSTILE, "Low"), vulnerability("CVE-2", "High")]}, {}),
    ("repo_mirror_sync_failed", {"message": HOSTILE}, {}),
], ids=lambda value: value if isinstance(value, str) and "<" not in value else None)
def test_producer_values_are_escaped_in_html_and_verbatim_in_text(event, data, performer):
    body_html, body_text = render_both(event, data, performer)
    assert "<script>" not in body_html and "<i>" not in body_html
    assert "&lt;" in body_html
    assert "<script>alert(1)</script>" in body_text or "<i>x</i>y" in body_text


def test_error_message_markup_is_escaped_in_html():
    body_html, body_text = render_both("build_failure", manual_build(error_message="<b>&"))
    assert "Error: <code>&lt;b&gt;&amp;</code>" in body_html
    assert "Error: <b>&" in body_text


def test_a_non_web_link_from_a_producer_is_not_a_link():
    found = {**vulnerability("CVE-9", "Critical"), "link": "javascript:alert(1)"}
    body_html, body_text = render_both("vulnerability_found",
                                       {"tags": ["latest"], "vulnerability": found})
    assert "javascript:" not in body_html and "javascript:" not in body_text
    assert "Critical</b> vulnerability CVE-9 detected" in body_html


@pytest.mark.parametrize("url, expected", [
    ("https://nvd.example/CVE-1", "https://nvd.example/CVE-1"),
    ("HTTP://nvd.example/x", "HTTP://nvd.example/x"),
    ("javascript:alert(1)", None), ("//nvd.example/x", None), ("data:text/html,x", None),
    ("", None), (None, None), (5, None), (["https://nvd.example/x"], None),
])
def test_only_http_urls_become_links(url, expected):
    assert web_url(url) == expected


@pytest.mark.parametrize("event", sorted(MINIMAL))
@pytest.mark.parametrize("channel", CHANNELS)
def test_minimal_data_renders_without_gaps(event, channel):
    message = render_message(event, channel, event_data(event, MINIMAL[event]))
    assert "acme/web" in message
    assert "None" not in message and "()" not in message


@pytest.mark.parametrize("event", sorted(MINIMAL))
def test_minimal_data_without_base_fields_still_renders(event):
    """A payload missing even the base fields (a hand-written test payload) must not crash."""
    message = render_message(event, "body.html", dict(MINIMAL[event]))
    assert message and "href" not in message


@pytest.mark.parametrize("count, shown, more", [
    (1, "latest", None), (5, "t0, t1, t2, t3, t4", None), (7, "t0, t1, t2, t3, t4", "(and 2 more)"),
])
def test_push_lists_the_first_five_tags_and_counts_the_rest(count, shown, more):
    tags = ["latest"] if count == 1 else [f"t{i}" for i in range(count)]
    body_html, body_text = render_both("repo_push", {"updated_tags": tags}, ALICE)
    for message in (visible(body_html), body_text):
        assert f"tags {shown}" in message
        assert ("more" in message) == bool(more)
        if more:
            assert message.endswith(f"{shown} {more}")
    assert "t5" not in body_html and "t5" not in body_text


@pytest.mark.parametrize("count, more", [(3, None), (4, "(and 1 more)"), (9, "(and 6 more)")])
def test_vulnerability_names_three_tags_and_counts_the_rest(count, more):
    data = {"tags": [f"t{i}" for i in range(count)],
            "vulnerability": vulnerability("CVE-1", "Medium")}
    body_html, body_text = render_both("vulnerability_found", data)
    for message in (visible(body_html), body_text):
        assert "in tags t0, t1, t2" in message
        assert "t3" not in message
        assert ("more" in message) == bool(more)
        if more:
            assert message.endswith(f"t2 {more}")


@pytest.mark.parametrize("ref, wording", [
    ("refs/heads/main", "for change 1a2b3c4 to branch main by octocat"),
    ("refs/heads/feature/login", "for change 1a2b3c4 to branch feature/login by octocat"),
    ("refs/tags/v1.2.0", "for change 1a2b3c4 to tag v1.2.0 by octocat"),
    ("refs/pull/42/head", "for change 1a2b3c4 to refs/pull/42/head by octocat"),
])
def test_build_ref_says_branch_or_tag(ref, wording):
    body_html, body_text = render_both("build_start", triggered_build(ref=ref))
    assert wording in visible(body_html)
    assert wording in body_text
    assert "uploaded Dockerfile" not in body_text


def test_build_with_a_ref_but_no_commit_or_trigger_names_the_branch():
    data = {"build_id": BUILD_ID, "trigger_metadata": {"ref": "refs/heads/main"}}
    _, body_text = render_both("build_queued", data)
    assert "acme/web (https://registry.example.com/repository/acme/web), for branch main" \
        in body_text
    assert "change" not in body_text and "uploaded" not in body_text


def test_manual_build_says_uploaded_dockerfile_and_no_change():
    body_html, body_text = render_both("build_start", manual_build())
    for message in (visible(body_html), body_text):
        assert "from uploaded Dockerfile" in message
        assert "change" not in message and "branch" not in message


@pytest.mark.parametrize("performer", [None, {}, {"entity_id": 3}])
def test_push_without_a_performer(performer):
    body_html, body_text = render_both("repo_push", {"updated_tags": ["latest"]}, performer)
    assert visible(body_html).startswith("Image(s) pushed to repository acme/web: tags latest")
    assert body_text.startswith("Image(s) pushed to repository acme/web")


def test_vulnerability_list_keeps_only_those_passing_the_level_worst_first():
    data = {"tags": ["latest", "v1"], "vulnerabilities": [
        vulnerability("CVE-LOW", "Low"), vulnerability("CVE-HIGH", "high"),
        vulnerability("CVE-MED", "Medium"), vulnerability("CVE-CRIT", "Critical")]}
    body_html, body_text = render_both("vulnerability_found", data,
                                       event_config={"level": "High"})
    assert "2 vulnerabilities detected in repository acme/web in tags latest, v1" \
        in visible(body_html)
    assert '<li><b>Critical</b> <a href="https://nvd.example/CVE-CRIT">CVE-CRIT</a></li>' \
        in body_html
    assert "- Critical CVE-CRIT (https://nvd.example/CVE-CRIT)\n- High CVE-HIGH" in body_text
    for message in (body_html, body_text):
        assert "CVE-LOW" not in message and "CVE-MED" not in message
        assert message.index("CVE-CRIT") < message.index("CVE-HIGH")


def test_vulnerability_list_with_one_passing_reads_as_one():
    data = {"tags": ["latest"], "vulnerabilities": [
        vulnerability("CVE-LOW", "Low"), vulnerability("CVE-CRIT", "Critical")]}
    _, body_text = render_both("vulnerability_found", data, event_config={"level": 0})
    assert body_text.startswith("Critical vulnerability CVE-CRIT")
    assert "CVE-LOW" not in body_text


def test_vulnerability_without_level_lists_all_and_caps_the_list():
    found = [vulnerability(f"CVE-{i}", "Medium") for i in range(12)]
    body_html, body_text = render_both("vulnerability_found",
                                       {"tags": ["latest"], "vulnerabilities": found})
    assert "12 vulnerabilities detected" in body_text
    assert body_html.count("<li>") == 10
    assert "CVE-9 " in body_text and "CVE-10" not in body_text
    assert body_text.endswith("- and 2 more")


def test_unrecognised_priority_reads_as_unknown():
    _, body_text = render_both("vulnerability_found",
                               {"tags": ["latest"], "vulnerability": vulnerability("X-1", "meh")})
    assert body_text.startswith("Unknown vulnerability X-1")


def test_unknown_event_and_channel_are_refused():
    payload = event_data("repo_push", {"updated_tags": ["latest"]})
    with pytest.raises(UnknownEvent):
        render_message("repo_deleted", "body.html", payload)
    with pytest.raises(UnknownEvent):
        render_message("_partials", "build.html", payload)
    with pytest.raises(ValueError, match="slack.md"):
        render_message("repo_push", "slack.md", payload)
