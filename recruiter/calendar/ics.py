"""The iCalendar object for one proposed meeting: a VCALENDAR with one tentative VEVENT.

Time zones: a named zone (``zoneinfo``) is kept with its VTIMEZONE embedded; a UTC offset of zero is
written as UTC (``...Z``); any other fixed offset (what an ISO timestamp like ``+02:00`` parses to)
gets its own small VTIMEZONE, so the wall-clock time and the offset both survive. Without that,
``icalendar`` would write ``TZID="UTC+02:00"`` with no definition, which readers take as floating time.

The sender goes in CONTACT, not ORGANIZER: RFC 5545 reserves ORGANIZER for group-scheduled events,
and a CalDAV server with scheduling may treat one as an invitation to answer.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import icalendar

from recruiter.mail.invite import Invitation
from recruiter.mail.parse import ParsedMail
from recruiter.model import Meeting, TriageResult

PRODID = "-//recruiter-responder//calendar stage//EN"
UID_DOMAIN = "recruiter-responder"
_UTC_KEYS = frozenset({"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Zulu", "Etc/Zulu", "Universal", "Etc/Universal"})


def event_uid(message_key: str, index: int) -> str:
    """The UID of the ``index``-th meeting proposed in the message ``message_key`` (deterministic)."""
    digest = hashlib.sha256(f"{message_key}\n{index}".encode()).hexdigest()
    return f"{digest[:32]}@{UID_DOMAIN}"


def _fixed_offset_name(offset: timedelta) -> str:
    total = int(offset.total_seconds()) // 60
    sign = "+" if total >= 0 else "-"
    hours, minutes = divmod(abs(total), 60)
    return f"UTC{sign}{hours:02d}{minutes:02d}"


def _fixed_vtimezone(name: str, offset: timedelta) -> icalendar.Timezone:
    """A VTIMEZONE for a constant UTC offset (one STANDARD rule, no transitions)."""
    vtz = icalendar.Timezone()
    vtz.add("tzid", name)
    standard = icalendar.TimezoneStandard()
    standard.add("dtstart", datetime(1970, 1, 1))
    standard.add("tzname", name)
    standard.add("tzoffsetfrom", offset)
    standard.add("tzoffsetto", offset)
    vtz.add_component(standard)
    return vtz


def _in_meeting_zone(start: datetime) -> tuple[tzinfo, icalendar.Timezone | None]:
    """The zone to write DTSTART/DTEND in, and a VTIMEZONE to embed for fixed offsets."""
    zone = start.tzinfo
    if isinstance(zone, ZoneInfo) and zone.key and zone.key not in _UTC_KEYS:
        return zone, None  # named zone: icalendar's add_missing_timezones() embeds it
    offset = start.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        return UTC, None
    name = _fixed_offset_name(offset)
    return timezone(offset, name), _fixed_vtimezone(name, offset)


def _text(value: str, limit: int = 500) -> str:
    """Untrusted text as one clean line: no control characters or lone surrogates, capped."""
    value = value.encode("utf-8", "replace").decode("utf-8")
    return " ".join("".join(c if c.isprintable() else " " for c in value).split())[:limit]


def _sender(mail: ParsedMail) -> str:
    return f"{_text(mail.from_name)} <{_text(mail.from_addr)}>" if mail.from_name else _text(mail.from_addr)


def _summary(meeting: Meeting, triage: TriageResult, mail: ParsedMail) -> str:
    """E.g. ``Intro call — Acme (Staff SRE)``; falls back to the sender when the company is unknown."""
    who = triage.company or mail.from_name or mail.from_addr or "recruiter"
    what = f"{who} ({triage.role})" if triage.role else who
    return _text(f"{meeting.title or 'Call'} — {what}", 250)


def _description(triage: TriageResult, mail: ParsedMail) -> str:
    lines = [
        "Tentative: proposed in a recruiter mail, not yet accepted.",
        f"From: {_sender(mail) or 'unknown sender'}",
        f"Subject: {_text(mail.subject)}",
    ]
    if mail.message_id:
        lines.append(f"Message-ID: {_text(mail.message_id)}")
    if triage.summary:
        lines.append(f"Summary: {_text(triage.summary)}")
    return "\n".join(lines)


def build_event(
    *,
    uid: str,
    meeting: Meeting,
    triage: TriageResult,
    mail: ParsedMail,
    now: datetime | None = None,
    mark: str = "",
) -> bytes:
    """One VCALENDAR with one tentative VEVENT for ``meeting``, serialised (CRLF lines); ``mark`` goes before
    the summary (a conflict: ``⚠️ conflict: Dentist — ``)."""
    zone, fixed_vtz = _in_meeting_zone(meeting.start)
    start_utc = meeting.start.astimezone(UTC)
    start = start_utc.astimezone(zone)
    end = (start_utc + timedelta(minutes=meeting.duration_minutes)).astimezone(zone)
    stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)

    contact = _sender(mail) if mail.from_addr else ""
    summary = _text(mark + _summary(meeting, triage, mail), 250)
    return _tentative_event(uid=uid, stamp=stamp, start=start, end=end, summary=summary,
                            description=_description(triage, mail), transparent=False, contact=contact,
                            location="", fixed_vtz=fixed_vtz)


def _tentative_event(
    *, uid: str, stamp: datetime, start: date | datetime, end: date | datetime, summary: str, description: str,
    transparent: bool, contact: str, location: str, fixed_vtz: icalendar.Timezone | None,
) -> bytes:
    """The VCALENDAR both builders write: one TENTATIVE VEVENT in the Recruiting category, with the
    VTIMEZONE its times need (ours for a fixed offset, icalendar's for a named zone)."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    if fixed_vtz is not None:
        cal.add_component(fixed_vtz)
    event = icalendar.Event()
    for name, value in (("uid", uid), ("dtstamp", stamp), ("created", stamp), ("last-modified", stamp),
                        ("dtstart", start), ("dtend", end), ("summary", summary), ("description", description),
                        ("status", "TENTATIVE"), ("transp", "TRANSPARENT" if transparent else "OPAQUE")):
        event.add(name, value)
    event.add("categories", ["Recruiting"])
    if location:
        event.add("location", location)
    if contact:
        event.add("contact", contact)
    cal.add_component(event)
    if isinstance(start, datetime) and start.tzinfo is not None:
        last = end.year if isinstance(end, datetime) else start.year
        cal.add_missing_timezones(first_date=date(start.year - 1, 1, 1), last_date=date(last + 2, 1, 1))
    return bytes(cal.to_ical())


def _invitation_times(invitation: Invitation) -> tuple[date | datetime, date | datetime, icalendar.Timezone | None]:
    """DTSTART/DTEND as the invitation wrote them: dates, floating, UTC, a named zone, or a zone only the
    invitation defined (written as its UTC offset at the start, with a small VTIMEZONE)."""
    start, end = invitation.start, invitation.end
    if not isinstance(start, datetime) or not isinstance(end, datetime) or start.tzinfo is None:
        return start, end, None
    zone, fixed_vtz = _in_meeting_zone(start)
    return start.astimezone(zone), end.astimezone(zone), fixed_vtz


def _organizer(invitation: Invitation, mail: ParsedMail) -> str:
    if invitation.organizer:
        name = _text(invitation.organizer_name)
        return f"{name} <{_text(invitation.organizer)}>" if name else _text(invitation.organizer)
    return _sender(mail)


def build_invitation_event(
    *,
    uid: str,
    invitation: Invitation,
    triage: TriageResult,
    mail: ParsedMail,
    now: datetime | None = None,
    mark: str = "",
) -> bytes:
    """One VCALENDAR with one tentative VEVENT at the times of a calendar invitation in the mail (``mark``
    before its summary, as in :func:`build_event`).

    The organizer goes in CONTACT and the description (not ORGANIZER: see the module docstring), and
    our own ``uid`` replaces the invitation's, so accepting the real invitation in a mail client never
    collides with this tentative copy."""
    start, end, fixed_vtz = _invitation_times(invitation)
    stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    who = triage.company or mail.from_name or mail.from_addr or "recruiter"
    summary = _text(mark + (invitation.summary or f"Call — {who}"), 250)
    lines = [
        "Tentative: from the calendar invitation in a recruiter mail, not yet accepted.",
        f"Organizer: {_organizer(invitation, mail) or 'unknown'}",
        f"From: {_sender(mail) or 'unknown sender'}",
        f"Subject: {_text(mail.subject)}",
    ]
    if invitation.tzid:
        lines.append(f"Time zone: {_text(invitation.tzid)}")
    if mail.message_id:
        lines.append(f"Message-ID: {_text(mail.message_id)}")

    return _tentative_event(uid=uid, stamp=stamp, start=start, end=end, summary=summary,
                            description="\n".join(lines), transparent=invitation.all_day,
                            contact=_organizer(invitation, mail), location=_text(invitation.location or "", 250),
                            fixed_vtz=fixed_vtz)
