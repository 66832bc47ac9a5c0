"""The bare-Celery ceiling: a task that only POSTs a delivery's body, nothing else.

Same broker, serializer, late ack, reject on worker loss, prefetch and task events as the
notifier's workers (``celery_config`` of the same settings), started with the same pool and
concurrency by ``bench/pipeline.py``:

    celery -A bench.ceiling worker -Q <queue> -P <pool> -c <n>

No database, no claim, no record: what is left of a delivery when the guarantees cost nothing.
"""

from __future__ import annotations

import json
import os
import threading

import requests
from celery import Celery

from config import get_settings
from config.celery import celery_config

CEILING_TASK = "bench.ceiling_post"
SAMPLE_ENV = "BENCH_CEILING_SAMPLE"  # a JSON file: {"headers": {...}, "body": {...}}

app = Celery("bench-ceiling", set_as_current=True)
app.add_defaults(lambda: celery_config(get_settings()))

_local = threading.local()
_sample: tuple[dict[str, str], dict] | None = None
_lock = threading.Lock()


def _sample_request() -> tuple[dict[str, str], dict]:
    """The real delivery's headers and body the benchmark saved (read once per process)."""
    global _sample
    with _lock:
        if _sample is None:
            with open(os.environ[SAMPLE_ENV]) as handle:
                saved = json.load(handle)
            _sample = saved["headers"], saved["body"]
        return _sample


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        session.trust_env = False  # loopback only
    return session


@app.task(name=CEILING_TASK)
def post(url: str, delivery_id: str, published_at: float) -> None:
    """POST the sample body, stamped like a delivery, as a delivery would."""
    headers, body = _sample_request()
    data = json.dumps({**body, "bench_published_at": published_at},
                      separators=(",", ":")).encode()
    _session().post(url, data=data, timeout=get_settings().send_timeout_s,
                    headers={**headers, "webhook-id": delivery_id},
                    allow_redirects=False).raise_for_status()
