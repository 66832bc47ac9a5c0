"""HTML messages to Slack mrkdwn, rule by rule (methods.md, "slack")."""

from __future__ import annotations

import pytest

from notifier.events import build_event_data, sample_data
from notifier.messages import render_message
from notifier.mrkdwn import html_to_mrkdwn

CASES = [
    # (id, html, mrkdwn)
    ("plain text", "Image(s) pushed", "Image(s) pushed"),
    ("empty", "", ""),
    ("newlines become spaces", "one\ntwo\r\nthree", "one two three"),
    ("white space runs become one space", "a \t\n  b", "a b"),
    ("white space at the ends goes", "\n  a b  \n", "a b"),
    ("a decoded nbsp is text", "a&nbsp;b", "a\xa0b"),
    ("br is a line break", "a<br>b", "a\nb"),
    ("self-closing br", "a<br/>b", "a\nb"),
    ("spaces around a line break go", "a <br> b", "a\nb"),
    ("two line breaks", "a<br><br>b", "a\n\nb"),
    ("link", '<a href="https://x.example/r">repo</a>', "<https://x.example/r|repo>"),
    ("link in a sentence", 'see <a href="https://x.example">it</a>.',
     "see <https://x.example|it>."),
    ("link without text", '<a href="https://x.example"></a>', "<https://x.example>"),
    ("link around an image", '<a href="https://x.example"><img src="i.png"></a>',
     "<https://x.example>"),
    ("white space around an href goes", '<a href=" https://x.example ">t</a>',
     "<https://x.example|t>"),
    ("link without href keeps its text", "<a>text</a>", "text"),
    ("link with an empty href keeps its text", '<a href="">text</a>', "text"),
    ("white space inside a link moves out", 'a<a href="https://x.example"> t </a>b',
     "a <https://x.example|t> b"),
    ("href entities decoded then escaped for Slack",
     '<a href="https://x.example/?tag=a&amp;tab=tags">a</a>',
     "<https://x.example/?tag=a&amp;tab=tags|a>"),
    ("a pipe in a URL cannot split the link", '<a href="https://x.example/a|b">t</a>',
     "<https://x.example/a%7Cb|t>"),
    ("angle brackets in a URL cannot end the link", '<a href="https://x.example/&gt;&lt;">t</a>',
     "<https://x.example/&gt;&lt;|t>"),
    ("links do not nest", '<a href="https://a.example">a<a href="https://b.example">b</a>',
     "<https://a.example|a><https://b.example|b>"),
    ("bold", "<b>alice</b> pushed", "*alice* pushed"),
    ("strong", "<strong>alice</strong>", "*alice*"),
    ("italic", "<i>quietly</i>", "_quietly_"),
    ("em", "<em>quietly</em>", "_quietly_"),
    ("bold is not glued to words before and after", "a<b>b</b>c", "a *b* c"),
    ("italic is not glued to words either", "a<i>b</i>c", "a _b_ c"),
    ("bold next to punctuation stays put", "(<b>b</b>),", "(*b*),"),
    ("bold next to bold", "<b>a</b><b>b</b>", "*a* *b*"),
    ("bold next to italic", "<b>a</b><i>b</i>", "*a* _b_"),
    ("white space inside bold moves out", "a<b> b </b>c", "a *b* c"),
    ("empty bold vanishes", "a<b></b>b", "ab"),
    ("blank bold vanishes", "a <b> </b> b", "a b"),
    ("bold inside a link", '<a href="https://x.example">see <b>it</b></a>',
     "<https://x.example|see *it*>"),
    ("a link inside bold", '<b><a href="https://x.example">it</a></b>',
     "*<https://x.example|it>*"),
    ("italic inside bold", "<b><i>both</i></b>", "*_both_*"),
    ("unclosed bold is closed at the end", "<b>open", "*open*"),
    ("a stray end tag is ignored", "a</b>b</a>", "ab"),
    ("crossed tags close in order", "<b>a<i>b</b>c</i>", "*a _b_* c"),
    ("images are dropped", 'a <img src="x.png" alt="alt text"> b', "a b"),
    ("other tags keep their text", "<code>42d4a62</code> <ul><li>one</li><li>two</li></ul>",
     "42d4a62 onetwo"),
    ("list items on their own lines flatten", "<ul>\n<li>one</li>\n<li>two</li>\n</ul>",
     "one two"),
    ("comments vanish", "a<!-- secret -->b", "ab"),
    ("text entities decoded", "it&#39;s &quot;fine&quot; &eacute;", "it's \"fine\" é"),
    ("Slack control characters escaped", "a &amp; b &lt; c &gt; d", "a &amp; b &lt; c &gt; d"),
    ("a producer value cannot forge a link", "&lt;https://evil.example|click me&gt;",
     "&lt;https://evil.example|click me&gt;"),
    ("a producer value cannot forge a mention", "&lt;!channel&gt;", "&lt;!channel&gt;"),
    ("a bare ampersand", "R&D", "R&amp;D"),
    ("unicode passes", "镜像 <b>ü</b>", "镜像 *ü*"),
]


@pytest.mark.parametrize(("html", "expected"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_html_to_mrkdwn(html, expected):
    assert html_to_mrkdwn(html) == expected


RENDERED = [
    ("repo_push",
     "*alice* pushed image(s) to repository <https://registry.example.com/repository/acme/web|"
     "acme/web>: tags <https://registry.example.com/repository/acme/web?tag=latest&amp;tab=tags|"
     "latest>, <https://registry.example.com/repository/acme/web?tag=foo&amp;tab=tags|foo>"),
    ("build_failure",
     "<https://registry.example.com/repository/acme/web/build/fake-build-id|Build fake-bu> failed "
     "for repository <https://registry.example.com/repository/acme/web|acme/web>, for change "
     "<http://path/to/the/commit|42d4a62> to branch *somebranch* by *fakeauthor*\n"
     "Error: This is a fake error message"),
]


@pytest.mark.parametrize(("event", "expected"), RENDERED, ids=[r[0] for r in RENDERED])
def test_rendered_messages_convert(event, expected):
    data = build_event_data("acme/web", event, sample_data(event),
                            server_hostname="registry.example.com", scheme="https")
    html = render_message(event, "body.html", data, {"entity_name": "alice"})

    assert html_to_mrkdwn(html) == expected


def test_producer_markup_in_a_rendered_message_stays_text():
    data = build_event_data("acme/web", "repo_push",
                            {"updated_tags": ["<https://evil.example|x>", "a&b"]},
                            server_hostname="registry.example.com", scheme="https")
    html = render_message("repo_push", "body.html", data, {"entity_name": "<b>mallory</b>"})

    text = html_to_mrkdwn(html)

    assert "|&lt;https://evil.example|x&gt;>" in text
    assert "|a&amp;b>" in text
    assert text.startswith("*&lt;b&gt;mallory&lt;/b&gt;* pushed")
