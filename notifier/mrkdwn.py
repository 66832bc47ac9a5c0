"""HTML messages as Slack mrkdwn (methods.md, "slack").

Newlines become spaces and runs of white space one space; ``<br>`` is a line break;
``<a href=X>t</a>`` becomes ``<X|t>``; bold (b, strong) ``*t*``; italic (i, em) ``_t_``; images
are dropped and other tags removed, keeping their text. HTML entities are decoded, then Slack's
control characters (&, <, >) are escaped again in text and URLs, so a value a producer sent can
never become a link or a mention: only the tags of the message make markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

HTML_WHITESPACE = re.compile(r"[ \t\n\r\f]+")  # not \s: a decoded &nbsp; is text, not layout
MARKERS = {"b": "*", "strong": "*", "i": "_", "em": "_"}
TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
URL_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "%7C"})
EDGE_WHITESPACE = " \n"


def escape_text(text: str) -> str:
    """Plain text as Slack shows it literally: ``&``, ``<`` and ``>`` escaped, so nothing in it
    becomes a mention (``<!channel>``), a link or a disguised link (``<https://x|y>``)."""
    return text.translate(TEXT_ESCAPES)


def html_to_mrkdwn(html: str) -> str:
    """The Slack mrkdwn form of an HTML message."""
    parser = _MrkdwnParser()
    parser.feed(html)
    return parser.finish()


@dataclass(frozen=True)
class _Chunk:
    """A piece of finished mrkdwn; ``marked`` ones begin and end with a formatting marker."""

    text: str
    marked: bool = False


@dataclass
class _Element:
    """An open ``a``, ``b``, ``i``... whose content is still being collected."""

    tag: str
    href: str | None = None
    chunks: list[_Chunk] = field(default_factory=list)


class _MrkdwnParser(HTMLParser):
    """Collects chunks per open element; closing an element renders it into its parent."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.open_elements = [_Element("")]  # the root element collects the whole message

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._add(_Chunk("\n"))
        elif tag == "a":
            self._close("a")  # links do not nest: a new <a> ends an open one, as HTML does
            self.open_elements.append(_Element("a", href=dict(attrs).get("href")))
        elif tag in MARKERS:
            self.open_elements.append(_Element(tag))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" or tag in MARKERS:
            self._close(tag)

    def handle_data(self, data: str) -> None:
        self._add(_Chunk(escape_text(HTML_WHITESPACE.sub(" ", data))))

    def finish(self) -> str:
        """Close what the HTML left open and return the message."""
        self.close()
        while len(self.open_elements) > 1:
            self._render_innermost()
        return _tidy(_join(self.open_elements[0].chunks))

    def _add(self, chunk: _Chunk) -> None:
        self.open_elements[-1].chunks.append(chunk)

    def _close(self, tag: str) -> None:
        """End the innermost open ``tag`` and all opened inside it; a stray end tag does nothing."""
        if not any(element.tag == tag for element in self.open_elements[1:]):
            return
        while self.open_elements[-1].tag != tag:
            self._render_innermost()
        self._render_innermost()

    def _render_innermost(self) -> None:
        """Pop the innermost open element and add its mrkdwn to the element around it."""
        element = self.open_elements.pop()
        inner = _join(element.chunks)
        if element.tag == "a":
            rendered = _link(element.href, inner)
        else:
            rendered = _formatted(MARKERS[element.tag], inner)
        self.open_elements[-1].chunks.extend(rendered)


def _split_edges(text: str) -> tuple[str, str, str]:
    """``text`` as (leading white space, the rest stripped, trailing white space)."""
    core = text.strip(EDGE_WHITESPACE)
    if not core:
        return text, "", ""
    lead = text[:len(text) - len(text.lstrip(EDGE_WHITESPACE))]
    return lead, core, text[len(text.rstrip(EDGE_WHITESPACE)):]


def _formatted(marker: str, inner: str) -> list[_Chunk]:
    """``*inner*``, white space at its edges moved outside (Slack ignores ``* t *``)."""
    lead, core, trail = _split_edges(inner)
    if not core:
        return [_Chunk(lead)]
    return [_Chunk(lead), _Chunk(f"{marker}{core}{marker}", marked=True), _Chunk(trail)]


def _link(href: str | None, inner: str) -> list[_Chunk]:
    """``<url|text>`` (``<url>`` without text); an ``a`` without an href keeps only its text."""
    url = (href or "").strip()
    if not url:
        return [_Chunk(inner)]
    lead, core, trail = _split_edges(inner)
    url = url.translate(URL_ESCAPES)
    return [_Chunk(lead), _Chunk(f"<{url}|{core}>" if core else f"<{url}>"), _Chunk(trail)]


def _touches(char: str) -> bool:
    """Whether a marker next to ``char`` stops being a marker for Slack."""
    return char.isalnum() or char in "*_"


def _join(chunks: list[_Chunk]) -> str:
    """Concatenate, with a space wherever a marker would touch a word character or a marker."""
    text = ""
    previous_marked = False
    for chunk in chunks:
        if not chunk.text:
            continue
        if text and ((chunk.marked and _touches(text[-1]))
                     or (previous_marked and _touches(chunk.text[0]))):
            text += " "
        text += chunk.text
        previous_marked = chunk.marked
    return text


def _tidy(text: str) -> str:
    """One space between words; none around line breaks or at the ends."""
    return "\n".join(" ".join(filter(None, line.split(" "))) for line in text.split("\n"))
