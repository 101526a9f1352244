"""Incidents and alerts through the real TelegramNotifier against the loopback fake Bot API, on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from recruiter.alerts.incidents import Incidents
from recruiter.notify.telegram import TelegramNotifier
from recruiter.store.repo import Store
from tests.servers.fake_telegram import FakeTelegram
from tests.support.incidents import ERROR, START, TIER, Clock, Waiting, fail, incidents_for, run_for
from tests.support.telegram import chat_texts

_STORES: list[Store] = []


@pytest.fixture(autouse=True)
def _the_store(store: Store) -> Iterator[None]:
    _STORES.append(store)
    yield
    _STORES.remove(store)


def _incidents(notifier: TelegramNotifier, clock: Clock, waiting: Waiting | None = None,
               **kwargs: Any) -> Incidents:
    return incidents_for(notifier, _STORES[-1], clock, waiting, **kwargs)


async def test_success_resets_the_count_before_the_threshold(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier
) -> None:
    clock = Clock()
    incidents = _incidents(notifier, clock)
    await fail(incidents, 4)
    await incidents.triage_succeeded()
    await fail(incidents, 4)
    await run_for(incidents, clock, 3600, step=60)
    assert chat_texts(fake_telegram) == []
    assert not incidents.triage_paused
    assert incidents.snapshot()["consecutive_failures"] == 4


async def test_flap_seconds_zero_sends_the_recovery_at_the_first_success(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier
) -> None:
    clock = Clock()
    incidents = _incidents(notifier, clock, Waiting(9), flap_seconds=0)
    await fail(incidents, 5)
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
        await fail(incidents, 5)  # never raises
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
    await run_for(incidents, clock, 120)
    [alert] = chat_texts(fake_telegram)
    assert ERROR in alert and "Waiting: 4 messages" in alert
    assert incidents.snapshot()["pending_deliveries"] == 0


async def test_429_retry_after_is_respected(fake_telegram: FakeTelegram, notifier: TelegramNotifier) -> None:
    clock = Clock()
    incidents = _incidents(notifier, clock)
    fake_telegram.script(FakeTelegram.Status(429, "Too Many Requests: retry after 7", retry_after=7))
    await fail(incidents, 5)
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
        await fail(incidents, 5)
    [failed] = [e for e in logs if e["event"] == "alert.delivery_failed"]
    assert failed["log_level"] == "error" and failed["dropped"] is True
    assert incidents.snapshot()["pending_deliveries"] == 0
    await incidents.triage_succeeded()
    [recovery] = chat_texts(fake_telegram)
    assert "The LLM recovered" in recovery


async def test_html_special_characters_are_delivered(fake_telegram: FakeTelegram, notifier: TelegramNotifier) -> None:
    clock = Clock()
    incidents = _incidents(notifier, clock, flap_seconds=0)
    error = "<html><body>502 Bad Gateway & <b>more</body> a<b</html>"
    tier = "relay<gpt> & co"
    await fail(incidents, 5, error=error, tier=tier)
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
    await fail(incidents, 5, error="&<" * 5000)
    [alert] = chat_texts(fake_telegram)
    assert len(alert) < 4096 and "…" in alert


async def test_probe_due_lets_one_message_through_per_probe_seconds(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier
) -> None:
    clock = Clock()
    incidents = _incidents(notifier, clock, probe_seconds=60)
    assert not await incidents.probe_due()  # not paused: nothing to probe
    assert incidents.next_probe_in() == 0
    await fail(incidents, 5)
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
        await fail(incidents, 5)
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
    await fail(incidents, 2)
    clock.now += 10
    await fail(incidents, 3)
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
    await fail(incidents, 5)
    assert incidents.snapshot()["pending_deliveries"] == 1
    fake_telegram.fail_all(None)
    clock.now += 1  # well before the alert's retry time
    await incidents.triage_succeeded()
    texts = chat_texts(fake_telegram)
    assert len(texts) == 1 and "The LLM recovered" in texts[0], texts
    assert incidents.snapshot()["pending_deliveries"] == 0
    await run_for(incidents, clock, 600)
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
