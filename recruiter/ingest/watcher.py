"""One IMAP IDLE watcher per mailbox: catch up from the checkpoint, store, IDLE, repeat.

The watcher never sets \\Seen (BODY.PEEK[] only). Every message is stored, and the mailbox's
checkpoint advanced in the same transaction, before anything else happens to it. aioimaplib does
not raise on a lost connection, so BYE, `conn_lost_cb` and a silent server all end the session,
and the next session reconnects with backoff and catches up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, timedelta
from typing import Any

import aioimaplib
import structlog

from recruiter.backoff import Backoff
from recruiter.budget import Budget
from recruiter.errors import ConnectionLost, RecruiterError, TransientError
from recruiter.ingest.describe import describe_within, store_new
from recruiter.mail import imap
from recruiter.mail.parse import parse_headers
from recruiter.settings import MailboxSettings
from recruiter.store.locks import MailboxLock
from recruiter.store.repo import Store
from recruiter.store.safe import safe_key

log = structlog.get_logger()
# UIDs per FETCH. aioimaplib answers a FETCH by copying the rest of its read buffer for each response
# line it takes off; with dozens of small mails in one read those copies pile up (~15 MB seen at 50).
FETCH_BATCH = 16
FETCH_BYTES = 8 * 1024 * 1024  # a batch holds at most this much raw mail (or one larger message) in memory
# Reconnect attempts after a lost server stay a few seconds apart, so that after an outage of a minute the
# next mail is seen within seconds of the server's return (a login costs the server little).
MAX_BACKOFF = 5.0
RECONNECT = Backoff(1.0, cap=MAX_BACKOFF, jitter=0.2)  # 1 s doubling to 5 s, each 0–20 % longer
RESCAN_MARGIN = timedelta(hours=1)  # INTERNALDATE vs our clock: look a little before the last stored mail
RESCAN_BATCH = 100


class Watcher:
    """Watches one folder of one mailbox. ``run`` only returns when cancelled."""

    def __init__(
        self,
        mb: MailboxSettings,
        store: Store,
        *,
        on_stored: Callable[[], None] = lambda: None,
        on_state: Callable[[str, bool, str | None], Awaitable[None]] | None = None,
        on_store: Callable[[str | None], Awaitable[None]] | None = None,
        lock_check_seconds: float = 10.0,
        timeout: float = 30.0,
        renew_seconds: float = 25 * 60,
        standby_poll: float = 5.0,
        budget: Budget | None = None,
    ) -> None:
        self.budget = budget  # mail is read there, under the CPU budget of one message
        self.mb = mb
        self.store = store
        self.on_stored = on_stored
        self.on_state = on_state
        self.on_store = on_store  # the store took a write (None) or failed (the error)
        self.lock_check_seconds = lock_check_seconds
        self.timeout = timeout
        self.renew_seconds = renew_seconds
        self.connected = False
        self.last_heard: float | None = None  # monotonic time of the last line from the server
        self.last_error: str | None = None
        self.sessions = 0
        self.standby = False
        self.standby_poll = standby_poll
        self._uidvalidity = 0
        # The checkpoint's UID as this session last wrote it: the watcher holds the mailbox's lock, so
        # nobody else moves it; read from the store once per session, not before every catch-up.
        self._last: int | None = None
        # For the stalled-mailbox check (see ``stalled``): the highest UID the server has shown, the
        # checkpoint as last known, when it last moved or was level with the server, and what failed.
        self.server_top: int | None = None
        self.checkpoint_uid: int | None = None
        self.progress_at = time.monotonic()
        self.failing_uid: int | None = None
        self.error_class: str | None = None
        self.lock_lost = False
        # Drafts/Sent that could not be found, checked once at the first connection and said once: the
        # mailbox is not ready until the owner names the folder (IMAP_<NAME>_DRAFTS / _SENT) and restarts.
        self.folders_missing: list[str] | None = None
        self.log = log.bind(mailbox=mb.name)

    def stalled(self, now: float, after: float) -> tuple[int, str] | None:
        """(first UID not stored, error class) when the server has shown UIDs above the checkpoint and the
        checkpoint has not moved for ``after`` seconds — whatever the reason; else None."""
        if self.server_top is None or self.checkpoint_uid is None or self.server_top <= self.checkpoint_uid:
            return None
        if now - self.progress_at < after:
            return None
        uid = self.failing_uid if self.failing_uid is not None else self.checkpoint_uid + 1
        return uid, self.error_class or "unknown"

    def _progress(self, checkpoint_uid: int) -> None:
        """The checkpoint is at ``checkpoint_uid`` now (the store says so)."""
        if self.checkpoint_uid is None or checkpoint_uid > self.checkpoint_uid:
            self.progress_at = time.monotonic()
            self.failing_uid = None
        self.checkpoint_uid = checkpoint_uid

    def _saw_top(self, uid: int) -> None:
        if self.server_top is None or uid > self.server_top:
            self.server_top = uid
        if self.checkpoint_uid is not None and self.server_top <= self.checkpoint_uid:
            self.progress_at = time.monotonic()  # level with the server: nothing is waiting

    async def run(self) -> None:
        """Connect, catch up and IDLE forever; reconnect with backoff on any failure."""
        waits = RECONNECT.waits()
        while True:
            started = time.monotonic()
            lock = None
            imap_fault = True
            try:
                lock = await self.store.lock_mailbox(self.mb.name)
                if lock is None:
                    await self._stand_by()
                    continue
                self.standby = False
                await self._session(lock)
            except RecruiterError as exc:
                self.last_error = str(exc)
                self.error_class = type(exc).__name__
                # The store failed ("db") or one mail cannot be stored ("ingest"): not the IMAP server's fault.
                imap_fault = getattr(exc, "dependency", "") not in ("db", "ingest")
                self.log.warning("imap.disconnected", error=str(exc))
                if getattr(exc, "dependency", "") == "db":
                    await self._store_health(str(exc))
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.error_class = type(exc).__name__
                self.log.exception("imap.session_crashed")
            finally:
                if lock is not None:
                    await lock.release()
            self.connected = False
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError  # an error while closing must not swallow our cancellation
            if imap_fault:
                await self._report(False)
            if time.monotonic() - started > 2 * MAX_BACKOFF:
                waits.reset()  # the session lasted: this is a new outage, not the same one
            delay = waits.next()
            self.log.info("imap.reconnect_wait", seconds=round(delay, 2))
            await asyncio.sleep(delay)

    async def _missing_folders(self, client: aioimaplib.IMAP4) -> list[str]:
        """What is missing of Drafts and Sent (by SPECIAL-USE, else the usual names), each said once."""
        missing = []
        for flag, configured in (("\\Drafts", self.mb.drafts), ("\\Sent", self.mb.sent)):
            if configured:
                continue
            if await imap.find_folder(client, self.mb.name, flag, None) is None:
                error = imap.missing_folder(self.mb.name, flag)
                self.log.error("imap.folder_missing", flag=flag, error=str(error))
                missing.append(str(error))
        return missing

    async def _stand_by(self) -> None:
        """Another replica watches this mailbox: wait and try again (it takes over if that one dies)."""
        if not self.standby:
            self.log.info("imap.standby")
        self.standby = True
        self._heard()  # a standby is healthy: it has nothing to hear
        await asyncio.sleep(self.standby_poll)

    async def _report(self, connected: bool) -> None:
        if self.on_state is not None:
            try:
                await self.on_state(self.mb.name, connected, None if connected else self.last_error)
            except Exception:
                self.log.exception("imap.report_failed")  # reporting must never stop the watcher

    def _heard(self) -> None:
        self.last_heard = time.monotonic()

    async def _store_health(self, error: str | None) -> None:
        if self.on_store is not None:
            try:
                await self.on_store(error)
            except Exception:
                self.log.exception("imap.report_failed")

    async def _watch_lock(self, lock: MailboxLock, lost: asyncio.Event) -> None:
        """End the session when the connection holding the watcher lock dies (a fail-over, a terminated
        backend): another replica may hold the lock by then, and a watcher without it must not go on."""
        while not lost.is_set():
            await asyncio.sleep(self.lock_check_seconds)
            if not await lock.alive():
                self.log.warning("imap.lock_lost", note="the database connection holding the watcher lock died")
                self.lock_lost = True
                lost.set()
                return

    async def _session(self, lock: MailboxLock) -> None:
        lost = asyncio.Event()

        def on_lost(_exc: Exception | None) -> None:
            lost.set()

        client = await imap.connect(self.mb, timeout=self.timeout, conn_lost=on_lost)
        polite = True
        self.lock_lost = False
        watchdog = asyncio.create_task(self._watch_lock(lock, lost)) if lock.connection is not None else None
        try:
            with imap.guard(self.mb.name, "session"):
                selected = await imap.select(client, self.mb.name, self.mb.folder)
                self._heard()
                self.connected = True
                self.sessions += 1
                self._uidvalidity = selected.uidvalidity
                self._last = None
                if selected.uidnext:
                    self._saw_top(selected.uidnext - 1)
                self.log.info("imap.connected", folder=self.mb.folder, uidvalidity=selected.uidvalidity)
                if self.folders_missing is None:
                    self.folders_missing = await self._missing_folders(client)
                await self._catch_up_fully(client, selected.uidnext)
                await self._report(True)
                while True:
                    if await self._idle_once(client, lost):
                        await self._catch_up_fully(client, None)
                    if not await lock.alive():
                        raise ConnectionLost(f"IMAP {self.mb.name}: lost the watcher lock (database connection)",
                                             dependency="db")
        except ConnectionLost as exc:
            polite = False  # a LOGOUT now would only wait for its timeout
            if self.lock_lost:
                raise ConnectionLost(f"IMAP {self.mb.name}: lost the watcher lock (database connection)",
                                     dependency="db") from exc
            raise
        finally:
            if watchdog is not None:
                watchdog.cancel()
            self.connected = False
            await imap.close(client, polite=polite and not lost.is_set() and not self.lock_lost)

    async def _idle_once(self, client: aioimaplib.IMAP4, lost: asyncio.Event) -> bool:
        """One IDLE round; True when new mail was announced (or the round was renewed)."""
        idle = await self._start_idle(client, lost)
        announced = False
        try:
            while client.has_pending_idle() and not announced:
                push = await self._wait_push(client, lost)
                self._heard()
                if push == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    announced = True  # renewal: also a cheap catch-up in case a push was missed
                    break
                for line in push:
                    text = bytes(line)
                    if text.startswith(b"BYE") or b"* BYE" in text:
                        raise ConnectionLost(f"IMAP {self.mb.name}: server said {text[:80]!r}")
                    if text.endswith(b"EXISTS"):
                        announced = True
        finally:
            if client.has_pending_idle():
                client.idle_done()
        await asyncio.wait_for(idle, self.timeout)
        return announced

    async def _start_idle(self, client: aioimaplib.IMAP4, lost: asyncio.Event) -> asyncio.Future[Any]:
        """Send IDLE and wait for the server's go-ahead, at most ``timeout`` seconds.

        aioimaplib's ``idle_start`` waits for the continuation without a time limit: a connection that
        died during the catch-up (or a server that never answers) would hold the watcher there forever,
        connected in name, hearing nothing and never reconnecting. (Given up, it is cancelled: the session
        ends, its client is closed, IDLE and all.)"""
        idle: asyncio.Future[Any] = await self._unless_lost(  # an IDLE refusal raises (the guard makes it ImapError)
            client.idle_start(timeout=self.renew_seconds), lost, self.timeout,
            f"no answer to IDLE within {self.timeout:.0f}s")
        return idle

    async def _wait_push(self, client: aioimaplib.IMAP4, lost: asyncio.Event) -> Any:
        """The next server push; raises ConnectionLost on connection loss or a silent server."""
        queue: asyncio.Queue[Any] = client.protocol.idle_queue
        silence = self.renew_seconds + self.timeout
        return await self._unless_lost(queue.get(), lost, silence, f"server silent for {silence:.0f}s")

    async def _unless_lost(self, step: Awaitable[Any], lost: asyncio.Event, timeout: float, silent: str) -> Any:
        """``step``'s result; ConnectionLost when the connection is lost first or ``timeout`` passes (then
        ``silent`` says why). The step is cancelled unless it finished."""
        task = asyncio.ensure_future(step)
        gone = asyncio.ensure_future(lost.wait())
        try:
            done, _ = await asyncio.wait({task, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (task, gone):
                pending.cancel()
        if task in done:
            return task.result()
        if gone in done:
            raise ConnectionLost(f"IMAP {self.mb.name}: connection lost")
        raise ConnectionLost(f"IMAP {self.mb.name}: {silent}")

    async def _catch_up_fully(self, client: aioimaplib.IMAP4, uidnext: int | None) -> None:
        """Catch up until a round finds nothing new and the server did not say the folder grew meanwhile.

        Mail that arrives during a catch-up is announced in that catch-up's own answers (an untagged
        EXISTS after a SEARCH or FETCH), not again in the next IDLE: without another round it would
        wait for the IDLE renewal."""
        while True:
            grew = imap.growth(client)
            found = await self._catch_up(client, uidnext)
            uidnext = None
            if not found and imap.growth(client) == grew:
                return

    async def _catch_up(self, client: aioimaplib.IMAP4, uidnext: int | None) -> int:
        """Store every message above the checkpoint (first start: only mail from now on); returns how
        many new UIDs were found."""
        if self._last is not None:
            return await self._fetch_new(client, await self._uids_above(client, self._last))
        checkpoint = await self.store.checkpoint(self.mb.name)
        if checkpoint is None:
            last = await self._top(client, uidnext)
            await self.store.set_checkpoint(self.mb.name, self._uidvalidity, last)
            self._last = last
            self._progress(last)
            self.log.info("imap.first_start", last_uid=last)
            return 0
        validity, last = checkpoint
        if validity != self._uidvalidity:
            last = await self._top(client, uidnext)
            await self._rescan(client, validity, last)
            await self.store.set_checkpoint(self.mb.name, self._uidvalidity, last)
            self._last = last
            self._progress(last)
            return 0
        self._last = last
        self._progress(last)
        return await self._fetch_new(client, await self._uids_above(client, last))

    async def _rescan(self, client: aioimaplib.IMAP4, old_validity: int, top: int) -> None:
        """After a UIDVALIDITY change the old UIDs mean nothing: compare the folder with the store and
        store what is missing, once. Every message whose INTERNALDATE is at or after the last stored mail
        of this mailbox (read or unread; an hour's margin for clocks) is identified by its key from a
        header-only FETCH; what the store lacks is fetched whole and stored. The checkpoint is not moved
        here: the caller writes the new UIDVALIDITY's only when the re-scan is complete, so a service that
        dies half-way re-scans on its next start (and finds what it stored by key)."""
        latest = await self.store.last_received(self.mb.name)
        self.log.warning("imap.uidvalidity_changed", old=old_validity, new=self._uidvalidity, last_uid=top,
                         rescan_from=latest.isoformat() if latest else None)
        if latest is None:
            return  # nothing stored from this mailbox: as on a first start, only mail from now on
        start = latest - RESCAN_MARGIN
        months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
        day = (start - timedelta(days=1)).astimezone(UTC)  # SEARCH SINCE takes a date, in the server's zone
        uids = [u for u in await imap.uid_search(client, self.mb.name, "SINCE",
                                                 f"{day.day:02d}-{months[day.month - 1]}-{day.year}") if u <= top]
        stored = 0
        for begin in range(0, len(uids), RESCAN_BATCH):
            heads = await imap.fetch_headers(client, self.mb.name, uids[begin:begin + RESCAN_BATCH])
            self._heard()
            keys: dict[int, str | None] = {}
            for uid, head in heads.items():
                if head.internaldate is not None and head.internaldate < start:
                    continue
                keys[uid] = await self._header_key(head.header)
            held = await self.store.keys_stored([k for k in keys.values() if k])
            missing = [uid for uid, key in sorted(keys.items()) if key is None or key not in held]
            for chunk_start in range(0, len(missing), FETCH_BATCH):
                stored += await self._store_uids(client, missing[chunk_start:chunk_start + FETCH_BATCH],
                                                 checkpoint=False)
        self.log.info("imap.rescanned", candidates=len(uids), stored=stored)

    async def _top(self, client: aioimaplib.IMAP4, uidnext: int | None) -> int:
        """The highest UID in the folder now (from SELECT's UIDNEXT when the server gave one)."""
        return (uidnext - 1) if uidnext else max(await imap.uid_search(client, self.mb.name, "ALL") or [0])

    async def _uids_above(self, client: aioimaplib.IMAP4, last: int) -> list[int]:
        # "n:*" always matches the highest UID, even one below n: filter.
        return [u for u in await imap.uid_search(client, self.mb.name, "UID", f"{last + 1}:*") if u > last]

    async def _fetch_new(self, client: aioimaplib.IMAP4, uids: list[int]) -> int:
        """Fetch and store ``uids`` in batches; returns how many there were."""
        for start in range(0, len(uids), FETCH_BATCH):
            for chunk in await self._by_size(client, uids[start : start + FETCH_BATCH]):
                await self._store_batch(client, chunk)
        return len(uids)

    async def _by_size(self, client: aioimaplib.IMAP4, uids: list[int]) -> list[list[int]]:
        """Split a batch so that each part holds at most FETCH_BYTES of raw mail (one mail at least)."""
        if len(uids) < 2:
            return [uids]
        sizes = await imap.fetch_sizes(client, self.mb.name, uids)
        chunks: list[list[int]] = [[]]
        total = 0
        for uid in uids:
            size = sizes.get(uid, 0)
            if chunks[-1] and total + size > FETCH_BYTES:
                chunks.append([])
                total = 0
            chunks[-1].append(uid)
            total += size
        return chunks

    async def _store_batch(self, client: aioimaplib.IMAP4, uids: list[int]) -> None:
        stored = await self._store_uids(client, uids, checkpoint=True)
        if self._last is not None:
            self._last = max(self._last, *uids)  # each mail moved the checkpoint with it
            self._progress(self._last)
        if stored:
            self.on_stored()

    async def _store_uids(self, client: aioimaplib.IMAP4, uids: list[int], *, checkpoint: bool) -> int:
        """Fetch and store ``uids``; returns how many were new. A mail the store refuses is quarantined
        (recruiter.ingest.describe.store_new); only an outage of the store raises, and the checkpoint
        stays before that mail."""
        self._saw_top(max(uids))
        raws = await imap.fetch_raw(client, self.mb.name, uids)
        self._heard()
        stored = 0
        for uid in uids:
            raw = raws.get(uid)
            if raw is None:  # expunged between SEARCH and FETCH
                continue
            self.failing_uid = uid
            new = await describe_within(self.budget, raw, mailbox=self.mb.name, folder=self.mb.folder,
                                        uidvalidity=self._uidvalidity, uid=uid)
            message_id = await store_new(self.store, new, checkpoint=checkpoint)
            self.log.info("mail.received" if message_id else "mail.duplicate", uid=uid, key=new.key,
                          message=message_id, quarantined=new.quarantine is not None or None)
            stored += message_id is not None
        self.failing_uid = None
        if stored:
            await self._store_health(None)
        missing = [u for u in uids if u not in raws]
        if missing and checkpoint:
            await self.store.set_checkpoint(self.mb.name, self._uidvalidity, max(uids))
        return stored

    async def _header_key(self, header: bytes) -> str | None:
        """The store key of a mail from its Message-ID header alone, or None when it has none or it cannot
        be read within the CPU budget (then it is fetched whole and ``describe_within`` decides)."""
        try:
            if self.budget is None:
                return await asyncio.to_thread(header_key, header)
            return await self.budget.run(header_key, header)
        except TransientError:
            raise
        except Exception:
            return None


def header_key(header: bytes) -> str | None:
    """The store key of a mail from its Message-ID header alone, or None when it has none (then only its
    raw bytes tell its key)."""
    try:
        mail = parse_headers(header if header.endswith(b"\r\n\r\n") else header + b"\r\n")
    except Exception:  # unreadable: fetch it whole and let describe decide
        return None
    return safe_key(mail.key) if mail.message_id else None
