"""Calendar invitations: the real start, end, zone and organizer, parsed from the mail's text/calendar parts,
written to a real Radicale instead of the LLM's guess, and named as such on the card."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from recruiter.app import process_paths
from recruiter.calendar.ics import build_invitation_event
from recruiter.mail import invite as invite_module
from recruiter.mail.invite import invitation_meetings, invitations
from recruiter.mail.parse import parse_message
from recruiter.model import Meeting, TriageResult
from recruiter.notify.card import invitation_line, render_card
from recruiter.settings import settings_from
from recruiter.store.migrate import upgrade_head
from tests.servers.fake_llm import FakeLLM
from tests.servers.radicale import Radicale

OUTLOOK_TZ = """BEGIN:VTIMEZONE\r
TZID:W. Europe Standard Time\r
BEGIN:STANDARD\r
DTSTART:16010101T030000\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\r
END:STANDARD\r
BEGIN:DAYLIGHT\r
DTSTART:16010101T020000\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3\r
END:DAYLIGHT\r
END:VTIMEZONE\r
"""
CUSTOM_TZ = """BEGIN:VTIMEZONE\r
TZID:Recruiter Standard Time\r
BEGIN:STANDARD\r
DTSTART:19700101T000000\r
TZOFFSETFROM:+0530\r
TZOFFSETTO:+0530\r
END:STANDARD\r
END:VTIMEZONE\r
"""


def vcalendar(*events: str, method: str = "REQUEST", timezones: str = "") -> str:
    head = f"BEGIN:VCALENDAR\r\nPRODID:-//ATS//EN\r\nVERSION:2.0\r\nMETHOD:{method}\r\n{timezones}"
    return head + "".join(events) + "END:VCALENDAR\r\n"


def vevent(uid: str, start: str, end: str = "", *, summary: str = "Interview", extra: str = "") -> str:
    lines = [f"UID:{uid}", f"SUMMARY:{summary}", start, *([end] if end else []),
             "ORGANIZER;CN=Jane Recruiter:mailto:Jane@Acme-Talent.example", "LOCATION:Video call", extra]
    return "BEGIN:VEVENT\r\n" + "".join(f"{line}\r\n" for line in lines if line) + "END:VEVENT\r\n"


# --- parsing ---------------------------------------------------------------------------------------

def test_tzid_with_vtimezone_gives_the_real_zone_and_organizer() -> None:
    ics = vcalendar(vevent("a", "DTSTART;TZID=W. Europe Standard Time:20260703T150000",
                           "DTEND;TZID=W. Europe Standard Time:20260703T160000"), timezones=OUTLOOK_TZ)
    [invite] = invitations((ics,))
    assert invite.start == datetime(2026, 7, 3, 13, tzinfo=UTC)  # CEST: +02:00
    assert invite.start.utcoffset() == timedelta(hours=2)
    assert invite.start.tzinfo == ZoneInfo("Europe/Berlin")  # the Windows name mapped: DST rules survive
    assert invite.end - invite.start == timedelta(hours=1)
    assert (invite.tzid, invite.organizer, invite.organizer_name) == (
        "Europe/Berlin", "jane@acme-talent.example", "Jane Recruiter")
    assert (invite.summary, invite.location, invite.method) == ("Interview", "Video call", "REQUEST")
    assert not invite.all_day and not invite.floating


def test_iana_tzid_utc_and_duration() -> None:
    ics = vcalendar(
        vevent("a", "DTSTART;TZID=America/New_York:20261208T090000", "DURATION:PT45M"),
        vevent("b", "DTSTART:20261208T130000Z", "DTEND:20261208T133000Z", summary="Second round"),
    )
    first, second = invitations((ics,))
    assert first.start == datetime(2026, 12, 8, 14, tzinfo=UTC)
    assert first.tzid == "America/New_York" and first.end - first.start == timedelta(minutes=45)
    assert second.start == datetime(2026, 12, 8, 13, tzinfo=UTC) and second.tzid == "UTC"
    assert [m.title for m in invitation_meetings((ics,))] == ["Interview", "Second round"]


def test_a_zone_only_the_invitation_defines_keeps_its_offset() -> None:
    ics = vcalendar(vevent("a", "DTSTART;TZID=Recruiter Standard Time:20261208T100000",
                           "DTEND;TZID=Recruiter Standard Time:20261208T110000"), timezones=CUSTOM_TZ)
    [invite] = invitations((ics,))
    assert isinstance(invite.start, datetime)
    assert invite.start.utcoffset() == timedelta(hours=5, minutes=30)
    assert invite.start == datetime(2026, 12, 8, 4, 30, tzinfo=UTC)
    assert invite.tzid == "Recruiter Standard Time"


def test_floating_and_all_day_are_kept_as_written_but_are_no_meeting_instant() -> None:
    ics = vcalendar(vevent("f", "DTSTART:20261208T100000", "DTEND:20261208T110000"),
                    vevent("d", "DTSTART;VALUE=DATE:20261210", summary="Onsite day"))
    floating, all_day = invitations((ics,))
    assert floating.floating and floating.start == datetime(2026, 12, 8, 10) and floating.tzid == ""
    assert all_day.all_day and (all_day.start, all_day.end) == (date(2026, 12, 10), date(2026, 12, 11))
    assert invitation_meetings((ics,)) == []  # the triage schema needs an instant


def test_the_same_invite_inline_and_attached_counts_once_and_cancel_or_reply_is_ignored() -> None:
    ics = vcalendar(vevent("same", "DTSTART:20261208T130000Z", "DTEND:20261208T133000Z"))
    assert len(invitations((ics, ics))) == 1
    assert invitations((ics.replace("METHOD:REQUEST", "METHOD:CANCEL"),)) == []
    assert invitations((ics.replace("METHOD:REQUEST", "METHOD:REPLY"),)) == []


@pytest.mark.parametrize("broken", [
    "not a calendar at all",
    "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nDTSTART:2026-99-99\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nSUMMARY:no start\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n",
])
def test_broken_ics_is_ignored_with_a_log_line(broken: str) -> None:
    invite_module._invitations.cache_clear()
    with capture_logs() as logs:
        assert invitations((broken,)) == []
        assert invitations((broken,)) == []  # asked again (stage, card): parsed and logged once
    assert [entry["event"] for entry in logs] == ["invitation.unreadable"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([
    "BEGIN:VCALENDAR", "END:VCALENDAR", "BEGIN:VEVENT", "END:VEVENT", "METHOD:REQUEST", "DTSTART:20261208T130000Z",
    "DTSTART;TZID=Nowhere/Else:20261208T130000", "DTEND:20261208T120000Z", "DTSTART;VALUE=DATE:2026120",
    "DURATION:-PT5M", "ORGANIZER:", "BEGIN:VTIMEZONE", "TZID:X", "END:VTIMEZONE", "SUMMARY:\u202e", " folded",
]) | st.text(max_size=40), max_size=25))
def test_any_calendar_text_gives_invitations_or_nothing(lines: list[str]) -> None:
    for invite in invitations(("\r\n".join(lines),)):
        assert invite.end >= invite.start  # type: ignore[operator]
        assert invitation_line(invite)
        invite.as_meeting()
        icalendar.Calendar.from_ical(build_invitation_event(uid="u@x", invitation=invite, triage=_triage(),
                                                            mail=parse_message(b"From: a@b.example\r\n\r\nx\r\n")))


def test_hostile_text_in_the_invitation_is_one_clean_bounded_line() -> None:
    ics = vcalendar(vevent("x" * 5000, "DTSTART:20261208T130000Z", summary="A\u202eB\x07" + "z" * 5000))
    [invite] = invitations((ics,))
    assert len(invite.uid) <= 200 and len(invite.summary) <= 200
    assert "\u202e" not in invite.summary and "\x07" not in invite.summary


# --- the event written from an invitation -------------------------------------------------------

def _triage() -> TriageResult:
    return TriageResult(is_recruiter=True, confidence=0.9, kind="scheduling", company="Acme",
                        meetings=[Meeting(start=datetime(2030, 1, 1, 9, tzinfo=UTC), title="LLM guess")])


def _only_event(ics: bytes) -> icalendar.Event:
    [event] = icalendar.Calendar.from_ical(ics).walk("VEVENT")
    assert isinstance(event, icalendar.Event)
    return event


@pytest.mark.parametrize(("start", "end", "timezones", "expected_start", "expected_end"), [
    ("DTSTART;TZID=W. Europe Standard Time:20260703T150000", "DTEND;TZID=W. Europe Standard Time:20260703T160000",
     OUTLOOK_TZ, datetime(2026, 7, 3, 15, tzinfo=ZoneInfo("Europe/Berlin")),
     datetime(2026, 7, 3, 16, tzinfo=ZoneInfo("Europe/Berlin"))),
    ("DTSTART:20261208T130000Z", "DTEND:20261208T134500Z", "",
     datetime(2026, 12, 8, 13, tzinfo=UTC), datetime(2026, 12, 8, 13, 45, tzinfo=UTC)),
    ("DTSTART;TZID=Recruiter Standard Time:20261208T100000", "DTEND;TZID=Recruiter Standard Time:20261208T110000",
     CUSTOM_TZ, datetime(2026, 12, 8, 10, tzinfo=timezone(timedelta(hours=5, minutes=30))),
     datetime(2026, 12, 8, 11, tzinfo=timezone(timedelta(hours=5, minutes=30)))),
    ("DTSTART:20261208T100000", "DTEND:20261208T110000", "", datetime(2026, 12, 8, 10), datetime(2026, 12, 8, 11)),
    ("DTSTART;VALUE=DATE:20261210", "DTEND;VALUE=DATE:20261212", "", date(2026, 12, 10), date(2026, 12, 12)),
])
def test_event_keeps_the_invitation_times(start: str, end: str, timezones: str, expected_start: object,
                                          expected_end: object) -> None:
    [invite] = invitations((vcalendar(vevent("a", start, end), timezones=timezones),))
    mail = parse_message(b"From: Jane <jane@acme.example>\r\nSubject: Interview\r\n\r\nSee invite.\r\n")
    event = _only_event(build_invitation_event(uid="ours@recruiter-responder", invitation=invite,
                                               triage=_triage(), mail=mail))
    got_start, got_end = event.decoded("DTSTART"), event.decoded("DTEND")
    assert (got_start, got_end) == (expected_start, expected_end)
    if isinstance(expected_start, datetime) and expected_start.tzinfo is not None:
        assert got_start.utcoffset() == expected_start.utcoffset()
    assert type(got_start) is type(expected_start)
    assert str(event["UID"]) == "ours@recruiter-responder"
    assert str(event["STATUS"]) == "TENTATIVE" and "ORGANIZER" not in event
    assert "Jane Recruiter <jane@acme-talent.example>" in str(event["CONTACT"])
    assert "from the calendar invitation" in str(event["DESCRIPTION"])


# --- the card and the whole pipeline against a real Radicale ------------------------------------

def invitation_mail(ics: str, *, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Jane Recruiter <jane@acme-talent.example>"
    msg["To"] = "me@example.org"
    msg["Subject"] = "Interview invitation: Staff SRE at Acme"
    msg["Date"] = format_datetime(datetime(2026, 11, 20, 9, tzinfo=UTC))
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@acme-talent.example>"
    msg.set_content(body)
    msg.add_alternative(ics.encode(), maintype="text", subtype="calendar", params={"method": "REQUEST"})
    msg.add_attachment(ics.encode(), maintype="application", subtype="ics", filename="invite.ics")
    return bytes(msg)


def test_card_shows_the_invitation_times_not_the_models_guess() -> None:
    ics = vcalendar(vevent("a", "DTSTART;TZID=W. Europe Standard Time:20261203T150000",
                           "DTEND;TZID=W. Europe Standard Time:20261203T160000"), timezones=OUTLOOK_TZ)
    mail = parse_message(invitation_mail(ics, body="Hi, I'm recruiting for Acme; the invite is attached."))
    card = render_card(mail=mail, triage=_triage(), draft="Thanks", mailbox="me", tier="llama-swap")
    assert "📅 from the invitation" in card and "organizer Jane Recruiter" in card
    assert "Thu 03 Dec 2026 15:00–16:00 CET (Europe/Berlin) · Interview" in card
    assert "2030" not in card and "LLM guess" not in card


async def test_pipeline_puts_the_invitation_times_on_radicale(
    tmp_path: Path, db_url: str, radicale: Radicale, fake_llm: FakeLLM,
) -> None:
    calendar = f"Invites {uuid.uuid4().hex[:6]}"
    ics = vcalendar(
        vevent("first", "DTSTART;TZID=W. Europe Standard Time:20261203T150000",
               "DTEND;TZID=W. Europe Standard Time:20261203T161500"),
        vevent("second", "DTSTART;VALUE=DATE:20261210", summary="Onsite day"),
        timezones=OUTLOOK_TZ)
    # The model guesses another time from the prose; the invitation must win.
    mail_path = tmp_path / "invite.eml"
    mail_path.write_bytes(invitation_mail(ics, body="Hi, I'm a recruiter at Acme.\nCompany: Acme\n"
                                                    "MEETING: 2026-12-03T09:00:00+00:00 30\n"))
    settings = settings_from({
        "DB_CONNECTION_STRING": db_url, "LLAMA_SWAP_URL": fake_llm.url, "LLAMA_SWAP_MODEL": "m",
        "CALDAV_URL": radicale.url, "CALDAV_USER": radicale.username, "CALDAV_PASSWORD": radicale.password,
        "CALDAV_CALENDAR": calendar, "DRAFTS_DIR": str(tmp_path / "drafts"),
    })
    await upgrade_head(db_url)
    out = io.StringIO()
    counts = await process_paths(settings, [mail_path], stdout=out)
    assert counts.get("done") == 1, (counts, out.getvalue())
    assert len(fake_llm.triage_requests()) == 1
    # The draft is written from the invitation's time too, not from the model's guess.
    [draft_request] = fake_llm.draft_requests()
    facts = draft_request["messages"][1]["content"].split("\n", 1)[0]
    assert "2026-12-03T15:00:00+01:00" in facts and "09:00" not in facts

    events = sorted((_only_event(raw) for raw in radicale.events(calendar)),
                    key=lambda e: str(e.decoded("DTSTART")))
    assert len(events) == 2
    zoned, all_day = events
    assert zoned.decoded("DTSTART") == datetime(2026, 12, 3, 14, tzinfo=UTC)  # 15:00 CET
    assert zoned.decoded("DTEND") - zoned.decoded("DTSTART") == timedelta(minutes=75)
    assert str(zoned["DTSTART"].params.get("TZID")) == "Europe/Berlin"
    assert all_day.decoded("DTSTART") == date(2026, 12, 10)
    assert all(str(e["STATUS"]) == "TENTATIVE" for e in events)
    card = out.getvalue()
    assert "📅 from the invitation" in card
    assert "15:00–16:15 CET (Europe/Berlin)" in card and "all day · Onsite day" in card
    assert "09:00" not in card
