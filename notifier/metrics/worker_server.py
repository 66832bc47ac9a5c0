"""Serving a worker process group's metrics on ``NOTIFIER_METRICS_PORT``.

Prefork children each write their own files (prometheus-client's multiprocess mode); the main
process serves them added up. Each worker gets its own folder, emptied when it starts, so a
restarted worker never reports its predecessor's counts.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def worker_folder(base: str, node_name: str) -> Path:
    """``base``/``node_name`` (made safe for a path), emptied."""
    folder = Path(base) / re.sub(r"[^A-Za-z0-9_.@-]", "_", node_name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def start_worker_metrics(port: int, base: str, node_name: str, queues: list[str],
                         host: str = "0.0.0.0") -> str:
    """Serve this worker's metrics on ``host:port``; returns the folder it collects from.

    Call it in the worker's main process before the pool starts (prefork children inherit
    the folder) and before any of our metrics exists.
    """
    folder = worker_folder(base, node_name)
    os.environ[MULTIPROC_ENV] = str(folder)  # inherited by prefork children
    from prometheus_client import CollectorRegistry, start_http_server, values
    from prometheus_client.multiprocess import MultiProcessCollector

    from notifier.metrics.worker import worker_metrics

    # prometheus-client picks its value class when first imported, and `celery` imports it
    # (through Flower's command plugin) before any app code runs: choose again, now.
    values.ValueClass = values.MultiProcessValue()
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))
    start_http_server(port, addr=host, registry=registry)
    for queue in queues:
        worker_metrics().worker_up.labels(queue=queue).set(1)
    log.info("metrics on http://%s:%d/metrics (files in %s)", host, port, folder)
    return str(folder)
