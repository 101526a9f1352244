"""Incidents and alerts through the real TelegramNotifier against the loopback fake Bot API, on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from recruiter.health import Incidents
from recruiter.notify.telegram import TelegramNotifier
from recruiter.store.repo import Store
from tests.servers.fake_telegram import FakeTelegram
from tests.support.telegram import chat_texts

START = datetime(2026, 6, 2, 14, 41, tzinfo=UTC).timestamp()  # 17:41 EEST, the post-mortem's first 502
TIER = "llama-swap:qwen3-8b"
ERROR = "502 Bad Gateway from llama-swap (qwen3-8b)"


class Clock:
    """A settable clock."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Waiting:
    """The store query: how many messages are waiting."""

    def __init__(self, count: int = 0) -> None:
        self.count = count

    async def __call__(self) -> int:
        return self.count


_STORES: list[Store] = []


@pytest.fixture(autouse=True)
def _the_store(store: Store) -> Iterator[None]:
    _STORES.append(store)
    yield
    _STORES.remove(store)


def _incidents(notifier: TelegramNotifier, clock: Clock, waiting: Waiting | None = None,
               **kwargs: Any) -> Incidents:
    return Incidents(notifier, _STORES[-1], clock=clock, waiting=waiting or Waiting(), **kwargs)


async def _fail(incidents: Incidents, times: int, *, error: str = ERROR, tier: str = TIER) -> None:
    for _ in range(times):
        await incidents.triage_failed(tier=tier, error=error)


async def _run_for(incidents: Incidents, clock: Clock, seconds: float, *, step: float = 5) -> None:
    """Let time pass, ticking every ``step`` seconds like the service does."""
    end = clock.now + seconds
    while clock.now < end:
        clock.now = min(end, clock.now + step)
        await incidents.tick()


async def test_post_mortem_replay_gives_one_alert_and_one_recovery(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier
) -> None:
    clock, waiting = Clock(), Waiting(3)
    incidents = _incidents(notifier, clock, waiting)
    interval = 9000 / 440  # 440 failed triage attempts over 2.5 h
    for attempt in range(440):
        clock.now = START + attempt * interval
        waiting.count = 3 + attempt // 8  # recruiter mail keeps arriving
        await incidents.triage_failed(tier=TIER, error=ERROR)
        if attempt == 3:
            assert chat_texts(fake_telegram) == [] and not incidents.triage_paused
        if attempt == 4:
            assert len(chat_texts(fake_telegram)) == 1 and incidents.triage_paused
        await _run_for(incidents, clock, interval - 1, step=10)
    [alert] = chat_texts(fake_telegram)
    assert "The LLM is failing" in alert
    assert f"Last error: {ERROR}" in alert
    assert f"Tier: {TIER}" in alert
    assert "Waiting: 3 messages" in alert  # the count when the alert went out (5th failure)
    assert "Since: 2026-06-02 14:41 UTC" in alert

    clock.now = START + 9000
    waiting.count = 58
    await incidents.triage_succeeded()
    assert not incidents.triage_paused  # the backlog drains at once, and the owner is told at once
    assert len(chat_texts(fake_telegram)) == 2
    await _run_for(incidents, clock, 3600)
    assert len(chat_texts(fake_telegram)) == 2
    recovery = chat_texts(fake_telegram)[1]
    assert "The LLM recovered after 2 h 30 min" in recovery
    assert "Processed late: 58 messages" in recovery
    assert "2026-06-02 14:41 UTC to 2026-06-02 17:11 UTC" in recovery
    assert incidents.snapshot()["pending_deliveries"] == 0


