"""Wiring and lifecycle: build the collaborators from Settings, run watchers and the worker, stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import socket
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import structlog
import uvicorn

from recruiter.alerts.incidents import Incidents
from recruiter.budget import Budget
from recruiter.calendar.caldav import CalDavCalendar, CalendarSink, IcsDirCalendar
from recruiter.errors import ConfigError, TransientError
from recruiter.http.api import Replays
from recruiter.http.app import make_app
from recruiter.http.callbacks import callback_router
from recruiter.ingest.describe import describe_within
from recruiter.ingest.watcher import Watcher
from recruiter.llm.client import LLM
from recruiter.mail.smtp import SmtpSender, SmtpSettings
from recruiter.memory import keep_releasing, tune_malloc
from recruiter.notify.digest import LinkSigner
from recruiter.notify.retell import RetellingNotifier
from recruiter.notify.telegram import Notifier, StdoutNotifier, TelegramNotifier
from recruiter.pipeline.stages import Deps, Identity, Links
from recruiter.pipeline.worker import Worker
from recruiter.reply.actions import Actions
from recruiter.reply.actions import Identity as SenderIdentity
from recruiter.reply.draft import Drafter, load_profile, profile_name
from recruiter.reply.drafts import DirDrafts, DraftSink, ImapDrafts
from recruiter.reply.mailbox import ImapMailbox
from recruiter.settings import Settings
from recruiter.store.migrate import prepare_database
from recruiter.store.models import utcnow
from recruiter.store.repo import Store
from recruiter.triage.fit import FitCheck, load_rates
from recruiter.triage.llm import Triager

log = structlog.get_logger()
FILE_MAILBOX = "file"


@dataclass
class Runtime:
    """Everything built from Settings, to be closed together."""

    settings: Settings
    store: Store
    llm: LLM
    notifier: Notifier
    calendar: CalendarSink
    worker: Worker
    drafts: dict[str, DraftSink] = field(default_factory=dict)
    incidents: Incidents | None = None
    alert_notifier: Notifier | None = None
    budget: Budget | None = None

    @property
    def cpu_budget(self) -> Budget:
        """The helper processes that parse mail and run the rules tier under MESSAGE_CPU_SECONDS."""
        assert self.budget is not None
        return self.budget

    async def aclose(self) -> None:
        """Close every connection; never raises."""
        closers = [*(d.aclose for d in self.drafts.values()), self.calendar.aclose, self.notifier.aclose,
                   self.llm.aclose, self.store.aclose]
        if self.budget is not None:
            closers.append(self.budget.aclose)
        if self.alert_notifier is not None and self.alert_notifier is not self.notifier:
            closers.insert(0, self.alert_notifier.aclose)
        for closer in closers:
            try:
                await closer()
            except Exception:
                log.exception("service.close_failed")


def _notifier(settings: Settings, stdout: TextIO) -> Notifier:
    if token := settings.telegram_token.get_secret_value():
        return TelegramNotifier(token, settings.telegram_chat_id,
                                base_url=settings.telegram_base_url, timeout=settings.telegram_timeout)
    return StdoutNotifier(stdout)


def _alert_notifier(settings: Settings, cards: Notifier, store: Store, signer: LinkSigner) -> Notifier:
    """Alerts go to TELEGRAM_ALERT_CHAT_ID (default: the cards' chat)."""
    token = settings.telegram_token.get_secret_value()
    if token and settings.telegram_alert_chat_id != settings.telegram_chat_id:
        return RetellingNotifier(TelegramNotifier(token, settings.telegram_alert_chat_id,
                                                  base_url=settings.telegram_base_url,
                                                  timeout=settings.telegram_timeout), store, signer)
    return cards


def _calendar(settings: Settings) -> CalendarSink:
    if settings.caldav_url:
        return CalDavCalendar(settings.caldav_url, settings.caldav_user or None,
                              settings.caldav_password.get_secret_value() or None, settings.caldav_calendar,
                              conflict_calendars=settings.caldav_conflict_calendars)
    return IcsDirCalendar(settings.ics_dir)


def _link_secret(settings: Settings, *, required: bool) -> str:
    """The key of the card links: CALLBACK_SIGNING_KEY, else WEBHOOK_BEARER_TOKEN (said once: then anything
    that may call /api can also mint a Send link), else a key for this process only."""
    if key := settings.callback_signing_key.get_secret_value():
        return key
    if token := settings.webhook_token.get_secret_value():
        if required:
            log.warning("links.signed_with_bearer", note="WEBHOOK_BEARER_TOKEN also signs the card links: whoever "
                        "may call /api can mint a Send link. Set CALLBACK_SIGNING_KEY to separate them "
                        "(README: rotating the link key).")
        return token
    if required:
        raise ConfigError("CALLBACK_SIGNING_KEY",
                          "(or WEBHOOK_BEARER_TOKEN) is required to sign the card's links when Telegram is configured")
    log.warning("links.temporary_key", note="neither CALLBACK_SIGNING_KEY nor WEBHOOK_BEARER_TOKEN is set; "
                "card links cannot be verified later")
    return secrets.token_hex(32)


def _rates(settings: Settings) -> dict[str, float]:
    """The owner's currency rates for the fit line (FX_RATES_FILE, else the shipped example)."""
    try:
        return load_rates(settings.fx_rates_file)
    except (ValueError, OSError) as exc:
        raise ConfigError("FX_RATES_FILE", str(exc)) from exc


def new_budget(settings: Settings) -> Budget:
    """Helper processes for parsing and the rules tier: two, so that one mail spending its whole budget
    does not hold up the next (each helper is a Python interpreter of ~20 MB)."""
    return Budget(settings.message_cpu_seconds, helpers=settings.message_helpers)


async def build_runtime(settings: Settings, *, stdout: TextIO = sys.stdout, concurrency: int = 4) -> Runtime:
    """Build and start every collaborator from Settings."""
    store = Store.from_url(settings.db_url.get_secret_value(), busy_timeout=settings.db_busy_timeout)
    llm = LLM.from_settings(settings)
    profile = load_profile(settings.owner_profile)
    owner_name = settings.owner_name or profile_name(profile, "")
    telegram = bool(settings.telegram_token.get_secret_value())
    links = Links(settings.callback_base_url, _link_secret(settings, required=telegram), settings.link_ttl_seconds)
    signer = LinkSigner(links.base_url, links.secret, links.ttl_seconds)
    notifier: Notifier = RetellingNotifier(_notifier(settings, stdout), store, signer)
    calendar = _calendar(settings)
    drafts: dict[str, DraftSink] = {mb.name: ImapDrafts(mb, timeout=settings.imap_timeout)
                                    for mb in settings.mailboxes}
    file_drafts = DirDrafts(settings.drafts_dir)
    budget = new_budget(settings)

    deps = Deps(
        store=store,
        triager=Triager(llm, budget=budget),
        drafter=Drafter(llm, profile, owner_name),
        drafts_for=lambda mailbox: drafts.get(mailbox, file_drafts),
        calendar=calendar,
        notifier=notifier,
        identity=Identity(
            name=owner_name,
            addresses={mb.name: mb.address for mb in settings.mailboxes},
            default_address=next(iter(sorted(settings.owner_addresses)), ""),
            own_addresses=settings.owner_addresses,
        ),
        links=links,
        imap_mailboxes=frozenset(mb.name for mb in settings.mailboxes),
        fit=FitCheck.from_profile(profile, _rates(settings)),
    )
    worker = Worker(deps, concurrency=concurrency, lease_seconds=settings.lease_seconds,
                    poll_seconds=settings.poll_seconds, retry_base=settings.retry_base_seconds,
                    retry_max=settings.retry_max_seconds, max_attempts=settings.retry_max_attempts,
                    max_text_chars=settings.max_text_chars, max_message_bytes=settings.max_message_bytes,
                    budget=budget)
    alert_notifier = _alert_notifier(settings, notifier, store, signer)
    deps.incidents = Incidents(
        alert_notifier, store, alert_after=settings.triage_alert_after, remind_seconds=settings.alert_remind_seconds,
        flap_seconds=settings.alert_flap_seconds, imap_alert_after=settings.imap_alert_after_seconds,
        waiting=store.count_waiting, probe_seconds=settings.alert_probe_seconds,
        store_alert_after=settings.db_alert_after_seconds, llm_tiers=[t.tier for t in settings.llm_tiers],
        dead_gather_seconds=settings.dead_notice_seconds,
    )
    llm.on_tier_event = deps.incidents.tier_event  # a tier that refuses us is told once, and its end
    runtime = Runtime(settings, store, llm, notifier, calendar, worker, drafts, deps.incidents, alert_notifier, budget)
    try:
        await notifier.start()
        if alert_notifier is not notifier:
            await alert_notifier.start()
    except BaseException:
        await runtime.aclose()
        raise
    return runtime


async def process_paths(settings: Settings, paths: Iterable[Path], *, stdout: TextIO = sys.stdout) -> dict[str, int]:
    """Store every message found in ``paths`` and run the pipeline until nothing is due."""
    from recruiter.ingest.files import iter_paths  # mbox/maildir readers: not on `recruiter run`'s path

    await prepare_database(settings.db_url.get_secret_value())
    runtime = await build_runtime(settings, stdout=stdout)
    try:
        stored = duplicates = 0
        for label, raw in iter_paths(paths):
            new = await describe_within(runtime.cpu_budget, raw, mailbox=FILE_MAILBOX, source=label)
            if await runtime.store.add_message(new) is None:
                duplicates += 1
            else:
                stored += 1
        await runtime.worker.drain()
        counts = await runtime.store.counts_by_state()
        return {"stored": stored, "duplicates": duplicates, **counts}
    finally:
        await runtime.aclose()


async def run_service(settings: Settings, *, shutdown_grace: float = 25.0) -> int:
    """The service in the foreground until SIGTERM/SIGINT; returns the exit code."""
    tune_malloc()  # before any helper thread exists: flat RSS in a small pod (recruiter.memory)
    # Not one of `tasks`: without glibc it has nothing to do and ends, which is no failure.
    releaser = asyncio.create_task(keep_releasing(), name="memory")  # free heap pages back to the system
    try:
        return await _serve(settings, shutdown_grace)
    finally:
        releaser.cancel()


async def _serve(settings: Settings, shutdown_grace: float) -> int:
    """run_service's body: watchers, worker, HTTP server and tickers until stopped."""
    await prepare_database(settings.db_url.get_secret_value())
    runtime = await build_runtime(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    incidents = runtime.incidents
    assert incidents is not None

    async def imap_state(mailbox: str, connected: bool, error: str | None) -> None:
        await incidents.imap_state(mailbox, connected=connected, error=error)

    async def store_state(error: str | None) -> None:
        if error is None:
            await incidents.store_ok()
        else:
            await incidents.store_failed(error)

    watchers = [Watcher(mb, runtime.store, on_stored=runtime.worker.wake, on_state=imap_state, on_store=store_state,
                        timeout=settings.imap_timeout, renew_seconds=settings.idle_renew_seconds,
                        standby_poll=min(5.0, settings.lease_seconds), budget=runtime.budget)
                for mb in settings.mailboxes]
    tasks = {asyncio.create_task(w.run(), name=f"watcher:{w.mb.name}") for w in watchers}
    tasks.add(asyncio.create_task(_ticker(incidents, watchers, settings.imap_alert_after_seconds),
                                  name="incidents"))
    from recruiter.ingest.replay import api_runner  # replay imports this module

    replays = Replays(api_runner(runtime))
    tasks.add(asyncio.create_task(_digest_safety_net(runtime, replays), name="digests"))
    app = make_app(runtime.store, watchers, runtime.llm, incidents, stale_seconds=settings.imap_stale_seconds,
                   token=settings.webhook_token.get_secret_value(), replays=replays, wake=runtime.worker.wake,
                   metrics=runtime.worker.metrics,
                   callbacks=callback_router(build_actions(settings, runtime.store, runtime.notifier, runtime.budget),
                                             runtime.worker.deps.links.secret))
    http = _HttpServer(uvicorn.Config(app, host=settings.http_host, port=settings.http_port, log_level="warning",
                                      access_log=False, lifespan="off"))
    tasks.add(asyncio.create_task(http.serve(), name="http"))
    worker_task = asyncio.create_task(runtime.worker.run(stop), name="worker")
    tasks.add(worker_task)
    stopper = asyncio.create_task(stop.wait(), name="stop")
    log.info("service.started", mailboxes=[mb.name for mb in settings.mailboxes],
             llm_tiers=[t.tier for t in settings.llm_tiers] or ["rules"])
    code = 0
    try:
        done, _ = await asyncio.wait({*tasks, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in done - {stopper}:
            exc = task.exception() if not task.cancelled() else None
            if stop.is_set() and exc is None:
                continue  # the worker returns when told to stop: ending with the stop signal is no death
            code = 1
            log.error("service.task_died", task=task.get_name(), error=repr(exc))
        stop.set()
        await _finish(worker_task, shutdown_grace)
    finally:
        http.should_exit = True
        await replays.aclose()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, stopper, return_exceptions=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runtime.aclose()
        log.info("service.stopped", code=code)
    return code


class _HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: SIGTERM belongs to the service's lifecycle."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        for server in self.servers:
            for sock in server.sockets:
                log.info("http.listening", address=str(sock.getsockname()))


async def _ticker(incidents: Incidents, watchers: Sequence[Watcher], stall_after: float, every: float = 5.0) -> None:
    """Reminders, confirmed recoveries, IMAP and stalled-mailbox alerts, dead-letter notices, deliveries."""
    while True:
        await asyncio.sleep(every)
        try:
            now = time.monotonic()
            for watcher in watchers:
                if watcher.standby:
                    continue
                stalled = watcher.stalled(now, stall_after)
                await incidents.stall(watcher.mb.name, uid=stalled[0] if stalled else None,
                                      error_class=stalled[1] if stalled else None)
            await incidents.tick()
        except Exception:  # the ticker must outlive anything one tick meets
            log.exception("incidents.tick_failed")


DIGEST_QUIET_SECONDS = 60.0


async def _digest_safety_net(runtime: Runtime, replays: Replays, every: float = 30.0) -> None:
    """Backlog mail whose replay stopped before telling it (Ctrl-C, a crash) still gets its digest lines.

    A replay sends its own digests, at its own size, as its mail finishes; this only steps in when no
    replay runs here, no backlog mail is unfinished, and the owed mail has been quiet for a minute."""
    while True:
        await asyncio.sleep(every)
        try:
            if replays.running is not None or await runtime.store.replay_unfinished():
                continue
            owed = await runtime.store.digest_owed()
            if not owed or (utcnow() - max(m.updated_at for m in owed)).total_seconds() < DIGEST_QUIET_SECONDS:
                continue
            from recruiter.ingest.replay import send_owed_digests  # replay imports this module

            report = await send_owed_digests(runtime, flush=True)
            log.info("digest.safety_net", digests=report.digests, lines=report.lines, owed=report.owed,
                     error=report.error)
        except TransientError as exc:
            log.warning("digest.safety_net_failed", error=str(exc))
        except Exception:  # never end the task: the next look may succeed
            log.exception("digest.safety_net_failed")


async def _finish(worker_task: asyncio.Task[None], grace: float) -> None:
    """Let in-flight stages finish within the grace period."""
    if worker_task.done():
        return
    try:
        await asyncio.wait_for(asyncio.shield(worker_task), grace)
    except TimeoutError:
        log.warning("service.grace_exceeded", seconds=grace)


def build_actions(settings: Settings, store: Store, notifier: Notifier | None, budget: Budget | None = None) -> Actions:
    """The actions wired from Settings: SMTP when ``SMTP_HOST`` is set, one IMAP mailbox per watched one."""
    smtp = None
    if settings.smtp_host:
        smtp = SmtpSender(SmtpSettings(
            host=settings.smtp_host, port=settings.smtp_port, tls=settings.smtp_tls, user=settings.smtp_user,
            password=settings.smtp_password.get_secret_value(), from_addr=settings.smtp_from_addr,
            from_name=settings.smtp_from_name, ca_file=settings.smtp_ca_file, timeout=settings.smtp_timeout,
        ))
    profile = load_profile(settings.owner_profile)
    return Actions(
        store,
        mailboxes={mb.name: ImapMailbox(mb, timeout=settings.imap_timeout) for mb in settings.mailboxes},
        smtp=smtp,
        notifier=notifier,
        profile=profile,
        identity=SenderIdentity(name=settings.owner_name or settings.smtp_from_name or profile_name(profile, ""),
                                address=settings.smtp_from_addr),
        lease_seconds=settings.lease_seconds,
        budget=budget,
    )
