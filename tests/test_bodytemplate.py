"""Webhook body templates: every rule of methods.md, and the webhook method that applies them."""

from __future__ import annotations

import json
import uuid

import pytest
from standardwebhooks.webhooks import Webhook

from notifier.bodytemplate import (
    _CACHE,
    CACHE_TEMPLATE_BYTES,
    MAX_EXPRESSIONS,
    MAX_RENDERED_BYTES,
    MAX_TEMPLATE_BYTES,
    OutputTooLarge,
    compile_template,
)
from notifier.http import encode_body
from notifier.errors import InvalidNotificationConfig, PermanentDeliveryError
from notifier.events import build_event_data
from notifier.methods import CreateContext, DeliveryContext
from notifier.methods.webhook import WebhookMethod
from notifier.models import utcnow
from notifier.netpolicy import parse_networks

DATA = {
    "repository": "acme/web",
    "updated_tags": ["v1", "latest"],
    "one_tag": ["v1"],
    "no_tags": [],
    "size": 3,
    "ratio": 0.5,
    "public": True,
    "private": False,
    "pushed_by": None,
    "owner": {"name": "acme", "kind": "org"},
    "builds": [{"id": "b1", "phase": "complete"}, {"id": "b2", "phase": "error"}],
    "note": "镜像 <b>&\"'",
}


def render(template: object) -> object:
    """The template, written as JSON text, compiled and applied to DATA."""
    return compile_template(json.dumps(template)).apply(DATA)


# --- a string that is exactly one expression: the value with its type -----------------------------

@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("${repository}", "acme/web"),
        ("${size}", 3),
        ("${ratio}", 0.5),
        ("${public}", True),
        ("${private}", False),
        ("${updated_tags}", ["v1", "latest"]),
        ("${owner}", {"name": "acme", "kind": "org"}),
        ("${owner.name}", "acme"),
        ("${$.owner.kind}", "org"),
        ("${updated_tags[0]}", "v1"),
        ("${updated_tags[-1]}", "latest"),
        ("${builds[1].phase}", "error"),
        ("${pushed_by}", None),  # matched, and null
        ("${note}", "镜像 <b>&\"'"),
        ("${ repository }", "acme/web"),  # blanks around a path are allowed
    ],
)
def test_a_whole_string_expression_becomes_the_matched_value_with_its_type(expression, expected):
    assert render({"v": expression}) == {"v": expected}


@pytest.mark.parametrize("expression", ["${missing}", "${owner.missing}", "${updated_tags[9]}",
                                        "${no_tags[*]}", "${size.more}", "${repository[0]}"])
def test_a_whole_string_expression_without_a_match_is_null(expression):
    assert render({"v": expression}) == {"v": None}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("${updated_tags[*]}", ["v1", "latest"]),
        ("${builds[*].id}", ["b1", "b2"]),
        ("${owner.*}", ["acme", "org"]),
        ("${$..phase}", ["complete", "error"]),
        ("${one_tag[*]}", "v1"),  # one match is that value, not a list of one
    ],
)
def test_a_whole_string_expression_with_several_matches_is_a_list(expression, expected):
    assert render({"v": expression}) == {"v": expected}


# --- expressions inside other text: the value's text ----------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${repository} pushed: ${updated_tags[*]}", "acme/web pushed: v1, latest"),
        ("repo=${repository}", "repo=acme/web"),
        ("${owner.name}/${owner.kind}", "acme/org"),  # two expressions and nothing else
        ("size ${size}, ratio ${ratio}", "size 3, ratio 0.5"),
        ("public: ${public}/${private}", "public: true/false"),  # JSON's words
        ("tags: ${updated_tags}", 'tags: ["v1", "latest"]'),  # a list: its JSON text
        ("owner: ${owner}", 'owner: {"name": "acme", "kind": "org"}'),
        ("note: ${note}", "note: 镜像 <b>&\"'"),  # text is kept as it is, not escaped
        ("by ${pushed_by}", "by (none)"),  # a null value reads like no match
    ],
)
def test_an_expression_inside_text_becomes_the_values_text(text, expected):
    assert render({"v": text}) == {"v": expected}


