"""The repository: all SQL lives here. The orchestrator asks for work, results and side effects."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import traceback as tb
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, delete, event, exists, func, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import undefer

from recruiter.errors import LeaseLost
from recruiter.log import scrub
from recruiter.store.alerts import AlertStore
from recruiter.store.faults import translated
from recruiter.store.models import (
    DEAD,
    DONE,
    FINISHED,
    LIVE,
    PENDING,
    REPLAY_PREFIX,
    RETRY_WAIT,
    SKIPPED,
    Attempt,
    MailboxCheckpoint,
    Message,
    SideEffect,
    UTCDateTime,
    aware,
    utcnow,
)
from recruiter.store.safe import safe_key, safe_text, safe_value

DUE_STATES = (PENDING, RETRY_WAIT)


@dataclass(frozen=True)
class NewMessage:
    """What the ingest side knows about a mail when it stores it."""

    key: str
    mailbox: str
    raw: bytes
    message_id: str | None = None
    subject: str = ""
    from_addr: str = ""
    reply_to: str | None = None
    folder: str | None = None
    uidvalidity: int | None = None
    uid: int | None = None
    source: str | None = None
    origin: str = LIVE  # or "replay:<run id>" (see recruiter.ingest.replay)
    skip_reason: str | None = None  # already prefiltered (replay batches): stored as skipped, never claimed
    # Quarantined: the normal path failed for a reason about this mail (it cannot be parsed, the store
    # refused its values). Stored dead with this reason and ``detail`` (a traceback), never claimed.
    quarantine: str | None = None
    detail: str | None = None
    dead_reason: str = "quarantined"  # the DLQ's reason for a quarantined mail: unparseable, store_rejected, …
    error_class: str = "Quarantined"  # the class of the error that quarantined it


class MailboxLock:
    """A held watcher lock: a session-level advisory lock on a connection drawn from the engine's pool.

    ``release`` must unlock on the server: closing a pooled connection only returns it to the pool, and the
    lock stays with it, so the watcher's next session (handed another connection) would find its own
    mailbox locked and stand by with no one watching it."""

    def __init__(self, connection: AsyncConnection | None) -> None:
        self.connection = connection

    async def alive(self) -> bool:
        """True while the connection holding the lock still answers."""
        if self.connection is None:
            return True
        try:
            await self.connection.scalar(text("SELECT 1"))
            await self.connection.commit()
            return True
        except (SQLAlchemyError, OSError):
            return False

    async def release(self) -> None:
        """Free the lock on the server and give the connection back; never raises (a cancellation passes)."""
        connection, self.connection = self.connection, None
        if connection is None:
            return
        try:
            await connection.execute(text("SELECT pg_advisory_unlock_all()"))
            await connection.commit()
        except Exception:
            await _discard(connection)  # dead or invalidated: its locks go with its server session
        except BaseException:
            await _discard(connection)  # cancelled mid-unlock: never pool a connection that may hold it
            raise
        else:
            with contextlib.suppress(Exception):
                await connection.close()


async def _discard(connection: AsyncConnection) -> None:
    """Close ``connection`` for real instead of pooling it: the server ends its session and its locks."""
    with contextlib.suppress(Exception):
        await connection.invalidate()
    with contextlib.suppress(Exception):
        await connection.close()


def make_engine(url: str, *, busy_timeout: float = 30.0) -> AsyncEngine:
    """An async engine; SQLite gets WAL, a busy timeout (another process holding the write lock longer
    than that is an outage: DependencyUnavailable) and foreign keys."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": busy_timeout})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cursor.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


