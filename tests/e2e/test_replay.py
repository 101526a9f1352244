"""`recruiter replay` as a user runs it, on real Dovecot and SQLite/PostgreSQL, with the loopback LLM and
Bot API: a few hundred unread messages (recruiter mail, bulk mail, personal mail, some already read),
progress lines, the summary, digests of --digest-size lines (no card per mail), one draft per recruiter
mail, nothing marked read; Ctrl-C mid-way and a second run; a dry run that changes nothing; bad options.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, ImapUser, free_port
from tests.servers.fake_llm import Delay, FakeLLM
from tests.servers.fake_telegram import FakeTelegram
from tests.support.poll import wait_for

SECRET = "replay-bearer-secret-123"
_SEND_LINK = re.compile(r'href="[^"]*/cb/send\?m=(\d+)&amp;exp=\d+&amp;sig=[0-9a-f]{64}"')
_KEY_HEADER = re.compile(rb"^X-Recruiter-Key:\s*(\S+)", re.MULTILINE | re.IGNORECASE)


def backlog(recruiters: int, bulk: int, personal: int) -> list[tuple[str, bytes]]:
    """(kind, raw) in delivery order, kinds interleaved like a real inbox."""
    mails: list[tuple[str, bytes]] = []
    for i in range(recruiters):
        meeting = f"MEETING: 2026-12-{(i % 20) + 1:02d}T15:00:00+00:00 30\n" if i % 7 == 0 else ""
        mails.append(("recruiter", make_mail(
            subject=f"Staff SRE role #{i} at Acme",
            body=f"Hi Alex,\n\nI'm a recruiter at Acme {i}.\nCompany: Acme {i}\nRole: Staff SRE\n{meeting}",
            sender=f"Jane {i} <jane{i}@acme-talent.example>")))
    for i in range(bulk):
        headers = ({"List-Id": f"<news{i}.example.org>", "List-Unsubscribe": "<mailto:u@example.org>"}
                   if i % 2 else {"Precedence": "bulk"})
        mails.append(("bulk", make_mail(subject=f"Weekly digest {i}", body="Ten things this week.\n",
                                        sender=f"News <news{i}@letters.example>", headers=headers)))
    for i in range(personal):
        mails.append(("personal", make_mail(subject=f"Dinner on Friday {i}?", body="Shall we meet at eight?\n",
                                            sender=f"Sam {i} <sam{i}@friends.example>")))
    # Interleave: deterministic shuffle by a hash, so oldest-first order is a mix.
    return sorted(mails, key=lambda m: hashlib.sha256(m[1]).hexdigest())


def append_all(dovecot: Dovecot, user: ImapUser, mails: list[bytes], flags: str | None = None) -> None:
    """APPEND over one connection (a login per message would dominate the test's time)."""
    client = dovecot.connect(user.user)
    try:
        for raw in mails:
            status, data = client.append("INBOX", flags, None, raw)
            assert status == "OK", data
    finally:
        client.logout()


class World:
    def __init__(self, env: dict[str, str], cwd: Path, dovecot: Dovecot, me: ImapUser, llm: FakeLLM,
                 telegram: FakeTelegram) -> None:
        self.env, self.cwd, self.dovecot, self.me, self.llm, self.telegram = env, cwd, dovecot, me, llm, telegram

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "recruiter", *args], env=self.env, cwd=self.cwd,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def replay_json(self, *args: str) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
        result = self.run("replay", "--json", *args)
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1]), result

    def stored(self) -> list[dict[str, Any]]:
        result = self.run("messages", "--json")
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    def digests(self) -> list[str]:
        return [m["text"] for m in self.telegram.messages()]

    def digest_ids(self) -> list[int]:
        return [int(i) for text in self.digests() for i in _SEND_LINK.findall(text)]

    def drafts(self) -> list[bytes]:
        return [raw for _, _, raw in self.dovecot.messages(self.me.user, "Drafts")]

    def inbox_flags(self) -> list[set[str]]:
        return [flags for _, flags, _ in self.dovecot.messages(self.me.user)]


