"""The `recruiter` command. Every setting comes from the environment or `.env` (see .env.example)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from recruiter.errors import ConfigError, RecruiterError
from recruiter.log import configure_logging
from recruiter.settings import Settings, load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
T = TypeVar("T")


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(level=settings.log_level, fmt=settings.log_format, secrets=settings.secrets)
    return settings


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    except RecruiterError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


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
    _run(upgrade_head(settings.db_url))
    typer.echo("database is at the newest schema")


@app.command()
def process(
    paths: Annotated[list[Path], typer.Argument(help=".eml files, mbox files or maildir folders.")],
) -> None:
    """Run the whole pipeline over mail files instead of IMAP (no configuration needed)."""
    from recruiter.mail.sources import SourceError
    from recruiter.service import process_paths

    settings = _settings()
    try:
        summary = _run(process_paths(settings, paths))
    except SourceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    parts = ", ".join(f"{k} {v}" for k, v in summary.items())
    typer.echo(f"processed: {parts}", err=True)


@app.command()
def messages(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    state: Annotated[str | None, typer.Option(help="Only messages in this state.")] = None,
) -> None:
    """List every stored message and where its pipeline stands."""
    from recruiter.store.repo import Store

    settings = _settings()

    async def load() -> list[dict[str, Any]]:
        store = Store.from_url(settings.db_url)
        try:
            return [message_json(m) for m in await store.list_messages(state=state)]
        finally:
            await store.aclose()

    rows = _run(load())
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    table = Table("id", "mailbox", "state", "stage", "recruiter", "subject", "last error")
    for row in rows:
        table.add_row(str(row["id"]), row["mailbox"], row["state"], row["stage"], str(row["is_recruiter"]),
                      (row["subject"] or "")[:60], (row["last_error"] or "")[:40])
    Console().print(table)


def message_json(message: Any) -> dict[str, Any]:
    """The public JSON view of one stored message."""
    return {
        "id": message.id,
        "mailbox": message.mailbox,
        "message_id": message.message_id,
        "key": message.key,
        "subject": message.subject,
        "from": message.from_addr,
        "state": message.state,
        "stage": message.stage,
        "is_recruiter": message.is_recruiter,
        "skip_reason": message.skip_reason,
        "triage_tier": message.triage_tier,
        "triage": message.triage,
        "attempts": message.attempts,
        "last_error": message.last_error,
        "received_at": message.received_at.isoformat() if message.received_at else None,
        "uid": message.uid,
        "source": message.source,
    }


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
