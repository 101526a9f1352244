"""Backlog replay: the unread mail of each configured mailbox, stored and run through the pipeline.

``UID SEARCH UNSEEN [SINCE d]`` per mailbox, oldest first; UIDs the store already holds are not
fetched again; the rest is fetched in batches with ``BODY.PEEK[]`` (``\\Seen`` is never set) and
stored in one transaction per batch as origin ``replay:<id>``. The notify stage tells no card for
that origin: :func:`recruiter.notify.digest.send_digests` tells recruiter mail in digests instead.

Two ways to run the pipeline over it:

- **own worker** (``via_service=False``): this process's worker (its LLM client, concurrency limit and
  breakers) drains the backlog while it is stored;
- **via the service** (``via_service=True``): only store; the running service's worker picks the
  mail up (its LLM limit and breakers are the only ones), and progress is read from the store.
  ``POST /api/replay`` inside the service is this mode on the service's own runtime.

Interrupting (``stop`` set, e.g. on SIGINT) ends the current batch, lets running stages finish
within the grace period and releases the rest of the leases; the next replay adopts what is left
(unfinished backlog mail joins the new run) and sends the digests still owed. Nothing here depends
on typer or rich: the CLI (:mod:`recruiter.cli.replay`) and the HTTP API drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from recruiter.errors import OverBudget, ReplayError, TransientError
from recruiter.ingest.describe import described, quarantined, store_new
from recruiter.mail import imap
from recruiter.mail.parse import ParsedMail, parse_headers
from recruiter.notify.digest import DigestReport, LinkSigner, send_digests
from recruiter.settings import MailboxSettings, Settings
from recruiter.store.inbox import NewMessage
from recruiter.store.models import DEAD, DONE, REPLAY_PREFIX, SKIPPED
from recruiter.triage.prefilter import skip_reason

if TYPE_CHECKING:
    from recruiter.budget import Budget
    from recruiter.notify.telegram import Notifier
    from recruiter.pipeline.worker import Worker
    from recruiter.store.repo import Store

log = structlog.get_logger()

FETCH_BATCH = 100
PROGRESS_SECONDS = 0.5
DIGEST_EVERY_SECONDS = 2.0


class Runtime(Protocol):
    """What a replay needs of the service it runs in (:class:`recruiter.app.Runtime` is one)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def store(self) -> Store: ...
    @property
    def notifier(self) -> Notifier: ...
    @property
    def worker(self) -> Worker: ...
    @property
    def cpu_budget(self) -> Budget: ...


@dataclass(frozen=True)
class ReplayOptions:
    """What to replay. ``mailbox`` None: every configured mailbox."""

    mailbox: str | None = None
    since: date | None = None
    limit: int | None = None
    digest_size: int = 10
    dry_run: bool = False
    via_service: bool = False
    batch_size: int = FETCH_BATCH


@dataclass
class ReplayProgress:
    """A snapshot handed to the progress callback about twice a second.

    ``phase``: ``fetch`` → ``process`` → ``digest`` → ``done``. ``total`` grows while mail is stored
    (``searching`` stays True until every mailbox is searched and fetched)."""

    phase: str = "fetch"
    searching: bool = True
    found: int = 0  # unread UIDs matched
    already_stored: int = 0  # matched but held by the store before this run
    stored: int = 0  # stored by this run
    total: int = 0  # messages this run is responsible for (stored now + adopted from an earlier run)
    processed: int = 0  # of ``total``, in a terminal state
    recruiter: int = 0
    skipped: int = 0
    dead: int = 0
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        """Processed messages per second so far."""
        return self.processed / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate, or None while unknown."""
        if self.searching or self.rate <= 0:
            return None
        return max(0.0, (self.total - self.processed) / self.rate)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with rate and ETA."""
        return {**asdict(self), "rate": round(self.rate, 2),
                "eta": None if self.eta is None else round(self.eta, 1)}


ProgressCallback = Callable[[ReplayProgress], None]


@dataclass
class ReplaySummary:
    """What a replay did. ``waiting``: messages of this run still due later (a retry scheduled)."""

    replay_id: str
    mode: str  # "own-worker" | "via-service" | "dry-run"
    found: int = 0
    already_stored: int = 0
    stored: int = 0
    adopted: int = 0
    processed: int = 0
    recruiter: int = 0
    skipped: int = 0
    dead: int = 0
    waiting: int = 0
    digests: int = 0
    digest_messages: int = 0
    digest_lines: int = 0
    digests_owed: int = 0
    uncertain: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    digest_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {**asdict(self), "seconds": round(self.seconds, 2)}


def parse_since(text: str) -> date:
    """``YYYY-MM-DD`` → date; anything else is a ReplayError naming the value."""
    try:
        return date.fromisoformat(text.strip()) if len(text.strip()) == 10 else _bad_date(text)
    except ValueError:
        return _bad_date(text)


