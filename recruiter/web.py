"""HTTP inside `recruiter run`: liveness, readiness and Prometheus metrics.

`/healthz` says the process is alive. `/readyz` is 200 only when the store answers and every IMAP
watcher has heard from its server (or stands by for another replica) within the freshness window.
`/metrics` is computed at scrape time from the store, the watchers, the breakers and the incidents.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recruiter.api import Replays, add_api_routes, service_status
from recruiter.errors import RecruiterError
from recruiter.health import Incidents
from recruiter.llm.client import LLM
from recruiter.mail.watcher import Watcher
from recruiter.metrics import Metrics
from recruiter.store.repo import Store

BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
MAX_BODY_BYTES = 64 * 1024  # /api bodies are a few fields; /cb has none
MAX_TARGET_BYTES = 4096  # path + query: a signed /cb link is ~150 bytes


def watcher_state(watcher: Watcher, stale_seconds: float, now: float) -> dict[str, Any]:
    """One watcher's readiness: fresh when it heard from its server recently, or stands by."""
    age = None if watcher.last_heard is None else now - watcher.last_heard
    fresh = watcher.standby or (watcher.connected and age is not None and age <= stale_seconds)
    missing = watcher.folders_missing or []
    return {
        "ok": fresh and not missing, "connected": watcher.connected, "standby": watcher.standby,
        "seconds_since_last_line": None if age is None else round(age, 1),
        "last_error": "; ".join(missing) or watcher.last_error, "folders_missing": missing,
    }


async def readiness(store: Store, watchers: Sequence[Watcher], stale_seconds: float,
                    incidents: Incidents | None = None) -> dict[str, Any]:
    """Each dependency and its state; ``ready`` only when all are fine. The store is not ready while its
    writes fail (a lock held past the busy timeout, a read-only fail-over), even if it answers reads."""
    checks: dict[str, Any] = {}
    try:
        await store.ping()
        if incidents is not None and incidents.store_failing:
            snap: dict[str, Any] = next((i for i in incidents.snapshot()["incidents"] if i["key"] == "store"), {})
            checks["store"] = {"ok": False, "error": f"writes fail: {snap.get('last_error')}"}
        else:
            checks["store"] = {"ok": True}
    except RecruiterError as exc:
        checks["store"] = {"ok": False, "error": str(exc)}
    now = time.monotonic()
    for watcher in watchers:
        checks[f"imap:{watcher.mb.name}"] = watcher_state(watcher, stale_seconds, now)
    return {"ready": all(c["ok"] for c in checks.values()), "checks": checks}


