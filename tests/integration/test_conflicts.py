"""Calendar conflicts (issue 16, point 2): what is already on the owner's calendars at a proposed time, asked
of a real Radicale (overlapping, adjacent, all-day, another zone, weekly recurring, a second calendar of the
account) and of the `.ics` directory; the service's own events for the same message never count; a calendar
that cannot be asked leaves "conflicts not checked" on the card and the stage succeeds. The card is checked
as the fake Bot API receives it (Telegram HTML, parsed as Telegram would)."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import icalendar
import pytest
import structlog

from recruiter.app import process_paths
from recruiter.calendar.caldav import CalDavCalendar, IcsDirCalendar, event_uid
from recruiter.calendar.conflicts import Busy, SlotCheck, conflict_lines, conflict_marker
from recruiter.mail.parse import parse_message
from recruiter.model import Meeting, TriageResult
from recruiter.notify.card import TELEGRAM_LIMIT, render_card, utf16_len
from recruiter.notify.telegram import TelegramNotifier
from recruiter.pipeline import stages
from recruiter.pipeline.stages import Deps, Identity, Job, Links
from recruiter.settings import settings_from
from recruiter.store.inbox import NewMessage
from recruiter.store.migrate import upgrade_head
from recruiter.store.repo import Store
from tests.mailfactory import make_mail
from tests.servers.fake_llm import FakeLLM
from tests.servers.fake_telegram import FakeTelegram, parse_html
from tests.servers.radicale import Radicale

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def vevent(uid: str, summary: str, start: str, end: str = "", extra: str = "") -> bytes:
    """One VCALENDAR with one VEVENT; ``start``/``end`` are whole property lines (``DTSTART;TZID=…:…``)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//owner//calendar//EN", "BEGIN:VEVENT", f"UID:{uid}",
             "DTSTAMP:20300101T000000Z", f"SUMMARY:{summary}", start, end, extra, "END:VEVENT", "END:VCALENDAR"]
    return "".join(f"{line}\r\n" for line in lines if line).encode()


def owner_events(tag: str, year: int) -> dict[str, list[tuple[str, bytes]]]:
    """What the owner already has, by calendar, in the week of Mon 10 Mar ``year`` (a year no other test uses)."""
    y = year
    return {
        "personal": [
            (f"dentist-{tag}", vevent(f"dentist-{tag}", "Dentist", f"DTSTART;TZID=Europe/Berlin:{y}0311T094500",
                                      f"DTEND;TZID=Europe/Berlin:{y}0311T101500")),
            # ends exactly when the first slot starts: not a conflict
            (f"standup-{tag}", vevent(f"standup-{tag}", "Standup", f"DTSTART;TZID=Europe/Berlin:{y}0311T093000",
                                      f"DTEND;TZID=Europe/Berlin:{y}0311T100000")),
            (f"conf-{tag}", vevent(f"conf-{tag}", "Conference day", f"DTSTART;VALUE=DATE:{y}0312",
                                   f"DTEND;VALUE=DATE:{y}0313")),
            # 02:30–03:30 in New York (EDT) is 06:30–07:30 UTC: it overlaps 09:00 at +02:00 (07:00 UTC)
            (f"ny-{tag}", vevent(f"ny-{tag}", "NY sync <&> \"team\"", f"DTSTART;TZID=America/New_York:{y}0313T023000",
                                 f"DTEND;TZID=America/New_York:{y}0313T033000")),
            # weekly since January: found on Monday 17 March
            (f"weekly-{tag}", vevent(f"weekly-{tag}", "Team weekly", f"DTSTART;TZID=Europe/Berlin:{y}0106T101500",
                                     f"DTEND;TZID=Europe/Berlin:{y}0106T110000", "RRULE:FREQ=WEEKLY")),
            (f"cancelled-{tag}", vevent(f"cancelled-{tag}", "Cancelled lunch", f"DTSTART:{y}0318T140000Z",
                                        f"DTEND:{y}0318T150000Z", "STATUS:CANCELLED")),
        ],
        "gym": [
            (f"gym-{tag}", vevent(f"gym-{tag}", "Gym", f"DTSTART:{y}0318T133000Z", f"DTEND:{y}0318T141500Z")),
        ],
    }


