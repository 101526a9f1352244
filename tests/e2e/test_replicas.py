"""Two `recruiter run` replicas on one PostgreSQL: one watches the mailbox (advisory lock), the other
stands by; both run stages through leases; a burst is shared without duplicating anything, and the
standby takes over when the watcher is killed."""

from __future__ import annotations

import email
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, ImapUser
from tests.servers.fake_llm import FakeLLM
from tests.servers.fake_telegram import FakeTelegram
from tests.support.poll import wait_for
from tests.support.service import Service, card_ids, cli, finished, service_env

BURST = 10


@pytest.fixture
def setup(
    tmp_path: Path, pg_url: str, imap_user: ImapUser, fake_llm: FakeLLM, fake_telegram: FakeTelegram,
) -> Iterator[dict[str, Any]]:
    env = service_env(tmp_path, pg_url, imap_user, fake_llm, fake_telegram)
    env.update({"LLM_CONCURRENCY": "2", "POLL_SECONDS": "0.2"})
    assert cli(env, tmp_path, "migrate").returncode == 0
    yield {"env": env, "cwd": tmp_path, "user": imap_user}


def test_two_replicas_share_a_burst_and_the_standby_takes_over(
    setup: dict[str, Any], dovecot: Dovecot, fake_llm: FakeLLM, fake_telegram: FakeTelegram,
) -> None:
    fake_llm.script(*[FakeLLM.Delay(0.05) for _ in range(4 * BURST)])
    first = Service(setup["env"], setup["cwd"])
    wait_for(lambda: first.events("imap.first_start"), what="the first replica watching")
    second = Service(setup["env"], setup["cwd"])
    replicas = [first, second]
    try:
        wait_for(lambda: second.events("imap.standby"), what="the second replica standing by")
        for i in range(BURST):
            dovecot.append(setup["user"].user, make_mail(subject=f"Recruiting: role {i}"))
        rows = wait_for(lambda: finished(setup["env"], setup["cwd"], BURST), timeout=60, what="the burst")
        worked = [len(r.events("message.finished")) for r in replicas]
        assert sum(worked) == BURST and all(worked), worked  # both replicas ran stages

        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
        wait_for(lambda: second.events("imap.connected"), timeout=30, what="the standby taking over")
        dovecot.append(setup["user"].user, make_mail(subject="Recruiting: after the takeover"))
        rows = wait_for(lambda: finished(setup["env"], setup["cwd"], BURST + 1),
                        timeout=60, what="mail after the takeover")
    finally:
        for replica in replicas:
            if replica.proc.poll() is None:
                replica.stop()
            print("".join(replica.lines[-40:]))  # shown when the test fails
    assert {r["state"] for r in rows} == {"done"}
    cards = card_ids(fake_telegram)
    assert len(cards) == BURST + 1 and set(cards.values()) == {1}
    drafts = Counter(email.message_from_bytes(raw)["In-Reply-To"]
                     for _, _, raw in dovecot.messages(setup["user"].user, "Drafts"))
    assert len(drafts) == BURST + 1 and set(drafts.values()) == {1}


def test_kill_9_of_the_watching_replica_mid_burst_with_the_default_lease(
    setup: dict[str, Any], dovecot: Dovecot, fake_llm: FakeLLM, fake_telegram: FakeTelegram,
) -> None:
    """The takeover as it was reported failing (1 run in 3, not reproduced here): 20 mails shared, a
    kill -9 of the first-started replica while they are in progress, the default LEASE_SECONDS (so the
    killed replica's messages stay leased to it for minutes), then 3 new mails: their cards come from
    the standby within a minute, and nothing is carded twice."""
    setup["env"].pop("LEASE_SECONDS", None)
    fake_llm.script(*[FakeLLM.Delay(0.3) for _ in range(200)])
    first = Service(setup["env"], setup["cwd"])
    wait_for(lambda: first.events("imap.first_start"), what="the first replica watching")
    second = Service(setup["env"], setup["cwd"])
    try:
        wait_for(lambda: second.events("imap.standby"), what="the second replica standing by")
        for i in range(20):
            dovecot.append(setup["user"].user, make_mail(subject=f"Recruiting: role {i}"))
        wait_for(lambda: first.events("message.finished") and second.events("message.finished"), timeout=60,
                 what="both replicas at work")
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
        wait_for(lambda: second.events("imap.connected"), timeout=30, what="the standby taking over")
        for i in range(3):
            dovecot.append(setup["user"].user, make_mail(subject=f"Recruiting: after the kill {i}"))

        def after() -> int:
            return sum(1 for chat in fake_telegram.chats.values() for m in chat.values()
                       if "after the kill" in str(m.get("text")))
        wait_for(lambda: after() >= 3, timeout=60, what="the 3 new mails' cards from the standby")
    finally:
        if second.proc.poll() is None:
            second.stop()
        print("".join(second.lines[-40:]))  # shown when the test fails
    assert set(card_ids(fake_telegram).values()) == {1}
