"""Secrets never leak: `recruiter run` with known secret values while everything fails — the LLM answers
401/502 with bodies that echo its API key (as real servers do), Telegram answers 5xx, the CalDAV password is
wrong, a second mailbox's IMAP password is wrong — and then every output is searched for every secret:
the service's log lines, what the Bot API received (cards and alerts), the drafts in Dovecot, `/healthz`,
`/readyz`, `/metrics`, `/api/*`, the CLI (`messages --json`, `dlq list --json`, `dlq show`, `status --json`)
and every row of every table in the database (last_error, attempts, tracebacks).
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from recruiter.settings import settings_from
from recruiter.store.models import Base
from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, ImapUser, free_port
from tests.servers.fake_llm import FakeLLM
from tests.servers.fake_telegram import FakeTelegram
from tests.servers.radicale import Radicale
from tests.support.poll import wait_for
from tests.support.service import Service, cli, finished, service_env

BEARER = "secret-bearer-e1f0c3a9b7"
LLAMA_KEY = "secret-llama-key-4d2a71"
GPT_KEY = "sk-secret-gptmini-8c9b2e55"
CALDAV_PASSWORD = "secret-caldav-pw-61fa0d"
BAD_IMAP_PASSWORD = "secret-wrong-imap-pw-7e21"
DB_PASSWORD = "secret-db-pw-2b8f4c"


def echo(status: int) -> FakeLLM.Status:
    """An error answer that repeats the caller's credentials, as some servers and proxies do."""
    message = (f"Incorrect API key provided: {GPT_KEY} (llama-swap key {LLAMA_KEY}); "
               f"Authorization: Bearer {GPT_KEY}")
    return FakeLLM.Status(status, {"error": {"message": message, "type": "invalid_request_error",
                                             "param": None, "code": "invalid_api_key"}})


def with_db_password(url: str) -> str:
    """A PostgreSQL URL with a password (trust authentication ignores it); SQLite has none."""
    return re.sub(r"^(postgresql\+asyncpg://[^@:/]+)@", rf"\1:{DB_PASSWORD}@", url)


