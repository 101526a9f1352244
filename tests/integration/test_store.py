"""The store on SQLite and PostgreSQL: migrations, dedup, checkpoints, leases, side effects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from recruiter.errors import DependencyUnavailable, LeaseLost
from recruiter.store.engine import make_engine
from recruiter.store.inbox import NewMessage
from recruiter.store.migrate import alembic_config, downgrade, upgrade_head
from recruiter.store.models import DEAD, DONE, RETRY_WAIT, utcnow
from recruiter.store.repo import Store


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    await upgrade_head(db_url)
    store = Store.from_url(db_url)
    yield store
    await store.aclose()


def new(key: str, **kw: object) -> NewMessage:
    return NewMessage(key=key, mailbox="me", raw=b"Subject: x\r\n\r\nbody", subject="x", **kw)  # type: ignore[arg-type]


async def test_migrations_match_models_and_downgrade_cleanly(db_url: str) -> None:
    await upgrade_head(db_url)
    await asyncio.to_thread(command.check, alembic_config(db_url))
    await downgrade(db_url, "base")
    await upgrade_head(db_url)
    await asyncio.to_thread(command.check, alembic_config(db_url))


async def test_same_key_is_stored_once_and_raw_bytes_are_kept(store: Store) -> None:
    first = await store.add_message(new("a@x"))
    again = await store.add_message(NewMessage(key="a@x", mailbox="spam", raw=b"other"))
    assert first is not None and again is None
    row = await store.get(first, with_raw=True)
    assert row is not None and row.raw == b"Subject: x\r\n\r\nbody" and row.mailbox == "me"


async def test_checkpoint_advances_with_the_message_in_one_transaction(store: Store) -> None:
    assert await store.checkpoint("me") is None
    await store.add_message(new("b@x", uidvalidity=7, uid=3))
    await store.add_message(new("c@x", uidvalidity=7, uid=5))
    await store.add_message(new("b@x", uidvalidity=7, uid=9))  # duplicate key still advances the checkpoint
    assert await store.checkpoint("me") == (7, 9)


async def test_claim_is_exclusive_until_the_lease_expires(store: Store) -> None:
    ids = [await store.add_message(new(f"{i}@x")) for i in range(3)]
    mine = await store.claim_due("w1", limit=10, lease_seconds=60)
    theirs = await store.claim_due("w2", limit=10, lease_seconds=60)
    assert sorted(mine) == sorted(i for i in ids if i is not None) and theirs == []
    with pytest.raises(LeaseLost):
        await store.advance(mine[0], "w2", stage="triage")


async def test_side_effect_recorded_with_stage_advance(store: Store) -> None:
    message = await store.add_message(new("d@x"))
    assert message is not None
    await store.claim_due("w", limit=1, lease_seconds=60)
    await store.advance(message, "w", effects=[("d@x:draft", "draft", "Drafts:1")], stage="calendar")
    await store.advance(message, "w", effects=[("d@x:draft", "draft", "Drafts:2")], state=DONE, stage="done")
    assert await store.effect("d@x:draft") == "Drafts:1"
    row = await store.get(message)
    assert row is not None and (row.state, row.stage) == (DONE, "done")


async def test_failures_keep_history_and_schedule_or_dead_letter(store: Store) -> None:
    message = await store.add_message(new("e@x"))
    assert message is not None
    await store.claim_due("w", limit=1, lease_seconds=60)
    await store.fail(message, "w", stage="triage", exc=RuntimeError("502"), retry_at=utcnow() + timedelta(hours=1))
    row = await store.get(message)
    assert row is not None and (row.state, row.attempts, row.lease_owner) == (RETRY_WAIT, 1, None)
    assert await store.claim_due("w", limit=1, lease_seconds=60) == []  # not due yet
    await store.set_checkpoint("me", 1, 1)
    row.next_attempt_at = utcnow()
    async with store._tx() as session:  # make it due now
        await session.merge(row)
    assert await store.claim_due("w", limit=1, lease_seconds=60) == [message]
    await store.fail(message, "w", stage="triage", exc=ValueError("bad"), retry_at=None)
    row = await store.get(message)
    assert row is not None and row.state == DEAD and "ValueError: bad" in (row.last_error or "")
    history = await store.attempts_for(message)
    assert [a.error_class for a in history] == ["RuntimeError", "ValueError"]
    assert all(a.traceback for a in history)


async def test_expired_lease_is_reaped_as_an_attempt_and_third_loss_is_dead(store: Store) -> None:
    message = await store.add_message(new("f@x"))
    assert message is not None
    for loss in (1, 2, 3):
        assert await store.claim_due("w", limit=1, lease_seconds=0) == [message]
        await asyncio.sleep(0.01)
        reaped = await store.reap_expired(max_lost=3)
        assert reaped == [(message, "dead" if loss == 3 else "pending")]
    row = await store.get(message)
    assert row is not None and (row.attempts, row.dead_reason) == (3, "worker_lost")
    assert await store.claim_due("w", limit=1, lease_seconds=60) == []


async def test_own_expired_leases_come_back_unless_in_flight(store: Store) -> None:
    """A worker keeps the leases of the messages it is processing (their renewals failed during a
    database outage), but one it lost track of (it could not record a failure while the database was
    down) is due again at once, without an attempt: before, it stayed leased to a live worker forever."""
    busy = await store.add_message(new("busy@x"))
    lost = await store.add_message(new("lost@x"))
    other = await store.add_message(new("other@x"))
    assert busy is not None and lost is not None and other is not None
    assert sorted(await store.claim_due("me", limit=2, lease_seconds=0)) == sorted([busy, lost])
    assert await store.claim_due("them", limit=1, lease_seconds=0) == [other]
    await asyncio.sleep(0.01)
    reaped = dict(await store.reap_expired(alive="me", busy={busy}))
    assert reaped == {lost: "pending", other: "pending"}
    rows = {m: await store.get(m) for m in (busy, lost, other)}
    assert rows[busy] is not None and rows[busy].lease_owner == "me"
    assert rows[lost] is not None and (rows[lost].lease_owner, rows[lost].attempts) == (None, 0)
    assert rows[other] is not None and rows[other].attempts == 1
    assert lost in await store.claim_due("me", limit=5, lease_seconds=60)


async def test_open_readonly_reads_a_migrated_store_and_never_creates_one(db_url: str, tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    assert await Store.open_readonly(f"sqlite+aiosqlite:///{missing}") is None
    assert not missing.exists()
    await upgrade_head(db_url)
    writer = Store.from_url(db_url)
    await writer.add_message(new("a@x"))
    await writer.aclose()
    reader = await Store.open_readonly(db_url)
    assert reader is not None
    try:
        assert await reader.keys_stored(["a@x", "b@x"]) == {"a@x"}
        if reader.sqlite:  # PostgreSQL has no read-only URL: the dry run simply never writes
            with pytest.raises(DependencyUnavailable):
                await reader.ping_write()
    finally:
        await reader.aclose()


async def test_open_readonly_finds_nothing_in_a_database_never_migrated(db_url: str) -> None:
    # The replay dry run on a database the service never started on: nothing is stored, not an outage.
    engine = make_engine(db_url)
    async with engine.begin() as connection:  # the SQLite file exists now, with no table
        await connection.execute(text("SELECT 1"))
    await engine.dispose()
    assert await Store.open_readonly(db_url) is None


async def test_drop_raw_lets_go_of_the_bytes_and_writes_nothing(store: Store) -> None:
    message_id = await store.add_message(new("a@x"))
    assert message_id is not None
    [row] = await store.claim("w1", limit=1, lease_seconds=60)
    store.drop_raw(row)
    assert row.raw == b""
    await store.advance(message_id, "w1", stage="triage")
    kept = await store.get(message_id, with_raw=True)
    assert kept is not None and kept.raw == b"Subject: x\r\n\r\nbody"
