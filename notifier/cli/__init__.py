"""The `notifier` command line. Errors print one line and exit non-zero, never a traceback."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError

from config import ConfigurationError, get_settings
from notifier.errors import InvalidInput, NotifierError

EXIT_ERROR = 1
EXIT_USAGE = 2


def _json_option(value: str | None, option: str):
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{option} is not valid JSON: {exc}") from None


def _factory():
    from notifier.db import check_schema, make_engine, make_session_factory

    engine = make_engine(get_settings().database_url)
    check_schema(engine)
    return make_session_factory(engine)


@click.group()
@click.version_option(package_name="notifier")
def cli() -> None:
    """Repository notifications for container registries."""


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--wait", "wait_s", default=0.0, show_default=True, type=click.FloatRange(0, 3600),
              help="Seconds to wait for the database to answer first.")
def db_upgrade(wait_s: float) -> None:
    """Create or migrate the tables to the newest schema."""
    from notifier.db import make_engine
    from notifier.migrate import upgrade
    from notifier.waits import wait_for_database

    engine = make_engine(get_settings().database_url)
    if wait_s:
        wait_for_database(engine, wait_s)
    upgrade(engine)
    click.echo("database is up to date")


@cli.group()
def notification() -> None:
    """Repository notifications."""


@notification.command("add")
@click.argument("repository")
@click.option("--event", required=True, help="Event name, e.g. repo_push.")
@click.option("--method", required=True, help="Method name, e.g. webhook.")
@click.option("--config", "config_json", required=True, help="Method config as JSON.")
@click.option("--event-config", "event_config_json", help="Filters as JSON, e.g. "
              '\'{"ref-regex": "refs/heads/main"}\'.')
@click.option("--title", help="A title shown to people.")
def notification_add(repository, event, method, config_json, event_config_json, title) -> None:
    """Add a notification to REPOSITORY (namespace/name); prints its uuid."""
    from notifier.db import transaction
    from notifier.netpolicy import parse_networks
    from notifier.notifications import create_notification

    config = _json_option(config_json, "--config")
    event_config = _json_option(event_config_json, "--event-config")
    settings = get_settings()
    allowed = parse_networks(settings.allowed_networks)
    with transaction(_factory()) as session:
        created = create_notification(
            session, repository, event, method, config, event_config, title,
            allowed_networks=allowed,
            max_per_repository=settings.max_notifications_per_repository)
        click.echo(created.uuid)


@notification.command("list")
@click.argument("repository")
@click.option("--json", "as_json", is_flag=True, help="Quay's view, as JSON.")
def notification_list(repository: str, as_json: bool) -> None:
    """List REPOSITORY's notifications (secrets masked)."""
    from notifier.notifications import last_deliveries, list_notifications, notification_view

    with _factory()() as session:
        found = list_notifications(session, repository)
        last = last_deliveries(session, [n.uuid for n in found])
        views = [notification_view(n, last.get(n.uuid)) for n in found]
    if as_json:
        click.echo(json.dumps({"notifications": views}, indent=2))
        return
    _print_table(["uuid", "event", "method", "config", "enabled", "failures", "last error"],
                 [[v["uuid"], v["event"], v["method"], json.dumps(v["config"]),
                   str(v["enabled"]), str(v["number_of_failures"]), v["last_error"] or ""]
                  for v in views])


@notification.command("test")
@click.argument("uuid")
def notification_test(uuid: str) -> None:
    """Send the event's sample data to notification UUID through the pipeline; prints the event id."""
    from notifier.notifications import get_notification, send_test
    from notifier.producer import default_producer

    with _factory()() as session:
        target = get_notification(session, uuid)
    click.echo(send_test(target, default_producer()))


@cli.command()
@click.argument("repository")
@click.argument("event")
@click.option("--data", "data_json", help="Event data as JSON.")
@click.option("--performer", "performer_json", help="Who caused it, as JSON.")
@click.option("--event-id", help="Your own id, to make the publish idempotent.")
def publish(repository, event, data_json, performer_json, event_id) -> None:
    """Publish EVENT for REPOSITORY; prints the event id."""
    from notifier.producer import publish_event

    data = _json_option(data_json, "--data")
    performer = _json_option(performer_json, "--performer")
    click.echo(publish_event(repository, event, data, performer=performer, event_id=event_id))


@cli.group(invoke_without_command=True)
@click.option("--notification", "notification_uuid", help="Only this notification's.")
@click.option("--state", type=click.Choice(["pending", "delivering", "delivered", "retrying",
                                            "failed", "skipped"]))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="One JSON document, attempts included.")
@click.pass_context
def deliveries(ctx, notification_uuid, state, limit, as_json) -> None:
    """List deliveries, newest first, with state, attempts and last error
    (`notifier deliveries show ID` for one, with every attempt)."""
    from notifier.ledger import list_attempts, list_deliveries

    if ctx.invoked_subcommand is not None:
        return

    with _factory()() as session:
        rows = list_deliveries(session, notification_uuid=notification_uuid, state=state,
                               limit=limit)
        if as_json:
            for row in rows:
                row["attempt_log"] = list_attempts(session, row["id"])
            click.echo(json.dumps(rows, indent=2))
            return
    _print_deliveries(rows)


def _print_deliveries(rows: list[dict]) -> None:
    _print_table(["created", "delivery", "event", "repository", "method", "state", "attempts",
                  "last error"],
                 [[row["created"], row["id"][:8], row["event"], row["repository"],
                   row["method"], row["state"], str(row["attempts"]), row["last_error"] or ""]
                  for row in rows])