@pytest.mark.parametrize("text", ["by ${missing}", "by ${owner.missing}", "by ${no_tags[*]}"])
def test_no_match_inside_text_is_none_in_brackets(text):
    assert render({"v": text}) == {"v": "by (none)"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tags: ${updated_tags[*]}", "tags: v1, latest"),
        ("builds: ${builds[*].id}", "builds: b1, b2"),
        ("owner: ${owner.*}", "owner: acme, org"),
        ("tag: ${one_tag[*]}", "tag: v1"),
    ],
)
def test_several_matches_inside_text_are_joined_with_a_comma_and_a_space(text, expected):
    assert render({"v": text}) == {"v": expected}


# --- keys, nesting, values that pass through ------------------------------------------------------

@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ({"${repository}": 1}, {"acme/web": 1}),
        ({"repo ${repository}": 1}, {"repo acme/web": 1}),
        ({"${size}": "${size}"}, {"3": 3}),  # a key is always text
        ({"${updated_tags[*]}": True}, {"v1, latest": True}),
        ({"${missing}": 1}, {"(none)": 1}),
    ],
)
def test_keys_are_templated_and_always_text(template, expected):
    assert render(template) == expected


def test_expressions_are_replaced_at_any_depth():
    template = {
        "outer": {"list": ["${size}", ["${owner.name}", {"deep ${repository}": ["x ${size}"]}]]},
        "top": ["${updated_tags[*]}", "${missing}"],
    }

    assert render(template) == {
        "outer": {"list": [3, ["acme", {"deep acme/web": ["x 3"]}]]},
        "top": [["v1", "latest"], None],
    }


@pytest.mark.parametrize(
    "value",
    [0, -7, 2.5, 1e100, 12345678901234567890, True, False, None, "", "plain text", [], {},
     [1, "two", None], {"a": {"b": [False]}}, "$ {repository}", "${unclosed", "{repository}",
     "$repository"],
)
def test_values_without_expressions_pass_through(value):
    assert render({"v": value}) == {"v": value}


@pytest.mark.parametrize(("template", "expected"), [
    ("${repository}", "acme/web"), (["${size}", 1], [3, 1]), (7, 7), (None, None)])
def test_the_document_itself_may_be_any_json_value(template, expected):
    assert render(template) == expected


def test_one_compiled_template_serves_every_event():
    text = '{"o": "${owner.name}", "t": "tags ${updated_tags[*]}", "n": [1, "${size}"]}'
    template = compile_template(text)

    first = template.apply(DATA)
    other = template.apply({"owner": {"name": "other"}, "updated_tags": ["v2"]})

    assert first == {"o": "acme", "t": "tags v1, latest", "n": [1, 3]}
    assert other == {"o": "other", "t": "tags v2", "n": [1, None]}
    assert template.apply(DATA) == first
    assert compile_template(text) is template  # compiled once per text


def test_the_example_of_the_spec():
    template = compile_template('{"text": "${repository} pushed: ${updated_tags[*]}"}')

    assert template.apply(DATA) == {"text": "acme/web pushed: v1, latest"}


# --- refused when the notification is created -----------------------------------------------------

