"""A burst of mail against a real Dovecot: mail that arrives while the watcher is catching up is announced
in that catch-up's own FETCH answers (an untagged EXISTS), not again when the next IDLE starts. The
watcher must still store all of it at once, not at the next IDLE renewal (25 minutes by default).
"""

from __future__ import annotations

import asyncio
import imaplib
import threading

from recruiter.ingest.watcher import Watcher
from recruiter.store.repo import Store
from tests.mailfactory import make_mail
from tests.servers.dovecot import ImapUser
from tests.support.poll import eventually
from tests.support.watcher import mailbox, start, stop

BURST = 300
FILLER = "Some text of a long mail.\n" * 4000  # ~100 KB: catch-ups take a while


def _append_slowly(user: ImapUser, count: int, gap: float) -> None:
    """APPEND ``count`` mails over one connection, ``gap`` seconds apart, so they land during catch-ups."""
    client = imaplib.IMAP4(user.host, user.port, timeout=10)
    client.login(user.user, user.password)
    try:
        for index in range(count):
            status, _ = client.append("INBOX", None, None, make_mail(subject=f"burst {index}", body=FILLER))
            assert status == "OK"
            threading.Event().wait(gap)
    finally:
        client.logout()


async def test_a_burst_during_catch_up_is_stored_without_waiting_for_the_idle_renewal(
    imap_user: ImapUser, store: Store
) -> None:
    watcher = Watcher(mailbox(imap_user), store, renew_seconds=600)
    task = await start(watcher)
    try:
        await asyncio.to_thread(_append_slowly, imap_user, BURST, 0.0)
        await eventually(lambda: _count_is(store, BURST), timeout=20)
    finally:
        await stop(task)


async def _count_is(in_store: Store, count: int) -> bool:
    return len(await in_store.list_messages()) == count