async def test_reminders_every_remind_seconds_only(fake_telegram: FakeTelegram, notifier: TelegramNotifier) -> None:
    clock = Clock()
    incidents = _incidents(notifier, clock, Waiting(7))
    await _fail(incidents, 5)
    for _ in range(9 * 20):  # nine hours, a probe failing every three minutes
        await _run_for(incidents, clock, 180, step=60)
        await incidents.triage_failed(tier=TIER, error=ERROR)
    texts = chat_texts(fake_telegram)
    assert len(texts) == 3  # the alert, then reminders at 4 h and 8 h
    for reminder, hours in zip(texts[1:], (4, 8), strict=True):
        assert f"The LLM is still failing — for {hours} h\n" in reminder
        assert ERROR in reminder and TIER in reminder and "Waiting: 7 messages" in reminder
    await incidents.triage_succeeded()
    await _run_for(incidents, clock, 600)
    assert len(chat_texts(fake_telegram)) == 4
    assert "The LLM recovered after 9 h\n" in chat_texts(fake_telegram)[3]


async def test_a_flap_within_flap_seconds_is_one_incident(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier
) -> None:
    clock = Clock()
    incidents = _incidents(notifier, clock, Waiting(12))
    await _fail(incidents, 5)
    await _run_for(incidents, clock, 1200)
    await incidents.triage_succeeded()  # 20 min in: the LLM answers once ...
    assert not incidents.triage_paused
    await _run_for(incidents, clock, 120)
    await _fail(incidents, 5)  # ... and 502s again two minutes later: the same incident
    assert incidents.triage_paused
    await _run_for(incidents, clock, 1800)
    await incidents.triage_succeeded()
    await _run_for(incidents, clock, 200)
    await _fail(incidents, 2)  # a couple of failures below the threshold do not reopen it
    await incidents.triage_succeeded()
    await _run_for(incidents, clock, 600)
    texts = chat_texts(fake_telegram)
    assert len(texts) == 2
    assert "The LLM is failing" in texts[0]
    assert "The LLM recovered after 20 min" in texts[1]  # told at the first success; the relapse is silent
    # A new failure streak after the recovery was confirmed is a new incident.
    await _fail(incidents, 5)
    assert len(chat_texts(fake_telegram)) == 3 and "The LLM is failing" in chat_texts(fake_telegram)[2]


async def test_success_resets_the_count_before_the_threshold(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier
) -> None:
    clock = Clock()
    incidents = _incidents(notifier, clock)
    await _fail(incidents, 4)
    await incidents.triage_succeeded()
    await _fail(incidents, 4)
    await _run_for(incidents, clock, 3600, step=60)
    assert chat_texts(fake_telegram) == []
    assert not incidents.triage_paused
    assert incidents.snapshot()["consecutive_failures"] == 4


async def test_flap_seconds_zero_sends_the_recovery_at_the_first_success(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier
) -> None:
    clock = Clock()
    incidents = _incidents(notifier, clock, Waiting(9), flap_seconds=0)
    await _fail(incidents, 5)
    clock.now += 90
    await incidents.triage_succeeded()
    texts = chat_texts(fake_telegram)
    assert len(texts) == 2
    assert "The LLM recovered after 1 min" in texts[1] and "Processed late: 9 messages" in texts[1]


async def test_telegram_500_during_the_alert_is_logged_and_delivered_later(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier
) -> None:
    clock = Clock()
    incidents = _incidents(notifier, clock, Waiting(4))
    fake_telegram.fail_all(500)
    with capture_logs() as logs:
        await _fail(incidents, 5)  # never raises
    failed = [e for e in logs if e["event"] == "alert.delivery_failed"]
    assert len(failed) == 1
    assert failed[0]["log_level"] == "error"
    assert ERROR in failed[0]["text"] and "The LLM is failing" in failed[0]["text"]
    assert incidents.snapshot()["pending_deliveries"] == 1
    calls = len(fake_telegram.calls)
    clock.now += 10
    await incidents.tick()  # before the retry time: no call
    assert len(fake_telegram.calls) == calls
    clock.now += 30
    with capture_logs() as logs:
        await incidents.tick()  # still down: logged again, backing off
    assert [e["log_level"] for e in logs if e["event"] == "alert.delivery_failed"] == ["error"]
    fake_telegram.fail_all(None)
    await _run_for(incidents, clock, 120)
    [alert] = chat_texts(fake_telegram)
    assert ERROR in alert and "Waiting: 4 messages" in alert
    assert incidents.snapshot()["pending_deliveries"] == 0


