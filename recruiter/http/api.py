"""The operator's HTTP API inside `recruiter run`, under `/api`, behind `Authorization: Bearer`.

- `GET /api/status` — mailboxes, queue by state, DLQ, breakers, the open incident, last triage; `ready`.
- `GET /api/messages[?state=&limit=&offset=]`, `GET /api/messages/{id}` (with side effects and history).
- `GET /api/dlq`, `POST /api/dlq/{id}/retry` (the same redrive as `recruiter dlq retry`).
- `POST /api/replay` — starts a backlog replay inside the service (sharing its LLM limit and breakers)
  and answers 202 with its id; `GET /api/replay/{id}` follows it.

The token is `WEBHOOK_BEARER_TOKEN`, compared in constant time; without it every `/api` call is 503
(the API is off), with a wrong or missing one 401. Store outages answer 503, never a traceback.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from recruiter.alerts.incidents import Incidents
from recruiter.errors import ApiError, RecruiterError, TransientError
from recruiter.http.probes import readiness
from recruiter.http.views import message_detail, message_json
from recruiter.ingest.watcher import Watcher
from recruiter.llm.client import LLM
from recruiter.notify.telegram import html_to_plain
from recruiter.store.repo import Store

log = structlog.get_logger()
MAX_PAGE = 500


def _iso(unix: float | None) -> str | None:
    return None if unix is None else datetime.fromtimestamp(unix, UTC).isoformat()


async def store_status(store: Store) -> dict[str, Any]:
    """What the store alone can say: queue by state, DLQ, last mail per mailbox, last triage."""
    counts = await store.counts_by_state()
    dlq_size, oldest = await store.dlq_stats()
    activity = await store.activity()
    return {
        "queue": counts,
        "dlq": {"size": dlq_size, "oldest_age_seconds": round(oldest, 1), "by_reason": await store.dead_by_reason(),
                "quarantined": await store.quarantined_count()},
        "last_mail": {name: at.isoformat() for name, at in activity["last_mail"].items()},
        "last_triage_at": activity["last_triage"].isoformat() if activity["last_triage"] else None,
        "maybe_delivered": await maybe_delivered(store),
    }


async def maybe_delivered(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Cards and messages to the owner that may not have arrived (written, no answer): never sent again."""
    cards = await store.alerts.uncertain_cards(untold_only=False, limit=100)
    alerts = await store.alerts.uncertain(untold_only=False, limit=100)
    return {
        "cards": [{"id": m.id, "subject": m.subject, "from": m.from_addr, "mailbox": m.mailbox,
                   "at": m.updated_at.isoformat() if m.updated_at else None} for m in cards],
        "messages": [{"id": a.id, "kind": a.kind, "incident": a.incident, "text": html_to_plain(a.text)[:300],
                      "at": a.created_at.isoformat() if a.created_at else None,
                      "told_later": a.retold_at is not None} for a in alerts],
    }


async def service_status(
    store: Store, watchers: Sequence[Watcher], llm: LLM, incidents: Incidents | None, *, stale_seconds: float,
) -> dict[str, Any]:
    """The whole picture of a running service, as `recruiter status` shows it."""

    ready = await readiness(store, watchers, stale_seconds, incidents)
    report: dict[str, Any] = {"ready": ready["ready"], "checks": ready["checks"]}
    try:
        report.update(await store_status(store))
    except RecruiterError as exc:
        report.update({"queue": None, "dlq": None, "last_mail": {}, "last_triage_at": None, "store_error": str(exc)})
    snap = incidents.snapshot() if incidents is not None else None
    imap = snap["imap"] if snap is not None else {}
    report["mailboxes"] = [
        {
            "name": w.mb.name,
            "connected": w.connected,
            "standby": w.standby,
            "ready": ready["checks"][f"imap:{w.mb.name}"]["ok"],
            "seconds_since_last_line": ready["checks"][f"imap:{w.mb.name}"]["seconds_since_last_line"],
            "last_mail_at": report["last_mail"].get(w.mb.name),
            "down_since": _iso(imap.get(w.mb.name, {}).get("down_since")),
            "last_error": w.last_error,
        }
        for w in watchers
    ]
    # opened_at is monotonic clock time: meaningless outside the process, so it is left out.
    report["breakers"] = [{k: v for k, v in tier.items() if k != "opened_at"} for tier in llm.status()]
    if snap is not None:
        report["incidents"] = [{**i, "since": _iso(i["since"])} for i in snap["incidents"]]
        report["triage"] = {
            "consecutive_failures": snap["consecutive_failures"],
            "paused": snap["triage_paused"],
            "incident_since": _iso(snap["incident_since"]),
            "last_error": snap["last_error"],
            "tier": snap["tier"],
        }
    return report


class ReplayRequest(BaseModel):
    """The body of `POST /api/replay` (every field optional)."""

    model_config = ConfigDict(extra="forbid")

    mailbox: str | None = Field(default=None, max_length=64)
    since: date | None = None
    limit: int | None = Field(default=None, ge=1)
    digest_size: int = Field(default=10, ge=1, le=50)


ReplayRunner = Callable[[ReplayRequest, Callable[[dict[str, Any]], None]], Awaitable[dict[str, Any]]]


