"""The CPU budget: helper processes that really stop work, recover, and return results and errors."""

from __future__ import annotations

import asyncio
import os
import re
import time
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from recruiter.app import build_runtime
from recruiter.budget import Budget, descendants
from recruiter.errors import DependencyUnavailable, HelperFailed, OverBudget, UnparseableMail
from recruiter.ingest.describe import describe
from recruiter.mail.invite import invitations, read_mail, remember
from recruiter.mail.parse import ParsedMail, parse_message
from recruiter.settings import settings_from
from recruiter.store.migrate import upgrade_head
from tests.mailfactory import make_mail
from tests.servers.dovecot import ImapUser
from tests.servers.fake_telegram import FakeTelegram
from tests.support.callbacks import env_for
from tests.support.poll import eventually


def spin() -> None:
    """A task that never ends on its own (pure Python: the CPU timer stops it)."""
    while True:
        pass


def swallow() -> None:
    """A task that catches everything it can, the first alarm included."""
    while True:
        try:
            while True:
                pass
        except BaseException:  # the point: the alarm fires again
            pass


def backtrack(n: int) -> bool:
    """A regex that needs exponential time: the engine itself looks at signals and stops."""
    return re.match(r"(a+)+$", "a" * n + "b") is not None


def sleep_c(seconds: float) -> None:
    """Blocks without spending CPU: only the wall-clock backstop stops it."""
    time.sleep(seconds)


def raise_unparseable() -> None:
    raise UnparseableMail("no header block")


def raise_value() -> None:
    raise ValueError("bad value")


def die() -> None:
    os._exit(3)


def pid() -> int:
    return os.getpid()


async def test_a_normal_task_returns_its_result() -> None:
    budget = Budget(5.0)
    try:
        mail = await budget.run(parse_message, b"Subject: hello\r\nFrom: a@b.example\r\n\r\nbody text\r\n")
        assert isinstance(mail, ParsedMail)
        assert mail.subject == "hello" and mail.text == "body text"
        assert await budget.run(pid) != os.getpid()
    finally:
        await budget.aclose()


async def test_a_task_that_loops_forever_is_stopped_within_the_budget_and_the_pool_recovers() -> None:
    budget = Budget(0.3, helpers=1)
    try:
        first = await budget.run(pid)
        with pytest.raises(OverBudget) as caught:
            await budget.run(spin)
        assert caught.value.reason == "cpu_budget"
        with pytest.raises(OverBudget):
            await budget.run(swallow)
        with pytest.raises(OverBudget):
            await budget.run(backtrack, 60)
        assert budget.over_budget == 3 and budget.killed == 0  # the helper's own timer stopped each one
        assert await budget.run(pid) != first  # the one that swallowed its alarm took its helper with it
        second = await budget.run(pid)
        with pytest.raises(OverBudget):
            await budget.run(spin)
        assert await budget.run(pid) == second  # stopped by its timer, the helper lives on
        assert await budget.run(backtrack, 5) is False
    finally:
        await budget.aclose()


async def test_work_that_ignores_signals_is_killed_by_the_wall_clock_and_replaced() -> None:
    budget = Budget(0.2, wall_seconds=3.0, helpers=1)  # room for a loaded machine: the task sleeps 30 s
    try:
        first = await budget.run(pid)
        with pytest.raises(OverBudget):
            await budget.run(sleep_c, 30.0)
        assert budget.killed == 1
        assert await budget.run(pid) != first
    finally:
        await budget.aclose()


async def test_exceptions_come_back_as_themselves() -> None:
    budget = Budget(5.0)
    try:
        with pytest.raises(UnparseableMail, match="no header block"):
            await budget.run(raise_unparseable)
        with pytest.raises(UnparseableMail):
            await budget.run(parse_message, b"")
        with pytest.raises(ValueError, match="bad value"):
            await budget.run(raise_value)
    finally:
        await budget.aclose()


async def test_a_helper_that_dies_is_a_failure_of_that_task_only() -> None:
    budget = Budget(5.0, helpers=1)
    try:
        with pytest.raises(HelperFailed, match="exit code 3"):
            await budget.run(die)
        assert await budget.run(backtrack, 3) is False
    finally:
        await budget.aclose()


async def test_tasks_share_the_helpers_and_the_loop_stays_free() -> None:
    budget = Budget(0.5, helpers=2)
    try:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        clock = asyncio.create_task(ticker())
        results = await asyncio.gather(*(budget.run(spin) for _ in range(3)), budget.run(backtrack, 4),
                                       return_exceptions=True)
        clock.cancel()
        assert [type(r) for r in results] == [OverBudget, OverBudget, OverBudget, bool]
        assert ticks > 10  # the loop ran while the helpers spun
        assert len(budget.pids()) == 2
    finally:
        await budget.aclose()


