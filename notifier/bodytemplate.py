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

Templates are anyone's input, compiled in the API and in every worker, so everything is bounded:
the text (MAX_TEMPLATE_BYTES), the number and length of expressions (which bound the compile
time), the compiled templates a process keeps (CACHE_TEMPLATE_BYTES of template text), and what
one event renders to (MAX_RENDERED_BYTES, counted as it is produced).
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
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
MAX_TEMPLATE_BYTES = 16 * 1024  # a template's text, UTF-8 encoded
MAX_EXPRESSIONS = 100  # ${...} in one template: each costs a parse (milliseconds)
MAX_EXPRESSION_CHARS = 256  # inside one ${...}
MAX_RENDERED_BYTES = 1024 * 1024  # the JSON body one event renders to
CACHE_TEMPLATE_BYTES = 256 * 1024  # template text whose compiled form a process keeps
MAX_DEPTH = 64  # objects and lists nested in one another


class Node(Protocol):
    def render(self, data: Any, budget: _Budget) -> Any:
        """This part of the document with the event data filled in; text built is charged to
        ``budget``."""


class OutputTooLarge(InvalidNotificationConfig):
    """What a template renders to for one event passes MAX_RENDERED_BYTES."""

    def __init__(self):
        super().__init__(f"{ERROR_PREFIX}its output for this event is larger than "
                         f"{MAX_RENDERED_BYTES} bytes")


class _Budget:
    """Bytes of output left; rendering stops as soon as it is spent."""

    def __init__(self, max_bytes: int):
        self.left = max_bytes

    def spend(self, text: str) -> str:
        self.left -= len(text.encode("utf-8", "surrogatepass"))
        if self.left < 0:
            raise OutputTooLarge()
        return text


@dataclass(frozen=True)
class Template:
    """A checked body template; ``apply`` fills it with one event's data."""

    root: Node

    def apply(self, event_data: Any) -> Any:
        """The document with every expression replaced by its value from ``event_data``.

        OutputTooLarge when the text it builds passes MAX_RENDERED_BYTES.
        """
        return self.root.render(event_data, _Budget(MAX_RENDERED_BYTES))

    def render_body(self, event_data: Any) -> bytes:
        """``apply`` serialised as compact JSON (the bytes that are signed and sent), counted as
        it is written: OutputTooLarge past MAX_RENDERED_BYTES."""
        document = self.apply(event_data)
        encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
        written = _Budget(MAX_RENDERED_BYTES)  # a value the document holds many times counts each
        return "".join(written.spend(chunk) for chunk in encoder.iterencode(document)).encode()


def compile_template(text: Any) -> Template:
    """Check and compile a template stored as JSON text (InvalidNotificationConfig if bad)."""
    if not isinstance(text, str):
        raise InvalidNotificationConfig(ERROR_PREFIX + "must be a string of JSON text")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_TEMPLATE_BYTES:
        raise InvalidNotificationConfig(
            f"{ERROR_PREFIX}{size} bytes, at most {MAX_TEMPLATE_BYTES}")
    expressions = EXPRESSION.findall(text)
    if len(expressions) > MAX_EXPRESSIONS:
        raise InvalidNotificationConfig(
            f"{ERROR_PREFIX}{len(expressions)} expressions, at most {MAX_EXPRESSIONS}")
    return _CACHE.get(text)


# --- compiling ------------------------------------------------------------------------------------

class _CompiledCache:
    """Compiled templates by text, least recently used out, bounded by their text's size (a
    compiled template takes tens of times its text): a worker applies the same few templates
    again and again."""

    def __init__(self, max_text_bytes: int):
        self.max_text_bytes = max_text_bytes
        self._entries: OrderedDict[str, Template] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, text: str) -> Template:
        with self._lock:
            if text in self._entries:
                self._entries.move_to_end(text)
                return self._entries[text]
        template = _compile_text(text)
        with self._lock:
            if text not in self._entries:
                self._entries[text] = template
                self._bytes += len(text)
            while self._bytes > self.max_text_bytes and len(self._entries) > 1:
                evicted, _ = self._entries.popitem(last=False)
                self._bytes -= len(evicted)
            return self._entries.get(text, template)


_CACHE = _CompiledCache(CACHE_TEMPLATE_BYTES)


def _compile_text(text: str) -> Template:
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
        return Template(_compile_node(document))
    except json.JSONDecodeError as exc:
        raise InvalidNotificationConfig(f"{ERROR_PREFIX}not JSON: {exc}") from None
    except RecursionError:
        raise InvalidNotificationConfig(
            f"{ERROR_PREFIX}nested too deeply (at most {MAX_DEPTH} levels)") from None


def _refuse_constant(name: str) -> Any:
    """json.loads accepts NaN and Infinity, which are not JSON and could not be sent."""
    raise InvalidNotificationConfig(f"{ERROR_PREFIX}not JSON: {name} is not a JSON value")


def _compile_node(value: Any, depth: int = 0) -> Node:
    if depth > MAX_DEPTH:
        raise RecursionError  # reported as "nested too deeply"
    if isinstance(value, dict):
        return _Object(tuple((_compile_key(k), _compile_node(v, depth + 1))
                             for k, v in value.items()))
    if isinstance(value, list):
        return _List(tuple(_compile_node(item, depth + 1) for item in value))
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
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise _path_error(expression, f"longer than {MAX_EXPRESSION_CHARS} characters")
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

    def render(self, data: Any, budget: _Budget) -> Any:
        return self.value


@dataclass(frozen=True)
class _Value:
    """A string that is exactly one expression: the matched value with its type."""

    path: JSONPath

    def render(self, data: Any, budget: _Budget) -> Any:
        values = _matches(self.path, data)
        if not values:
            return None
        return values[0] if len(values) == 1 else values


@dataclass(frozen=True)
class _Text:
    """Text with expressions inside: each expression becomes its value's text."""

    parts: tuple[str | JSONPath, ...]

    def render(self, data: Any, budget: _Budget) -> str:
        return "".join(budget.spend(part if isinstance(part, str)
                                    else _matches_text(_matches(part, data)))
                       for part in self.parts)


@dataclass(frozen=True)
class _Object:
    items: tuple[tuple[Node, Node], ...]

    def render(self, data: Any, budget: _Budget) -> dict[str, Any]:
        return {key.render(data, budget): value.render(data, budget) for key, value in self.items}


@dataclass(frozen=True)
class _List:
    items: tuple[Node, ...]

    def render(self, data: Any, budget: _Budget) -> list[Any]:
        return [item.render(data, budget) for item in self.items]


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
