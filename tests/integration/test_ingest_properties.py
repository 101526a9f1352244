"""Property-based tests of the ingest entry point (describe_within + store_new, as the watcher calls
them), on SQLite and PostgreSQL: whatever a mail's bytes are — nested comments, encoded words in every
charset Python knows, lone surrogates, NUL bytes, endless header values, Message-IDs of any length — it is
stored (normally or quarantined), and ingest never raises. Two long Message-IDs that share their first 512
characters are two mails."""

from __future__ import annotations

import asyncio
import codecs
import encodings.aliases
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from recruiter.errors import UnparseableMail
from recruiter.ingest.describe import describe, describe_within, raw_key, store_new
from recruiter.mail.parse import parse_message
from recruiter.store.migrate import upgrade_head
from recruiter.store.models import Message
from recruiter.store.repo import Store
from recruiter.store.safe import safe_key
from tests.mailfactory import make_mail


def _codecs() -> list[str]:
    names = set()
    for name in {*encodings.aliases.aliases.values(), "utf-7", "unicode-escape", "raw-unicode-escape", "utf-16",
                 "utf-32", "idna", "punycode", "x-unknown", "rot13", "base64", "zlib"}:
        try:
            codecs.lookup(name)
        except LookupError:
            continue
        names.add(name)
    return sorted(names)


CHARSETS = _codecs()
NASTY_TEXT = st.sampled_from(["+2AA-", "\\ud800", "\\udfff\\x00", "+AAA-", "=00", "\x00", "\ud800", "A" * 3000])


@st.composite
def encoded_words(draw: st.DrawFn) -> str:
    charset = draw(st.sampled_from([*CHARSETS, "utf-7", "unicode-escape"]))
    encoding = draw(st.sampled_from("BQbq"))
    payload = draw(st.one_of(NASTY_TEXT, st.text(alphabet=st.characters(codec="ascii"), max_size=40)))
    payload = payload.encode("ascii", "backslashreplace").decode("ascii").replace("?", "=3F").replace(" ", "_")
    return f"=?{charset}?{encoding}?{payload}?="


@st.composite
def nested(draw: st.DrawFn) -> str:
    depth = draw(st.integers(min_value=100, max_value=1500))
    opening, closing = draw(st.sampled_from([("(", ")"), ("<", ">"), ('"', '"'), ("[", "]"), ("(", "")]))
    return f"Bob {opening * depth}{closing * draw(st.integers(0, depth))} <bob@x.example>"


HEADER_VALUE = st.one_of(
    st.text(max_size=60),
    encoded_words(),
    nested(),
    NASTY_TEXT,
    st.text(min_size=1, max_size=5).map(lambda t: t * 4000),  # a header value tens of KB long
)
MESSAGE_ID = st.one_of(
    st.integers(min_value=1, max_value=3000).map(lambda n: f"<{'a' * n}@x.example>"),
    st.text(max_size=50).map(lambda t: f"<{t}@x>"),
    st.just("<\x00@x>"), st.just("<\ud800@x>"), st.just(""), st.just("<>"), st.just("<<<>>>"),
)


@st.composite
def hostile_mails(draw: st.DrawFn) -> bytes:
    headers = [
        ("From", draw(HEADER_VALUE)), ("Subject", draw(HEADER_VALUE)), ("Message-ID", draw(MESSAGE_ID)),
        *draw(st.lists(st.tuples(st.sampled_from(["To", "Reply-To", "Date", "References", "Content-Type",
                                                  "In-Reply-To", "X-Whatever"]), HEADER_VALUE), max_size=4)),
    ]
    head = b"".join(f"{name}: {value}".encode("utf-8", "surrogatepass") + b"\r\n" for name, value in headers)
    body = draw(st.one_of(st.binary(max_size=300), st.just(b"hello\x00world\r\n")))
    return head + b"\r\n" + body


BASE = make_mail(subject="Staff SRE role at Acme", message_id="<base-mail@acme.example>",
                 headers={"Reply-To": "Jobs <jobs@acme.example>", "References": "<a@x> <b@y>"})


