"""Dependencies that go away while `recruiter run` is busy, made to fail for real from the outside.

* Radicale is stopped mid-run: recruiter mail with proposed meetings waits at the calendar stage in
  `retry_wait` (last error naming CalDAV, nothing dead); once Radicale is back every message ends done
  with exactly one event per meeting, one draft and one card.
* The PostgreSQL cluster is restarted mid-burst (mail also arrives while it is down): no mail is lost,
  nothing is done twice, every mail ends done with exactly one draft and one card.
"""

from __future__ import annotations

import email
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, ImapUser
from tests.servers.fake_llm import FakeLLM
from tests.servers.fake_telegram import FakeTelegram
from tests.servers.radicale import Radicale
from tests.support.poll import wait_for
from tests.support.service import Service, card_ids, finished, start, stored

TERMINAL = {"done", "skipped", "dead"}


def _meeting_mail(i: int, meetings: int) -> bytes:
    lines = "".join(f"MEETING: 2027-0{1 + i % 9}-{10 + j:02d}T{9 + i % 8:02d}:30:00+00:00 30\n"
                    for j in range(meetings))
    return make_mail(subject=f"Recruiting for a platform role at Outage Corp #{i}",
                     body=f"Hi, I'm a recruiter at Outage Corp with a role for you (#{i}).\n"
                          f"Company: Outage Corp\nRole: Platform Engineer\n{lines}")


def _drafts_per_original(dovecot: Dovecot, user: ImapUser) -> Counter[str]:
    return Counter(str(email.message_from_bytes(raw)["In-Reply-To"])
                   for _, _, raw in dovecot.messages(user.user, "Drafts"))


def _uids(events: list[bytes]) -> Counter[str]:
    uids: Counter[str] = Counter()
    for ics in events:
        for line in ics.decode("utf-8", "replace").splitlines():
            if line.startswith("UID:"):
                uids[line[4:].strip()] += 1
    return uids


def _tail(service: Service, lines: int = 60) -> str:
    return "".join(service.lines[-lines:])


# ---- Radicale stopped mid-run ------------------------------------------------------------------------


@pytest.fixture
def radicale_back(radicale: Radicale) -> Iterator[Radicale]:
    """The session's Radicale, guaranteed running again when the test ends (pass or fail)."""
    radicale.start()
    try:
        yield radicale
    finally:
        if not radicale.running:
            radicale.start()


def test_radicale_stopped_mid_run_waits_at_calendar_then_finishes_once(
    setup: dict[str, Any], dovecot: Dovecot, radicale_back: Radicale, fake_telegram: FakeTelegram,
) -> None:
    radicale = radicale_back
    user: ImapUser = setup["user"]
    calendar = f"Outage {setup['cwd'].name}"  # Radicale lives for the session: one calendar per test
    setup["env"].update({
        "CALDAV_URL": radicale.url, "CALDAV_USER": radicale.username, "CALDAV_PASSWORD": radicale.password,
        "CALDAV_CALENDAR": calendar,
        # An outage does not burn attempts (RETRY_MAX_ATTEMPTS=3 would make the burst dead otherwise); the
        # paused calendar stage is probed every second.
        "RETRY_BASE_SECONDS": "0.5", "RETRY_MAX_SECONDS": "2", "RETRY_MAX_ATTEMPTS": "3",
        "TRIAGE_ALERT_AFTER": "3", "ALERT_PROBE_SECONDS": "1", "ALERT_FLAP_SECONDS": "0",
    })
    service = start(setup)
    try:
        # A first mail while Radicale is up: the calendar is created, looked up and cached, the HTTP
        # session is open. Then the server goes away under the running service.
        dovecot.append(user.user, _meeting_mail(0, 1))
        wait_for(lambda: finished(setup["env"], setup["cwd"], 1),
                 timeout=30, what="the first mail done while Radicale is up")
        assert len(radicale.events(calendar)) == 1

        radicale.stop()
        burst = {i: _meeting_mail(i, 2) for i in range(1, 5)}
        for raw in burst.values():
            dovecot.append(user.user, raw)

        def waiting_at_calendar() -> list[dict[str, Any]] | None:
            rows = stored(setup["env"], setup["cwd"])
            later = [r for r in rows if r["id"] != rows[0]["id"]]
            if len(later) == len(burst) and all(r["state"] == "retry_wait" and r["stage"] == "calendar"
                                                for r in later) and service.events("alert.fired"):
                return rows
            return None

        rows = wait_for(waiting_at_calendar, timeout=30, what="the burst waiting at the calendar stage")
        time.sleep(5)  # five probes of the paused stage fail meanwhile: still no attempt burned
        rows = stored(setup["env"], setup["cwd"])
        for row in rows[1:]:
            assert row["state"] == "retry_wait" and row["stage"] == "calendar", row
            assert "caldav" in (row["last_error"] or "").lower(), row
            assert row["dead_reason"] is None and row["attempts"] <= 1, row
        assert not [r for r in rows if r["state"] == "dead"]
        # Nothing downstream of the calendar happened yet (one card, one alert); the drafts (upstream)
        # happened once each.
        texts = [m["text"] for m in fake_telegram.messages()]
        assert len(texts) == 2 and "The calendar is failing" in texts[1], texts
        assert len(_drafts_per_original(dovecot, user)) == 1 + len(burst)
        assert service.proc.poll() is None

        radicale.start()
        rows = wait_for(lambda: finished(setup["env"], setup["cwd"], 1 + len(burst)),
                        timeout=40, what="every mail after Radicale is back")
        assert service.proc.poll() is None, _tail(service)
        wait_for(lambda: any("The calendar recovered" in m["text"] for m in fake_telegram.messages()),
                 what="the one recovery message")
    finally:
        code = service.stop()
        print(_tail(service))  # shown by pytest when the test fails
    assert code == 0

    assert len(rows) == 1 + len(burst)
    assert {r["state"] for r in rows} == {"done"}, [(r["id"], r["state"], r["last_error"]) for r in rows]
    # One event per proposed meeting: 1 + 4 × 2, each UID once.
    events = radicale.events(calendar)
    uids = _uids(events)
    assert len(events) == 1 + 2 * len(burst) and len(uids) == len(events) and set(uids.values()) == {1}
    assert all(b"STATUS:TENTATIVE" in e for e in events)
    # One draft and one card per mail.
    drafts = _drafts_per_original(dovecot, user)
    assert len(drafts) == 1 + len(burst) and set(drafts.values()) == {1}
    cards = card_ids(fake_telegram)
    assert sorted(cards) == sorted(r["id"] for r in rows) and set(cards.values()) == {1}
    assert len(fake_telegram.messages()) == 1 + len(burst) + 2  # the cards, one alert and one recovery message
    assert all("\\Seen" not in flags for _, flags, _ in dovecot.messages(user.user))


