"""The post-mortem replayed from the outside: the LLM answers 502 while a burst of recruiter mail arrives,
then recovers. Exactly one alert naming the error, exactly one recovery message; meanwhile the rules tier
triages and each recruiter mail gets one card saying its draft is pending; after recovery every mail is
drafted once and its card edited into the full one (no second message), nothing dead, and no attempts
burned while paused."""

from __future__ import annotations

import email
from collections import Counter
from typing import Any

from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot
from tests.servers.fake_llm import FakeLLM
from tests.servers.fake_telegram import FakeTelegram
from tests.test_crash import finished, setup, start  # noqa: F401 — `setup` is a fixture
from tests.test_service_e2e import stored, wait_for

BURST = 8


def alerts(fake_telegram: FakeTelegram) -> list[str]:
    return [m["text"] for m in fake_telegram.messages() if not m.get("reply_markup") and "Draft:" not in m["text"]]


def cards(fake_telegram: FakeTelegram) -> list[dict[str, Any]]:
    return [m for m in fake_telegram.messages() if m.get("reply_markup")]


def pending_cards(fake_telegram: FakeTelegram) -> list[dict[str, Any]]:
    return [m for m in fake_telegram.messages() if "Draft:" in m["text"] and "pending" in m["text"]]


def completed_edits(fake_telegram: FakeTelegram) -> list[dict[str, Any]]:
    return [e for e in fake_telegram.calls_to("editMessageText") if e.get("reply_markup")]


def test_llm_502_burst_then_recovery(
    setup: dict[str, Any], dovecot: Dovecot, fake_llm: FakeLLM, fake_telegram: FakeTelegram,  # noqa: F811
) -> None:
    setup["env"].update({"TRIAGE_ALERT_AFTER": "5", "ALERT_PROBE_SECONDS": "1",
                         "LLM_BREAKER_PROBE_SECONDS": "1"})
    fake_llm.fail_all(502)
    service = start(setup)
    try:
        for i in range(BURST):
            dovecot.append(setup["user"].user, make_mail(subject=f"Recruiting: role {i}",
                                                         body=f"Hi, I'm a recruiter with a role (#{i}).\n"))
        wait_for(lambda: alerts(fake_telegram), timeout=60, what="the alert")
        [alert] = alerts(fake_telegram)
        assert "Triage is failing" in alert
        assert "502 Bad Gateway from llama-swap (qwen3-8b)" in alert
        assert "llama-swap" in alert
        wait_for(lambda: len(fake_llm.requests) >= 6, timeout=40, what="probes while paused")
        # While paused the rules tier triages; each recruiter mail waits at the draft stage with one
        # "draft pending" card (no buttons: there is nothing to send yet).
        wait_for(lambda: len(pending_cards(fake_telegram)) == BURST, timeout=60, what="a pending card per mail")
        rows = stored(setup["env"], setup["cwd"])
        assert {r["state"] for r in rows} <= {"pending", "retry_wait"}
        assert {r["stage"] for r in rows} == {"draft"}
        assert {r["triage_tier"] for r in rows} == {"rules"}
        assert max(r["attempts"] for r in rows) <= 5  # paused messages do not burn attempts
        assert len(alerts(fake_telegram)) == 1  # no alert per failure
        assert "rules tier" in alerts(fake_telegram)[0]
        assert not cards(fake_telegram) and not dovecot.messages(setup["user"].user, "Drafts")

        fake_llm.fail_all(None)
        rows = wait_for(lambda: finished(setup, BURST), timeout=90, what="every mail after recovery")
        wait_for(lambda: len(alerts(fake_telegram)) == 2, timeout=20, what="the recovery message")
    finally:
        service.stop()
    assert {r["state"] for r in rows} == {"done"}
    texts = alerts(fake_telegram)
    assert len(texts) == 2 and "recovered" in texts[1].lower()
    # Each pending card was edited once into the full card with its signed buttons; no second message.
    assert not cards(fake_telegram) and len(pending_cards(fake_telegram)) == BURST
    edits = completed_edits(fake_telegram)
    assert len({int(e["message_id"]) for e in edits}) == len(edits) == BURST
    shown = [m for chat in fake_telegram.chats.values() for m in chat.values()]
    assert len(shown) == BURST + 2  # the cards, the alert, the recovery message
    assert sum(1 for m in shown if m.get("reply_markup") and "pending" not in m["text"]) == BURST
    announced = Counter(e["reply_markup"]["inline_keyboard"][0][0]["url"].split("m=")[1].split("&")[0]
                        for e in edits)
    assert len(announced) == BURST and set(announced.values()) == {1}
    assert all("pending" not in e["text"] for e in edits)
    drafts = Counter(email.message_from_bytes(raw)["In-Reply-To"]
                     for _, _, raw in dovecot.messages(setup["user"].user, "Drafts"))
    assert len(drafts) == BURST and set(drafts.values()) == {1}
