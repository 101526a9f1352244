"""Circuit breakers per LLM tier: the state machine alone, then through real HTTP against the fake LLM.

Time is a fake clock injected into the breakers; the HTTP calls are real (openai client → loopback).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from recruiter.errors import DependencyUnavailable, PermanentError
from recruiter.llm.breaker import CircuitBreaker
from recruiter.llm.client import LLM
from recruiter.settings import LLMEndpoint
from tests.servers.fake_llm import FakeLLM, ScriptItem
from tests.support.clock import FakeClock

HELLO = [{"role": "user", "content": "Hello"}]
OK = FakeLLM.Delay(0)  # a script item that answers normally
PROBE_DELAYS = [60, 120, 240, 480, 600, 600]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def state(breaker: CircuitBreaker) -> str:
    """The breaker's state, read afresh (keeps mypy from narrowing it between reads)."""
    return breaker.state


def make_breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker("llama-swap", clock=clock)


def open_breaker(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        breaker.record_failure("502 Bad Gateway from llama-swap (qwen3-8b)")
    assert state(breaker) == "open"


# --- the state machine, no HTTP --------------------------------------------------------------------


def test_opens_after_three_consecutive_failures(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    assert state(breaker) == "closed" and breaker.allow()
    breaker.record_failure("boom 1")
    breaker.record_failure("boom 2")
    assert state(breaker) == "closed" and breaker.allow() and breaker.consecutive_failures == 2
    breaker.record_failure("boom 3")
    assert state(breaker) == "open" and not breaker.allow()
    assert breaker.opened_at == clock.now and breaker.last_error == "boom 3"


def test_a_success_resets_the_count(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    for _ in range(5):
        breaker.record_failure("boom")
        breaker.record_failure("boom")
        breaker.record_success()
    assert state(breaker) == "closed" and breaker.consecutive_failures == 0
    assert breaker.last_error == "boom"  # kept for the status page


def test_exactly_one_probe_after_the_delay(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(59.9)
    assert state(breaker) == "open" and not breaker.allow()
    assert breaker.seconds_until_probe() == pytest.approx(0.1)
    clock.advance(0.1)
    assert state(breaker) == "half_open"
    assert breaker.allow() and breaker.probing
    assert not breaker.allow() and not breaker.allow()  # concurrent callers still skip
    assert state(breaker) == "half_open"


def test_failed_probes_double_the_delay_up_to_ten_minutes(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    open_breaker(breaker)
    for delay in PROBE_DELAYS:
        assert breaker.delay == delay
        clock.advance(delay - 1)
        assert not breaker.allow()
        clock.advance(1)
        assert breaker.allow()
        breaker.record_failure("still 502")
        assert state(breaker) == "open" and breaker.opened_at == clock.now
    assert breaker.delay == 600


def test_successful_probe_closes_and_resets_the_delay(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(60)
    assert breaker.allow()
    breaker.record_failure("still 502")
    clock.advance(120)
    assert breaker.allow()
    breaker.record_success()
    assert state(breaker) == "closed" and breaker.opened_at is None and breaker.consecutive_failures == 0
    assert breaker.delay == 60 and breaker.seconds_until_probe() is None
    open_breaker(breaker)
    clock.advance(60)
    assert breaker.allow()


def test_release_lets_the_next_caller_probe(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(60)
    assert breaker.allow() and not breaker.allow()
    breaker.release()  # e.g. the probe got a 4xx, or was cancelled
    assert state(breaker) == "half_open" and breaker.allow()


def test_unusable_answers_count_although_http_succeeded(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    for expected in (1, 2):
        breaker.record_success()  # HTTP 200 ...
        breaker.record_invalid("triage answer does not fit the schema")  # ... but garbage
        assert breaker.consecutive_failures == expected and state(breaker) == "closed"
    breaker.record_success()  # a good answer in between resets the streak
    breaker.record_success()
    breaker.record_invalid("garbage")
    assert breaker.consecutive_failures == 1
    breaker.record_success()
    breaker.record_invalid("garbage")
    breaker.record_success()
    breaker.record_invalid("garbage")
    assert state(breaker) == "open" and breaker.last_error == "garbage"


def test_an_unusable_probe_answer_is_a_failed_probe(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(60)
    assert breaker.allow()
    breaker.record_success()
    breaker.record_invalid("garbage")
    assert state(breaker) == "open" and breaker.delay == 120 and breaker.opened_at == clock.now


def test_snapshot(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    assert breaker.snapshot() == {
        "name": "llama-swap", "state": "closed", "consecutive_failures": 0, "misconfigured": False,
        "last_error": None, "opened_at": None, "probe_delay": 60, "seconds_until_probe": None,
    }
    open_breaker(breaker)
    clock.advance(15)
    snap = breaker.snapshot()
    assert snap["state"] == "open" and snap["consecutive_failures"] == 3
    assert snap["opened_at"] == clock.now - 15 and snap["seconds_until_probe"] == 45
    assert snap["last_error"] == "502 Bad Gateway from llama-swap (qwen3-8b)"


@pytest.mark.parametrize("kwargs", [{"failure_threshold": 0}, {"probe_after": 0},
                                    {"probe_after": 60, "max_probe_after": 30}])
def test_rejects_nonsense_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("x", **kwargs)  # type: ignore[arg-type]


# --- through the client, real HTTP -----------------------------------------------------------------


@pytest.fixture
async def one_tier(fake_llm: FakeLLM, clock: FakeClock) -> AsyncIterator[LLM]:
    client = LLM([LLMEndpoint("llama-swap", fake_llm.url, "qwen3-8b")], timeout=2, clock=clock)
    yield client
    await client.aclose()


@pytest.fixture
async def two_tiers(fake_llm: FakeLLM, clock: FakeClock) -> AsyncIterator[LLM]:
    client = LLM([LLMEndpoint("llama-swap", fake_llm.url, "qwen3-8b"),
                  LLMEndpoint("llama-swap-fallback", fake_llm.url, "qwen3-4b")], timeout=2, clock=clock)
    yield client
    await client.aclose()


async def fail_three_times(llm: LLM) -> None:
    for _ in range(3):
        with pytest.raises(DependencyUnavailable, match="502 Bad Gateway"):
            await llm.chat(HELLO)


async def test_three_502s_open_the_breaker_and_the_tier_is_left_alone(one_tier: LLM, fake_llm: FakeLLM) -> None:
    fake_llm.fail_all(502)
    await fail_three_times(one_tier)
    assert state(one_tier.breakers["llama-swap"]) == "open"
    for _ in range(5):
        with pytest.raises(DependencyUnavailable) as info:
            await one_tier.chat(HELLO)
    assert str(info.value) == "all LLM tiers are paused (circuit open): 502 Bad Gateway from llama-swap (qwen3-8b)"
    assert info.value.dependency == "llama-swap" and info.value.retry_after == 60
    assert len(fake_llm.requests) == 3 and one_tier.calls == 3


async def test_second_tier_answers_while_the_first_is_open(two_tiers: LLM, fake_llm: FakeLLM) -> None:
    for _ in range(3):
        fake_llm.script(FakeLLM.Status(502), OK)
        answer = await two_tiers.chat(HELLO)
        assert answer.tier == "llama-swap-fallback" and answer.model == "qwen3-4b"
    assert state(two_tiers.breakers["llama-swap"]) == "open"
    assert state(two_tiers.breakers["llama-swap-fallback"]) == "closed"
    answer = await two_tiers.chat(HELLO)
    assert answer.tier == "llama-swap-fallback"
    assert [r["model"] for r in fake_llm.requests] == ["qwen3-8b", "qwen3-4b"] * 3 + ["qwen3-4b"]


async def test_probe_schedule_doubles_to_ten_minutes(one_tier: LLM, fake_llm: FakeLLM, clock: FakeClock) -> None:
    fake_llm.fail_all(502)
    await fail_three_times(one_tier)
    for delay in PROBE_DELAYS:
        clock.advance(delay - 1)
        with pytest.raises(DependencyUnavailable, match="paused") as info:
            await one_tier.chat(HELLO)
        assert info.value.retry_after == 1
        before = len(fake_llm.requests)
        clock.advance(1)
        with pytest.raises(DependencyUnavailable, match=r"^502 Bad Gateway from llama-swap"):
            await one_tier.chat(HELLO)  # the probe, which fails
        assert len(fake_llm.requests) == before + 1
    assert one_tier.breakers["llama-swap"].delay == 600
    assert len(fake_llm.requests) == 3 + len(PROBE_DELAYS)


async def test_successful_probe_closes_the_breaker(two_tiers: LLM, fake_llm: FakeLLM, clock: FakeClock) -> None:
    fake_llm.fail_all(502)
    for _ in range(3):
        with pytest.raises(DependencyUnavailable, match="from llama-swap-fallback"):
            await two_tiers.chat(HELLO)
    fake_llm.fail_all(None)
    clock.advance(60)
    answer = await two_tiers.chat(HELLO)
    assert answer.tier == "llama-swap"
    assert [s["state"] for s in two_tiers.status()] == ["closed", "half_open"]  # its probe is due, not taken
    assert two_tiers.breakers["llama-swap"].consecutive_failures == 0
    assert two_tiers.breakers["llama-swap"].delay == 60


TOO_LONG = {"error": {"message": "This model's maximum context length is 8192 tokens.", "type": "invalid_request_error",
                      "param": "messages", "code": "context_length_exceeded"}}


async def test_a_refusal_of_the_request_does_not_open_the_breaker(two_tiers: LLM, fake_llm: FakeLLM) -> None:
    for _ in range(5):
        fake_llm.script(FakeLLM.Status(400, TOO_LONG), OK)
        answer = await two_tiers.chat(HELLO)  # the 4xx moves on to the next tier
        assert answer.tier == "llama-swap-fallback"
    breaker = two_tiers.breakers["llama-swap"]
    assert state(breaker) == "closed" and breaker.consecutive_failures == 0
    fake_llm.script(FakeLLM.Status(400, TOO_LONG), FakeLLM.Status(400, TOO_LONG))
    with pytest.raises(PermanentError, match="400 Bad Request from llama-swap-fallback"):
        await two_tiers.chat(HELLO)  # every tier refused this request: it is the mail's own fault
    assert [s["state"] for s in two_tiers.status()] == ["closed", "closed"]


# --- a tier that refuses us (configuration) --------------------------------------------------------


def test_a_misconfiguration_opens_at_once_and_is_probed_like_an_outage(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    assert breaker.record_misconfigured("401 Unauthorized from llama-swap (qwen3-8b): Incorrect API key")
    assert state(breaker) == "open" and breaker.misconfigured and breaker.delay == 60
    clock.advance(60)
    assert breaker.allow()
    assert not breaker.record_misconfigured("401 again")  # still the same misconfiguration: not a new one
    assert state(breaker) == "open" and breaker.delay == 120
    clock.advance(120)
    assert breaker.allow()
    breaker.record_failure("502 Bad Gateway")  # the key may be fixed, but the server is down now
    assert breaker.misconfigured and breaker.delay == 240
    clock.advance(240)
    assert breaker.allow()
    breaker.record_success()
    assert state(breaker) == "closed" and not breaker.misconfigured and breaker.delay == 60


def test_a_misconfiguration_of_a_half_failed_tier_opens_it_without_waiting(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    breaker.record_failure("502")
    assert breaker.record_misconfigured("404 Not Found")
    assert state(breaker) == "open" and breaker.opened_at == clock.now


async def test_all_tiers_open_raises_a_clear_error(two_tiers: LLM, fake_llm: FakeLLM, clock: FakeClock) -> None:
    fake_llm.fail_all(502)
    for _ in range(3):
        with pytest.raises(DependencyUnavailable):
            await two_tiers.chat(HELLO)
    calls = two_tiers.calls
    clock.advance(10)
    with pytest.raises(DependencyUnavailable) as info:
        await two_tiers.chat(HELLO)
    assert str(info.value) == "all LLM tiers are paused (circuit open): 502 Bad Gateway from llama-swap (qwen3-8b)"
    assert info.value.dependency == "llama-swap" and info.value.retry_after == 50
    assert two_tiers.calls == calls == len(fake_llm.requests) == 6


async def test_concurrent_callers_skip_while_the_probe_is_in_flight(fake_llm: FakeLLM, clock: FakeClock) -> None:
    llm = LLM([LLMEndpoint("llama-swap", fake_llm.url, "qwen3-8b")], timeout=5, concurrency=2, clock=clock)
    try:
        fake_llm.fail_all(502)
        await fail_three_times(llm)
        fake_llm.fail_all(None)
        fake_llm.script(FakeLLM.Delay(0.3))
        clock.advance(60)
        probe, other = await asyncio.gather(llm.chat(HELLO), llm.chat(HELLO), return_exceptions=True)
        assert not isinstance(probe, BaseException) and probe.tier == "llama-swap"
        assert isinstance(other, DependencyUnavailable) and "paused" in str(other)
        assert len(fake_llm.requests) == 4 and state(llm.breakers["llama-swap"]) == "closed"
    finally:
        await llm.aclose()


async def test_a_cancelled_probe_frees_the_probe(one_tier: LLM, fake_llm: FakeLLM, clock: FakeClock) -> None:
    fake_llm.fail_all(502)
    await fail_three_times(one_tier)
    fake_llm.fail_all(None)
    fake_llm.script(FakeLLM.Delay(1.5))
    clock.advance(60)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(one_tier.chat(HELLO), 0.2)
    breaker = one_tier.breakers["llama-swap"]
    assert state(breaker) == "half_open" and not breaker.probing
    assert (await one_tier.chat(HELLO)).tier == "llama-swap"
    assert state(breaker) == "closed"


async def test_connection_refused_opens_the_breaker(clock: FakeClock) -> None:
    llm = LLM([LLMEndpoint("llama-swap", "http://127.0.0.1:9", "m")], timeout=2, clock=clock)
    try:
        for _ in range(3):
            with pytest.raises(DependencyUnavailable, match="cannot connect"):
                await llm.chat(HELLO)
        with pytest.raises(DependencyUnavailable, match=r"paused \(circuit open\): cannot connect to llama-swap"):
            await llm.chat(HELLO)
        assert llm.calls == 3
    finally:
        await llm.aclose()


async def test_repair_call_respects_the_breaker(one_tier: LLM, fake_llm: FakeLLM) -> None:
    endpoint = one_tier.endpoints[0]
    fake_llm.fail_all(502)
    for _ in range(3):
        with pytest.raises(DependencyUnavailable, match="502"):
            await one_tier.ask_tier(endpoint, HELLO)
    with pytest.raises(DependencyUnavailable, match="paused"):
        await one_tier.ask_tier(endpoint, HELLO)
    assert len(fake_llm.requests) == 3


async def test_status_lists_every_tier(two_tiers: LLM, fake_llm: FakeLLM, clock: FakeClock) -> None:
    starved: list[ScriptItem] = [FakeLLM.Status(502), OK]
    fake_llm.script(*starved * 3)
    for _ in range(3):
        await two_tiers.chat(HELLO)
    first, second = two_tiers.status()
    assert first["tier"] == "llama-swap" and first["model"] == "qwen3-8b" and first["state"] == "open"
    assert first["consecutive_failures"] == 3 and first["opened_at"] == clock.now
    assert first["last_error"] == "502 Bad Gateway from llama-swap (qwen3-8b)"
    assert second == {"tier": "llama-swap-fallback", "model": "qwen3-4b", "state": "closed",
                      "consecutive_failures": 0, "misconfigured": False, "last_error": None, "opened_at": None,
                      "probe_delay": 60, "seconds_until_probe": None}


def test_breaker_settings_reach_every_tier(clock: FakeClock) -> None:
    llm = LLM([LLMEndpoint("a", "http://127.0.0.1:9", "m"), LLMEndpoint("b", "http://127.0.0.1:9", "n")],
              failure_threshold=1, probe_after=5, max_probe_after=20, clock=clock)
    assert set(llm.breakers) == {"a", "b"}
    for breaker in llm.breakers.values():
        assert (breaker.failure_threshold, breaker.probe_after, breaker.max_probe_after) == (1, 5, 20)
