"""Proposed meeting times for the rules tier: calendar invitations and explicit dates in the text.

A time is taken only when it is unambiguous: a date with a day and a month name (or ISO / German
dotted numerals), a clock time, and an explicit zone ("15:00 GMT", "3pm UK time", "+01:00",
"Europe/Berlin"). No zone, a weekday that contradicts the date, or a date in the past: no meeting.
Never an invented time.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from recruiter.mail.invite import invitation_meetings
from recruiter.model import Meeting
from recruiter.triage.rules_vocab import CITY_ZONES, FIXED_ZONES, MONTHS, WEEKDAYS

_MONTH_OF = {name: number for number, names in MONTHS.items() for name in names}
_WEEKDAY_OF = {name: number for number, names in WEEKDAYS.items() for name in names}
_MONTH = "|".join(sorted(map(re.escape, _MONTH_OF), key=len, reverse=True))
_WEEKDAY = "|".join(sorted(map(re.escape, _WEEKDAY_OF), key=len, reverse=True))

_DATES = (
    re.compile(rf"(?:\b(?P<wd>{_WEEKDAY})\.?,?\s+(?:the\s+|den\s+|le\s+|el\s+)?)?\b(?P<day>\d{{1,2}})"
               rf"(?:st|nd|rd|th|er|\.)?\s+(?:of\s+|de\s+)?(?P<mon>{_MONTH})\b\.?,?(?:\s+(?:de\s+)?(?P<year>\d{{4}}))?",
               re.IGNORECASE),
    re.compile(rf"(?:\b(?P<wd>{_WEEKDAY})\.?,?\s+)?\b(?P<mon>{_MONTH})\b\.?\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b"
               rf",?(?:\s+(?P<year>\d{{4}}))?", re.IGNORECASE),
    re.compile(r"\b(?P<year>\d{4})-(?P<mnum>\d{2})-(?P<day>\d{2})(?=[T ])"),
    re.compile(rf"(?:\b(?P<wd>{_WEEKDAY})\.?,?\s+(?:den\s+)?)?\b(?P<day>\d{{1,2}})\.(?P<mnum>\d{{1,2}})\."
               rf"(?P<year>\d{{4}})\b", re.IGNORECASE),
)
# Zone abbreviations and IANA names are matched case-sensitively: "est" is French for "is".
_ZONE = (r"(?P<zone>(?-i:(?:UTC|GMT)\s?[+-]\s?\d{1,2}(?::?\d{2})?|[+-]\d{2}:?\d{2}|Z\b|[A-Z][a-z]+/[A-Z][A-Za-z_]+|"
         rf"\b(?:{'|'.join(zone.upper() for zone in FIXED_ZONES)})\b)|"
         rf"(?:{'|'.join(sorted(CITY_ZONES, key=len, reverse=True))})\s+(?:time|standard time))")
_TIME = re.compile(
    r"[\s,]*(?:at|@|um|à|a\s+las?|om|alle|às|o|from|,|-|–|T)?\s*"
    r"(?P<hour>\d{1,2})(?:[:.h](?P<min>\d{2}))?(?::(?P<sec>\d{2}))?\s*(?P<ampm>[ap]\.?m\.?)?\s*(?P<suffix>uhr|h)?"
    r"(?:\s*(?:-|–|to|bis)\s*(?P<endh>\d{1,2})(?:[:.h](?P<endm>\d{2}))?\s*(?P<endampm>[ap]\.?m\.?)?)?"
    rf"\s*\(?\s*{_ZONE}",
    re.IGNORECASE,
)
_DURATION = re.compile(r"\b(\d{2,3})[- ]?(?:minutes?|mins?|minuten|minutos|minuti|minut)\b|"
                       r"\b(an|one|1|eine|une|una|uma|een)\s+(?:hour|stunde|heure|hora|ora|uur)\b", re.IGNORECASE)
_LOOKAHEAD = 60


def meetings_from_text(text: str, *, reference: datetime | None, title: str = "Call") -> list[Meeting]:
    """Meetings for each explicit, zoned date-and-time in ``text``, in order, without duplicates and
    not before ``reference`` (the mail's date). Year-less dates take the next occurrence after the
    reference that matches the weekday, if one was given."""
    ref = reference or datetime.now(UTC)
    found: dict[datetime, Meeting] = {}
    for pattern in _DATES:
        for match in pattern.finditer(text):
            meeting = _meeting_at(match, text, ref, title)
            if meeting is not None and meeting.start not in found:
                found[meeting.start] = meeting
    return sorted(found.values(), key=lambda item: item.start)[:10]


def _meeting_at(match: re.Match[str], text: str, ref: datetime, title: str) -> Meeting | None:
    day = _date_of(match, ref)
    clock = _TIME.match(text, match.end(), match.end() + _LOOKAHEAD)
    if day is None or clock is None:
        return None
    start = _start(day, clock)
    if start is None or not ref - timedelta(days=1) <= start <= ref + timedelta(days=400):
        return None
    minutes = _minutes(clock, start) or _duration_near(text, match.start())
    return Meeting(start=start, duration_minutes=minutes, title=title[:200] or "Call")


def _date_of(match: re.Match[str], ref: datetime) -> date | None:
    groups = match.groupdict()
    month = _MONTH_OF.get((groups.get("mon") or "").lower()) or int(groups.get("mnum") or 0)
    day = int(groups["day"])
    weekday = _WEEKDAY_OF.get((groups.get("wd") or "").lower().rstrip("."))
    years = [int(groups["year"])] if groups.get("year") else [ref.year, ref.year + 1]
    for year in years:
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if not groups.get("year") and candidate < ref.date() - timedelta(days=1):
            continue
        if weekday is None or candidate.weekday() == weekday:
            return candidate
        if groups.get("year"):
            return None  # the weekday contradicts the date: ambiguous, take nothing
    return None


def _start(day: date, clock: re.Match[str]) -> datetime | None:
    minute = int(clock["min"] or 0)
    if clock["min"] is None and not clock["ampm"] and not clock["suffix"]:
        return None  # "3 December 2026 15 GMT" is not a time anyone writes; "15h", "3pm" and "15:00" are
    hour = _twelve_hour(int(clock["hour"]), clock["ampm"])
    zone = zone_of(clock["zone"])
    if zone is None or hour is None or not 0 <= hour <= 23 or not 0 <= minute <= 59:
        return None
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)


def _twelve_hour(hour: int, ampm: str | None) -> int | None:
    if not ampm:
        return hour
    if not 1 <= hour <= 12:
        return None
    return hour % 12 + (12 if ampm.lower().startswith("p") else 0)


def zone_of(name: str) -> tzinfo | None:
    """A tzinfo for an explicit zone: "UTC", "GMT+2", "+01:00", "CEST", "Europe/Berlin", "UK time"."""
    text = name.strip()
    lowered = text.lower()
    if lowered in FIXED_ZONES:
        return timezone(timedelta(hours=FIXED_ZONES[lowered]))
    offset = re.fullmatch(r"(?:utc|gmt)?\s?([+-])\s?(\d{1,2}):?(\d{2})?", lowered)
    if offset:
        sign = -1 if offset.group(1) == "-" else 1
        delta = timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3) or 0))
        return timezone(sign * delta) if delta <= timedelta(hours=14) else None
    city = re.sub(r"\s+(?:standard\s+)?time$", "", lowered)
    iana = CITY_ZONES.get(city, text if "/" in text else "")
    try:
        return ZoneInfo(iana) if iana else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _minutes(clock: re.Match[str], start: datetime) -> int | None:
    if clock["endh"] is None:
        return None
    end_hour = _twelve_hour(int(clock["endh"]), clock["endampm"] or clock["ampm"])
    if end_hour is None or end_hour > 23:
        return None
    end = start.replace(hour=end_hour, minute=int(clock["endm"] or 0))
    minutes = int((end - start).total_seconds() // 60)
    return minutes if 5 <= minutes <= 480 else None


def _duration_near(text: str, position: int) -> int:
    window = text[max(0, position - 200):position + 200]
    match = _DURATION.search(window)
    if not match:
        return 30
    minutes = int(match.group(1)) if match.group(1) else 60
    return minutes if 5 <= minutes <= 480 else 30


def meetings_from_calendar(parts: tuple[str, ...]) -> list[Meeting]:
    """One meeting per zoned VEVENT in ``text/calendar`` parts whose METHOD proposes a meeting, read by
    :mod:`recruiter.mail.invite` (the parser the calendar stage and the card use too); floating and
    all-day times give no meeting. Unreadable calendar data gives no meeting, never an error."""
    return invitation_meetings(parts)
