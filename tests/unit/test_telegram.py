"""The Telegram notifier through the real python-telegram-bot client against the loopback fake."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from urllib.parse import quote

import pytest

from recruiter.errors import DependencyUnavailable, MaybeDone, PermanentError, TransientError
from recruiter.notify.card import render_card
from recruiter.notify.links import card_links
from recruiter.notify.telegram import Button, Notifier, StdoutNotifier, TelegramNotifier
from tests.servers.fake_telegram import FakeTelegram
from tests.support.cards import NASTY, RTL, a_mail, a_triage

CHAT = "4242"
BUTTONS = [
    Button("✅ Send", "https://cb.example.org/cb/send?m=1&exp=2&sig=aa"),
    Button("🙅 Decline", "https://cb.example.org/cb/decline?m=1&exp=2&sig=bb"),
    Button("🙈 Ignore", "https://cb.example.org/cb/ignore?m=1&exp=2&sig=cc"),
]


def _notifier(fake: FakeTelegram, timeout: float = 5) -> TelegramNotifier:
    return TelegramNotifier(fake.token, CHAT, base_url=fake.base_url, timeout=timeout)


async def test_card_with_three_url_buttons(fake_telegram: FakeTelegram) -> None:
    notifier = _notifier(fake_telegram)
    assert isinstance(notifier, Notifier)
    try:
        await notifier.start()
        ref = await notifier.send_card("<b>Acme</b> wants to talk &amp; more", BUTTONS)
    finally:
        await notifier.aclose()
    [message] = fake_telegram.messages()
    assert ref == f"{CHAT}:1"
    assert message["chat_id"] == CHAT
    assert message["parse_mode"] == "HTML"
    assert message["text"] == "<b>Acme</b> wants to talk &amp; more"
    assert message["link_preview_options"] == {"is_disabled": True}
    rows = message["reply_markup"]["inline_keyboard"]
    assert len(rows) == 1
    assert [(b["text"], b["url"]) for b in rows[0]] == [(b.text, b.url) for b in BUTTONS]
    assert [m for m, _ in fake_telegram.calls] == ["getMe", "sendMessage"]


async def test_send_text_starts_lazily(fake_telegram: FakeTelegram) -> None:
    notifier = _notifier(fake_telegram)
    try:
        first = await notifier.send_text("Triage is failing: LLM down")
        second = await notifier.send_text("Triage recovered")
    finally:
        await notifier.aclose()
    assert (first, second) == (f"{CHAT}:1", f"{CHAT}:2")
    assert all("reply_markup" not in m for m in fake_telegram.messages())
    assert [m for m, _ in fake_telegram.calls].count("getMe") == 1


async def test_429_is_transient_with_retry_after(fake_telegram: FakeTelegram) -> None:
    fake_telegram.script(FakeTelegram.Status(429, "Too Many Requests: retry after 7", retry_after=7))
    notifier = _notifier(fake_telegram)
    try:
        with pytest.raises(TransientError) as info:
            await notifier.send_card("hi", BUTTONS)
        assert info.value.retry_after == 7
        assert info.value.dependency == "telegram"
        assert not isinstance(info.value, PermanentError)
        assert await notifier.send_card("hi", BUTTONS) == f"{CHAT}:1"  # one-shot: next call works
    finally:
        await notifier.aclose()


@pytest.mark.parametrize("status", [500, 502])
async def test_5xx_is_dependency_unavailable(fake_telegram: FakeTelegram, status: int) -> None:
    fake_telegram.script(FakeTelegram.Status(status))
    notifier = _notifier(fake_telegram)
    try:
        with pytest.raises(DependencyUnavailable) as info:
            await notifier.send_text("hi")
    finally:
        await notifier.aclose()
    assert info.value.dependency == "telegram" and info.value.status == status


async def test_outage_during_start_is_dependency_unavailable(fake_telegram: FakeTelegram) -> None:
    fake_telegram.fail_all(500)
    notifier = _notifier(fake_telegram)
    try:
        with pytest.raises(DependencyUnavailable):
            await notifier.start()
        fake_telegram.fail_all(None)
        assert await notifier.send_text("back") == f"{CHAT}:1"
    finally:
        await notifier.aclose()


async def test_no_answer_after_the_request_was_written_is_maybe_done(fake_telegram: FakeTelegram) -> None:
    """A read timeout or a connection closed before the answer: Telegram may have acted (here it did)."""
    notifier = _notifier(fake_telegram, timeout=0.5)
    try:
        await notifier.start()
        fake_telegram.script(FakeTelegram.Late(2))
        with pytest.raises(MaybeDone) as late:
            await notifier.send_text("delivered, answered late")
        fake_telegram.script(FakeTelegram.ActThenDrop())
        with pytest.raises(MaybeDone) as dropped:
            await notifier.send_card("delivered, never answered", BUTTONS)
        fake_telegram.script(FakeTelegram.Drop())
        with pytest.raises(MaybeDone):  # closed before it acted: from here the two cannot be told apart
            await notifier.send_text("dropped")
    finally:
        await notifier.aclose()
    assert not isinstance(late.value, TransientError) and late.value.dependency == "telegram"
    assert "no answer came" in str(dropped.value)
    assert [m["text"] for m in fake_telegram.messages()] == ["delivered, answered late", "delivered, never answered"]


@pytest.mark.parametrize("opt_in", [None, "true"])
async def test_a_429_reads_the_same_with_or_without_ptb_timedelta(
    fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch, opt_in: str | None
) -> None:
    """python-telegram-bot's retry_after is seconds or a timedelta depending on PTB_TIMEDELTA; the service
    neither needs nor sets the variable: the wait and the text are ours either way."""
    if opt_in is None:
        monkeypatch.delenv("PTB_TIMEDELTA", raising=False)
    else:
        monkeypatch.setenv("PTB_TIMEDELTA", opt_in)
    notifier = _notifier(fake_telegram)
    try:
        fake_telegram.script(FakeTelegram.Status(429, "Too Many Requests: retry after 7", retry_after=7))
        with pytest.raises(TransientError) as info:
            await notifier.send_text("slow down")
    finally:
        await notifier.aclose()
    assert (info.value.status, info.value.retry_after, info.value.dependency) == (429, 7.0, "telegram")
    assert str(info.value) == "Telegram sendMessage failed: RetryAfter: Flood control exceeded. Retry in 7 seconds"


def test_importing_the_notifier_leaves_the_environment_alone() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PTB_TIMEDELTA"}
    code = "import os, recruiter.notify.telegram; print(os.environ.get('PTB_TIMEDELTA'))"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                            check=True)
    assert result.stdout.strip() == "None"


async def test_refused_connection_is_dependency_unavailable() -> None:
    notifier = TelegramNotifier("123:abc", CHAT, base_url="http://127.0.0.1:9/bot", timeout=2)
    try:
        with pytest.raises(DependencyUnavailable):
            await notifier.send_text("nobody home")
    finally:
        await notifier.aclose()


async def test_400_is_permanent(fake_telegram: FakeTelegram) -> None:
    fake_telegram.script(FakeTelegram.Status(400, "Bad Request: can't parse entities"))
    notifier = _notifier(fake_telegram)
    try:
        with pytest.raises(PermanentError) as info:
            await notifier.send_card("hi", BUTTONS)
    finally:
        await notifier.aclose()
    assert info.value.reason == "telegram_4xx" and info.value.status == 400
    assert "can't parse entities" in str(info.value).lower()


async def test_forbidden_is_permanent(fake_telegram: FakeTelegram) -> None:
    fake_telegram.script(FakeTelegram.Status(403))
    notifier = _notifier(fake_telegram)
    try:
        with pytest.raises(PermanentError) as info:
            await notifier.send_text("hi")
    finally:
        await notifier.aclose()
    assert info.value.reason == "telegram_4xx" and info.value.status == 403


async def test_bad_markup_is_refused_by_the_fake_and_permanent(fake_telegram: FakeTelegram) -> None:
    notifier = _notifier(fake_telegram)
    try:
        for text in ("<b>unclosed", "a < b", "fish & chips", "<script>x</script>", "x" * 4097):
            with pytest.raises(PermanentError):
                await notifier.send_text(text)
    finally:
        await notifier.aclose()
    assert fake_telegram.messages() == []


async def test_token_never_in_errors_or_logs(
    fake_telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "999999:WRONG-secret-token"
    notifier = TelegramNotifier(wrong, CHAT, base_url=fake_telegram.base_url, timeout=2)
    try:
        with pytest.raises(PermanentError) as info:
            await notifier.start()
    finally:
        await notifier.aclose()
    assert info.value.status == 401
    chain: BaseException | None = info.value
    while chain is not None:
        assert wrong not in f"{chain!s} {chain!r}"
        chain = chain.__cause__ or chain.__context__
    assert wrong not in repr(notifier)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "sendMessage" in logged or "getMe" in logged  # the libraries did log the URLs ...
    assert wrong not in logged  # ... with the token redacted
    assert wrong not in caplog.text


async def test_token_not_in_network_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = "555:NETWORK-secret"
    notifier = TelegramNotifier(token, CHAT, base_url="http://127.0.0.1:9/bot", timeout=1)
    try:
        with pytest.raises(DependencyUnavailable) as info:
            await notifier.send_text("x")
    finally:
        await notifier.aclose()
    assert token not in str(info.value)
    assert token not in caplog.text


async def test_stdout_notifier_prints_plain_text_and_buttons() -> None:
    stream = io.StringIO()
    notifier = StdoutNotifier(stream)
    assert isinstance(notifier, Notifier)
    await notifier.start()
    first = await notifier.send_card("<b>From:</b> Jane &lt;jane@acme.example&gt; &amp; co", BUTTONS)
    second = await notifier.send_text("<i>all good</i>")
    await notifier.aclose()
    out = stream.getvalue()
    assert (first, second) == ("stdout:1", "stdout:2")
    assert "From: Jane <jane@acme.example> & co" in out
    assert "<b>" not in out and "&lt;" not in out
    for button in BUTTONS:
        assert f"[{button.text}] {button.url}" in out
    assert out.count("-" * 72) == 2
    assert "all good" in out


async def test_nasty_card_is_accepted_end_to_end(fake_telegram: FakeTelegram) -> None:
    long = (NASTY + " ") * 60  # ~5000+ characters of <, &, emoji and RTL text
    assert len(long) > 5000
    mail = a_mail(subject=long, from_name="<Jane & Co> " + RTL)
    triage = a_triage(company="Acme & <Sons>", summary=long[:500])
    card = render_card(mail=mail, triage=triage, draft=long, mailbox="work", tier="rules")
    links = card_links("https://cb.example.org", "secret", 17, now=1_800_000_000)
    buttons = [Button(label, links[action]) for label, action in
               (("Send", "send"), ("Decline", "decline"), ("Ignore", "ignore"))]
    notifier = _notifier(fake_telegram)
    try:
        await notifier.send_card(card, buttons)
    finally:
        await notifier.aclose()
    [message] = fake_telegram.messages()
    assert message["text"] == card
    stored = fake_telegram.chats[CHAT][1]["text"]  # what a phone would show
    assert "<Jane & Co>" in stored and RTL in stored and "😀" in stored
    urls = [b["url"] for b in message["reply_markup"]["inline_keyboard"][0]]
    assert urls == [links["send"], links["decline"], links["ignore"]]


async def test_stdout_notifier_survives_a_narrow_terminal_encoding() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="latin-1")
    notifier = StdoutNotifier(stream)
    assert await notifier.send_text("😀 Acme café") == "stdout:1"
    stream.flush()
    assert "? Acme café" in raw.getvalue().decode("latin-1")


def test_the_log_filter_redacts_raw_and_quoted_tokens_of_every_notifier(fake_telegram: FakeTelegram) -> None:
    first, second = "777:first/secret+token", "888:second-secret"
    TelegramNotifier(first, CHAT, base_url=fake_telegram.base_url)
    TelegramNotifier(second, CHAT, base_url=fake_telegram.base_url)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("httpx")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        logger.info("POST %s %s %s", f"/bot{first}/sendMessage", f"/bot{quote(first, safe='')}/getMe",
                    f"/bot{second}/x")
        logger.info("nothing secret: %d", 7)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert [r.getMessage() for r in records] == [
        "POST /bot<redacted>/sendMessage /bot<redacted>/getMe /bot<redacted>/x", "nothing secret: 7"]