@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": "${}"}', "empty expression ${}"),
        ('{"a": "x ${ } y"}', "empty expression ${}"),
        ('{"${}": 1}', "empty expression ${}"),
        ('{"a": "${foo[}"}', "${foo[}: Parse error"),
        ('{"a": "${foo]}"}', "${foo]}: Parse error at 1:3"),
        ('{"a": "${a b}"}', "${a b}: Parse error"),
        ('{"a": ["ok", {"b": "${!!}"}]}', "${!!}: Error on line 1, col 0: Unexpected character: !"),
        ('{"${a..}": 1}', "${a..}: Parse error"),
        ('{"a": "${x.`nope`}"}', "${x.`nope`}: Unknown named operator `nope`"),
        ('{"a": "${a & b}"}', "${a & b}: the & (intersection) operator is not supported"),
        ('{"a": "${x.(a & b)}"}', "the & (intersection) operator is not supported"),
    ],
)
def test_a_bad_expression_is_refused_with_the_parse_error(text, message):
    with pytest.raises(InvalidNotificationConfig) as caught:
        compile_template(text)

    assert str(caught.value).startswith("Invalid body template: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not JSON: Expecting value: line 1 column 1 (char 0)"),
        ("   ", "not JSON: Expecting value"),
        ('{"text": "${repository}"', "not JSON: Expecting ',' delimiter"),
        ("{'text': 1}", "not JSON: Expecting property name enclosed in double quotes"),
        ('{"a": 1} trailing', "not JSON: Extra data"),
        ('{"a": NaN}', "not JSON: NaN is not a JSON value"),
        ("-Infinity", "not JSON: -Infinity is not a JSON value"),
        ("[" * 5_000 + "]" * 5_000, "nested too deeply"),
        ("[" * 66 + "]" * 66, "nested too deeply (at most 64 levels)"),
    ],
)
def test_text_that_is_not_json_is_refused_with_the_json_error(text, message):
    with pytest.raises(InvalidNotificationConfig, match="^Invalid body template: ") as caught:
        compile_template(text)

    assert message in str(caught.value)


@pytest.mark.parametrize("value", [{"text": "${repository}"}, ["x"], 5, b'{"a": 1}', None])
def test_a_template_that_is_not_a_string_is_refused(value):
    with pytest.raises(InvalidNotificationConfig,
                       match="^Invalid body template: must be a string of JSON text$"):
        compile_template(value)


def test_a_long_bad_expression_is_shortened_in_the_message():
    with pytest.raises(InvalidNotificationConfig) as caught:
        compile_template(json.dumps({"a": "${" + "a." * 500 + "}"}))

    assert len(str(caught.value)) < 200


# --- through the webhook method -------------------------------------------------------------------

WEBHOOK = WebhookMethod()
CONTEXT = CreateContext("acme/web", parse_networks(["127.0.0.0/8"]))
URL = "https://hooks.example.com/in"
TEMPLATE = '{"text": "${repository} pushed: ${updated_tags[*]}", "tags": "${updated_tags}"}'


@pytest.mark.parametrize("template", [TEMPLATE, "", None, '"${repository}"'])
def test_a_webhook_keeps_its_template_text_unchanged(template):
    stored = WEBHOOK.validate_config({"url": URL, "template": template}, CONTEXT)

    assert stored["template"] == template


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ('{"a": "${}"}', "^Invalid body template: empty expression \\$\\{\\}$"),
        ('{"a": "${foo[}"}', "^Invalid body template: \\$\\{foo\\[\\}: Parse error"),
        ("{not json", "^Invalid body template: not JSON: "),
        ({"text": "${repository}"}, "^Invalid body template: must be a string of JSON text$"),
        (7, "^Invalid body template: must be a string of JSON text$"),
    ],
)
def test_a_webhook_with_a_bad_template_is_refused(template, message):
    with pytest.raises(InvalidNotificationConfig, match=message):
        WEBHOOK.validate_config({"url": URL, "template": template}, CONTEXT)


def delivery(config: dict) -> DeliveryContext:
    event_data = build_event_data("acme/web", "repo_push", {"updated_tags": ["v1", "镜像"]},
                                  server_hostname="registry.example.com", scheme="https")
    return DeliveryContext(
        delivery_id=str(uuid.uuid4()), event="repo_push", repository="acme/web",
        event_data=event_data, config=config, attempt=1, now=utcnow(),
    )


def test_a_webhook_sends_the_applied_template_signed(receiver, loopback_services):
    config = WEBHOOK.validate_config({"url": receiver.url, "template": TEMPLATE}, CONTEXT)
    context = delivery(config)

    WEBHOOK.send(context, loopback_services)

    [received] = receiver.wait_for(1)
    expected = {"text": "acme/web pushed: v1, 镜像", "tags": ["v1", "镜像"]}
    assert json.loads(received.body) == expected
    assert Webhook(config["secret"]).verify(received.body, received.headers) == expected


