"""Celery workers: `celery -A workers worker|beat|flower`."""

from workers.application import app
from workers import tasks  # noqa: F401  (registers the tasks)

__all__ = ["app"]
