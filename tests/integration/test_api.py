"""`/api/*` against a real store (SQLite and PostgreSQL): the bearer guard, messages, the DLQ and its
redrive, background replays, size limits, and a store outage answered with 503."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from recruiter.errors import UnparseableMail
from recruiter.http.api import ReplayRequest, Replays
from recruiter.http.app import make_app
from recruiter.ingest.describe import describe
from recruiter.ingest.watcher import Watcher
from recruiter.llm.client import LLM
from recruiter.settings import MailboxSettings
from recruiter.store.migrate import prepare_database, upgrade_head
from recruiter.store.repo import Store
from tests.mailfactory import make_mail
from tests.servers.dovecot import free_port
from tests.support.service import recruiter

TOKEN = "api-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def _migrated(db_url: str) -> Store:
    if db_url.startswith("sqlite"):
        await prepare_database(db_url)
    else:
        await upgrade_head(db_url)
    return Store.from_url(db_url)


def _watcher(store: Store) -> Watcher:
    mb = MailboxSettings(name="me", host="127.0.0.1", port=free_port(), user="u", password="p", tls="none",
                         folder="INBOX", drafts=None, address="me@example.org")
    return Watcher(mb, store)


def _client(store: Store, *, token: str = TOKEN, replays: Replays | None = None,
            wake: Callable[[], None] = lambda: None) -> httpx.AsyncClient:
    app = make_app(store, [_watcher(store)], LLM([]), None, stale_seconds=60, token=token, replays=replays,
                   wake=wake)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://recruiter.test")


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    store = await _migrated(db_url)
    try:
        yield store
    finally:
        await store.aclose()


async def _add(store: Store, subject: str) -> int:
    message_id = await store.add_message(describe(make_mail(subject=subject), mailbox="me"))
    assert message_id is not None
    return message_id


async def _kill(store: Store, message_id: int) -> None:
    """Make a message dead the way the worker does: claim it, fail it permanently."""
    claimed = await store.claim_due("test-owner", limit=100, lease_seconds=60)
    assert message_id in claimed
    await store.fail(message_id, "test-owner", stage="prefilter", exc=UnparseableMail("cannot parse"),
                     retry_at=None, reason="unparseable")
    for other in claimed:
        if other != message_id:
            await store.release(other, "test-owner")


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": "Bearer"},
])
async def test_every_api_route_refuses_without_the_right_token(store: Store, headers: dict[str, str]) -> None:
    message_id = await _add(store, "Recruiting: Staff SRE")
    async with _client(store) as client:
        for method, path in [("GET", "/api/status"), ("GET", "/api/messages"), ("GET", f"/api/messages/{message_id}"),
                             ("GET", "/api/dlq"), ("POST", f"/api/dlq/{message_id}/retry"),
                             ("POST", "/api/replay"), ("GET", "/api/replay/r1")]:
            response = await client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert TOKEN not in response.text
    assert (await store.get(message_id)).state == "pending"  # type: ignore[union-attr]


async def test_without_a_configured_token_the_api_is_off(store: Store) -> None:
    async with _client(store, token="") as client:
        response = await client.get("/api/messages", headers={"Authorization": "Bearer "})
        assert response.status_code == 503
        assert "WEBHOOK_BEARER_TOKEN" in response.json()["error"]
        assert (await client.get("/healthz")).status_code == 200  # the rest of the server is unaffected


async def test_messages_are_listed_paged_filtered_and_shown(store: Store) -> None:
    ids = [await _add(store, f"Recruiting #{n}") for n in range(5)]
    await _kill(store, ids[1])
    async with _client(store) as client:
        listed = (await client.get("/api/messages", headers=AUTH)).json()
        assert [m["id"] for m in listed["messages"]] == ids
        page = (await client.get("/api/messages?limit=2&offset=2", headers=AUTH)).json()
        assert [m["id"] for m in page["messages"]] == ids[2:4]
        dead = (await client.get("/api/messages?state=dead", headers=AUTH)).json()
        assert [m["id"] for m in dead["messages"]] == [ids[1]]
        assert (await client.get("/api/messages?state=bogus", headers=AUTH)).status_code == 422
        assert (await client.get("/api/messages?limit=100000", headers=AUTH)).status_code == 422

        shown = (await client.get(f"/api/messages/{ids[1]}", headers=AUTH)).json()
        assert shown["subject"] == "Recruiting #1"
        assert shown["dead_reason"] == "unparseable"
        assert shown["history"][0]["error_class"] == "UnparseableMail"
        assert "raw" not in shown
        missing = await client.get("/api/messages/999999", headers=AUTH)
        assert missing.status_code == 404 and "999999" in missing.json()["error"]


async def test_dlq_is_listed_and_a_dead_message_redriven_once(store: Store) -> None:
    alive, dead = await _add(store, "Recruiting: alive"), await _add(store, "Recruiting: dead")
    await _kill(store, dead)
    woken: list[bool] = []
    async with _client(store, wake=lambda: woken.append(True)) as client:
        dlq = (await client.get("/api/dlq", headers=AUTH)).json()
        assert dlq["size"] == 1 and [m["id"] for m in dlq["messages"]] == [dead]
        assert dlq["oldest_age_seconds"] >= 0

        retried = await client.post(f"/api/dlq/{dead}/retry", headers=AUTH)
        assert retried.status_code == 200, retried.text
        assert retried.json() == {"id": dead, "state": "pending", "stage": "prefilter"}
        assert woken == [True]
        row = await store.get(dead)
        assert row is not None and row.state == "pending" and row.attempts == 0
        assert len(await store.attempts_for(dead)) == 1  # history kept

        again = await client.post(f"/api/dlq/{dead}/retry", headers=AUTH)
        assert again.status_code == 409 and "not dead" in again.json()["error"]
        assert (await client.post(f"/api/dlq/{alive}/retry", headers=AUTH)).status_code == 409
        assert (await client.post("/api/dlq/424242/retry", headers=AUTH)).status_code == 404
        assert (await client.get("/api/dlq", headers=AUTH)).json()["size"] == 0


async def test_status_reports_queue_dlq_mailboxes_and_readiness(store: Store) -> None:
    await _add(store, "Recruiting: one")
    async with _client(store) as client:
        response = await client.get("/api/status", headers=AUTH)
    # The watcher never connected: not ready, and the report says why.
    assert response.status_code == 503
    report = response.json()
    assert report["ready"] is False
    assert report["checks"]["store"] == {"ok": True}
    assert report["queue"] == {"pending": 1}
    assert report["dlq"] == {"size": 0, "oldest_age_seconds": 0.0, "by_reason": {}, "quarantined": 0}
    assert [m["name"] for m in report["mailboxes"]] == ["me"]
    assert report["mailboxes"][0]["connected"] is False
    assert report["mailboxes"][0]["last_mail_at"] is not None
    assert report["breakers"] == []


async def test_replay_runs_in_the_background_one_at_a_time(store: Store) -> None:
    release = asyncio.Event()
    seen: list[ReplayRequest] = []

    async def runner(request: ReplayRequest, progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        seen.append(request)
        progress({"done": 1, "total": 2})
        await release.wait()
        return {"processed": 2, "recruiter": 1, "skipped": 1, "dead": 0}

    replays = Replays(runner)
    async with _client(store, replays=replays) as client:
        started = await client.post("/api/replay", headers=AUTH, json={"mailbox": "me", "since": "2026-01-01",
                                                                        "limit": 50})
        assert started.status_code == 202, started.text
        job = started.json()
        assert job["state"] == "running"
        await asyncio.sleep(0)
        busy = await client.post("/api/replay", headers=AUTH, json={})
        assert busy.status_code == 409 and job["id"] in busy.json()["error"]
        running = (await client.get(f"/api/replay/{job['id']}", headers=AUTH)).json()
        assert running["progress"] == {"done": 1, "total": 2}

        release.set()
        assert replays.jobs[job["id"]].task is not None
        await replays.jobs[job["id"]].task  # type: ignore[misc]
        finished = (await client.get(f"/api/replay/{job['id']}", headers=AUTH)).json()
        assert finished["state"] == "finished"
        assert finished["summary"]["processed"] == 2
        assert seen[0].mailbox == "me" and str(seen[0].since) == "2026-01-01" and seen[0].limit == 50

        assert (await client.post("/api/replay", headers=AUTH, json={"limit": 0})).status_code == 422
        assert (await client.post("/api/replay", headers=AUTH, json={"bogus": 1})).status_code == 422
        assert (await client.get("/api/replay/nope", headers=AUTH)).status_code == 404


async def test_replay_unavailable_is_503(store: Store) -> None:
    async with _client(store, replays=Replays(None)) as client:
        assert (await client.post("/api/replay", headers=AUTH)).status_code == 503


async def test_oversized_requests_are_refused_before_any_route(store: Store) -> None:
    async with _client(store) as client:
        long_url = await client.get("/api/messages?x=" + "a" * 5000, headers=AUTH)
        assert long_url.status_code == 414
        big = await client.post("/api/replay", headers={**AUTH, "content-type": "application/json"},
                                content=b'{"mailbox": "' + b"x" * 70_000 + b'"}')
        assert big.status_code == 413

        async def stream() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
            for _ in range(100):
                yield b"x" * 1024

        streamed = await client.post("/api/replay", headers={**AUTH, "content-type": "application/json"},
                                     content=stream())
        assert streamed.status_code == 413
        assert (await client.get("/cb/send?m=1&exp=1&sig=" + "0" * 5000)).status_code == 414


async def test_store_outage_is_503_not_a_traceback() -> None:
    store = Store.from_url(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere")
    try:
        async with _client(store) as client:
            response = await client.get("/api/messages", headers=AUTH)
            assert response.status_code == 503
            assert response.json()["dependency"] == "db"
            assert response.headers["retry-after"] == "5"
            status = await client.get("/api/status", headers=AUTH)
            assert status.status_code == 503
            assert status.json()["checks"]["store"]["ok"] is False
    finally:
        await store.aclose()


def test_status_cli_without_a_service_shows_the_store_and_fails(tmp_path: Path) -> None:
    mail = tmp_path / "offer.eml"
    mail.write_bytes(make_mail(subject="Recruiting: Staff SRE at Acme"))
    env = {"RECRUITER_API_URL": f"http://127.0.0.1:{free_port()}", "WEBHOOK_BEARER_TOKEN": TOKEN}
    assert recruiter(tmp_path, env, "process", str(mail)).returncode == 0
    result = recruiter(tmp_path, env, "status", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["service"]["reachable"] is False and "not reachable" in report["service"]["error"]
    assert report["queue"] == {"done": 1}
    assert report["last_mail"]["file"]
    table = recruiter(tmp_path, env, "status")
    assert table.returncode == 1 and "not reachable" in table.stdout and "Queue" in table.stdout
    assert TOKEN not in result.stdout + result.stderr + table.stdout + table.stderr
