"""Webhook body templates (methods.md): a JSON document whose strings hold ``${<jsonpath>}``.

Every string of the document, keys and values at any depth, may hold expressions, evaluated
with jsonpath-ng (the syntax of Quay's jsonpath_rw) against the event data:

- a value that is exactly one expression becomes the matched value with its JSON type; no match
  gives ``null``, several matches a list;
- an expression inside other text becomes the value's text; no match gives ``(none)``, several
  matches are joined with ``", "``. The value's text: a string as it is, ``null`` as ``(none)``,
  anything else as its JSON text (``3``, ``true``, ``["v1", "latest"]``, ``{"a": 1}``), so
  ``${updated_tags}`` reads as a JSON list and ``${updated_tags[*]}`` as ``v1, latest``;
- a key is always text (JSON keys are strings), even when it is exactly one expression; keys
  that come out equal keep the last value;
- numbers, booleans and ``null`` pass through; text without ``${...}`` is kept as it is
  (an unclosed ``${`` too, as Quay does).

A template is checked once, when the notification is created: the text must be JSON and every
expression a non-empty path that parses, or InvalidNotificationConfig says what is wrong.
Compiling turns the document into a tree of small nodes that ``apply`` walks; nothing is parsed
when a template is applied.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from jsonpath_ng import JSONPath, parse
from jsonpath_ng.exceptions import JSONPathError
from jsonpath_ng.lexer import JsonPathLexer

from notifier.errors import InvalidNotificationConfig

EXPRESSION = re.compile(r"\$\{([^}]*)\}")
NO_MATCH_TEXT = "(none)"
MATCH_SEPARATOR = ", "
ERROR_PREFIX = "Invalid body template: "
MAX_EXPRESSION_SHOWN = 80  # characters of a bad expression quoted in an error message


class Node(Protocol):
    def render(self, data: Any) -> Any:
        """This part of the document with the event data filled in."""


@dataclass(frozen=True)
class Template:
    """A checked body template; ``apply`` fills it with one event's data."""

    root: Node

    def apply(self, event_data: Any) -> Any:
        """The document with every expression replaced by its value from ``event_data``."""
        return self.root.render(event_data)


def compile_template(text: Any) -> Template:
    """Check and compile a template stored as JSON text (InvalidNotificationConfig if bad)."""
    if not isinstance(text, str):
        raise InvalidNotificationConfig(ERROR_PREFIX + "must be a string of JSON text")
    return _compile_text(text)


# --- compiling ------------------------------------------------------------------------------------

@lru_cache(maxsize=256)
def _compile_text(text: str) -> Template:
    """Compiled once per template text: a worker applies the same few templates again and again."""
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
        return Template(_compile_node(document))
    except json.JSONDecodeError as exc:
        raise InvalidNotificationConfig(f"{ERROR_PREFIX}not JSON: {exc}") from None
    except RecursionError:
        raise InvalidNotificationConfig(ERROR_PREFIX + "nested too deeply") from None


def _refuse_constant(name: str) -> Any:
    """json.loads accepts NaN and Infinity, which are not JSON and could not be sent."""
    raise InvalidNotificationConfig(f"{ERROR_PREFIX}not JSON: {name} is not a JSON value")


def _compile_node(value: Any) -> Node:
    if isinstance(value, dict):
        return _Object(tuple((_compile_key(k), _compile_node(v)) for k, v in value.items()))
    if isinstance(value, list):
        return _List(tuple(_compile_node(item) for item in value))
    if isinstance(value, str):
        return _compile_value_string(value)
    return _Literal(value)


def _compile_value_string(text: str) -> Node:
    parts = _split(text)
    if len(parts) == 1 and not isinstance(parts[0], str):
        return _Value(parts[0])
    if all(isinstance(part, str) for part in parts):
        return _Literal(text)
    return _Text(parts)


def _compile_key(text: str) -> Node:
    parts = _split(text)
    if all(isinstance(part, str) for part in parts):
        return _Literal(text)
    return _Text(parts)


def _split(text: str) -> tuple[str | JSONPath, ...]:
    """``text`` as its literal pieces and compiled paths, in order, without empty pieces."""
    pieces = EXPRESSION.split(text)  # odd positions hold the expressions' insides
    parts = [_compile_path(piece) if i % 2 else piece for i, piece in enumerate(pieces)]
    return tuple(part for part in parts if part != "")


@lru_cache(maxsize=1024)
def _compile_path(expression: str) -> JSONPath:
    """Parse one ``${...}`` expression; the error names it and says what is wrong, on one line."""
    if not expression.strip():
        raise InvalidNotificationConfig(ERROR_PREFIX + "empty expression ${}")
    if any(token.type == "&" for token in _tokens(expression)):
        # jsonpath-ng parses it but every evaluation raises NotImplementedError
        raise _path_error(expression, "the & (intersection) operator is not supported")
    try:
        return parse(expression)
    except JSONPathError as exc:
        raise _path_error(expression, str(exc)) from None


def _tokens(expression: str) -> list[Any]:
    """The lexer's tokens, or none when it fails (the parser then reports the error)."""
    try:
        return list(JsonPathLexer().tokenize(expression))
    except JSONPathError:
        return []


def _path_error(expression: str, problem: str) -> InvalidNotificationConfig:
    """One line naming the expression (shortened) and the problem."""
    shown = " ".join(expression.split())
    if len(shown) > MAX_EXPRESSION_SHOWN:
        shown = shown[:MAX_EXPRESSION_SHOWN] + "..."
    return InvalidNotificationConfig(f"{ERROR_PREFIX}${{{shown}}}: {' '.join(problem.split())}")


# --- the compiled tree ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Literal:
    """A number, boolean, null or text without expressions: passes through."""

    value: Any

    def render(self, data: Any) -> Any:
        return self.value


@dataclass(frozen=True)
class _Value:
    """A string that is exactly one expression: the matched value with its type."""

    path: JSONPath

    def render(self, data: Any) -> Any:
        values = _matches(self.path, data)
        if not values:
            return None
        return values[0] if len(values) == 1 else values


@dataclass(frozen=True)
class _Text:
    """Text with expressions inside: each expression becomes its value's text."""

    parts: tuple[str | JSONPath, ...]

    def render(self, data: Any) -> str:
        return "".join(part if isinstance(part, str) else _matches_text(_matches(part, data))
                       for part in self.parts)


@dataclass(frozen=True)
class _Object:
    items: tuple[tuple[Node, Node], ...]

    def render(self, data: Any) -> dict[str, Any]:
        return {key.render(data): value.render(data) for key, value in self.items}


@dataclass(frozen=True)
class _List:
    items: tuple[Node, ...]

    def render(self, data: Any) -> list[Any]:
        return [item.render(data) for item in self.items]


def _matches(path: JSONPath, data: Any) -> list[Any]:
    return [match.value for match in path.find(data)]


def _matches_text(values: list[Any]) -> str:
    if not values:
        return NO_MATCH_TEXT
    return MATCH_SEPARATOR.join(_value_text(value) for value in values)


def _value_text(value: Any) -> str:
    """A string as it is, null as ``(none)``, anything else as its JSON text."""
    if isinstance(value, str):
        return value
    if value is None:
        return NO_MATCH_TEXT
    return json.dumps(value, ensure_ascii=False)
