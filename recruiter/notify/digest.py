"""Backlog digests: replayed recruiter mail is told in one Telegram message per ``size`` mails, not one
card each. Every line carries its own signed Send / Decline / Ignore links.

Exactly once per mail, with the notify stage's policy: the members' ``{key}:notify-intent`` records
are written (all or none) before the digest is sent and ``{key}:notify`` (the digest message's ref)
after. An intent without a ``:notify`` record older than ``stale_intent_seconds`` means a process
died while sending: Telegram cannot be asked, so the line is marked ``uncertain`` and never sent
twice. A younger intent belongs to a sender still at work (another process) and is left alone.

:func:`send_digests` is the one entry point: ``recruiter replay`` calls it, and a running service may
call it from its ticker (``flush=False`` sends only full digests, so a replay still storing mail does
not get a ragged digest per tick).
"""

from __future__ import annotations

import asyncio
import html
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import ValidationError

from recruiter.errors import MaybeDone, PermanentError, TransientError
from recruiter.model import TriageResult
from recruiter.notify.card import TELEGRAM_LIMIT, cut, utf16_len
from recruiter.notify.links import card_links
from recruiter.notify.telegram import Notifier, StdoutNotifier, html_to_plain
from recruiter.store.models import Message, utcnow
from recruiter.store.patience import patiently
from recruiter.store.repo import Store
from recruiter.triage.fit import FitCheck

log = structlog.get_logger()

MAX_ENTITIES = 100  # Telegram drops formatting beyond 100 entities in one message
STALE_INTENT_SECONDS = 300.0
# UTF-16 budgets per field: ten worst-case lines (about 390 visible characters each) fit one message.
_FIELD_CHARS = {"who": 70, "subject": 110, "company": 60, "role": 60}


@dataclass(frozen=True)
class LinkSigner:
    """How to sign the lines' links (the same values as the cards': CALLBACK_BASE_URL, the secret, TTL)."""

    base_url: str
    secret: str
    ttl_seconds: int


@dataclass
class DigestReport:
    """What one :func:`send_digests` call did."""

    digests: int = 0  # digests (groups of up to ``size`` mails) fully sent
    messages: int = 0  # Telegram messages sent (a digest over 4096 characters is split)
    lines: int = 0  # mails told
    uncertain: int = 0  # mails whose digest may not have arrived (a sender died mid-send)
    owed: int = 0  # mails still owed a digest after this call
    error: str | None = None
    refs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Line:
    message_id: int
    key: str
    html: str
    visible: int  # UTF-16 length as Telegram counts it (tags and hrefs do not count)
    entities: int


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def fit_glyphs(triage: dict[str, Any], fit: FitCheck | None) -> str:
    """The fit as one glyph per criterion (``✅level ✅location ❌comp ❓equity ✅domain``); empty without a
    profile or for a stored verdict that no longer validates."""
    if fit is None:
        return ""
    try:
        return fit.assess(TriageResult.model_validate(triage)).glyphs()
    except ValidationError:
        return ""


def _line(number: int, message: Message, links: dict[str, str], *, plain: bool,
          fit: FitCheck | None = None) -> _Line:
    triage: dict[str, Any] = message.triage or {}
    company = cut(str(triage.get("company") or "unknown company"), _FIELD_CHARS["company"])
    role = cut(str(triage.get("role") or "role not stated"), _FIELD_CHARS["role"])
    who = cut(message.from_addr or "unknown sender", _FIELD_CHARS["who"])
    subject = cut(message.subject or "(no subject)", _FIELD_CHARS["subject"])
    meetings = len(triage.get("meetings") or [])
    extra = f" · {meetings} proposed time{'s' if meetings != 1 else ''} on the calendar" if meetings else ""
    head = f"{number}. {company} · {role}"
    replies = ""
    if message.reply_to and message.reply_to.lower() != (message.from_addr or "").lower():
        replies = f" · replies go to {cut(message.reply_to, _FIELD_CHARS['who'])}"
    sub = f"{who}{replies} · {message.mailbox}{extra}"
    glyphs = fit_glyphs(triage, fit)
    if glyphs:
        sub += f"\n   fit {glyphs}" if plain else f"\nfit {glyphs}"
    if plain:
        # For StdoutNotifier, which shows html_to_plain(text): escaped text, the links spelled out.
        actions = "\n".join(f"   {name}: {links[action]}" for name, action in
                            (("Send", "send"), ("Decline", "decline"), ("Ignore", "ignore")))
        text = _esc(f"{head}\n   {sub}\n   {subject}\n{actions}")
        return _Line(message.id, message.key, text, utf16_len(html_to_plain(text)), 0)
    anchors = " · ".join(f'<a href="{html.escape(links[action], quote=True)}">{label}</a>' for label, action in
                         (("✉️ Send", "send"), ("🙅 Decline", "decline"), ("🙈 Ignore", "ignore")))
    text = f"<b>{_esc(head)}</b>\n{_esc(sub)}\n<i>{_esc(subject)}</i>\n{anchors}"
    return _Line(message.id, message.key, text, utf16_len(html_to_plain(text)), 5)


def _header(count: int, part: int, parts: int, *, plain: bool) -> str:
    title = f"Backlog digest · {count} recruiter mail{'s' if count != 1 else ''}"
    if parts > 1:
        title += f" · part {part}/{parts}"
    return _esc(title) if plain else f"📬 <b>{_esc(title)}</b>"


