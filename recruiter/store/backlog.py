"""Backlog replays and their digest: progress by origin, and the recruiter mail a digest still owes.

Owns: a new replay adopting the unfinished mail of interrupted ones, counting a replay's messages by
state and what is still due, and which finished backlog recruiter mail has not been told in a digest.
(Storing the backlog itself is ingest: :mod:`recruiter.store.inbox`.)
"""

from __future__ import annotations

from sqlalchemy import exists, func, select, update

from recruiter.store.engine import StoreBase
from recruiter.store.models import DONE, REPLAY_PREFIX, Message, SideEffect, utcnow
from recruiter.store.queue import DUE_STATES


class BacklogMixin(StoreBase):
    """The Store's part that follows backlog replays and the digest they owe."""

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