@pytest.mark.parametrize("template", [None, ""])
def test_a_webhook_without_a_template_sends_the_event_data(receiver, loopback_services, template):
    config = WEBHOOK.validate_config({"url": receiver.url, "template": template}, CONTEXT)
    context = delivery(config)

    WEBHOOK.send(context, loopback_services)

    assert json.loads(receiver.wait_for(1)[0].body) == context.event_data


def test_a_stored_template_that_no_longer_compiles_fails_the_delivery_for_good(receiver, loopback_services):
    config = {**WEBHOOK.validate_config({"url": receiver.url}, CONTEXT), "template": '{"a": "${}"}'}

    with pytest.raises(PermanentDeliveryError) as caught:
        WEBHOOK.send(delivery(config), loopback_services)

    assert caught.value.kind == "invalid_template"
    assert str(caught.value) == "Invalid body template: empty expression ${}"
    assert receiver.requests == []


# --- bounds: size, expressions, output, cache ------------------------------------------------------

def test_a_1_mib_template_is_refused_before_it_is_parsed():
    text = json.dumps({"a": "${repository} " * 70_000})[:1 << 20]

    with pytest.raises(InvalidNotificationConfig,
                       match=f"^Invalid body template: {len(text.encode())} bytes, "
                             f"at most {MAX_TEMPLATE_BYTES}$"):
        compile_template(text)


def test_too_many_expressions_are_refused():
    text = json.dumps([f"${{updated_tags[{i}]}}" for i in range(MAX_EXPRESSIONS + 1)])

    with pytest.raises(InvalidNotificationConfig,
                       match=f"{MAX_EXPRESSIONS + 1} expressions, at most {MAX_EXPRESSIONS}$"):
        compile_template(text)
    compile_template(json.dumps([f"${{updated_tags[{i}]}}" for i in range(MAX_EXPRESSIONS)]))


def test_an_over_long_expression_is_refused():
    with pytest.raises(InvalidNotificationConfig, match="longer than 256 characters"):
        compile_template(json.dumps({"a": "${" + "a" * 300 + "}"}))


@pytest.mark.parametrize("template", [
    {"text": "${big} " * 20},  # text built from a value again and again
    {"copies": ["${big}"] * 20},  # one value written out again and again
])
def test_an_output_over_the_bound_is_refused_as_it_is_built(template):
    data = {"big": "x" * (MAX_RENDERED_BYTES // 10)}

    with pytest.raises(OutputTooLarge, match=f"larger than {MAX_RENDERED_BYTES} bytes"):
        compile_template(json.dumps(template)).render_body(data)


def test_render_body_is_the_compact_json_of_apply():
    template = compile_template(json.dumps({"t": "${note} ${size}", "v": "${owner}", "n": 1.5}))

    assert template.render_body(DATA) == encode_body(template.apply(DATA))


def test_compiled_templates_kept_are_bounded_by_their_text():
    for i in range(CACHE_TEMPLATE_BYTES // 1000 + 50):
        compile_template(json.dumps({"n": i, "pad": "p" * 1000}))

    assert _CACHE._bytes <= CACHE_TEMPLATE_BYTES
    assert sum(map(len, _CACHE._entries)) == _CACHE._bytes


def test_a_webhook_whose_output_is_too_large_fails_for_good(receiver, loopback_services):
    template = json.dumps({"copies": ["${updated_tags}"] * 100})
    config = WEBHOOK.validate_config({"url": receiver.url, "template": template}, CONTEXT)
    context = delivery(config)
    context = DeliveryContext(**{**context.__dict__, "event_data": {
        **context.event_data, "updated_tags": ["t" * 1000] * 20}})

    with pytest.raises(PermanentDeliveryError) as caught:
        WEBHOOK.send(context, loopback_services)

    assert caught.value.kind == "invalid_template"
    assert "larger than" in str(caught.value) and receiver.requests == []