@pytest.fixture
def world(tmp_path: Path, db_url: str, dovecot: Dovecot, imap_user: ImapUser, fake_llm: FakeLLM,
          fake_telegram: FakeTelegram) -> Iterator[World]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("IMAP_", "LLAMA_", "TELEGRAM_", "CALDAV_", "GPT_", "RECRUITER_", "HTTP_"))}
    env.update({
        "IMAP_MAILBOXES": "me", "IMAP_ME_HOST": imap_user.host, "IMAP_ME_PORT": str(imap_user.port),
        "IMAP_ME_USER": imap_user.user, "IMAP_ME_PASS": imap_user.password, "IMAP_ME_TLS": "none",
        "DB_CONNECTION_STRING": db_url,
        "LLAMA_SWAP_URL": fake_llm.url, "LLAMA_SWAP_MODEL": "qwen3-8b",
        "TELEGRAM_BOT_TOKEN": fake_telegram.token, "TELEGRAM_CHAT_ID": "4242",
        "TELEGRAM_API_BASE_URL": fake_telegram.base_url,
        "CALLBACK_BASE_URL": "https://rr.example.org", "WEBHOOK_BEARER_TOKEN": SECRET,
        "ICS_DIR": str(tmp_path / "events"), "LOG_FORMAT": "json", "IMAP_TIMEOUT_SECONDS": "10",
        # Nothing listens here: the replay runs its own worker (auto-detection finds no service).
        "HTTP_PORT": str(free_port()),
    })
    if db_url.startswith("postgresql"):
        assert subprocess.run([sys.executable, "-m", "recruiter", "migrate"], env=env, cwd=tmp_path,
                              capture_output=True, timeout=60, check=False).returncode == 0
    yield World(env, tmp_path, dovecot, imap_user, fake_llm, fake_telegram)


@pytest.mark.both_imap_servers
def test_replay_backlog_in_digests_once_and_unread(world: World) -> None:
    mails = backlog(recruiters=57, bulk=203, personal=40)
    append_all(world.dovecot, world.me, [raw for _, raw in mails])
    seen = [make_mail(subject=f"Old role {i}", body="I'm a recruiter, already read.\n") for i in range(10)]
    append_all(world.dovecot, world.me, seen, flags="(\\Seen)")

    summary, result = world.replay_json("--digest-size", "10")

    progress = [line for line in result.stderr.splitlines() if line.startswith("replay: ")]
    assert any("processed" in line and "msg/s" in line for line in progress), result.stderr[-2000:]
    assert summary["found"] == 300 and summary["stored"] == 300 and summary["already_stored"] == 0
    assert (summary["processed"], summary["recruiter"], summary["skipped"], summary["dead"]) == (300, 57, 243, 0)
    assert summary["waiting"] == 0 and not summary["interrupted"] and summary["mode"] == "own-worker"
    assert summary["digests"] == math.ceil(57 / 10) == len(world.digests())

    rows = world.stored()
    recruiting = {r["id"] for r in rows if r["is_recruiter"]}
    assert len(rows) == 300 and len(recruiting) == 57
    assert sorted(world.digest_ids()) == sorted(recruiting)  # every recruiter mail in exactly one line
    sizes = [len(_SEND_LINK.findall(text)) for text in world.digests()]
    assert sizes == [10, 10, 10, 10, 10, 7]
    assert all("Backlog digest" in text and "/cb/decline?" in text and "/cb/ignore?" in text
               for text in world.digests())
    assert len(world.llm.triage_requests()) == 57 + 40  # bulk mail never reaches the LLM

    drafts = world.drafts()
    keys = [m.group(1) for raw in drafts if (m := _KEY_HEADER.search(raw))]
    assert len(drafts) == 57 and len(set(keys)) == 57
    flags = world.inbox_flags()
    assert sum("\\Seen" in f for f in flags) == 10  # only the ten read before

    again, _ = world.replay_json("--digest-size", "10")
    assert (again["found"], again["already_stored"], again["stored"], again["processed"]) == (300, 300, 0, 0)
    assert again["digests"] == 0 and len(world.digests()) == 6 and len(world.drafts()) == 57


