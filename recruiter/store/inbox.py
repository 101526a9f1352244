"""The inbox: new mail entering the store, and where each watcher has read up to.

Owns: storing a mail once (``INSERT … ON CONFLICT (key) DO NOTHING``), alone from the watcher or in a
batch from a backlog replay; storing a mail quarantined (dead at ingest, with its reason as a failed
attempt) when it cannot go the normal way; what is already stored (keys, UIDs, the newest mail); and the
mailbox checkpoints (UIDVALIDITY, last UID), which advance in the same transaction as the mail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from recruiter.log import scrub
from recruiter.store.engine import StoreBase
from recruiter.store.models import (
    DEAD,
    FINISHED,
    LIVE,
    PENDING,
    SKIPPED,
    Attempt,
    MailboxCheckpoint,
    Message,
    aware,
    utcnow,
)
from recruiter.store.safe import safe_key, safe_text


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


class InboxMixin(StoreBase):
    """The Store's part that stores new mail and keeps the watchers' checkpoints."""

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

    # ---- what is stored -----------------------------------------------------------------------

    async def has_key(self, key: str) -> bool:
        """True when a mail with this key is stored."""
        async with self._read() as session:
            found = await session.execute(select(Message.id).where(Message.key == key))
            return found.first() is not None

    async def keys_stored(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` are stored."""
        found: set[str] = set()
        async with self._read() as session:
            for start in range(0, len(keys), 500):
                rows = await session.execute(select(Message.key).where(Message.key.in_(keys[start:start + 500])))
                found.update(rows.scalars())
        return found

    async def stored_uids(self, mailbox: str, folder: str, uidvalidity: int) -> set[int]:
        """UIDs of ``mailbox``'s ``folder`` already stored under this UIDVALIDITY."""
        async with self._read() as session:
            rows = await session.execute(select(Message.uid).where(
                Message.mailbox == mailbox, Message.folder == folder, Message.uidvalidity == uidvalidity,
                Message.uid.is_not(None)))
            return {int(uid) for uid in rows.scalars() if uid is not None}

    async def last_received(self, mailbox: str) -> datetime | None:
        """When the newest stored mail of ``mailbox`` was stored (any state); without one, when its checkpoint
        was last written (the watcher looked then); None before its first start."""
        async with self._read() as session:
            latest = await session.scalar(select(func.max(Message.received_at)).where(Message.mailbox == mailbox))
            if latest is None:
                latest = await session.scalar(select(MailboxCheckpoint.updated_at)
                                              .where(MailboxCheckpoint.mailbox == mailbox))
        return None if latest is None else aware(latest)

    # ---- checkpoints --------------------------------------------------------------------------

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
