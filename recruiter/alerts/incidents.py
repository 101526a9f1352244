"""Dependency health and the owner's alerts: one alert per incident, reminders, one recovery message.

It exists because of the 2026-06-02 post-mortem: 440 triage attempts failed with 502 over 2.5 hours and
nobody was told. One :class:`Incidents` per process; its state lives in the store (the ``incidents``
and ``outbox`` tables, :mod:`recruiter.store.alerts`), so a restart during an incident does not alert
again, and two replicas on one PostgreSQL send one alert and one recovery message between them.

Incidents, by key
    ``llm`` (every LLM tier failing: triage and drafts wait), ``tier:<tier>`` (one tier refuses us for
    its configuration: 401/403, an unknown model, a refused parameter), ``imap:<mailbox>`` (the mailbox
    cannot connect, or its Drafts cannot be written), ``calendar``, ``telegram``, ``stall:<mailbox>``
    (the checkpoint does not move while the server shows newer mail) and ``store`` (the database
    itself: kept in memory, see below).

Failures and the pause
    :meth:`Incidents.failed` counts one transient failure of a dependency, :meth:`Incidents.succeeded`
    one success. ``alert_after`` failures in a row (or one, for a misconfigured tier, a mailbox down
    for ``imap_alert_after`` seconds, a stalled mailbox) open the incident and queue **one** alert.
    While it is open :meth:`Incidents.paused` is true for that key and :meth:`Incidents.probe_due` lets
    one message try every ``probe_seconds`` (one among all replicas); the rest wait without burning
    attempts. An incident whose cause another open incident has already told (the LLM failing because
    its only tier is misconfigured; a mailbox stalled because it cannot connect) opens silently: it
    pauses, but says nothing, and its recovery says nothing either.

Recovery and flapping
    The first success sends the one recovery message (how long, how many messages waited). The incident
    stays on file for ``flap_seconds``: failures reaching the threshold again within it reopen it
    silently, so an outage that flaps gives one alert and one recovery message.

Reminders
    Every ``remind_seconds`` after the last alert or reminder was delivered, while the incident is open.

Delivery
    Messages go out in order through the outbox, at most once: a send that may have arrived (written,
    no answer) is never repeated (``uncertain``); one Telegram refused (4xx) is dropped and logged; one
    that failed for sure waits (``retry_after``, else ``delivery_retry_seconds`` doubling up to 5
    minutes). An alert whose incident recovered before it could be sent is superseded by the recovery
    message. None of the public methods raises because of the notifier or the store.

The store's own outage
    It cannot be recorded in the store: after ``store_alert_after`` seconds of failing writes the alert
    is sent directly from memory (each replica that sees it), the recovery too, and both are recorded in
    the outbox once the store is back.

Dead letters
    Every message that goes dead is told: one line each (sender, subject, stage, reason, how to retry),
    batched into one message for the deaths of a minute, at most one such message a minute.

Log events: ``alert.fired`` (error), ``alert.reopened``, ``alert.reminded`` (warning), ``alert.recovering``,
``alert.recovered``, ``alert.delivered`` (info), ``alert.delivery_failed`` (error), ``alert.uncertain``
(error), ``alert.superseded``, ``alert.probe`` (info), ``alert.waiting_unknown``, ``alert.store_failed``
(error), ``dead.noticed`` (info).
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from recruiter.backoff import Backoff
from recruiter.errors import MaybeDone, PermanentError, TransientError
from recruiter.notify.telegram import Notifier, html_to_plain
from recruiter.store.alerts import Edit
from recruiter.store.models import OUT_DROPPED, OUT_PENDING, OUT_SENT, OUT_UNCERTAIN, Incident, Message
from recruiter.store.repo import Store

if TYPE_CHECKING:
    from recruiter.llm.client import TierEvent

log = structlog.get_logger()

LLM = "llm"
TRIAGE = LLM  # the key's old name
STORE = "store"
MAX_DETAIL_CHARS = 1000  # an error text longer than this is cut (Telegram takes 4096 in all)
MAX_DELIVERY_RETRY_SECONDS = 300.0
DEAD_LINES = 25  # dead messages named in one notice; the rest are counted
SEND_LEASE = timedelta(minutes=2)
SWEEP_SECONDS = 10.0  # dead-letter notices and dead senders are looked for this often


def imap_key(mailbox: str) -> str:
    """The incident key of a mailbox's connection (the watcher and the Drafts folder)."""
    return f"imap:{mailbox}"


def tier_key(tier: str) -> str:
    """The incident key of one LLM tier's configuration."""
    return f"tier:{tier}"


def stall_key(mailbox: str) -> str:
    """The incident key of a mailbox whose checkpoint does not move."""
    return f"stall:{mailbox}"