def test_interrupted_replay_continues_without_repeating(world: World) -> None:
    mails = backlog(recruiters=27, bulk=60, personal=13)
    append_all(world.dovecot, world.me, [raw for _, raw in mails])
    world.llm.script(*[Delay(0.15) for _ in range(60)])  # slow enough to interrupt mid-way

    proc = subprocess.Popen([sys.executable, "-m", "recruiter", "replay", "--digest-size", "5", "--json"],
                            env=world.env, cwd=world.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr or []), daemon=True)
    reader.start()

    def far_enough() -> bool:
        assert proc.poll() is None, "".join(lines)[-2000:]
        return any(_processed(line) >= 25 for line in list(lines))

    wait_for(far_enough, timeout=60, what="25 mails replayed", every=0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    reader.join(timeout=5)
    assert proc.returncode == 130, "".join(lines)[-2000:]
    first = json.loads(out.strip().splitlines()[-1])
    assert first["interrupted"] and first["processed"] < 100
    assert not [r for r in world.stored() if r["state"] in ("pending", "retry_wait") and r["attempts"]], \
        "an interrupted stage must not burn an attempt"

    second, _ = world.replay_json("--digest-size", "5")
    assert not second["interrupted"] and second["waiting"] == 0
    assert second["adopted"] + second["stored"] == 100 - first["processed"] == second["processed"]
    rows = world.stored()
    assert len(rows) == 100 and {r["state"] for r in rows} <= {"done", "skipped"}
    recruiting = sorted(r["id"] for r in rows if r["is_recruiter"])
    assert len(recruiting) == 27
    ids = world.digest_ids()
    assert sorted(ids) == recruiting and not [i for i, n in Counter(ids).items() if n > 1]
    assert len(world.digests()) == math.ceil(27 / 5)
    keys = [m.group(1) for raw in world.drafts() if (m := _KEY_HEADER.search(raw))]
    assert len(keys) == 27 and len(set(keys)) == 27
    assert not any("\\Seen" in f for f in world.inbox_flags())


def test_replay_via_a_running_service(world: World) -> None:
    """With a service up, the replay only stores: the service's worker (its LLM limit) does the work."""
    mails = backlog(recruiters=12, bulk=20, personal=8)
    append_all(world.dovecot, world.me, [raw for _, raw in mails])  # before the service: its first start skips them
    env = {**world.env, "POLL_SECONDS": "0.3", "HTTP_HOST": "127.0.0.1"}
    service = subprocess.Popen([sys.executable, "-m", "recruiter", "run"], env=env, cwd=world.cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(service.stdout or []), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any('"imap.first_start"' in line for line in list(lines)), timeout=60)
        result = world.run("replay", "--json", "--digest-size", "5")
        assert result.returncode == 0, result.stderr[-3000:]
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert summary["mode"] == "via-service"
        assert (summary["stored"], summary["processed"], summary["recruiter"], summary["dead"]) == (40, 40, 12, 0)
        assert summary["digests"] == 3 and '"triage.done"' not in result.stderr
    finally:
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=60) == 0
        reader.join(timeout=5)
    assert sum('"triage.done"' in line for line in lines) == 12 + 8  # the service asked the LLM
    texts = world.digests()
    assert len(texts) == 3 and all(t.startswith("📬 <b>Backlog digest") for t in texts)  # no card per mail
    assert sorted(world.digest_ids()) == sorted(r["id"] for r in world.stored() if r["is_recruiter"])
    assert len(world.drafts()) == 12 and not any("\\Seen" in f for f in world.inbox_flags())


