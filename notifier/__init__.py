"""notifier: repository notifications for container registries (Quay-compatible).

The registry-facing entry point is ``publish_event``; the rest of the package is the domain the
Celery tasks in ``workers`` call into.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "publish_event"]


def publish_event(repository, event, data=None, *, performer=None, event_id=None) -> str:
    """Validate one repository event and hand it to the broker; returns the event id."""
    from notifier.producer import publish_event as publish

    return publish(repository, event, data, performer=performer, event_id=event_id)