def slots(year: int) -> list[tuple[datetime, int]]:
    """The proposed times (start, minutes), one per kind of existing event, plus a free one."""
    return [
        (datetime(year, 3, 11, 10, 0, tzinfo=BERLIN), 30),  # Dentist (and the adjacent Standup)
        (datetime(year, 3, 12, 15, 0, tzinfo=UTC), 30),  # the all-day Conference day
        (datetime(year, 3, 13, 9, 0, tzinfo=timezone(timedelta(hours=2))), 45),  # NY sync, another zone
        (datetime(year, 3, 17, 10, 0, tzinfo=BERLIN), 30),  # Team weekly, an occurrence
        (datetime(year, 3, 18, 14, 0, tzinfo=UTC), 30),  # Gym, in the second calendar
        (datetime(year, 3, 19, 16, 0, tzinfo=UTC), 30),  # nothing
    ]


EXPECTED = [["Dentist"], ["Conference day"], ['NY sync <&> "team"'], ["Team weekly"], ["Gym"], []]


async def seed(radicale: Radicale, names: dict[str, str], events: dict[str, list[tuple[str, bytes]]]) -> None:
    for which, items in events.items():
        sink = CalDavCalendar(radicale.url, radicale.username, radicale.password, names[which], timeout=10)
        try:
            for uid, ics in items:
                await sink.put_event(uid, ics)
        finally:
            await sink.aclose()


def summaries(found: list[Busy]) -> list[str]:
    return [b.summary for b in found]


# --- the lookup itself -------------------------------------------------------------------------------

async def test_caldav_busy_finds_each_kind_of_event_in_every_calendar(radicale: Radicale) -> None:
    tag = uuid.uuid4().hex[:6]
    names = {"personal": f"Personal {tag}", "gym": f"Gym {tag}"}
    await seed(radicale, names, owner_events(tag, 2031))
    writer = CalDavCalendar(radicale.url, radicale.username, radicale.password, f"Recruiting {tag}", timeout=10)
    try:
        for (start, minutes), expected in zip(slots(2031), EXPECTED, strict=True):
            found = await writer.busy(start, start + timedelta(minutes=minutes))  # default: every calendar
            assert summaries(found) == expected, start
        [dentist] = await writer.busy(*_span(slots(2031)[0]))
        assert dentist.start == datetime(2031, 3, 11, 9, 45, tzinfo=BERLIN) and not dentist.all_day
        [weekly] = await writer.busy(*_span(slots(2031)[3]))
        assert weekly.start == datetime(2031, 3, 17, 10, 15, tzinfo=BERLIN)  # the occurrence, not the master
        [conference] = await writer.busy(*_span(slots(2031)[1]))
        assert conference.all_day
    finally:
        await writer.aclose()


async def test_caldav_conflict_calendars_limit_the_lookup_by_name_or_url(radicale: Radicale) -> None:
    tag = uuid.uuid4().hex[:6]
    names = {"personal": f"Personal {tag}", "gym": f"Gym {tag}"}
    await seed(radicale, names, owner_events(tag, 2033))
    gym_slot = _span(slots(2033)[4])
    dentist_slot = _span(slots(2033)[0])
    only_personal = CalDavCalendar(radicale.url, radicale.username, radicale.password, f"Recruiting {tag}",
                                   timeout=10, conflict_calendars=[names["personal"]])
    try:
        assert summaries(await only_personal.busy(*dentist_slot)) == ["Dentist"]
        assert await only_personal.busy(*gym_slot) == []  # the gym calendar is not asked
        gym_url = ""
        for calendar in await _calendars(only_personal):
            if await calendar.get_display_name() == names["gym"]:
                gym_url = str(calendar.url)
        assert gym_url.startswith(radicale.url)
    finally:
        await only_personal.aclose()
    by_url = CalDavCalendar(radicale.url, radicale.username, radicale.password, f"Recruiting {tag}",
                            timeout=10, conflict_calendars=[gym_url])
    missing = CalDavCalendar(radicale.url, radicale.username, radicale.password, f"Recruiting {tag}",
                             timeout=10, conflict_calendars=[f"No such calendar {tag}"])
    try:
        assert summaries(await by_url.busy(*gym_slot)) == ["Gym"]
        assert await by_url.busy(*dentist_slot) == []
        with pytest.raises(Exception, match="no calendar"):
            await missing.busy(*gym_slot)
    finally:
        await by_url.aclose()
        await missing.aclose()


