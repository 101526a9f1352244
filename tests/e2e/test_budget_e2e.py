"""No mail may freeze the service (issue 17): `recruiter run` with real Dovecot on SQLite and PostgreSQL.

Crafted mail — the report's (500 KB of "content-type: text/plain" lines in a multipart without a
boundary) and others of its kind (deep nesting, a header folded 100,000 times, HTML of unclosed tags and
comments) — and one mail that is legitimately expensive to read (12 MB of short lines, over the small CPU
budget this test sets) go in first; a normal recruiter mail follows. While they are read, /healthz keeps
answering (polled in a thread); the recruiter mail's card arrives; the expensive mail ends dead in the
DLQ with reason `cpu_budget` (CLI, API, metrics) and the owner is told; the crafted ones are read.
Timeouts are generous: the figures belong to bench/textpaths.py.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, free_port
from tests.servers.fake_telegram import FakeTelegram
from tests.support.poll import wait_for
from tests.support.service import card_ids, cli, start, stored

_HEAD = b"From: Mallory <mallory@x.example>\r\nTo: me@example.org\r\n"
CRAFTED: dict[str, bytes] = {
    "issue-17": _HEAD + b"Subject: issue-17\r\nMessage-ID: <issue17@x.example>\r\n"
                b"Content-Type: multipart/alternative\r\n\r\n" + b"content-type: text/plain\r\n" * 20_000,
    "deep-nesting": _HEAD + b"Subject: deep-nesting\r\nMessage-ID: <nest@x.example>\r\n"
                    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
                    + b"--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" * 3_000,
    "header-folding": _HEAD + b"Message-ID: <fold@x.example>\r\nSubject: header-folding" + b"\r\n a" * 100_000
                      + b"\r\n\r\nbody\r\n",
    "html-tags": _HEAD + b"Subject: html-tags\r\nMessage-ID: <html@x.example>\r\nContent-Type: text/html\r\n\r\n"
                 + b"<a b='<!--" * 50_000,
}
EXPENSIVE = (_HEAD + b"Subject: expensive\r\nMessage-ID: <expensive@x.example>\r\n\r\n"
             + b"x\r\n" * 4_000_000)  # 12 MB: over a second of CPU to read, the budget here is 0.5 s


class _Prober(threading.Thread):
    """Asks /healthz every 0.2 s; keeps the slowest answer and every failure."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.slowest = 0.0
        self.answers = 0
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                status = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=10).status_code
                if status != 200:
                    self.failures.append(f"status {status}")
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc))
            self.slowest = max(self.slowest, time.monotonic() - started)
            self.answers += 1
            self.stop.wait(0.2)


def _card_for(fake_telegram: FakeTelegram, subject: str) -> bool:
    return any(subject in m["text"] and "reply_markup" in m for m in fake_telegram.messages())


def test_crafted_and_expensive_mail_cost_only_themselves(setup: dict[str, Any], dovecot: Dovecot,
                                                         fake_telegram: FakeTelegram) -> None:
    port = free_port()
    setup["env"].update({"HTTP_PORT": str(port), "DEAD_NOTICE_SECONDS": "3", "MESSAGE_CPU_SECONDS": "0.5"})
    user = setup["user"]
    service = start(setup)
    prober = _Prober(port)
    try:
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200,
                 what="/healthz")
        prober.start()
        dovecot.append(user.user, EXPENSIVE)
        for raw in CRAFTED.values():
            dovecot.append(user.user, raw)
        subject = "Recruiting: Staff role after the crafted mail"
        dovecot.append(user.user, make_mail(subject=subject))
        wait_for(lambda: _card_for(fake_telegram, subject), timeout=120, what="the card of the mail after them")

        rows = wait_for(lambda: (r := stored(setup["env"], setup["cwd"])) and len(r) == len(CRAFTED) + 2
                        and all(m["state"] in {"done", "skipped", "dead"} for m in r) and r,
                        timeout=120, what="every mail stored and finished")
        prober.stop.set()
        prober.join(timeout=15)
        assert not prober.failures, prober.failures
        assert prober.answers > 10 and prober.slowest < 5.0, (prober.answers, prober.slowest)
        assert service.proc.poll() is None

        dead = {r["subject"]: r for r in rows if r["state"] == "dead"}
        assert list(dead) == ["expensive"], dead
        assert dead["expensive"]["dead_reason"] == "cpu_budget"
        assert "CPU budget" in (dead["expensive"]["last_error"] or "")

        listed = cli(setup["env"], setup["cwd"], "dlq", "list", "--json")
        assert listed.returncode == 0 and '"cpu_budget"' in listed.stdout
        api = httpx.get(f"http://127.0.0.1:{port}/api/dlq", headers={"Authorization": "Bearer crash-secret-1"},
                        timeout=10).json()
        assert [m["dead_reason"] for m in api["messages"]] == ["cpu_budget"], api
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert 'recruiter_dlq_messages{reason="cpu_budget"} 1.0' in metrics

        notice = wait_for(lambda: [m["text"] for m in fake_telegram.messages()
                                   if "could not be processed" in m["text"]], timeout=30, what="the dead notice")
        assert "cpu_budget" in notice[0] and "expensive" in notice[0], notice
        assert service.events("budget.exceeded") or service.events("budget.killed")
    finally:
        prober.stop.set()
        code = service.stop()
        print("".join(service.lines[-40:]))
    assert code == 0
    assert set(card_ids(fake_telegram).values()) == {1}
