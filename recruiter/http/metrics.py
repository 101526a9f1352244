"""`/metrics`: one Prometheus collector for everything read at scrape time.

:class:`ServiceCollector` is registered once. Before each scrape is rendered, :meth:`ServiceCollector.refresh`
reads the store's figures (queries are async; a collector's ``collect`` is not); ``collect`` then
yields them with the live state of the watchers, the LLM tiers and the incidents. Names are those
used by k8s/prometheusrule.yaml. The process's accumulating metrics (stage durations, see
:mod:`recruiter.metrics`) live in the same registry.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from recruiter.alerts.incidents import Incidents
from recruiter.ingest.watcher import Watcher
from recruiter.llm.client import LLM
from recruiter.store.repo import Store

BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


@dataclass(frozen=True)
class _StoreFigures:
    by_state: dict[str, int] = field(default_factory=dict)
    dlq_size: int = 0
    dlq_oldest: float = 0.0
    dead_by_reason: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0


class ServiceCollector(Collector):
    """The store's counts, the DLQ, the incidents, the watchers and the LLM tiers, as metric families."""

    def __init__(self, store: Store, watchers: Sequence[Watcher], llm: LLM, incidents: Incidents | None) -> None:
        self.store = store
        self.watchers = watchers
        self.llm = llm
        self.incidents = incidents
        self._figures = _StoreFigures()

    async def refresh(self) -> None:
        """Read the store's figures for the next ``collect`` (raises what the store raises)."""
        dlq_size, oldest = await self.store.dlq_stats()
        self._figures = _StoreFigures(
            by_state=dict(await self.store.counts_by_state()), dlq_size=dlq_size, dlq_oldest=oldest,
            dead_by_reason=dict(await self.store.dead_by_reason()), quarantined=await self.store.quarantined_count(),
        )

    def collect(self) -> Iterator[Metric]:
        figures = self._figures
        yield _labelled("recruiter_messages", "Stored messages by state.", ["state"],
                        (([state], count) for state, count in figures.by_state.items()))
        yield GaugeMetricFamily("recruiter_dlq_size", "Messages in the dead-letter queue.", value=figures.dlq_size)
        yield _labelled("recruiter_dlq_messages", "Dead messages by reason.", ["reason"],
                        (([reason], count) for reason, count in figures.dead_by_reason.items()))
        yield GaugeMetricFamily("recruiter_quarantined_messages", "Mails stored quarantined at ingest (unreadable, "
                                "or refused by the store) and still dead.", value=figures.quarantined)
        yield GaugeMetricFamily("recruiter_dlq_oldest_age_seconds", "Age of the oldest dead letter (0 when empty).",
                                value=figures.dlq_oldest)
        snapshot: dict[str, Any] = (self.incidents.snapshot() if self.incidents is not None
                                    else {"consecutive_failures": 0, "incidents": []})
        yield GaugeMetricFamily("recruiter_triage_consecutive_failures", "Consecutive transient LLM failures.",
                                value=snapshot["consecutive_failures"])
        yield _labelled("recruiter_incident_open", "1 while an incident is open (the owner was alerted), by key.",
                        ["key"], (([incident["key"]], 1) for incident in snapshot["incidents"]))
        now = time.monotonic()
        yield _labelled("recruiter_imap_connected", "1 when the mailbox watcher is connected.", ["mailbox"],
                        (([w.mb.name], 1 if w.connected else 0) for w in self.watchers))
        yield _labelled("recruiter_imap_seconds_since_last_line", "Seconds since the IMAP server last spoke.",
                        ["mailbox"], (([w.mb.name], 0 if w.standby or w.last_heard is None else now - w.last_heard)
                                      for w in self.watchers))
        tiers = self.llm.status()
        yield _labelled("recruiter_llm_breaker_state", "0 closed, 1 half open, 2 open.", ["tier", "model"],
                        (([t["tier"], t["model"]], BREAKER_STATES.get(t["state"], 2)) for t in tiers))
        yield _labelled("recruiter_llm_tier_misconfigured", "1 while the tier refuses us for a reason of "
                        "configuration (401/403, unknown model, refused parameter).", ["tier", "model"],
                        (([t["tier"], t["model"]], 1 if t.get("misconfigured") else 0) for t in tiers))
        yield GaugeMetricFamily("recruiter_llm_calls", "LLM HTTP calls made by this process.", value=self.llm.calls)
        yield from _usage(self.llm.usage_snapshot())
        repairs = CounterMetricFamily("recruiter_llm_repairs", "Repairs made to LLM answers before validation, by "
                                      "field and kind (truncated, dropped, coerced, defaulted, sanitized, extracted).",
                                      labels=["field", "kind"])
        for row in self.llm.repairs_snapshot():
            repairs.add_metric([row["field"], row["kind"]], row["count"])
        yield repairs


def _labelled(name: str, documentation: str, labels: list[str],
              samples: Iterable[tuple[list[str], float]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family


def _usage(usage: list[dict[str, Any]]) -> Iterator[Metric]:
    """LLM calls, tokens and latency per tier/model/outcome, as counters (from ``LLM.usage_snapshot``)."""
    labels = ["tier", "model", "outcome"]
    families = {
        "calls": CounterMetricFamily("recruiter_llm_requests", "LLM requests by tier, model and outcome "
                                     "(ok, error, invalid).", labels=labels),
        "prompt_tokens": CounterMetricFamily("recruiter_llm_prompt_tokens", "Prompt tokens sent "
                                             "(estimated when the server reports none).", labels=labels),
        "completion_tokens": CounterMetricFamily("recruiter_llm_completion_tokens", "Completion tokens "
                                                 "received.", labels=labels),
        "seconds": CounterMetricFamily("recruiter_llm_request_seconds", "Time spent waiting for LLM answers.",
                                       labels=labels),
    }
    for row in usage:
        for name, family in families.items():
            family.add_metric([row["tier"], row["model"], row["outcome"]], row[name])
    yield from families.values()


async def metrics_text(store: Store, watchers: Sequence[Watcher], llm: LLM, incidents: Incidents | None) -> bytes:
    """The scrape-time exposition alone, in a registry of its own (for tests and one-off reads)."""
    registry = CollectorRegistry()
    collector = ServiceCollector(store, watchers, llm, incidents)
    registry.register(collector)
    await collector.refresh()
    return generate_latest(registry)