@dataclass(frozen=True)
class View:
    """What this process last saw of one incident row."""

    key: str
    title: str
    streak: int
    streak_since: float | None
    opened: bool
    recovering: bool
    since: float | None
    recovered_at: float | None
    last_error: str | None
    detail: dict[str, Any]
    silent: bool
    next_probe_at: float | None
    told_at: float | None = None

    @property
    def open(self) -> bool:
        """Opened and not in the recovery hold."""
        return self.opened and not self.recovering


@dataclass
class _Mailbox:
    """What this replica's watcher of one mailbox last reported."""

    connected: bool = True
    down_since: float | None = None
    error: str | None = None


class Incidents:
    """Tracks dependency health and tells the owner: see the module docstring."""

    def __init__(
        self,
        notifier: Notifier,
        store: Store,
        *,
        alert_after: int = 5,
        remind_seconds: float = 4 * 3600,
        flap_seconds: float = 300,
        imap_alert_after: float = 600,
        waiting: Callable[[], Awaitable[int]] | None = None,
        clock: Callable[[], float] = time.time,
        probe_seconds: float = 60,
        delivery_retry_seconds: float = 30,
        store_alert_after: float = 60,
        dead_gather_seconds: float = 60,
        llm_tiers: Sequence[str] = (),
    ) -> None:
        if alert_after < 1:
            raise ValueError("alert_after must be at least 1")
        self.notifier = notifier
        self.store = store
        self.alert_after = alert_after
        self.remind_seconds = remind_seconds
        self.flap_seconds = flap_seconds
        self.imap_alert_after = imap_alert_after
        self.probe_seconds = probe_seconds
        self.delivery_retry_seconds = delivery_retry_seconds
        self._delivery_backoff = Backoff(delivery_retry_seconds, cap=MAX_DELIVERY_RETRY_SECONDS)
        self.store_alert_after = store_alert_after
        self.dead_gather_seconds = dead_gather_seconds
        self.llm_tiers = tuple(llm_tiers)
        self._waiting_query = waiting
        self._clock = clock
        self._owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(3)}"
        self._views: dict[str, View] = {}
        self._mailboxes: dict[str, _Mailbox] = {}
        self._flushing = False
        self._pending = 0
        self._next_sweep = 0.0  # clock time of the next look for dead-letter notices and dead senders
        self._queued = False  # this process queued a message since its last flush
        self._lock = asyncio.Lock()
        # The store's own outage, in memory: (since, last error), whether the alert went out, and the
        # direct messages still to send or to record in the outbox once the store is back.
        self._store_since: float | None = None
        self._store_error = ""
        self._store_alerted = False
        self._direct: list[tuple[str, str]] = []  # (kind, text) to send directly
        self._to_record: list[tuple[str, str, str]] = []  # (kind, text, ref) sent, to record

    # --- reading ------------------------------------------------------------------------------------
    def view(self, key: str) -> View | None:
        """This process's last view of ``key`` (None: no failure on record)."""
        return self._views.get(key)

    @property
    def store_failing(self) -> bool:
        """True while writes to the store fail (this process saw it)."""
        return self._store_since is not None

    def paused(self, key: str) -> bool:
        """True while ``key``'s incident is open: its stage waits, except one probe per ``probe_seconds``."""
        if key == STORE:
            return self._store_alerted
        view = self._views.get(key)
        return view is not None and view.open

    def in_outage(self, key: str) -> bool:
        """True when a failure of ``key`` is more likely the dependency's than the message's: its incident
        is open, or it failed for more than one message in a row (such failures do not count attempts)."""
        if key == STORE:
            return True
        view = self._views.get(key)
        return view is not None and (view.opened or view.streak >= 2)

    @property
    def triage_paused(self) -> bool:
        """``paused("llm")``."""
        return self.paused(LLM)

    async def probe_due(self, key: str = LLM) -> bool:
        """While ``key`` is paused: True at most once per ``probe_seconds`` among all replicas (the caller
        runs that probe). False when it is not paused or the next probe is not due yet."""
        view = self._views.get(key)
        now = self._clock()
        if view is None or not view.open or (view.next_probe_at is not None and now < view.next_probe_at):
            return False
        try:
            won = await self.store.alerts.probe(key, now=_dt(now), next_at=_dt(now + self.probe_seconds))
        except TransientError as exc:
            await self._store_failing(exc)
            return False
        self._views[key] = _replace(view, next_probe_at=now + self.probe_seconds)
        if won:
            log.info("alert.probe", key=key, next_probe_in=self.probe_seconds)
        return won

    def next_probe_in(self, key: str = LLM) -> float:
        """Seconds until :meth:`probe_due` can say yes again (0 when not paused)."""
        view = self._views.get(key)
        if view is None or not view.open or view.next_probe_at is None:
            return 0.0
        return max(0.0, view.next_probe_at - self._clock())

    # --- failures and successes -----------------------------------------------------------------
    async def failed(self, key: str, *, error: str, title: str | None = None, detail: dict[str, Any] | None = None,
                     immediate: bool = False, since: float | None = None, told: bool = False) -> None:
        """Count one failure of ``key``; open its incident at ``alert_after`` in a row (at once when
        ``immediate``). ``since``: when the failure began, if earlier than now (a mailbox down since).
        ``told``: the failure's cause has an incident of its own that tells it (an LLM tier that refuses
        us), so an incident this opens is silent even if that one is not on record yet."""
        now = self._clock()
        view = self._views.get(key)
        opening = immediate or (view.streak + 1 if view else 1) >= self.alert_after
        waiting = await self._waiting() if opening and (view is None or not view.open) else None
        try:
            async with self._lock, self.store.alerts.edit(key, now=_dt(now)) as edit:
                row = edit.row
                self._settle(row, now)
                if row.streak == 0 or row.streak_since is None:
                    row.streak_since = _dt(since if since is not None else now)
                row.streak += 1
                row.last_error = error
                row.title = title or row.title or _default_title(key)
                if detail:
                    row.detail = {**(row.detail or {}), **detail}
                if immediate or row.streak >= self.alert_after:
                    self._failing(edit, now, waiting, told=told)
                self._views[key] = _view(row)
                self._queued = self._queued or bool(edit.posts)
        except TransientError as exc:
            await self._store_failing(exc)
            return
        await self._flush()

    async def succeeded(self, key: str) -> None:
        """One success of ``key``: the streak ends, and an open incident starts (or ends) its recovery."""
        view = self._views.get(key)
        if view is None or (view.streak == 0 and not view.opened):
            return  # nothing on record: no write on the hot path
        now = self._clock()
        late = await self._waiting() if view.open and key == LLM else None
        try:
            async with self._lock, self.store.alerts.edit(key, now=_dt(now)) as edit:
                row = edit.row
                self._settle(row, now)
                row.streak, row.streak_since = 0, None
                if row.opened_at is not None and row.recovered_at is None:
                    self._recovering(edit, now, late)
                self._settle(row, now)
                self._queued = self._queued or bool(edit.posts)
                if row.opened_at is None and row.streak == 0:
                    edit.delete = True
                    self._views.pop(key, None)
                else:
                    self._views[key] = _view(row)
        except TransientError as exc:
            await self._store_failing(exc)
            return
        await self._flush()

    def _failing(self, edit: Edit, now: float, waiting: int | None, *, told: bool = False) -> None:
        """The streak reached the threshold: open the incident, or reopen it silently in its recovery hold."""
        row = edit.row
        if row.opened_at is not None:
            if row.recovered_at is not None:
                log.warning("alert.reopened", key=row.key, since=_iso_dt(row.since),
                            recovered_for=now - _ts(row.recovered_at))
                row.recovered_at, row.late = None, None
                row.next_probe_at = _dt(now + self.probe_seconds)
            return
        since = _ts(row.streak_since) if row.streak_since is not None else now
        row.opened_at, row.since = _dt(now), _dt(since)
        row.recovered_at, row.late, row.recovery_told, row.told_at, row.reminders = None, None, False, None, 0
        row.next_probe_at = _dt(now + self.probe_seconds)
        row.silent = told or self._cause_told(row.key)
        if row.silent:
            log.warning("alert.fired", key=row.key, silent=True, since=_iso(since), error=row.last_error)
            return
        edit.post(f"alert:{row.key}:{_iso(since)}", "alert", self._alert_text(row, now, waiting), now=_dt(now))
        log.error("alert.fired", key=row.key, since=_iso(since), failures=row.streak, waiting=waiting,
                  error=row.last_error, **{k: v for k, v in (row.detail or {}).items() if k in ("tier", "model")})

    def _recovering(self, edit: Edit, now: float, late: int | None) -> None:
        row = edit.row
        row.recovered_at, row.late = _dt(now), late
        log.info("alert.recovering", key=row.key, outage_seconds=now - _ts(row.since or row.opened_at),
                 confirm_in=self.flap_seconds)
        edit.supersede = True  # an alert still waiting (its delivery failed) must not hold the recovery back
        if not row.recovery_told:
            row.recovery_told = True
            if not row.silent:
                edit.post(f"recovery:{row.key}:{_iso_dt(row.since)}", "recovery", _recovery_text(row, now),
                          now=_dt(now))

    def _settle(self, row: Incident, now: float) -> None:
        """Close the incident when its recovery has held for ``flap_seconds``."""
        if row.recovered_at is None or now - _ts(row.recovered_at) < self.flap_seconds:
            return
        log.info("alert.recovered", key=row.key, since=_iso_dt(row.since), recovered=_iso_dt(row.recovered_at),
                 outage_seconds=_ts(row.recovered_at) - _ts(row.since or row.recovered_at), late=row.late)
        row.opened_at = row.since = row.recovered_at = row.told_at = row.next_probe_at = None
        row.late, row.recovery_told, row.silent, row.reminders = None, False, False, 0

    def _cause_told(self, key: str) -> bool:
        """Whether another open incident already told this one's cause."""
        if key == LLM:
            return bool(self.llm_tiers) and all(self.paused(tier_key(t)) for t in self.llm_tiers)
        if key.startswith("stall:"):
            mailbox = key.partition(":")[2]
            return self._store_alerted or self.paused(imap_key(mailbox))
        return False

    # --- the LLM ----------------------------------------------------------------------------------
    async def triage_failed(self, *, tier: str, error: str) -> None:
        """A transient failure of the LLM (any stage), on ``tier``."""
        await self.failed(LLM, error=error, detail={"tier": tier})

    async def triage_succeeded(self) -> None:
        """An LLM call succeeded."""
        await self.succeeded(LLM)

    async def tier_event(self, event: TierEvent) -> None:
        """The LLM client's ``on_tier_event`` hook: a tier starts refusing us, or answers again."""
        if event.kind == "misconfigured":
            await self.tier_misconfigured(event.tier, event.model, event.status, event.message)
        else:
            await self.tier_recovered(event.tier)

    async def tier_misconfigured(self, tier: str, model: str, status: int | None, message: str) -> None:
        """``tier`` refuses requests for a reason of configuration: one alert now, probed by its breaker."""
        await self.failed(tier_key(tier), error=message, title=f"LLM tier {tier} ({model})", immediate=True,
                          detail={"tier": tier, "model": model, "status": status})

    async def tier_recovered(self, tier: str) -> None:
        """``tier`` answers again."""
        await self.succeeded(tier_key(tier))

    # --- IMAP -------------------------------------------------------------------------------------
    async def imap_state(self, mailbox: str, *, connected: bool, error: str | None = None) -> None:
        """Record a connection attempt of ``mailbox``'s watcher: ``connected`` or not (with ``error``)."""
        now = self._clock()
        box = self._mailboxes.setdefault(mailbox, _Mailbox())
        if connected:
            box.connected, box.down_since, box.error = True, None, None
            await self.succeeded(imap_key(mailbox))
            return
        if box.down_since is None:
            box.down_since = now
        box.connected = False
        box.error = error or box.error
        view = self._views.get(imap_key(mailbox))
        if view is not None and view.recovering:  # lost again within the recovery hold: the same incident
            await self.failed(imap_key(mailbox), error=box.error or "unknown", immediate=True)
            return
        await self._check_imap(now)

    async def _check_imap(self, now: float) -> None:
        for mailbox, box in self._mailboxes.items():
            if box.down_since is None or now - box.down_since < self.imap_alert_after:
                continue
            view = self._views.get(imap_key(mailbox))
            if view is not None and view.open:
                continue
            await self.failed(imap_key(mailbox), error=box.error or "unknown", title=f"Mailbox {mailbox}",
                              immediate=True, since=box.down_since, detail={"mailbox": mailbox, "cause": "connect"})

    async def stall(self, mailbox: str, *, uid: int | None, error_class: str | None = None) -> None:
        """``uid`` None: ``mailbox``'s checkpoint moves. Else it has been stuck before ``uid`` (failing with
        ``error_class``) for the stall time: one alert, unless the store or the mailbox's connection
        incident already told the cause."""
        key = stall_key(mailbox)
        if uid is None:
            await self.succeeded(key)
            return
        view = self._views.get(key)
        if view is not None and view.opened and not view.recovering:
            return
        await self.failed(key, error=error_class or "unknown", title=f"Mailbox {mailbox}", immediate=True,
                          detail={"mailbox": mailbox, "uid": uid, "error_class": error_class or "unknown"})

    # --- the store itself ---------------------------------------------------------------------------
    async def store_failed(self, error: str) -> None:
        """The store failed (a worker's claim, a write): alert directly after ``store_alert_after`` seconds."""
        now = self._clock()
        if self._store_since is None:
            self._store_since = now
            log.error("alert.store_failed", error=error)
        self._store_error = error
        if not self._store_alerted and now - self._store_since >= self.store_alert_after:
            self._store_alerted = True
            self._direct.append(("alert", "\n".join([
                "⚠️ <b>The database is unavailable</b>",
                f"Since: {_utc(self._store_since)} ({_duration(now - self._store_since)} ago)",
                f"Last error: {_esc(error)}",
                "",
                "Mail stays on the server and nothing is lost; it is stored and processed when the database "
                "is back. One message follows when it is.",
            ])))
            log.error("alert.fired", key=STORE, since=_iso(self._store_since), error=error)
        await self._send_direct()

    async def store_ok(self) -> None:
        """The store answered: end its outage (the recovery message if the alert went out)."""
        if self._store_since is None:
            if self._to_record:
                await self._record_direct()
            return
        now = self._clock()
        if self._store_alerted:
            self._direct.append(("recovery", "\n".join([
                f"✅ <b>The database is back</b> after {_duration(now - self._store_since)}",
                f"Down from {_utc(self._store_since)} to {_utc(now)}.",
            ])))
        log.info("alert.recovered", key=STORE, outage_seconds=now - self._store_since)
        self._store_since, self._store_alerted = None, False
        await self._send_direct()
        await self._record_direct()

    async def _store_failing(self, exc: Exception) -> None:
        await self.store_failed(str(exc))

    async def _send_direct(self) -> None:
        while self._direct:
            kind, text = self._direct[0]
            try:
                ref = await self.notifier.send_text(text)
            except MaybeDone as exc:
                ref = "uncertain"
                log.error("alert.uncertain", key=STORE, kind=kind, error=str(exc))
            except (TransientError, Exception) as exc:
                log.error("alert.delivery_failed", key=STORE, kind=kind, text=html_to_plain(text), error=str(exc),
                          error_class=type(exc).__name__)
                return
            self._direct.pop(0)
            self._to_record.append((kind, text, ref))
            log.info("alert.delivered", key=STORE, kind=kind, ref=ref)

    async def _record_direct(self) -> None:
        while self._to_record:
            kind, text, ref = self._to_record[0]
            now = self._clock()
            try:
                await self.store.alerts.post(f"{kind}:{STORE}:{_iso(now)}:{secrets.token_hex(3)}", kind, text,
                                             now=_dt(now), incident=STORE, ref=ref,
                                             state=OUT_UNCERTAIN if ref == "uncertain" else OUT_SENT)
            except Exception as exc:  # still down, or refused: try again at the next tick
                log.warning("alert.record_failed", key=STORE, error=str(exc))
                return
            self._to_record.pop(0)

    # --- periodic ---------------------------------------------------------------------------------
    async def tick(self) -> None:
        """Call every few seconds: confirmed recoveries, IMAP alerts, reminders, dead-letter notices,
        deliveries (and the store's own alert while it is down). Never raises."""
        now = self._clock()
        try:
            await self._refresh(now)
            await self._check_imap(now)
            await self._remind(now)
            if now >= self._next_sweep:
                self._next_sweep = now + SWEEP_SECONDS
                await self._dead_notices(now)
                for row in await self.store.alerts.expire_sending(now=_dt(now)):
                    log.error("alert.uncertain", key=row.incident, kind=row.kind, text=html_to_plain(row.text),
                              note="the process died while sending it; not sent again")
        except TransientError as exc:
            await self._store_failing(exc)
            return
        except Exception:
            log.exception("alert.tick_failed")
            return
        if self._store_since is not None:
            try:
                await self.store.ping_write()  # reads work through a lock or a read-only fail-over: write
            except TransientError as exc:
                await self._store_failing(exc)
                return
            await self.store_ok()
        elif self._to_record:
            await self.store_ok()
        await self._flush(look=True)

    async def _refresh(self, now: float) -> None:
        """Read every incident row (another replica may have changed them) and close settled ones."""
        views: dict[str, View] = {}
        for row in await self.store.alerts.incidents():
            if row.recovered_at is None or now - _ts(row.recovered_at) < self.flap_seconds:
                views[row.key] = _view(row)
                continue
            async with self._lock, self.store.alerts.edit(row.key, now=_dt(now)) as edit:
                self._settle(edit.row, now)
                if edit.row.opened_at is None and edit.row.streak == 0:
                    edit.delete = True
                else:
                    views[row.key] = _view(edit.row)
        self._views = views

    async def _remind(self, now: float) -> None:
        for view in list(self._views.values()):
            if not view.open or view.silent or view.told_at is None or now - view.told_at < self.remind_seconds:
                continue
            try:
                if await self.store.alerts.has_pending(view.key, ("alert", "reminder")):
                    continue
                waiting = await self._waiting() if view.key == LLM else None
                async with self._lock, self.store.alerts.edit(view.key, now=_dt(now)) as edit:
                    row = edit.row
                    told = row.told_at
                    if row.opened_at is None or row.recovered_at is not None or told is None \
                            or now - _ts(told) < self.remind_seconds:
                        if edit.created:
                            edit.delete = True
                        continue
                    row.reminders += 1
                    row.told_at = _dt(now)  # the next reminder counts from here if this one is slow to go
                    edit.post(f"reminder:{row.key}:{_iso_dt(row.since)}:{row.reminders}", "reminder",
                              self._reminder_text(row, now, waiting), now=_dt(now))
                    log.warning("alert.reminded", key=row.key, since=_iso_dt(row.since),
                                outage_seconds=now - _ts(row.since or row.opened_at))
            except TransientError:
                raise
            except Exception:
                log.exception("alert.remind_failed", key=view.key)

    def _reminder_text(self, row: Incident, now: float, waiting: int | None) -> str:
        since = _ts(row.since or row.opened_at)
        head = f"⏰ <b>{_esc(_headline(row, still=True))}</b> — for {_duration(now - since)}"
        return "\n".join([head, *self._facts(row, since, now, waiting)])

    async def _dead_notices(self, now: float) -> None:
        told = await self.store.alerts.dead_notice(
            now=_dt(now), gather=timedelta(seconds=self.dead_gather_seconds),
            gap=timedelta(seconds=self.dead_gather_seconds), limit=DEAD_LINES, render=_dead_text)
        if told:
            log.info("dead.noticed", messages=told)

    # --- delivery ---------------------------------------------------------------------------------
    async def _flush(self, *, look: bool = False) -> None:
        """Send due outbox messages in order; stop at the first that must wait. Without ``look`` only when
        this process queued something or knows of a message waiting (the ticker looks every time)."""
        if not (look or self._queued or self._pending):
            return
        if self._flushing:  # another task is sending; it also sends what was queued meanwhile
            return
        self._flushing = True
        self._queued = False
        try:
            while True:
                now = self._clock()
                row = await self.store.alerts.claim_next(self._owner, now=_dt(now), lease=SEND_LEASE)
                if row is None:
                    break
                if not await self._deliver(row, now):
                    break
            self._pending = await self.store.alerts.pending_count()
        except TransientError as exc:
            await self._store_failing(exc)
        except Exception:
            log.exception("alert.flush_failed")
        finally:
            self._flushing = False

    async def _deliver(self, row: Any, now: float) -> bool:
        """Send one claimed outbox row; False when the queue must wait (the message is kept)."""
        alerts = self.store.alerts
        view = self._views.get(row.incident) if row.incident else None
        if row.kind in ("alert", "reminder") and row.incident and (view is None or view.recovering):
            await alerts.finish(row.id, self._owner, OUT_DROPPED, error="superseded: it recovered before this went out")
            log.info("alert.superseded", key=row.incident, kind=row.kind)
            return True
        try:
            ref = await self.notifier.send_text(row.text)
        except MaybeDone as exc:
            await alerts.finish(row.id, self._owner, OUT_UNCERTAIN, error=str(exc)[:500])
            log.error("alert.uncertain", key=row.incident, kind=row.kind, text=html_to_plain(row.text), error=str(exc))
            await self._told(row, now)
            return True
        except TransientError as exc:
            await self._postpone(row, now, exc, exc.retry_after)
            return False
        except PermanentError as exc:
            await alerts.finish(row.id, self._owner, OUT_DROPPED, error=str(exc)[:500])
            log.error("alert.delivery_failed", key=row.incident, kind=row.kind, text=html_to_plain(row.text),
                      error=str(exc), error_class=type(exc).__name__, dropped=True)
            return True
        except Exception as exc:  # the alert path never raises: an unexpected error waits like an outage
            await self._postpone(row, now, exc, None)
            return False
        await alerts.finish(row.id, self._owner, OUT_SENT, ref=ref[:64], sent_at=_dt(self._clock()), error=None)
        log.info("alert.delivered", key=row.incident, kind=row.kind, ref=ref, failed_attempts=row.failures)
        await self._told(row, now)
        return True

    async def _told(self, row: Any, now: float) -> None:
        """An alert or reminder went out (or may have): reminders count from now."""
        if row.kind not in ("alert", "reminder") or not row.incident:
            return
        async with self._lock, self.store.alerts.edit(row.incident, now=_dt(now)) as edit:
            if edit.created:
                edit.delete = True
            else:
                edit.row.told_at = _dt(self._clock())
                self._views[edit.row.key] = _view(edit.row)

    async def _postpone(self, row: Any, now: float, exc: Exception, retry_after: float | None) -> None:
        failures = row.failures + 1
        delay = retry_after if retry_after is not None else self._delivery_backoff.delay(failures)
        await self.store.alerts.finish(row.id, self._owner, OUT_PENDING, failures=failures,
                                       not_before=_dt(now + delay), error=str(exc)[:500])
        log.error("alert.delivery_failed", key=row.incident, kind=row.kind, text=html_to_plain(row.text),
                  error=str(exc), error_class=type(exc).__name__, attempt=failures, retry_in=delay)

    # --- texts ------------------------------------------------------------------------------------
    def _alert_text(self, row: Incident, now: float, waiting: int | None) -> str:
        since = _ts(row.since or row.opened_at)
        lines = [f"⚠️ <b>{_esc(_headline(row))}</b>", *self._facts(row, since, now, waiting)]
        if row.key == LLM:
            lines.append(f"Failures in a row: {row.streak}")
        lines += ["", _consequence(row, self.probe_seconds),
                  f"A reminder follows every {_duration(self.remind_seconds)} while it lasts, and one message when "
                  "it recovers."]
        return "\n".join(lines)

    def _facts(self, row: Incident, since: float, now: float, waiting: int | None) -> list[str]:
        detail = row.detail or {}
        facts = [f"Since: {_utc(since)} ({_duration(now - since)} ago)"]
        if row.key == LLM:
            facts.append(f"Waiting: {_messages(waiting)}")
        if detail.get("tier"):
            model = f" ({detail['model']})" if detail.get("model") else ""
            facts.append(f"Tier: {_esc(str(detail['tier']) + model)}")
        if detail.get("status"):
            facts.append(f"Status: {_esc(str(detail['status']))}")
        if detail.get("uid") is not None:
            facts.append(f"Stuck at UID: {_esc(str(detail['uid']))}")
        label = "Error" if row.key.startswith("stall:") else "Last error"
        facts.append(f"{label}: {_esc(row.last_error or 'unknown')}")
        return facts

    async def _waiting(self) -> int | None:
        """The ``waiting`` query, or None when there is none or it fails (the alert goes out anyway)."""
        if self._waiting_query is None:
            return None
        try:
            return int(await self._waiting_query())
        except Exception as exc:
            log.error("alert.waiting_unknown", error=str(exc), error_class=type(exc).__name__)
            return None

    # --- observability ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The current state for /readyz, /api/status and metrics; times are Unix seconds (or None)."""
        llm = self._views.get(LLM)
        return {
            "consecutive_failures": llm.streak if llm else 0,
            "failing_since": llm.streak_since if llm else None,
            "triage_paused": self.triage_paused,
            "incident_since": llm.since if llm and llm.opened else None,
            "recovering_since": llm.recovered_at if llm and llm.recovering else None,
            "last_error": llm.last_error if llm else None,
            "tier": (llm.detail.get("tier") if llm else None) or None,
            "pending_deliveries": self._pending + len(self._direct),
            "imap": {name: self._imap_snapshot(name, box) for name, box in self._mailboxes.items()},
            "incidents": [
                {"key": v.key, "title": v.title, "since": v.since, "recovering": v.recovering, "silent": v.silent,
                 "last_error": v.last_error}
                for v in self._views.values() if v.opened
            ] + ([{"key": STORE, "title": "The database", "since": self._store_since, "recovering": False,
                   "silent": False, "last_error": self._store_error}] if self._store_since is not None else []),
        }

    def _imap_snapshot(self, mailbox: str, box: _Mailbox) -> dict[str, Any]:
        view = self._views.get(imap_key(mailbox))
        return {"connected": box.connected, "down_since": box.down_since, "error": box.error,
                "incident_open": view is not None and view.open}


