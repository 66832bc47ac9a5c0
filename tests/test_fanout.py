"""Fan-out: shared services are split per namespace, and a fuzz of everything a producer or a
notification's owner can put into a fan-out: it answers or refuses, never crashes or stalls."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from notifier.db import transaction
from notifier.errors import InvalidInput
from notifier.fanout import event_message, fan_out
from notifier.models import Notification, utcnow
from notifier.notifications import create_notification

EVENTS = ["repo_push", "build_success", "build_failure", "vulnerability_found",
          "repo_mirror_sync_failed"]


def message(repository, event, data, performer=None):
    return event_message(repository, event, data, performer or {}, str(uuid.uuid4()), utcnow())


def run(factory, msg):
    with transaction(factory) as session:
        return fan_out(session, msg, server_hostname="registry.example.com", scheme="https")


def test_shared_services_count_once_per_namespace(sqlite_factory):
    with transaction(sqlite_factory) as session:
        for repository in ("acme/web", "acme/api", "evil/spam"):
            for method, config in (("email", {"email": "a@example.com"}),
                                   ("flowdock", {"flow_api_token": "t" * 16}),
                                   ("webhook", {"url": "http://127.0.0.1:9/hook"})):
                session.add(Notification(repository=repository, event="repo_push",
                                         method=method, config=config))

    endpoints = {}
    for repository in ("acme/web", "acme/api", "evil/spam"):
        for ref in run(sqlite_factory, message(repository, "repo_push", {"updated_tags": ["v"]})):
            with sqlite_factory() as session:
                from notifier.models import Delivery
                endpoints[(repository, ref.method)] = session.get(Delivery, ref.id).endpoint

    assert endpoints[("acme/web", "email")] == endpoints[("acme/api", "email")] == "smtp#acme"
    assert endpoints[("evil/spam", "email")] == "smtp#evil"
    assert endpoints[("evil/spam", "flowdock")] == "flowdock#evil"
    assert endpoints[("evil/spam", "webhook")] == endpoints[("acme/web", "webhook")] \
        == "127.0.0.1:9"


# --- fuzz ----------------------------------------------------------------------------------------

any_text = st.text(alphabet=st.characters(blacklist_categories=()))  # lone surrogates too
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)
refs = st.one_of(any_text, st.text(alphabet="ab#/", min_size=900, max_size=1100),
                 json_values)
patterns = st.one_of(st.sampled_from([r"(\w|[a-z]|.)*#", r"(a*)*b", r"(a|aa)+$", r"(x)\1",
                                      "(?=a)", "[", ""]), st.text(max_size=40), any_text)
event_data = st.one_of(
    st.fixed_dictionaries({"build_id": st.text(), "trigger_metadata": st.fixed_dictionaries(
        {"ref": refs})}),
    st.fixed_dictionaries({"updated_tags": st.lists(st.text(), max_size=3)}),
    st.fixed_dictionaries({"vulnerability": st.fixed_dictionaries({"priority": json_values})}),
    st.dictionaries(st.text(), json_values, max_size=5),
    json_values,
)


@pytest.fixture(params=["postgresql", "sqlite"])
def fuzz_factory(request):
    return request.getfixturevalue("pg_factory" if request.param == "postgresql"
                                   else "sqlite_factory")


@given(pattern=patterns, event=st.sampled_from(EVENTS), data=event_data,
       repository=st.one_of(st.just("fuzz/app"), any_text),
       performer=st.one_of(st.none(), st.dictionaries(st.text(), json_values, max_size=3)))
@settings(max_examples=150, deadline=timedelta(seconds=10), derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_fuzzed_fan_out_inputs_are_fanned_out_or_refused(fuzz_factory, pattern, event, data,
                                                        repository, performer):
    event_config = {"ref-regex": pattern} if event.startswith("build") else {}
    try:
        with transaction(fuzz_factory) as session:
            create_notification(session, "fuzz/app", event, "webhook",
                                {"url": "http://127.0.0.1:9/hook"}, event_config)
    except InvalidInput:
        pass  # refused at create time, with its message: nothing stored
    try:
        run(fuzz_factory, message(repository, event, data, performer))
    except InvalidInput:
        pass  # the producer's input refused: the fan-out task drops it, the worker goes on
