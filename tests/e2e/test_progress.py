"""What a failed attempt leaves behind: the stages write their progress with the writes that must happen
anyway (before the draft APPEND, the notify intent, the end), and a failure writes what is still unwritten.
A retry must start where the failed attempt stopped: no second triage call after a failed draft call, no
second draft after a failed calendar write. Run as `recruiter run` against Dovecot and the fakes, on both
databases."""

from __future__ import annotations

import asyncio
import email
import shutil
from typing import Any

from recruiter.store.models import Attempt, SideEffect
from recruiter.store.repo import Store
from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot
from tests.servers.fake_llm import FakeLLM
from tests.servers.fake_telegram import FakeTelegram
from tests.support.poll import wait_for
from tests.support.service import finished, start


def history(env: dict[str, str], message_id: int) -> tuple[list[Attempt], list[SideEffect]]:
    """The message's failure history and side-effect records, read from the service's database."""

    async def read() -> tuple[list[Attempt], list[SideEffect]]:
        store = Store.from_url(env["DB_CONNECTION_STRING"])
        try:
            return await store.attempts_for(message_id), await store.effects_for(message_id)
        finally:
            await store.aclose()

    return asyncio.run(read())


def test_a_failed_draft_call_keeps_the_triage_verdict(
    setup: dict[str, Any], dovecot: Dovecot, fake_llm: FakeLLM, fake_telegram: FakeTelegram,
) -> None:
    fake_llm.script(FakeLLM.Delay(0), FakeLLM.Status(503))  # triage answers, the first draft call fails
    service = start(setup)
    try:
        dovecot.append(setup["user"].user, make_mail(subject="Recruiting: a role at Acme",
                                                     body="Hi, I'm a recruiter with a role for you.\n"))
        [row] = wait_for(lambda: finished(setup["env"], setup["cwd"], 1), timeout=60, what="the message to finish")
    finally:
        service.stop()
    assert (row["state"], row["attempts"]) == ("done", 1)
    assert len(fake_llm.triage_requests()) == 1  # the retry started at the draft stage
    assert len(fake_llm.requests) == 3  # triage, the failed draft call, the draft call of the retry
    attempts, _ = history(setup["env"], row["id"])
    assert [(a.stage, a.error_class) for a in attempts] == [("draft", "DependencyUnavailable")]
    assert len(fake_telegram.messages()) == 1
    assert len(dovecot.messages(setup["user"].user, "Drafts")) == 1


def test_a_failed_calendar_write_keeps_the_draft_record(
    setup: dict[str, Any], dovecot: Dovecot, fake_llm: FakeLLM, fake_telegram: FakeTelegram,
) -> None:
    events = setup["cwd"] / "events"
    events.write_text("not a directory")  # the event file cannot be written: the calendar stage fails
    service = start(setup)
    try:
        dovecot.append(setup["user"].user, make_mail(
            subject="Recruiting: interview at Acme",
            body="Hi, I'm a recruiter with a role for you.\nMEETING: 2030-01-15T10:00:00+00:00 30\n"))
        [failed] = wait_for(lambda: service.events("stage.retry"), timeout=60, what="the calendar stage to fail")
        assert failed["stage"] == "calendar"
        message_id = failed["message"]
        _, effects = history(setup["env"], message_id)
        assert [e.kind for e in effects] == ["draft"]  # written with the failure: the retry skips the draft
        events.unlink()
        events.mkdir()
        [row] = wait_for(lambda: finished(setup["env"], setup["cwd"], 1), timeout=60, what="the message to finish")
    finally:
        service.stop()
        if events.is_file():
            events.unlink()
    assert (row["state"], row["attempts"]) == ("done", 1)
    _, effects = history(setup["env"], message_id)
    assert sorted(e.kind for e in effects) == ["conflicts", "draft", "event", "notify", "notify-intent"]
    drafts = dovecot.messages(setup["user"].user, "Drafts")
    assert len(drafts) == 1 and email.message_from_bytes(drafts[0][2])["X-Recruiter-Key"]
    assert len(fake_llm.requests) == 2 and len(fake_telegram.messages()) == 1
    assert len(list(events.glob("*.ics"))) == 1
    shutil.rmtree(events)
