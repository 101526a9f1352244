"""The work queue: leases on due messages, the writes a worker makes under its lease, and attempts.

Owns: claiming due messages for a worker (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), renewing,
releasing and postponing leases, moving a message on (with the side effects its stage recorded) only
while its lease is held (:class:`LeaseLost` otherwise), recording a failed attempt (retry or dead
letter), and reaping the leases of workers that died. These are the hot path's statements: Core, built
once and reused (:meth:`recruiter.store.engine.StoreBase._statement`).
"""

from __future__ import annotations

import contextlib
import traceback as tb
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import undefer
from sqlalchemy.orm.attributes import set_committed_value

from recruiter.errors import LeaseLost
from recruiter.log import scrub
from recruiter.store.engine import StoreBase
from recruiter.store.models import DEAD, PENDING, RETRY_WAIT, Attempt, Message, SideEffect, UTCDateTime, utcnow
from recruiter.store.safe import safe_text, safe_value

DUE_STATES = (PENDING, RETRY_WAIT)


class QueueMixin(StoreBase):
    """The Store's part that leases due messages to workers and records what each attempt did."""

    # ---- leases -------------------------------------------------------------------------------

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

    @staticmethod
    def drop_raw(row: Message) -> None:
        """Let go of a claimed row's raw bytes (once parsed, the stages need only the parse) without
        marking the row changed: nothing is written for it."""
        set_committed_value(row, "raw", b"")

    # ---- writes under a lease -----------------------------------------------------------------

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

    # ---- expired leases -----------------------------------------------------------------------

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


def _attempt_insert() -> Any:
    """INSERT of one Attempt row (Core)."""
    return cast(Table, Attempt.__table__).insert()


def _column_safe(name: str, value: Any) -> Any:
    """A value for ``messages.<name>`` made safe (text without NUL or surrogates, cut to the column)."""
    if isinstance(value, str):
        length = getattr(cast(Table, Message.__table__).c[name].type, "length", None)
        return safe_text(value, length)
    if isinstance(value, dict | list):
        return safe_value(value)
    return value
