"""The Celery application. Its configuration is read from settings when Celery first needs it
(worker, beat or Flower start-up), not at import time."""

from __future__ import annotations

import gc
import logging
import sys
import tempfile
import threading

from celery import Celery
from celery.signals import (after_setup_logger, after_setup_task_logger, beat_init,
                            celeryd_after_setup, celeryd_init, worker_process_init,
                            worker_ready)

from config import ConfigurationError, get_settings
from config.celery import DELIVER_TASK, ENQUEUE_DUE_TASK, celery_config
from notifier.logging_config import (capture_warnings_as_json, end_early_warnings,
                                     quiet_task_lines, use_json)
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


# Celery's loggers that write a line per task received, finished, or sent by beat.
PER_TASK_LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.beat")


@after_setup_logger.connect
def _set_up_logs(logger, **_) -> None:
    # urllib3 logs each request line, query string (and so any token in it) included, at DEBUG.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    # The scheduler's tick goes to DEBUG; a delivery's own outcome line replaces Celery's two.
    quiet_task_lines(PER_TASK_LOGGERS, [ENQUEUE_DUE_TASK, DELIVER_TASK])
    if get_settings().log_format == "json":
        use_json(logger.handlers)
        end_early_warnings()
        logging.captureWarnings(True)  # a library's warning is a JSON line too


@celeryd_init.connect
def _early_json_warnings(**_) -> None:
    if get_settings().log_format == "json":
        capture_warnings_as_json()


@after_setup_task_logger.connect
def _set_up_task_logs(logger, **_) -> None:
    if get_settings().log_format == "json":
        use_json(logger.handlers)


@beat_init.connect
def _beat_sends_no_task_events(sender, **_) -> None:
    # Beat only sends the periodic tasks; a "sent" event for each tick would fill Flower.
    sender.app.conf.task_send_sent_event = False


@celeryd_after_setup.connect
def _serve_metrics(sender, instance, **_) -> None:
    """Serve this worker's metrics on NOTIFIER_METRICS_PORT, when set: in the main process,
    after logging is set up and before the pool starts."""
    settings = get_settings()
    if settings.metrics_port is None:
        return
    from notifier.metrics.worker_server import start_worker_metrics

    base = settings.metrics_dir or f"{tempfile.gettempdir()}/notifier-metrics"
    start_worker_metrics(settings.metrics_port, base, instance.hostname,
                         sorted(instance.app.amqp.queues.consume_from))


@worker_process_init.connect
def _forget_parent_connections(**_) -> None:
    global _runtime
    _runtime = None


def _freeze_start_up_heap(**_) -> None:
    """Put what start-up made (modules, classes, settings: about 145,000 objects that live as
    long as the process) out of the garbage collector's reach. A full collection then walks
    only what the work made since: a few milliseconds, where it took 90-150 ms on a busy
    machine, a stall of the whole process that every delivery in flight waited out. Done in
    the main process before the pool forks (so the children's collections do not write to the
    pages they share with it), in each child after its own start, and once the consumer runs."""
    gc.collect()
    gc.freeze()


for _signal in (celeryd_after_setup, worker_process_init, worker_ready, beat_init):
    _signal.connect(_freeze_start_up_heap, weak=False)
