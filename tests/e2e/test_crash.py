"""Crash safety from the outside: `kill -9` during a burst, repeatedly, and SIGTERM during a stage.

Every recruiter mail must end with exactly one draft and one card; nothing is lost, nothing is done twice.
"""

from __future__ import annotations

import asyncio
import email
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

from recruiter.ingest.describe import describe
from recruiter.mail.parse import parse_message
from recruiter.store.repo import Store
from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, ImapUser
from tests.servers.fake_llm import FakeLLM
from tests.servers.fake_telegram import FakeTelegram
from tests.support.poll import wait_for
from tests.support.service import card_ids, clean_env, cli, finished, start, stored

BURST = 12


def test_kill_9_during_a_burst_loses_nothing_and_repeats_nothing(
    setup: dict[str, Any], dovecot: Dovecot, fake_llm: FakeLLM, fake_telegram: FakeTelegram,
) -> None:
    user: ImapUser = setup["user"]
    # A lease outlasts a restart (start-up imports the LLM SDK: 3-6 s on a loaded machine): a message killed
    # mid-stage is taken up again after the next kill, not killed three times in a row (that is worker_lost).
    setup["env"]["LEASE_SECONDS"] = "10"
    fake_llm.script(*[FakeLLM.Delay(0.15) for _ in range(4 * BURST)])  # slow enough to be killed mid-stage
    service = start(setup)
    for i in range(BURST):
        dovecot.append(user.user, make_mail(subject=f"Recruiting for role {i}",
                                            body=f"Hi, I'm a recruiter with a role for you (#{i}).\n"))
    kills = 0
    try:
        for delay in (1.0, 1.2, 0.8):
            time.sleep(delay)
            service.proc.send_signal(signal.SIGKILL)
            service.proc.wait(timeout=10)
            kills += 1
            service = start(setup)
        rows = wait_for(lambda: finished(setup["env"], setup["cwd"], BURST), timeout=120, what="the burst to finish")
    finally:
        service.stop()
    assert kills == 3
    assert len(rows) == BURST
    dead = [cli(setup["env"], setup["cwd"], "dlq", "show", str(r["id"])).stdout for r in rows if r["state"] == "dead"]
    assert {r["state"] for r in rows} == {"done"}, dead
    drafts = [email.message_from_bytes(raw) for _, _, raw in dovecot.messages(user.user, "Drafts")]
    per_original = Counter(d["In-Reply-To"] for d in drafts)
    assert len(per_original) == BURST and set(per_original.values()) == {1}
    cards = card_ids(fake_telegram)
    assert set(cards.values()) == {1}  # never a card twice
    for row in rows:  # a kill between "sending" and "sent" leaves the card uncertain: said, never resent
        assert row["id"] in cards or "card may not have arrived" in (row["last_error"] or ""), row
    assert all("\\Seen" not in flags for _, flags, _ in dovecot.messages(user.user))


def test_sigterm_during_a_stage_releases_without_burning_an_attempt(
    setup: dict[str, Any], dovecot: Dovecot, fake_llm: FakeLLM, fake_telegram: FakeTelegram,
) -> None:
    setup["env"]["SHUTDOWN_GRACE_SECONDS"] = "0.5"
    fake_llm.script(FakeLLM.Delay(20))
    service = start(setup)
    dovecot.append(setup["user"].user, make_mail(subject="Recruiting: a slow one"))
    wait_for(lambda: fake_llm.requests, what="triage in flight")
    began = time.monotonic()
    assert service.stop() == 0
    assert time.monotonic() - began < 10
    assert service.events("worker.released")
    row = stored(setup["env"], setup["cwd"])[0]
    assert (row["state"], row["stage"], row["attempts"]) == ("pending", "triage", 0)
    service = start(setup)
    try:
        wait_for(lambda: finished(setup["env"], setup["cwd"], 1),
                 timeout=30, what="the message to finish after restart")
    finally:
        service.stop()
    assert len(fake_telegram.messages()) == 1




def test_a_card_interrupted_mid_send_is_never_sent_twice(tmp_path: Path) -> None:
    """A crash after the send began (intent recorded, no result) must not resend: it is marked instead."""
    url = f"sqlite+aiosqlite:///{tmp_path}/recruiter.db"
    env = {**clean_env(), "DB_CONNECTION_STRING": url}
    assert cli(env, tmp_path, "migrate").returncode == 0
    raw = make_mail(subject="Recruiting: interrupted card")
    key = parse_message(raw).key

    async def crashed_mid_send() -> None:
        store = Store.from_url(url)
        try:
            message = await store.add_message(describe(raw, mailbox="file"))
            assert message is not None
            assert await store.claim_due("dead-worker", limit=1, lease_seconds=60) == [message]
            await store.advance(message, "dead-worker", effects=[(f"{key}:notify-intent", "notify-intent", "")],
                                stage="triage", lease_owner=None, lease_expires_at=None)
        finally:
            await store.aclose()

    asyncio.run(crashed_mid_send())
    result = cli(env, tmp_path, "process")
    assert result.returncode == 0, result.stderr
    assert "/cb/send?" not in result.stdout  # not sent again
    assert "notify.uncertain" in result.stderr
    [row] = stored(env, tmp_path)
    assert row["state"] == "done" and "card may not have arrived" in row["last_error"]
