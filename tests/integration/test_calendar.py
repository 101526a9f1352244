"""Tentative events: iCalendar content and time zones, .ics files, and CalDAV on a real Radicale."""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest

from recruiter.calendar.caldav import (
    CalDavCalendar,
    CalendarSink,
    IcsDirCalendar,
    _status_error,
    build_event,
    event_uid,
    safe_file_name,
)
from recruiter.errors import DependencyUnavailable, PermanentError, TransientError
from recruiter.mail.parse import ParsedMail
from recruiter.model import Meeting, TriageResult
from tests.servers.radicale import Radicale

NOW = datetime(2026, 11, 20, 9, 30, 12, tzinfo=UTC)


def _mail(**overrides: Any) -> ParsedMail:
    values: dict[str, Any] = {
        "key": "abc@acme.example",
        "message_id": "<abc@acme.example>",
        "subject": "Staff SRE at Acme — quick chat?",
        "from_name": "Jane Doe",
        "from_addr": "jane@acme.example",
        "to_addrs": ("me@example.org",),
        "reply_to": None,
        "date": NOW,
        "references": (),
    }
    values.update(overrides)
    return ParsedMail(**values)


def _triage(**overrides: Any) -> TriageResult:
    values: dict[str, Any] = {
        "is_recruiter": True, "confidence": 0.93, "kind": "scheduling", "company": "Acme",
        "role": "Staff SRE", "location": "London", "remote": "hybrid", "compensation": "£150k",
        "summary": "Acme wants an intro call for a Staff SRE role.",
    }
    values.update(overrides)
    return TriageResult(**values)


def _event(ics: bytes) -> tuple[icalendar.Calendar, icalendar.cal.Component]:
    cal = icalendar.Calendar.from_ical(ics)
    events = list(cal.walk("VEVENT"))
    assert len(events) == 1
    return cal, events[0]


def _build(start: datetime | str, minutes: int = 30, uid: str | None = None, **triage: Any) -> bytes:
    meeting = Meeting.model_validate({"start": start, "duration_minutes": minutes, "title": "Intro call"})
    return build_event(uid=uid or event_uid("abc@acme.example", 0), meeting=meeting,
                       triage=_triage(**triage), mail=_mail(), now=NOW)


# --- event content ----------------------------------------------------------------------------

def test_event_uid_is_deterministic_and_distinct() -> None:
    uid = event_uid("abc@acme.example", 0)
    assert uid == event_uid("abc@acme.example", 0)
    assert uid != event_uid("abc@acme.example", 1)
    assert uid != event_uid("other@acme.example", 0)
    head, domain = uid.split("@")
    assert domain == "recruiter-responder" and len(head) == 32 and int(head, 16) >= 0


def test_event_fields() -> None:
    ics = _build("2026-12-03T15:00:00+00:00")
    assert b"\r\n" in ics
    cal, event = _event(ics)
    assert str(cal["VERSION"]) == "2.0" and "recruiter-responder" in str(cal["PRODID"])
    assert str(event["UID"]) == event_uid("abc@acme.example", 0)
    assert str(event["STATUS"]) == "TENTATIVE"
    assert str(event["SUMMARY"]) == "Intro call — Acme (Staff SRE)"
    description = str(event["DESCRIPTION"])
    assert "Jane Doe <jane@acme.example>" in description
    assert "Staff SRE at Acme — quick chat?" in description
    assert event.decoded("DTSTAMP") == NOW
    assert "Jane Doe" in str(event["CONTACT"])
    assert "ORGANIZER" not in event


def test_utc_offset_is_written_as_utc() -> None:
    ics = _build("2026-12-03T15:00:00Z")
    assert b"DTSTART:20261203T150000Z" in ics
    assert b"DTEND:20261203T153000Z" in ics
    assert b"VTIMEZONE" not in ics


def test_fixed_offset_keeps_wall_clock_and_offset() -> None:
    ics = _build("2026-12-03T15:00:00+02:00", minutes=45)
    cal, event = _event(ics)
    assert b"DTSTART;TZID=UTC+0200:20261203T150000" in ics
    zones = list(cal.walk("VTIMEZONE"))
    assert [str(z["TZID"]) for z in zones] == ["UTC+0200"]
    start, end = event.decoded("DTSTART"), event.decoded("DTEND")
    assert start.utcoffset() == timedelta(hours=2)
    assert start == datetime(2026, 12, 3, 13, 0, tzinfo=UTC)
    assert end - start == timedelta(minutes=45)


