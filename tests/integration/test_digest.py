"""Backlog digests on SQLite and PostgreSQL through the loopback Bot API: the text fits Telegram and is
escaped, each owed mail is told exactly once (also with two senders at once, after a Telegram failure,
and after a sender died mid-send), and migration 0003 (messages.origin) goes up and down."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import inspect, update

from recruiter.notify.digest import MAX_ENTITIES, LinkSigner, digest_lines, fit_glyphs, render_digest, send_digests
from recruiter.notify.telegram import TelegramNotifier
from recruiter.store.inbox import NewMessage
from recruiter.store.migrate import downgrade, upgrade_head
from recruiter.store.models import DONE, FINISHED, LIVE, Message, SideEffect, utcnow
from recruiter.store.repo import Store
from recruiter.triage.fit import FitCheck
from tests.servers.fake_telegram import FakeTelegram, parse_html, utf16_len
from tests.support.fit import CHECK

SIGNER = LinkSigner("https://rr.example.org", "digest-secret-123", 3600)
_SEND = re.compile(r"/cb/send\?m=(\d+)&amp;")


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    await upgrade_head(db_url)
    store = Store.from_url(db_url)
    yield store
    await store.aclose()


@pytest.fixture
async def telegram(fake_telegram: FakeTelegram) -> AsyncIterator[TelegramNotifier]:
    notifier = TelegramNotifier(fake_telegram.token, "4242", base_url=fake_telegram.base_url, timeout=5)
    await notifier.start()
    yield notifier
    await notifier.aclose()


async def owed(store: Store, count: int, *, origin: str = "replay:t1", subject: str = "Role at Acme") -> list[int]:
    """``count`` backlog recruiter mails, done, owed a digest."""
    news = [NewMessage(key=f"{origin}-{i}@x", mailbox="me", raw=b"Subject: x\r\n\r\nbody", subject=f"{subject} {i}",
                       from_addr=f"jane{i}@acme.example", origin=origin) for i in range(count)]
    ids = [i for i in await store.add_messages(news) if i is not None]
    claimed = await store.claim_due("t", limit=count, lease_seconds=60)
    assert sorted(claimed) == sorted(ids)
    triage = {"is_recruiter": True, "confidence": 0.9, "company": "Acme & Sons <GmbH>", "role": "SRE",
              "meetings": []}
    for message_id in ids:
        await store.advance(message_id, "t", state=DONE, stage=FINISHED, is_recruiter=True, triage=triage,
                            lease_owner=None, lease_expires_at=None)
    return ids


def told(fake: FakeTelegram) -> list[int]:
    return [int(i) for m in fake.messages() for i in _SEND.findall(m["text"])]


def message(i: int, *, subject: str, sender: str, company: str) -> Message:
    return Message(id=i, key=f"k{i}", mailbox="me", subject=subject, from_addr=sender,
                   triage={"company": company, "role": "Staff " * 40, "meetings": [{}, {}]})


def test_digest_text_fits_telegram_and_escapes_the_mail() -> None:
    hostile = "<script>alert(1)</script> & <b>bold</b> \u202e" + "ü" * 400 + "😀" * 200
    messages = [message(i, subject=hostile, sender=f"x{i}@evil.example&lt;", company=hostile) for i in range(1, 41)]
    parts = render_digest(digest_lines(messages, SIGNER, now=1_000_000))
    assert len(parts) > 1  # forty long lines do not fit one message
    seen: list[int] = []
    for text, _ in parts:
        plain = parse_html(text)  # raises like the real API on broken HTML
        assert utf16_len(plain) <= 4096 and "<script>" in plain and "\u202e" not in plain
        assert text.count("<a ") <= MAX_ENTITIES
        seen += [int(i) for i in _SEND.findall(text)]
    assert seen == list(range(1, 41))

    short = render_digest(digest_lines(messages[:10], SIGNER, now=1_000_000))
    assert len(short) == 1 and short[0][0].startswith("📬 <b>Backlog digest · 10 recruiter mails</b>")


async def test_each_owed_mail_is_told_once_in_digests_of_size(store: Store, telegram: TelegramNotifier,
                                                              fake_telegram: FakeTelegram) -> None:
    ids = await owed(store, 23)
    report = await send_digests(store, telegram, SIGNER, size=10, flush=False)
    assert (report.digests, report.lines, report.owed) == (2, 20, 3)
    report = await send_digests(store, telegram, SIGNER, size=10)
    assert (report.digests, report.lines, report.owed) == (1, 3, 0)
    again = await send_digests(store, telegram, SIGNER, size=10)
    assert (again.digests, again.lines) == (0, 0)
    assert told(fake_telegram) == ids and len(fake_telegram.messages()) == 3
    refs = {e.ref for i in ids for e in await store.effects_for(i) if e.kind == "notify"}
    assert len(refs) == 3  # each line's record names its digest message
    assert "Acme &amp; Sons &lt;GmbH&gt;" in fake_telegram.messages()[0]["text"]


async def test_live_mail_and_unfinished_mail_get_no_digest_line(store: Store, telegram: TelegramNotifier,
                                                                fake_telegram: FakeTelegram) -> None:
    await owed(store, 2, origin=LIVE)
    pending = await store.add_messages([NewMessage(key="p@x", mailbox="me", raw=b"x", origin="replay:t2")])
    report = await send_digests(store, telegram, SIGNER)
    assert report.lines == 0 and fake_telegram.messages() == [] and pending[0] is not None


async def test_two_senders_at_once_tell_each_mail_once(store: Store, telegram: TelegramNotifier,
                                                       fake_telegram: FakeTelegram) -> None:
    ids = await owed(store, 30)
    await asyncio.gather(*(send_digests(store, telegram, SIGNER, size=5) for _ in range(3)))
    assert sorted(told(fake_telegram)) == ids and max(Counter(told(fake_telegram)).values()) == 1


async def test_a_failed_send_is_owed_again(store: Store, telegram: TelegramNotifier,
                                           fake_telegram: FakeTelegram) -> None:
    ids = await owed(store, 4)
    fake_telegram.script(FakeTelegram.Status(502))
    report = await send_digests(store, telegram, SIGNER, size=10)
    assert report.error and report.lines == 0 and report.owed == 4
    assert [await store.effect(f"replay:t1-{i}@x:notify-intent") for i in range(4)] == [None] * 4
    report = await send_digests(store, telegram, SIGNER, size=10)
    assert report.lines == 4 and told(fake_telegram) == ids


async def test_a_sender_that_died_mid_send_is_never_repeated(store: Store, telegram: TelegramNotifier,
                                                             fake_telegram: FakeTelegram) -> None:
    ids = await owed(store, 3)
    # Mail 0: an old intent (its sender died mid-send). Mail 1: a fresh one (another sender is at work).
    assert await store.claim_effects([(ids[0], "replay:t1-0@x:notify-intent", "notify-intent", "dead:1"),
                                      (ids[1], "replay:t1-1@x:notify-intent", "notify-intent", "busy:2")])
    async with store.engine.begin() as conn:
        await conn.execute(update(SideEffect).where(SideEffect.key == "replay:t1-0@x:notify-intent")
                           .values(created_at=utcnow() - timedelta(hours=1)))
    report = await send_digests(store, telegram, SIGNER, size=10)
    assert (report.uncertain, report.lines, report.owed) == (1, 1, 1)
    assert told(fake_telegram) == [ids[2]]
    assert await store.effect("replay:t1-0@x:notify") == "uncertain"
    assert await store.effect("replay:t1-1@x:notify") is None  # still the other sender's


async def test_migration_0003_adds_origin_and_goes_back(db_url: str) -> None:
    await upgrade_head(db_url)
    store = Store.from_url(db_url)
    try:
        first = await store.add_message(NewMessage(key="old@x", mailbox="me", raw=b"x"))
        await downgrade(db_url, "0002")
        async with store.engine.connect() as conn:
            columns = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("messages")})
        assert "origin" not in columns and "dead_reason" in columns
        await store.engine.dispose()
        await upgrade_head(db_url)
        row = await store.get(first or 0)
        assert row is not None and row.origin == LIVE  # mail stored before 0003 is live mail
    finally:
        await store.aclose()


# ---- the fit in digest lines (issue 16) ----

MISS = {"is_recruiter": True, "confidence": 0.9, "company": "Acme", "role": "Staff SRE", "location": "Berlin",
        "compensation": "€95k", "industry": "fintech", "meetings": []}


def _message(i: int, triage: dict[str, Any]) -> Message:
    return Message(id=i, key=f"k{i}", mailbox="me", subject="Role", from_addr="jane@acme.example", triage=triage)


def test_a_digest_line_has_one_glyph_per_criterion() -> None:
    [line] = digest_lines([_message(1, MISS)], SIGNER, now=1_000_000, fit=CHECK)
    shown = parse_html(render_digest([line])[0][0])
    assert "fit ✅level ✅location ❌comp ❓equity ✅domain" in shown
    [plain] = digest_lines([_message(1, MISS)], SIGNER, now=1_000_000, fit=CHECK, plain=True)
    assert "fit ✅level ✅location ❌comp ❓equity ✅domain" in plain.html


def test_no_profile_or_an_unreadable_stored_verdict_means_no_glyphs() -> None:
    [line] = digest_lines([_message(1, MISS)], SIGNER, now=1_000_000)
    assert "fit " not in parse_html(render_digest([line])[0][0])
    assert fit_glyphs({"is_recruiter": "perhaps", "confidence": 7}, CHECK) == ""
    assert fit_glyphs({}, CHECK) == ""


async def test_the_digest_sent_tells_the_fit(store: Store, telegram: TelegramNotifier,
                                             fake_telegram: FakeTelegram) -> None:
    ids = await owed(store, 3)
    report = await send_digests(store, telegram, SIGNER, size=10, fit=FitCheck.from_profile("", {}))
    assert report.lines == 3
    [sent] = fake_telegram.messages()
    # An empty profile: every criterion unknown, still one glyph each.
    assert parse_html(sent["text"]).count("fit ❓level ❓location ❓comp ❓equity ❓domain") == len(ids)
