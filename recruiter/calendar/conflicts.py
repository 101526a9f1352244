"""What is already on the owner's calendars at a proposed time (issue 16, point 2).

:func:`busy_in` turns iCalendar data (as a CalDAV time-range REPORT or an ``.ics`` file gives it) into
:class:`Busy` intervals, recurrences expanded; :class:`SlotCheck` is the answer for one proposed slot,
kept between stages as JSON (a side-effect record) and told on the card by :func:`conflict_lines`.

Times: an event with a zone (or UTC) is an instant; an all-day event (dates) and a floating one (no zone)
are read in the zone of the proposed slot (the owner's calendar has no zone of its own here). A slot and
an event that only touch (one ends when the other starts) do not conflict. Cancelled events do not count.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

import icalendar
import structlog

# A window this much wider on each side is asked of the server, then cut exactly here: floating and
# all-day events are compared by the server in its own idea of time, which may be off by a zone's offset.
log = structlog.get_logger()

MARGIN = timedelta(days=1)
_SUMMARY_CHARS = 120


@dataclass(frozen=True)
class Busy:
    """One event (or one occurrence of a recurring event) already on a calendar."""

    start: datetime  # aware
    end: datetime  # aware, >= start
    summary: str
    uid: str = ""
    all_day: bool = False


@dataclass(frozen=True)
class SlotCheck:
    """The conflict check of one proposed slot: ``checked`` False when the calendar could not be asked."""

    start: datetime
    end: datetime
    checked: bool
    overlaps: tuple[Busy, ...] = field(default=())
    all_day: bool = False

    @property
    def conflicting(self) -> bool:
        return bool(self.overlaps)

    def to_json(self) -> str:
        return json.dumps({
            "start": self.start.isoformat(), "end": self.end.isoformat(), "checked": self.checked,
            "all_day": self.all_day,
            "overlaps": [{"start": b.start.isoformat(), "end": b.end.isoformat(), "summary": b.summary,
                          "all_day": b.all_day} for b in self.overlaps],
        }, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> SlotCheck:
        data = json.loads(text)
        return cls(start=datetime.fromisoformat(data["start"]), end=datetime.fromisoformat(data["end"]),
                   checked=bool(data["checked"]), all_day=bool(data.get("all_day")),
                   overlaps=tuple(Busy(start=datetime.fromisoformat(b["start"]), end=datetime.fromisoformat(b["end"]),
                                       summary=str(b.get("summary", "")), all_day=bool(b.get("all_day")))
                                  for b in data.get("overlaps", [])))


def slot_bounds(start: date | datetime, end: date | datetime) -> tuple[datetime, datetime, bool]:
    """A proposed slot as aware instants (dates: whole days in UTC; floating: UTC) and whether it is all-day."""
    if not isinstance(start, datetime):
        zone: tzinfo = UTC
        return _instant(start, zone), _instant(end if end > start else start + timedelta(days=1), zone), True
    zone = start.tzinfo or UTC
    return _instant(start, zone), _instant(end, zone), False


def _instant(value: date | datetime, zone: tzinfo) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    return datetime.combine(value, time(), zone)


def _clean(value: Any) -> str:
    text = str(value or "").encode("utf-8", "replace").decode("utf-8")
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text[:_SUMMARY_CHARS]


def _interval(event: icalendar.cal.Component, zone: tzinfo) -> Busy | None:
    """The event's interval, or None when it has no start or is cancelled."""
    if str(event.get("STATUS", "")).upper() == "CANCELLED" or event.get("DTSTART") is None:
        return None
    raw_start = event.decoded("DTSTART")
    all_day = not isinstance(raw_start, datetime)
    if event.get("DTEND") is not None:
        raw_end = event.decoded("DTEND")
    elif event.get("DURATION") is not None:
        raw_end = raw_start + event.decoded("DURATION")
    else:  # RFC 5545: a date lasts one day, a date-time is a point in time
        raw_end = raw_start + timedelta(days=1) if all_day else raw_start
    start, end = _instant(raw_start, zone), _instant(raw_end, zone)
    return Busy(start=start, end=max(start, end), summary=_clean(event.get("SUMMARY")) or "(no title)",
                uid=str(event.get("UID", "")), all_day=all_day)


def overlaps(busy: Busy, start: datetime, end: datetime) -> bool:
    """Whether ``busy`` takes time inside [start, end): touching at an edge is not an overlap."""
    return busy.start < end and busy.end > start


