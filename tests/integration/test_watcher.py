"""The IMAP watcher against a real Dovecot: push, PEEK only, catch-up after loss, first start."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aioimaplib
import pytest

from recruiter.errors import ImapError
from recruiter.ingest.watcher import Watcher
from recruiter.mail import imap
from recruiter.settings import MailboxSettings
from recruiter.store.repo import Store
from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, ImapUser
from tests.support.poll import eventually
from tests.support.watcher import mailbox, start, stop, subjects


@pytest.mark.both_imap_servers
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


@pytest.mark.both_imap_servers
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


@pytest.mark.both_imap_servers
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


@pytest.mark.both_imap_servers
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


class _MailDuringSearch(Watcher):
    """A watcher whose first search of a session is answered just before a mail lands, and the server
    tells of that mail (an untagged EXISTS) only with its answer to the next command, as Dovecot does
    when the mail lands while a SEARCH runs. The EXISTS reaches aioimaplib, which drops it; IDLE does
    not repeat it."""

    def __init__(self, *args: object, dovecot: Dovecot, user: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.dovecot, self.user, self.armed = dovecot, user, False

    async def _uids_above(self, client: aioimaplib.IMAP4, last: int) -> list[int]:
        uids = await super()._uids_above(client, last)
        if self.armed:
            self.armed = False
            await asyncio.to_thread(self.dovecot.append, self.user, make_mail(subject="landed during the search"))
            await asyncio.sleep(0.5)  # Dovecot notices the new file
            await imap.uid_search(client, self.mb.name, "UID", "1:1")  # its answer carries the EXISTS
        return uids


async def test_mail_told_of_in_a_search_answer_is_not_left_for_the_idle_renewal(
    dovecot: Dovecot, imap_user: ImapUser, store: Store
) -> None:
    watcher = _MailDuringSearch(mailbox(imap_user), store, renew_seconds=600, dovecot=dovecot, user=imap_user.user)
    task = await start(watcher)  # first start: the checkpoint is set
    await stop(task)
    watcher.armed = True
    task = await start(watcher)
    try:
        await eventually(lambda: not watcher.armed)
        await eventually(lambda: _has(store, "landed during the search"), timeout=10)
    finally:
        await stop(task)


async def test_after_a_uidvalidity_change_mail_since_the_last_stored_one_is_taken_once(
    dovecot: Dovecot, imap_user: ImapUser, store: Store
) -> None:
    task = await start(Watcher(mailbox(imap_user), store))
    try:
        dovecot.append(imap_user.user, make_mail(subject="stored before"))
        await eventually(lambda: _has(store, "stored before"))
    finally:
        await stop(task)
    dovecot.append(imap_user.user, make_mail(subject="unread between"))
    dovecot.append(imap_user.user, make_mail(subject="read between"), flags=("\\Seen",))
    await store.set_checkpoint("me", 1, 40)  # an older UIDVALIDITY: its UIDs mean nothing now
    task = await start(Watcher(mailbox(imap_user), store))
    try:
        await eventually(lambda: _has(store, "read between"))
        dovecot.append(imap_user.user, make_mail(subject="new after the change"))
        await eventually(lambda: _has(store, "new after the change"))
        assert sorted(await subjects(store)) == ["new after the change", "read between", "stored before",
                                                 "unread between"]
    finally:
        await stop(task)


class _KickedBeforeIdle(Watcher):
    """A watcher whose connection is dropped by the server after the catch-up, before IDLE starts."""

    def __init__(self, *args: object, dovecot: Dovecot, user: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.dovecot, self.user, self.armed = dovecot, user, True

    async def _catch_up_fully(self, client: aioimaplib.IMAP4, uidnext: int | None) -> None:
        await super()._catch_up_fully(client, uidnext)
        if self.armed:
            self.armed = False
            await asyncio.to_thread(self.dovecot.kick, self.user)
            await asyncio.sleep(0.3)  # the BYE and the close have arrived


async def test_a_connection_lost_before_idle_starts_is_reconnected(
    dovecot: Dovecot, imap_user: ImapUser, store: Store
) -> None:
    watcher = _KickedBeforeIdle(mailbox(imap_user), store, timeout=5, dovecot=dovecot, user=imap_user.user)
    task = asyncio.create_task(watcher.run())
    try:
        await eventually(lambda: watcher.sessions >= 2 and watcher.connected, timeout=20)
        dovecot.append(imap_user.user, make_mail(subject="after the drop"))
        await eventually(lambda: _has(store, "after the drop"))
    finally:
        await stop(task)


# ---- IMAP over TLS (the default, IMAP_<NAME>_TLS=ssl) ------------------------------------------------

TLS_USER, TLS_PASSWORD = "tls@example.org", "tls-secret-7"


def tls_mailbox(server: Dovecot, *, trusted: bool) -> MailboxSettings:
    """The TLS account on ``server``; ``trusted``: IMAP_ME_CA_FILE names the server's certificate."""
    assert server.tls is not None and server.tls_port is not None
    server.add_user(TLS_USER, TLS_PASSWORD)
    return MailboxSettings(name="me", host="127.0.0.1", port=server.tls_port, user=TLS_USER, password=TLS_PASSWORD,
                           tls="ssl", folder="INBOX", drafts=None, address=TLS_USER,
                           ca_file=server.tls[0] if trusted else None)


async def test_the_watcher_hears_mail_over_tls(dovecot_tls: Dovecot, store: Store) -> None:
    watcher = Watcher(tls_mailbox(dovecot_tls, trusted=True), store, timeout=5)
    task = await start(watcher)
    try:
        dovecot_tls.append(TLS_USER, make_mail(subject="over tls"))
        await eventually(lambda: _has(store, "over tls"))
        assert watcher.sessions == 1 and watcher.last_error is None
    finally:
        await stop(task)


async def test_a_server_that_cannot_be_verified_is_a_clear_error(dovecot_tls: Dovecot) -> None:
    with pytest.raises(ImapError) as caught:  # self-signed, and no CA file trusts it
        await imap.connect(tls_mailbox(dovecot_tls, trusted=False), timeout=5)
    assert "IMAP me: cannot connect" in str(caught.value) and "SSLCertVerificationError" in str(caught.value)
    assert TLS_PASSWORD not in str(caught.value)
    client = await imap.connect(tls_mailbox(dovecot_tls, trusted=True), timeout=5)  # the CA file makes it good
    await imap.close(client)


async def test_the_watcher_keeps_retrying_an_unverifiable_server(dovecot_tls: Dovecot, store: Store) -> None:
    watcher = Watcher(tls_mailbox(dovecot_tls, trusted=False), store, timeout=5)
    task = asyncio.create_task(watcher.run())
    try:
        await eventually(lambda: watcher.last_error is not None)
        assert "SSLCertVerificationError" in str(watcher.last_error)
        assert not watcher.connected and not task.done()
    finally:
        await stop(task)
