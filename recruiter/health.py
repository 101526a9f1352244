"""Dependency health and the owner's alerts: one alert per incident, reminders, one recovery message.

One :class:`Incidents` object per process watches triage and the IMAP watchers and talks to the owner
through a :class:`~recruiter.notify.telegram.Notifier` (in production a ``TelegramNotifier`` for
``TELEGRAM_ALERT_CHAT_ID``). It exists because of the 2026-06-02 post-mortem: 440 triage attempts
failed with 502 over 2.5 hours and nobody was told.

Triage
    Every transient triage failure is reported with :meth:`Incidents.triage_failed`, every success
    with :meth:`Incidents.triage_succeeded`. A per-message permanent error (unparseable mail, an
    invalid answer) says nothing about the dependency: it is simply not reported — it neither counts
    nor resets. ``alert_after`` consecutive failures open an incident and send **one** alert: since
    when (the first failure of the streak, UTC), how many messages are waiting (the ``waiting``
    query), which tier and the last error verbatim. While the incident is open
    :attr:`Incidents.triage_paused` is true and :meth:`Incidents.probe_due` lets one message try
    every ``probe_seconds`` (default 60 s); the others wait without burning attempts.

Recovery and flapping
    The first success unpauses triage and sends the one recovery message at once: the outage's
    length (first failure to that success) and how many messages were processed late — the
    ``waiting`` count at that success, every message then waiting having been held back by the
    outage (counting them after the fact would report 0 or 1, because the recovery is noticed on the
    first of them). The incident stays on file for ``flap_seconds`` (default 300 s): if the failures
    reach ``alert_after`` again within it, it is the same incident — it reopens silently, with no new
    alert and, when it recovers again, no second recovery message (reminders still go out while it
    stays open). So an outage that flaps gives exactly one alert and exactly one recovery message.

Reminders
    While an incident stays open, :meth:`Incidents.tick` sends a reminder ``remind_seconds`` (default
    4 h) after the last alert or reminder was delivered — nothing more.

IMAP
    :meth:`Incidents.imap_state` records each mailbox watcher's connection attempts. A mailbox that
    has not connected for ``imap_alert_after`` seconds (from its first failure; checked on every call
    and in :meth:`Incidents.tick`) gets one alert naming it and its last error; reconnecting sends one
    recovery message; losing the connection again within ``flap_seconds`` reopens the incident
    silently. Reminders work as for triage.

Delivery
    Messages go out in order from a queue. A ``TransientError`` from the notifier (Telegram down, 5xx,
    429) is logged at error level as ``alert.delivery_failed`` with the message text, and the message
    stays queued: the next call (usually :meth:`Incidents.tick`) tries again after the server's
    ``retry_after``, or else after ``delivery_retry_seconds`` doubling up to 5 minutes. A
    ``PermanentError`` is logged at error level and the message dropped. None of the public methods
    raises because of the notifier or the ``waiting`` query. Texts are Telegram HTML with every
    outside string (errors, tier, mailbox) escaped.

Log events: ``alert.fired`` (error), ``alert.reopened`` (warning), ``alert.reminded`` (warning),
``alert.recovering`` (info), ``alert.recovered`` (info), ``alert.delivered`` (info),
``alert.delivery_failed`` (error), ``alert.probe`` (info), ``alert.waiting_unknown`` (error).
"""

from __future__ import annotations

import asyncio
import html
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from recruiter.errors import PermanentError, TransientError
from recruiter.notify.telegram import Notifier, html_to_plain

log = structlog.get_logger()

TRIAGE = "triage"
MAX_DETAIL_CHARS = 1000  # an error text longer than this is cut (Telegram takes 4096 in all)
MAX_DELIVERY_RETRY_SECONDS = 300.0


@dataclass
class _Outage:
    """An incident the owner has been alerted about (the alert may still be queued)."""

    key: str
    since: float  # first failure
    mailbox: str | None = None  # for IMAP incidents
    recovered_at: float | None = None  # first success of a recovery not yet confirmed
    late: int | None = None  # messages waiting at ``recovered_at``
    told_at: float | None = None  # last alert or reminder delivered: reminders count from here
    recovery_told: bool = False  # the one recovery message of this incident has been queued

    @property
    def open(self) -> bool:
        """Still failing (not in the recovery hold)."""
        return self.recovered_at is None


@dataclass
class _Mailbox:
    """What the IMAP watcher of one mailbox last reported."""

    connected: bool = True
    down_since: float | None = None
    error: str | None = None


@dataclass
class _Delivery:
    """A queued message to the owner."""

    key: str
    kind: str  # "alert" | "reminder" | "recovery"
    text: str
    not_before: float = 0.0
    failures: int = 0


