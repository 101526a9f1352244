"""HTTP inside `recruiter run`: the application — probes, metrics, the API and the card's buttons.

`/healthz` says the process is alive. `/readyz` is 200 only when the store answers and every IMAP
watcher has heard from its server (or stands by for another replica) within the freshness window.
`/metrics` is computed at scrape time from the store, the watchers, the breakers and the incidents.
Readiness is in :mod:`recruiter.http.probes`, the metrics in :mod:`recruiter.http.metrics`, the API in
:mod:`recruiter.http.api`, the buttons in :mod:`recruiter.http.callbacks`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recruiter.alerts.incidents import Incidents
from recruiter.http.api import Replays, add_api_routes, service_status
from recruiter.http.metrics import ServiceCollector
from recruiter.http.probes import readiness
from recruiter.ingest.watcher import Watcher
from recruiter.llm.client import LLM
from recruiter.metrics import Metrics
from recruiter.store.repo import Store

MAX_BODY_BYTES = 64 * 1024  # /api bodies are a few fields; /cb has none
MAX_TARGET_BYTES = 4096  # path + query: a signed /cb link is ~150 bytes


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

    registry = metrics.registry if metrics is not None else CollectorRegistry()
    collector = ServiceCollector(store, watchers, llm, incidents)
    registry.register(collector)

    @app.get("/metrics")
    async def get_metrics() -> Response:
        await collector.refresh()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def status() -> dict[str, Any]:
        return await service_status(store, watchers, llm, incidents, stale_seconds=stale_seconds)

    add_api_routes(app, store=store, token=token, status=status, replays=replays or Replays(None), wake=wake)
    if callbacks is not None:
        app.include_router(callbacks)
    return app