# ---- PostgreSQL restarted mid-run -------------------------------------------------------------------


def _pg_version() -> str:
    versions = sorted((p.name for p in Path("/etc/postgresql").iterdir() if p.name.isdigit()), key=int)
    assert versions, "no PostgreSQL cluster under /etc/postgresql"
    return versions[-1]


def _pg_ctl(action: str) -> None:
    result = subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", _pg_version(), "main", action],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"pg_ctlcluster {action}: {result.stdout}{result.stderr}"


def _pg_ready() -> bool:
    return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], timeout=10,
                          check=False).returncode == 0


def _carry_on(
    world: dict[str, Any], service: Service, done: int, timeout: float = 60,
) -> tuple[Service, int, list[dict[str, Any]]]:
    """Wait until ``done`` mails are finished. If the service exits meanwhile it must do so loudly
    (non-zero, `service.task_died`), and it is started again, the way a supervisor would."""
    restarts = 0

    def carried_on() -> list[dict[str, Any]] | None:
        nonlocal service, restarts
        code = service.proc.poll()
        if code is not None:
            service._reader.join(timeout=5)
            print(f"--- the service exited with {code} after the PostgreSQL restart ---\n{_tail(service)}")
            assert code != 0 and service.events("service.task_died"), "a silent exit"
            restarts += 1
            assert restarts <= 3, "the service keeps dying after PostgreSQL is back"
            service = start(world)
            return None
        return finished(world["env"], world["cwd"], done)

    try:
        rows = wait_for(carried_on, timeout=timeout, what="every mail after the PostgreSQL restart", every=0.3)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{_tail(service)}") from error
    return service, restarts, rows


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_restarted_mid_burst_loses_nothing_and_repeats_nothing(
    setup: dict[str, Any], dovecot: Dovecot, fake_llm: FakeLLM, fake_telegram: FakeTelegram,
) -> None:
    """Accepted outcomes (the brief allows either): the service rides the restart out, or it exits
    non-zero and a restart carries on from the store. Which one happened is printed; either way no
    mail is lost and nothing happens twice."""
    user: ImapUser = setup["user"]
    burst, during = 6, 2
    total = burst + during
    # Slow LLM answers keep the burst in progress; the database goes away while one is in flight (and
    # the other workers wait for the LLM), so the restart lands between stage transitions, not inside
    # the Telegram-send-then-record window (a test below covers that one).
    fake_llm.script(*[FakeLLM.Delay(0.8) for _ in range(2 * total)])
    service = start(setup)
    try:
        for i in range(burst):
            dovecot.append(user.user, make_mail(subject=f"Recruiting for role {i} (pg)",
                                                body=f"Hi, I'm a recruiter with a role for you (#{i}).\n"))
        wait_for(lambda: len(fake_llm.requests) >= 4, timeout=30, what="the burst in progress")
        seen = len(fake_llm.requests)
        wait_for(lambda: len(fake_llm.requests) > seen, timeout=10, what="the next LLM request")
        time.sleep(0.3)

        # Restart the cluster, as short as possible, with mail arriving while it is down.
        _pg_ctl("stop")
        try:
            for i in range(during):
                dovecot.append(user.user, make_mail(subject=f"Recruiting while the database is down {i}",
                                                    body=f"Hi, recruiter here with a role for you (#{i}).\n"))
            time.sleep(1.0)  # let the IDLE push (~0.5 s) reach the watcher while the database is down
        finally:
            _pg_ctl("start")
        wait_for(_pg_ready, timeout=30, what="pg_isready after the restart")
        service, restarts, rows = _carry_on(setup, service, total)
    finally:
        if not _pg_ready():
            _pg_ctl("start")
            wait_for(_pg_ready, timeout=30, what="pg_isready")
        code = service.stop()
        print(_tail(service))  # shown by pytest when the test fails
    print(f"PostgreSQL restart: the service {f'was restarted {restarts} time(s)' if restarts else 'survived'}")
    assert code == 0
    assert len(rows) == total
    assert {r["state"] for r in rows} == {"done"}, [(r["id"], r["state"], r["last_error"]) for r in rows]
    drafts = _drafts_per_original(dovecot, user)
    assert len(drafts) == total and set(drafts.values()) == {1}, drafts
    cards = card_ids(fake_telegram)
    assert sorted(cards) == sorted(r["id"] for r in rows) and set(cards.values()) == {1}, cards
    assert len(fake_telegram.messages()) == total
    assert all("\\Seen" not in flags for _, flags, _ in dovecot.messages(user.user))


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_down_between_card_sent_and_recorded_sends_one_card(
    setup: dict[str, Any], dovecot: Dovecot, fake_telegram: FakeTelegram,
) -> None:
    user: ImapUser = setup["user"]
    fake_telegram.script(FakeTelegram.Delay(2.5, "sendMessage"))  # the card is in flight for 2.5 s
    service = start(setup)
    try:
        dovecot.append(user.user, make_mail(subject="Recruiting: one card only",
                                            body="Hi, I'm a recruiter with a role for you.\n"))
        wait_for(lambda: service.events("draft.appended"), timeout=30, what="the draft appended")
        time.sleep(0.5)  # notify has started: sendMessage is waiting in the fake Bot API
        _pg_ctl("stop")
        try:
            wait_for(lambda: fake_telegram.messages(), timeout=10, what="the card accepted by Telegram")
            time.sleep(1.0)  # the stage now tries to record the card and advance: the database is down
        finally:
            _pg_ctl("start")
        wait_for(_pg_ready, timeout=30, what="pg_isready after the restart")
        service, _, rows = _carry_on(setup, service, 1)
    finally:
        if not _pg_ready():
            _pg_ctl("start")
            wait_for(_pg_ready, timeout=30, what="pg_isready")
        service.stop()
        print(_tail(service))
    assert [r["state"] for r in rows] == ["done"]
    assert len(_drafts_per_original(dovecot, user)) == 1
    assert len(fake_telegram.messages()) == 1, fake_telegram.messages()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_idle_service_rides_out_a_postgresql_restart(
    setup: dict[str, Any], dovecot: Dovecot, fake_telegram: FakeTelegram,
) -> None:
    service = start(setup)
    try:
        _pg_ctl("stop")
        try:
            time.sleep(1.5)  # a few POLL_SECONDS (0.3 s) with nothing to do and no database
        finally:
            _pg_ctl("start")
        wait_for(_pg_ready, timeout=30, what="pg_isready after the restart")
        time.sleep(1.0)
        assert service.proc.poll() is None, "the service exited:\n" + _tail(service)
        dovecot.append(setup["user"].user, make_mail(subject="Recruiting after the database restart"))
        wait_for(lambda: finished(setup["env"], setup["cwd"], 1), timeout=30, what="mail after the restart")
        assert len(fake_telegram.messages()) == 1
    finally:
        if not _pg_ready():
            _pg_ctl("start")
            wait_for(_pg_ready, timeout=30, what="pg_isready")
        service.stop()
        print(_tail(service))
