"""A restarted or killed IMAP server costs no timeout (issue 14): `recruiter run` on one mailbox, a mail and
its card, then the server goes away (stopped, or every process `kill -9`-ed: no BYE) for a while and comes
back; the next mail's card must come within 15 s of the server accepting connections again.

The kept Drafts connection died with the server: it must be dropped as soon as the transport says so (or
found dead by a short NOOP), not cost the 30 s command timeout (IMAP_TIMEOUT_SECONDS is left at its
default here) and a failed attempt; the watcher's reconnect attempts must stay a few seconds apart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import secrets
import time
from pathlib import Path

import pytest

from recruiter.reply.compose import KEY_HEADER
from recruiter.reply.drafts import ImapDrafts
from recruiter.reply.mailbox import ImapMailbox
from recruiter.settings import settings_from
from tests.mailfactory import crlf, make_mail
from tests.servers.dovecot import Dovecot, ImapUser
from tests.servers.fake_telegram import FakeTelegram
from tests.support.poll import wait_for
from tests.support.service import Service, cards, cli, finished, run_env

OUTAGE_SECONDS = 12.0  # long enough for the watcher's backoff (1, 2, 4, 5 s) to reach its cap


@pytest.mark.both_imap_servers
@pytest.mark.parametrize("how", ["restart", "kill-9"])
def test_the_card_after_an_imap_outage_comes_within_seconds_of_the_servers_return(
    tmp_path: Path, dovecot: Dovecot, imap_user: ImapUser, fake_telegram: FakeTelegram, how: str,
) -> None:
    env = run_env(tmp_path, imap_user, fake_telegram)
    del env["IMAP_TIMEOUT_SECONDS"]  # the default (30 s): a dead connection waited out would show
    assert cli(env, tmp_path, "migrate").returncode == 0
    service = Service(env, tmp_path)
    try:
        wait_for(lambda: service.events("imap.connected"), what="watcher connected")
        dovecot.append(imap_user.user, make_mail(subject="Staff SRE role at Acme"))
        wait_for(lambda: len(cards(fake_telegram)) == 1, timeout=30, what="the first card")

        if how == "restart":
            dovecot.stop()
        else:
            dovecot.kill()
        time.sleep(OUTAGE_SECONDS)
        dovecot.start()
        back = time.monotonic()
        dovecot.append(imap_user.user, make_mail(subject="Platform role at Initech",
                                                 sender="Bob Recruiter <bob@initech-jobs.example>"))
        wait_for(lambda: len(cards(fake_telegram)) == 2, timeout=60, what="the card after the outage")
        delay = time.monotonic() - back
        print(f"IMAP {how}: {OUTAGE_SECONDS:.0f} s outage, card {delay:.1f} s after the server was back")
        rows = wait_for(lambda: finished(env, tmp_path, 2), what="both finished")
        assert [(r["state"], r["attempts"]) for r in rows] == [("done", 0), ("done", 0)], rows
        drafts = [email.message_from_bytes(raw) for _, _, raw in dovecot.messages(imap_user.user, "Drafts")]
        assert len(drafts) == 2 and len({d["In-Reply-To"] for d in drafts}) == 2
        assert delay < 15, f"card {delay:.1f} s after the IMAP server came back"
    finally:
        service.stop()
        print("".join(service.lines[-40:]))


class Proxy:
    """A loopback TCP proxy in front of the IMAP server that can lose the answer to an APPEND (it closes
    both sides instead of passing the tagged OK on) or go silent on the connections open now."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.lose_append_answer = False
        self.silenced: set[asyncio.StreamWriter] = set()
        self.open: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    def silence_open_connections(self) -> None:
        self.silenced |= self.open

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.open.add(writer)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, downstream: bool) -> None:
            while data := await src.read(65536):
                if downstream and writer in self.silenced:
                    continue
                if downstream and self.lose_append_answer and b"OK [APPENDUID" in data:
                    self.lose_append_answer = False
                    break
                dst.write(data)
                await dst.drain()

        try:
            await asyncio.wait([asyncio.create_task(pump(reader, up_writer, False)),
                                asyncio.create_task(pump(up_reader, writer, True))],
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.open.discard(writer)
            for w in (writer, up_writer):
                w.close()

    async def aclose(self) -> None:
        if self.server is not None:
            self.server.close()
        for w in list(self.open):
            w.close()


def _drafts_via(proxy: Proxy, user: ImapUser, tmp_path: Path, telegram: FakeTelegram) -> ImapDrafts:
    settings = settings_from(run_env(tmp_path, user, telegram))
    return ImapDrafts(dataclasses.replace(settings.mailboxes[0], port=proxy.port), timeout=10,
                      probe_after=0.5, probe_timeout=1.0)


@pytest.mark.both_imap_servers
async def test_an_append_whose_answer_was_lost_is_found_not_written_twice(
    tmp_path: Path, dovecot: Dovecot, imap_user: ImapUser, fake_telegram: FakeTelegram,
) -> None:
    proxy = Proxy(dovecot.host, dovecot.port)
    await proxy.start()
    sink = _drafts_via(proxy, imap_user, tmp_path, fake_telegram)
    key = f"lost-answer-{secrets.token_hex(4)}@test.example"
    try:
        assert await sink.find(key) is None  # the kept connection exists now
        proxy.lose_append_answer = True
        began = time.monotonic()
        ref = await sink.append(crlf(make_mail(headers={KEY_HEADER: key})))
        took = time.monotonic() - began
        [(uid, _, raw)] = dovecot.messages(imap_user.user, "Drafts")
        assert ref.endswith(f":{uid}") and key.encode() in raw
        assert took < 5, f"the lost answer cost {took:.1f} s"  # not the 10 s command timeout
        assert not proxy.lose_append_answer
    finally:
        await sink.aclose()
        await proxy.aclose()


@pytest.mark.both_imap_servers
async def test_a_silent_kept_connection_is_found_out_by_a_short_noop(
    tmp_path: Path, dovecot: Dovecot, imap_user: ImapUser, fake_telegram: FakeTelegram,
) -> None:
    proxy = Proxy(dovecot.host, dovecot.port)
    await proxy.start()
    sink = _drafts_via(proxy, imap_user, tmp_path, fake_telegram)
    key = f"silent-{secrets.token_hex(4)}@test.example"
    try:
        assert await sink.find(key) is None
        proxy.silence_open_connections()  # a server gone without a FIN: nothing comes back any more
        await asyncio.sleep(0.6)  # unused longer than probe_after
        began = time.monotonic()
        ref = await sink.append(crlf(make_mail(headers={KEY_HEADER: key})))
        took = time.monotonic() - began
        assert len(dovecot.messages(imap_user.user, "Drafts")) == 1 and ref.startswith("me:Drafts:")
        assert took < 5, f"the silent connection cost {took:.1f} s"  # the NOOP's 1 s, not the 10 s timeout
        # A connection the server closes (doveadm kick) is dropped at once, not used and waited out.
        dovecot.kick(imap_user.user)
        await asyncio.sleep(0.2)
        began = time.monotonic()
        assert await sink.find(key) == ref
        assert time.monotonic() - began < 5
    finally:
        await sink.aclose()
        await proxy.aclose()


@pytest.mark.both_imap_servers
async def test_a_one_tap_step_whose_connection_breaks_is_done_once_at_once(
    tmp_path: Path, dovecot: Dovecot, imap_user: ImapUser, fake_telegram: FakeTelegram,
) -> None:
    proxy = Proxy(dovecot.host, dovecot.port)
    await proxy.start()
    settings = settings_from(run_env(tmp_path, imap_user, fake_telegram))
    mailbox = ImapMailbox(dataclasses.replace(settings.mailboxes[0], port=proxy.port), timeout=10)
    message_id = f"<sent-{secrets.token_hex(4)}@example.org>"
    try:
        proxy.lose_append_answer = True  # the copy is filed, its answer never arrives, the connection closes
        began = time.monotonic()
        ref = await mailbox.append_sent(crlf(make_mail(message_id=message_id)), message_id)
        took = time.monotonic() - began
        [(uid, flags, _)] = dovecot.messages(imap_user.user, "Sent")
        assert ref == f"Sent:{uid}" and "\\Seen" in flags and not proxy.lose_append_answer
        assert took < 5, f"the lost answer cost {took:.1f} s"  # not the 10 s command timeout
    finally:
        await proxy.aclose()