class Store:
    """The one object that reads and writes the database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer; serialise our own writers instead of meeting "database is locked".
        self._write_lock = asyncio.Lock() if self.sqlite else None
        self._statements: dict[Any, Any] = {}
        self.alerts = AlertStore(self)

    def _upsert(self, target: Any) -> Any:
        """The dialect's INSERT (with ON CONFLICT) for ``target``; only the dialect in use is imported."""
        if self.sqlite:
            from sqlalchemy.dialects import sqlite as dialect
        else:
            from sqlalchemy.dialects import postgresql as dialect  # type: ignore[no-redef]
        return dialect.insert(target)

    @classmethod
    def from_url(cls, url: str, *, busy_timeout: float = 30.0) -> Store:
        """A Store on a new engine for ``url``."""
        return cls(make_engine(url, busy_timeout=busy_timeout))

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[None]:
        """Around every write transaction: our own writers one at a time on SQLite; database errors
        translated (an outage: DependencyUnavailable; values refused: StoreRejected)."""
        with translated():
            if self._write_lock is None:
                yield
            else:
                async with self._write_lock:
                    yield

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncSession]:
        """A write transaction (ORM session)."""
        async with self._writing(), self._sessions.begin() as session:
            yield session

    @asynccontextmanager
    async def _core(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction on a bare connection, for the worker's hot path: Core statements cost
        about half of an ORM session's flush, and a message passes through several of them."""
        async with self._writing(), self.engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncSession]:
        """A read-only session with the same error translation as ``_tx``."""
        with translated():
            async with self._sessions() as session:
                yield session

    async def lock_mailbox(self, mailbox: str) -> MailboxLock | None:
        """Try to become the one watcher of ``mailbox`` among replicas (a PostgreSQL advisory lock held
        by a dedicated connection). Returns the held lock, or None when another replica holds it.
        SQLite has a single process by design: the lock is always granted."""
        if self.sqlite:
            return MailboxLock(None)
        key = int.from_bytes(hashlib.sha256(f"recruiter-responder:watcher:{mailbox}".encode()).digest()[:8],
                             "big", signed=True)
        with translated():
            connection = await self.engine.connect()
            try:
                got = await connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
                await connection.commit()  # the session-level lock outlives the transaction
            except BaseException:
                await connection.close()
                raise
        if got:
            return MailboxLock(connection)
        await connection.close()
        return None

    async def ping(self) -> None:
        """Raise DependencyUnavailable unless the database answers."""
        async with self._tx() as session:
            await session.execute(select(1))

    async def ping_write(self) -> None:
        """Raise DependencyUnavailable unless the database takes a write: an UPDATE of no row still needs
        the write lock on SQLite and is refused in a read-only transaction on PostgreSQL."""
        async with self._core() as connection:
            await connection.execute(text("UPDATE mailbox_checkpoints SET last_uid = last_uid WHERE 1 = 0"))

    # ---- ingest -------------------------------------------------------------------------------

    async def add_message(self, new: NewMessage, *, checkpoint: bool = True) -> int | None:
        """Store a mail unless its key is already stored. Returns the new id, or None for a duplicate.

        When the mail came from IMAP (and ``checkpoint``), the mailbox checkpoint advances in the same
        transaction. A quarantined mail is stored dead, with its reason as a failed attempt.
        Raises DependencyUnavailable when the store is down, StoreRejected when it refuses the values.
        """
        stmt = self._insert_new(new)
        async with self._tx() as session:
            result = await session.execute(stmt.returning(Message.id))
            new_id = result.scalar_one_or_none()
            if new_id is not None and new.quarantine is not None:
                session.add(Attempt(message_id=new_id, stage="ingest", error_class=safe_text(new.error_class, 120),
                                    error=safe_text(scrub(new.quarantine), 2000),
                                    traceback=safe_text(scrub(new.detail or ""), 4000) or None))
            if checkpoint and new.uidvalidity is not None and new.uid is not None:
                await self._advance_checkpoint(session, new.mailbox, new.uidvalidity, new.uid)
            return new_id

    def _insert_new(self, new: NewMessage) -> Any:
        """INSERT … ON CONFLICT (key) DO NOTHING for one new message."""
        return self._insert_stmt().values(**_new_values(new))

    def _insert_stmt(self) -> Any:
        return self._upsert(Message).on_conflict_do_nothing(index_elements=["key"])

    async def has_key(self, key: str) -> bool:
        """True when a mail with this key is stored."""
        async with self._read() as session:
            found = await session.execute(select(Message.id).where(Message.key == key))
            return found.first() is not None

    async def last_received(self, mailbox: str) -> datetime | None:
        """When the newest stored mail of ``mailbox`` was stored (any state); without one, when its checkpoint
        was last written (the watcher looked then); None before its first start."""
        async with self._read() as session:
            latest = await session.scalar(select(func.max(Message.received_at)).where(Message.mailbox == mailbox))
            if latest is None:
                latest = await session.scalar(select(MailboxCheckpoint.updated_at)
                                              .where(MailboxCheckpoint.mailbox == mailbox))
        return None if latest is None else _aware(latest)

    async def checkpoint(self, mailbox: str) -> tuple[int, int] | None:
        """(uidvalidity, last_uid) of a mailbox, or None before its first start."""
        async with self._read() as session:
            row = await session.get(MailboxCheckpoint, mailbox)
            return None if row is None else (row.uidvalidity, row.last_uid)

    async def set_checkpoint(self, mailbox: str, uidvalidity: int, last_uid: int) -> None:
        """Set the checkpoint outright (first start, or a new UIDVALIDITY)."""
        async with self._tx() as session:
            row = await session.get(MailboxCheckpoint, mailbox)
            if row is None:
                session.add(MailboxCheckpoint(mailbox=mailbox, uidvalidity=uidvalidity, last_uid=last_uid))
            else:
                row.uidvalidity, row.last_uid = uidvalidity, last_uid

    async def _advance_checkpoint(self, session: AsyncSession, mailbox: str, uidvalidity: int, uid: int) -> None:
        row = await session.get(MailboxCheckpoint, mailbox)
        if row is None:
            session.add(MailboxCheckpoint(mailbox=mailbox, uidvalidity=uidvalidity, last_uid=uid))
        elif row.uidvalidity != uidvalidity or uid > row.last_uid:
            row.uidvalidity, row.last_uid = uidvalidity, max(uid, row.last_uid if row.uidvalidity == uidvalidity else 0)

    # ---- work ---------------------------------------------------------------------------------

    async def claim_due(self, owner: str, *, limit: int, lease_seconds: float) -> list[int]:
        """Lease up to ``limit`` due messages to ``owner``; returns their ids."""
        return [row.id for row in await self.claim(owner, limit=limit, lease_seconds=lease_seconds, with_raw=False)]

    async def claim(self, owner: str, *, limit: int, lease_seconds: float, with_raw: bool = True) -> list[Message]:
        """Lease up to ``limit`` due messages to ``owner`` and load them (raw bytes too), in one transaction."""
        now = utcnow()
        due, lease, load = self._statement(("claim", with_raw), lambda: self._claim_statements(with_raw))
        async with self._tx() as session:
            ids = list((await session.execute(due, {"now": now, "limit": limit})).scalars())
            if not ids:
                return []
            await session.execute(lease, {"ids": ids, "owner": owner,
                                          "until": now + timedelta(seconds=lease_seconds)})
            return list((await session.execute(load, {"ids": ids})).scalars())

    def _claim_statements(self, with_raw: bool) -> tuple[Any, Any, Any]:
        """The due messages' ids (locked, skipping locked ones, on PostgreSQL); their lease; their rows."""
        due: Select[int] = (
            select(Message.id)
            .where(Message.state.in_(DUE_STATES), Message.next_attempt_at <= bindparam("now", type_=UTCDateTime()))
            .where(Message.lease_owner.is_(None))  # expired leases come back through reap_expired
            .order_by(Message.next_attempt_at, Message.id)
            .limit(bindparam("limit"))
        )
        if not self.sqlite:
            due = due.with_for_update(skip_locked=True)
        table = cast(Table, Message.__table__)
        lease = (update(table).where(table.c.id.in_(bindparam("ids", expanding=True)))
                 .values(lease_owner=bindparam("owner"), lease_expires_at=bindparam("until", type_=UTCDateTime())))
        load = (select(Message).where(Message.id.in_(bindparam("ids", expanding=True)))
                .order_by(Message.next_attempt_at, Message.id))
        if with_raw:
            load = load.options(undefer(Message.raw))
        return due, lease, load

    async def renew_lease(self, message_id: int, owner: str, lease_seconds: float) -> None:
        """Extend a lease we hold; raises LeaseLost if we no longer hold it."""
        await self.advance(message_id, owner, lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))

    async def release(self, message_id: int, owner: str, *, effects: Sequence[tuple[str, str, str]] = (),
                      **fields: Any) -> None:
        """Give a lease back without counting an attempt (shutdown), keeping the progress in ``fields``
        and ``effects`` (as :meth:`advance`). A lease held by someone else now is left alone."""
        with contextlib.suppress(LeaseLost):
            await self.advance(message_id, owner, effects=effects, **fields, lease_owner=None, lease_expires_at=None)

    async def postpone(self, message_id: int, owner: str, until: datetime, *,
                       effects: Sequence[tuple[str, str, str]] = (), **fields: Any) -> None:
        """Wait for a paused dependency: due again at ``until``; no attempt is counted or recorded.
        ``fields`` and ``effects``: progress made before the pause, kept (as :meth:`advance`)."""
        await self.advance(message_id, owner, effects=effects, **fields, state=RETRY_WAIT, next_attempt_at=until,
                           lease_owner=None, lease_expires_at=None)

    async def count_waiting(self) -> int:
        """Messages not yet in a terminal state."""
        async with self._read() as session:
            return int(await session.scalar(
                select(func.count()).select_from(Message).where(Message.state.in_(DUE_STATES))
            ) or 0)

    async def get(self, message_id: int, *, with_raw: bool = False) -> Message | None:
        """One message row (raw bytes only when asked)."""
        async with self._read() as session:
            query = select(Message).where(Message.id == message_id)
            if with_raw:
                query = query.options(undefer(Message.raw))
            return (await session.execute(query)).scalar_one_or_none()

    async def effect(self, key: str) -> str | None:
        """The recorded reference of a side effect, or None if it never happened."""
        async with self._read() as session:
            found = await session.execute(select(SideEffect.ref).where(SideEffect.key == key))
            return found.scalar_one_or_none()

    async def forget_effect(self, key: str) -> None:
        """Drop a side-effect record (an intent whose action is known not to have happened)."""
        async with self._tx() as session:
            await session.execute(delete(SideEffect).where(SideEffect.key == key))

    async def advance(
        self,
        message_id: int,
        owner: str,
        *,
        effects: Sequence[tuple[str, str, str]] = (),
        **fields: Any,
    ) -> None:
        """Record side effects (key, kind, ref) and move the message on, in one transaction.
        Keys already recorded keep their first record. LeaseLost (nothing written) when ``owner`` no
        longer holds the lease."""
        async with self._core() as connection:
            await self._write_leased(connection, message_id, owner, effects, fields)

    async def _write_leased(self, connection: AsyncConnection, message_id: int, owner: str,
                            effects: Sequence[tuple[str, str, str]], fields: dict[str, Any], *,
                            count_attempt: bool = False) -> None:
        fields.setdefault("updated_at", utcnow())
        result = await connection.execute(
            self._leased_update(tuple(sorted(fields)), count_attempt),
            {"_id": message_id, "_owner": owner, **{f"v_{name}": _column_safe(name, value)
                                                      for name, value in fields.items()}},
        )
        if getattr(result, "rowcount", 1) != 1:
            raise LeaseLost(f"message {message_id} is no longer leased to {owner}")
        if effects:
            now = utcnow()
            unique = {key: (kind, ref) for key, kind, ref in reversed(effects)}  # the first record of a key wins
            await connection.execute(
                self._statement("effects", self._effects_insert),
                [{"key": key, "message_id": message_id, "kind": kind, "ref": safe_text(ref), "created_at": now}
                 for key, (kind, ref) in unique.items()],
            )

    # The worker's statements are built once and reused with new parameters: building and hashing a
    # statement costs more CPU than compiling it (which SQLAlchemy caches anyway).

    def _statement(self, key: Any, build: Callable[[], Any]) -> Any:
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = build()
        return statement

    def _leased_update(self, names: tuple[str, ...], count_attempt: bool) -> Any:
        """UPDATE messages SET <names> [, attempts = attempts + 1] WHERE id = :_id AND lease_owner = :_owner."""
        def build() -> Any:
            table = cast(Table, Message.__table__)
            values: dict[str, Any] = {name: bindparam(f"v_{name}", type_=table.c[name].type) for name in names}
            if count_attempt:
                values["attempts"] = table.c.attempts + 1
            return (update(table).where(table.c.id == bindparam("_id"), table.c.lease_owner == bindparam("_owner"))
                    .values(values))
        return self._statement(("leased", names, count_attempt), build)

    def _effects_insert(self) -> Any:
        return self._upsert(cast(Table, SideEffect.__table__)).on_conflict_do_nothing(index_elements=["key"])

    async def fail(
        self,
        message_id: int,
        owner: str,
        *,
        stage: str,
        exc: BaseException,
        retry_at: datetime | None,
        count_attempt: bool = True,
        reason: str | None = None,
        effects: Sequence[tuple[str, str, str]] = (),
        progress: dict[str, Any] | None = None,
    ) -> None:
        """Record a failed attempt; schedule a retry at ``retry_at`` or dead-letter (with ``reason``) when None.
        ``progress`` (fields) and ``effects``: what the attempt achieved before it failed, kept."""
        # Error texts outlive the process and reach the CLI, the API and Telegram: no secrets in them
        # (a server may echo a key in its error body, which the exception chain then carries).
        trace = safe_text(scrub("".join(tb.format_exception(exc)))[-4000:])
        error = safe_text(scrub(f"{type(exc).__name__}: {exc}")[:2000])
        fields: dict[str, Any] = {
            **(progress or {}),
            "last_error": error,
            "lease_owner": None,
            "lease_expires_at": None,
            "state": DEAD if retry_at is None else RETRY_WAIT,
        }
        if retry_at is not None:
            fields["next_attempt_at"] = retry_at
        else:
            fields["dead_reason"] = (reason or type(exc).__name__)[:64]
            fields["dead_noticed_at"] = None
        async with self._core() as connection:
            await self._write_leased(connection, message_id, owner, effects, fields, count_attempt=count_attempt)
            await connection.execute(self._statement("attempt", _attempt_insert), {
                "message_id": message_id, "stage": stage, "at": utcnow(), "error_class": type(exc).__name__,
                "error": error, "traceback": trace,
            })

    async def reap_expired(self, *, max_lost: int = 3, alive: str | None = None, busy: Collection[int] = (),
                           pause: timedelta = timedelta(0)) -> list[tuple[int, str]]:
        """Return expired leases to the queue, counting an attempt; ``max_lost`` losses make it dead.
        ``alive``: a lease owner known to be at work (the caller itself), ``busy`` the messages it is
        processing: their leases ran out while the database was down and their renewals failed, they are
        renewed, not lost. Its other expired leases are ones it lost track of (a failure it could not
        record during an outage): they are due again at once, without an attempt. ``pause`` × the losses so far:
        how long a reaped message waits before it is due again, so that mail which was merely in flight
        when a worker was killed is not first in line (and in flight) at the next kill, while a message
        that kills its worker still dies ``max_lost`` times, only slower.

        Returns (message id, new state) for each reaped message.
        """
        now = utcnow()
        query = select(Message).where(
            Message.state.in_(DUE_STATES), Message.lease_owner.is_not(None), Message.lease_expires_at < now
        )
        if not self.sqlite:
            query = query.with_for_update(skip_locked=True)
        reaped: list[tuple[int, str]] = []
        async with self._tx() as session:
            for row in list((await session.execute(query)).scalars()):
                if alive is not None and row.lease_owner == alive:
                    if row.id not in busy:
                        row.lease_owner, row.lease_expires_at, row.updated_at = None, None, now
                        row.next_attempt_at = now
                        reaped.append((row.id, row.state))
                    continue
                earlier = await session.scalar(
                    select(func.count()).select_from(Attempt)
                    .where(Attempt.message_id == row.id, Attempt.error_class == "WorkerLost")
                )
                session.add(Attempt(message_id=row.id, stage=row.stage, error_class="WorkerLost",
                                    error=f"lease of {row.lease_owner} expired during {row.stage}", traceback=None))
                row.attempts += 1
                row.lease_owner, row.lease_expires_at, row.updated_at = None, None, now
                row.next_attempt_at = now + pause * ((earlier or 0) + 1)
                if (earlier or 0) + 1 >= max_lost:
                    row.state, row.dead_reason, row.dead_noticed_at = DEAD, "worker_lost", None
                    row.last_error = f"the worker died {max_lost} times while processing this message"
                reaped.append((row.id, row.state))
        return reaped

    # ---- backlog replay and digests -----------------------------------------------------------

    async def add_messages(self, news: Sequence[NewMessage]) -> list[int | None]:
        """Store a batch in one multi-row INSERT; None for each key already stored (or repeated in the
        batch). Unlike ``add_message`` no checkpoint moves: the watcher's place stays its own."""
        if not news:
            return []
        insert = self._upsert(cast(Table, Message.__table__))
        stmt = insert.on_conflict_do_nothing(index_elements=["key"]).returning(Message.id, Message.key)
        async with self._tx() as session:
            connection = await session.connection()
            result = await connection.execute(stmt, [_new_values(new) for new in news])
            ids = {key: message_id for message_id, key in result.all()}
        return [ids.pop(safe_key(new.key), None) for new in news]

    async def stored_uids(self, mailbox: str, folder: str, uidvalidity: int) -> set[int]:
        """UIDs of ``mailbox``'s ``folder`` already stored under this UIDVALIDITY."""
        async with self._read() as session:
            rows = await session.execute(select(Message.uid).where(
                Message.mailbox == mailbox, Message.folder == folder, Message.uidvalidity == uidvalidity,
                Message.uid.is_not(None)))
            return {int(uid) for uid in rows.scalars() if uid is not None}

    async def keys_stored(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` are stored."""
        found: set[str] = set()
        async with self._read() as session:
            for start in range(0, len(keys), 500):
                rows = await session.execute(select(Message.key).where(Message.key.in_(keys[start:start + 500])))
                found.update(rows.scalars())
        return found

    async def adopt_replay(self, origin: str) -> int:
        """Unfinished backlog mail of earlier, interrupted replays joins replay ``origin``; returns how many."""
        async with self._tx() as session:
            result = await session.execute(
                update(Message)
                .where(Message.origin.startswith(REPLAY_PREFIX), Message.origin != origin,
                       Message.state.in_(DUE_STATES))
                .values(origin=origin)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    async def origin_counts(self, origin: str) -> dict[tuple[str, bool | None], int]:
        """How many messages of ``origin`` are in each (state, is_recruiter)."""
        async with self._read() as session:
            rows = await session.execute(
                select(Message.state, Message.is_recruiter, func.count())
                .where(Message.origin == origin).group_by(Message.state, Message.is_recruiter)
            )
            return {(state, recruiter): int(count) for state, recruiter, count in rows.all()}

    async def origin_due(self, origin: str) -> int:
        """Messages of ``origin`` due now or being worked on (not those waiting for a later retry)."""
        async with self._read() as session:
            return int(await session.scalar(
                select(func.count()).select_from(Message).where(
                    Message.origin == origin, Message.state.in_(DUE_STATES),
                    (Message.next_attempt_at <= utcnow()) | Message.lease_owner.is_not(None))
            ) or 0)

    async def replay_unfinished(self) -> int:
        """Backlog mail of any replay not yet in a terminal state."""
        async with self._read() as session:
            return int(await session.scalar(
                select(func.count()).select_from(Message).where(
                    Message.origin.startswith(REPLAY_PREFIX), Message.state.in_(DUE_STATES))
            ) or 0)

    async def digest_owed(self, *, limit: int | None = None) -> list[Message]:
        """Backlog recruiter mail that is done and was not told in a digest yet, oldest first."""
        told = select(SideEffect.id).where(SideEffect.message_id == Message.id, SideEffect.kind == "notify")
        query = (
            select(Message)
            .where(Message.origin.startswith(REPLAY_PREFIX), Message.state == DONE,
                   Message.is_recruiter.is_(True), ~exists(told))
            .order_by(Message.id)
        )
        if limit:
            query = query.limit(limit)
        async with self._read() as session:
            return list((await session.execute(query)).scalars())

    async def effects_of_kind(self, message_ids: Sequence[int], kind: str) -> dict[int, SideEffect]:
        """Each given message's side effect of ``kind`` (its first one), by message id."""
        found: dict[int, SideEffect] = {}
        async with self._read() as session:
            rows = await session.execute(
                select(SideEffect).where(SideEffect.message_id.in_(list(message_ids)), SideEffect.kind == kind)
                .order_by(SideEffect.id)
            )
            for effect in rows.scalars():
                found.setdefault(effect.message_id, effect)
        return found

    async def claim_effects(self, effects: Sequence[tuple[int, str, str, str]]) -> bool:
        """Record every (message id, key, kind, ref) or none: False when any key is already recorded
        (another process is doing the same side effect)."""
        try:
            async with self._tx() as session:
                for message_id, key, kind, ref in effects:
                    session.add(SideEffect(key=key, message_id=message_id, kind=kind, ref=ref))
                await session.flush()
        except IntegrityError:
            return False
        return True

    async def record_effects(self, effects: Sequence[tuple[int, str, str, str]]) -> None:
        """Record (message id, key, kind, ref) side effects in one transaction; keys already recorded stay."""
        async with self._tx() as session:
            keys = [key for _, key, _, _ in effects]
            held = set((await session.execute(select(SideEffect.key).where(SideEffect.key.in_(keys)))).scalars())
            for message_id, key, kind, ref in effects:
                if key not in held:
                    session.add(SideEffect(key=key, message_id=message_id, kind=kind, ref=ref))

    async def forget_effects(self, keys: Sequence[str]) -> None:
        """Drop side-effect records (intents whose action is known not to have happened)."""
        async with self._tx() as session:
            await session.execute(delete(SideEffect).where(SideEffect.key.in_(list(keys))))

    # ---- dead-letter queue --------------------------------------------------------------------

    async def redrive(
        self, ids: Sequence[int] | None, *, stage: str | None = None, dry_run: bool = False
    ) -> list[Message]:
        """Put dead messages (all when ``ids`` is None; only those dead at ``stage`` if given) back in the
        queue at the stage that failed: attempts reset, history kept. Returns the messages chosen."""
        query = select(Message).where(Message.state == DEAD).order_by(Message.id)
        if ids is not None:
            query = query.where(Message.id.in_(list(ids)))
        if stage:
            query = query.where(Message.stage == stage)
        async with self._tx() as session:
            rows = list((await session.execute(query)).scalars())
            if not dry_run:
                now = utcnow()
                for row in rows:
                    row.state, row.attempts, row.next_attempt_at, row.dead_reason = PENDING, 0, now, None
                    row.dead_noticed_at = None
                    row.lease_owner, row.lease_expires_at, row.updated_at = None, None, now
            return rows

    async def purge_dead(self, older_than: timedelta) -> int:
        """Delete dead messages last changed before now − ``older_than``; returns how many."""
        cutoff = utcnow() - older_than
        async with self._tx() as session:
            ids = list((await session.execute(
                select(Message.id).where(Message.state == DEAD, Message.updated_at < cutoff)
            )).scalars())
            if ids:
                await session.execute(delete(Attempt).where(Attempt.message_id.in_(ids)))
                await session.execute(delete(SideEffect).where(SideEffect.message_id.in_(ids)))
                await session.execute(delete(Message).where(Message.id.in_(ids)))
            return len(ids)

    # ---- reading ------------------------------------------------------------------------------

    async def list_messages(
        self, *, state: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Message]:
        """Stored messages, oldest first, without raw bytes."""
        async with self._read() as session:
            query = select(Message).order_by(Message.id)
            if state:
                query = query.where(Message.state == state)
            if limit:
                query = query.limit(limit)
            if offset:
                query = query.offset(offset)
            return list((await session.execute(query)).scalars())

    async def activity(self) -> dict[str, Any]:
        """When mail last arrived per mailbox, and when a message was last triaged (``last_triage``)."""
        async with self._read() as session:
            rows = await session.execute(select(Message.mailbox, func.max(Message.received_at))
                                         .group_by(Message.mailbox))
            last_mail = {name: _aware(at) for name, at in rows.all() if at is not None}
            last_triage = (await session.execute(
                select(func.max(Message.updated_at)).where(Message.triage_tier.is_not(None))
            )).scalar()
        return {"last_mail": last_mail, "last_triage": _aware(last_triage) if last_triage is not None else None}

    async def dlq_stats(self) -> tuple[int, float]:
        """(dead messages, seconds since the oldest of them died; 0 when there is none)."""
        async with self._read() as session:
            count, oldest = (await session.execute(
                select(func.count(), func.min(Message.updated_at)).where(Message.state == DEAD)
            )).one()
        if not count or oldest is None:
            return 0, 0.0
        return int(count), max(0.0, (utcnow() - _aware(oldest)).total_seconds())

    async def dead_by_reason(self) -> dict[str, int]:
        """Dead messages per reason (``unparseable``, ``store_rejected``, ``max_attempts``, …)."""
        async with self._read() as session:
            rows = await session.execute(select(Message.dead_reason, func.count()).where(Message.state == DEAD)
                                         .group_by(Message.dead_reason))
            return {str(reason or "unknown"): int(count) for reason, count in rows.all()}

    async def quarantined_count(self) -> int:
        """Mails stored quarantined at ingest and still dead."""
        async with self._read() as session:
            return int(await session.scalar(
                select(func.count(func.distinct(Attempt.message_id))).join(Message, Message.id == Attempt.message_id)
                .where(Attempt.stage == "ingest", Message.state == DEAD)) or 0)

    async def counts_by_state(self) -> dict[str, int]:
        """How many messages are in each state."""
        async with self._read() as session:
            rows = await session.execute(select(Message.state, func.count()).group_by(Message.state))
            return {state: count for state, count in rows.all()}

    async def effects_for(self, message_id: int) -> list[SideEffect]:
        """Every recorded side effect of one message."""
        async with self._read() as session:
            rows = await session.execute(
                select(SideEffect).where(SideEffect.message_id == message_id).order_by(SideEffect.id)
            )
            return list(rows.scalars())

    async def attempts_for(self, message_id: int) -> list[Attempt]:
        """The failure history of one message."""
        async with self._read() as session:
            rows = await session.execute(
                select(Attempt).where(Attempt.message_id == message_id).order_by(Attempt.id)
            )
            return list(rows.scalars())

    # ---- one-tap actions (recruiter.reply.actions) ---------------------------------------------------

    async def claim_effect(self, message_id: int, key: str, kind: str, ref: str) -> bool:
        """Record a side effect unless its key exists; True when this call recorded it. The unique key
        makes this an atomic once-only lock: of two concurrent callers exactly one gets True."""
        stmt = (self._upsert(SideEffect)
                .values(key=key, message_id=message_id, kind=kind, ref=ref, created_at=utcnow())
                .on_conflict_do_nothing(index_elements=["key"]).returning(SideEffect.id))
        async with self._tx() as session:
            return (await session.execute(stmt)).scalar_one_or_none() is not None

    async def swap_effect(self, key: str, old_ref: str, new_ref: str) -> bool:
        """Compare-and-set a side effect's ref; True when it still was ``old_ref`` and now is ``new_ref``."""
        async with self._tx() as session:
            result = await session.execute(
                update(SideEffect).where(SideEffect.key == key, SideEffect.ref == old_ref).values(ref=new_ref)
            )
            return getattr(result, "rowcount", 0) == 1

    async def count_effects(self, kind: str, ref: str) -> int:
        """How many side effects of ``kind`` share ``ref`` (a digest card is shared by its members)."""
        async with self._read() as session:
            return int(await session.scalar(
                select(func.count()).select_from(SideEffect).where(SideEffect.kind == kind, SideEffect.ref == ref)
            ) or 0)


def _attempt_insert() -> Any:
    """INSERT of one Attempt row (Core)."""
    return cast(Table, Attempt.__table__).insert()


_aware = aware


def _new_values(new: NewMessage) -> dict[str, Any]:
    """The row of a new message: due at the first stage, finished as skipped when prefiltered, or dead
    when quarantined. Every value is made safe for the store here (recruiter.store.safe)."""
    skipped = new.skip_reason is not None
    now = utcnow()
    values: dict[str, Any] = {
        "key": safe_key(new.key), "mailbox": safe_text(new.mailbox, 64), "raw": new.raw, "size": len(new.raw),
        "message_id": None if new.message_id is None else safe_text(new.message_id, 998),
        "subject": safe_text(new.subject, 2000), "from_addr": safe_text(new.from_addr, 320),
        "reply_to": None if new.reply_to is None else safe_text(new.reply_to, 320),
        "folder": None if new.folder is None else safe_text(new.folder, 255),
        "uidvalidity": new.uidvalidity, "uid": new.uid,
        "source": None if new.source is None else safe_text(new.source, 1024),
        "state": SKIPPED if skipped else PENDING, "stage": FINISHED if skipped else "prefilter",
        "is_recruiter": False if skipped else None,
        "skip_reason": None if new.skip_reason is None else safe_text(new.skip_reason, 200), "attempts": 0,
        "origin": safe_text(new.origin, 64), "received_at": now, "next_attempt_at": now, "created_at": now,
        "updated_at": now,
    }
    if new.quarantine is not None:
        # Dead at the first stage: a redrive parses it again (after a fix, it may get through).
        values.update(state=DEAD, dead_reason=safe_text(new.dead_reason, 64),
                      last_error=safe_text(scrub(new.quarantine), 2000))
    return values


def _column_safe(name: str, value: Any) -> Any:
    """A value for ``messages.<name>`` made safe (text without NUL or surrogates, cut to the column)."""
    if isinstance(value, str):
        length = getattr(cast(Table, Message.__table__).c[name].type, "length", None)
        return safe_text(value, length)
    if isinstance(value, dict | list):
        return safe_value(value)
    return value
