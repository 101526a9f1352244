"""`recruiter dlq`: the dead-letter queue — list, show, retry (redrive), purge."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Annotated, Any

import typer

from recruiter.cli.common import with_store
from recruiter.http.views import message_detail, message_json
from recruiter.store.repo import Store

dlq = typer.Typer(no_args_is_help=True, help="The dead-letter queue: messages that could not be processed.")


@dlq.command("list")
def dlq_list(as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False) -> None:
    """Every dead message with its stage, reason and last error."""

    async def load(store: Store) -> list[dict[str, Any]]:
        return [message_json(m) for m in await store.list_messages(state="dead")]

    rows = with_store(load)
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "mailbox", "stage", "reason", "attempts", "dead since", "subject", "last error")
    for row in rows:
        table.add_row(str(row["id"]), row["mailbox"], row["stage"], row["dead_reason"] or "", str(row["attempts"]),
                      row["updated_at"] or "", (row["subject"] or "")[:50], (row["last_error"] or "")[:60])
    Console().print(table)
    Console(stderr=True).print(f"{len(rows)} dead message(s)")


@dlq.command("show")
def dlq_show(message_id: Annotated[int, typer.Argument(help="Message id.")]) -> None:
    """One message with every failed attempt (time, stage, error class, message, traceback) as JSON."""

    async def load(store: Store) -> dict[str, Any] | None:
        message = await store.get(message_id)
        return None if message is None else await message_detail(store, message)

    view = with_store(load)
    if view is None:
        typer.echo(f"error: no message with id {message_id}", err=True)
        raise typer.Exit(1)
    sys.stdout.write(json.dumps(view, ensure_ascii=False, indent=2) + "\n")


@dlq.command("retry")
def dlq_retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Message ids to redrive.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Redrive every dead message.")] = False,
    stage: Annotated[str | None, typer.Option(help="Only messages that died at this stage.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be redriven; change nothing.")] = False,
) -> None:
    """Put dead messages back in the queue at the stage that failed (attempts reset, history kept).

    Side effects already done are recorded, so a redrive never repeats them. A running service picks
    the messages up at its next poll; `recruiter process` or `recruiter run` processes them otherwise.
    """
    if not ids and not all_:
        typer.echo("error: name message ids or pass --all", err=True)
        raise typer.Exit(2)

    async def go(store: Store) -> list[Any]:
        return await store.redrive(None if all_ else ids, stage=stage, dry_run=dry_run)

    rows = with_store(go)
    verb = "would redrive" if dry_run else "redriven"
    for row in rows:
        typer.echo(f"{verb}: {row.id} at stage {row.stage}: {row.subject[:60]}")
    missing = sorted(set(ids or ()) - {r.id for r in rows})
    for message_id in missing:
        typer.echo(f"not dead (or unknown): {message_id}", err=True)
    typer.echo(f"{len(rows)} message(s) {verb}", err=True)
    if missing:
        raise typer.Exit(1)


@dlq.command("purge")
def dlq_purge(
    older_than: Annotated[float, typer.Option("--older-than", help="Age in days of dead messages to delete.")],
) -> None:
    """Delete dead messages (and their history) that have been dead for more than DAYS days."""
    if older_than < 0:
        typer.echo("error: --older-than must not be negative", err=True)
        raise typer.Exit(2)

    async def go(store: Store) -> int:
        return await store.purge_dead(timedelta(days=older_than))

    typer.echo(f"purged {with_store(go)} dead message(s)")