class Incidents:
    """Tracks dependency health for one process and tells the owner: see the module docstring."""

    def __init__(
        self,
        notifier: Notifier,
        *,
        alert_after: int = 5,
        remind_seconds: float = 4 * 3600,
        flap_seconds: float = 300,
        imap_alert_after: float = 600,
        waiting: Callable[[], Awaitable[int]] | None = None,
        clock: Callable[[], float] = time.time,
        probe_seconds: float = 60,
        delivery_retry_seconds: float = 30,
    ) -> None:
        if alert_after < 1:
            raise ValueError("alert_after must be at least 1")
        self.notifier = notifier
        self.alert_after = alert_after
        self.remind_seconds = remind_seconds
        self.flap_seconds = flap_seconds
        self.imap_alert_after = imap_alert_after
        self.probe_seconds = probe_seconds
        self.delivery_retry_seconds = delivery_retry_seconds
        self._waiting_query = waiting
        self._clock = clock
        self._streak = 0
        self._streak_since: float | None = None
        self._tier = ""
        self._error = ""
        self._next_probe = 0.0
        self._outages: dict[str, _Outage] = {}
        self._mailboxes: dict[str, _Mailbox] = {}
        self._pending: deque[_Delivery] = deque()
        self._lock = asyncio.Lock()
        self._flushing = False

    # --- triage -----------------------------------------------------------------------------------
    @property
    def triage_paused(self) -> bool:
        """True while a triage incident is open: triage waits, except one probe per ``probe_seconds``."""
        outage = self._outages.get(TRIAGE)
        return outage is not None and outage.open

    async def probe_due(self) -> bool:
        """While paused: True at most once per ``probe_seconds`` (the caller claims that probe).

        False when triage is not paused (nothing to probe: triage runs normally) or the next probe
        is not due yet.
        """
        now = self._clock()
        if not self.triage_paused or now < self._next_probe:
            return False
        self._next_probe = now + self.probe_seconds
        log.info("alert.probe", key=TRIAGE, next_probe_in=self.probe_seconds)
        return True

    def next_probe_in(self) -> float:
        """Seconds until :meth:`probe_due` can say yes again (0 when not paused)."""
        if not self.triage_paused:
            return 0.0
        return max(0.0, self._next_probe - self._clock())

    async def triage_failed(self, *, tier: str, error: str) -> None:
        """Count one transient triage failure on ``tier``; alert at ``alert_after`` in a row."""
        async with self._lock:
            now = self._clock()
            self._confirm_recoveries(now)
            if self._streak == 0:
                self._streak_since = now
            self._streak += 1
            self._tier, self._error = tier, error
            if self._streak >= self.alert_after:
                await self._triage_failing(now)
        await self._flush()

    async def triage_succeeded(self) -> None:
        """A triage call succeeded: reset the count and start (or finish) the recovery of an incident."""
        async with self._lock:
            now = self._clock()
            self._confirm_recoveries(now)
            self._streak, self._streak_since = 0, None
            outage = self._outages.get(TRIAGE)
            if outage is not None and outage.open:
                self._recovering(outage, now, late=await self._waiting())
            self._confirm_recoveries(now)
        await self._flush()

    async def _triage_failing(self, now: float) -> None:
        outage = self._outages.get(TRIAGE)
        if outage is None:
            await self._open_triage(now)
        elif not outage.open:
            self._reopen(outage, now)

    async def _open_triage(self, now: float) -> None:
        since = self._streak_since if self._streak_since is not None else now
        self._outages[TRIAGE] = _Outage(TRIAGE, since)
        self._next_probe = now + self.probe_seconds
        waiting = await self._waiting()
        text = "\n".join([
            "⚠️ <b>Triage is failing</b>",
            *self._triage_facts(since, now, waiting),
            f"Failures in a row: {self._streak}",
            "",
            "Until it recovers the rules tier sorts new mail; the drafts of recruiter mail are pending and "
            f"are written (and announced) when the LLM is back. It is probed every {_duration(self.probe_seconds)}. "
            f"A reminder follows every {_duration(self.remind_seconds)} while it lasts, "
            "and one message when it recovers.",
        ])
        self._queue(TRIAGE, "alert", text)
        log.error("alert.fired", key=TRIAGE, since=_iso(since), failures=self._streak, waiting=waiting,
                  tier=self._tier, error=self._error)

    def _triage_facts(self, since: float, now: float, waiting: int | None) -> list[str]:
        return [
            f"Since: {_utc(since)} ({_duration(now - since)} ago)",
            f"Waiting: {_messages(waiting)}",
            f"Tier: {_esc(self._tier)}",
            f"Last error: {_esc(self._error)}",
        ]

    # --- IMAP -------------------------------------------------------------------------------------
    async def imap_state(self, mailbox: str, *, connected: bool, error: str | None = None) -> None:
        """Record a connection attempt of ``mailbox``'s watcher: ``connected`` or not (with ``error``)."""
        async with self._lock:
            now = self._clock()
            self._confirm_recoveries(now)
            box = self._mailboxes.setdefault(mailbox, _Mailbox())
            if connected:
                self._imap_up(mailbox, box, now)
            else:
                self._imap_down(mailbox, box, now, error)
            self._check_imap(now)
            self._confirm_recoveries(now)
        await self._flush()

    def _imap_up(self, mailbox: str, box: _Mailbox, now: float) -> None:
        box.connected, box.down_since, box.error = True, None, None
        outage = self._outages.get(_imap_key(mailbox))
        if outage is not None and outage.open:
            self._recovering(outage, now, late=None)

    def _imap_down(self, mailbox: str, box: _Mailbox, now: float, error: str | None) -> None:
        if box.down_since is None:
            box.down_since = now
        box.connected = False
        if error:
            box.error = error
        outage = self._outages.get(_imap_key(mailbox))
        if outage is not None and not outage.open:
            self._reopen(outage, now)

    def _check_imap(self, now: float) -> None:
        """Open an incident for each mailbox down for ``imap_alert_after`` seconds without one."""
        for mailbox, box in self._mailboxes.items():
            key = _imap_key(mailbox)
            if box.down_since is None or key in self._outages or now - box.down_since < self.imap_alert_after:
                continue
            self._outages[key] = _Outage(key, box.down_since, mailbox=mailbox)
            text = "\n".join([
                f"⚠️ <b>Mailbox {_esc(mailbox)} cannot connect</b>",
                *_imap_facts(box, now),
                "",
                "New mail there is not fetched; it stays on the server and is picked up when the "
                f"connection is back. A reminder follows every {_duration(self.remind_seconds)} while it "
                "lasts, and one message when it recovers.",
            ])
            self._queue(key, "alert", text)
            log.error("alert.fired", key=key, mailbox=mailbox, since=_iso(box.down_since), error=box.error)

    # --- periodic ---------------------------------------------------------------------------------
    async def tick(self) -> None:
        """Call every few seconds: IMAP alerts, reminders, confirmed recoveries, delivery retries."""
        async with self._lock:
            now = self._clock()
            self._confirm_recoveries(now)
            self._check_imap(now)
            await self._remind(now)
        await self._flush()

    async def _remind(self, now: float) -> None:
        for key, outage in list(self._outages.items()):
            due = outage.told_at is not None and now - outage.told_at >= self.remind_seconds
            if outage.open and due and not self._has_pending(key):
                self._queue(key, "reminder", await self._reminder_text(outage, now))
                log.warning("alert.reminded", key=key, since=_iso(outage.since),
                            outage_seconds=now - outage.since)

    async def _reminder_text(self, outage: _Outage, now: float) -> str:
        if outage.mailbox is None:
            head = "⏰ <b>Triage is still failing</b>"
            facts = self._triage_facts(outage.since, now, await self._waiting())
        else:
            box = self._mailboxes.get(outage.mailbox, _Mailbox())
            head = f"⏰ <b>Mailbox {_esc(outage.mailbox)} still cannot connect</b>"
            facts = _imap_facts(box, now, since=outage.since)
        return "\n".join([f"{head} — for {_duration(now - outage.since)}", *facts])

    # --- recovery ---------------------------------------------------------------------------------
    def _recovering(self, outage: _Outage, now: float, *, late: int | None) -> None:
        outage.recovered_at, outage.late = now, late
        log.info("alert.recovering", key=outage.key, outage_seconds=now - outage.since,
                 confirm_in=self.flap_seconds)
        if not outage.recovery_told:  # the first success tells the owner; a relapse stays silent
            outage.recovery_told = True
            self._queue(outage.key, "recovery", _recovery_text(outage, now))

    def _reopen(self, outage: _Outage, now: float) -> None:
        """The recovery did not hold for ``flap_seconds``: the same incident goes on, silently."""
        log.warning("alert.reopened", key=outage.key, since=_iso(outage.since),
                    recovered_for=now - (outage.recovered_at or now))
        outage.recovered_at, outage.late = None, None
        if outage.key == TRIAGE:
            self._next_probe = now + self.probe_seconds

    def _confirm_recoveries(self, now: float) -> None:
        """Close each incident whose recovery has held for ``flap_seconds`` and queue its message."""
        for key, outage in list(self._outages.items()):
            if outage.recovered_at is None or now - outage.recovered_at < self.flap_seconds:
                continue
            del self._outages[key]
            log.info("alert.recovered", key=key, since=_iso(outage.since), recovered=_iso(outage.recovered_at),
                     outage_seconds=outage.recovered_at - outage.since, late=outage.late)

    # --- delivery ---------------------------------------------------------------------------------
    def _queue(self, key: str, kind: str, text: str) -> None:
        self._pending.append(_Delivery(key, kind, text))

    def _has_pending(self, key: str) -> bool:
        return any(item.key == key for item in self._pending)

    async def _flush(self) -> None:
        """Send queued messages in order; stop at the first one that must wait."""
        if self._flushing:  # another task is sending; it also sends what was queued meanwhile
            return
        self._flushing = True
        try:
            while self._pending and self._pending[0].not_before <= self._clock():
                if not await self._deliver(self._pending[0]):
                    return
                self._pending.popleft()
        finally:
            self._flushing = False

    async def _deliver(self, item: _Delivery) -> bool:
        """Try to send ``item``: True when done with it (sent or dropped), False to keep it queued."""
        try:
            ref = await self.notifier.send_text(item.text)
        except TransientError as exc:
            self._postpone(item, exc, exc.retry_after)
            return False
        except PermanentError as exc:
            log.error("alert.delivery_failed", key=item.key, kind=item.kind, text=html_to_plain(item.text),
                      error=str(exc), error_class=type(exc).__name__, dropped=True)
            return True
        except Exception as exc:  # the alert path never raises: an unexpected error waits like an outage
            self._postpone(item, exc, None)
            return False
        self._delivered(item, ref)
        return True

    def _postpone(self, item: _Delivery, exc: Exception, retry_after: float | None) -> None:
        item.failures += 1
        delay = retry_after if retry_after is not None else min(
            MAX_DELIVERY_RETRY_SECONDS, self.delivery_retry_seconds * 2 ** (item.failures - 1))
        item.not_before = self._clock() + delay
        log.error("alert.delivery_failed", key=item.key, kind=item.kind, text=html_to_plain(item.text),
                  error=str(exc), error_class=type(exc).__name__, attempt=item.failures, retry_in=delay)

    def _delivered(self, item: _Delivery, ref: str) -> None:
        outage = self._outages.get(item.key)
        if outage is not None and item.kind in ("alert", "reminder"):
            outage.told_at = self._clock()
        log.info("alert.delivered", key=item.key, kind=item.kind, ref=ref, failed_attempts=item.failures)

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
        """The current state for /readyz and metrics; times are Unix seconds (or None)."""
        triage = self._outages.get(TRIAGE)
        return {
            "consecutive_failures": self._streak,
            "failing_since": self._streak_since,
            "triage_paused": self.triage_paused,
            "incident_since": triage.since if triage is not None else None,
            "recovering_since": triage.recovered_at if triage is not None else None,
            "last_error": self._error or None,
            "tier": self._tier or None,
            "pending_deliveries": len(self._pending),
            "imap": {name: self._imap_snapshot(name, box) for name, box in self._mailboxes.items()},
        }

    def _imap_snapshot(self, mailbox: str, box: _Mailbox) -> dict[str, Any]:
        outage = self._outages.get(_imap_key(mailbox))
        return {
            "connected": box.connected,
            "down_since": box.down_since,
            "error": box.error,
            "incident_open": outage is not None and outage.open,
        }


def _imap_key(mailbox: str) -> str:
    return f"imap:{mailbox}"


def _imap_facts(box: _Mailbox, now: float, *, since: float | None = None) -> list[str]:
    start = since if since is not None else (box.down_since if box.down_since is not None else now)
    return [
        f"Since: {_utc(start)} ({_duration(now - start)} ago)",
        f"Last error: {_esc(box.error or 'unknown')}",
    ]


def _recovery_text(outage: _Outage, recovered_at: float) -> str:
    span = f"{_utc(outage.since)} to {_utc(recovered_at)}"
    if outage.mailbox is None:
        return "\n".join([
            f"✅ <b>Triage recovered</b> after {_duration(recovered_at - outage.since)}",
            f"Failing from {span}.",
            f"Processed late: {_messages(outage.late)} that waited during the outage.",
        ])
    return "\n".join([
        f"✅ <b>Mailbox {_esc(outage.mailbox)} is connected again</b> after "
        f"{_duration(recovered_at - outage.since)}",
        f"Down from {span}.",
    ])


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
