"""`recruiter migrate` + `recruiter run` as a user runs them: two Dovecot mailboxes, Radicale, the loopback
LLM and Bot API, on SQLite and PostgreSQL. Mail is delivered; each recruiter mail must get exactly one
threaded draft, one card with signed buttons and one tentative event per meeting; bulk mail never reaches
the LLM; non-recruiter mail causes nothing. Then Dovecot restarts and mail after it is still processed.
"""

from __future__ import annotations

import email
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from recruiter.notify.links import verify_link
from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, ImapUser, free_port
from tests.servers.fake_llm import FakeLLM
from tests.servers.fake_telegram import FakeTelegram
from tests.servers.radicale import Radicale
from tests.support.poll import wait_for
from tests.support.service import Service, cli, finished

SECRET = "e2e-bearer-secret-123"


@pytest.fixture
def world(
    tmp_path: Path, db_url: str, dovecot: Dovecot, imap_account: Callable[[], ImapUser], radicale: Radicale,
    fake_llm: FakeLLM, fake_telegram: FakeTelegram,
) -> Iterator[dict[str, Any]]:
    me, spam = imap_account(), imap_account()
    calendar = f"Interviews {tmp_path.name}"  # Radicale lives for the session: one calendar per test
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAP_", "LLAMA_", "TELEGRAM_", "CALDAV_"))}
    env.update({
        "IMAP_MAILBOXES": "me,spam",
        "DB_CONNECTION_STRING": db_url,
        "LLAMA_SWAP_URL": fake_llm.url, "LLAMA_SWAP_MODEL": "qwen3-8b",
        "TELEGRAM_BOT_TOKEN": fake_telegram.token, "TELEGRAM_CHAT_ID": "4242",
        "TELEGRAM_API_BASE_URL": fake_telegram.base_url,
        "CALDAV_URL": radicale.url, "CALDAV_USER": radicale.username, "CALDAV_PASSWORD": radicale.password,
        "CALDAV_CALENDAR": calendar,
        "CALLBACK_BASE_URL": "https://rr.example.org", "WEBHOOK_BEARER_TOKEN": SECRET,
        "LOG_FORMAT": "json", "POLL_SECONDS": "0.5", "IMAP_TIMEOUT_SECONDS": "5",
        "HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(free_port()),
    })
    for name, user in (("ME", me), ("SPAM", spam)):
        env.update({f"IMAP_{name}_HOST": user.host, f"IMAP_{name}_PORT": str(user.port),
                    f"IMAP_{name}_USER": user.user, f"IMAP_{name}_PASS": user.password, f"IMAP_{name}_TLS": "none"})
    yield {"env": env, "cwd": tmp_path, "me": me, "spam": spam, "calendar": calendar}


def recruiter_mails() -> dict[str, bytes]:
    return {
        "meeting": make_mail(
            subject="Staff SRE role at Acme — intro call?",
            body="Hi Alex,\n\nI'm recruiting for Acme.\nCompany: Acme\nRole: Staff SRE\n"
                 "Would this work?\nMEETING: 2026-12-03T15:00:00+00:00 30\nMEETING: 2026-12-04T10:00:00+01:00 45\n",
        ),
        "html": make_mail(
            subject="Your application at Globex", sender="Globex Talent <talent@globex.example>",
            html="<html><body><p>Hello, we are <b>hiring</b> a Principal Engineer (recruiting team).</p>"
                 "<script>alert(1)</script></body></html>",
        ),
        "german": make_mail(
            subject="Spannende Position als Staff Engineer",
            body="Hallo Alex,\n\nich bin Recruiterin bei Initech und habe eine spannende Position für Sie.\n",
            sender="Petra Personal <petra@initech.example>",
        ),
    }


