"""Locks between replicas: the watcher lock, one watcher per mailbox.

Owns the PostgreSQL session-level advisory lock a watcher holds on a dedicated connection while it
watches a mailbox (:class:`MailboxLock`), and taking it (:meth:`LocksMixin.lock_mailbox`). SQLite has a
single process by design: there the lock is always granted. (The dead-letter notices' transaction-level
lock lives with the alerts, :mod:`recruiter.store.alerts`.)
"""

from __future__ import annotations

import contextlib
import hashlib

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from recruiter.store.engine import StoreBase
from recruiter.store.faults import translated


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


class LocksMixin(StoreBase):
    """The Store's part that takes the watcher lock."""

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
