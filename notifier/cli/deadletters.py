"""`notifier dead-letters list|replay|drop`: messages that kept failing, kept with the reason."""

from __future__ import annotations

import json

import click

from notifier.cli import _factory, _print_table, cli


@cli.group("dead-letters")
def dead_letters() -> None:
    """Messages that kept failing (not for an outage), kept with the reason."""


@dead_letters.command("list")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="One JSON document, messages included.")
def dead_letters_list(limit: int, as_json: bool) -> None:
    """List dead letters, newest first, with why they failed."""
    from notifier.deadletters import list_dead_letters

    with _factory()() as session:
        views = list_dead_letters(session, limit)
    if as_json:
        click.echo(json.dumps(views, indent=2))
        return
    if not views:
        click.echo("no dead letters")
        return
    _print_table(["id", "dead at", "task", "event", "repository", "event id", "tries", "reason"],
                 [[str(v["id"]), v["dead_at"], v["task"], v["event"] or "", v["repository"] or "",
                   v["event_id"] or "", str(v["tries"]), v["reason"]] for v in views])


@dead_letters.command("replay")
@click.argument("letter_id", metavar="ID", required=False, type=int)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
def dead_letters_replay(letter_id: int | None, replay_all: bool) -> None:
    """Send dead letter ID (or --all) through the fan-out again, with its own event id."""
    from notifier.deadletters import dead_letter_ids, replay
    from notifier.producer import default_producer

    if (letter_id is None) == (not replay_all):
        raise click.UsageError("give a dead letter's ID or --all (not both); "
                               "`notifier dead-letters list` shows the ids")
    factory = _factory()
    if replay_all:
        with factory() as session:
            ids = dead_letter_ids(session)
    else:
        ids = [letter_id]
    for each in ids:
        replay(factory, default_producer(), each)
        click.echo(f"replayed dead letter {each}")
    if not ids:
        click.echo("no dead letters")


@dead_letters.command("drop")
@click.argument("letter_id", metavar="ID", type=int)
def dead_letters_drop(letter_id: int) -> None:
    """Forget dead letter ID for good."""
    from notifier.db import transaction
    from notifier.deadletters import drop

    with transaction(_factory()) as session:
        drop(session, letter_id)
    click.echo(f"dropped dead letter {letter_id}")
