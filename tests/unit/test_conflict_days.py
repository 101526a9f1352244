"""The `.ics` directory's conflict check parses each file once and expands only files that may touch the
slot (a backlog writes thousands of events: parsing them all for every slot was quadratic), yet finds
what it found before: a changed file is read again, a recurring event from months ago still counts."""

from __future__ import annotations

import asyncio
import os
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from recruiter.calendar.caldav import IcsDirCalendar
from recruiter.calendar.conflicts import DaySpan

SLOT = datetime(2027, 3, 16, 10, 0, tzinfo=UTC)


def _event(uid: str, start: str, end: str, summary: str, extra: str = "") -> bytes:
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
            f"DTSTAMP:20270101T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:{summary}\r\n{extra}"
            "END:VEVENT\r\nEND:VCALENDAR\r\n").encode()


def test_a_day_span_rules_out_only_far_events() -> None:
    import icalendar

    near = DaySpan.of(icalendar.Calendar.from_ical(_event("a", "20270316T100000Z", "20270316T110000Z", "x")))
    assert near == DaySpan(date(2027, 3, 16), date(2027, 3, 16))
    assert near.may_touch(SLOT, SLOT + timedelta(minutes=30))
    assert near.may_touch(SLOT + timedelta(days=3), SLOT + timedelta(days=3, minutes=30))  # widened, never short
    assert not near.may_touch(SLOT + timedelta(days=30), SLOT + timedelta(days=30, minutes=30))
    weekly = DaySpan.of(icalendar.Calendar.from_ical(
        _event("w", "20270105T100000Z", "20270105T110000Z", "w", "RRULE:FREQ=WEEKLY\r\n")))
    assert weekly == DaySpan(None, None) and weekly.may_touch(SLOT, SLOT + timedelta(hours=1))


async def test_files_are_parsed_once_and_far_ones_not_expanded(tmp_path: Path) -> None:
    sink = IcsDirCalendar(tmp_path)
    (tmp_path / "dentist.ics").write_bytes(_event("d", "20270316T100000Z", "20270316T103000Z", "Dentist"))
    (tmp_path / "weekly.ics").write_bytes(
        _event("w", "20270105T101500Z", "20270105T104500Z", "Standup", "RRULE:FREQ=WEEKLY;BYDAY=TU\r\n"))
    for i in range(50):  # far from the slot: never expanded
        (tmp_path / f"old-{i}.ics").write_bytes(_event(f"o{i}", "20260101T100000Z", "20260101T110000Z", "Old"))
    found = await sink.busy(SLOT, SLOT + timedelta(minutes=30))
    assert sorted(b.summary for b in found) == ["Dentist", "Standup"]
    assert len(sink._parsed) == 52 and sink._read_near(SLOT, SLOT + timedelta(minutes=30)).__len__() == 2

    # Changed in place (same name): read again. Removed: forgotten.
    path = tmp_path / "dentist.ics"
    path.write_bytes(_event("d", "20270316T100000Z", "20270316T103000Z", "Dentist, moved to a longer slot"))
    os.utime(path, ns=(1, 1))
    (tmp_path / "weekly.ics").unlink()
    found = await sink.busy(SLOT, SLOT + timedelta(minutes=30))
    assert [b.summary for b in found] == ["Dentist, moved to a longer slot"]
    assert "weekly.ics" not in sink._parsed


_GOOD = _event("d", "20270316T100000Z", "20270316T103000Z", "Dentist", "RRULE:FREQ=WEEKLY;COUNT=3\r\n")


# Edits in the alphabet of dates and rules: files that still parse, with a date or rule that is broken.
_CHUNKS = st.lists(st.sampled_from(list(b"0123456789:;=TZ\r\n-")), min_size=1, max_size=3).map(bytes)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_GOOD) - 1), _CHUNKS), min_size=1, max_size=4),
       st.integers(0, len(_GOOD)))
def test_a_mangled_event_file_costs_only_itself(edits: list[tuple[int, bytes]], cut: int) -> None:
    """Whatever another program left in the directory (or a server sent), the check still finds the events it
    can read: one unreadable event costs only itself, not the whole check."""
    raw = bytearray(_GOOD[:cut] if cut else _GOOD)
    for at, chunk in edits:
        raw[at:at + len(chunk)] = chunk
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "mangled.ics").write_bytes(bytes(raw))
        Path(folder, "dentist.ics").write_bytes(_event("k", "20270316T100000Z", "20270316T103000Z", "Kept"))
        sink = IcsDirCalendar(Path(folder))
        found = asyncio.run(sink.busy(SLOT, SLOT + timedelta(minutes=30)))
        assert "Kept" in [b.summary for b in found]