# --- texts ----------------------------------------------------------------------------------------

def _default_title(key: str) -> str:
    name, _, rest = key.partition(":")
    return {"llm": "The LLM", "calendar": "The calendar", "telegram": "Telegram", "caldav": "The calendar",
            "imap": f"Mailbox {rest}", "stall": f"Mailbox {rest}", "tier": f"LLM tier {rest}"}.get(name, key)


def _headline(row: Incident, *, still: bool = False) -> str:
    title = row.title or _default_title(row.key)
    kind, _, _ = row.key.partition(":")
    detail = row.detail or {}
    if kind == "imap" and detail.get("cause") == "connect":
        return f"{title} {'still ' if still else ''}cannot connect"
    if kind == "stall":
        return f"{title} is {'still ' if still else ''}stuck"
    if kind == "tier":
        return f"{title} {'still ' if still else ''}refuses our requests"
    return f"{title} is {'still ' if still else ''}failing"


def _consequence(row: Incident, probe_seconds: float) -> str:
    kind = row.key.partition(":")[0]
    probe = f"It is probed every {_duration(probe_seconds)}."
    if kind == "llm":
        return ("Until it recovers the rules tier sorts new mail; the drafts of recruiter mail are pending and are "
                f"written (and announced) when the LLM is back. {probe}")
    if kind == "tier":
        return ("This looks like configuration (a rotated key, a renamed model, a parameter the endpoint refuses): "
                "the tier is skipped and the next one answers meanwhile; no mail is lost. " + probe)
    if kind == "imap":
        return ("New mail there waits on the server (nothing is lost) and drafts wait; they are picked up when "
                "the connection is back.")
    if kind == "stall":
        return ("Newer mail in this mailbox is not stored (it stays on the server). "
                "`recruiter status` and the logs (imap.*, ingest.*) say more.")
    if kind == "calendar":
        return f"Events, and the cards that follow them, wait and are written when it is back. {probe}"
    if kind == "telegram":
        return f"Cards wait and are sent when it is back. {probe}"
    return f"The stages that need it wait. {probe}"


