"""A tier that refuses us is told once and its recovery once; the triage incident it causes stays silent.

Real ``TelegramNotifier`` against the loopback Bot API; the incidents on a settable clock. The end-to-end
version (a real ``recruiter run``) is in tests/e2e/test_relay_e2e.py.
"""

from __future__ import annotations

from recruiter.alerts.incidents import Incidents
from recruiter.llm.client import TierEvent
from recruiter.notify.telegram import TelegramNotifier
from recruiter.store.repo import Store
from tests.servers.fake_telegram import FakeTelegram
from tests.support.clock import FakeClock
from tests.support.telegram import chat_texts

REFUSED = TierEvent("misconfigured", "gpt-mini", "gpt-4o-mini", 401,
                    "401 Unauthorized from gpt-mini (gpt-4o-mini): Incorrect API key provided: sk-***. <script>")
BACK = TierEvent("recovered", "gpt-mini", "gpt-4o-mini", None, "gpt-mini (gpt-4o-mini) answers again")


async def test_one_alert_and_one_recovery_per_misconfiguration(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier, store: Store,
) -> None:
    incidents = Incidents(notifier, store, clock=FakeClock(), alert_after=3, llm_tiers=["gpt-mini"])
    await incidents.tier_event(REFUSED)
    await incidents.tier_event(REFUSED)  # a second report of the same misconfiguration says nothing new
    [alert] = chat_texts(fake_telegram)
    assert "LLM tier gpt-mini (gpt-4o-mini) refuses our requests" in alert
    assert "Status: 401" in alert and "Incorrect API key provided" in alert
    assert "<script>" in alert  # escaped as text, shown as text
    await incidents.tier_event(BACK)
    await incidents.tier_event(BACK)
    assert len(chat_texts(fake_telegram)) == 2
    assert "LLM tier gpt-mini (gpt-4o-mini) recovered" in chat_texts(fake_telegram)[1]


async def test_a_recovery_nobody_was_alerted_about_is_not_told(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier, store: Store,
) -> None:
    await Incidents(notifier, store, clock=FakeClock()).tier_event(BACK)
    assert chat_texts(fake_telegram) == []


async def test_triage_failing_on_the_misconfigured_tier_pauses_but_does_not_alert_twice(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier, store: Store,
) -> None:
    incidents = Incidents(notifier, store, clock=FakeClock(), alert_after=3, llm_tiers=["gpt-mini"])
    await incidents.tier_event(REFUSED)
    for _ in range(5):
        await incidents.triage_failed(tier="gpt-mini", error=REFUSED.message)
    assert incidents.triage_paused  # the LLM stages still wait without burning attempts
    await incidents.tier_event(BACK)
    await incidents.triage_succeeded()
    assert not incidents.triage_paused
    texts = chat_texts(fake_telegram)
    assert len(texts) == 2 and "refuses our requests" in texts[0] and "recovered" in texts[1]


async def test_another_tier_failing_still_raises_the_triage_alert(
    fake_telegram: FakeTelegram, notifier: TelegramNotifier, store: Store,
) -> None:
    incidents = Incidents(notifier, store, clock=FakeClock(), alert_after=3, llm_tiers=["llama-swap", "gpt-mini"])
    await incidents.tier_event(REFUSED)
    for _ in range(3):  # llama-swap is down (502) while the relay refuses us: two problems, two alerts
        await incidents.triage_failed(tier="llama-swap", error="502 Bad Gateway from llama-swap (qwen3-8b)")
    texts = chat_texts(fake_telegram)
    assert len(texts) == 2 and "The LLM is failing" in texts[1] and "502 Bad Gateway" in texts[1]
