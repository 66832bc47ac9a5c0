"""On-call commands: `notifier status`, `notifier notification show|reset|delete`,
`notifier deliveries show`, `notifier redeliver`. Each uses the domain functions the API uses."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import click

from config import get_settings
from notifier.cli import _factory, _print_deliveries, _print_table, cli, deliveries, notification
from notifier.errors import BrokerUnavailable, InvalidInput

RECENT_DELIVERIES = 10
SCHEDULER_LATE_S = 60.0
BACKLOG_OLD_S = 300.0
_AGE_RE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time with a zone, or an age such as 30m, 2h, 1d (that long ago)."""
    from notifier.models import utcnow

    age = _AGE_RE.match(text.strip())
    if age:
        return (now or utcnow()) - timedelta(**{_AGE_UNITS[age[2]]: float(age[1])})
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise InvalidInput(f"--since {text!r} is not a time: give ISO 8601 with a zone "
                           "(2026-12-01T21:00:00Z) or an age such as 30m, 2h, 1d")
    return when


def _enqueue_saved(refs) -> None:
    """Hand redelivered deliveries (already committed) to the broker."""
    from notifier.producer import default_producer

    try:
        default_producer().enqueue_deliveries(refs)
    except BrokerUnavailable as exc:
        raise BrokerUnavailable(f"{exc}. The redelivery is saved: the deliveries are pending and "
                                "the scheduler enqueues them again once the broker answers") from None


# --- notification show | reset | delete -----------------------------------------------------

@notification.command("show")
@click.argument("uuid")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def notification_show(uuid: str, as_json: bool) -> None:
    """Show notification UUID (secrets masked) and its recent deliveries."""
    from notifier.ledger import list_deliveries
    from notifier.notifications import get_notification, last_deliveries, notification_view

    with _factory()() as session:
        found = get_notification(session, uuid)
        view = {**notification_view(found, last_deliveries(session, [uuid]).get(uuid)),
                "repository": found.repository, "disabled_reason": found.disabled_reason}
        recent = list_deliveries(session, notification_uuid=uuid, limit=RECENT_DELIVERIES)
    if as_json:
        click.echo(json.dumps({**view, "recent_deliveries": recent}, indent=2))
        return
    for key in ("uuid", "repository", "event", "method", "title", "enabled", "disabled_reason",
                "number_of_failures", "created", "last_attempt", "last_error"):
        click.echo(f"{key + ':':<20}{'' if view[key] is None else view[key]}")
    click.echo(f"{'config:':<20}{json.dumps(view['config'])}")
    if view["event_config"]:
        click.echo(f"{'event_config:':<20}{json.dumps(view['event_config'])}")
    click.echo(f"recent deliveries ({len(recent)}, newest first):")
    _print_deliveries(recent)


@notification.command("reset")
@click.argument("uuid")
def notification_reset(uuid: str) -> None:
    """Enable notification UUID again and set its failure count to 0 (Quay's reset)."""
    from notifier.db import transaction
    from notifier.notifications import get_notification, reset

    with transaction(_factory()) as session:
        reset(get_notification(session, uuid))
    click.echo(f"notification {uuid} is enabled, with 0 failures")


@notification.command("delete")
@click.argument("uuid")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def notification_delete(uuid: str, yes: bool) -> None:
    """Delete notification UUID with its deliveries and their attempts."""
    from notifier.db import transaction
    from notifier.notifications import delete_notification, get_notification

    with transaction(_factory()) as session:
        found = get_notification(session, uuid)
        if not yes:
            click.confirm(f"delete the {found.method} notification {uuid} of {found.repository} "
                          "and its delivery history?", abort=True, err=True)
        delete_notification(session, found)
    click.echo(f"notification {uuid} deleted")


# --- deliveries show ------------------------------------------------------------------------

