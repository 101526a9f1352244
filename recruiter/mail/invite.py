"""Calendar invitations: the meeting's real times from a mail's ``text/calendar`` parts.

ATS and scheduling tools send a VCALENDAR with ``METHOD:REQUEST``; its VEVENTs hold the start, end,
time zone and organizer the recruiter actually booked, which beats any guess from the mail's prose.
One parser serves every tier: the calendar stage, the card and the rules classifier.

Times come out as they were written:
- ``DTSTART;TZID=…`` with a VTIMEZONE (Outlook's "W. Europe Standard Time") or an IANA name: an aware
  datetime; a Windows zone name is mapped to its IANA zone so the event keeps DST rules;
- ``…Z``: UTC;
- no TZID, or a TZID nobody defines: floating (naive) — the attendee's local wall-clock time;
- ``VALUE=DATE``: an all-day event (dates, DTEND exclusive).
Unreadable calendar data is ignored with one ``invitation.unreadable`` log line, never an error.
"""

from __future__ import annotations

import functools
import pickle
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import structlog
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from recruiter.mail.parse import ParsedMail, parse_message
from recruiter.model import Meeting

log = structlog.get_logger()

# REQUEST is an invitation; PUBLISH/ADD or no METHOD is an .ics "add to calendar" file with the same
# facts. CANCEL, REPLY, COUNTER and the rest do not propose a meeting.
PROPOSING_METHODS = frozenset({"", "REQUEST", "PUBLISH", "ADD"})
MAX_INVITATIONS = 10
_MAX_PART_CHARS = 200_000
_MAX_TEXT = 200