async def test_telegram_down_for_hours_does_not_stack_reminders(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier
) -> None:
    clock = Clock()
    incidents = _incidents(notifier, clock)
    fake_telegram.fail_all(502)
    await _fail(incidents, 5)
    await _run_for(incidents, clock, 5 * 3600, step=60)
    assert incidents.snapshot()["pending_deliveries"] == 1  # only the alert, no reminders piling up
    fake_telegram.fail_all(None)
    await _run_for(incidents, clock, 600, step=10)
    assert len(chat_texts(fake_telegram)) == 1
    await _run_for(incidents, clock, 4 * 3600, step=60)  # reminders count from the delivered alert
    assert len(chat_texts(fake_telegram)) == 2


async def test_429_retry_after_is_respected(fake_telegram: FakeTelegram, notifier: TelegramNotifier) -> None:
    clock = Clock()
    incidents = _incidents(notifier, clock)
    fake_telegram.script(FakeTelegram.Status(429, "Too Many Requests: retry after 7", retry_after=7))
    await _fail(incidents, 5)
    assert len(fake_telegram.calls_to("sendMessage")) == 1
    assert chat_texts(fake_telegram) == []
    for _ in range(6):
        clock.now += 1
        await incidents.tick()
        await incidents.triage_failed(tier=TIER, error=ERROR)  # the worker's calls respect it too
    assert len(fake_telegram.calls_to("sendMessage")) == 1
    clock.now += 1
    await incidents.tick()
    assert len(fake_telegram.calls_to("sendMessage")) == 2
    assert len(chat_texts(fake_telegram)) == 1


async def test_a_permanent_telegram_error_is_logged_and_dropped(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier
) -> None:
    clock = Clock()
    incidents = _incidents(notifier, clock, flap_seconds=0)
    fake_telegram.script(FakeTelegram.Status(403))
    with capture_logs() as logs:
        await _fail(incidents, 5)
    [failed] = [e for e in logs if e["event"] == "alert.delivery_failed"]
    assert failed["log_level"] == "error" and failed["dropped"] is True
    assert incidents.snapshot()["pending_deliveries"] == 0
    await incidents.triage_succeeded()
    [recovery] = chat_texts(fake_telegram)
    assert "The LLM recovered" in recovery


async def test_imap_down_ten_minutes_gives_one_alert_and_one_recovery(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier
) -> None:
    clock = Clock()
    incidents = _incidents(notifier, clock)
    error = "[Errno 111] Connection refused (imap.example.org:993)"
    await incidents.imap_state("work", connected=True)
    await incidents.imap_state("home", connected=True)
    for _ in range(19):  # the watcher retries every 30 s
        await incidents.imap_state("work", connected=False, error=error)
        await _run_for(incidents, clock, 30)
    assert chat_texts(fake_telegram) == []  # 9.5 min: not yet
    await incidents.imap_state("work", connected=False, error=error)
    await _run_for(incidents, clock, 30)
    [alert] = chat_texts(fake_telegram)
    assert "Mailbox work cannot connect" in alert and error in alert and "10 min" in alert
    assert incidents.snapshot()["imap"]["work"]["incident_open"] is True
    assert incidents.snapshot()["imap"]["home"]["connected"] is True
    for _ in range(40):
        await incidents.imap_state("work", connected=False, error=error)
        await _run_for(incidents, clock, 30)
    assert len(chat_texts(fake_telegram)) == 1
    await incidents.imap_state("work", connected=True)
    await _run_for(incidents, clock, 600)
    texts = chat_texts(fake_telegram)
    assert len(texts) == 2
    assert "Mailbox work is connected again after 30 min" in texts[1]
    assert not incidents.triage_paused  # IMAP does not pause triage


