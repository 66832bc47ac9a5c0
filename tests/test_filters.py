"""ref-regex on RE2: linear-time matching, refused at create time what RE2 cannot run, bounded
pattern and ref lengths."""

from __future__ import annotations

import pytest

from notifier.errors import InvalidNotificationConfig
from notifier.events import get_event
from notifier.filters import MAX_PATTERN_CHARS, MAX_REF_CHARS, compile_pattern, ref_matches

PATHOLOGICAL = r"(\w|[a-z]|.)*#"  # 37.5 s on a 21-character ref with Python's re


def build(ref):
    return {"build_id": "b1", "trigger_metadata": {"ref": ref}}


def test_a_pathological_pattern_matches_a_long_ref_at_once():
    """Python's re backtracks for minutes here; RE2 answers in linear time."""
    assert ref_matches({"ref-regex": PATHOLOGICAL}, build("a" * MAX_REF_CHARS)) is False
    assert ref_matches({"ref-regex": PATHOLOGICAL}, build("a" * 100 + "#")) is True


@pytest.mark.parametrize(("pattern", "says"), [
    (r"(a)\1", "invalid escape sequence"),
    ("refs/(?=heads)", "invalid perl operator"),
    ("(?<=refs/)heads", "invalid perl operator"),
    ("(a{1000}){1000}", "invalid repetition size"),
])
def test_what_re2_cannot_run_is_refused_at_create_time(pattern, says):
    with pytest.raises(InvalidNotificationConfig) as caught:
        get_event("build_success").validate_event_config({"ref-regex": pattern})

    message = str(caught.value)
    assert message.startswith(f"Invalid ref-regex {pattern!r}: {says}")
    assert "RE2 syntax" in message and "\n" not in message


def test_a_pattern_over_the_length_bound_is_refused():
    with pytest.raises(InvalidNotificationConfig, match=f"at most {MAX_PATTERN_CHARS}"):
        compile_pattern("a" * (MAX_PATTERN_CHARS + 1))
    compile_pattern("a" * MAX_PATTERN_CHARS)


def test_a_ref_over_the_length_bound_does_not_fire():
    assert ref_matches({"ref-regex": "refs/.*"}, build("refs/" + "a" * MAX_REF_CHARS)) is False
    assert ref_matches({"ref-regex": "refs/.*"}, build("refs/" + "a" * 100)) is True


def test_a_stored_pattern_re2_refuses_does_not_fire_and_does_not_raise():
    """A notification stored before RE2 may hold a backreference: it stops firing."""
    assert ref_matches({"ref-regex": r"(refs)\1"}, build("refsrefs")) is False


def test_text_that_is_not_unicode_is_refused_or_does_not_fire():
    with pytest.raises(InvalidNotificationConfig, match="not valid Unicode"):
        compile_pattern("refs/\ud800")
    assert ref_matches({"ref-regex": "refs/.*"}, build("refs/\ud800")) is False


@pytest.mark.parametrize(("pattern", "ref", "fires"), [
    ("refs/heads/main", "refs/heads/main-old", True),  # from the start, as re.match
    ("heads/main", "refs/heads/main", False),
    (r"refs/tags/v\d+$", "refs/tags/v12", True),
    (r"refs/tags/v\d+$", "refs/tags/v12x", False),
    ("(?i)REFS/HEADS/.*", "refs/heads/x", True),
])
def test_common_patterns_behave_as_before(pattern, ref, fires):
    assert ref_matches({"ref-regex": pattern}, build(ref)) is fires