def test_replay_started_through_the_api(world: World) -> None:
    """`POST /api/replay` on a running `recruiter run`: 202 with an id, followed to the end through
    `GET /api/replay/{id}`; the digests follow the requested size; a second replay finds nothing new."""
    mails = backlog(recruiters=9, bulk=12, personal=4)
    append_all(world.dovecot, world.me, [raw for _, raw in mails])  # before the service: its first start skips them
    env = {**world.env, "POLL_SECONDS": "0.3", "HTTP_HOST": "127.0.0.1"}
    base = f"http://127.0.0.1:{env['HTTP_PORT']}"
    auth = {"Authorization": f"Bearer {SECRET}"}
    service = subprocess.Popen([sys.executable, "-m", "recruiter", "run"], env=env, cwd=world.cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(service.stdout or []), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any('"imap.first_start"' in line for line in list(lines)), timeout=60)
        assert httpx.post(f"{base}/api/replay", json={"digest_size": 4}, timeout=10).status_code == 401
        started = httpx.post(f"{base}/api/replay", json={"digest_size": 4}, headers=auth, timeout=10)
        assert started.status_code == 202, started.text
        replay_id = started.json()["id"]
        job = wait_for(lambda: _finished_job(base, replay_id, auth), timeout=120)
        assert job["state"] == "finished", job
        summary = job["summary"]
        assert (summary["stored"], summary["processed"], summary["recruiter"], summary["dead"]) == (25, 25, 9, 0)
        assert summary["digests"] == 3  # 4 + 4 + 1

        again = httpx.post(f"{base}/api/replay", json={"digest_size": 4}, headers=auth, timeout=10)
        assert again.status_code == 202, again.text
        second = wait_for(lambda: _finished_job(base, again.json()["id"], auth), timeout=60)
        assert second["state"] == "finished" and second["summary"]["stored"] == 0
    finally:
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=60) == 0
        reader.join(timeout=5)
    assert len(world.digests()) == 3
    assert sorted(world.digest_ids()) == sorted(r["id"] for r in world.stored() if r["is_recruiter"])
    assert len(world.drafts()) == 9 and not any("\\Seen" in f for f in world.inbox_flags())


def _finished_job(base: str, replay_id: str, auth: dict[str, str]) -> dict[str, Any] | None:
    job = httpx.get(f"{base}/api/replay/{replay_id}", headers=auth, timeout=10).json()
    return job if job["state"] != "running" else None


def _processed(line: str) -> int:
    match = re.search(r"processed (\d+)/", line)
    return int(match.group(1)) if match else -1