@st.composite
def mutated_mails(draw: st.DrawFn) -> bytes:
    """A real recruiter mail with bytes flipped, cut, repeated or inserted."""
    raw = bytearray(BASE)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "repeat"]))
        at = draw(st.integers(0, max(0, len(raw) - 1)))
        if kind == "flip" and raw:
            raw[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del raw[at:at + draw(st.integers(1, 200))]
        elif kind == "insert":
            raw[at:at] = draw(st.sampled_from([b"\x00", b"(" * 800, b"=?utf-7?Q?+2AA-?=", b"\r\n\r\n", b"\xff\xfe"]))
        else:
            raw[at:at] = bytes(raw[at:at + 50]) * draw(st.integers(2, 50))
    return bytes(raw)


async def _ingest(store: Store, raw: bytes, uid: int) -> None:
    # The watcher's own entry point (its header block read in a thread here, not a helper process: the
    # same code on each side of the hop, without a process per example).
    new = await describe_within(None, raw, mailbox="me", folder="INBOX", uidvalidity=1, uid=uid)
    await store_new(store, new)  # must not raise
    async with store._read() as session:
        found = (await session.execute(select(Message.state, Message.dead_reason).where(
            Message.key.in_([safe_key(new.key), raw_key(raw)])))).all()
    assert found, f"mail of {len(raw)} bytes was not stored (key {new.key[:80]!r})"
    checkpoint = await store.checkpoint("me")
    assert checkpoint is not None and checkpoint[1] >= uid  # the watcher moves on


@pytest.fixture
def ingest_store(db_url: str) -> Iterator[tuple[asyncio.AbstractEventLoop, Store]]:
    loop = asyncio.new_event_loop()
    loop.run_until_complete(upgrade_head(db_url))
    store = Store.from_url(db_url)
    try:
        yield loop, store
    finally:
        loop.run_until_complete(store.aclose())
        loop.close()


def test_any_mail_is_stored_and_ingest_never_raises(ingest_store: tuple[asyncio.AbstractEventLoop, Store]) -> None:
    loop, store = ingest_store
    uids = iter(range(1, 10_000))

    @settings(max_examples=120, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(st.one_of(hostile_mails(), mutated_mails(), st.binary(max_size=500)))
    def check(raw: bytes) -> None:
        loop.run_until_complete(_ingest(store, raw, next(uids)))

    check()


def test_long_message_ids_with_a_common_start_are_two_mails(
    ingest_store: tuple[asyncio.AbstractEventLoop, Store],
) -> None:
    loop, store = ingest_store
    common = "x" * 600
    first = make_mail(subject="first", message_id=f"<{common}1@x.example>")
    second = make_mail(subject="second", message_id=f"<{common}2@x.example>")

    async def run() -> list[tuple[str, str]]:
        assert await store_new(store, describe(first, mailbox="me")) is not None
        assert await store_new(store, describe(second, mailbox="me")) is not None
        assert await store_new(store, describe(second, mailbox="me")) is None  # the same mail again: a duplicate
        async with store._read() as session:
            return [(r.subject, r.state) for r in (await session.execute(select(Message))).scalars()]

    rows = loop.run_until_complete(run())
    assert sorted(rows) == [("first", "pending"), ("second", "pending")]


def test_the_crafted_mails_of_the_report_are_stored_and_readable(
    ingest_store: tuple[asyncio.AbstractEventLoop, Store],
) -> None:
    """The three mails that used to stop a mailbox: each is stored as a normal, readable row."""
    loop, store = ingest_store
    crafted = {
        "nested": b"From: Bob " + b"(" * 700 + b")" * 700 + b" <bob@x.example>\r\nSubject: nested\r\n"
                  b"Message-ID: <nested@x>\r\n\r\nhi\r\n",
        "utf7": b"From: a@x.example\r\nSubject: =?utf-7?Q?+2AA-?=\r\nMessage-ID: <utf7@x>\r\n\r\nhi\r\n",
        "long-id": make_mail(subject="long id", message_id=f"<{'m' * 900}@x.example>"),
    }

    async def run() -> dict[str, tuple[str, str, str]]:
        out = {}
        for uid, (name, raw) in enumerate(crafted.items(), start=1):
            new = describe(raw, mailbox="me", folder="INBOX", uidvalidity=1, uid=uid)
            assert new.quarantine is None, new.quarantine
            message_id = await store_new(store, new)
            assert message_id is not None
            row = await store.get(message_id)
            assert row is not None
            out[name] = (row.state, row.from_addr, row.subject)
        return out

    rows = loop.run_until_complete(run())
    assert rows["nested"] == ("pending", "bob@x.example", "nested")
    assert rows["utf7"][0] == "pending" and rows["utf7"][2] == "\ufffd"
    assert rows["long-id"][0] == "pending"
    assert loop.run_until_complete(store.checkpoint("me")) == (1, 3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(hostile_mails(), mutated_mails()))
def test_every_parsed_text_can_be_encoded(raw: bytes) -> None:
    """What the parse hands on (to the LLM as JSON, to Telegram, to the store) is text every encoder
    takes: no lone surrogate from a utf-7 or unicode-escape word survives."""
    try:
        mail = parse_message(raw, max_text_chars=2000)
    except UnparseableMail:
        return
    for value in (mail.subject, mail.from_name, mail.from_addr, mail.text, mail.signature, mail.reply_to or "",
                  *mail.to_addrs, *mail.headers.values(), *mail.headers.keys()):
        value.encode("utf-8")
