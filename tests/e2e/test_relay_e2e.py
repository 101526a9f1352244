"""The LLM tiers from the outside: `recruiter run` on real Dovecot, the fake Bot API, and the fake LLMs.

llama-swap answers 502 and the relay behaves like api.openai.com: the relay carries the whole pipeline.
The only tier answers 401: one alert, the mail waits (never dead), and once the key is right everything
flows and one recovery message follows. llama-swap's model is gone (404) but the fallback model works:
the fallback serves and the owner is told once. SQLite only (the stores are tested on both elsewhere).
"""

from __future__ import annotations

import email
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, ImapUser
from tests.servers.fake_llm import OPENAI_CHAT_FIELDS, RELAY_KEY, RELAY_MODEL, FakeLLM
from tests.servers.fake_telegram import FakeTelegram
from tests.support.poll import wait_for
from tests.support.service import Service, alerts, cards, cli, finished, run_env, stored

MAILS = 3


@pytest.fixture
def world(tmp_path: Path, imap_user: ImapUser, fake_telegram: FakeTelegram) -> Iterator[dict[str, Any]]:
    yield {"cwd": tmp_path, "user": imap_user, "telegram": fake_telegram}


def start(world: dict[str, Any], **llm: str) -> Service:
    env = run_env(world["cwd"], world["user"], world["telegram"], **llm)
    migrated = cli(env, world["cwd"], "migrate")
    assert migrated.returncode == 0, migrated.stderr
    world["env"] = env
    service = Service(env, world["cwd"])
    wait_for(lambda: service.events("imap.connected"), what="watcher connected")
    return service


def deliver(dovecot: Dovecot, user: ImapUser) -> None:
    for i in range(MAILS):
        dovecot.append(user.user, make_mail(subject=f"Recruiting: Staff SRE role {i}",
                                            body=f"Hi Alex, I'm a recruiter at Acme with a role for you (#{i}).\n"
                                                 "Company: Acme\n"))


def relay_env(relay: FakeLLM, key: str = RELAY_KEY) -> dict[str, str]:
    return {"GPT_MINI_ENDPOINT": f"{relay.url}/v1", "GPT_MINI_API_KEY": key, "GPT_MINI_MODEL": RELAY_MODEL}


def tail(service: Service, lines: int = 40) -> str:
    return "".join(service.lines[-lines:])


def test_llama_swap_down_and_a_strict_relay_carry_the_pipeline(
    world: dict[str, Any], dovecot: Dovecot, fake_llm: FakeLLM, fake_relay: FakeLLM, fake_telegram: FakeTelegram,
) -> None:
    fake_llm.fail_all(502)  # llama-swap cannot load its model (the post-mortem)
    service = start(world, LLAMA_SWAP_URL=fake_llm.url, LLAMA_SWAP_MODEL="qwen3-8b", **relay_env(fake_relay))
    try:
        deliver(dovecot, world["user"])
        rows = wait_for(lambda: finished(world["env"], world["cwd"], MAILS), timeout=90, what="every mail finished")
        metrics = httpx.get(f"http://127.0.0.1:{world['env']['HTTP_PORT']}/metrics", timeout=5).text
    finally:
        service.stop()
    assert {r["state"] for r in rows} == {"done"}, [(r["state"], r["last_error"]) for r in rows]
    assert {r["triage_tier"] for r in rows} == {"gpt-mini"}
    assert len(cards(fake_telegram)) == MAILS
    drafts = Counter(email.message_from_bytes(raw)["In-Reply-To"]
                     for _, _, raw in dovecot.messages(world["user"].user, "Drafts"))
    assert len(drafts) == MAILS and set(drafts.values()) == {1}
    # The relay did the triage and the drafting, and never got a field api.openai.com does not document.
    assert len(fake_relay.triage_requests()) == MAILS and len(fake_relay.draft_requests()) == MAILS
    assert all(set(body) <= OPENAI_CHAT_FIELDS for body in fake_relay.requests)
    assert not service.events("llm.tier_misconfigured"), tail(service)
    answered = [e for e in service.events("llm.answered") if e["tier"] == "gpt-mini"]
    assert len(answered) == 2 * MAILS and {e["role"] for e in answered} == {"relay"}
    assert f'recruiter_llm_requests_total{{model="{RELAY_MODEL}",outcome="ok",tier="gpt-mini"}} 6.0' in metrics
    assert 'recruiter_llm_requests_total{model="qwen3-8b",outcome="error",tier="llama-swap"}' in metrics
    assert 'recruiter_llm_breaker_state{model="qwen3-8b",tier="llama-swap"} 2.0' in metrics


