"""The Celery application. Its configuration is read from settings when Celery first needs it
(worker, beat or Flower start-up), not at import time."""

from __future__ import annotations

import logging
import sys
import threading

from celery import Celery
from celery.signals import after_setup_logger, worker_process_init

from config import ConfigurationError, get_settings
from config.celery import celery_config
from notifier.producer import Producer
from notifier.runtime import Runtime

app = Celery("notifier", set_as_current=True)


def _configuration() -> dict:
    try:
        return celery_config(get_settings())
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


app.add_defaults(_configuration)

_lock = threading.Lock()
_runtime: Runtime | None = None
_producer: Producer | None = None


def runtime() -> Runtime:
    """This process's Runtime, built on first use (after any fork)."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = Runtime.from_settings(get_settings(), stopping=worker_stopping)
        return _runtime


def worker_stopping() -> bool:
    """True once this worker was asked to shut down (warm or cold)."""
    from celery.worker import state

    return bool(state.should_stop or state.should_terminate)


def producer() -> Producer:
    global _producer
    with _lock:
        if _producer is None:
            _producer = Producer(app, get_settings())
        return _producer


@after_setup_logger.connect
def _keep_urls_out_of_logs(**_) -> None:
    # urllib3 logs each request line, query string (and so any token in it) included, at DEBUG.
    logging.getLogger("urllib3").setLevel(logging.WARNING)


@worker_process_init.connect
def _forget_parent_connections(**_) -> None:
    global _runtime
    _runtime = None