@dataclass(frozen=True)
class DaySpan:
    """The days a calendar's events can touch: a cheap test before expanding it for a time range.

    ``None`` bounds mean "any day" (a recurring event, or dates that could not be read): the calendar is
    always expanded. Days are read in each event's own zone, so the test is widened by two days."""

    first: date | None
    last: date | None

    @classmethod
    def of(cls, calendar: icalendar.Calendar) -> DaySpan:
        days: list[date] = []
        try:
            for event in calendar.walk("VEVENT"):
                if "RRULE" in event or "RDATE" in event:
                    return cls(None, None)
                begin = event.decoded("DTSTART")
                finish = event.decoded("DTEND") if "DTEND" in event else (
                    begin + event.decoded("DURATION") if "DURATION" in event else begin)
                days += [d.date() if isinstance(d, datetime) else d for d in (begin, finish)]
            if not all(isinstance(d, date) for d in days):  # a value the library left as text
                return cls(None, None)
            return cls(min(days), max(days)) if days else cls(date.max, date.min)
        except Exception:  # any date we cannot read (or a value that is no date): expand it every time
            return cls(None, None)

    def may_touch(self, start: datetime, end: datetime) -> bool:
        """Whether an event of the calendar may overlap [start, end) (never False when it does)."""
        if self.first is None or self.last is None:
            return True
        widen = MARGIN + timedelta(days=2)
        return self.first <= (end + widen).date() and self.last >= (start - widen).date()


def busy_in(calendars: Iterable[icalendar.Calendar], start: datetime, end: datetime, *,
            ignore_uids: frozenset[str] = frozenset()) -> list[Busy]:
    """Every event of ``calendars`` (recurrences expanded) that overlaps [start, end), except ``ignore_uids``."""
    import recurring_ical_events

    zone = start.tzinfo or UTC
    found: dict[tuple[str, datetime, datetime, str], Busy] = {}
    for calendar in calendars:
        try:
            busy_here = [busy for event in recurring_ical_events.of(calendar).between(start - MARGIN, end + MARGIN)
                         if event.name == "VEVENT" and str(event.get("UID", "")) not in ignore_uids
                         and (busy := _interval(event, zone)) is not None and overlaps(busy, start, end)]
        except Exception as exc:  # one event we cannot read (a date that is text, a broken rule): skip it alone
            log.warning("conflicts.unreadable_event", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            continue
        for busy in busy_here:
            found.setdefault((busy.uid, busy.start, busy.end, busy.summary), busy)
    return sorted(found.values(), key=lambda b: (b.start, b.end, b.summary))


def _when(start: datetime, end: datetime, all_day: bool) -> str:
    if all_day:
        last = (end - timedelta(days=1)).date() if end - start >= timedelta(days=1) else start.date()
        return f"{start:%a %d %b}" + (f"–{last:%a %d %b}" if last != start.date() else "") + " (all day)"
    until = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%a %d %b %H:%M}"
    return f"{start:%a %d %b %H:%M}–{until}"


def conflict_lines(checks: Iterable[SlotCheck], limit: int = 6) -> list[str]:
    """The card's lines, plain text: ``⚠️ Tue 12 Jan 10:00–10:30 overlaps "Dentist"`` per conflicting slot,
    ``conflicts not checked`` for a slot the calendar could not be asked about, ``✅ no conflicts`` when every
    slot was checked and none overlaps anything. Times in the slot's zone."""
    checks = list(checks)
    lines: list[str] = []
    for check in checks:
        zone = check.start.tzinfo or UTC
        when = _when(check.start, check.end.astimezone(zone), check.all_day)
        if not check.checked:
            lines.append(f"❔ {when}: conflicts not checked (calendar unreachable)")
        elif check.overlaps:
            names = ", ".join(f'"{b.summary}"' for b in check.overlaps[:3])
            more = f" and {len(check.overlaps) - 3} more" if len(check.overlaps) > 3 else ""
            lines.append(f"⚠️ {when} overlaps {names}{more}")
    if checks and not lines:
        lines.append("✅ no conflicts on your calendars")
    if len(lines) > limit:
        lines = [*lines[:limit - 1], f"… and {len(lines) - limit + 1} more"]
    return lines


def conflict_marker(check: SlotCheck) -> str:
    """The prefix of a conflicting tentative event's SUMMARY (empty when nothing overlaps)."""
    if not check.overlaps:
        return ""
    return f"⚠️ conflict: {check.overlaps[0].summary} — "
