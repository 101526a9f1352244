"""Incidents over hours of simulated time: the post-mortem replayed, reminders, flaps and IMAP outages, tick by
tick through the real store and the real TelegramNotifier against the loopback Bot API, on a fake clock.

Each runs thousands of ticks against the SQLite store (seconds each), so they are not in the unit layer; the
incidents' single steps are tests/unit/test_health.py.
"""

from __future__ import annotations

from recruiter.notify.telegram import TelegramNotifier
from recruiter.store.repo import Store
from tests.servers.fake_telegram import FakeTelegram
from tests.support.incidents import ERROR, START, TIER, Clock, Waiting, fail, incidents_for, run_for
from tests.support.telegram import chat_texts


async def test_post_mortem_replay_gives_one_alert_and_one_recovery(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier, store: Store
) -> None:
    clock, waiting = Clock(), Waiting(3)
    incidents = incidents_for(notifier, store, clock, waiting)
    interval = 9000 / 440  # 440 failed triage attempts over 2.5 h
    for attempt in range(440):
        clock.now = START + attempt * interval
        waiting.count = 3 + attempt // 8  # recruiter mail keeps arriving
        await incidents.triage_failed(tier=TIER, error=ERROR)
        if attempt == 3:
            assert chat_texts(fake_telegram) == [] and not incidents.triage_paused
        if attempt == 4:
            assert len(chat_texts(fake_telegram)) == 1 and incidents.triage_paused
        await run_for(incidents, clock, interval - 1, step=10)
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
    await run_for(incidents, clock, 3600)
    assert len(chat_texts(fake_telegram)) == 2
    recovery = chat_texts(fake_telegram)[1]
    assert "The LLM recovered after 2 h 30 min" in recovery
    assert "Processed late: 58 messages" in recovery
    assert "2026-06-02 14:41 UTC to 2026-06-02 17:11 UTC" in recovery
    assert incidents.snapshot()["pending_deliveries"] == 0


async def test_reminders_every_remind_seconds_only(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier, store: Store
) -> None:
    clock = Clock()
    incidents = incidents_for(notifier, store, clock, Waiting(7))
    await fail(incidents, 5)
    for _ in range(9 * 20):  # nine hours, a probe failing every three minutes
        await run_for(incidents, clock, 180, step=60)
        await incidents.triage_failed(tier=TIER, error=ERROR)
    texts = chat_texts(fake_telegram)
    assert len(texts) == 3  # the alert, then reminders at 4 h and 8 h
    for reminder, hours in zip(texts[1:], (4, 8), strict=True):
        assert f"The LLM is still failing — for {hours} h\n" in reminder
        assert ERROR in reminder and TIER in reminder and "Waiting: 7 messages" in reminder
    await incidents.triage_succeeded()
    await run_for(incidents, clock, 600)
    assert len(chat_texts(fake_telegram)) == 4
    assert "The LLM recovered after 9 h\n" in chat_texts(fake_telegram)[3]


async def test_a_flap_within_flap_seconds_is_one_incident(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier, store: Store
) -> None:
    clock = Clock()
    incidents = incidents_for(notifier, store, clock, Waiting(12))
    await fail(incidents, 5)
    await run_for(incidents, clock, 1200)
    await incidents.triage_succeeded()  # 20 min in: the LLM answers once ...
    assert not incidents.triage_paused
    await run_for(incidents, clock, 120)
    await fail(incidents, 5)  # ... and 502s again two minutes later: the same incident
    assert incidents.triage_paused
    await run_for(incidents, clock, 1800)
    await incidents.triage_succeeded()
    await run_for(incidents, clock, 200)
    await fail(incidents, 2)  # a couple of failures below the threshold do not reopen it
    await incidents.triage_succeeded()
    await run_for(incidents, clock, 600)
    texts = chat_texts(fake_telegram)
    assert len(texts) == 2
    assert "The LLM is failing" in texts[0]
    assert "The LLM recovered after 20 min" in texts[1]  # told at the first success; the relapse is silent
    # A new failure streak after the recovery was confirmed is a new incident.
    await fail(incidents, 5)
    assert len(chat_texts(fake_telegram)) == 3 and "The LLM is failing" in chat_texts(fake_telegram)[2]


async def test_telegram_down_for_hours_does_not_stack_reminders(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier, store: Store
) -> None:
    clock = Clock()
    incidents = incidents_for(notifier, store, clock)
    fake_telegram.fail_all(502)
    await fail(incidents, 5)
    await run_for(incidents, clock, 5 * 3600, step=60)
    assert incidents.snapshot()["pending_deliveries"] == 1  # only the alert, no reminders piling up
    fake_telegram.fail_all(None)
    await run_for(incidents, clock, 600, step=10)
    assert len(chat_texts(fake_telegram)) == 1
    await run_for(incidents, clock, 4 * 3600, step=60)  # reminders count from the delivered alert
    assert len(chat_texts(fake_telegram)) == 2


async def test_imap_down_ten_minutes_gives_one_alert_and_one_recovery(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier, store: Store
) -> None:
    clock = Clock()
    incidents = incidents_for(notifier, store, clock)
    error = "[Errno 111] Connection refused (imap.example.org:993)"
    await incidents.imap_state("work", connected=True)
    await incidents.imap_state("home", connected=True)
    for _ in range(19):  # the watcher retries every 30 s
        await incidents.imap_state("work", connected=False, error=error)
        await run_for(incidents, clock, 30)
    assert chat_texts(fake_telegram) == []  # 9.5 min: not yet
    await incidents.imap_state("work", connected=False, error=error)
    await run_for(incidents, clock, 30)
    [alert] = chat_texts(fake_telegram)
    assert "Mailbox work cannot connect" in alert and error in alert and "10 min" in alert
    assert incidents.snapshot()["imap"]["work"]["incident_open"] is True
    assert incidents.snapshot()["imap"]["home"]["connected"] is True
    for _ in range(40):
        await incidents.imap_state("work", connected=False, error=error)
        await run_for(incidents, clock, 30)
    assert len(chat_texts(fake_telegram)) == 1
    await incidents.imap_state("work", connected=True)
    await run_for(incidents, clock, 600)
    texts = chat_texts(fake_telegram)
    assert len(texts) == 2
    assert "Mailbox work is connected again after 30 min" in texts[1]
    assert not incidents.triage_paused  # IMAP does not pause triage


async def test_imap_down_briefly_or_flapping_says_nothing_more(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier, store: Store
) -> None:
    clock = Clock()
    incidents = incidents_for(notifier, store, clock)
    await incidents.imap_state("work", connected=False, error="timeout")
    await run_for(incidents, clock, 540)
    await incidents.imap_state("work", connected=True)  # back after 9 minutes: no alert
    await run_for(incidents, clock, 3600, step=30)
    assert chat_texts(fake_telegram) == []
    await incidents.imap_state("work", connected=False, error="timeout")
    await run_for(incidents, clock, 700)
    assert len(chat_texts(fake_telegram)) == 1
    await incidents.imap_state("work", connected=True)
    await run_for(incidents, clock, 60)
    await incidents.imap_state("work", connected=False, error="connection reset")  # a flap
    await run_for(incidents, clock, 900)
    await incidents.imap_state("work", connected=True)
    await run_for(incidents, clock, 900)
    texts = chat_texts(fake_telegram)
    assert len(texts) == 2 and "connected again" in texts[1]