def test_401_on_the_only_tier_one_alert_mail_waits_then_flows_with_one_recovery(
    world: dict[str, Any], dovecot: Dovecot, fake_relay: FakeLLM, fake_telegram: FakeTelegram,
) -> None:
    rotated = "sk-rotated-but-not-yet-on-the-relay-42"
    service = start(world, **relay_env(fake_relay, key=rotated), TRIAGE_ALERT_AFTER="2", ALERT_PROBE_SECONDS="1",
                    LLM_BREAKER_PROBE_SECONDS="1", LLM_BREAKER_MAX_PROBE_SECONDS="2")
    try:
        deliver(dovecot, world["user"])
        wait_for(lambda: alerts(fake_telegram), timeout=60, what="the alert")
        before = len(fake_relay.requests)
        wait_for(lambda: len(fake_relay.requests) >= before + 3, timeout=60, what="probes of the refusing tier")
        rows = stored(world["env"], world["cwd"])
        assert len(rows) == MAILS and {r["state"] for r in rows} <= {"pending", "retry_wait"}, rows
        assert not cards(fake_telegram) and not dovecot.messages(world["user"].user, "Drafts")
        assert len(alerts(fake_telegram)) == 1, alerts(fake_telegram)
        [alert] = alerts(fake_telegram)
        assert "LLM tier gpt-mini (" in alert and "refuses our requests" in alert and "Status: 401" in alert
        assert "Incorrect API key provided" in alert and rotated not in alert
        fake_relay.api_key = rotated  # the owner fixes the key (on the relay's side: the service keeps running)
        rows = wait_for(lambda: finished(world["env"], world["cwd"], MAILS), timeout=90, what="every mail finished")
        wait_for(lambda: len(alerts(fake_telegram)) >= 2, timeout=20, what="the recovery message")
    finally:
        service.stop()
        print(tail(service, 80))  # shown when the test fails
    assert {r["state"] for r in rows} == {"done"}, [(r["state"], r["last_error"]) for r in rows]
    assert {r["triage_tier"] for r in rows} == {"gpt-mini"}  # the LLM had the last word
    texts = alerts(fake_telegram)
    assert len(texts) == 2 and "LLM tier gpt-mini (" in texts[1] and "recovered" in texts[1], texts
    assert not any("The LLM is failing" in t or "The LLM recovered" in t for t in texts)
    assert len(cards(fake_telegram)) == MAILS
    assert [e for e in service.events("alert.fired") if e.get("key") == "llm" and e.get("silent")]
    assert rotated not in "".join(service.lines)


def test_404_model_on_llama_swap_the_fallback_serves_and_the_owner_is_told_once(
    world: dict[str, Any], dovecot: Dovecot, fake_telegram: FakeTelegram,
) -> None:
    with FakeLLM(models={"qwen3-4b"}) as swap:  # qwen3-8b was renamed away
        service = start(world, LLAMA_SWAP_URL=swap.url, LLAMA_SWAP_MODEL="qwen3-8b",
                        LLAMA_SWAP_FALLBACK_MODEL="qwen3-4b")
        try:
            deliver(dovecot, world["user"])
            rows = wait_for(lambda: finished(world["env"], world["cwd"], MAILS), timeout=90,
                            what="every mail finished")
            wait_for(lambda: alerts(fake_telegram), timeout=20, what="the alert")
        finally:
            service.stop()
        models = Counter(r["model"] for r in swap.requests)
    assert {r["state"] for r in rows} == {"done"}, [(r["state"], r["last_error"]) for r in rows]
    assert {r["triage_tier"] for r in rows} == {"llama-swap-fallback"}
    assert len(cards(fake_telegram)) == MAILS
    [alert] = alerts(fake_telegram)
    assert "LLM tier llama-swap (qwen3-8b) refuses our requests" in alert and "Status: 404" in alert
    assert "could not find real modelID for qwen3-8b" in alert
    assert models["qwen3-8b"] == 1  # refused once, then skipped (its probe is not due within the test)
    assert models["qwen3-4b"] == 2 * MAILS