@dataclass(frozen=True)
class Invitation:
    """One VEVENT of an invitation, as the organizer wrote it.

    ``start``/``end`` are aware datetimes (zoned or UTC), naive datetimes (``floating``) or dates
    (``all_day``; ``end`` exclusive). ``tzid`` is the zone's name as written (or "UTC"), else "".
    """

    uid: str
    summary: str
    start: datetime | date
    end: datetime | date
    tzid: str
    organizer: str  # the address, without "mailto:"; "" when there is none
    organizer_name: str
    location: str
    method: str

    @property
    def all_day(self) -> bool:
        """True for a date-only event."""
        return not isinstance(self.start, datetime)

    @property
    def floating(self) -> bool:
        """True for a time without a zone: the same wall-clock time wherever the attendee is."""
        return isinstance(self.start, datetime) and self.start.tzinfo is None

    def as_meeting(self) -> Meeting | None:
        """The invitation as the triage schema's Meeting; None for all-day or floating times, which
        have no instant (Meeting.start must carry a UTC offset)."""
        if self.all_day or self.floating:
            return None
        assert isinstance(self.start, datetime) and isinstance(self.end, datetime)
        minutes = int((self.end - self.start).total_seconds() // 60)
        return Meeting(start=self.start, duration_minutes=min(max(minutes, 5), 480),
                       title=self.summary or "Meeting")


def invitations(parts: tuple[str, ...] | list[str]) -> list[Invitation]:
    """Every proposed event in ``parts`` (decoded ``text/calendar`` parts), duplicates (the same
    invite inline and as ``invite.ics``) removed, at most ``MAX_INVITATIONS``, in order. Parts read
    in a helper process (:func:`read_mail`, :func:`remember`) are not parsed again here."""
    if not parts:
        return []
    key = tuple(parts)
    known = _KNOWN.get(key)
    if known is not None:
        _KNOWN.move_to_end(key)
        return list(known)
    return list(_invitations(key))


def remember(parts: tuple[str, ...], found: tuple[Invitation, ...]) -> None:
    """What :func:`read_mail` found in ``parts`` in a helper process: :func:`invitations` answers it
    from here (the worker's stages and the card ask while the message is leased)."""
    _KNOWN[parts] = found
    _KNOWN.move_to_end(parts)
    while len(_KNOWN) > _KNOWN_SIZE:
        _KNOWN.popitem(last=False)


def read_mail(raw: bytes, *, max_text_chars: int, max_bytes: int) -> tuple[ParsedMail, tuple[Invitation, ...] | None]:
    """``parse_message`` and the invitations of the mail's calendar parts, for a helper process under
    the CPU budget: icalendar takes ~0.5 s of CPU for 140 KB of properties, and the stages would
    otherwise parse on the event loop. None when there are none, or they cannot be sent back."""
    mail = parse_message(raw, max_text_chars=max_text_chars, max_bytes=max_bytes)
    if not mail.calendar_parts:
        return mail, None
    found = _invitations(mail.calendar_parts)
    try:
        pickle.dumps(found)
    except Exception:  # a time zone object that does not pickle: the service reads them itself
        return mail, None
    return mail, found


_KNOWN: OrderedDict[tuple[str, ...], tuple[Invitation, ...]] = OrderedDict()
_KNOWN_SIZE = 64


@functools.lru_cache(maxsize=32)
def _invitations(parts: tuple[str, ...]) -> tuple[Invitation, ...]:
    # Cached: triage, the calendar stage and the card all ask about the same mail; parse (and log
    # an unreadable part) once.
    found: dict[tuple[str, str], Invitation] = {}
    for part in parts:
        for invitation in _read_part(part):
            found.setdefault((invitation.uid, str(invitation.start)), invitation)
    return tuple(found.values())[:MAX_INVITATIONS]


def invitation_meetings(parts: tuple[str, ...] | list[str]) -> list[Meeting]:
    """The zoned invitations as Meetings (what the rules tier proposes)."""
    meetings = (invitation.as_meeting() for invitation in invitations(parts))
    return [meeting for meeting in meetings if meeting is not None]


def _read_part(part: str) -> list[Invitation]:
    try:
        calendar = icalendar.Calendar.from_ical(part[:_MAX_PART_CHARS])
        method = str(calendar.get("METHOD", "")).strip().upper()
        if method not in PROPOSING_METHODS:
            return []
        events = [_event(event, method) for event in calendar.walk("VEVENT")]
    except Exception as exc:  # icalendar's errors on hostile input are many and undocumented
        log.warning("invitation.unreadable", error=f"{type(exc).__name__}: {str(exc)[:200]}")
        return []
    return [event for event in events if event is not None]


def _event(event: icalendar.cal.Component, method: str) -> Invitation | None:
    if event.get("DTSTART") is None:
        log.warning("invitation.unreadable", error="VEVENT without DTSTART")
        return None
    assert isinstance(event, icalendar.Event)
    start, end = event.start, event.end  # icalendar derives end from DURATION or the all-day rule
    tzid = str(event.get("DTSTART").params.get("TZID", "")).strip()
    start, end = _zoned(start, tzid), _zoned(end, tzid)
    if isinstance(start, datetime) != isinstance(end, datetime) or end < start:
        end = start + (timedelta(days=1) if not isinstance(start, datetime) else timedelta(minutes=30))
    organizer = event.get("ORGANIZER")
    address = str(organizer or "").strip()
    if address.lower().startswith("mailto:"):
        address = address[7:]
    name = str(organizer.params.get("CN", "")) if organizer is not None else ""
    return Invitation(
        uid=_text(event.get("UID", "")),
        summary=_text(event.get("SUMMARY", "")),
        start=start,
        end=end,
        tzid=_tzid_label(start, tzid),
        organizer=_text(address).lower(),
        organizer_name=_text(name),
        location=_text(event.get("LOCATION", "")),
        method=method,
    )


def _zoned(value: datetime | date, tzid: str) -> datetime | date:
    """A Windows zone name mapped to its IANA zone (keeps DST rules when written back); else as is."""
    if not isinstance(value, datetime) or value.tzinfo is None or isinstance(value.tzinfo, ZoneInfo):
        return value
    iana = WINDOWS_TO_OLSON.get(tzid) or (tzid if "/" in tzid else "")
    zone = _zone(iana)
    if zone is None:
        return value
    return value.astimezone(zone)


def _zone(name: str) -> tzinfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _tzid_label(start: datetime | date, tzid: str) -> str:
    if not isinstance(start, datetime) or start.tzinfo is None:
        return ""
    if start.utcoffset() == timedelta(0) and (not tzid or start.tzinfo is UTC):
        return "UTC"
    if isinstance(start.tzinfo, ZoneInfo):
        return start.tzinfo.key
    return _text(tzid) or "UTC"


def _text(value: object) -> str:
    text = str(value).encode("utf-8", "replace").decode("utf-8")
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:_MAX_TEXT]