async def test_imap_down_briefly_or_flapping_says_nothing_more(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier
) -> None:
    clock = Clock()
    incidents = _incidents(notifier, clock)
    await incidents.imap_state("work", connected=False, error="timeout")
    await _run_for(incidents, clock, 540)
    await incidents.imap_state("work", connected=True)  # back after 9 minutes: no alert
    await _run_for(incidents, clock, 3600, step=30)
    assert chat_texts(fake_telegram) == []
    await incidents.imap_state("work", connected=False, error="timeout")
    await _run_for(incidents, clock, 700)
    assert len(chat_texts(fake_telegram)) == 1
    await incidents.imap_state("work", connected=True)
    await _run_for(incidents, clock, 60)
    await incidents.imap_state("work", connected=False, error="connection reset")  # a flap
    await _run_for(incidents, clock, 900)
    await incidents.imap_state("work", connected=True)
    await _run_for(incidents, clock, 900)
    texts = chat_texts(fake_telegram)
    assert len(texts) == 2 and "connected again" in texts[1]


async def test_html_special_characters_are_delivered(fake_telegram: FakeTelegram, notifier: TelegramNotifier) -> None:
    clock = Clock()
    incidents = _incidents(notifier, clock, flap_seconds=0)
    error = "<html><body>502 Bad Gateway & <b>more</body> a<b</html>"
    tier = "relay<gpt> & co"
    await _fail(incidents, 5, error=error, tier=tier)
    await incidents.imap_state("<inbox & co>", connected=False, error="AUTHENTICATE failed: <x> & y")
    clock.now += 600
    await incidents.tick()
    await incidents.triage_succeeded()
    await incidents.imap_state("<inbox & co>", connected=True)
    texts = chat_texts(fake_telegram)
    assert len(texts) == 4
    assert f"Last error: {error}" in texts[0] and f"Tier: {tier}" in texts[0]
    assert "Mailbox <inbox & co> cannot connect" in texts[1] and "AUTHENTICATE failed: <x> & y" in texts[1]
    assert "Mailbox <inbox & co> is connected again" in texts[3]
    assert all("parse_mode" in m for m in fake_telegram.messages())


async def test_a_long_error_is_cut_to_fit_telegram(fake_telegram: FakeTelegram, notifier: TelegramNotifier) -> None:
    incidents = _incidents(notifier, Clock())
    await _fail(incidents, 5, error="&<" * 5000)
    [alert] = chat_texts(fake_telegram)
    assert len(alert) < 4096 and "…" in alert


async def test_probe_due_lets_one_message_through_per_probe_seconds(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier
) -> None:
    clock = Clock()
    incidents = _incidents(notifier, clock, probe_seconds=60)
    assert not await incidents.probe_due()  # not paused: nothing to probe
    assert incidents.next_probe_in() == 0
    await _fail(incidents, 5)
    assert incidents.triage_paused
    assert not await incidents.probe_due()  # the first probe a minute after the alert
    assert incidents.next_probe_in() == 60
    clock.now += 60
    assert await incidents.probe_due()
    assert not await incidents.probe_due()  # claimed: the next worker waits
    clock.now += 30
    assert incidents.next_probe_in() == 30
    assert not await incidents.probe_due()
    clock.now += 30
    assert await incidents.probe_due()


async def test_concurrent_failures_send_one_alert(fake_telegram: FakeTelegram, notifier: TelegramNotifier) -> None:
    incidents = _incidents(notifier, Clock(), Waiting(2))
    await asyncio.gather(*(incidents.triage_failed(tier=TIER, error=ERROR) for _ in range(20)))
    await incidents.tick()
    assert len(chat_texts(fake_telegram)) == 1
    assert incidents.snapshot()["consecutive_failures"] == 20


