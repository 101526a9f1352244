"""A mailbox of the test Dovecot/Cyrus and a Watcher run as a task (shared by the watcher tests)."""

from __future__ import annotations

import asyncio

from recruiter.ingest.watcher import Watcher
from recruiter.settings import MailboxSettings
from recruiter.store.repo import Store
from tests.servers.dovecot import ImapUser
from tests.support.poll import eventually


def mailbox(user: ImapUser, name: str = "me") -> MailboxSettings:
    return MailboxSettings(name=name, host=user.host, port=user.port, user=user.user, password=user.password,
                           tls="none", folder="INBOX", drafts=None, address=user.user)


async def subjects(store: Store) -> list[str]:
    return [m.subject for m in await store.list_messages()]


async def start(watcher: Watcher) -> asyncio.Task[None]:
    """Run ``watcher`` as a task; return once it is connected and has its checkpoint."""
    task = asyncio.create_task(watcher.run())
    await eventually(lambda: watcher.connected)
    await eventually(lambda: watcher.store.checkpoint(watcher.mb.name))
    return task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
