"""Digest lines carry the fit (issue 16): one glyph per criterion, through the loopback Bot API."""

from __future__ import annotations

from typing import Any

from recruiter.notify.digest import digest_lines, fit_glyphs, render_digest, send_digests
from recruiter.notify.telegram import TelegramNotifier
from recruiter.store.models import Message
from recruiter.store.repo import Store
from recruiter.triage.fit import FitCheck
from tests.servers.fake_telegram import FakeTelegram, parse_html
from tests.test_card_fit import CHECK
from tests.test_digest import SIGNER, owed, store, telegram  # noqa: F401 (fixtures)

MISS = {"is_recruiter": True, "confidence": 0.9, "company": "Acme", "role": "Staff SRE", "location": "Berlin",
        "compensation": "€95k", "industry": "fintech", "meetings": []}


def _message(i: int, triage: dict[str, Any]) -> Message:
    return Message(id=i, key=f"k{i}", mailbox="me", subject="Role", from_addr="jane@acme.example", triage=triage)


def test_a_digest_line_has_one_glyph_per_criterion() -> None:
    [line] = digest_lines([_message(1, MISS)], SIGNER, now=1_000_000, fit=CHECK)
    shown = parse_html(render_digest([line])[0][0])
    assert "fit ✅level ✅location ❌comp ❓equity ✅domain" in shown
    [plain] = digest_lines([_message(1, MISS)], SIGNER, now=1_000_000, fit=CHECK, plain=True)
    assert "fit ✅level ✅location ❌comp ❓equity ✅domain" in plain.html


def test_no_profile_or_an_unreadable_stored_verdict_means_no_glyphs() -> None:
    [line] = digest_lines([_message(1, MISS)], SIGNER, now=1_000_000)
    assert "fit " not in parse_html(render_digest([line])[0][0])
    assert fit_glyphs({"is_recruiter": "perhaps", "confidence": 7}, CHECK) == ""
    assert fit_glyphs({}, CHECK) == ""


async def test_the_digest_sent_tells_the_fit(store: Store, telegram: TelegramNotifier,  # noqa: F811
                                             fake_telegram: FakeTelegram) -> None:
    ids = await owed(store, 3)
    report = await send_digests(store, telegram, SIGNER, size=10, fit=FitCheck.from_profile("", {}))
    assert report.lines == 3
    [sent] = fake_telegram.messages()
    # An empty profile: every criterion unknown, still one glyph each.
    assert parse_html(sent["text"]).count("fit ❓level ❓location ❓comp ❓equity ❓domain") == len(ids)
