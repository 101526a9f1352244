"""A circuit breaker per LLM tier: stop calling a starved tier, probe it now and then.

    closed ──(failure_threshold consecutive transient failures)──► open
    open ──(probe delay elapsed)──► half_open: exactly one probe call is let through
    half_open ──probe succeeds──► closed (delay back to ``probe_after``)
    half_open ──probe fails──► open again, delay doubled (capped at ``max_probe_after``)
    any ──the tier refuses us for a reason of configuration──► open at once, ``misconfigured``

A misconfigured tier (a rotated key, a renamed model, a refused parameter: every request gets the
same answer) is probed at the same pace as a starved one, so the fix is noticed; ``misconfigured``
stays set until a call succeeds.

The probe delay is a :class:`~recruiter.backoff.Backoff` on the failed probes in a row.
Time comes from an injectable ``clock`` (``time.monotonic`` by default) so tests can move it.
The breaker only keeps state; the caller decides what a failure is (transient errors and
schema-invalid answers count; a refusal that is the request's own fault does not; a refusal of
configuration opens it at once) and reports it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from recruiter.backoff import Backoff

log = structlog.get_logger()

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class _Undo:
    """What ``record_success`` changed, so ``record_invalid`` can take that success back."""

    consecutive_failures: int
    failed_probes: int
    opened_at: float | None
    probing: bool


class CircuitBreaker:
    """Consecutive-failure breaker with one probe at a time and an exponential probe delay."""

    def __init__(
        self,
        name: str = "",
        *,
        failure_threshold: int = 3,
        probe_after: float = 60.0,
        max_probe_after: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, got {failure_threshold}")
        if probe_after <= 0 or max_probe_after < probe_after:
            raise ValueError(f"need 0 < probe_after <= max_probe_after, got {probe_after}, {max_probe_after}")
        self.name = name
        self.failure_threshold = failure_threshold
        self.probe_after = probe_after
        self.max_probe_after = max_probe_after
        self._probe_backoff = Backoff(probe_after, cap=max_probe_after)
        self._clock = clock
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.opened_at: float | None = None  # clock time of the last opening; None while closed
        self.failed_probes = 0  # probes that failed since the breaker opened; each one doubles the delay
        self.misconfigured = False  # open because the tier refuses us (configuration), until a success
        self._probing = False
        self._undo: _Undo | None = None

    # --- reading ------------------------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """``closed``; ``open`` (calls skip); ``half_open`` (a probe is due or in flight)."""
        if self.opened_at is None:
            return "closed"
        return "half_open" if self._probing or self._probe_due() else "open"

    @property
    def delay(self) -> float:
        """Seconds from the last opening to the next probe (``probe_after`` until a probe failed)."""
        return self._probe_backoff.delay(self.failed_probes + 1)

    @property
    def probing(self) -> bool:
        """True while the one probe call is in flight."""
        return self._probing

    def seconds_until_probe(self) -> float | None:
        """Seconds until a probe may go out (0 when due); None while closed."""
        if self.opened_at is None:
            return None
        return max(0.0, self.opened_at + self.delay - self._clock())

    def snapshot(self) -> dict[str, Any]:
        """A plain dict for status pages and metrics."""
        return {
            "name": self.name,
            "state": self.state,
            "consecutive_failures": self.consecutive_failures,
            "misconfigured": self.misconfigured,
            "last_error": self.last_error,
            "opened_at": self.opened_at,
            "probe_delay": self.delay,
            "seconds_until_probe": self.seconds_until_probe(),
        }

    # --- deciding -----------------------------------------------------------------------------------

    def allow(self) -> bool:
        """May a call go to this tier now? While open, True once per probe delay (that call is the probe)."""
        if self.opened_at is None:
            return True
        if self._probing or not self._probe_due():
            return False
        self._probing = True
        log.info("llm.breaker_probe", tier=self.name, after_seconds=self.delay)
        return True

    def _probe_due(self) -> bool:
        return self.opened_at is not None and self._clock() >= self.opened_at + self.delay

    # --- recording ----------------------------------------------------------------------------------

    def record_success(self) -> None:
        """The tier answered: close (if open) and reset the failure count and the probe delay."""
        self._undo = _Undo(self.consecutive_failures, self.failed_probes, self.opened_at, self._probing)
        if self.opened_at is not None:
            log.info("llm.breaker_closed", tier=self.name, probe_delay=self.delay, misconfigured=self.misconfigured)
        self.consecutive_failures = 0
        self.misconfigured = False
        self.opened_at = None
        self.failed_probes = 0
        self._probing = False

    def record_failure(self, error: str) -> None:
        """A transient failure: count it; open at the threshold; a failed probe re-opens, delay doubled."""
        self._undo = None
        self.last_error = error
        self.consecutive_failures += 1
        if self._probing:
            self._open(failed_probes=self.failed_probes + 1)
        elif self.opened_at is None and self.consecutive_failures >= self.failure_threshold:
            self._open(failed_probes=0)

    def record_misconfigured(self, error: str) -> bool:
        """The tier refused a request for a reason of configuration: open now (a failed probe doubles
        the delay, as for any failed probe). True when this starts a misconfiguration (was not one)."""
        self._undo = None
        self.last_error = error
        self.consecutive_failures += 1
        started = not self.misconfigured
        self.misconfigured = True
        if self._probing:
            self._open(failed_probes=self.failed_probes + 1)
        elif self.opened_at is None:
            self._open(failed_probes=0)
        return started

    def record_invalid(self, error: str) -> None:
        """The last success's answer was unusable (schema-invalid after repair): take it back as a failure.

        Undoing the success matters: otherwise a tier that always answers garbage would reset its own
        count with every HTTP 200 and never open. A probe whose answer was invalid counts as a failed probe.
        """
        undo, self._undo = self._undo, None
        if undo is not None:
            self.consecutive_failures = undo.consecutive_failures
            self.failed_probes = undo.failed_probes
            self.opened_at = undo.opened_at
            self._probing = undo.probing
        self.record_failure(error)

    def release(self) -> None:
        """The probe ended without a verdict (a 4xx, a cancelled call): the next caller may probe."""
        self._probing = False

    def _open(self, *, failed_probes: int) -> None:
        self.opened_at = self._clock()
        self.failed_probes = failed_probes
        self._probing = False
        log.warning("llm.breaker_open", tier=self.name, failures=self.consecutive_failures,
                    probe_in_seconds=self.delay, misconfigured=self.misconfigured, error=self.last_error)


__all__ = ["BreakerState", "CircuitBreaker"]