def test_dry_run_changes_nothing(world: World, db_url: str) -> None:
    mails = backlog(recruiters=6, bulk=10, personal=4)
    append_all(world.dovecot, world.me, [raw for _, raw in mails])

    result = world.run("replay", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    rows, summary = out[:-1], out[-1]["summary"]
    assert summary == {"found": 20, "already_stored": 0, "to_process": 20, "recruiter": 6, "skipped": 14,
                       "failed": 0}
    recruiting = [r for r in rows if r["result"].startswith("recruiter")]
    assert len(recruiting) == 6 and all("draft" in r["actions"] and "digest line" in r["actions"]
                                        for r in recruiting)
    assert any(r["result"].startswith("skip: ") for r in rows)
    assert any("1 event" in r["actions"] for r in recruiting)  # the first recruiter mail proposes a time
    if db_url.startswith("sqlite"):
        assert not (world.cwd / "recruiter.db").exists()  # not even created
    assert world.telegram.calls_to("sendMessage") == [] and world.drafts() == []
    assert not any("\\Seen" in f for f in world.inbox_flags())

    # With a store that holds part of the backlog: the plan leaves it out, the store stays as it was.
    first, _ = world.replay_json("--limit", "5")
    assert first["stored"] == 5
    before = world.stored()
    sent = len(world.telegram.calls_to("sendMessage"))
    db_file = world.cwd / "recruiter.db"
    digest = hashlib.sha256(db_file.read_bytes()).hexdigest() if db_url.startswith("sqlite") else ""
    again = world.run("replay", "--dry-run")
    assert again.returncode == 0, again.stderr
    assert "already stored 5" in again.stdout and "nothing was changed" in again.stdout
    assert world.stored() == before and len(world.telegram.calls_to("sendMessage")) == sent
    if db_url.startswith("sqlite"):
        assert hashlib.sha256(db_file.read_bytes()).hexdigest() == digest


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--since", "2026-13-01"], "--since"), (["--since", "last week"], "YYYY-MM-DD"),
     (["--mailbox", "nope"], "nope"), (["--digest-size", "0"], "--digest-size"), (["--limit", "0"], "--limit")],
)
def test_bad_options_are_one_line_errors(tmp_path: Path, args: list[str], needle: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAP_", "DB_"))}
    env.update({"IMAP_MAILBOXES": "me", "IMAP_ME_HOST": "127.0.0.1", "IMAP_ME_USER": "me@example.org",
                "IMAP_ME_PASS": "secret", "IMAP_ME_TLS": "none", "IMAP_ME_PORT": str(free_port())})
    result = subprocess.run([sys.executable, "-m", "recruiter", "replay", *args], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert not (tmp_path / "recruiter.db").exists()


@pytest.mark.both_imap_servers
async def test_api_runner_stores_and_the_services_worker_processes(db_url: str, dovecot: Dovecot,
                                                                   imap_user: ImapUser, fake_llm: FakeLLM,
                                                                   fake_telegram: FakeTelegram,
                                                                   tmp_path: Path) -> None:
    """What `POST /api/replay` runs inside the service: its worker (already running) does the work."""
    from recruiter.app import build_runtime
    from recruiter.http.api import ReplayRequest
    from recruiter.ingest.replay import api_runner
    from recruiter.settings import settings_from
    from recruiter.store.migrate import upgrade_head

    mails = backlog(recruiters=7, bulk=10, personal=3)
    append_all(dovecot, imap_user, [raw for _, raw in mails])
    settings = settings_from({
        "IMAP_MAILBOXES": "me", "IMAP_ME_HOST": imap_user.host, "IMAP_ME_PORT": str(imap_user.port),
        "IMAP_ME_USER": imap_user.user, "IMAP_ME_PASS": imap_user.password, "IMAP_ME_TLS": "none",
        "DB_CONNECTION_STRING": db_url, "LLAMA_SWAP_URL": fake_llm.url, "LLAMA_SWAP_MODEL": "m",
        "TELEGRAM_BOT_TOKEN": fake_telegram.token, "TELEGRAM_CHAT_ID": "4242",
        "TELEGRAM_API_BASE_URL": fake_telegram.base_url, "WEBHOOK_BEARER_TOKEN": SECRET,
        "ICS_DIR": str(tmp_path / "events"), "POLL_SECONDS": "0.2",
    })
    await upgrade_head(db_url)
    runtime = await build_runtime(settings)
    stop = asyncio.Event()
    service_worker = asyncio.create_task(runtime.worker.run(stop))
    updates: list[dict[str, Any]] = []
    try:
        summary = await api_runner(runtime)(ReplayRequest(mailbox="me", digest_size=3), updates.append)
    finally:
        stop.set()
        await service_worker
        await runtime.aclose()
    assert summary["mode"] == "via-service" and (summary["processed"], summary["recruiter"]) == (20, 7)
    assert summary["digests"] == 3 and len(fake_telegram.messages()) == 3
    assert updates and updates[-1]["phase"] == "done" and updates[-1]["processed"] == 20
    assert {"rate", "eta", "total"} <= updates[-1].keys()
