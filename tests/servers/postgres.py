"""Fixtures for a throwaway database on the real PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth).

Each test gets a database of its own, ``rr_<hex>``, dropped afterwards. PostgreSQL is started by the
machine or by ``.ci/run``; when it is not reachable the fixtures fail loudly, they never skip.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
PG_ADMIN_DB = "postgres"

T = TypeVar("T")


class PostgresUnavailable(RuntimeError):
    """PostgreSQL did not accept a connection."""


def _run_in_thread(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a loop of its own in a helper thread.

    Sync fixtures may be set up while pytest-asyncio owns the thread's event loop; ``asyncio.run`` here
    would replace and then unset it.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(make()))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="pg-admin")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


async def _admin(sql: str, *args: object) -> Any:
    """Run one statement in the ``postgres`` database as the superuser; return its first value."""
    try:
        conn = await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, database=PG_ADMIN_DB, timeout=5
        )
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise PostgresUnavailable(
            f"PostgreSQL is not reachable at {PG_USER}@{PG_HOST}:{PG_PORT} ({exc!r}). Start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` (.ci/run does)."
        ) from exc
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def admin(sql: str, *args: object) -> Any:
    """Run one statement as the superuser in the ``postgres`` database; its first value."""
    return _run_in_thread(lambda: _admin(sql, *args))


def terminate_sessions(database: str) -> int:
    """End every session connected to ``database`` (as a fail-over or an operator would); how many."""
    return int(admin("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                     " WHERE datname = $1 AND pid <> pg_backend_pid()", database) or 0)


def create_database(name: str) -> None:
    """Create an empty database ``name`` (raises PostgresUnavailable if PostgreSQL is down)."""
    _run_in_thread(lambda: _admin(f'CREATE DATABASE "{name}"'))


def drop_database(name: str) -> None:
    """Drop ``name`` after ending every session still connected to it."""
    terminate = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = $1 AND pid <> pg_backend_pid()"
    )
    _run_in_thread(lambda: _admin(terminate, name))
    _run_in_thread(lambda: _admin(f'DROP DATABASE IF EXISTS "{name}"'))


def pg_database_exists(name: str) -> bool:
    """Whether a database called ``name`` exists (for tests of these fixtures)."""
    count = _run_in_thread(lambda: _admin("SELECT count(*) FROM pg_database WHERE datname = $1", name))
    return bool(count)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty database for this test only, as ``postgresql+asyncpg://postgres@127.0.0.1:5432/rr_<hex>``.

    Dropped after the test, even if connections to it are still open. Fails if PostgreSQL is down.
    """
    name = f"rr_{secrets.token_hex(6)}"
    try:
        create_database(name)
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        drop_database(name)


@pytest.fixture
def pg_app_url() -> Iterator[str]:
    """A new database owned by a new role without superuser rights (limits such as CONNECTION LIMIT apply
    to it), as ``postgresql+asyncpg://rr_app_<hex>@127.0.0.1:5432/rr_<hex>`` (trust authentication)."""
    token = secrets.token_hex(6)
    name, role = f"rr_{token}", f"rr_app_{token}"
    try:
        admin(f'CREATE ROLE "{role}" LOGIN')
        admin(f'CREATE DATABASE "{name}" OWNER "{role}"')
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield f"postgresql+asyncpg://{role}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        admin(f'ALTER ROLE "{role}" CONNECTION LIMIT -1')
        drop_database(name)
        admin(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs the test twice: on a new SQLite file (``sqlite+aiosqlite:///<tmp_path>/recruiter.db``) and on
    a new PostgreSQL database (see ``pg_url``). Test ids end in ``[sqlite]`` and ``[postgresql]``."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'recruiter.db'}"
    return str(request.getfixturevalue("pg_url"))
