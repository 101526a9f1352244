"""The fit line on the card (issue 16): rendered as Telegram shows it, escaped, within 4096 characters; a miss
on compensation, level or an excluded domain puts Decline first; nothing is sent without a tap. End to end
through the real pipeline (rules tier), Dovecot and the loopback Bot API, with a profile whose floors are in
two currencies and the owner's own rates file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from recruiter.model import TriageResult
from recruiter.notify.card import TELEGRAM_LIMIT, render_card, render_plain, utf16_len
from recruiter.settings import settings_from
from recruiter.triage.fit import ProfileFacts, assess
from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, ImapUser
from tests.servers.fake_telegram import FakeTelegram, parse_html
from tests.servers.smtp import SmtpSink
from tests.support.callbacks import World, bare_world, env_for, process
from tests.support.cards import a_mail, a_triage
from tests.support.fit import CHECK, PROFILE, RATES

pytestmark = pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning")



def test_the_card_states_the_fit_as_telegram_shows_it() -> None:
    triage = a_triage(role="Staff SRE", location="Berlin", compensation="€95k", industry="fintech")
    card = render_card(mail=a_mail(), triage=triage, draft="Hi", mailbox="work", tier="rules",
                       fit=CHECK.assess(triage))
    shown = parse_html(card)
    assert ("Fit: ✅ level (Staff) · ✅ Berlin (EU) · ❌ comp €95k < €170k EU floor · ❓ equity not stated · "
            "✅ fintech") in shown
    plain = render_plain(mail=a_mail(), triage=triage, draft="Hi", mailbox="work", tier="rules",
                         fit=CHECK.assess(triage))
    assert "Fit: ✅ level (Staff)" in plain


def test_no_fit_no_fit_line() -> None:
    card = render_card(mail=a_mail(), triage=a_triage(), draft="Hi", mailbox="work", tier="rules")
    assert "Fit:" not in parse_html(card)


def test_hostile_evidence_is_escaped_and_the_card_stays_within_the_limit() -> None:
    nasty = "<b>crypto</b> & <a href='x'>web3</a> 😀" * 10
    triage = a_triage(role="<i>Staff</i> " + "x" * 180, location="<Berlin> & " + "y" * 180,
                     compensation="€95k <script>", industry=nasty[:100], summary="z" * 500)
    fit = CHECK.assess(triage)
    card = render_card(mail=a_mail(subject="s" * 2000, from_name="n" * 500), triage=triage, draft="d" * 5000,
                       mailbox="work", tier="rules", fit=fit)
    shown = parse_html(card)  # raises if the markup were invalid
    assert utf16_len(shown) <= TELEGRAM_LIMIT
    assert "Fit: " in shown and "<b>crypto</b>" in shown and "❌" in shown
    assert "&lt;b&gt;crypto" in card and "<script>" not in card


def test_an_unknown_profile_says_unknown_not_miss() -> None:
    triage = TriageResult(is_recruiter=True, confidence=0.9, role="Junior Dev", compensation="€10k")
    fit = assess(ProfileFacts(), triage, {})
    assert fit.evidence().count("❓") == 5 and not fit.decline_first


# --- end to end: the notify stage with the owner profile ------------------------------------------------


@pytest.fixture
async def world(tmp_path: Path, db_url: str, dovecot: Dovecot, imap_user: ImapUser, fake_telegram: FakeTelegram,
                smtp_sink: SmtpSink) -> AsyncIterator[World]:
    profile, rates = tmp_path / "profile.md", tmp_path / "rates.toml"
    profile.write_text(PROFILE, encoding="utf-8")
    rates.write_text(RATES, encoding="utf-8")
    env = env_for(tmp_path, db_url, imap_user, fake_telegram, smtp_sink, OWNER_PROFILE=str(profile),
                  FX_RATES_FILE=str(rates))
    settings = settings_from(env)
    async with bare_world(settings, dovecot, imap_user, fake_telegram, smtp_sink) as world:
        yield world


def _card_for(world: World, message_id: int) -> dict[str, Any]:
    for card in world.telegram.messages():
        buttons = card.get("reply_markup", {}).get("inline_keyboard", [[]])[0]
        if buttons and f"m={message_id}&" in buttons[0]["url"]:
            return card
    raise AssertionError(f"no card for message {message_id}")


def _actions(card: dict[str, Any]) -> list[str]:
    return [button["url"].split("?")[0].rsplit("/", 1)[-1] for button in card["reply_markup"]["inline_keyboard"][0]]


async def test_a_miss_on_pay_puts_decline_first_and_sends_nothing(world: World) -> None:
    raw = make_mail(subject="Staff Platform Engineer in Berlin", to=world.user.user, body=(
        "Hi Alex,\n\nI'm a recruiter at Acme and we're hiring a Staff Platform Engineer in Berlin, "
        "salary €95k. Would you be open to a chat?\n"))
    message_id, _ = await process(world.runtime, world.dovecot, world.user, raw)
    card = _card_for(world, message_id)
    shown = parse_html(card["text"])
    assert "Fit: ✅ level (Staff) · ✅ Berlin (EU) · ❌ comp €95k < €170k EU floor · ❓ equity not stated" in shown
    assert _actions(card) == ["decline", "send", "ignore"]
    assert [b["text"] for b in card["reply_markup"]["inline_keyboard"][0]] == ["🙅 Decline", "✉️ Send", "🙈 Ignore"]
    assert world.sink.messages == []  # nothing is ever sent without a tap


async def test_a_good_fit_keeps_send_first(world: World) -> None:
    raw = make_mail(subject="Principal Engineer, London", to=world.user.user, body=(
        "Hi Alex,\n\nI'm a recruiter at Acme and we're hiring a Principal Engineer in London, hybrid, "
        "$180k-$220k plus stock options. Would you be open to a chat?\n"))
    message_id, _ = await process(world.runtime, world.dovecot, world.user, raw)
    card = _card_for(world, message_id)
    # $220k at 0.9 €/$ and 1.2 €/£ is £165k: the London floor in pounds, from a dollar range, by its top.
    shown = parse_html(card["text"])
    assert "✅ level (Principal) · ✅ London (UK) · ✅ comp $220k (≈£165k) ≥ £150k London floor · ✅ equity" in shown
    assert _actions(card) == ["send", "decline", "ignore"]
    assert world.sink.messages == []


async def test_an_excluded_domain_puts_decline_first(world: World) -> None:
    raw = make_mail(subject="Staff SRE at a crypto exchange", to=world.user.user, body=(
        "Hi Alex,\n\nI'm a recruiter at Acme and we're hiring a Staff SRE for a crypto exchange, remote. "
        "Would you be open to a chat?\n"))
    message_id, _ = await process(world.runtime, world.dovecot, world.user, raw)
    card = _card_for(world, message_id)
    assert "❌ crypto/web3 (not interested in crypto)" in parse_html(card["text"])
    assert _actions(card)[0] == "decline"