def render_digest(lines: Sequence[_Line], *, plain: bool = False,
                  limit: int = TELEGRAM_LIMIT) -> list[tuple[str, list[_Line]]]:
    """The digest as one or more Telegram messages, each within ``limit`` visible characters and
    :data:`MAX_ENTITIES` entities; returns (text, the lines in it) per message."""
    budget = limit - 80  # the header, with room for "part n/m"
    groups: list[list[_Line]] = [[]]
    used = entities = 0
    for line in lines:
        size = line.visible + 2
        if groups[-1] and (used + size > budget or entities + line.entities + 1 > MAX_ENTITIES):
            groups.append([])
            used = entities = 0
        groups[-1].append(line)
        used += size
        entities += line.entities
    count = len(lines)
    return [(_header(count, index, len(groups), plain=plain) + "\n\n" + "\n\n".join(ln.html for ln in group), group)
            for index, group in enumerate(groups, start=1)]


def digest_lines(messages: Sequence[Message], signer: LinkSigner, *, now: float, plain: bool = False,
                 fit: FitCheck | None = None) -> list[_Line]:
    """One line per message, numbered from 1, with its signed links (and its fit, given the profile)."""
    return [_line(number, message, card_links(signer.base_url, signer.secret, message.id, now=now,
                                              ttl_seconds=signer.ttl_seconds), plain=plain, fit=fit)
            for number, message in enumerate(messages, start=1)]


async def send_digests(store: Store, notifier: Notifier, signer: LinkSigner, *, size: int = 10,
                       flush: bool = True, clock: Callable[[], float] = time.time,
                       stale_intent_seconds: float = STALE_INTENT_SECONDS, fit: FitCheck | None = None) -> DigestReport:
    """Send every digest still owed: backlog recruiter mail that is done and not yet told, oldest first,
    ``size`` mails per digest. ``flush=False`` keeps a last, incomplete digest for later. Never raises
    for Telegram or the store being unavailable: the report says what is still owed (a rerun sends it)."""
    if size < 1:
        raise ValueError("digest size must be at least 1")
    report = DigestReport()
    try:
        await _send_all(store, notifier, signer, size, flush, clock, stale_intent_seconds, report, fit)
    except (TransientError, PermanentError) as exc:
        report.error = str(exc)
        log.error("digest.failed", error=str(exc), error_class=type(exc).__name__)
    try:
        report.owed = len(await store.digest_owed())
    except TransientError:
        report.owed = -1
    return report


async def _send_all(store: Store, notifier: Notifier, signer: LinkSigner, size: int, flush: bool,
                    clock: Callable[[], float], stale: float, report: DigestReport,
                    fit: FitCheck | None = None) -> None:
    owed = await store.digest_owed()
    if not owed:
        return
    intents = await store.effects_of_kind([m.id for m in owed], "notify-intent")
    fresh: list[Message] = []
    uncertain: list[Message] = []
    now = utcnow()
    for message in owed:
        intent = intents.get(message.id)
        if intent is None:
            fresh.append(message)
        elif (now - intent.created_at).total_seconds() > stale:
            uncertain.append(message)
    if uncertain:
        # A sender died between its intent and its record: the digest may have arrived. Never twice.
        log.error("digest.uncertain", messages=[m.id for m in uncertain],
                  note="a digest was being sent when its process died; not sent again")
        await patiently(lambda: store.record_effects([(m.id, f"{m.key}:notify", "notify", "uncertain")
                                                       for m in uncertain]), log)
        report.uncertain += len(uncertain)
    groups = [fresh[i:i + size] for i in range(0, len(fresh), size)]
    if groups and not flush and len(groups[-1]) < size:
        groups.pop()
    for group in groups:
        await _send_group(store, notifier, signer, group, clock, report, fit)


async def _send_group(store: Store, notifier: Notifier, signer: LinkSigner, group: list[Message],
                      clock: Callable[[], float], report: DigestReport, fit: FitCheck | None = None) -> None:
    plain = isinstance(notifier, StdoutNotifier)
    parts = render_digest(digest_lines(group, signer, now=clock(), plain=plain, fit=fit), plain=plain)
    sender = f"{socket.gethostname()[:30]}:{os.getpid()}"
    if not await store.claim_effects([(m.id, f"{m.key}:notify-intent", "notify-intent", sender) for m in group]):
        log.info("digest.claimed_elsewhere", messages=[m.id for m in group])
        return
    for index, (text, lines) in enumerate(parts):
        try:
            # Shielded: a Ctrl-C must not cut a send whose arrival could then not be known.
            ref = await asyncio.shield(notifier.send_text(text))
        except MaybeDone as exc:
            # Written, no answer: these lines may have arrived. Never sent again; the later parts were not
            # sent at all and stay owed.
            log.error("digest.uncertain", messages=[line.message_id for line in lines], error=str(exc))
            await patiently(lambda lines=lines: store.record_effects(  # type: ignore[misc]
                [(line.message_id, f"{line.key}:notify", "notify", "uncertain") for line in lines]), log)
            unsent = [f"{line.key}:notify-intent" for _, rest in parts[index + 1:] for line in rest]
            await asyncio.shield(store.forget_effects(unsent))
            report.uncertain += len(lines)
            return
        except BaseException:
            # Nothing of this part (or the ones after it) was shown: a later call may send them.
            unsent = [f"{line.key}:notify-intent" for _, rest in parts[index:] for line in rest]
            await asyncio.shield(store.forget_effects(unsent))
            raise
        await patiently(lambda lines=lines, ref=ref: store.record_effects(  # type: ignore[misc]
            [(line.message_id, f"{line.key}:notify", "notify", ref) for line in lines]), log)
        report.messages += 1
        report.lines += len(lines)
        report.refs.append(ref)
        log.info("digest.sent", ref=ref, messages=[line.message_id for line in lines], part=index + 1,
                 parts=len(parts))
    report.digests += 1
