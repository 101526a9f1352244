"""The `recruiter` command. Every setting comes from the environment or `.env` (see .env.example)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from recruiter.cli import common
from recruiter.cli.dlq import dlq
from recruiter.http.views import message_json
from recruiter.store.repo import Store

# rich (tables, progress bars) is imported by the commands that print with it, and the replay and backtest
# commands are added only when another command than `recruiter run` starts (see main): the long-running
# service does not carry rich and pygments (~4 MB).

# No locals in tracebacks: they would print the database URL with its password (older typer showed them).
app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_show_locals=False)


@app.command()
def run(
    shutdown_grace: Annotated[
        float, typer.Option(envvar="SHUTDOWN_GRACE_SECONDS", help="Seconds to let running stages finish on SIGTERM.")
    ] = 25.0,
) -> None:
    """Run the service in the foreground: IMAP watchers and the pipeline worker. Stops on SIGTERM/SIGINT."""
    from recruiter.app import run_service

    settings = common.load()
    raise typer.Exit(common.run(run_service(settings, shutdown_grace=shutdown_grace)))


@app.command()
def migrate() -> None:
    """Upgrade the database (DB_CONNECTION_STRING) to the newest schema: `alembic upgrade head`."""
    from recruiter.store.migrate import upgrade_head

    settings = common.load()
    common.run(upgrade_head(settings.db_url.get_secret_value()))
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
    from recruiter.app import process_paths

    paths = paths or []
    for path in paths:
        if not path.exists():
            typer.echo(f"error: {path}: no such file or directory", err=True)
            raise typer.Exit(2)
    settings = common.load()
    summary = common.run(process_paths(settings, paths))
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

    rows = common.with_store(load)
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

    from recruiter.cli.status import fetch_status, render_status

    settings = common.load()
    report = common.run(fetch_status(settings, url or settings.api_url))
    if as_json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    else:
        render_status(report, Console())
    raise typer.Exit(0 if report.get("ready") else 1)


app.add_typer(dlq, name="dlq")


def add_backlog_commands() -> None:
    """Add `replay` (recruiter/cli/replay.py) and `backtest` (recruiter/cli/backtest.py) after the others, once."""
    if any(command.name == "replay" for command in app.registered_commands):
        return
    from recruiter.cli import backtest as backtest_cli
    from recruiter.cli.replay import replay as replay_command

    app.command("replay")(replay_command)
    app.command("backtest")(backtest_cli.command)


def main() -> None:
    """Console-script entry point. `recruiter run` does not import the replay and backtest commands (rich)."""
    if sys.argv[1:2] != ["run"]:
        add_backlog_commands()
    app()


if __name__ == "__main__":
    main()
