"""One exponential backoff for every wait that grows with failures.

``Backoff(initial, cap, factor=2, jitter=0)``: after the n-th failure in a row (n ≥ 1) wait
``min(cap, initial × factor^(n−1))``, then stretched by up to ``jitter`` of itself (0.2: 0–20 % longer, never
shorter). The jitter comes after the cap: a capped wait may be up to ``jitter`` longer than ``cap``.

- :meth:`Backoff.delay` is the formula alone, for callers that keep the failure count themselves (a
  persisted row, a circuit breaker);
- :meth:`Backoff.waits` counts failures in process: ``next()`` after a failure, ``reset()`` after a success.

Its users and their figures:

=========================================  ==============================  ====================
wait                                       schedule                        failure count kept
=========================================  ==============================  ====================
worker: claim while the store is down      0.5 s doubling to 30 s          in process
watcher: IMAP reconnect                    1 s doubling to 5 s, +0–20 %    in process
store: ``patiently`` (an effect's record)  0.5 s doubling to 10 s          in process (tries)
alerts: outbox delivery                    ``delivery_retry_seconds``      outbox row
                                           doubling to 5 min
LLM breaker: probe of an open tier         ``probe_after`` doubling to     the breaker
                                           ``max_probe_after``
worker: a message's next attempt           ``retry_base`` doubling to      the message row
                                           ``retry_max``, +0–20 %          (persisted schedule)
=========================================  ==============================  ====================

Randomness is injectable (``rand``, a ``random.random`` stand-in) so tests see exact figures.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

Rand = Callable[[], float]  # uniform in [0, 1), like random.random


@dataclass(frozen=True)
class Backoff:
    """An exponential schedule of waits; see the module docstring."""

    initial: float
    cap: float
    factor: float = 2.0
    jitter: float = 0.0  # up to this fraction longer: 0.2 stretches each wait by 0–20 %

    def __post_init__(self) -> None:
        if self.initial < 0 or self.cap < 0 or self.jitter < 0:
            raise ValueError(f"need initial, cap, jitter >= 0, got {self.initial}, {self.cap}, {self.jitter}")
        if self.factor < 1:
            raise ValueError(f"need factor >= 1, got {self.factor}")

    def delay(self, failures: int, *, rand: Rand = random.random) -> float:
        """Seconds to wait after ``failures`` failures in a row (counted from 1; less counts as 1)."""
        try:
            grown = self.initial * self.factor ** max(0, failures - 1)
        except OverflowError:  # a very long outage: the power left float range long after the cap
            grown = math.inf if self.initial else 0.0
        wait = min(self.cap, grown)
        if self.jitter:
            wait *= 1 + rand() * self.jitter
        return float(wait)

    def waits(self, *, rand: Rand = random.random) -> Waits:
        """A failure counter on this schedule, starting at none."""
        return Waits(self, rand=rand)


class Waits:
    """Failures in a row on one :class:`Backoff`: ``next()`` counts one and says how long to wait."""

    def __init__(self, backoff: Backoff, *, rand: Rand = random.random) -> None:
        self.backoff = backoff
        self.failures = 0
        self._rand = rand

    def next(self) -> float:
        """One more failure: the seconds to wait before trying again."""
        self.failures += 1
        return self.backoff.delay(self.failures, rand=self._rand)

    def reset(self) -> None:
        """It worked: the next failure waits ``initial`` again."""
        self.failures = 0


__all__ = ["Backoff", "Rand", "Waits"]
