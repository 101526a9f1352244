"""The owner's card: content, escaping, length limit, no foreign links."""

from __future__ import annotations

import random
from typing import Any

import pytest

from recruiter.mail.parse import ParsedMail
from recruiter.model import Meeting, TriageResult
from recruiter.notify.card import (
    TELEGRAM_LIMIT,
    clean,
    draft_preview,
    render_card,
    render_plain,
    utf16_len,
)
from recruiter.notify.telegram import html_to_plain
from tests.servers.fake_telegram import ApiError, parse_html
from tests.support.cards import NASTY, RTL, a_mail, a_triage


def _card(mail: ParsedMail | None = None, triage: TriageResult | None = None, draft: str = "Hi Jane,\n\nThanks!",
          **kwargs: Any) -> str:
    return render_card(mail=mail or a_mail(), triage=triage or a_triage(), draft=draft, mailbox="work",
                       tier="llama-swap", **kwargs)


def test_card_shows_everything_the_owner_needs() -> None:
    card = _card(event_note="3 tentative events on the calendar")
    plain = parse_html(card)  # what Telegram would show; raises if the markup were invalid
    for expected in (
        "Jane Doe <jane@acme.example>", "Staff SRE at Acme — quick chat?", "Acme", "Staff SRE",
        "London, hybrid", "£150k-£180k", "Acme proposes an intro call", "Hi Jane,", "Thanks!",
        "llama-swap", "0.87", "work", "3 tentative events on the calendar", "scheduling",
    ):
        assert expected in plain, expected
    assert "Thu 03 Dec 2026 15:00 UTC+02:00 · 30 min · Intro call" in plain
    assert "Fri 04 Dec 2026 10:00 CET (Europe/Berlin)" in plain
    assert "Sat 05 Dec 2026 09:00 UTC · 30 min · Onsite" in plain
    assert "&lt;jane@acme.example&gt;" in card


def test_unknown_fields_are_marked() -> None:
    triage = a_triage(company=None, role=None, location=None, remote="unknown", compensation=None, meetings=[],
                     summary="")
    plain = parse_html(_card(triage=triage, draft=""))
    assert "Company: —" in plain and "Role: —" in plain and "Location: —" in plain
    assert "Compensation: not stated" in plain
    assert "Meetings" not in plain and "Draft" not in plain and "Summary" not in plain


def test_untrusted_text_is_escaped() -> None:
    mail = a_mail(subject=NASTY, from_name="<Jane> & \u202eevil\u202c", from_addr="a&b@x.example")
    triage = a_triage(company=NASTY[:200], role="<i>Lead</i>", summary=NASTY, location="Tel Aviv " + RTL)
    card = _card(mail, triage, draft=NASTY + "\n<a href='https://evil.example'>click</a>")
    plain = parse_html(card)
    assert "<script>alert('x')</script>" in plain  # shown as text ...
    assert "<script>" not in card and "<a" not in card  # ... never as markup, never a link
    assert "😀👩‍💻" in plain and RTL in plain
    assert "\u202e" not in card  # bidi override removed
    assert "<Jane> & evil" in plain


def test_draft_preview_is_about_400_chars() -> None:
    draft = "Hello Jane, " + "lorem ipsum dolor sit amet " * 100
    preview = draft_preview(draft)
    assert 300 <= len(preview) <= 402 and preview.endswith("…")
    assert draft_preview("short") == "short"
    card = parse_html(_card(draft=draft))
    assert preview in card


@pytest.mark.parametrize("size", [4000, 5000, 20000])
def test_long_everything_stays_under_the_limit(size: int) -> None:
    long = ("&<>" * size)[:size]
    mail = a_mail(subject=long, from_name=long)
    meetings = [Meeting.model_validate({"start": "2026-12-03T15:00:00+02:00", "title": long[:200]})] * 10
    triage = a_triage(company=long[:200], role=long[:200], location=long[:200], compensation=long[:200],
                     summary=long[:500], meetings=meetings)
    for tier in ("rules", long[:100]):
        card = render_card(mail=mail, triage=triage, draft=long, mailbox=long[:100], tier=tier,
                           event_note=long)
        assert utf16_len(card) <= TELEGRAM_LIMIT
        plain = parse_html(card)
        assert "Company:" in plain and "Draft:" in plain and "… and 5 more" in plain


def test_emoji_count_double_towards_the_limit() -> None:
    emoji = "😀" * 3000
    card = _card(a_mail(subject=emoji, from_name=emoji), a_triage(summary=emoji[:500]), draft=emoji)
    assert utf16_len(card) <= TELEGRAM_LIMIT
    parse_html(card)


def test_random_hostile_text_always_parses() -> None:
    rng = random.Random(1234)
    alphabet = [*"<>&\"';*_`[]()~#+-=|{}.!\\/ \n\tab", "😀", "é", "\u200b", "\u202e", "\x00", "\x1b",
                "&amp;", "&lt;", "<b>", "</b>", RTL]
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 700)))
        # Lone surrogates (undecodable mail bytes) can reach the parsed mail, not the validated triage.
        mail = a_mail(subject=text + "\udc80", from_name=text[:50])
        triage = a_triage(company=text[:200] or None, summary=text[:500])
        card = render_card(mail=mail, triage=triage, draft=text + "\ud800", mailbox="work", tier="rules")
        try:
            parse_html(card)
        except ApiError as exc:  # pragma: no cover - the assertion message is the point
            pytest.fail(f"{exc.description}: {card!r}")
        assert utf16_len(card) <= TELEGRAM_LIMIT
        assert "\x00" not in card and "\x1b" not in card
        card.encode("utf-8")  # no lone surrogates left


def test_plain_card_matches_the_html_card() -> None:
    mail = a_mail(subject="A & B <c>")
    plain = render_plain(mail=mail, triage=a_triage(), draft="Hi & bye", mailbox="work", tier="rules")
    assert "<b>" not in plain and "&amp;" not in plain
    assert "Subject: A & B <c>" in plain
    assert "  | Hi & bye" in plain
    assert "Thu 03 Dec 2026 15:00 UTC+02:00" in plain
    assert html_to_plain(render_card(mail=mail, triage=a_triage(), draft="x", mailbox="work", tier="rules")) \
        .startswith("📨 Recruiter mail")


def test_clean() -> None:
    assert clean("  a \n b\t c ") == "a b c"
    assert clean("a\n\n\n\nb", multiline=True) == "a\n\nb"
    assert clean("x\x00y\u202ez") == "xyz"