def test_negative_half_hour_offset() -> None:
    ics = _build("2026-12-03T09:15:00-03:30")
    _, event = _event(ics)
    assert b"TZID=UTC-0330:20261203T091500" in ics
    assert event.decoded("DTSTART") == datetime(2026, 12, 3, 12, 45, tzinfo=UTC)


def test_named_zone_embeds_vtimezone() -> None:
    start = datetime(2026, 12, 3, 15, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    ics = _build(start)
    cal, event = _event(ics)
    assert b"DTSTART;TZID=Europe/Berlin:20261203T150000" in ics
    assert [str(z["TZID"]) for z in cal.walk("VTIMEZONE")] == ["Europe/Berlin"]
    assert event.decoded("DTSTART") == datetime(2026, 12, 3, 14, 0, tzinfo=UTC)


def test_named_zone_across_a_dst_change_lasts_the_real_duration() -> None:
    start = datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("Europe/Berlin"))  # clocks go 02:00 → 03:00
    ics = _build(start, minutes=60)
    _, event = _event(ics)
    assert b"DTEND;TZID=Europe/Berlin:20260329T033000" in ics
    real = event.decoded("DTEND").astimezone(UTC) - event.decoded("DTSTART").astimezone(UTC)
    assert real == timedelta(hours=1)


def test_summary_without_company_names_the_sender_and_survives_nasty_text() -> None:
    ics = _build("2026-12-03T15:00:00Z", company=None, role="SRE; Lead,\nPlatform")
    _, event = _event(ics)
    assert str(event["SUMMARY"]) == "Intro call — Jane Doe (SRE; Lead, Platform)"


# --- .ics directory ---------------------------------------------------------------------------

async def test_ics_dir_put_is_idempotent(tmp_path: Path) -> None:
    sink = IcsDirCalendar(tmp_path / "events" / "nested")
    assert isinstance(sink, CalendarSink)
    uid = event_uid("k", 0)
    assert not await sink.has_event(uid)
    first = await sink.put_event(uid, _build("2026-12-03T15:00:00Z"))
    second = await sink.put_event(uid, _build("2026-12-04T15:00:00Z"))
    assert first == second and Path(first).parent == tmp_path / "events" / "nested"
    assert await sink.has_event(uid)
    files = list((tmp_path / "events" / "nested").iterdir())
    assert [f.name for f in files] == [f"{uid}.ics"]
    assert b"20261204T150000Z" in files[0].read_bytes()
    await sink.aclose()


