"""`recruiter replay`: the command around :mod:`recruiter.ingest.replay` — options, progress, Ctrl-C, summary."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from recruiter.cli import common
from recruiter.settings import Settings

if TYPE_CHECKING:  # recruiter.ingest.replay pulls in the Telegram library: import it when the command runs
    from recruiter.ingest.replay import ReplayOptions, ReplayProgress, ReplaySummary

REPLAY_CONCURRENCY = 32  # messages in stages at once; the LLM still limits itself to LLM_CONCURRENCY
PLAIN_EVERY_SECONDS = 1.0


def replay(
    mailbox: Annotated[str | None, typer.Option(help="Only this mailbox (a name from IMAP_MAILBOXES).")] = None,
    since: Annotated[str | None, typer.Option(help="Only mail received since this date, YYYY-MM-DD.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many messages (oldest first).")] = None,
    digest_size: Annotated[int | None, typer.Option(
        help="Recruiter mails per Telegram digest message (REPLAY_DIGEST_SIZE, default 10).")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Fetch, prefilter and triage in memory; print the plan; change nothing.")] = False,
    via_service: Annotated[bool | None, typer.Option(
        "--via-service/--own-worker",
        help="Only store the backlog and let the running service process it (its LLM limit and breakers), "
             "or process it here. Default: via the service when GET RECRUITER_API_URL/healthz answers.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The summary (dry run: one row per line) as JSON.")] = False,
) -> None:
    """Process the unread backlog: UID SEARCH UNSEEN in each mailbox, oldest first, skipping what is stored.

    Mail is read with BODY.PEEK[] (it stays unread). Recruiter mail gets drafts and events as usual, but
    no card each: digest messages of --digest-size mails, each line with its own signed links. Ctrl-C
    stops cleanly; running again continues where it stopped and repeats no side effect.
    """
    from recruiter.errors import ReplayError
    from recruiter.ingest.replay import ReplayOptions, check_options, parse_since

    settings = _settings()
    try:
        options = ReplayOptions(
            mailbox=mailbox, since=parse_since(since) if since is not None else None, limit=limit,
            digest_size=digest_size if digest_size is not None else settings.replay_digest_size,
            dry_run=dry_run, via_service=bool(via_service),
        )
        check_options(settings, options)
    except ReplayError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if dry_run:
        _dry_run(settings, options, as_json)
        return
    if via_service is None:
        options = ReplayOptions(**{**options.__dict__, "via_service": _service_answers(settings)})
    summary = _guarded(_replay(settings, options, _progress_view(), cards_to=sys.stderr if as_json else sys.stdout))
    _print_summary(summary, as_json)
    raise typer.Exit(130 if summary.interrupted else 0)


def _grace() -> float:
    """SHUTDOWN_GRACE_SECONDS, as `recruiter run` reads it (a typer option there, not a setting)."""
    try:
        return max(0.0, float(os.environ.get("SHUTDOWN_GRACE_SECONDS", "") or 25.0))
    except ValueError:
        return 25.0


def _settings() -> Settings:
    return common.load(quiet_on_tty=True)


def _guarded(coro: Any) -> Any:
    return common.run(coro, interrupted="replay: stopped at once; leases were released, run again to continue")


def _service_answers(settings: Settings) -> bool:
    """Whether a service answers /healthz at RECRUITER_API_URL (then it does the LLM work)."""
    try:
        return httpx.get(f"{settings.api_url}/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


async def _replay(settings: Settings, options: ReplayOptions, view: _View, *, cards_to: TextIO) -> ReplaySummary:
    from recruiter.app import build_runtime
    from recruiter.ingest.replay import run_replay
    from recruiter.store.migrate import prepare_database

    await prepare_database(settings.db_url.get_secret_value())
    # Without Telegram the digests are printed; with --json they go to stderr, keeping stdout JSON.
    runtime = await build_runtime(settings, stdout=cards_to, concurrency=REPLAY_CONCURRENCY)
    stop = asyncio.Event()
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def on_sigint() -> None:
        if stop.is_set() and main is not None:
            main.cancel()  # a second Ctrl-C: leave now (leases are released by the worker's cancellation)
            return
        stop.set()
        view.note("stopping: finishing the current batch and running stages (Ctrl-C again to quit now)")

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    loop.add_signal_handler(signal.SIGTERM, on_sigint)
    try:
        view.start(options.via_service)
        return await run_replay(runtime, options, view.update, stop=stop, grace=_grace())
    finally:
        view.stop()
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)
        await runtime.aclose()


class _View:
    """Progress: a rich bar on a terminal, plain lines on stderr otherwise."""

    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self.tty = self.console.is_terminal
        self.bar: Progress | None = None
        self.task: TaskID | None = None
        self.last_line = 0.0
        self.last_phase = ""

    def start(self, via_service: bool) -> None:
        mode = "via the running service" if via_service else "with its own worker"
        self.note(f"replay: processing {mode}")
        if self.tty:
            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[eta]}"),
                                console=self.console, transient=False)
            self.bar.start()
            self.task = self.bar.add_task("fetching", total=None, rate="", eta="")

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False) if self.tty else _err(text)

    def update(self, p: ReplayProgress) -> None:
        rate = f"{p.rate:.1f} msg/s"
        eta = "ETA –" if p.eta is None else f"ETA {_duration(p.eta)}"
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, description=p.phase, completed=p.processed,
                            total=None if p.searching else max(p.total, 1), rate=rate, eta=eta)
            return
        now = time.monotonic()
        if now - self.last_line >= PLAIN_EVERY_SECONDS or p.phase != self.last_phase:
            self.last_line, self.last_phase = now, p.phase
            total = f"{p.total}+" if p.searching else str(p.total)
            _err(f"replay: {p.phase} · processed {p.processed}/{total} · recruiter {p.recruiter} · "
                 f"skipped {p.skipped} · dead {p.dead} · {rate} · {eta}")

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _progress_view() -> _View:
    return _View()


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _print_summary(s: ReplaySummary, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(s.as_dict()) + "\n")
        return
    state = "interrupted (run again to continue)" if s.interrupted else "finished"
    lines = [
        f"replay {s.replay_id} {state} in {s.seconds:.1f} s ({s.mode})",
        f"  unread found {s.found} · already stored {s.already_stored} · stored now {s.stored}"
        f" · resumed {s.adopted}",
        f"  processed {s.processed}: recruiter {s.recruiter} · skipped {s.skipped} · dead {s.dead}"
        f" · waiting for a retry {s.waiting}",
        f"  digests {s.digests} ({s.digest_messages} Telegram messages, {s.digest_lines} lines)"
        f" · still owed {s.digests_owed} line(s)" + (f" · uncertain {s.uncertain}" if s.uncertain else ""),
    ]
    if s.digest_error:
        lines.append(f"  digest sending failed: {s.digest_error} (run again to send the rest)")
    if s.dead:
        lines.append("  see `recruiter dlq list` for the dead letters")
    sys.stdout.write("\n".join(lines) + "\n")


def _dry_run(settings: Settings, options: ReplayOptions, as_json: bool) -> None:
    from recruiter.ingest.plan import plan_replay

    def progress(done: int, total: int) -> None:
        _err(f"replay --dry-run: triaged {done}/{total}")

    plan = _guarded(plan_replay(settings, options, progress))
    if as_json:
        for row in plan.rows:
            sys.stdout.write(json.dumps(row.as_dict(), ensure_ascii=False) + "\n")
        sys.stdout.write(json.dumps({"summary": plan.counts()}) + "\n")
        return
    table = Table("mailbox", "uid", "from", "subject", "triage", "planned actions", title="replay --dry-run")
    for row in plan.rows:
        table.add_row(row.mailbox, str(row.uid), row.sender[:40], row.subject[:60], row.result,
                      ", ".join(row.actions) or "—")
    console = Console()
    console.print(table)
    counts = plan.counts()
    console.print(" · ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()) + " · nothing was changed",
                  highlight=False)