def _recovery_text(row: Incident, recovered_at: float) -> str:
    since = _ts(row.since or row.opened_at)
    span = f"{_utc(since)} to {_utc(recovered_at)}"
    title = row.title or _default_title(row.key)
    kind = row.key.partition(":")[0]
    if kind == "imap" and (row.detail or {}).get("cause") == "connect":
        head = f"✅ <b>{_esc(title)} is connected again</b> after {_duration(recovered_at - since)}"
        return "\n".join([head, f"Down from {span}."])
    if kind == "stall":
        return "\n".join([f"✅ <b>{_esc(title)} moves again</b> after {_duration(recovered_at - since)}",
                          f"Stuck from {span}."])
    lines = [f"✅ <b>{_esc(title)} recovered</b> after {_duration(recovered_at - since)}", f"Failing from {span}."]
    if kind == "llm":
        lines.append(f"Processed late: {_messages(row.late)} that waited during the outage.")
    return "\n".join(lines)


def _dead_text(rows: list[Message], total: int) -> str:
    """One notice for dead messages: a line each (sender, subject, stage, reason), how to retry them."""
    head = f"💀 <b>{total} mail{'s' if total != 1 else ''} could not be processed</b>"
    lines = [head]
    for row in rows:
        sender = _esc((row.from_addr or "unknown sender")[:80])
        subject = _esc((row.subject or "(no subject)")[:100])
        reason = _esc(f"{row.dead_reason or 'dead'}: {(row.last_error or '')[:160]}")
        lines.append(f"• #{row.id} {sender} — {subject}\n  stage {_esc(row.stage)} · {reason}\n"
                     f"  retry: <code>recruiter dlq retry {row.id}</code> or <code>POST /api/dlq/{row.id}/retry</code>")
    if total > len(rows):
        lines.append(f"… and {total - len(rows)} more: <code>recruiter dlq list</code>")
    text = "\n".join(lines)
    while len(text) > 4000 and len(lines) > 2:  # keep within Telegram's 4096 characters
        lines.pop(-2 if total > len(rows) else -1)
        text = "\n".join([*lines, "… (the rest: <code>recruiter dlq list</code>)"])
    return text