def _print_table(columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*row)
    Console(width=200).print(table)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def api(host: str, port: int) -> None:
    """Serve the HTTP API with uvicorn (OpenAPI at /openapi.json)."""
    import uvicorn

    get_settings()  # a bad setting stops here, in one line
    uvicorn.run("notifier.api:create_app", factory=True, host=host, port=port)


@cli.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.option("--service", help="A token for this service (the registry).")
@click.option("--user", help="A token for this user of the directory.")
@click.option("--expires-in-days", type=click.FloatRange(min=0, min_open=True),
              help="It stops working after this many days (default: when revoked).")
def token_create(service: str | None, user: str | None, expires_in_days: float | None) -> None:
    """Create a token and print it: it is shown this once, and stored hashed."""
    from notifier.api.tokens import create_token
    from notifier.db import transaction

    if bool(service) == bool(user):
        raise click.UsageError("give exactly one of --service NAME or --user NAME")
    expires_in_s = expires_in_days * 86400 if expires_in_days else None
    with transaction(_factory()) as session:
        click.echo(create_token(session, service=service, user=user, expires_in_s=expires_in_s))


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def token_list(as_json: bool) -> None:
    """The stored tokens: id, kind, name, created, expires (never the tokens themselves)."""
    from notifier.api.tokens import list_tokens

    with _factory()() as session:
        tokens = list_tokens(session)
    if as_json:
        click.echo(json.dumps(tokens, indent=2))
        return
    for t in tokens:
        click.echo(f"{t['id']}\t{t['kind']}\t{t['name']}\tcreated {t['created']}\t"
                   f"expires {t['expires'] or 'never'}")


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Delete token TOKEN_ID (from `notifier token list`): it stops working at once."""
    from notifier.api.tokens import revoke_token
    from notifier.db import transaction

    with transaction(_factory()) as session:
        revoke_token(session, token_id)


@cli.command()
@click.option("--no-flower", is_flag=True, help="Do not start Flower.")
def up(no_flower: bool) -> None:
    """Run the whole service: migrate, workers, beat, the API and Flower."""
    from notifier.db import make_engine
    from notifier.migrate import upgrade
    from notifier.supervisor import (ProcessGroup, api_command, beat_command, flower_command,
                                     worker_command)

    settings = get_settings()
    upgrade(make_engine(settings.database_url))
    level = settings.log_level
    group = ProcessGroup(env=dict(os.environ))
    ports = _worker_metrics_ports(settings)
    for name, queue, concurrency in (
            ("fanout", settings.fanout_queue, 4),
            ("delivery", settings.delivery_queue, settings.delivery_concurrency)):
        group.start(name, worker_command(name, queue, concurrency=concurrency, loglevel=level,
                                         quiet=True),
                    env={"NOTIFIER_METRICS_PORT": str(ports[name])} if name in ports else None)
    schedule = Path("var/celerybeat-schedule")
    schedule.parent.mkdir(parents=True, exist_ok=True)  # beat does not create the folder
    group.start("beat", beat_command(schedule, level, quiet=True))
    group.start("api", api_command("127.0.0.1", settings.api_port, access_log=False))
    if not no_flower:
        group.start("flower", flower_command(settings.flower_port, quiet=True))
    click.echo(_up_summary(settings, ports, flower=not no_flower))
    _wait_for_stop(group)


def _worker_metrics_ports(settings) -> dict[str, int]:
    """NOTIFIER_METRICS_PORT for the fan-out worker, the next port for the delivery worker."""
    if settings.metrics_port is None:
        return {}
    return {"fanout": settings.metrics_port, "delivery": settings.metrics_port + 1}


def _up_summary(settings, ports: dict[str, int], *, flower: bool) -> str:
    from config.celery import filesystem_folder
    from notifier.producer import _safe_url

    api = f"http://127.0.0.1:{settings.api_port}"
    folder = filesystem_folder(settings.broker_url)
    lines = [
        "notifier is running:",
        f"  API       {api}/ (OpenAPI at {api}/docs)",
        f"  Web UI    {settings.ui_url}/ (first sign-in: notifier ui-link USER)",
        f"  metrics   {api}/metrics (fleet)"
        + "".join(f", http://127.0.0.1:{port}/metrics ({name} worker)"
                  for name, port in ports.items()),
    ]
    if flower:
        lines.append(f"  Flower    http://127.0.0.1:{settings.flower_port}/")
    lines += [
        f"  database  {_safe_url(settings.database_url)}",
        f"  broker    {_safe_url(settings.broker_url)}"
        + (f" (folder {folder.resolve()})" if folder else ""),
        "Ctrl-C stops it. One line per delivery outcome follows.",
    ]
    return "\n".join(lines)


def _wait_for_stop(group) -> None:
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        while not stopping and not group.exited():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    ended = group.exited()
    group.stop()
    if ended:
        raise NotifierError(f"stopped because a process ended: {ended}")
    click.echo("stopped")


# Command groups kept in their own modules register themselves on `cli`.
from notifier.cli import (  # noqa: E402,F401
    deadletters as _deadletters,
    directory as _directory,
    email as _email,
    listen as _listen,
    operations as _operations,
    ui as _ui,
)


def main() -> None:
    """Entry point: run the command line, turning every expected error into one line."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_ERROR)
    except click.UsageError as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except (NotifierError, ConfigurationError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        click.echo(f"error: database: {detail}", err=True)
        sys.exit(EXIT_ERROR)

