"""Log lines people can read: JSON when asked (``NOTIFIER_LOG_FORMAT=json``), one line per
delivery outcome, and the per-tick chatter of the scheduler kept at DEBUG."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Iterable

from notifier.delivery import Outcome
from notifier.metrics.worker import attempt_outcome

# Attributes a record may carry (``extra=``) that a JSON line shows under the same name.
CONTEXT_FIELDS = ("event_id", "delivery_id", "notification", "attempt", "outcome", "method")
STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({})))
OUTCOME_LEVELS = {"delivered": logging.INFO, "skipped": logging.INFO, "busy": logging.INFO,
                  "retrying": logging.WARNING, "failed": logging.ERROR}

outcomes_log = logging.getLogger("notifier.outcomes")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the context fields known."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({name: getattr(record, name) for name in CONTEXT_FIELDS
                     if getattr(record, name, None) is not None})
        task = getattr(record, "data", None)  # Celery's task lines carry the task id and name
        if isinstance(task, dict) and "id" in task:
            line["task_id"], line["task"] = task.get("id"), task.get("name")
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class QuietTaskLines(logging.Filter):
    """Celery's INFO lines about these tasks (received, succeeded, sent by beat) go to DEBUG:
    the scheduler's tick says nothing on-call needs, and a delivery has its own outcome line."""

    def __init__(self, task_names: Iterable[str]):
        super().__init__()
        self.markers = tuple(marker for name in task_names
                             for marker in (f"Task {name}[", f"({name})"))

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        message = record.getMessage()
        if not any(marker in message for marker in self.markers):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


def use_json(handlers: Iterable[logging.Handler]) -> None:
    for handler in handlers:
        handler.setFormatter(JsonFormatter())


_EARLY = logging.StreamHandler()  # stderr, as Celery's own handler will be


def capture_warnings_as_json() -> None:
    """Route Python warnings through logging as JSON, even those raised before Celery sets up
    its log handlers (e.g. its warning about running as root); ``use_json`` ends the early
    handler once the real ones exist."""
    logging.captureWarnings(True)
    _EARLY.setFormatter(JsonFormatter())
    warnings = logging.getLogger("py.warnings")
    if _EARLY not in warnings.handlers:
        warnings.addHandler(_EARLY)
        warnings.propagate = False


def end_early_warnings() -> None:
    warnings = logging.getLogger("py.warnings")
    if _EARLY in warnings.handlers:
        warnings.removeHandler(_EARLY)
        warnings.propagate = True


def json_server_logs() -> None:
    """JSON for the API process: uvicorn's loggers (set up before the app exists) and root."""
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access"):
        use_json(logging.getLogger(name).handlers)


def quiet_task_lines(logger_names: Iterable[str], task_names: Iterable[str]) -> None:
    quiet = QuietTaskLines(task_names)
    for name in logger_names:
        logging.getLogger(name).addFilter(quiet)


def log_outcome(outcome: Outcome, described: str) -> None:
    """One line for what a delivery task did, with its context fields for JSON logs."""
    label = attempt_outcome(outcome)
    if label is None:
        outcomes_log.debug("%s: nothing to do (%s)", described, outcome.state)
        return
    if label == "delivered":
        text = f"attempt {outcome.attempt} of {outcome.max_attempts}"
        if outcome.duration_s is not None:
            text += f", {outcome.duration_s:.3f} s"
    elif label == "busy":
        text = "its endpoint has the most attempts in flight; waiting"
    else:
        text = outcome.describe() if outcome.ran else (outcome.error or outcome.state)
    outcomes_log.log(OUTCOME_LEVELS[label], "%s %s: %s", label, described, text, extra={
        "delivery_id": outcome.delivery_id, "notification": outcome.notification_uuid,
        "event_id": outcome.event_id, "attempt": outcome.attempt or None, "outcome": label,
        "method": outcome.method})
