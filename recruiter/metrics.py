"""Metrics that accumulate over the process's life (stage durations); the rest of `/metrics` is read at
scrape time from the store, the watchers, the breakers and the LLM client (see `recruiter/http/app.py`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

# Stages run from milliseconds (prefilter) to minutes (an LLM draft on a busy GPU).
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    """The process's own registry; one per Runtime so tests can run several in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.stage_seconds = Histogram(
            "recruiter_stage_duration_seconds", "Time one stage took, by stage and outcome.",
            ["stage", "outcome"], buckets=STAGE_BUCKETS, registry=self.registry,
        )

    def stage_done(self, stage: str, outcome: str, seconds: float) -> None:
        """Record one run of ``stage``: outcome is ok, postponed, transient, permanent or crashed."""
        self.stage_seconds.labels(stage, outcome).observe(max(0.0, seconds))
