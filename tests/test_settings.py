"""config.load_settings: defaults, parsing, and one clear error per bad variable."""

from __future__ import annotations

import os

import pytest

from config import ConfigurationError, load_settings
from config.settings import DEFAULT_RETRY_SCHEDULE_S


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Only the variables a test sets itself are seen."""
    for name in list(os.environ):
        if name.upper().startswith("NOTIFIER_"):
            monkeypatch.delenv(name)


def load_with(monkeypatch, **variables):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def refusal(monkeypatch, **variables) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_with(monkeypatch, **variables)
    return str(caught.value)


def test_defaults():
    settings = load_settings()

    assert settings.retry_schedule == DEFAULT_RETRY_SCHEDULE_S == (
        0, 10, 60, 300, 1800, 7200, 21600, 43200)
    assert settings.max_attempts == 8
    assert settings.send_timeout_s == 10.0
    assert settings.max_failures == 3
    assert settings.visibility_timeout_s == 3600.0
    assert settings.retry_after_max_s == 3600.0
    assert settings.allowed_networks == ()
    assert settings.preferred_url_scheme == "http"
    assert (settings.fanout_queue, settings.delivery_queue) == (
        "notifier.fanout", "notifier.delivery")
    assert settings.claim_timeout_s == settings.send_timeout_s + 5


def test_values_are_parsed_from_the_environment(monkeypatch):
    settings = load_with(
        monkeypatch,
        NOTIFIER_RETRY_SCHEDULE=" 0, 0.5 ,2 ",
        NOTIFIER_ALLOWED_NETWORKS="127.0.0.0/8, 10.0.0.0/8",
        NOTIFIER_SEND_TIMEOUT_S="2.5",
        NOTIFIER_VISIBILITY_TIMEOUT_S="8",
        NOTIFIER_MAX_FAILURES="5",
        NOTIFIER_PREFERRED_URL_SCHEME="https",
        NOTIFIER_QUEUE_PREFIX="staging",
    )

    assert settings.retry_schedule == (0.0, 0.5, 2.0)
    assert settings.max_attempts == 3
    assert settings.allowed_networks == ("127.0.0.0/8", "10.0.0.0/8")
    assert settings.send_timeout_s == 2.5
    assert settings.visibility_timeout_s == 8.0
    assert settings.max_failures == 5
    assert settings.preferred_url_scheme == "https"
    assert settings.fanout_queue == "staging.fanout"


def test_keyword_overrides_win_over_the_environment(monkeypatch):
    assert load_with(monkeypatch, NOTIFIER_MAX_FAILURES="7").max_failures == 7
    assert load_settings(max_failures=2).max_failures == 2


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("NOTIFIER_SEND_TIMEOUT_S", "abc"),
        ("NOTIFIER_SEND_TIMEOUT_S", "0"),
        ("NOTIFIER_RETRY_SCHEDULE", "0,x"),
        ("NOTIFIER_RETRY_SCHEDULE", ""),
        ("NOTIFIER_RETRY_SCHEDULE", " , "),
        ("NOTIFIER_RETRY_SCHEDULE", "0,-1"),
        ("NOTIFIER_RETRY_SCHEDULE", "-5"),
        ("NOTIFIER_MAX_FAILURES", "0"),
        ("NOTIFIER_MAX_FAILURES", "x"),
        ("NOTIFIER_ALLOWED_NETWORKS", "not-a-cidr"),
        ("NOTIFIER_ALLOWED_NETWORKS", "127.0.0.0/8,10.0.0.300/8"),
        ("NOTIFIER_PREFERRED_URL_SCHEME", "ftp"),
        ("NOTIFIER_QUEUE_PREFIX", "has space"),
        ("NOTIFIER_RETRY_SCHEDULE", "0,nan"),
        ("NOTIFIER_RETRY_SCHEDULE", "0,inf"),
        ("NOTIFIER_BROKER_URL", "redis://127.0.0.1:port/0"),
        ("NOTIFIER_BROKER_URL", "127.0.0.1:6379"),
        ("NOTIFIER_DATABASE_URL", "postgresql://u:p@db:x/n"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(monkeypatch, variable, value):
    message = refusal(monkeypatch, **{variable: value})

    assert f"{variable}:" in message
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize(
    ("variables", "longest_attempt_s"),
    [
        ({"NOTIFIER_VISIBILITY_TIMEOUT_S": "14"}, 15),
        ({"NOTIFIER_VISIBILITY_TIMEOUT_S": "15"}, 15),  # must exceed, not equal
        ({"NOTIFIER_SEND_TIMEOUT_S": "3600"}, 3605),  # the default visibility is too short now
        ({"NOTIFIER_SEND_TIMEOUT_S": "1", "NOTIFIER_VISIBILITY_TIMEOUT_S": "5.5"}, 6),
    ],
)
def test_visibility_timeout_must_exceed_the_longest_attempt(monkeypatch, variables,
                                                            longest_attempt_s):
    message = refusal(monkeypatch, **variables)

    assert "NOTIFIER_VISIBILITY_TIMEOUT_S" in message
    assert "NOTIFIER_SEND_TIMEOUT_S" in message
    assert f"= {longest_attempt_s:g} seconds" in message


def test_visibility_timeout_just_above_the_longest_attempt_is_accepted(monkeypatch):
    settings = load_with(monkeypatch, NOTIFIER_SEND_TIMEOUT_S="1",
                         NOTIFIER_VISIBILITY_TIMEOUT_S="6.5")
    assert settings.visibility_timeout_s == 6.5


def test_every_bad_variable_is_named_at_once(monkeypatch):
    message = refusal(monkeypatch, NOTIFIER_MAX_FAILURES="0",
                      NOTIFIER_PREFERRED_URL_SCHEME="ftp")

    assert "NOTIFIER_MAX_FAILURES" in message
    assert "NOTIFIER_PREFERRED_URL_SCHEME" in message


def test_a_broker_url_that_cannot_be_read_is_refused_without_showing_its_password(monkeypatch):
    message = refusal(monkeypatch, NOTIFIER_BROKER_URL="redis://:ab/cd@127.0.0.1:1/0")

    assert "NOTIFIER_BROKER_URL:" in message and "ab" not in message.replace("able", "")