async def _calendars(sink: CalDavCalendar) -> list[Any]:
    principal = await sink._get_client().get_principal()
    return list(await principal.get_calendars())


def _span(slot: tuple[datetime, int]) -> tuple[datetime, datetime]:
    start, minutes = slot
    return start, start + timedelta(minutes=minutes)


async def test_own_events_of_the_message_are_ignored(radicale: Radicale, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    start = datetime(2036, 5, 6, 10, tzinfo=UTC)
    own, other = event_uid(f"key-{tag}", 0), event_uid(f"other-{tag}", 0)
    ics_own = vevent(own, "Intro call — Acme", "DTSTART:20360506T100000Z", "DTEND:20360506T103000Z")
    ics_other = vevent(other, "Intro call — Globex", "DTSTART:20360506T101500Z", "DTEND:20360506T110000Z")
    sinks = [CalDavCalendar(radicale.url, radicale.username, radicale.password, f"Recruiting {tag}", timeout=10),
             IcsDirCalendar(tmp_path / "events")]
    for sink in sinks:
        try:
            await sink.put_event(own, ics_own)
            await sink.put_event(other, ics_other)
            found = await sink.busy(start, start + timedelta(minutes=30), ignore_uids=frozenset({own}))
            assert summaries(found) == ["Intro call — Globex"], sink  # another message's tentative event counts
        finally:
            await sink.aclose()


async def test_ics_dir_busy_reads_its_own_files(tmp_path: Path) -> None:
    tag = "ics"
    sink = IcsDirCalendar(tmp_path / "events")
    assert await sink.busy(*_span(slots(2031)[0])) == []  # no directory yet: nothing there
    for items in owner_events(tag, 2031).values():
        for uid, ics in items:
            await sink.put_event(uid, ics)
    (tmp_path / "events" / "broken.ics").write_text("not a calendar")
    for slot, expected in zip(slots(2031), EXPECTED, strict=True):
        assert summaries(await sink.busy(*_span(slot))) == expected, slot


# --- the card lines ---------------------------------------------------------------------------------

def test_conflict_lines_and_marker() -> None:
    start = datetime(2027, 1, 12, 10, tzinfo=BERLIN)
    dentist = Busy(start=start - timedelta(minutes=15), end=start + timedelta(minutes=15), summary="Dentist")
    hit = SlotCheck(start=start, end=start + timedelta(minutes=30), checked=True, overlaps=(dentist,))
    free = SlotCheck(start=start + timedelta(days=1), end=start + timedelta(days=1, minutes=30), checked=True)
    unknown = SlotCheck(start=start + timedelta(days=2), end=start + timedelta(days=2, minutes=30), checked=False)
    assert conflict_lines([hit, free]) == ['⚠️ Tue 12 Jan 10:00–10:30 overlaps "Dentist"']
    assert conflict_lines([free]) == ["✅ no conflicts on your calendars"]
    assert conflict_lines([unknown]) == ["❔ Thu 14 Jan 10:00–10:30: conflicts not checked (calendar unreachable)"]
    assert conflict_lines([]) == []
    assert conflict_marker(hit) == "⚠️ conflict: Dentist — " and conflict_marker(free) == ""
    assert SlotCheck.from_json(hit.to_json()) == SlotCheck(
        start=hit.start, end=hit.end, checked=True,
        overlaps=(Busy(start=dentist.start, end=dentist.end, summary="Dentist"),))


def test_many_hostile_conflicts_stay_valid_html_under_the_limit() -> None:
    start = datetime(2027, 1, 12, 10, tzinfo=UTC)
    nasty = Busy(start=start, end=start + timedelta(hours=1), summary="<b>&amp; \"x\" " + "&<>" * 100)
    checks = [SlotCheck(start=start + timedelta(days=i), end=start + timedelta(days=i, minutes=30), checked=True,
                        overlaps=(nasty,) * 5) for i in range(20)]
    mail = parse_message(make_mail(body="x" * 20000))
    triage = TriageResult.model_validate({"is_recruiter": True, "confidence": 0.9, "kind": "scheduling",
                                          "summary": "s" * 500, "company": "<Acme & Co>"})
    card = render_card(mail=mail, triage=triage, draft="d" * 5000, mailbox="me", tier="rules",
                       conflicts=conflict_lines(checks))
    assert utf16_len(card) <= TELEGRAM_LIMIT
    shown = parse_html(card)  # raises as the Bot API would on broken HTML
    assert '⚠️ Tue 12 Jan 10:00–10:30 overlaps "<b>&amp; "x" &<>' in shown  # shown as text, not as markup
    assert "… and 15 more" in shown


# --- the stages, against Radicale and the fake Bot API ----------------------------------------------

def _telegram_env(fake_telegram: FakeTelegram) -> dict[str, str]:
    return {"TELEGRAM_BOT_TOKEN": fake_telegram.token, "TELEGRAM_CHAT_ID": "4242",
            "TELEGRAM_API_BASE_URL": fake_telegram.base_url, "CALLBACK_SIGNING_KEY": "conflicts-test-signing-key-0123"}


def _meeting_mail(year: int) -> bytes:
    lines = "".join(f"MEETING: {start.isoformat()} {minutes}\n" for start, minutes in slots(year))
    return make_mail(subject="Interview slots at Acme",
                     body=f"Hi, I'm a recruiter at Acme.\nCompany: Acme\nRole: Staff SRE\n{lines}")


async def test_the_card_names_each_conflict_and_the_events_are_marked(
    tmp_path: Path, db_url: str, radicale: Radicale, fake_llm: FakeLLM, fake_telegram: FakeTelegram,
) -> None:
    tag = uuid.uuid4().hex[:6]
    year = 2034 if "sqlite" in db_url else 2035  # the calendars outlive the test: one week per database
    names = {"personal": f"Personal {tag}", "gym": f"Gym {tag}"}
    await seed(radicale, names, owner_events(tag, year))
    writer = f"Recruiting {tag}"
    mail_path = tmp_path / "slots.eml"
    mail_path.write_bytes(_meeting_mail(year))
    settings = settings_from({
        "DB_CONNECTION_STRING": db_url, "LLAMA_SWAP_URL": fake_llm.url, "LLAMA_SWAP_MODEL": "m",
        "CALDAV_URL": radicale.url, "CALDAV_USER": radicale.username, "CALDAV_PASSWORD": radicale.password,
        "CALDAV_CALENDAR": writer, "DRAFTS_DIR": str(tmp_path / "drafts"), **_telegram_env(fake_telegram),
    })
    await upgrade_head(db_url)
    counts = await process_paths(settings, [mail_path], stdout=io.StringIO())
    assert counts.get("done") == 1, counts

    [message] = fake_telegram.messages()
    assert message["parse_mode"] == "HTML"
    text = message["text"]
    assert utf16_len(text) <= TELEGRAM_LIMIT
    assert "NY sync &lt;&amp;&gt; \"team\"" in text  # escaped for Telegram HTML
    shown = parse_html(text)
    conflicts = shown.split("Calendar conflicts:\n", 1)[1].split("\n")
    lines = [line for line in conflicts if line.startswith("• ")]
    assert lines == [
        f'• ⚠️ {slots(year)[0][0]:%a} 11 Mar 10:00–10:30 overlaps "Dentist"',
        f'• ⚠️ {slots(year)[1][0]:%a} 12 Mar 15:00–15:30 overlaps "Conference day"',
        f'• ⚠️ {slots(year)[2][0]:%a} 13 Mar 09:00–09:45 overlaps "NY sync <&> "team""',
        f'• ⚠️ {slots(year)[3][0]:%a} 17 Mar 10:00–10:30 overlaps "Team weekly"',
        f'• ⚠️ {slots(year)[4][0]:%a} 18 Mar 14:00–14:30 overlaps "Gym"',
    ]
    assert "Standup" not in shown and "Cancelled lunch" not in shown and "not checked" not in shown

    # Every proposed time is still written as tentative; the conflicting ones say so in their summary.
    events = {str(e["SUMMARY"]): e for raw in radicale.events(writer)
              for e in icalendar.Calendar.from_ical(raw).walk("VEVENT")}
    assert len(events) == 6 and all(str(e["STATUS"]) == "TENTATIVE" for e in events.values())
    marked = sorted(s for s in events if s.startswith("⚠️ conflict: "))
    assert marked == sorted(f"⚠️ conflict: {name} — Call with Acme — Acme (Staff SRE)"
                            for name in ("Dentist", "Conference day", 'NY sync <&> "team"', "Team weekly", "Gym"))
    assert "Call with Acme — Acme (Staff SRE)" in events  # the free slot, unmarked


async def test_calendar_unreachable_for_the_check_the_stage_succeeds(
    tmp_path: Path, radicale: Radicale, fake_telegram: FakeTelegram,
) -> None:
    """Radicale is stopped when the conflicts are asked; the events still go to the .ics sink and the card says
    "conflicts not checked" for each slot."""
    env = await _stage_env(tmp_path, fake_telegram, IcsDirCalendar(tmp_path / "events"),
                           conflicts=CalDavCalendar(radicale.url, radicale.username, radicale.password,
                                                    f"Recruiting {uuid.uuid4().hex[:6]}", timeout=3))
    job = env["job"]
    radicale.stop()
    try:
        assert await stages.calendar(env["deps"], job) == "notify"
    finally:
        radicale.start()
    assert len(list((tmp_path / "events").glob("*.ics"))) == 2
    assert await stages.notify(env["deps"], job) == stages.FINISHED
    shown = parse_html(fake_telegram.messages()[0]["text"])
    assert "• ❔ Tue 11 Mar 10:00–10:30: conflicts not checked (calendar unreachable)" in shown
    assert shown.count("conflicts not checked") == 2 and "⚠️" not in shown
    await env["close"]()


class _CalendarIncidentOpen:
    """An incident tracker whose calendar incident is open and whose probe is due now."""

    probe_seconds = 60.0

    def __init__(self) -> None:
        self.succeeded_keys: list[str] = []

    def paused(self, key: str) -> bool:
        return key == "calendar"

    async def probe_due(self, key: str) -> bool:
        return True

    async def succeeded(self, key: str) -> None:
        self.succeeded_keys.append(key)


class _Counting(IcsDirCalendar):
    asked = 0

    async def busy(self, start: datetime, end: datetime, *, ignore_uids: frozenset[str] = frozenset()) -> list[Busy]:
        self.asked += 1
        return await super().busy(start, end, ignore_uids=ignore_uids)


async def test_no_conflict_lookup_while_the_calendar_incident_is_open(
    tmp_path: Path, fake_telegram: FakeTelegram,
) -> None:
    sink = _Counting(tmp_path / "events")
    env = await _stage_env(tmp_path, fake_telegram, sink)
    incidents = _CalendarIncidentOpen()
    env["deps"].incidents = cast(Any, incidents)
    assert await stages.calendar(env["deps"], env["job"]) == "notify"  # the PUTs are the probes, and succeed
    assert incidents.succeeded_keys == ["calendar", "calendar"]
    checks = [SlotCheck.from_json(ref) for _, kind, ref in env["job"].pending_effects if kind == "conflicts"]
    assert [c.checked for c in checks] == [False, False] and sink.asked == 0
    await env["close"]()


async def test_a_retry_does_not_conflict_with_itself_and_a_resumed_card_shows_the_conflicts(
    tmp_path: Path, fake_telegram: FakeTelegram,
) -> None:
    sink = IcsDirCalendar(tmp_path / "events")
    for uid, ics in owner_events("resume", 2031)["personal"]:
        await sink.put_event(uid, ics)
    env = await _stage_env(tmp_path, fake_telegram, sink)
    deps, first = env["deps"], env["job"]
    assert await stages.calendar(deps, first) == "notify"
    # The process dies before anything is written: the retry starts at the calendar stage again and finds
    # the tentative events of its first attempt, which must not count.
    retry = await env["resume"]("calendar")
    assert await stages.calendar(deps, retry) == "notify"
    checks = [SlotCheck.from_json(ref) for key, kind, ref in retry.pending_effects if kind == "conflicts"]
    assert [[b.summary for b in c.overlaps] for c in checks] == [["Dentist"], []]
    # Telegram fails this time: the worker writes the progress with the failure; the next run starts at notify.
    await retry.save(deps.store)
    resumed = await env["resume"]("notify")
    assert not resumed.fresh and not resumed.pending_effects
    assert await stages.notify(deps, resumed) == stages.FINISHED
    shown = parse_html(fake_telegram.messages()[0]["text"])
    assert '⚠️ Tue 11 Mar 10:00–10:30 overlaps "Dentist"' in shown
    assert "Intro call" not in shown.split("Calendar conflicts:", 1)[1]
    # the events on disk: the Dentist slot marked, the other one not
    summaries_on_disk = sorted(str(e["SUMMARY"]) for p in (tmp_path / "events").glob("*.ics")
                               for e in icalendar.Calendar.from_ical(p.read_bytes()).walk("VEVENT")
                               if str(e["UID"]).endswith("@recruiter-responder"))
    assert summaries_on_disk == ["Intro call — Acme (Staff SRE)", "⚠️ conflict: Dentist — Intro call — Acme (Staff SRE)"]
    await env["close"]()


async def _stage_env(tmp_path: Path, fake_telegram: FakeTelegram, sink: Any, *,
                     conflicts: Any = None) -> dict[str, Any]:
    """A stored, claimed message with two proposed meetings, and the Deps the calendar and notify stages use."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'stages.db'}"
    await upgrade_head(url)
    store = Store.from_url(url)
    raw = make_mail(subject="Interview at Acme")
    key = f"stage-{uuid.uuid4().hex[:8]}"
    await store.add_message(NewMessage(key=key, mailbox="me", raw=raw))
    notifier = TelegramNotifier(fake_telegram.token, "4242", base_url=fake_telegram.base_url, timeout=5)
    deps = Deps(store=store, triager=cast(Any, None), drafter=cast(Any, None), drafts_for=cast(Any, None),
                calendar=sink, notifier=notifier, identity=Identity("Me", {}, "me@example.org", frozenset()),
                links=Links("https://rr.example.org", "k" * 32, 3600), conflicts=conflicts)
    triage = TriageResult(is_recruiter=True, confidence=0.9, kind="scheduling", company="Acme", role="Staff SRE",
                          meetings=[Meeting(start=datetime(2031, 3, 11, 10, tzinfo=BERLIN), title="Intro call"),
                                    Meeting(start=datetime(2031, 3, 11, 12, tzinfo=BERLIN), title="Intro call")])

    [row] = await store.claim("w1", limit=1, lease_seconds=300)
    job = Job(row=row, mail=parse_message(raw), owner="w1", triage=triage, tier="rules", draft="Thanks",
              log=structlog.get_logger())

    async def resume(stage: str) -> Job:
        """The message as a later attempt reads it from the store, starting at ``stage``."""
        again = await store.get(row.id)
        assert again is not None
        again.stage = stage
        return Job(row=again, mail=parse_message(raw), owner="w1", triage=triage, tier="rules", draft="Thanks",
                   log=structlog.get_logger())

    async def close() -> None:
        await notifier.aclose()
        await store.aclose()
        await sink.aclose()
        if conflicts is not None:
            await conflicts.aclose()

    return {"deps": deps, "job": job, "resume": resume, "close": close}


def test_settings_read_the_conflict_calendars() -> None:
    assert settings_from({}).caldav_conflict_calendars == ()
    listed = settings_from({"CALDAV_CONFLICT_CALENDARS": " Personal , https://dav.example/cal/gym/ ,,"})
    assert listed.caldav_conflict_calendars == ("Personal", "https://dav.example/cal/gym/")


def test_all_day_slot_and_floating_event(tmp_path: Path) -> None:
    from recruiter.calendar.conflicts import busy_in, slot_bounds

    start, end, all_day = slot_bounds(date(2031, 4, 1), date(2031, 4, 2))
    assert all_day and (start, end) == (datetime(2031, 4, 1, tzinfo=UTC), datetime(2031, 4, 2, tzinfo=UTC))
    floating = icalendar.Calendar.from_ical(vevent("f", "Floating", "DTSTART:20310401T090000",
                                                   "DTEND:20310401T100000"))
    point = icalendar.Calendar.from_ical(vevent("p", "Reminder", "DTSTART:20310401T093000Z"))
    # floating 09:00–10:00 is read in the slot's zone (Berlin): 08:00–09:00 UTC
    slot = datetime(2031, 4, 1, 9, 30, tzinfo=BERLIN)
    assert [b.summary for b in busy_in([floating, point], slot, slot + timedelta(minutes=30))] == ["Floating"]
    utc_slot = datetime(2031, 4, 1, 9, 15, tzinfo=UTC)
    assert [b.summary for b in busy_in([floating, point], utc_slot, utc_slot + timedelta(minutes=30))] == [
        "Floating", "Reminder"]
