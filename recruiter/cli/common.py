"""What every `recruiter` command shares: settings with logging configured, running a coroutine with our
errors as one line and an exit code, and a store opened for one command."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import typer

from recruiter.errors import ConfigError, RecruiterError
from recruiter.log import configure_logging
from recruiter.settings import Settings, load_settings
from recruiter.store.repo import Store

T = TypeVar("T")


def load(*, quiet_on_tty: bool = False) -> Settings:
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


def run(coro: Coroutine[Any, Any, T], *, interrupted: str | None = None) -> T:
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


def with_store(work: Callable[[Store], Coroutine[Any, Any, T]]) -> T:
    settings = load()

    async def go() -> T:
        from recruiter.store.migrate import prepare_database

        await prepare_database(settings.db_url.get_secret_value())
        store = Store.from_url(settings.db_url.get_secret_value())
        try:
            return await work(store)
        finally:
            await store.aclose()

    return run(go())