def _view(row: Incident) -> View:
    return View(
        key=row.key, title=row.title or _default_title(row.key), streak=row.streak,
        streak_since=_ts_or_none(row.streak_since), opened=row.opened_at is not None,
        recovering=row.opened_at is not None and row.recovered_at is not None,
        since=_ts_or_none(row.since), recovered_at=_ts_or_none(row.recovered_at), last_error=row.last_error,
        detail=dict(row.detail or {}), silent=bool(row.silent), next_probe_at=_ts_or_none(row.next_probe_at),
        told_at=_ts_or_none(row.told_at),
    )


def _replace(view: View, **changes: Any) -> View:
    return dataclasses.replace(view, **changes)


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _ts(value: datetime | None) -> float:
    if value is None:
        return 0.0
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).timestamp()


def _ts_or_none(value: datetime | None) -> float | None:
    return None if value is None else _ts(value)


def _esc(text: str) -> str:
    """``text`` for Telegram HTML: cut to MAX_DETAIL_CHARS, ``&``, ``<`` and ``>`` escaped."""
    if len(text) > MAX_DETAIL_CHARS:
        text = text[: MAX_DETAIL_CHARS - 1] + "…"
    return html.escape(text, quote=False)


def _messages(count: int | None) -> str:
    if count is None:
        return "unknown number of messages"
    return f"{count} message" if count == 1 else f"{count} messages"


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _iso_dt(value: datetime | None) -> str | None:
    return None if value is None else _iso(_ts(value))


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``4 h``, ``2 h 30 min``, ``3 d 4 h``."""
    total = max(0, round(seconds))
    if total < 60:
        return f"{total} s"
    minutes = total // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