def _bad_date(text: str) -> date:
    raise ReplayError(f"--since must be a date as YYYY-MM-DD, got {text!r}")


def chosen_mailboxes(settings: Settings, name: str | None) -> list[MailboxSettings]:
    """The mailboxes to replay; ReplayError for an unknown name or when none is configured."""
    if not settings.mailboxes:
        raise ReplayError("no mailbox is configured: set IMAP_MAILBOXES and its IMAP_<NAME>_* variables")
    if name is None:
        return list(settings.mailboxes)
    chosen = [mb for mb in settings.mailboxes if mb.name == name.lower()]
    if not chosen:
        known = ", ".join(mb.name for mb in settings.mailboxes)
        raise ReplayError(f"--mailbox {name!r} is not configured (IMAP_MAILBOXES: {known})")
    return chosen


def check_options(settings: Settings, options: ReplayOptions) -> list[MailboxSettings]:
    """Validate ``options`` before anything is touched; returns the mailboxes to replay."""
    if options.digest_size < 1:
        raise ReplayError(f"--digest-size must be at least 1, got {options.digest_size}")
    if options.limit is not None and options.limit < 1:
        raise ReplayError(f"--limit must be at least 1, got {options.limit}")
    if options.batch_size < 1:
        raise ReplayError("the fetch batch size must be at least 1")
    return chosen_mailboxes(settings, options.mailbox)


