"""The tiers' dialects and a tier that refuses us, through the real client against the loopback fakes.

The relay tier must get only what api.openai.com documents (the strict fake refuses anything else); a
tier that refuses us for a reason of configuration opens its breaker at once, is skipped for the next
tier, is probed at the breaker's pace, and the owner's hook hears of it exactly once each way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from recruiter.errors import ConfigError, Misconfigured, PermanentError, TransientError
from recruiter.llm.client import LLM, TierEvent
from recruiter.mail.parse import parse_message
from recruiter.model import TRIAGE_JSON_SCHEMA
from recruiter.reply.draft import Drafter, load_profile
from recruiter.settings import LLMEndpoint, settings_from
from recruiter.triage.llm import Triager, user_message
from tests.mailfactory import make_mail
from tests.servers.fake_llm import (
    OPENAI_CHAT_FIELDS,
    RELAY_KEY,
    RELAY_MODEL,
    FakeLLM,
    strict_schema_problem,
)
from tests.support.clock import FakeClock

MAIL = parse_message(make_mail(subject="Staff SRE at Acme",
                               body="Hi Alex, I'm recruiting for Acme.\nCompany: Acme\n"
                                    "MEETING: 2026-12-03T15:00:00+00:00 30\n"))
HELLO = [{"role": "user", "content": "hi"}]


class Events:
    """The owner's hook: records every tier event."""

    def __init__(self) -> None:
        self.seen: list[TierEvent] = []

    async def __call__(self, event: TierEvent) -> None:
        self.seen.append(event)

    @property
    def kinds(self) -> list[tuple[str, str]]:
        return [(e.kind, e.tier) for e in self.seen]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> Events:
    return Events()


def relay_tier(relay: FakeLLM, key: str = RELAY_KEY, model: str = RELAY_MODEL) -> LLMEndpoint:
    return LLMEndpoint("gpt-mini", relay.url, model, api_key=key)


@pytest.fixture
async def relay_only(fake_relay: FakeLLM, clock: FakeClock, events: Events) -> AsyncIterator[LLM]:
    client = LLM([relay_tier(fake_relay, key="sk-rotated-away-0000")], timeout=5, clock=clock, on_tier_event=events)
    yield client
    await client.aclose()


# --- dialects ------------------------------------------------------------------------------------------


def test_each_configured_tier_has_its_dialect_and_role() -> None:
    settings = settings_from({
        "LLAMA_SWAP_URL": "http://swap:8080", "LLAMA_SWAP_MODEL": "qwen3-8b", "LLAMA_SWAP_FALLBACK_MODEL": "qwen3-4b",
        "GPT_MINI_ENDPOINT": "https://relay.example.org/v1", "GPT_MINI_API_KEY": "sk-x", "GPT_MINI_MODEL": "m",
        "GPT_MINI_REASONING_EFFORT": "Minimal",
    })
    assert [(t.tier, t.dialect, t.role, t.reasoning_effort) for t in settings.llm_tiers] == [
        ("llama-swap", "llama.cpp", "primary", ""), ("llama-swap-fallback", "llama.cpp", "fallback", ""),
        ("gpt-mini", "openai", "relay", "minimal"),
    ]
    assert settings.llm_tiers[2].base_url == "https://relay.example.org"
    with pytest.raises(ConfigError, match="GPT_MINI_REASONING_EFFORT"):
        settings_from({"GPT_MINI_ENDPOINT": "https://r.example", "GPT_MINI_API_KEY": "k", "GPT_MINI_MODEL": "m",
                       "GPT_MINI_REASONING_EFFORT": "low; drop table"})


async def test_the_relay_gets_only_documented_fields_and_a_schema_openai_accepts(fake_relay: FakeLLM) -> None:
    client = LLM([relay_tier(fake_relay)], timeout=5)
    try:
        triaged = await Triager(client).triage(MAIL)
        text, tier = await Drafter(client, load_profile(None), "Alex").draft(MAIL, triaged.result)
    finally:
        await client.aclose()
    assert (triaged.tier, tier) == ("gpt-mini", "gpt-mini") and triaged.result.company == "Acme" and text
    triage_body, draft_body = fake_relay.requests
    for body in (triage_body, draft_body):
        assert set(body) <= OPENAI_CHAT_FIELDS
        assert "temperature" not in body and "max_tokens" not in body and body["max_completion_tokens"] > 0
    spec = triage_body["response_format"]["json_schema"]
    assert spec["strict"] is True and strict_schema_problem(spec["schema"]) is None
    assert fake_relay.request_headers[0]["authorization"] == f"Bearer {RELAY_KEY}"


async def test_the_reasoning_effort_goes_to_the_relay_only_when_configured(fake_relay: FakeLLM) -> None:
    tier = LLMEndpoint("gpt-mini", fake_relay.url, RELAY_MODEL, api_key=RELAY_KEY, reasoning_effort="minimal")
    client = LLM([tier], timeout=5)
    try:
        await client.chat(HELLO)
    finally:
        await client.aclose()
    assert fake_relay.requests[0]["reasoning_effort"] == "minimal"