def test_pipeline_end_to_end_on_real_servers(
    world: dict[str, Any], dovecot: Dovecot, radicale: Radicale, fake_llm: FakeLLM, fake_telegram: FakeTelegram,
) -> None:
    env, cwd, me, spam = world["env"], world["cwd"], world["me"], world["spam"]
    migrated = cli(env, cwd, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    dovecot.append(me.user, make_mail(subject="backlog from before the first start"))
    service = Service(env, cwd)
    try:
        wait_for(lambda: len(service.events("imap.first_start")) == 2, what="both watchers connected")
        recruiting = recruiter_mails()
        for raw in recruiting.values():
            dovecot.append(me.user, raw)
        shared = make_mail(subject="Hiring: Staff SRE at Hooli", message_id="<same-in-both@hooli.example>",
                           body="Hi, recruiting for Hooli, interested in the role?\n")
        dovecot.append(me.user, shared)
        dovecot.append(spam.user, shared)
        bulk = {
            "newsletter": make_mail(subject="Weekly jobs newsletter: 50 new roles", sender="news@jobs.example",
                                    headers={"List-Unsubscribe": "<mailto:u@jobs.example>", "List-Id": "<j.example>"}),
            "autoreply": make_mail(subject="Out of office: recruiting role",
                                   headers={"Auto-Submitted": "auto-replied"}),
            "noreply": make_mail(subject="Your hiring receipt", sender="no-reply@shop.example"),
            "bulk": make_mail(subject="Talent digest", headers={"Precedence": "bulk"}),
        }
        for raw in bulk.values():
            dovecot.append(spam.user, raw)
        dovecot.append(me.user, make_mail(subject="Dinner on Friday?", sender="Sam Friend <sam@friends.example>",
                                          body="Hey! Are we still on for dinner on Friday?\n"))
        dovecot.append(me.user, _with_attachment())
        total = 1 + len(recruiting) + len(bulk) + 2  # shared once, the friend, the attachment
        rows = wait_for(lambda: finished(env, cwd, total), timeout=60, what="every message finished")

        by_subject = {r["subject"]: r for r in rows}
        assert "backlog from before the first start" not in by_subject
        recruiter_rows = [r for r in rows if r["is_recruiter"]]
        assert {r["state"] for r in recruiter_rows} == {"done"}
        assert len(recruiter_rows) == 5  # three, the shared one once, the attachment mail
        for name in bulk:
            assert by_subject[next(s for s in by_subject if _subject_of(bulk[name]) == s)]["state"] == "skipped"
        assert by_subject["Dinner on Friday?"]["state"] == "skipped"
        assert by_subject["Dinner on Friday?"]["is_recruiter"] is False

        # Bulk and automatic mail never reached the LLM; the friend's mail was triaged and nothing else.
        prompts = " ".join(json.dumps(r) for r in fake_llm.requests)
        for raw in bulk.values():
            assert _subject_of(raw) not in prompts
        assert len(fake_llm.triage_requests()) == 6
        assert len(fake_llm.draft_requests()) == 5
        triage_body = fake_llm.triage_requests()[0]
        assert triage_body["temperature"] == 0
        assert triage_body["chat_template_kwargs"] == {"enable_thinking": False}
        assert triage_body["response_format"]["type"] == "json_schema"

        # Exactly one threaded draft per recruiter mail, in the mailbox it arrived in.
        drafts = dovecot.messages(me.user, "Drafts") + dovecot.messages(spam.user, "Drafts")
        assert len(drafts) == 5
        originals = {email.message_from_bytes(raw)["Message-ID"]: raw for raw in [*recruiting.values(), shared]}
        for _, flags, raw in drafts:
            draft = email.message_from_bytes(raw)
            assert "\\Draft" in flags
            assert draft["Subject"].startswith("Re: ")
            assert not draft["Subject"].startswith("Re: Re:")
            if draft["In-Reply-To"] in originals:
                assert draft["In-Reply-To"] in draft["References"]
        assert {email.message_from_bytes(r)["In-Reply-To"] for _, _, r in drafts} >= set(originals)

        # One card per recruiter mail, with signed buttons; none for the rest.
        cards = fake_telegram.messages()
        assert len(cards) == 5
        for card in cards:
            assert str(card["chat_id"]) == "4242"
            buttons = [b for row in card["reply_markup"]["inline_keyboard"] for b in row]
            assert len(buttons) >= 2
            for button in buttons:
                url = urlparse(button["url"])
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                action = url.path.rsplit("/", 1)[-1]
                assert verify_link(SECRET, action, int(query["m"]), int(query["exp"]), query["sig"], now=time.time())

        # One tentative event per proposed meeting.
        events = radicale.events(world["calendar"])
        assert len(events) == 2
        assert all(b"STATUS:TENTATIVE" in e for e in events)

        # HTTP: alive, ready (store answers, both watchers fresh), metrics by state.
        base = f"http://127.0.0.1:{env['HTTP_PORT']}"
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["checks"]) == {"store", "imap:me", "imap:spam"}
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert 'recruiter_messages{state="done"} 5.0' in metrics
        assert "recruiter_dlq_size 0.0" in metrics
        assert 'recruiter_imap_connected{mailbox="me"} 1.0' in metrics
        assert 'recruiter_stage_duration_seconds_count{outcome="ok",stage="triage"} 6.0' in metrics
        assert 'recruiter_llm_requests_total{model="qwen3-8b",outcome="ok",tier="llama-swap"} 11.0' in metrics
        tokens = re.search(r'recruiter_llm_prompt_tokens_total\{model="qwen3-8b",outcome="ok",tier="llama-swap"\} '
                           r'([0-9.e+]+)', metrics)
        assert tokens is not None and float(tokens.group(1)) > 1000

        # The API and `recruiter status` (which asks the API) see the same; the API needs the token.
        assert httpx.get(f"{base}/api/status", timeout=5).status_code == 401
        api = httpx.get(f"{base}/api/status", headers={"Authorization": f"Bearer {SECRET}"}, timeout=5)
        assert api.status_code == 200, api.text
        assert api.json()["queue"]["done"] == 5
        status = cli(env, cwd, "status", "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        report = json.loads(status.stdout)
        assert report["ready"] is True and report["service"]["reachable"] is True
        assert {m["name"]: m["connected"] for m in report["mailboxes"]} == {"me": True, "spam": True}
        assert report["last_triage_at"] is not None
        table = cli(env, cwd, "status")
        assert table.returncode == 0 and "Mailboxes" in table.stdout and "ready" in table.stdout

        # The server stops: readiness says which dependency is failing.
        dovecot.stop()
        wait_for(lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 503, what="not ready")
        assert httpx.get(f"{base}/readyz", timeout=5).json()["checks"]["imap:me"]["ok"] is False
        down = cli(env, cwd, "status", "--json")
        assert down.returncode == 1
        assert json.loads(down.stdout)["ready"] is False, down.stdout
        dovecot.start()

        # The server restarts; mail delivered after it is still processed.
        dovecot.restart()
        dovecot.append(me.user, make_mail(subject="After the restart: recruiting for Umbrella",
                                          body="Hi, I'm a recruiter at Umbrella with a role for you.\n"))
        wait_for(lambda: finished(env, cwd, total + 1), timeout=90, what="mail after the restart")
        assert len(fake_telegram.messages()) == 6
        assert service.proc.poll() is None
    finally:
        code = service.stop()
        print("".join(service.lines[-60:]))  # shown by pytest when the test fails
    assert code == 0, "".join(service.lines[-30:])
    assert not [line for line in service.lines if SECRET in line or me.password in line]


def _subject_of(raw: bytes) -> str:
    return str(email.message_from_bytes(raw)["Subject"])


def _with_attachment() -> bytes:
    msg = email.message_from_bytes(make_mail(
        subject="Principal engineer opportunity (job spec attached)",
        body="Hello, I'm a recruiter with an opportunity for a Principal Engineer role; spec attached.\n",
        sender="Tom Agency <tom@agency.example>",
    ), policy=email.policy.default)
    msg.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="spec.pdf")  # type: ignore[attr-defined]
    return bytes(msg)