async def metrics_text(store: Store, watchers: Sequence[Watcher], llm: LLM, incidents: Incidents | None) -> bytes:
    """The Prometheus exposition of the current state (names used by k8s/prometheusrule.yaml)."""
    registry = CollectorRegistry()
    by_state = Gauge("recruiter_messages", "Stored messages by state.", ["state"], registry=registry)
    for state, count in (await store.counts_by_state()).items():
        by_state.labels(state).set(count)
    dlq_size, oldest = await store.dlq_stats()
    Gauge("recruiter_dlq_size", "Messages in the dead-letter queue.", registry=registry).set(dlq_size)
    by_reason = Gauge("recruiter_dlq_messages", "Dead messages by reason.", ["reason"], registry=registry)
    for reason, count in (await store.dead_by_reason()).items():
        by_reason.labels(reason).set(count)
    Gauge("recruiter_quarantined_messages", "Mails stored quarantined at ingest (unreadable, or refused by the "
          "store) and still dead.", registry=registry).set(await store.quarantined_count())
    Gauge("recruiter_dlq_oldest_age_seconds", "Age of the oldest dead letter (0 when empty).",
          registry=registry).set(oldest)
    failures = incidents.snapshot()["consecutive_failures"] if incidents is not None else 0
    Gauge("recruiter_triage_consecutive_failures", "Consecutive transient LLM failures.",
          registry=registry).set(failures)
    open_incidents = Gauge("recruiter_incident_open", "1 while an incident is open (the owner was alerted), by key.",
                           ["key"], registry=registry)
    for incident in (incidents.snapshot()["incidents"] if incidents is not None else []):
        open_incidents.labels(incident["key"]).set(1)
    connected = Gauge("recruiter_imap_connected", "1 when the mailbox watcher is connected.", ["mailbox"],
                      registry=registry)
    silent = Gauge("recruiter_imap_seconds_since_last_line", "Seconds since the IMAP server last spoke.",
                   ["mailbox"], registry=registry)
    now = time.monotonic()
    for watcher in watchers:
        connected.labels(watcher.mb.name).set(1 if watcher.connected else 0)
        silent.labels(watcher.mb.name).set(0 if watcher.standby or watcher.last_heard is None
                                           else now - watcher.last_heard)
    breaker = Gauge("recruiter_llm_breaker_state", "0 closed, 1 half open, 2 open.", ["tier", "model"],
                    registry=registry)
    misconfigured = Gauge("recruiter_llm_tier_misconfigured", "1 while the tier refuses us for a reason of "
                          "configuration (401/403, unknown model, refused parameter).", ["tier", "model"],
                          registry=registry)
    for tier in llm.status():
        breaker.labels(tier["tier"], tier["model"]).set(BREAKER_STATES.get(tier["state"], 2))
        misconfigured.labels(tier["tier"], tier["model"]).set(1 if tier.get("misconfigured") else 0)
    Gauge("recruiter_llm_calls", "LLM HTTP calls made by this process.", registry=registry).set(llm.calls)
    registry.register(_UsageCollector(llm.usage_snapshot()))
    repairs = CounterMetricFamily("recruiter_llm_repairs", "Repairs made to LLM answers before validation, by "
                                  "field and kind (truncated, dropped, coerced, defaulted, sanitized, extracted).",
                                  labels=["field", "kind"])
    for row in llm.repairs_snapshot():
        repairs.add_metric([row["field"], row["kind"]], row["count"])
    registry.register(_Fixed([repairs]))
    return generate_latest(registry)


class _Fixed(Collector):
    """Metric families computed before the scrape is rendered."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


class _UsageCollector(Collector):
    """LLM calls, tokens and latency per tier/model/outcome, as counters (from ``LLM.usage_snapshot``)."""

    def __init__(self, usage: list[dict[str, Any]]) -> None:
        self.usage = usage

    def collect(self) -> Iterator[Metric]:
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
        for row in self.usage:
            for field, family in families.items():
                family.add_metric([row["tier"], row["model"], row["outcome"]], row[field])
        yield from families.values()


class LimitRequests:
    """ASGI middleware: refuse over-long URLs (414) and bodies over ``max_body`` bytes (413) before any
    route sees them, whether the client announces the length or streams it."""

    def __init__(self, app: ASGIApp, *, max_body: int = MAX_BODY_BYTES, max_target: int = MAX_TARGET_BYTES) -> None:
        self.app = app
        self.max_body = max_body
        self.max_target = max_target

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        target = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        if target > self.max_target:
            await _refuse(send, 414, "request target too long")
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _refuse(send, 413, "request body too large")
            return
        seen = 0
        started = refused = False

        async def limited_receive() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    # Answer now and tell the route the client has gone (FastAPI would turn an
                    # exception raised here into a 400 of its own).
                    refused = True
                    if not started:
                        await _refuse(send, 413, "request body too large")
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, tracking_send)


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def make_app(
    store: Store,
    watchers: Sequence[Watcher],
    llm: LLM,
    incidents: Incidents | None,
    *,
    stale_seconds: float,
    token: str = "",
    replays: Replays | None = None,
    wake: Callable[[], None] = lambda: None,
    metrics: Metrics | None = None,
    callbacks: APIRouter | None = None,
) -> FastAPI:
    """The service's HTTP application."""
    app = FastAPI(title="recruiter-responder", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(LimitRequests)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        report = await readiness(store, watchers, stale_seconds, incidents)
        return JSONResponse(report, status_code=200 if report["ready"] else 503)

    @app.get("/metrics")
    async def get_metrics() -> Response:
        body = await metrics_text(store, watchers, llm, incidents)
        if metrics is not None:
            body += generate_latest(metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def status() -> dict[str, Any]:
        return await service_status(store, watchers, llm, incidents, stale_seconds=stale_seconds)

    add_api_routes(app, store=store, token=token, status=status, replays=replays or Replays(None), wake=wake)
    if callbacks is not None:
        app.include_router(callbacks)
    return app
