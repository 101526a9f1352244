"""The `recruiter` command. Every setting comes from the environment or `.env` (see .env.example)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from recruiter.errors import ConfigError, RecruiterError
from recruiter.log import configure_logging
from recruiter.settings import Settings, load_settings
from recruiter.store.repo import Store
from recruiter.views import message_detail, message_json

# rich (tables, progress bars) is imported by the commands that print with it, and the replay and backtest
# commands are added only when another command than `recruiter run` starts (see main): the long-running
# service does not carry rich and pygments (~4 MB).

# No locals in tracebacks: they would print the database URL with its password (older typer showed them).
app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_show_locals=False)
T = TypeVar("T")


def _settings(*, quiet_on_tty: bool = False) -> Settings:
    """Settings, or exit 2 with one line naming the variable. ``quiet_on_tty``: on a terminal only
    warnings are logged (a progress bar is the output; per-message lines would tear it apart)."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    level = settings.log_level
    if quiet_on_tty and sys.stderr.isatty() and level != "DEBUG":
        level = "WARNING"
    configure_logging(level=level, fmt=settings.log_format, secrets=settings.secrets)
    return settings


def _run(coro: Coroutine[Any, Any, T], *, interrupted: str | None = None) -> T:
    """Run ``coro``; our errors become one line and exit 1 (configuration: 2). With ``interrupted``,
    a Ctrl-C that gets through prints it and exits 130."""
    try:
        return asyncio.run(coro)
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    except RecruiterError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        if interrupted is None:
            raise
        typer.echo(interrupted, err=True)
        raise typer.Exit(130) from None


@app.command()
def run(
    shutdown_grace: Annotated[
        float, typer.Option(envvar="SHUTDOWN_GRACE_SECONDS", help="Seconds to let running stages finish on SIGTERM.")
    ] = 25.0,
) -> None:
    """Run the service in the foreground: IMAP watchers and the pipeline worker. Stops on SIGTERM/SIGINT."""
    from recruiter.service import run_service

    settings = _settings()
    raise typer.Exit(_run(run_service(settings, shutdown_grace=shutdown_grace)))


@app.command()
def migrate() -> None:
    """Upgrade the database (DB_CONNECTION_STRING) to the newest schema: `alembic upgrade head`."""
    from recruiter.store.migrate import upgrade_head

    settings = _settings()
    _run(upgrade_head(settings.db_url.get_secret_value()))
    typer.echo("database is at the newest schema")


@app.command()
def process(
    paths: Annotated[
        list[Path] | None, typer.Argument(help=".eml files, mbox files or maildir folders (none: only the queue).")
    ] = None,
) -> None:
    """Run the whole pipeline over mail files instead of IMAP (no configuration needed).

    Messages already stored are not processed twice; due work in the queue (retries, redriven
    dead letters) is processed too.
    """
    from recruiter.service import process_paths

    paths = paths or []
    for path in paths:
        if not path.exists():
            typer.echo(f"error: {path}: no such file or directory", err=True)
            raise typer.Exit(2)
    settings = _settings()
    summary = _run(process_paths(settings, paths))
    parts = ", ".join(f"{k} {v}" for k, v in summary.items())
    typer.echo(f"processed: {parts}", err=True)


@app.command()
def messages(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    state: Annotated[str | None, typer.Option(help="Only messages in this state.")] = None,
) -> None:
    """List every stored message and where its pipeline stands."""
    async def load(store: Store) -> list[dict[str, Any]]:
        return [message_json(m) for m in await store.list_messages(state=state)]

    rows = _with_store(load)
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "mailbox", "state", "stage", "recruiter", "subject", "last error")
    for row in rows:
        table.add_row(str(row["id"]), row["mailbox"], row["state"], row["stage"], str(row["is_recruiter"]),
                      (row["subject"] or "")[:60], (row["last_error"] or "")[:40])
    Console().print(table)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="The whole report as one JSON object.")] = False,
    url: Annotated[str | None, typer.Option(help="The running service (default RECRUITER_API_URL).")] = None,
) -> None:
    """Mailboxes, queue, DLQ, breakers and last triage of the running service; exit 1 when it is not ready.

    Asks the service's `GET /api/status` (bearer WEBHOOK_BEARER_TOKEN). When the service cannot be
    reached, shows what the store alone knows and exits 1.
    """
    from rich.console import Console

    from recruiter.status import fetch_status, render_status

    settings = _settings()
    report = _run(fetch_status(settings, url or settings.api_url))
    if as_json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    else:
        render_status(report, Console())
    raise typer.Exit(0 if report.get("ready") else 1)


dlq = typer.Typer(no_args_is_help=True, help="The dead-letter queue: messages that could not be processed.")
app.add_typer(dlq, name="dlq")


def _with_store(work: Callable[[Store], Coroutine[Any, Any, T]]) -> T:
    settings = _settings()

    async def go() -> T:
        from recruiter.store.migrate import prepare_database

        await prepare_database(settings.db_url.get_secret_value())
        store = Store.from_url(settings.db_url.get_secret_value())
        try:
            return await work(store)
        finally:
            await store.aclose()

    return _run(go())


@dlq.command("list")
def dlq_list(as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False) -> None:
    """Every dead message with its stage, reason and last error."""

    async def load(store: Store) -> list[dict[str, Any]]:
        return [message_json(m) for m in await store.list_messages(state="dead")]

    rows = _with_store(load)
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

    view = _with_store(load)
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

    rows = _with_store(go)
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

    typer.echo(f"purged {_with_store(go)} dead message(s)")


def add_backlog_commands() -> None:
    """Add `replay` (recruiter/replay_cli.py) and `backtest` (recruiter/backtest_cli.py) after the others, once."""
    if any(command.name == "replay" for command in app.registered_commands):
        return
    from recruiter import backtest_cli
    from recruiter.replay_cli import replay as replay_command

    app.command("replay")(replay_command)
    app.command("backtest")(backtest_cli.command)


def main() -> None:
    """Console-script entry point. `recruiter run` does not import the replay and backtest commands (rich)."""
    if sys.argv[1:2] != ["run"]:
        add_backlog_commands()
    app()


if __name__ == "__main__":
    main()