async def test_a_failing_waiting_query_does_not_stop_the_alert(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier
) -> None:
    async def broken() -> int:
        raise ConnectionRefusedError("database is down too")

    incidents = Incidents(notifier, _STORES[-1], clock=Clock(), waiting=broken)
    with capture_logs() as logs:
        await _fail(incidents, 5)
    [alert] = chat_texts(fake_telegram)
    assert "Waiting: unknown number of messages" in alert
    assert any(e["event"] == "alert.waiting_unknown" and e["log_level"] == "error" for e in logs)


async def test_snapshot(fake_telegram: FakeTelegram, notifier: TelegramNotifier) -> None:
    clock = Clock()
    incidents = _incidents(notifier, clock)
    assert incidents.snapshot() == {
        "consecutive_failures": 0, "failing_since": None, "triage_paused": False, "incident_since": None,
        "recovering_since": None, "last_error": None, "tier": None, "pending_deliveries": 0, "imap": {},
        "incidents": [],
    }
    await _fail(incidents, 2)
    clock.now += 10
    await _fail(incidents, 3)
    await incidents.imap_state("work", connected=False, error="refused")
    snap = incidents.snapshot()
    assert snap["consecutive_failures"] == 5 and snap["failing_since"] == START
    assert snap["triage_paused"] is True and snap["incident_since"] == START
    assert snap["last_error"] == ERROR and snap["tier"] == TIER
    assert snap["imap"] == {"work": {"connected": False, "down_since": START + 10, "error": "refused",
                                     "incident_open": False}}


async def test_alert_after_must_be_positive() -> None:
    with pytest.raises(ValueError, match="alert_after"):
        Incidents(_NullNotifier(), _STORES[-1], alert_after=0)


class _NullNotifier:
    """A notifier that is never called."""

    async def start(self) -> None:
        """Nothing."""

    async def send_card(self, text: str, buttons: Any) -> str:
        raise AssertionError("not expected")

    async def send_text(self, text: str) -> str:
        raise AssertionError("not expected")

    async def aclose(self) -> None:
        """Nothing."""


async def test_a_recovery_is_not_held_back_by_an_alert_waiting_to_be_delivered(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier
) -> None:
    """The alert could not go out (Telegram down too) and waits for its retry; the incident recovers
    meanwhile: the recovery goes out at once and the stale alert is dropped (it waited behind the
    alert's back-off before: 20 s late in a service test)."""
    clock = Clock()
    incidents = _incidents(notifier, clock, Waiting(2), flap_seconds=0)
    fake_telegram.fail_all(500)
    await _fail(incidents, 5)
    assert incidents.snapshot()["pending_deliveries"] == 1
    fake_telegram.fail_all(None)
    clock.now += 1  # well before the alert's retry time
    await incidents.triage_succeeded()
    texts = chat_texts(fake_telegram)
    assert len(texts) == 1 and "The LLM recovered" in texts[0], texts
    assert incidents.snapshot()["pending_deliveries"] == 0
    await _run_for(incidents, clock, 600)
    assert len(chat_texts(fake_telegram)) == 1, chat_texts(fake_telegram)


async def test_two_successes_at_once_end_an_incident_without_an_error(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier
) -> None:
    """Two stages succeed at once after an outage: the first ends and deletes the incident, the second
    (which saw it open before it waited for the lock) creates the row and deletes it again. That must
    write nothing: SQLAlchemy refuses to delete a row it never wrote, and the error was reported as
    'the database is unavailable' (seen in a service test)."""
    clock = Clock()
    incidents = _incidents(notifier, clock, flap_seconds=0)
    for _ in range(5):
        await incidents.failed("telegram", error="Bad Gateway", title="Telegram")
    assert incidents.paused("telegram")
    with capture_logs() as logs:
        await asyncio.gather(*(incidents.succeeded("telegram") for _ in range(3)))
    assert not [e for e in logs if e["log_level"] == "error"], logs
    assert await _STORES[-1].alerts.incidents() == []
    assert not incidents.paused("telegram")