async def test_llama_cpp_fields_sent_to_a_strict_relay_are_refused(fake_relay: FakeLLM, events: Events) -> None:
    """What the issue saw: the llama.cpp dialect at an endpoint that behaves like api.openai.com."""
    as_llama = LLMEndpoint("llama-swap", fake_relay.url, RELAY_MODEL, api_key=RELAY_KEY)
    client = LLM([as_llama], timeout=5, on_tier_event=events)
    try:
        with pytest.raises(Misconfigured, match="Unrecognized request argument supplied: chat_template_kwargs"):
            await client.chat(HELLO, json_schema=TRIAGE_JSON_SCHEMA)
    finally:
        await client.aclose()
    assert events.kinds == [("misconfigured", "llama-swap")]


def test_the_strict_fake_refuses_our_full_schema_as_openai_would() -> None:
    refused = "In context=('properties', 'company'), 'maxLength' is not permitted."
    assert strict_schema_problem(TRIAGE_JSON_SCHEMA) == refused
    loose = {"type": "object", "properties": {"a": {"type": "string"}}, "required": []}
    assert "'additionalProperties' is required to be supplied and to be false" in str(strict_schema_problem(loose))
    loose["additionalProperties"] = False
    assert strict_schema_problem(loose) == ("In context=(), 'required' is required to be supplied and to be an array "
                                            "including every key in properties. Missing 'a'.")


# --- a tier that refuses us ------------------------------------------------------------------------------


async def test_401_on_the_only_tier_is_told_once_waits_and_recovery_is_told_once(
    relay_only: LLM, fake_relay: FakeLLM, clock: FakeClock, events: Events,
) -> None:
    with pytest.raises(Misconfigured) as info:
        await relay_only.chat(HELLO)
    assert info.value.status == 401 and "Incorrect API key provided" in str(info.value)
    assert "sk-rotated-away-0000" not in str(info.value)
    assert events.kinds == [("misconfigured", "gpt-mini")]
    event = events.seen[0]
    assert (event.model, event.status) == (RELAY_MODEL, 401) and len(event.message) <= 300
    assert "sk-rotated-away-0000" not in event.message
    for _ in range(3):  # while open: no request reaches the relay, the mail waits (never a PermanentError)
        with pytest.raises(Misconfigured, match=r"^all LLM tiers are paused \(misconfigured\): 401 Unauthorized"):
            await relay_only.chat(HELLO)
    assert len(fake_relay.requests) == 1
    clock.advance(60)
    with pytest.raises(Misconfigured):
        await relay_only.chat(HELLO)  # the probe: still refused, nothing new to tell
    assert len(fake_relay.requests) == 2 and relay_only.breakers["gpt-mini"].delay == 120
    fake_relay.api_key = "sk-rotated-away-0000"  # the owner puts the new key on the relay's side
    clock.advance(119)
    with pytest.raises(Misconfigured):
        await relay_only.chat(HELLO)
    clock.advance(1)
    assert (await relay_only.chat(HELLO)).tier == "gpt-mini"  # the probe succeeds
    assert (await relay_only.chat(HELLO)).tier == "gpt-mini"
    assert events.kinds == [("misconfigured", "gpt-mini"), ("recovered", "gpt-mini")]
    assert relay_only.status()[0]["state"] == "closed" and not relay_only.status()[0]["misconfigured"]


async def test_404_model_on_llama_swap_the_fallback_serves_and_the_owner_is_told_once(
    clock: FakeClock, events: Events,
) -> None:
    with FakeLLM(models={"qwen3-4b"}) as swap:
        client = LLM([LLMEndpoint("llama-swap", swap.url, "qwen3-8b"),
                      LLMEndpoint("llama-swap-fallback", swap.url, "qwen3-4b")],
                     timeout=5, clock=clock, on_tier_event=events)
        try:
            for _ in range(4):
                assert (await Triager(client).triage(MAIL)).tier == "llama-swap-fallback"
                clock.advance(61)  # each call after the first finds a probe of llama-swap due
        finally:
            await client.aclose()
        models = [r["model"] for r in swap.requests]
    assert events.kinds == [("misconfigured", "llama-swap")]
    assert "could not find real modelID for qwen3-8b" in events.seen[0].message
    assert models.count("qwen3-8b") == 3  # the first call and the probes at 60 and 120 s (the third is not due)
    assert models.count("qwen3-4b") == 4