@dataclass
class ReplayJob:
    """One replay started through the API."""

    id: str
    request: ReplayRequest
    state: str = "running"  # running | finished | failed
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    error: str | None = None
    task: asyncio.Task[None] | None = None

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id, "state": self.state, "request": self.request.model_dump(mode="json"),
            "started_at": _iso(self.started_at), "finished_at": _iso(self.finished_at),
            "progress": self.progress, "summary": self.summary, "error": self.error,
        }


class Replays:
    """Background replays inside the service; one at a time (they share one LLM and one store)."""

    def __init__(self, runner: ReplayRunner | None) -> None:
        self.runner = runner
        self.jobs: dict[str, ReplayJob] = {}
        self._ids = itertools.count(1)

    @property
    def running(self) -> ReplayJob | None:
        return next((j for j in self.jobs.values() if j.state == "running"), None)

    def start(self, request: ReplayRequest) -> ReplayJob:
        if self.runner is None:
            raise ApiError(503, "replay is not available in this process")
        if (busy := self.running) is not None:
            raise ApiError(409, f"replay {busy.id} is still running")
        job = ReplayJob(id=f"r{next(self._ids)}-{int(time.time())}", request=request)
        self.jobs[job.id] = job
        job.task = asyncio.create_task(self._run(job, self.runner), name=f"replay:{job.id}")
        return job

    async def _run(self, job: ReplayJob, runner: ReplayRunner) -> None:
        def progress(update: dict[str, Any]) -> None:
            job.progress = dict(update)

        try:
            job.summary = await runner(job.request, progress)
            job.state = "finished"
        except asyncio.CancelledError:
            job.state, job.error = "failed", "cancelled: the service is stopping"
            raise
        except Exception as exc:
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("api.replay_failed", replay=job.id)
        finally:
            job.finished_at = time.time()
            log.info("api.replay_ended", replay=job.id, state=job.state, summary=job.summary)

    async def aclose(self) -> None:
        tasks = [j.task for j in self.jobs.values() if j.task is not None and not j.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def bearer_guard(token: str) -> Callable[[Request], None]:
    """A dependency that lets a request through only with ``Authorization: Bearer <token>``."""
    expected = token.encode("utf-8")

    def check(request: Request) -> None:
        if not expected:
            raise ApiError(503, "the API is disabled: WEBHOOK_BEARER_TOKEN is not set")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("utf-8"), expected):
            raise ApiError(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})

    return check


def add_api_routes(
    app: FastAPI,
    *,
    store: Store,
    token: str,
    status: Callable[[], Awaitable[dict[str, Any]]],
    replays: Replays,
    wake: Callable[[], None] = lambda: None,
) -> None:
    """Mount `/api/*` on ``app``."""

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(TransientError)
    async def unavailable(_request: Request, exc: TransientError) -> JSONResponse:
        return JSONResponse({"error": str(exc), "dependency": exc.dependency}, status_code=503,
                            headers={"Retry-After": "5"})

    router = APIRouter(prefix="/api", dependencies=[Depends(bearer_guard(token))])

    @router.get("/status")
    async def get_status() -> JSONResponse:
        report = await status()
        return JSONResponse(report, status_code=200 if report["ready"] else 503)

    @router.get("/messages")
    async def list_messages(
        state: str | None = Query(default=None, pattern="^(pending|retry_wait|done|skipped|dead)$"),
        limit: int = Query(default=100, ge=1, le=MAX_PAGE),
        offset: int = Query(default=0, ge=0),
    ) -> dict[str, Any]:
        rows = await store.list_messages(state=state, limit=limit, offset=offset)
        return {"messages": [message_json(m) for m in rows], "limit": limit, "offset": offset}

    @router.get("/messages/{message_id}")
    async def get_message(message_id: int) -> dict[str, Any]:
        message = await store.get(message_id)
        if message is None:
            raise ApiError(404, f"no message with id {message_id}")
        return await message_detail(store, message)

    @router.get("/dlq")
    async def list_dlq(
        limit: int = Query(default=100, ge=1, le=MAX_PAGE), offset: int = Query(default=0, ge=0),
    ) -> dict[str, Any]:
        rows = await store.list_messages(state="dead", limit=limit, offset=offset)
        size, oldest = await store.dlq_stats()
        return {"size": size, "oldest_age_seconds": round(oldest, 1), "limit": limit, "offset": offset,
                "messages": [message_json(m) for m in rows]}

    @router.post("/dlq/{message_id}/retry")
    async def retry_dead(message_id: int) -> dict[str, Any]:
        rows = await store.redrive([message_id])
        if not rows:
            message = await store.get(message_id)
            if message is None:
                raise ApiError(404, f"no message with id {message_id}")
            raise ApiError(409, f"message {message_id} is not dead (state {message.state})")
        wake()
        log.info("api.redriven", message=message_id, stage=rows[0].stage)
        return {"id": message_id, "state": "pending", "stage": rows[0].stage}

    @router.post("/replay", status_code=202)
    async def start_replay(request: ReplayRequest | None = None) -> dict[str, Any]:
        job = replays.start(request or ReplayRequest())
        log.info("api.replay_started", replay=job.id, request=job.request.model_dump(mode="json"))
        return job.view()

    @router.get("/replay/{replay_id}")
    async def get_replay(replay_id: str) -> dict[str, Any]:
        job = replays.jobs.get(replay_id)
        if job is None:
            raise ApiError(404, f"no replay with id {replay_id}")
        return job.view()

    app.include_router(router)