def test_no_secret_in_any_output_while_everything_fails(
    tmp_path: Path, db_url: str, dovecot: Dovecot, imap_user: ImapUser, imap_account: Any, radicale: Radicale,
    fake_llm: FakeLLM, fake_telegram: FakeTelegram,
) -> None:
    bad_user = imap_account()
    port = free_port()
    db = with_db_password(db_url)
    env = service_env(tmp_path, db, imap_user, fake_llm, fake_telegram)
    env.update({
        "IMAP_MAILBOXES": "me,bad", "IMAP_BAD_HOST": bad_user.host, "IMAP_BAD_PORT": str(bad_user.port),
        "IMAP_BAD_USER": bad_user.user, "IMAP_BAD_PASS": BAD_IMAP_PASSWORD, "IMAP_BAD_TLS": "none",
        "LLAMA_SWAP_API_KEY": LLAMA_KEY,
        "GPT_MINI_ENDPOINT": f"{fake_llm.url}/v1", "GPT_MINI_MODEL": "gpt-mini", "GPT_MINI_API_KEY": GPT_KEY,
        "WEBHOOK_BEARER_TOKEN": BEARER, "TRIAGE_ALERT_AFTER": "1", "ALERT_PROBE_SECONDS": "0.5",
        "LLM_BREAKER_PROBE_SECONDS": "0.5", "IMAP_ALERT_AFTER_SECONDS": "1",
        "CALDAV_URL": radicale.url, "CALDAV_USER": radicale.username, "CALDAV_PASSWORD": CALDAV_PASSWORD,
        "CALDAV_CALENDAR": f"Secrets {tmp_path.name}",
        "HTTP_PORT": str(port), "RECRUITER_API_URL": f"http://127.0.0.1:{port}",
    })
    secrets = [BEARER, LLAMA_KEY, GPT_KEY, CALDAV_PASSWORD, BAD_IMAP_PASSWORD, imap_user.password,
               fake_telegram.token]
    if db != db_url:
        secrets.append(DB_PASSWORD)
    assert cli(env, tmp_path, "migrate").returncode == 0

    # Phase 1: the LLM fails on both tiers with bodies that echo the keys; one alert goes out.
    fake_llm.script(echo(502), echo(401))
    service = Service(env, tmp_path)
    outputs: list[str] = []
    try:
        wait_for(lambda: service.events("imap.connected"), what="the good mailbox connected")
        dovecot.append(imap_user.user, make_mail(subject="Recruiter: SRE at Acme (LLM fails)"))
        wait_for(lambda: finished(env, tmp_path, 1), timeout=60, what="the first mail finished")

        # Phase 2: Telegram answers 5xx twice; the CalDAV password is wrong.
        fake_telegram.script(fake_telegram.Status(502), fake_telegram.Status(500))
        dovecot.append(imap_user.user, make_mail(
            subject="Recruiter: interview at Globex", body="Hi, recruiting for Globex.\nCompany: Globex\n"
                                                           "MEETING: 2026-12-03T15:00:00+00:00 30\n"))
        dovecot.append(imap_user.user, make_mail(subject="Recruiter: Staff role at Initech",
                                                 body="Hi, I'm a recruiter at Initech with a role for you.\n"))
        wait_for(lambda: finished(env, tmp_path, 3), timeout=90, what="the second phase finished")

        # Phase 3: both tiers refuse the key (401, echoing it): each is told once, the mail waits, then flows.
        fake_llm.script(echo(401), echo(401))
        dovecot.append(imap_user.user, make_mail(subject="Recruiter: role at Hooli (LLM refuses the key)"))
        rows = wait_for(lambda: finished(env, tmp_path, 4), timeout=60, what="every mail finished")
        wait_for(lambda: [e for e in service.events("imap.disconnected") if e.get("mailbox") == "bad"],
                 what="the bad mailbox failed")

        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {BEARER}"}
        for path in ("/healthz", "/readyz", "/metrics"):
            outputs.append(httpx.get(base + path, timeout=10).text)
        for path in ("/api/status", "/api/messages", "/api/dlq"):
            outputs.append(httpx.get(base + path, headers=headers, timeout=10).text)
        outputs.append(httpx.get(base + "/api/messages", headers={"Authorization": "Bearer wrong"}, timeout=10).text)
        status = cli(env, tmp_path, "status", "--json")
        outputs += [status.stdout, status.stderr]
    finally:
        code = service.stop()
    assert code == 0, "".join(service.lines[-30:])

    # The failures really happened (otherwise this test proves nothing).
    states = {r["subject"]: r for r in rows}
    assert states["Recruiter: SRE at Acme (LLM fails)"]["state"] in {"dead", "done"}
    assert states["Recruiter: interview at Globex"]["state"] == "dead"
    assert states["Recruiter: interview at Globex"]["dead_reason"] == "caldav_4xx"
    assert states["Recruiter: Staff role at Initech"]["state"] == "done"
    assert states["Recruiter: role at Hooli (LLM refuses the key)"]["state"] == "done"
    refusals = [c for c in fake_telegram.calls_to("sendMessage") if "refuses our requests" in json.dumps(c)]
    assert len(refusals) == 2  # one alert per tier (gpt-mini in phase 1, llama-swap in phase 3), never twice
    assert fake_telegram.calls_to("sendMessage")  # cards and the LLM alert
    assert any("fail" in json.dumps(c).lower() or "llm" in json.dumps(c).lower()
               for c in fake_telegram.calls_to("sendMessage"))

    outputs.append("".join(service.lines))
    for args in (("messages", "--json"), ("dlq", "list", "--json")):
        result = cli(env, tmp_path, *args)
        assert result.returncode == 0, result.stderr
        outputs += [result.stdout, result.stderr]
    for row in rows:
        if row["state"] == "dead":
            shown = cli(env, tmp_path, "dlq", "show", str(row["id"]))
            assert shown.returncode == 0, shown.stderr
            outputs += [shown.stdout, shown.stderr]
    outputs.append(json.dumps(fake_telegram.calls_to("sendMessage")))
    outputs += [raw.decode("utf-8", "replace") for _, _, raw in dovecot.messages(imap_user.user, "Drafts")]
    outputs.append(asyncio.run(_dump_database(db)))
    outputs += [json.dumps(body) for body in fake_llm.requests]  # nothing secret went into a prompt either

    leaks = sorted({(secret, _where(text, secret)) for text in outputs for secret in secrets if secret in text})
    assert not leaks, leaks


async def _dump_database(url: str) -> str:
    """Every row of every table as text (raw mail excluded: it is what arrived, not what we wrote)."""
    engine = create_async_engine(url)
    chunks: list[str] = []
    try:
        async with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                columns = [c for c in table.columns if c.name != "raw"]
                for row in (await conn.execute(sa.select(*columns))).all():
                    chunks.append(f"{table.name}: {tuple(row)!r}")
    finally:
        await engine.dispose()
    assert chunks
    return "\n".join(chunks)


def _where(text: str, secret: str) -> str:
    at = text.index(secret)
    return text[max(0, at - 120):at + len(secret) + 40]


def test_a_url_encoded_database_password_is_redacted_as_written_and_decoded() -> None:
    settings = settings_from({"DB_CONNECTION_STRING": "postgresql+asyncpg://rr:p%40ss%2Fword-1@db:5432/rr"})
    assert {"p%40ss%2Fword-1", "p@ss/word-1"} <= set(settings.secrets)
    assert len(settings.secrets) == len(set(settings.secrets))
