"""The dead-letter queue: messages that failed for good, and what to do with them.

Owns: putting dead messages back in the queue at the stage that failed (``redrive``), deleting old
ones with their history (``purge_dead``), and the figures the probes and alerts read (how many, how old,
why, how many were quarantined at ingest). Dead-letter notices to the owner: :mod:`recruiter.store.alerts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import delete, func, select

from recruiter.store.engine import StoreBase
from recruiter.store.models import DEAD, PENDING, Attempt, Message, SideEffect, aware, utcnow


class DeadLetterMixin(StoreBase):
    """The Store's part that reads, redrives and purges dead messages."""

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

    async def dlq_stats(self) -> tuple[int, float]:
        """(dead messages, seconds since the oldest of them died; 0 when there is none)."""
        async with self._read() as session:
            count, oldest = (await session.execute(
                select(func.count(), func.min(Message.updated_at)).where(Message.state == DEAD)
            )).one()
        if not count or oldest is None:
            return 0, 0.0
        return int(count), max(0.0, (utcnow() - aware(oldest)).total_seconds())

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