async def test_llama_swaps_400_for_an_unknown_model_is_a_misconfiguration_too(events: Events) -> None:
    with FakeLLM(models={"qwen3-4b"}, unknown_model_status=400) as swap:
        client = LLM([LLMEndpoint("llama-swap", swap.url, "qwen3-8b")], timeout=5, on_tier_event=events)
        try:
            with pytest.raises(Misconfigured, match="400 Bad Request from llama-swap"):
                await client.chat(HELLO)
        finally:
            await client.aclose()
    assert events.kinds == [("misconfigured", "llama-swap")]


async def test_400s_that_every_request_gets_make_the_tier_misconfigured(
    fake_llm: FakeLLM, clock: FakeClock, events: Events,
) -> None:
    client = LLM([LLMEndpoint("llama-swap", fake_llm.url, "qwen3-8b")], timeout=5, clock=clock,
                 on_tier_event=events)
    fake_llm.fail_all(400)
    try:
        for n in (1, 2):
            with pytest.raises(TransientError, match="not yet known") as info:
                await client.chat([{"role": "user", "content": f"mail {n}"}])
            assert not isinstance(info.value, Misconfigured)
        with pytest.raises(TransientError, match="not yet known"):
            await client.chat([{"role": "user", "content": "mail 1"}])  # the same request again: no new evidence
        with pytest.raises(Misconfigured, match=r"\(3 different requests refused in a row\)"):
            await client.chat([{"role": "user", "content": "mail 3"}])
        assert events.kinds == [("misconfigured", "llama-swap")]
        assert client.status()[0]["state"] == "open"
    finally:
        await client.aclose()


async def test_a_400_only_one_request_gets_is_that_requests_fault(fake_llm: FakeLLM) -> None:
    client = LLM([LLMEndpoint("llama-swap", fake_llm.url, "qwen3-8b")], timeout=5)
    odd = [{"role": "user", "content": "the odd one"}]
    try:
        fake_llm.script(FakeLLM.Status(400))
        with pytest.raises(TransientError, match="not yet known"):
            await client.chat(odd)  # first refusal: the mail waits
        await client.chat(HELLO)  # the tier answers another request
        fake_llm.script(FakeLLM.Status(400))
        with pytest.raises(PermanentError) as info:
            await client.chat(odd)  # refused again while the tier works for others: it is the request
        assert not isinstance(info.value, TransientError) and info.value.reason == "llm_4xx"
        assert client.status()[0]["state"] == "closed"
    finally:
        await client.aclose()


async def test_no_mail_dies_of_a_tier_refusing_us_while_another_refuses_the_mail(
    fake_llm: FakeLLM, fake_relay: FakeLLM,
) -> None:
    too_long = {"error": {"message": "This model's maximum context length is 8192 tokens.", "param": "messages",
                          "code": "context_length_exceeded", "type": "invalid_request_error"}}
    client = LLM([LLMEndpoint("llama-swap", fake_llm.url, "qwen3-8b"), relay_tier(fake_relay, key="sk-wrong-00000")],
                 timeout=5)
    try:
        fake_llm.script(FakeLLM.Status(400, too_long), FakeLLM.Status(400, too_long))
        for _ in range(2):  # the relay might take the long mail once its key is fixed: wait for it
            with pytest.raises(Misconfigured):
                await client.chat(HELLO)
    finally:
        await client.aclose()


async def test_a_failing_hook_does_not_fail_the_call(fake_relay: FakeLLM) -> None:
    async def broken(event: TierEvent) -> None:
        raise RuntimeError("telegram exploded")

    client = LLM([relay_tier(fake_relay, key="sk-wrong-00000")], timeout=5, on_tier_event=broken)
    try:
        with pytest.raises(Misconfigured, match="401 Unauthorized"):
            await client.chat(HELLO)
    finally:
        await client.aclose()


async def test_a_key_echoed_by_the_server_is_scrubbed_from_the_event(fake_llm: FakeLLM, events: Events) -> None:
    key = "sk-live-abcdefghijklmnopqrstuvwxyz"
    echo = {"error": {"message": f"key {key} refused; header was Bearer {key}" + " pad" * 200}}
    client = LLM([LLMEndpoint("gpt-mini", fake_llm.url, "m", api_key=key)], timeout=5, on_tier_event=events)
    fake_llm.script(FakeLLM.Status(401, echo))
    try:
        with pytest.raises(Misconfigured) as info:
            await client.chat(HELLO)
    finally:
        await client.aclose()
    [event] = events.seen
    for text in (event.message, str(info.value)):
        assert key not in text and key[:12] not in text and len(text) <= 400
    assert len(event.message) <= 300


# --- the request fence and the lazy import --------------------------------------------------------------


def test_the_fence_is_the_same_for_one_mail_and_differs_between_mails() -> None:
    other = parse_message(make_mail(subject="Another", body="Something else.\n"))
    assert user_message(MAIL) == user_message(MAIL)
    fence = user_message(MAIL).split("<<<", 1)[1].split("\n", 1)[0]
    assert fence.startswith("MAIL-") and fence not in user_message(other)
