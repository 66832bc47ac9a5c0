"""The Celery configuration, derived from Settings (see docs in delivery.md of the spec)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from config.settings import Settings

FAN_OUT_TASK = "notifier.fan_out"
DELIVER_TASK = "notifier.deliver"
ENQUEUE_DUE_TASK = "notifier.enqueue_due"
PRUNE_LEDGER_TASK = "notifier.prune_ledger"

# kombu's local-folder transport, with atomic message writes (see the module).
FILESYSTEM_TRANSPORT = "config.filesystem_broker:Transport"
# kombu's Redis transport, with a worker that outlives a Redis restart (see the module).
REDIS_TRANSPORT = "config.redis_broker:Transport"
# The local-folder broker polls; at kombu's default of 1 s every hop costs about a second.
FILESYSTEM_POLLING_INTERVAL_S = 0.1


def filesystem_folder(broker_url: str) -> Path | None:
    """The folder of a ``filesystem://<folder>`` broker URL, or None for other brokers."""
    parts = urlsplit(broker_url)
    if parts.scheme != "filesystem":
        return None
    return Path((parts.netloc + parts.path) or "var/broker")


def _transport(broker_url: str) -> str | None:
    scheme = urlsplit(broker_url).scheme
    return {"filesystem": FILESYSTEM_TRANSPORT, "redis": REDIS_TRANSPORT}.get(scheme)


def broker_transport_options(settings: Settings) -> dict:
    folder = filesystem_folder(settings.broker_url)
    if folder is None:
        return {"visibility_timeout": settings.visibility_timeout_s}
    folders = {
        "data_folder_in": folder / "queue",
        "data_folder_out": folder / "queue",
        "processed_folder": folder / "processed",
        "control_folder": folder / "control",
    }
    for path in folders.values():
        path.mkdir(parents=True, exist_ok=True)  # kombu creates none of them
    options = {name: str(path) for name, path in folders.items()}
    options["store_processed"] = False
    options["polling_interval"] = FILESYSTEM_POLLING_INTERVAL_S
    return options


def celery_config(settings: Settings) -> dict:
    """Everything Celery needs, for producers, workers, beat and Flower alike."""
    embedded = filesystem_folder(settings.broker_url) is not None
    return {
        "broker_url": settings.broker_url,
        "broker_transport": _transport(settings.broker_url),
        "broker_transport_options": broker_transport_options(settings),
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 4.0,
        "broker_pool_limit": 10,
        "broker_heartbeat": 0 if embedded else 60,
        # Producers: never report success for a message the broker did not take.
        "task_publish_retry": True,
        "task_publish_retry_policy": {
            "max_retries": 3,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1.0,
        },
        # JSON only: arguments are ids and small dicts.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        # A worker killed mid-task loses nothing: ack after the task, requeue on loss.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_eta_task_limit": 100,
        # Flower sees every task: received, started, succeeded or failed (with the reason) come
        # from the worker's events. No task_track_started: it only stores STARTED in a result
        # backend, and there is none.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_default_queue": settings.fanout_queue,
        "task_routes": {
            FAN_OUT_TASK: {"queue": settings.fanout_queue},
            DELIVER_TASK: {"queue": settings.delivery_queue},
            ENQUEUE_DUE_TASK: {"queue": settings.fanout_queue},
            PRUNE_LEDGER_TASK: {"queue": settings.fanout_queue},
        },
        "task_create_missing_queues": True,
        "beat_schedule": {
            "enqueue-due-deliveries": {
                "task": ENQUEUE_DUE_TASK,
                "schedule": settings.scheduler_interval_s,
                "options": {"expires": max(settings.scheduler_interval_s * 5, 5.0)},
            },
            "prune-ledger": {  # ledger retention
                "task": PRUNE_LEDGER_TASK,
                "schedule": settings.retention_interval_s,
                "options": {"expires": settings.retention_interval_s},
            },
        },
        "beat_max_loop_interval": min(settings.scheduler_interval_s, 5.0),
        "worker_hijack_root_logger": True,
        "worker_redirect_stdouts": False,
        "broker_connection_max_retries": None,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "timezone": "UTC",
        "enable_utc": True,
    }