async def test_ics_dir_keeps_hostile_uids_inside(tmp_path: Path) -> None:
    sink = IcsDirCalendar(tmp_path)
    ref = await sink.put_event("../../etc/passwd", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    assert Path(ref).parent == tmp_path
    assert safe_file_name("../x") != safe_file_name("__x") or safe_file_name("../x").startswith("_")
    assert safe_file_name("a/b") != safe_file_name("a_b")


async def test_ics_dir_unwritable_is_transient(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(DependencyUnavailable) as info:
        await IcsDirCalendar(blocker / "events").put_event("u", b"x")
    assert info.value.dependency == "ics_dir"


# --- CalDAV on a real Radicale ----------------------------------------------------------------

def _caldav(radicale: Radicale, name: str, password: str | None = None, timeout: float = 10) -> CalDavCalendar:
    return CalDavCalendar(radicale.url, radicale.username, password or radicale.password, name,
                          timeout=timeout)


async def test_caldav_creates_calendar_and_puts_once(radicale: Radicale) -> None:
    name = f"Recruiting {uuid.uuid4().hex[:6]}"
    assert radicale.calendar_dir(name) is None
    sink = _caldav(radicale, name)
    uid = event_uid("caldav@test", 0)
    try:
        assert not await sink.has_event(uid)
        assert radicale.calendar_dir(name) is not None  # created on first use
        ref = await sink.put_event(uid, _build("2026-12-03T15:00:00+02:00", uid=uid))
        again = await sink.put_event(uid, _build("2026-12-03T16:00:00+02:00", uid=uid))
        assert ref == again and ref.startswith(radicale.url)
        assert await sink.has_event(uid)
        assert not await sink.has_event(event_uid("caldav@test", 1))
    finally:
        await sink.aclose()
    stored = radicale.events(name)
    assert len(stored) == 1
    _, event = _event(stored[0])
    assert str(event["UID"]) == uid
    assert event.decoded("DTSTART") == datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    assert event.decoded("DTSTART").utcoffset() == timedelta(hours=2)


async def test_caldav_finds_existing_calendar_by_name(radicale: Radicale) -> None:
    name = f"Interviews {uuid.uuid4().hex[:6]}"
    first, second = _caldav(radicale, name), _caldav(radicale, name)
    try:
        url = await first.calendar_url()
        before = radicale.calendar_names()
        assert await second.calendar_url() == url
        berlin = datetime(2026, 12, 3, 15, tzinfo=ZoneInfo("Europe/Berlin"))
        await second.put_event(event_uid("x", 0), _build(berlin, uid=event_uid("x", 0)))
        assert radicale.calendar_names() == before
    finally:
        await first.aclose()
        await second.aclose()
    assert len(radicale.events(name)) == 1


async def test_caldav_wrong_password_is_permanent(radicale: Radicale) -> None:
    sink = _caldav(radicale, "Recruiting", password="not-the-password")
    try:
        with pytest.raises(PermanentError) as info:
            await sink.put_event(event_uid("x", 0), _build("2026-12-03T15:00:00Z"))
    finally:
        await sink.aclose()
    assert info.value.reason == "caldav_4xx" and info.value.status == 401
    assert "not-the-password" not in str(info.value)
    assert info.value.__cause__ is not None


async def test_caldav_server_down_is_transient(radicale: Radicale) -> None:
    name = f"Down {uuid.uuid4().hex[:6]}"
    cached = _caldav(radicale, name, timeout=3)
    await cached.calendar_url()
    radicale.stop()
    fresh = _caldav(radicale, name, timeout=3)
    try:
        with pytest.raises(DependencyUnavailable) as info:
            await fresh.put_event(event_uid("x", 0), _build("2026-12-03T15:00:00Z"))
        assert info.value.dependency == "caldav"
        with pytest.raises(DependencyUnavailable):
            await cached.put_event(event_uid("x", 0), _build("2026-12-03T15:00:00Z"))
        with pytest.raises(DependencyUnavailable):
            await cached.has_event(event_uid("x", 0))
    finally:
        radicale.start()
        await fresh.aclose()
    assert await cached.has_event(event_uid("x", 0)) is False  # recovers with the server
    await cached.aclose()


class _Answer500(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _fail(self) -> None:
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PUT = do_PROPFIND = do_OPTIONS = do_REPORT = _fail


@pytest.fixture
def broken_dav() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer500)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


async def test_caldav_5xx_is_transient(broken_dav: str) -> None:
    sink = CalDavCalendar(broken_dav, "cal", "calpass", "Recruiting", timeout=5)
    try:
        with pytest.raises(DependencyUnavailable) as info:
            await sink.put_event(event_uid("x", 0), _build("2026-12-03T15:00:00Z"))
    finally:
        await sink.aclose()
    assert info.value.dependency == "caldav"


@pytest.mark.parametrize(
    ("status", "expected"),
    [(500, DependencyUnavailable), (503, DependencyUnavailable), (408, DependencyUnavailable),
     (429, DependencyUnavailable), (400, PermanentError), (403, PermanentError), (404, PermanentError),
     (412, PermanentError)],
)
def test_status_mapping(status: int, expected: type[Exception]) -> None:
    error = _status_error(status, "put event")
    assert type(error) is expected
    if isinstance(error, PermanentError):
        assert error.reason == "caldav_4xx" and error.status == status
    else:
        assert isinstance(error, TransientError) and error.status == status



async def test_caldav_recreates_a_calendar_deleted_behind_its_back(radicale: Radicale) -> None:
    name = f"Deleted {uuid.uuid4().hex[:6]}"
    sink = _caldav(radicale, name)
    try:
        await sink.put_event(event_uid("d", 0), _build("2026-12-03T15:00:00Z", uid=event_uid("d", 0)))
        folder = radicale.calendar_dir(name)
        assert folder is not None
        shutil.rmtree(folder)
        await sink.put_event(event_uid("d", 1), _build("2026-12-03T16:00:00Z", uid=event_uid("d", 1)))
    finally:
        await sink.aclose()
    assert len(radicale.events(name)) == 1


def test_hostile_mail_text_cannot_break_the_event() -> None:
    mail = _mail(subject="x\udc80\x00y\r\nBEGIN:VEVENT\r\nUID:evil" + "z" * 5000, from_name="A\nB")
    meeting = Meeting.model_validate({"start": "2026-12-03T15:00:00Z", "title": "Call\r\nEND:VEVENT"})
    ics = build_event(uid="u@x", meeting=meeting, triage=_triage(), mail=mail, now=NOW)
    _, event = _event(ics)  # still exactly one VEVENT
    assert str(event["UID"]) == "u@x"
    assert "BEGIN:VEVENT UID:evil" in str(event["DESCRIPTION"])
    assert len(str(event["DESCRIPTION"])) < 2000
