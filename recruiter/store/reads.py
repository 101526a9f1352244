"""Reading messages for people: one message, lists, counts, failure history, last activity.

Owns the read-only queries behind the CLI, the API, the web views and the status page. Nothing here
writes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import undefer

from recruiter.store.engine import StoreBase
from recruiter.store.models import Attempt, Message, aware


class ReadsMixin(StoreBase):
    """The Store's part that shows stored messages and their history."""

    async def get(self, message_id: int, *, with_raw: bool = False) -> Message | None:
        """One message row (raw bytes only when asked)."""
        async with self._read() as session:
            query = select(Message).where(Message.id == message_id)
            if with_raw:
                query = query.options(undefer(Message.raw))
            return (await session.execute(query)).scalar_one_or_none()

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

    async def counts_by_state(self) -> dict[str, int]:
        """How many messages are in each state."""
        async with self._read() as session:
            rows = await session.execute(select(Message.state, func.count()).group_by(Message.state))
            return {state: count for state, count in rows.all()}

    async def attempts_for(self, message_id: int) -> list[Attempt]:
        """The failure history of one message."""
        async with self._read() as session:
            rows = await session.execute(
                select(Attempt).where(Attempt.message_id == message_id).order_by(Attempt.id)
            )
            return list(rows.scalars())

    async def activity(self) -> dict[str, Any]:
        """When mail last arrived per mailbox, and when a message was last triaged (``last_triage``)."""
        async with self._read() as session:
            rows = await session.execute(select(Message.mailbox, func.max(Message.received_at))
                                         .group_by(Message.mailbox))
            last_mail = {name: aware(at) for name, at in rows.all() if at is not None}
            last_triage = (await session.execute(
                select(func.max(Message.updated_at)).where(Message.triage_tier.is_not(None))
            )).scalar()
        return {"last_mail": last_mail, "last_triage": aware(last_triage) if last_triage is not None else None}
