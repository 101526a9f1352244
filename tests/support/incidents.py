"""The incident tests' clock, waiting count and time passing (shared by the unit and the scenario tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from recruiter.alerts.incidents import Incidents
from recruiter.notify.telegram import TelegramNotifier
from recruiter.store.repo import Store
from tests.support.clock import FakeClock

START = datetime(2026, 6, 2, 14, 41, tzinfo=UTC).timestamp()  # 17:41 EEST, the post-mortem's first 502
TIER = "llama-swap:qwen3-8b"
ERROR = "502 Bad Gateway from llama-swap (qwen3-8b)"


class Clock(FakeClock):
    """A settable clock that starts at the post-mortem's first 502."""

    def __init__(self, now: float = START) -> None:
        super().__init__(now)


class Waiting:
    """The store query: how many messages are waiting."""

    def __init__(self, count: int = 0) -> None:
        self.count = count

    async def __call__(self) -> int:
        return self.count


def incidents_for(notifier: TelegramNotifier, store: Store, clock: Clock, waiting: Waiting | None = None,
                  **kwargs: Any) -> Incidents:
    return Incidents(notifier, store, clock=clock, waiting=waiting or Waiting(), **kwargs)


async def fail(incidents: Incidents, times: int, *, error: str = ERROR, tier: str = TIER) -> None:
    for _ in range(times):
        await incidents.triage_failed(tier=tier, error=error)


async def run_for(incidents: Incidents, clock: Clock, seconds: float, *, step: float = 5) -> None:
    """Let time pass, ticking every ``step`` seconds like the service does."""
    end = clock.now + seconds
    while clock.now < end:
        clock.now = min(end, clock.now + step)
        await incidents.tick()
