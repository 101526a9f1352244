"""HTTP inside `recruiter run`: liveness, readiness and Prometheus metrics.

`/healthz` says the process is alive. `/readyz` is 200 only when the store answers and every IMAP
watcher has heard from its server (or stands by for another replica) within the freshness window.
`/metrics` is computed at scrape time from the store, the watchers, the breakers and the incidents.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from recruiter.errors import RecruiterError
from recruiter.health import Incidents
from recruiter.llm.client import LLM
from recruiter.mail.watcher import Watcher
from recruiter.store.repo import Store

BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


def watcher_state(watcher: Watcher, stale_seconds: float, now: float) -> dict[str, Any]:
    """One watcher's readiness: fresh when it heard from its server recently, or stands by."""
    age = None if watcher.last_heard is None else now - watcher.last_heard
    fresh = watcher.standby or (watcher.connected and age is not None and age <= stale_seconds)
    return {
        "ok": fresh, "connected": watcher.connected, "standby": watcher.standby,
        "seconds_since_last_line": None if age is None else round(age, 1), "last_error": watcher.last_error,
    }


async def readiness(store: Store, watchers: Sequence[Watcher], stale_seconds: float) -> dict[str, Any]:
    """Each dependency and its state; ``ready`` only when all are fine."""
    checks: dict[str, Any] = {}
    try:
        await store.ping()
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
    Gauge("recruiter_dlq_oldest_age_seconds", "Age of the oldest dead letter (0 when empty).",
          registry=registry).set(oldest)
    failures = incidents.snapshot()["consecutive_failures"] if incidents is not None else 0
    Gauge("recruiter_triage_consecutive_failures", "Consecutive transient LLM failures.",
          registry=registry).set(failures)
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
    for tier in llm.status():
        breaker.labels(tier["tier"], tier["model"]).set(BREAKER_STATES.get(tier["state"], 2))
    Gauge("recruiter_llm_calls", "LLM HTTP calls made by this process.", registry=registry).set(llm.calls)
    return generate_latest(registry)


def make_app(
    store: Store, watchers: Sequence[Watcher], llm: LLM, incidents: Incidents | None, *, stale_seconds: float
) -> FastAPI:
    """The service's HTTP application."""
    app = FastAPI(title="recruiter-responder", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        report = await readiness(store, watchers, stale_seconds)
        return JSONResponse(report, status_code=200 if report["ready"] else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(await metrics_text(store, watchers, llm, incidents), media_type=CONTENT_TYPE_LATEST)

    return app
