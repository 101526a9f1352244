"""The rules tier: every sample classified correctly, facts extracted, times never invented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from recruiter.ingest.files import iter_paths
from recruiter.mail.parse import ParsedMail, parse_message
from recruiter.model import TriageResult
from recruiter.triage.rules import THRESHOLD, classify, explain
from recruiter.triage.rules_dates import meetings_from_calendar, meetings_from_text, zone_of

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
REF = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

# name -> expected (is_recruiter, kind) and, for recruiter mail, the facts the rules must find.
EXPECTED: dict[str, dict[str, Any]] = {
    "01-outreach-en-northwind.eml": dict(
        is_recruiter=True, kind="outreach", company="Northwind Analytics", role="Staff Site Reliability Engineer",
        location="London", remote="hybrid", compensation="£150k-£180k", meetings=[]),
    "02-outreach-de-agency.eml": dict(
        is_recruiter=True, kind="outreach", company="Helix Mobility GmbH",
        role="Principal Platform Engineer (m/w/d)", location="Berlin", remote="hybrid",
        compensation="€120.000 – €140.000", meetings=[]),
    "03-outreach-fr.eml": dict(
        is_recruiter=True, kind="outreach", company="Lumen Santé", role="Ingénieur Logiciel Staff",
        location="Paris", remote="hybrid", compensation="110-130k€", meetings=[]),
    "04-greenhouse-html-only.eml": dict(
        is_recruiter=True, kind="outreach", company="Contoso Cloud", role="Senior Staff Software Engineer",
        remote="remote", compensation="€160,000–€190,000", meetings=[]),
    "05-scheduling-proposed-time.eml": dict(
        is_recruiter=True, kind="scheduling", company="Fabrikam Robotics", role="Principal Engineer",
        remote="remote", compensation="GBP 165,000-185,000",
        meetings=[(datetime(2026, 12, 3, 15, 0, tzinfo=UTC), 30)]),
    "06-outreach-attachment.eml": dict(
        is_recruiter=True, kind="outreach", company="Meridian Payments", role="Head of Platform Engineering",
        location="Amsterdam", remote="remote", compensation="€150k-€170k", meetings=[]),
    "07-followup-quoted.eml": dict(
        is_recruiter=True, kind="follow_up", company="Northwind Analytics", role="Staff Site Reliability Engineer",
        meetings=[]),
    "08-newsletter.eml": dict(is_recruiter=False, kind="other"),
    "09-auto-reply.eml": dict(is_recruiter=False, kind="other"),
    "10-github-notification.eml": dict(is_recruiter=False, kind="other"),
    "11-receipt-noreply.eml": dict(is_recruiter=False, kind="other"),
    "12-friend-personal.eml": dict(is_recruiter=False, kind="other"),
    "13-job-board-alert.eml": dict(is_recruiter=False, kind="other"),
    "14-calendar-invite.eml": dict(
        is_recruiter=True, kind="scheduling", company="Quillon Systems", role="Staff Platform Engineer",
        meetings=[(datetime(2026, 12, 8, 14, 0, tzinfo=ZoneInfo("Europe/Berlin")), 60)]),
    "15-rejection.eml": dict(
        is_recruiter=True, kind="rejection", company="Blueyonder Labs", role="Senior Backend Engineer", meetings=[]),
    "16-outreach-nl.eml": dict(
        is_recruiter=True, kind="outreach", company="Tulpdata", role="Lead Data Engineer", location="Utrecht",
        remote="hybrid", compensation="€95.000 - €115.000", meetings=[]),
    "sample.mbox#0": dict(
        is_recruiter=True, kind="outreach", company="Solaria Energía", role="Ingeniero de Plataforma Staff",
        location="Madrid", remote="hybrid", meetings=[]),
    "sample.mbox#1": dict(is_recruiter=False, kind="other"),
    "sample.mbox#2": dict(is_recruiter=False, kind="other"),
}


def samples() -> list[tuple[str, ParsedMail]]:
    return [(Path(label).name, parse_message(raw)) for label, raw in iter_paths([SAMPLES])]


def test_every_sample_has_an_expected_label() -> None:
    assert sorted(name for name, _ in samples()) == sorted(EXPECTED)


@pytest.mark.parametrize(("name", "mail"), samples(), ids=lambda value: value if isinstance(value, str) else "")
def test_sample_is_classified_correctly(name: str, mail: ParsedMail) -> None:
    result = classify(mail)
    expected = EXPECTED[name]
    assert result.is_recruiter is expected["is_recruiter"], explain(mail)
    assert result.kind == expected["kind"], explain(mail)
    for field in ("company", "role", "location", "remote", "compensation"):
        if field in expected:
            assert getattr(result, field) == expected[field], field
    if "meetings" in expected:
        assert [(m.start, m.duration_minutes) for m in result.meetings] == expected["meetings"]
    if not result.is_recruiter:
        assert (result.company, result.role, result.meetings) == (None, None, [])


def test_rules_accuracy_on_samples_is_total() -> None:
    results = [(EXPECTED[name], classify(mail)) for name, mail in samples()]
    correct = sum(1 for want, got in results if (got.is_recruiter, got.kind) == (want["is_recruiter"], want["kind"]))
    assert correct == len(results)


def test_results_are_schema_valid_and_round_trip() -> None:
    for _, mail in samples():
        result = classify(mail)
        assert TriageResult.model_validate_json(result.model_dump_json()) == result
        assert 0.5 <= result.confidence <= 0.9
        assert result.summary and "\n" not in result.summary


def test_explain_names_the_rules_that_fired() -> None:
    mail = dict(samples())["04-greenhouse-html-only.eml"]
    lines = explain(mail)
    assert any("applicant-tracking sender domain greenhouse-mail.io" in line for line in lines)
    assert any("came across your profile" in line for line in lines)
    assert any(line.startswith("= score") and "recruiter" in line for line in lines)
    bulk = explain(dict(samples())["08-newsletter.eml"])
    assert any("(list)" in line for line in bulk)
    assert f"threshold {THRESHOLD}" in bulk[-1]


def make(text: str, subject: str = "Hello", sender: str = "anna@firma.example", name: str = "Anna",
         **extra: Any) -> ParsedMail:
    return ParsedMail(key="k", message_id="<k>", subject=subject, from_name=name, from_addr=sender,
                      to_addrs=("alex@example.net",), reply_to=None, date=REF, references=(), text=text, **extra)


@pytest.mark.parametrize(("subject", "text"), [
    ("Opportunità: Staff Engineer a Milano",
     "Ciao Alex, ho visto il tuo profilo e vorrei proporti una posizione aperta come Staff Engineer presso "
     "un nostro cliente a Milano. La RAL è di 90-110k. Saresti disponibile per un colloquio?"),
    ("Vaga: Engenheiro de Plataforma Staff em Lisboa",
     "Olá Alex, sou recrutadora e vi o seu perfil. Temos uma vaga de Engenheiro de Plataforma Staff em Lisboa, "
     "com remuneração competitiva. Tem interesse no processo seletivo?"),
    ("Oferta pracy: Staff Platform Engineer (Warszawa)",
     "Dzień dobry, jestem rekruterką i trafiłam na Pana profil. Mamy ofertę pracy na stanowisku "
     "Staff Platform Engineer, wynagrodzenie 30 000 - 36 000 PLN. Czy byłby Pan zainteresowany?"),
    ("Oportunidad: Staff SRE",
     "Hola Alex, he visto tu perfil y tengo una vacante de Staff SRE. ¿Te interesaría una entrevista?"),
    ("Neue Herausforderung?",
     "Hallo Alex, ich bin Recruiterin bei Acme und bin auf dein Profil gestoßen. Wir haben eine spannende "
     "Stelle als Staff Engineer (m/w/d), remote, Gehalt bis 140.000 €."),
])
def test_recruiting_vocabulary_in_more_languages(subject: str, text: str) -> None:
    assert classify(make(text, subject)).is_recruiter, explain(make(text, subject))


@pytest.mark.parametrize(("subject", "text"), [
    ("Dinner?", "Are you free for dinner on Saturday? Bring the board game."),
    ("Your order has shipped", "Your order number 1234 has shipped. View this email in your browser."),
    ("Q3 planning", "Hi all, the planning doc is ready. Please add your team's estimates by Friday."),
    ("Photos", "Here are the photos from the wedding. Unsubscribe never, ha."),
])
def test_ordinary_mail_is_not_recruiter(subject: str, text: str) -> None:
    assert not classify(make(text, subject, sender="friend@mailbox.example")).is_recruiter


def test_ats_sender_domain_alone_lifts_a_terse_mail() -> None:
    terse = make("Hi Alex, do you have a moment this week to talk about the Staff SRE role?",
                 sender="kim@ashbyhq.com", name="Kim (via Ashby)")
    assert classify(terse).is_recruiter


@pytest.mark.parametrize(("text", "expected"), [
    ("Base is $200k plus equity.", "$200k"),
    ("Salary: £150,000 - £170,000.", "£150,000 - £170,000"),
    ("Paying 150-180k base.", "150-180k"),
    ("Compensation EUR 120000 to 140000 per year.", "EUR 120000 to 140000"),
])
def test_compensation_patterns(text: str, expected: str) -> None:
    result = classify(make(f"I'm a recruiter at Acme with an open role. {text}", "Staff SRE role at Acme"))
    assert result.compensation == expected


@pytest.mark.parametrize(("text", "remote"), [
    ("The role is fully remote.", "remote"),
    ("Hybrid, two days in the office.", "hybrid"),
    ("This is an on-site role in Berlin.", "onsite"),
    ("Nothing about it.", "unknown"),
])
def test_remote_policy(text: str, remote: str) -> None:
    result = classify(make(f"I'm a recruiter at Acme with an open role. {text}", "Staff SRE role at Acme"))
    assert result.remote == remote


def test_kinds_from_vocabulary() -> None:
    base = "I'm a recruiter at Acme about the Staff SRE role. "
    assert classify(make(base + "We are pleased to offer you the position.")).kind == "offer"
    assert classify(make(base + "We regret to inform you that the position has been filled.")).kind == "rejection"
    assert classify(make(base + "Just circling back on my last note.")).kind == "follow_up"
    scheduling = make(base + "Please share your availability for the interview.", "Re: Staff SRE role")
    assert classify(scheduling).kind == "scheduling"


@pytest.mark.parametrize(("text", "start"), [
    ("Would Thursday 3 December 2026 at 15:00 GMT work?", datetime(2026, 12, 3, 15, tzinfo=UTC)),
    ("How about Thursday 3 December at 15:00 UTC?", datetime(2026, 12, 3, 15, tzinfo=UTC)),
    ("Let's talk at 2026-12-03T15:00:00+01:00.", datetime(2026, 12, 3, 15, tzinfo=timezone(timedelta(hours=1)))),
    ("Am Donnerstag, 3. Dezember 2026 um 15:00 Uhr MEZ?", datetime(2026, 12, 3, 14, tzinfo=UTC)),
    ("Le jeudi 3 décembre 2026 à 15h00 (CET) ?", datetime(2026, 12, 3, 14, tzinfo=UTC)),
    ("December 8, 2026 at 3:30pm UK time", datetime(2026, 12, 8, 15, 30, tzinfo=UTC)),
    ("On 08.12.2026 um 10:00 Uhr Europe/Berlin", datetime(2026, 12, 8, 9, tzinfo=UTC)),
    ("Dec 10 2pm-3pm PST", datetime(2026, 12, 10, 22, tzinfo=UTC)),
])
def test_meetings_with_explicit_zones(text: str, start: datetime) -> None:
    meetings = meetings_from_text(text, reference=REF)
    assert [m.start for m in meetings] == [start]


@pytest.mark.parametrize("text", [
    "How about Thursday 3 December at 15:00?",          # no zone
    "How about Tuesday 3 December 2026 at 15:00 UTC?",  # 3 December 2026 is a Thursday
    "We spoke on 3 November 2026 at 10:00 GMT.",        # in the past
    "Any time on 3 December works, say 15 GMT.",        # no clock time
    "Le 3 décembre 2026 à 15h00 est-ce possible ?",     # "est" is French, not a zone
    "Let's meet on 03/12/2026 at 15:00 GMT.",           # day/month order is ambiguous
])
def test_ambiguous_times_give_no_meeting(text: str) -> None:
    assert meetings_from_text(text, reference=REF) == []


def test_duration_is_read_from_the_text_or_the_range() -> None:
    assert meetings_from_text("3 December 2026 at 15:00 GMT for 45 minutes", reference=REF)[0].duration_minutes == 45
    assert meetings_from_text("3 December 2026, 15:00-16:30 GMT", reference=REF)[0].duration_minutes == 90
    assert meetings_from_text("3 December 2026 at 15:00 GMT", reference=REF)[0].duration_minutes == 30


def test_zone_names() -> None:
    assert zone_of("GMT+2") == timezone(timedelta(hours=2))
    assert zone_of("-05:30") == timezone(-timedelta(hours=5, minutes=30))
    assert zone_of("Europe/Paris") == ZoneInfo("Europe/Paris")
    assert zone_of("London time") == ZoneInfo("Europe/London")
    assert zone_of("Mars/Olympus") is None
    assert zone_of("IST") is None


def test_calendar_invitations() -> None:
    ics = ("BEGIN:VCALENDAR\r\nMETHOD:{method}\r\nBEGIN:VEVENT\r\nUID:1\r\nSUMMARY:Interview\r\n"
           "DTSTART:20261208T130000Z\r\nDTEND:20261208T134500Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    [meeting] = meetings_from_calendar((ics.format(method="REQUEST"), ics.format(method="REQUEST")))
    assert (meeting.start, meeting.duration_minutes, meeting.title) == (
        datetime(2026, 12, 8, 13, tzinfo=UTC), 45, "Interview")
    assert meetings_from_calendar((ics.format(method="CANCEL"),)) == []
    floating = ics.format(method="REQUEST").replace("20261208T130000Z", "20261208T130000")
    assert meetings_from_calendar((floating,)) == []
    assert meetings_from_calendar(("not a calendar", "BEGIN:VCALENDAR\r\nBROKEN")) == []


def test_mail_derived_company_never_swallows_the_next_sentence() -> None:
    result = classify(make("Hi, I'm a technical recruiter at Contoso Cloud. I came across your profile.",
                           "Staff SRE role"))
    assert result.company == "Contoso Cloud"
