"""The SQL behind the owner's alerts: incidents and the outbox, shared by every replica.

:mod:`recruiter.alerts.incidents` decides what an incident is and what to say; this module only reads and writes
rows, each change in one transaction with the row locked (``FOR UPDATE`` on PostgreSQL, the single
writer on SQLite), so two replicas that see the same outage open one incident and queue one alert:
an outbox row's ``key`` is unique, and a second insert of the same key is dropped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from recruiter.store.effects import EffectsMixin
from recruiter.store.models import (
    DEAD,
    OUT_DROPPED,
    OUT_PENDING,
    OUT_SENDING,
    OUT_SENT,
    OUT_UNCERTAIN,
    Incident,
    Message,
    Outbox,
    SideEffect,
    aware,
)
from recruiter.store.safe import safe_text, safe_value

# PostgreSQL transaction-level advisory lock that serialises the dead-letter notices of all replicas.
_DEAD_NOTICE_LOCK = 7_356_112_001
RETOLD = "notify-retold"


@dataclass
class Edit:
    """One incident row being changed (created when missing) and the messages to queue with the change."""

    row: Incident
    created: bool
    posts: list[dict[str, Any]] = field(default_factory=list)
    delete: bool = False
    supersede: bool = False  # drop this incident's alerts and reminders still waiting to go out

    def post(self, key: str, kind: str, text: str, *, now: datetime, not_before: datetime | None = None) -> None:
        """Queue a message to the owner with this change (dropped if ``key`` was queued before)."""
        self.posts.append({"key": safe_text(key, 200), "kind": kind, "incident": self.row.key, "text": text,
                           "state": OUT_PENDING, "not_before": not_before or now, "failures": 0,
                           "created_at": now})


class AlertStore:
    """Incidents and outbox rows of one Store (its engine, its SQLite write lock and its effect records)."""

    def __init__(self, store: EffectsMixin) -> None:
        self.store = store

    # ---- incidents ------------------------------------------------------------------------------

    async def incidents(self) -> list[Incident]:
        """Every incident row (open, recovering, or only counting failures)."""
        async with self.store._read() as session:
            return list((await session.execute(select(Incident).order_by(Incident.key))).scalars())

    @asynccontextmanager
    async def edit(self, key: str, *, now: datetime) -> AsyncIterator[Edit]:
        """Lock (or create) the incident ``key`` for a change; the change and its queued messages are
        written when the block ends without an error."""
        async with self.store._tx() as session:
            query = select(Incident).where(Incident.key == key)
            if not self.store.sqlite:
                query = query.with_for_update()
            row = (await session.execute(query)).scalar_one_or_none()
            created = row is None
            if row is None:
                row = Incident(key=key, title="", streak=0, recovery_told=False, reminders=0, silent=False,
                               updated_at=now)
                session.add(row)
            edit = Edit(row, created)
            yield edit
            row.updated_at = now
            if row.last_error is not None:
                row.last_error = safe_text(row.last_error, 2000)
            if row.detail is not None:
                row.detail = safe_value(row.detail)
            if edit.delete:
                if row in session.new:  # created by this edit and gone again: never written
                    session.expunge(row)
                else:
                    await session.delete(row)
            if edit.supersede:
                await session.execute(
                    update(Outbox)
                    .where(Outbox.incident == key, Outbox.state == OUT_PENDING, Outbox.kind.in_(("alert", "reminder")))
                    .values(state=OUT_DROPPED, error="superseded: it recovered before this went out")
                )
            await self._insert_posts(session, edit.posts)

    async def probe(self, key: str, *, now: datetime, next_at: datetime) -> bool:
        """Claim the incident's next probe: True for exactly one caller per probe interval."""
        async with self.store._tx() as session:
            result = await session.execute(
                update(Incident)
                .where(Incident.key == key, Incident.opened_at.is_not(None), Incident.recovered_at.is_(None),
                       (Incident.next_probe_at.is_(None)) | (Incident.next_probe_at <= now))
                .values(next_probe_at=next_at, updated_at=now)
            )
            return getattr(result, "rowcount", 0) == 1

    async def _insert_posts(self, session: AsyncSession, posts: Sequence[dict[str, Any]]) -> None:
        if not posts:
            return
        for post in posts:
            post["text"] = safe_text(post["text"])
        stmt = self.store._upsert(Outbox).on_conflict_do_nothing(index_elements=["key"])
        connection = await session.connection()
        await connection.execute(stmt, list(posts))

    # ---- outbox ---------------------------------------------------------------------------------

    async def post(self, key: str, kind: str, text: str, *, now: datetime, incident: str | None = None,
                   state: str = OUT_PENDING, ref: str | None = None) -> None:
        """Queue (or, with ``state="sent"``, record after the fact) one message; a key queued before is kept."""
        async with self.store._tx() as session:
            await self._insert_posts(session, [{
                "key": safe_text(key, 200), "kind": kind, "incident": incident, "text": text, "state": state,
                "not_before": now, "failures": 0, "created_at": now, "ref": ref,
                "sent_at": now if state == OUT_SENT else None,
            }])

    async def claim_next(self, owner: str, *, now: datetime, lease: timedelta) -> Outbox | None:
        """The oldest pending message, now ``sending`` under ``owner``'s lease; None when there is none or
        the oldest must still wait (messages go out in order: a later one never overtakes it)."""
        async with self.store._read() as session:  # most calls find nothing: no write transaction for them
            head = (await session.execute(select(Outbox.not_before).where(Outbox.state == OUT_PENDING)
                                          .order_by(Outbox.id).limit(1))).scalar_one_or_none()
        if head is None or aware(head) > now:
            return None
        async with self.store._tx() as session:
            query = select(Outbox).where(Outbox.state == OUT_PENDING).order_by(Outbox.id).limit(1)
            if not self.store.sqlite:
                query = query.with_for_update(skip_locked=True)
            row = (await session.execute(query)).scalar_one_or_none()
            if row is None or aware(row.not_before) > now:
                return None
            row.state, row.owner, row.lease_until = OUT_SENDING, owner, now + lease
            return row

    async def finish(self, row_id: int, owner: str, state: str, **fields: Any) -> None:
        """Record what became of a message this owner was sending."""
        async with self.store._tx() as session:
            await session.execute(update(Outbox).where(Outbox.id == row_id, Outbox.owner == owner)
                                  .values(state=state, owner=None, lease_until=None, **fields))

    async def expire_sending(self, *, now: datetime) -> list[Outbox]:
        """Messages whose sender died while sending (lease expired): uncertain, never sent again."""
        async with self.store._read() as session:
            if not await session.scalar(select(exists().where(Outbox.state == OUT_SENDING, Outbox.lease_until < now))):
                return []
        async with self.store._tx() as session:
            rows = list((await session.execute(
                select(Outbox).where(Outbox.state == OUT_SENDING, Outbox.lease_until < now))).scalars())
            for row in rows:
                row.state, row.owner, row.lease_until = OUT_UNCERTAIN, None, None
                row.error = "the process died while sending it"
            return rows

    async def has_pending(self, incident: str, kinds: Sequence[str]) -> bool:
        """Whether a message of ``kinds`` about ``incident`` still waits to be sent."""
        async with self.store._read() as session:
            waiting = exists().where(Outbox.incident == incident, Outbox.kind.in_(list(kinds)),
                                     Outbox.state.in_((OUT_PENDING, OUT_SENDING)))
            return bool(await session.scalar(select(waiting)))

    async def pending_count(self) -> int:
        """Messages to the owner not yet sent."""
        async with self.store._read() as session:
            return int(await session.scalar(select(func.count()).select_from(Outbox).where(
                Outbox.state.in_((OUT_PENDING, OUT_SENDING)))) or 0)

    async def uncertain(self, *, untold_only: bool = True, limit: int = 50) -> list[Outbox]:
        """Messages to the owner that may not have arrived (not yet mentioned in a later message)."""
        query = select(Outbox).where(Outbox.state == OUT_UNCERTAIN).order_by(Outbox.id).limit(limit)
        if untold_only:
            query = query.where(Outbox.retold_at.is_(None))
        async with self.store._read() as session:
            return list((await session.execute(query)).scalars())

    async def mark_retold(self, ids: Sequence[int], *, now: datetime) -> None:
        """The given uncertain messages were mentioned in a message that arrived."""
        if ids:
            async with self.store._tx() as session:
                await session.execute(update(Outbox).where(Outbox.id.in_(list(ids))).values(retold_at=now))

    # ---- cards that may not have arrived ------------------------------------------------------

    async def uncertain_cards(self, *, untold_only: bool = True, limit: int = 50) -> list[Message]:
        """Messages whose card may not have arrived (the notify effect is ``uncertain``), oldest first;
        ``untold_only``: not yet mentioned in a later message."""
        uncertain = select(SideEffect.id).where(SideEffect.message_id == Message.id, SideEffect.kind == "notify",
                                                SideEffect.ref == "uncertain")
        query = select(Message).where(exists(uncertain)).order_by(Message.id).limit(limit)
        if untold_only:
            retold = select(SideEffect.id).where(SideEffect.message_id == Message.id, SideEffect.kind == RETOLD)
            query = query.where(~exists(retold))
        async with self.store._read() as session:
            return list((await session.execute(query)).scalars())

    async def mark_cards_retold(self, messages: Sequence[Message], *, now: datetime) -> None:
        """Their "may not have arrived" line reached the owner."""
        if messages:
            await self.store.record_effects([(m.id, f"{m.key}:{RETOLD}", RETOLD, now.isoformat()) for m in messages])

    # ---- dead-letter notices --------------------------------------------------------------------

    async def dead_notice(self, *, now: datetime, gather: timedelta, gap: timedelta, limit: int,
                          render: Callable[[list[Message], int], str]) -> int:
        """Queue one notice for the dead messages not yet told, when the oldest of them died at least
        ``gather`` ago and no notice was queued within ``gap``; returns how many messages it tells."""
        untold = (Message.state == DEAD) & Message.dead_noticed_at.is_(None)
        async with self.store._read() as session:  # usually nothing is owed: no write transaction then
            oldest = await session.scalar(select(func.min(Message.updated_at)).where(untold))
        if oldest is None or aware(oldest) > now - gather:
            return 0
        async with self.store._tx() as session:
            if not self.store.sqlite:
                await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _DEAD_NOTICE_LOCK})
            last = await session.scalar(select(func.max(Outbox.created_at)).where(Outbox.kind == "dead"))
            if last is not None and aware(last) > now - gap:
                return 0
            oldest = await session.scalar(select(func.min(Message.updated_at)).where(untold))
            if oldest is None or aware(oldest) > now - gather:
                return 0
            total = int(await session.scalar(select(func.count()).select_from(Message).where(untold)) or 0)
            rows = list((await session.execute(select(Message).where(untold).order_by(Message.id)
                                               .limit(limit))).scalars())
            await session.execute(update(Message).where(untold).values(dead_noticed_at=now))
            await self._insert_posts(session, [{
                "key": f"dead:{now.isoformat()}", "kind": "dead", "incident": None, "text": render(rows, total),
                "state": OUT_PENDING, "not_before": now, "failures": 0, "created_at": now}])
            return total

    async def forget_closed(self, keys: Sequence[str]) -> None:
        """Delete incident rows (their recovery has held)."""
        if keys:
            async with self.store._tx() as session:
                await session.execute(delete(Incident).where(Incident.key.in_(list(keys))))