async def test_helpers_are_recycled_and_stopped() -> None:
    budget = Budget(5.0, helpers=1, max_tasks=2)
    try:
        pids = [await budget.run(pid) for _ in range(3)]
        assert pids[0] == pids[1] != pids[2]
        alive = budget.pids()
        assert alive == [pids[2]] and set(alive) <= set(descendants())
        assert pids[0] not in descendants()
    finally:
        await budget.aclose()
    assert budget.pids() == []
    await eventually(lambda: not set(alive) & set(descendants()), timeout=5, what="the old helper gone")
    with pytest.raises(DependencyUnavailable):
        await budget.run(pid)


ICS = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:call-1@x.example\r\n"
       "SUMMARY:Intro call\r\nDTSTART;TZID=Europe/Berlin:20261208T150000\r\n"
       "DTEND;TZID=Europe/Berlin:20261208T153000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


async def test_invitations_are_read_in_the_helper_and_remembered_for_the_stages() -> None:
    message = EmailMessage()
    message["From"], message["Subject"], message["Message-ID"] = "a@b.example", "invite", "<inv-1@b.example>"
    message.set_content("Let's talk.")
    message.add_attachment(ICS.encode(), maintype="text", subtype="calendar", filename="invite.ics")
    budget = Budget(5.0)
    try:
        mail, found = await budget.run(read_mail, message.as_bytes(), max_text_chars=6000, max_bytes=10**7)
    finally:
        await budget.aclose()
    assert [i.summary for i in found] == ["Intro call"] and found[0].start.tzinfo == ZoneInfo("Europe/Berlin")
    bogus = ("not a calendar: only what was remembered can answer",)
    remember(bogus, found)
    assert invitations(bogus) == list(found)
    assert invitations(mail.calendar_parts) == list(found)  # parsed here too: the same answer
    assert await asyncio.to_thread(read_mail, b"Subject: none\r\n\r\nx", max_text_chars=100, max_bytes=10**6) \
        == (parse_message(b"Subject: none\r\n\r\nx", max_text_chars=100), None)


async def test_a_budget_that_cannot_run_makes_a_retry_not_a_dead_mail(
    tmp_path: Path, imap_user: ImapUser, fake_telegram: FakeTelegram,
) -> None:
    """Helpers that are stopped (or cannot start) say nothing about the mail: it waits for a retry
    instead of going dead as unparseable."""
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'budget.db'}"
    settings = settings_from(env_for(tmp_path, db_url, imap_user, fake_telegram, None))
    await upgrade_head(db_url)
    runtime = await build_runtime(settings)
    try:
        assert runtime.worker.budget is not None
        await runtime.worker.budget.aclose()
        raw = make_mail(to=imap_user.user)
        message_id = await runtime.store.add_message(describe(raw, mailbox="me", folder="INBOX", uidvalidity=1,
                                                              uid=1))
        assert message_id is not None
        await runtime.worker.run_once()
        row = await runtime.store.get(message_id)
        assert row is not None and row.state == "retry_wait", (row and row.state, row and row.last_error)
        assert "helpers are stopped" in (row.last_error or "")
    finally:
        await runtime.aclose()


_LOG_SCRIPT = r"""
import asyncio, sys
import structlog
from recruiter.log import configure_logging
from recruiter.budget import Budget

configure_logging(level="DEBUG", fmt="json")
log = structlog.get_logger()

async def main():
    budget = Budget(5.0, helpers=2)
    try:
        async def chatter():
            for i in range(2000):
                log.info("parent.line", i=i, pad="p" * 200)
                await asyncio.sleep(0)
        # A large input makes each helper return its heap and log `memory.released` at debug level.
        await asyncio.gather(chatter(), *(budget.run(len, "x" * 400_000) for _ in range(40)))
    finally:
        await budget.aclose()

asyncio.run(main())
"""


def test_helpers_log_like_the_service_and_never_split_its_lines(tmp_path: Path) -> None:
    """The helpers share the service's stderr: their lines come in the service's format and level, and
    a helper's line never lands inside one of the service's (CI once saw a JSON line and a helper's
    console line glued together, and lost the event)."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _LOG_SCRIPT], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    events = [json.loads(line)["event"] for line in lines]  # every line is one JSON object
    assert events.count("parent.line") == 2000
    assert "memory.released" in events, events[-5:]