def new_replay_id() -> str:
    """A sortable, unique id: UTC time and a little randomness."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def search_criteria(since: date | None) -> list[str]:
    """``UNSEEN`` and, with a date, ``SINCE 01-Nov-2026`` (IMAP's date format, English month names)."""
    criteria = ["UNSEEN"]
    if since is not None:
        months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
        criteria += ["SINCE", f"{since.day:02d}-{months[since.month - 1]}-{since.year}"]
    return criteria


def signer_of(runtime: Runtime) -> LinkSigner:
    """The card links' signing values of a runtime, for digests."""
    links = runtime.worker.deps.links
    return LinkSigner(links.base_url, links.secret, links.ttl_seconds)


async def send_owed_digests(runtime: Runtime, *, size: int | None = None, flush: bool | None = None) -> DigestReport:
    """Send the digests still owed with a runtime's store and notifier; for the service's ticker too.

    ``size`` defaults to REPLAY_DIGEST_SIZE. ``flush`` None: the last, partial digest goes out only
    once no backlog mail is unfinished (a replay still storing or processing fills it up first)."""
    if flush is None:
        flush = await runtime.store.replay_unfinished() == 0
    return await send_digests(runtime.store, runtime.notifier, signer_of(runtime),
                              size=size or runtime.settings.replay_digest_size, flush=flush,
                              fit=runtime.worker.deps.fit)


def api_runner(runtime: Runtime) -> Callable[[Any, Callable[[dict[str, Any]], None]], Awaitable[dict[str, Any]]]:
    """A runner for ``POST /api/replay`` inside the service (``recruiter.http.api.Replays(api_runner(runtime))``):
    the request's mailbox/since/limit/digest_size, the service's own worker doing the work."""

    async def run(request: Any, progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        options = ReplayOptions(mailbox=request.mailbox, since=request.since, limit=request.limit,
                                digest_size=request.digest_size, via_service=True)
        summary = await run_replay(runtime, options, lambda snapshot: progress(snapshot.as_dict()))
        return summary.as_dict()

    return run


class _Run:
    """The state of one replay while it runs."""

    def __init__(self, runtime: Runtime, options: ReplayOptions, mailboxes: list[MailboxSettings],
                 progress: ProgressCallback | None, stop: asyncio.Event) -> None:
        self.runtime, self.options, self.mailboxes = runtime, options, mailboxes
        self.progress_cb, self.stop = progress, stop
        self.replay_id = new_replay_id()
        self.origin = REPLAY_PREFIX + self.replay_id
        self.snapshot = ReplayProgress()
        self.summary = ReplaySummary(self.replay_id, "via-service" if options.via_service else "own-worker")
        self.started = time.monotonic()
        self.log = log.bind(replay=self.replay_id)

    # ---- ingest -----------------------------------------------------------------------------

    async def ingest(self) -> None:
        """Search, fetch and store every mailbox's unread backlog (up to the limit)."""
        left = self.options.limit
        for mb in self.mailboxes:
            if self.stop.is_set() or (left is not None and left <= 0):
                break
            left = await self._ingest_mailbox(mb, left)
        self.snapshot.searching = False

    async def _ingest_mailbox(self, mb: MailboxSettings, left: int | None) -> int | None:
        client = await imap.connect(mb, timeout=self.runtime.settings.imap_timeout)
        try:
            with imap.guard(mb.name, "replay"):
                selected = await imap.select(client, mb.name, mb.folder)
                uids = await imap.uid_search(client, mb.name, *search_criteria(self.options.since))
                held = await self.runtime.store.stored_uids(mb.name, mb.folder, selected.uidvalidity)
                todo = [u for u in uids if u not in held]
                self.snapshot.found += len(uids)
                self.snapshot.already_stored += len(uids) - len(todo)
                if left is not None:
                    todo, left = todo[:left], left - len(todo[:left])
                self.log.info("replay.searched", mailbox=mb.name, unread=len(uids), held=len(uids) - len(todo),
                              to_fetch=len(todo))
                for start in range(0, len(todo), self.options.batch_size):
                    if self.stop.is_set():
                        break
                    await self._store_batch(client, mb, selected.uidvalidity,
                                            todo[start:start + self.options.batch_size])
        finally:
            await imap.close(client)
        return left

    async def _store_batch(self, client: Any, mb: MailboxSettings, uidvalidity: int, uids: list[int]) -> None:
        raws = await imap.fetch_raw(client, mb.name, uids)
        found = [(uid, raws[uid]) for uid in uids if uid in raws]  # expunged meanwhile: gone
        news = [await _describe_one(self.runtime, uid, raw, mb, uidvalidity, self.origin) for uid, raw in found]
        try:
            ids = await self.runtime.store.add_messages(news)
        except TransientError:
            raise  # the store is down: the replay stops here; running it again continues
        except Exception as exc:  # a mail of the batch the store refuses: store them one by one
            self.log.warning("replay.batch_refused", error_class=type(exc).__name__, uids=f"{uids[0]}-{uids[-1]}")
            ids = [await store_new(self.runtime.store, new) for new in news]
        stored = sum(1 for i in ids if i is not None)
        for new, new_id in zip(news, ids, strict=True):
            if new_id is not None and new.skip_reason is not None:
                self.log.info("prefilter.skipped", key=new.key, message=new_id, reason=new.skip_reason)
        self.snapshot.stored += stored
        self.snapshot.already_stored += len(ids) - stored  # the same mail stored from another mailbox
        self.log.info("replay.stored", mailbox=mb.name, uids=f"{uids[0]}-{uids[-1]}", stored=stored)
        if stored:
            self.runtime.worker.wake()

    # ---- progress ---------------------------------------------------------------------------

    async def refresh(self) -> int:
        """Read this run's counts from the store, report them; returns how many are still due now."""
        counts = await self.runtime.store.origin_counts(self.origin)
        snap = self.snapshot
        snap.total = sum(counts.values())
        snap.processed = sum(n for (state, _), n in counts.items() if state in (DONE, SKIPPED, DEAD))
        snap.recruiter = sum(n for (state, rec), n in counts.items() if state == DONE and rec)
        snap.skipped = sum(n for (state, _), n in counts.items() if state == SKIPPED)
        snap.dead = sum(n for (state, _), n in counts.items() if state == DEAD)
        snap.elapsed = time.monotonic() - self.started
        self._report()
        return await self.runtime.store.origin_due(self.origin)

    def _report(self) -> None:
        if self.progress_cb is not None:
            try:
                self.progress_cb(self.snapshot)
            except Exception:
                self.log.exception("replay.progress_callback_failed")

    async def digests(self, *, flush: bool) -> None:
        report = await send_owed_digests(self.runtime, size=self.options.digest_size, flush=flush)
        s = self.summary
        s.digests += report.digests
        s.digest_messages += report.messages
        s.digest_lines += report.lines
        s.uncertain += report.uncertain
        s.digests_owed = report.owed
        s.digest_error = report.error or s.digest_error

    def finish(self, due: int) -> ReplaySummary:
        snap, s = self.snapshot, self.summary
        s.found, s.already_stored, s.stored = snap.found, snap.already_stored, snap.stored
        s.processed, s.recruiter, s.skipped, s.dead = snap.processed, snap.recruiter, snap.skipped, snap.dead
        s.waiting = snap.total - snap.processed
        s.seconds = time.monotonic() - self.started
        s.interrupted = self.stop.is_set()
        self.log.info("replay.finished", **s.as_dict(), due_now=due)
        return s


async def _describe_one(runtime: Runtime, uid: int, raw: bytes, mb: MailboxSettings, uidvalidity: int,
                        origin: str) -> NewMessage:
    """Read a fetched mail's header block (in a helper process, under the CPU budget of one message) and
    prefilter it on the way.

    Bulk and automatic mail (most of a backlog) is stored already skipped, with the prefilter's reason,
    in the batch's one transaction: the same outcome as the prefilter stage, without a claim and two
    writes per message. Everything else goes to the pipeline; mail that does not parse, or not within
    the budget, is stored quarantined and the batch goes on. The prefilter reads headers, sender and
    Reply-To only, so the header block is all that is parsed here: the body is parsed once, by the worker."""
    settings = runtime.settings
    where: dict[str, Any] = {"mailbox": mb.name, "folder": mb.folder, "uidvalidity": uidvalidity, "uid": uid}
    try:
        mail, reason = await runtime.cpu_budget.run(read_headers, raw, settings.max_message_bytes,
                                                    settings.owner_addresses)
    except TransientError:
        raise
    except OverBudget as exc:
        return quarantined(raw, exc, **where, origin=origin, reason="cpu_budget",
                           why="reading the header block took more than the CPU budget of one message")
    except Exception as exc:  # about this mail only: it is stored quarantined, the batch goes on
        return quarantined(raw, exc, **where, origin=origin, why="the header block cannot be read",
                           reason="unparseable")
    return replace(described(raw, mail, **where), origin=origin, skip_reason=reason)


def read_headers(raw: bytes, max_bytes: int, own_addresses: frozenset[str]) -> tuple[ParsedMail, str | None]:
    """The header fields of ``raw`` and the prefilter's reason to skip it (None: the pipeline reads it)."""
    mail = parse_headers(raw, max_bytes=max_bytes)
    return mail, skip_reason(mail, own_addresses=own_addresses)


async def run_replay(runtime: Runtime, options: ReplayOptions, progress: ProgressCallback | None = None,
                     *, stop: asyncio.Event | None = None, grace: float = 25.0) -> ReplaySummary:
    """Replay the unread backlog with ``runtime`` and return what happened.

    With ``options.via_service`` the runtime's worker is not run here (a service's worker does the
    work, e.g. this runtime's own when called from inside the service). ``stop`` ends the run early
    and cleanly: the summary says ``interrupted``, and the next run continues. Options are checked
    first (ReplayError); IMAP and store failures raise TransientError subclasses."""
    if options.dry_run:
        raise ReplayError("a dry run goes through plan_replay(), which needs no store")
    mailboxes = check_options(runtime.settings, options)
    stop = stop or asyncio.Event()
    run = _Run(runtime, options, mailboxes, progress, stop)
    run.summary.adopted = await runtime.store.adopt_replay(run.origin)
    run.log.info("replay.started", mailboxes=[mb.name for mb in mailboxes], adopted=run.summary.adopted,
                 mode=run.summary.mode, since=str(options.since) if options.since else None, limit=options.limit)
    worker_stop = asyncio.Event()
    worker_task = None if options.via_service else asyncio.create_task(
        runtime.worker.run(worker_stop), name=f"replay-worker:{run.replay_id}")
    ingest = asyncio.create_task(run.ingest(), name=f"replay-ingest:{run.replay_id}")
    try:
        await _watch(run, ingest, worker_task)
        await ingest  # re-raise an ingest failure
    finally:
        worker_stop.set()
        if not ingest.done():
            ingest.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await ingest
        if worker_task is not None:
            await _stop_worker(worker_task, grace)
    run.snapshot.phase = "digest"
    run._report()
    # Interrupted: only full digests, the rest is owed to the next run (digests stay ceil(n / size)).
    await run.digests(flush=not stop.is_set())
    due = 0
    with contextlib.suppress(TransientError):
        due = await run.refresh()
    run.snapshot.phase = "done"
    run._report()
    return run.finish(due)


async def _watch(run: _Run, ingest: asyncio.Task[None], worker_task: asyncio.Task[None] | None) -> None:
    """Report progress until the backlog is through (or ``stop``); send full digests on the way."""
    last_digest = time.monotonic()
    stopper = asyncio.ensure_future(run.stop.wait())
    try:
        while True:
            due = await run.refresh()
            if ingest.done():
                if ingest.cancelled() or ingest.exception() is not None:
                    return
                run.snapshot.phase = "process"
                if due == 0 or run.stop.is_set():
                    return
            elif run.stop.is_set():
                await asyncio.wait([ingest])  # it ends after its current batch
                continue
            if worker_task is not None and worker_task.done():
                worker_task.result()  # the worker died: raise its error
                raise RuntimeError("the replay's worker stopped unexpectedly")
            if time.monotonic() - last_digest >= DIGEST_EVERY_SECONDS:
                await run.digests(flush=False)
                last_digest = time.monotonic()
            waits = [stopper] if ingest.done() else [stopper, ingest]
            await asyncio.wait(waits, timeout=PROGRESS_SECONDS, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()


async def _stop_worker(task: asyncio.Task[None], grace: float) -> None:
    """Running stages get ``grace`` seconds; then cancelled, which releases their leases."""
    try:
        await asyncio.wait_for(asyncio.shield(task), grace)
    except TimeoutError:
        log.warning("replay.grace_exceeded", seconds=grace)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