@deliveries.command("show")
@click.argument("delivery_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def deliveries_show(delivery_id: str, as_json: bool) -> None:
    """Show one delivery (its id, or its first 8 characters or more) and every attempt."""
    from notifier.ledger import delivery_view, find_delivery_row, list_attempts

    with _factory()() as session:
        row = find_delivery_row(session, delivery_id)
        view = {**delivery_view(*row), "attempt_log": list_attempts(session, row[0].id)}
    if as_json:
        click.echo(json.dumps(view, indent=2))
        return
    for key in ("id", "state", "event", "event_id", "repository", "notification", "method",
                "attempts", "next_attempt_at", "created", "delivered", "last_error"):
        click.echo(f"{key + ':':<17}{'' if view[key] is None else view[key]}")
    _print_table(["#", "started", "duration", "status", "error", "response"],
                 [[str(a["number"]), a["started"] or "",
                   "" if a["duration_ms"] is None else f"{a['duration_ms']} ms",
                   "" if a["status_code"] is None else str(a["status_code"]),
                   a["error"] or "", (a["response_excerpt"] or "")[:200]]
                  for a in view["attempt_log"]])


# --- redeliver ------------------------------------------------------------------------------

@cli.command()
@click.argument("delivery_id", required=False)
@click.option("--notification", "notification_uuid", help="Redeliver this notification's "
              "failed/skipped deliveries (instead of one DELIVERY_ID).")
@click.option("--since", help="With --notification: only deliveries created since this time "
              "(ISO 8601 with a zone, or an age: 30m, 2h, 1d).")
@click.option("--state", "states", help="With --notification: failed, skipped or both "
              "(comma-separated; default both).")
def redeliver(delivery_id, notification_uuid, since, states) -> None:
    """Send a failed or skipped delivery again (same id), or a notification's in bulk."""
    from notifier.db import transaction
    from notifier.ledger import find_delivery_row
    from notifier.notifications import get_notification
    from notifier.redelivery import redeliver as redeliver_many, redeliver_one

    if bool(delivery_id) == bool(notification_uuid):
        raise click.UsageError("give one DELIVERY_ID, or --notification UUID")
    if delivery_id and (since or states):
        raise click.UsageError("--since and --state go with --notification, not a DELIVERY_ID")
    chosen_states = [s.strip() for s in states.split(",") if s.strip()] if states else None
    if states is not None and not chosen_states:
        raise click.UsageError("--state needs failed, skipped or both")
    since_time = parse_since(since) if since else None
    with transaction(_factory()) as session:
        if delivery_id:
            refs = redeliver_one(session, find_delivery_row(session, delivery_id)[0])
        else:
            get_notification(session, notification_uuid)
            refs = redeliver_many(session, notification_uuid, since=since_time,
                                  states=chosen_states)
    _enqueue_saved(refs)
    if delivery_id:
        click.echo(f"delivery {refs[0].id} is pending again")
    else:
        click.echo(f"{len(refs)} deliveries sent again")


# --- status ---------------------------------------------------------------------------------

@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.option("--timeout", "timeout_s", default=1.0, show_default=True,
              type=click.FloatRange(0.1, 30), help="Seconds to wait for workers to answer.")
def status(as_json: bool, timeout_s: float) -> None:
    """The fleet at a glance: workers per queue, queue lengths, retries waiting, the oldest due
    delivery, the scheduler's last run, notifications failing or disabled."""
    from notifier.metrics.fleet import disabled_notifications, fleet_snapshot, workers_per_queue
    from notifier.producer import default_producer

    settings = get_settings()
    queues = [settings.fanout_queue, settings.delivery_queue]
    app = default_producer().app
    factory = _factory()
    snapshot = fleet_snapshot(factory, app, queues)
    workers = workers_per_queue(app, queues, timeout_s)
    with factory() as session:
        disabled = disabled_notifications(session, limit=RECENT_DELIVERIES)
    report = {**snapshot.as_dict(), "workers": workers, "disabled": disabled,
              "problems": _problems(snapshot.as_dict(), workers)}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    _print_status(report)


def _problems(view: dict, workers: dict[str, list[str]]) -> list[str]:
    problems = [f"no worker consumes {queue}" for queue, names in workers.items() if not names]
    age = view["scheduler_last_run_age_s"]
    if age is None:
        problems.append("the scheduler never ran (is beat running?)")
    elif age > SCHEDULER_LATE_S:
        problems.append(f"the scheduler last ran {age:.0f} s ago (is beat running?)")
    if view["oldest_due_delivery_age_s"] > BACKLOG_OLD_S:
        problems.append(f"the oldest due delivery waits for {view['oldest_due_delivery_age_s']:.0f} s")
    if None in view["queue_lengths"].values():
        problems.append("the broker did not answer")
    return problems


def _print_status(report: dict) -> None:
    for queue, names in report["workers"].items():
        length = report["queue_lengths"].get(queue)
        click.echo(f"queue {queue}: {'?' if length is None else length} waiting, "
                   f"{len(names)} worker(s) {' '.join(sorted(names))}".rstrip())
    waiting = report["deliveries_waiting"]
    click.echo("deliveries: " + ", ".join(f"{count} {state}" for state, count in waiting.items())
               + f"; oldest due waits {report['oldest_due_delivery_age_s']:.1f} s")
    last = report["scheduler_last_run"]
    click.echo(f"scheduler: last ran {last} ({report['scheduler_last_run_age_s']:.1f} s ago)"
               if last else "scheduler: never ran")
    click.echo(f"notifications: {report['notifications_failing']} failing, "
               f"{report['notifications_disabled']} disabled")
    for item in report["disabled"]:
        click.echo(f"  disabled {item['uuid']} {item['repository']} {item['method']}: "
                   f"{item['disabled_reason'] or 'by an admin'}")
    if report["dead_letters"] is not None:
        click.echo(f"dead letters: {report['dead_letters']}")
    click.echo("problems: " + ("; ".join(report["problems"]) or "none"))
