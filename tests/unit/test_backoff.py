"""The one backoff (recruiter/backoff.py): the formula, the in-process counter, and each user's figures
checked against the hand-rolled formula it replaced. No sleeps; randomness is injected."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from recruiter.backoff import Backoff
from recruiter.errors import TransientError
from recruiter.ingest.watcher import MAX_BACKOFF, RECONNECT
from recruiter.pipeline.worker import CLAIM_BACKOFF, retry_delay
from recruiter.store.patience import PATIENCE, patiently


def fixed(*values: float) -> Callable[[], float]:
    """A ``random.random`` stand-in that returns ``values`` in turn, then repeats the last."""
    it: Iterator[float] = iter(values)
    last = [values[-1]]

    def rand() -> float:
        last[0] = next(it, last[0])
        return last[0]
    return rand


def test_doubles_from_initial_up_to_the_cap() -> None:
    b = Backoff(1.0, cap=5.0)
    assert [b.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_a_count_below_one_waits_initial() -> None:
    b = Backoff(0.5, cap=10.0)
    assert b.delay(0) == b.delay(-3) == b.delay(1) == 0.5


def test_other_factors() -> None:
    assert [Backoff(1.0, cap=100.0, factor=3).delay(n) for n in range(1, 6)] == [1, 3, 9, 27, 81]
    assert [Backoff(2.0, cap=100.0, factor=1).delay(n) for n in range(1, 4)] == [2.0, 2.0, 2.0]


def test_jitter_stretches_after_the_cap_and_never_shortens() -> None:
    b = Backoff(1.0, cap=5.0, jitter=0.2)
    assert b.delay(1, rand=fixed(0.0)) == 1.0
    assert b.delay(1, rand=fixed(0.5)) == pytest.approx(1.1)
    assert b.delay(10, rand=fixed(0.5)) == pytest.approx(5.5)  # capped first, then stretched
    assert b.delay(10, rand=fixed(0.999999)) < 6.0
    rng = random.Random(7)
    assert all(5.0 <= b.delay(10, rand=rng.random) < 6.0 for _ in range(1000))


def test_no_jitter_draws_no_randomness() -> None:
    def never() -> float:
        raise AssertionError("drew a random number")
    assert Backoff(1.0, cap=5.0).delay(3, rand=never) == 4.0


def test_a_very_long_outage_stays_at_the_cap() -> None:
    """The old ``base * 2 ** (n - 1)`` overflowed float range near n = 1020; the cap holds instead."""
    b = Backoff(30.0, cap=300.0, jitter=0.2)
    assert b.delay(5000, rand=fixed(0.0)) == 300.0
    assert Backoff(1.0, cap=5.0, factor=10).delay(400) == 5.0
    assert Backoff(0.0, cap=3600.0).delay(5000) == 0.0  # no wait stays no wait (RETRY_BASE_SECONDS=0)


def test_a_cap_below_initial_is_the_cap() -> None:
    assert Backoff(30.0, cap=10.0).delay(1) == 10.0
    assert Backoff(0.0, cap=0.0).delay(3) == 0.0


@pytest.mark.parametrize("kwargs", [
    {"initial": -1.0, "cap": 1.0}, {"initial": 1.0, "cap": -1.0}, {"initial": 1.0, "cap": 2.0, "jitter": -0.1},
    {"initial": 1.0, "cap": 2.0, "factor": 0.5},
])
def test_nonsense_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_waits_count_failures_and_reset() -> None:
    waits = Backoff(0.5, cap=30.0).waits()
    assert [waits.next() for _ in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert waits.failures == 8
    waits.reset()
    assert waits.failures == 0 and waits.next() == 0.5


def test_waits_use_the_injected_randomness() -> None:
    waits = Backoff(1.0, cap=5.0, jitter=0.2).waits(rand=fixed(0.5, 0.0, 1.0))
    assert [round(waits.next(), 6) for _ in range(4)] == [1.1, 2.0, 4.8, 6.0]


# --- each user's figures, against the formula it replaced -------------------------------------------

def test_worker_claim_wait_matches_the_old_loop() -> None:
    """worker.run: ``outage = min(30.0, max(0.5, outage * 2))`` per failed claim, 0 after a success."""
    old, waits, seen = 0.0, CLAIM_BACKOFF.waits(), []
    for failed in [True] * 9 + [False] + [True] * 3:
        if not failed:
            old = 0.0
            waits.reset()
            continue
        old = min(30.0, max(0.5, old * 2))
        seen.append(old)
        assert waits.next() == old
    assert seen == [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 0.5, 1, 2]


def test_watcher_reconnect_matches_the_old_loop() -> None:
    """watcher.run: ``delay = backoff * (1 + random() * 0.2); backoff = min(5, backoff * 2)``, 1 s after
    a session that lasted. Reconnects stay ≤ 6 s apart, so a server back after a minute is seen soon."""
    rolls = [random.Random(3).random() for _ in range(12)]
    backoff, waits = 1.0, RECONNECT.waits(rand=fixed(*rolls))
    for n, roll in enumerate(rolls):
        if n == 7:  # a session that lasted
            backoff = 1.0
            waits.reset()
        old = backoff * (1 + roll * 0.2)
        backoff = min(MAX_BACKOFF, backoff * 2)
        assert waits.next() == old
    assert all(RECONNECT.delay(n, rand=fixed(0.999999)) < 6.0 for n in range(1, 50))


def test_patience_matches_the_old_loop() -> None:
    """patiently: 0.5 s doubling to 10 s."""
    old = 0.5
    for attempt in range(1, 12):
        assert PATIENCE.delay(attempt) == old
        old = min(old * 2, 10.0)


def test_alert_delivery_matches_the_old_formula() -> None:
    """Incidents._postpone: ``min(300, delivery_retry_seconds * 2 ** (failures - 1))``."""
    for base in (30.0, 0.5, 7.0, 400.0):
        b = Backoff(base, cap=300.0)
        assert [b.delay(f) for f in range(1, 20)] == [min(300.0, base * 2 ** (f - 1)) for f in range(1, 20)]


def test_breaker_probe_delay_matches_the_old_doubling() -> None:
    """CircuitBreaker: ``delay = min(delay * 2, max_probe_after)`` per failed probe, from probe_after."""
    for probe_after, cap in ((60.0, 600.0), (0.1, 0.1), (5.0, 7.0), (1.5, 1000.0)):
        b, old = Backoff(probe_after, cap=cap), probe_after
        for failed_probes in range(15):
            assert b.delay(failed_probes + 1) == old
            old = min(old * 2, cap)


def test_persisted_schedule_keeps_its_values() -> None:
    """worker.retry_delay (the store's next-attempt times): the old formula, figure for figure."""
    def old(attempt: int, base: float, maximum: float, retry_after: float | None, roll: float) -> float:
        delay = min(maximum, base * (2 ** max(0, attempt - 1)))
        delay *= 1 + roll * 0.2
        return float(max(delay, retry_after or 0.0))

    rng = random.Random(11)
    for base, maximum in ((30.0, 3600.0), (0.0, 0.0), (1.0, 2.0), (45.5, 100.0)):
        for attempt in range(0, 14):
            for retry_after in (None, 0.0, 90.0, 7200.0):
                roll = rng.random()
                assert retry_delay(attempt, base=base, maximum=maximum, retry_after=retry_after,
                                   rand=fixed(roll)) == old(attempt, base, maximum, retry_after, roll)


class _Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def error(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))


async def test_patiently_waits_by_the_schedule_then_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def no_sleep(seconds: float) -> None:
        slept.append(seconds)
    monkeypatch.setattr("recruiter.store.patience.asyncio.sleep", no_sleep)
    calls = 0

    async def write() -> None:
        nonlocal calls
        calls += 1
        raise TransientError("store down")

    log = _Log()
    with pytest.raises(TransientError):
        await patiently(write, log, tries=8)
    assert calls == 8
    assert slept == [0.5, 1, 2, 4, 8, 10, 10]
    assert [f["retry_in"] for _, f in log.events] == slept


async def test_patiently_stops_at_the_first_success(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def no_sleep(seconds: float) -> None:
        slept.append(seconds)
    monkeypatch.setattr("recruiter.store.patience.asyncio.sleep", no_sleep)
    outcomes = iter([TransientError("a"), TransientError("b"), None])

    async def write() -> None:
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    await patiently(write, _Log())
    assert slept == [0.5, 1.0]
