"""The watcher's leadership lock on PostgreSQL: a released lock is free on the server, for this replica's
next session and for any other replica.

The lock is a session-level advisory lock held by a connection of the engine's pool. Closing a pooled
connection only returns it to the pool, lock and all: the watcher's next session then drew another
connection, found its own mailbox locked and stood by, with no one watching the mailbox (seen in CI as
a watcher in standby after a Dovecot restart)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import text

from recruiter.ingest.watcher import Watcher
from recruiter.store.migrate import upgrade_head
from recruiter.store.repo import Store
from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, ImapUser
from tests.support.poll import eventually
from tests.support.watcher import mailbox, subjects


@pytest.fixture
async def replicas(pg_url: str) -> AsyncIterator[tuple[Store, Store]]:
    one, two = Store.from_url(pg_url), Store.from_url(pg_url)
    yield one, two
    await one.aclose()
    await two.aclose()


async def _advisory_locks(store: Store) -> int:
    async with store.engine.connect() as connection:
        count = await connection.scalar(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))
    return int(count or 0)


async def test_a_released_lock_is_free_for_another_replica(replicas: tuple[Store, Store]) -> None:
    one, two = replicas
    lock = await one.lock_mailbox("me")
    assert lock is not None
    assert await two.lock_mailbox("me") is None  # held: the other replica stands by
    await lock.release()
    assert await _advisory_locks(one) == 0
    taken = await two.lock_mailbox("me")
    assert taken is not None
    await taken.release()


async def test_the_next_session_gets_its_own_lock_back_whatever_connection_it_draws(
    replicas: tuple[Store, Store],
) -> None:
    one, _ = replicas
    # Two mailboxes' watchers lose their sessions together (the IMAP server restarted) and reconnect in
    # either order: each must get its lock back, whichever pooled connection it is handed.
    for order in (("me", "spam"), ("spam", "me"), ("me", "spam")):
        locks = {name: await one.lock_mailbox(name) for name in ("me", "spam")}
        assert all(lock is not None for lock in locks.values()), order
        for name in order:
            lock = locks[name]
            assert lock is not None
            await lock.release()
        assert await _advisory_locks(one) == 0


async def test_release_after_the_connection_died_never_raises(replicas: tuple[Store, Store]) -> None:
    one, two = replicas
    lock = await one.lock_mailbox("me")
    assert lock is not None and lock.connection is not None
    pid = await lock.connection.scalar(text("SELECT pg_backend_pid()"))
    async with two.engine.connect() as admin:
        await admin.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    assert await lock.alive() is False
    await lock.release()
    taken = await two.lock_mailbox("me")
    assert taken is not None
    await taken.release()


async def test_watchers_of_two_mailboxes_come_back_after_the_imap_server_restarts(
    pg_url: str, dovecot: Dovecot, imap_account: Callable[[], ImapUser],
) -> None:
    await upgrade_head(pg_url)
    store = Store.from_url(pg_url)
    me, spam = imap_account(), imap_account()
    watchers = [Watcher(mailbox(me, "me"), store, timeout=5), Watcher(mailbox(spam, "spam"), store, timeout=5)]
    tasks = [asyncio.create_task(w.run()) for w in watchers]
    try:
        for restart in range(3):
            await eventually(lambda: all(w.connected for w in watchers), timeout=30)
            dovecot.stop()
            await eventually(lambda: not any(w.connected for w in watchers))
            dovecot.start()
            await eventually(lambda: all(w.connected for w in watchers), timeout=30)
            assert not any(w.standby for w in watchers), restart  # this replica is the only one
        dovecot.append(me.user, make_mail(subject="to me"))
        dovecot.append(spam.user, make_mail(subject="to spam"))
        await eventually(lambda: _both_stored(store), timeout=30)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.aclose()


async def _both_stored(store: Store) -> bool:
    return sorted(await subjects(store)) == ["to me", "to spam"]
