"""The database engine and the transactions every part of the Store runs in.

Owns: creating the engine (SQLite's pragmas and busy timeout, PostgreSQL's pool), opening a database
read-only (the replay dry run), sessions and bare connections, the one-writer-at-a-time lock on SQLite,
the dialect's INSERT … ON CONFLICT, the cache of prebuilt statements, and translating database errors
(:mod:`recruiter.store.faults`) around each of them. :class:`StoreBase` is the part of
:class:`recruiter.store.repo.Store` that every per-concern part builds on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Self

from sqlalchemy import event, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from recruiter.store.faults import translated


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


def readonly_url(url: str) -> str | None:
    """A read-only URL for the store at ``url``; None when a SQLite file does not exist (nothing stored)."""
    if not url.startswith("sqlite"):
        return url
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if not path or path.startswith(":memory:") or not Path(path).is_file():
        return None
    return f"sqlite+aiosqlite:///file:{Path(path).resolve()}?mode=ro&uri=true"


class StoreBase:
    """The engine, its sessions and the transaction helpers the per-concern parts of the Store use."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer; serialise our own writers instead of meeting "database is locked".
        self._write_lock = asyncio.Lock() if self.sqlite else None
        self._statements: dict[Any, Any] = {}

    @classmethod
    def from_url(cls, url: str, *, busy_timeout: float = 30.0) -> Self:
        """A Store on a new engine for ``url``."""
        return cls(make_engine(url, busy_timeout=busy_timeout))

    @classmethod
    async def open_readonly(cls, url: str) -> Self | None:
        """A Store that reads the database at ``url`` and cannot write it; None when nothing is stored
        there (a SQLite file that does not exist, which is not created, or a database never migrated)."""
        ro = readonly_url(url)
        if ro is None:
            return None
        store = cls(create_async_engine(ro))  # no pragmas: PRAGMA journal_mode would be a write
        try:
            with translated():  # the database down is an outage, as for every other read
                async with store.engine.connect() as connection:
                    migrated = await connection.run_sync(_has_messages)
        except BaseException:
            await store.aclose()
            raise
        if not migrated:  # never migrated: nothing is stored
            await store.aclose()
            return None
        return store

    def _upsert(self, target: Any) -> Any:
        """The dialect's INSERT (with ON CONFLICT) for ``target``; only the dialect in use is imported."""
        if self.sqlite:
            from sqlalchemy.dialects import sqlite as dialect
        else:
            from sqlalchemy.dialects import postgresql as dialect  # type: ignore[no-redef]
        return dialect.insert(target)

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

    # The worker's statements are built once and reused with new parameters: building and hashing a
    # statement costs more CPU than compiling it (which SQLAlchemy caches anyway).

    def _statement(self, key: Any, build: Callable[[], Any]) -> Any:
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = build()
        return statement

    async def ping(self) -> None:
        """Raise DependencyUnavailable unless the database answers."""
        async with self._tx() as session:
            await session.execute(select(1))

    async def ping_write(self) -> None:
        """Raise DependencyUnavailable unless the database takes a write: an UPDATE of no row still needs
        the write lock on SQLite and is refused in a read-only transaction on PostgreSQL."""
        async with self._core() as connection:
            await connection.execute(text("UPDATE mailbox_checkpoints SET last_uid = last_uid WHERE 1 = 0"))


def _has_messages(connection: Connection, /) -> bool:
    return inspect(connection).has_table("messages")
