"""The IMAP watcher against a real Dovecot: push, PEEK only, catch-up after loss, first start."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from recruiter.mail.watcher import Watcher
from recruiter.settings import MailboxSettings
from recruiter.store.migrate import upgrade_head
from recruiter.store.repo import Store
from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, ImapUser


def mailbox(user: ImapUser, name: str = "me") -> MailboxSettings:
    return MailboxSettings(name=name, host=user.host, port=user.port, user=user.user, password=user.password,
                           tls="none", folder="INBOX", drafts=None, address=user.user)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite+aiosqlite:///{tmp_path}/w.db"
    await upgrade_head(url)
    store = Store.from_url(url)
    yield store
    await store.aclose()


async def eventually(check: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def subjects(store: Store) -> list[str]:
    return [m.subject for m in await store.list_messages()]


async def start(watcher: Watcher) -> asyncio.Task[None]:
    task = asyncio.create_task(watcher.run())
    await eventually(lambda: watcher.connected)
    await eventually(lambda: watcher.store.checkpoint(watcher.mb.name))
    return task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_first_start_ignores_backlog_then_push_is_stored_without_seen(
    dovecot: Dovecot, imap_user: ImapUser, store: Store
) -> None:
    dovecot.append(imap_user.user, make_mail(subject="old backlog mail"))
    woken: list[int] = []
    watcher = Watcher(mailbox(imap_user), store, on_stored=lambda: woken.append(1))
    task = await start(watcher)
    try:
        dovecot.append(imap_user.user, make_mail(subject="fresh mail"))
        await eventually(lambda: subjects(store))
        assert await subjects(store) == ["fresh mail"]
        assert woken
        flags = [f for _, f, _ in dovecot.messages(imap_user.user)]
        assert all("\\Seen" not in f for f in flags)
        row = (await store.list_messages())[0]
        full = await store.get(row.id, with_raw=True)
        assert full is not None and b"fresh mail" in full.raw
    finally:
        await stop(task)


async def test_catch_up_after_server_restart_and_after_kick(
    dovecot: Dovecot, imap_user: ImapUser, store: Store
) -> None:
    watcher = Watcher(mailbox(imap_user), store, timeout=5)
    task = await start(watcher)
    try:
        dovecot.stop()
        await eventually(lambda: not watcher.connected)
        dovecot.start()
        dovecot.append(imap_user.user, make_mail(subject="after restart"))
        await eventually(lambda: subjects(store), timeout=30)
        assert await subjects(store) == ["after restart"]
        sessions = watcher.sessions
        dovecot.kick(imap_user.user)
        await eventually(lambda: watcher.sessions > sessions, timeout=30)
        dovecot.append(imap_user.user, make_mail(subject="after kick"))
        await eventually(lambda: _has(store, "after kick"), timeout=30)
    finally:
        await stop(task)


async def _has(store: Store, subject: str) -> bool:
    return subject in await subjects(store)


async def test_mail_arriving_while_stopped_is_caught_up_from_checkpoint(
    dovecot: Dovecot, imap_user: ImapUser, store: Store
) -> None:
    watcher = Watcher(mailbox(imap_user), store)
    task = await start(watcher)
    await stop(task)
    dovecot.append(imap_user.user, make_mail(subject="while we were away"))
    task = await start(Watcher(mailbox(imap_user), store))
    try:
        await eventually(lambda: _has(store, "while we were away"))
    finally:
        await stop(task)


async def test_same_message_id_in_two_mailboxes_is_stored_once(
    dovecot: Dovecot, imap_account: Callable[[], ImapUser], store: Store
) -> None:
    me, spam = imap_account(), imap_account()
    tasks = [await start(Watcher(mailbox(me, "me"), store)), await start(Watcher(mailbox(spam, "spam"), store))]
    try:
        raw = make_mail(subject="twice", message_id="<same-id@test.example>")
        dovecot.append(me.user, raw)
        dovecot.append(spam.user, raw)
        await eventually(lambda: _checkpoints_moved(store))
        assert await subjects(store) == ["twice"]
    finally:
        for task in tasks:
            await stop(task)


async def _checkpoints_moved(store: Store) -> bool:
    points = [await store.checkpoint(name) for name in ("me", "spam")]
    return all(p is not None and p[1] >= 1 for p in points)


async def test_idle_is_renewed(dovecot: Dovecot, imap_user: ImapUser, store: Store) -> None:
    watcher = Watcher(mailbox(imap_user), store, renew_seconds=0.5)
    task = await start(watcher)
    try:
        await asyncio.sleep(2)
        assert watcher.connected and watcher.sessions == 1
        dovecot.append(imap_user.user, make_mail(subject="after renewals"))
        await eventually(lambda: _has(store, "after renewals"))
    finally:
        await stop(task)
