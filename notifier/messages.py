"""Human messages: an HTML body and its plain-text twin for every event, rendered by one function.

Templates live in ``templates/<event>/body.html`` and ``body.txt``; shared pieces (links, tag
lists, the build sentence) in ``templates/_partials/``. The templates only print what
``message_context`` prepared, so every key they use is always defined (StrictUndefined) and every
producer value reaches HTML through autoescape.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import quote, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from notifier.events import get_event
from notifier.filters import SEVERITIES, passing_vulnerabilities, severity_index

CHANNELS = ("body.html", "body.txt")
PUSHED_TAGS_SHOWN = 5
VULNERABLE_TAGS_SHOWN = 3  # as Quay: "t1, t2, t3 (and N more)"
VULNERABILITIES_SHOWN = 10

Data = dict[str, Any]

_EVENT_DEFAULTS: Data = {
    "tags": [], "tags_more": 0,
    "build_id_short": None, "build_url": None, "manual": False,
    "ref_kind": None, "ref_name": None, "commit_short": None, "commit_url": None, "author": None,
    "vulnerabilities": [], "vulnerabilities_more": 0,
}


@cache
def environment() -> Environment:
    """The Jinja environment for messages, built on first use."""
    return Environment(
        loader=PackageLoader("notifier", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_message(event: str, channel: str, event_data: Data, performer: Data | None = None,
                   *, event_config: Data | None = None) -> str:
    """The message for ``event`` on ``channel`` ("body.html" or "body.txt")."""
    get_event(event)  # UnknownEvent before any template lookup
    if channel not in CHANNELS:
        raise ValueError(f"Unknown message channel {channel!r}: use one of {', '.join(CHANNELS)}")
    template = environment().get_template(f"{event}/{channel}")
    context = message_context(event, event_data, performer, event_config=event_config)
    return template.render(context).strip()


def message_context(event: str, event_data: Data, performer: Data | None = None,
                    *, event_config: Data | None = None) -> Data:
    """Everything the templates print, with None/[] where the event data says nothing."""
    repository_url = _repository_url(event, event_data)
    context = {
        **_EVENT_DEFAULTS,
        "data": event_data,
        "performer": (performer or {}).get("entity_name"),
        "repository": event_data.get("repository"),
        "repository_url": repository_url,
        "message": event_data.get("message"),
        "error_message": event_data.get("error_message"),
    }
    if event == "repo_push":
        context.update(_tag_fields(event_data.get("updated_tags"), repository_url,
                                   PUSHED_TAGS_SHOWN))
    elif event == "vulnerability_found":
        context.update(_tag_fields(event_data.get("tags"), repository_url, VULNERABLE_TAGS_SHOWN))
        context.update(_vulnerability_fields(event_config or {}, event_data))
    elif get_event(event).is_build:
        context.update(_build_fields(event_data))
    return context


def web_url(url: Any) -> str | None:
    """``url`` if it is an http(s) URL, else None: a producer's ``javascript:`` is never a link."""
    if isinstance(url, str) and urlsplit(url).scheme.lower() in ("http", "https"):
        return url
    return None


def _repository_url(event: str, data: Data) -> str | None:
    """The repository page. A build's ``homepage`` is its build page: strip ``/build/<id>``."""
    homepage = web_url(data.get("homepage"))
    if homepage and get_event(event).is_build:
        # Only the exact suffix: a repository name may itself contain "/build/".
        return homepage.removesuffix(f"/build/{data.get('build_id')}")
    return homepage


def _first(items: Any, shown: int) -> tuple[list, int]:
    """The first ``shown`` items of a list (anything else counts as empty) and how many remain."""
    items = items if isinstance(items, list) else []
    return items[:shown], max(0, len(items) - shown)


def _tag_fields(names: Any, repository_url: str | None, shown: int) -> Data:
    """The first tags, each with its link on the repository's tags tab, and how many more."""
    first, more = _first(names, shown)
    tags = [{"name": str(name), "url": _tag_url(repository_url, str(name))} for name in first]
    return {"tags": tags, "tags_more": more}


def _tag_url(repository_url: str | None, tag: str) -> str | None:
    if repository_url is None:
        return None
    return f"{repository_url}?tag={quote(tag, safe='')}&tab=tags"


def _dig(value: Any, *keys: str) -> Any:
    """``value[k1][k2]...``, or None as soon as a level is missing or not an object."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _build_fields(data: Data) -> Data:
    """Which build, and where known which change (commit, branch or tag, author) it built."""
    metadata = data.get("trigger_metadata")
    commit = _dig(metadata, "commit")
    commit_short = commit[:7] if isinstance(commit, str) and commit else None
    ref_kind, ref_name = split_ref(_dig(metadata, "ref"))
    has_trigger = data.get("trigger_id") or data.get("trigger_kind")
    return {
        "build_id_short": str(data.get("build_id"))[:7],
        "build_url": web_url(data.get("homepage")),
        "manual": not (has_trigger or commit_short or ref_name),
        "ref_kind": ref_kind,
        "ref_name": ref_name,
        "commit_short": commit_short,
        "commit_url": web_url(_dig(metadata, "commit_info", "url")),
        "author": _dig(metadata, "commit_info", "author", "username"),
    }


def split_ref(ref: Any) -> tuple[str | None, str | None]:
    """``refs/heads/X`` → ("branch", X), ``refs/tags/X`` → ("tag", X), another ref → (None, ref)."""
    if not isinstance(ref, str) or not ref:
        return None, None
    for prefix, kind in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
        if ref.startswith(prefix) and len(ref) > len(prefix):
            return kind, ref[len(prefix):]
    return None, ref


def _vulnerability_fields(event_config: Data, data: Data) -> Data:
    """The vulnerabilities that pass the notification's level, worst first."""
    passing = passing_vulnerabilities(event_config, data)
    worst_first = sorted(passing, key=lambda found: severity_index(found.get("priority")))
    first, more = _first(worst_first, VULNERABILITIES_SHOWN)
    return {"vulnerabilities": [_vulnerability(found) for found in first],
            "vulnerabilities_more": more}


def _vulnerability(found: Data) -> Data:
    return {
        "severity": SEVERITIES[severity_index(found.get("priority"))],
        "id": found.get("id"),
        "url": web_url(found.get("link")),
    }
