"""Cards and alerts that may not have arrived are told again, once, as a line in the next message that does.

A card or alert whose request was written but got no answer (:class:`~recruiter.errors.MaybeDone`) is
never sent again: Telegram may have shown it. So that it cannot vanish silently either, the next
message that reaches the owner (a card, an alert, a digest) carries one short line per such card —
"may not have arrived", its subject and sender, and its own signed Send / Decline / Ignore links — and
per such alert. A line is recorded as told only when the message carrying it arrived.

:class:`RetellingNotifier` wraps a :class:`~recruiter.notify.telegram.Notifier` to do that. Looking in
the store costs a query, so it looks only when something may be owed: at start, after one of its own
sends may not have arrived, and once a minute (another process may have recorded one).
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import structlog

from recruiter.errors import MaybeDone
from recruiter.notify.card import TELEGRAM_LIMIT, utf16_len
from recruiter.notify.digest import LinkSigner
from recruiter.notify.links import card_links
from recruiter.notify.telegram import Button, Notifier, StdoutNotifier, html_to_plain
from recruiter.store.models import Message, Outbox
from recruiter.store.repo import Store

log = structlog.get_logger()
RECHECK_SECONDS = 60.0
_HEAD = "\n\n⚠️ <b>May not have arrived</b> (not sent again):"


class RetellingNotifier:
    """A Notifier that appends the "may not have arrived" lines still owed to what it sends."""

    def __init__(self, inner: Notifier, store: Store, signer: LinkSigner, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.inner = inner
        self.store = store
        self.signer = signer
        self.clock = clock
        self._look_at = 0.0  # monotonic time of the next look in the store (0: look now)

    def __repr__(self) -> str:
        return f"RetellingNotifier({self.inner!r})"

    async def start(self) -> None:
        await self.inner.start()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def edit_card(self, ref: str, text: str) -> None:
        await self.inner.edit_card(ref, text)

    async def send_card(self, text: str, buttons: Sequence[Button]) -> str:
        """The card, with the lines owed appended."""
        extra, cards, alerts = await self._owed(text)
        try:
            ref = await self.inner.send_card(text + extra, buttons)
        except MaybeDone:
            self._look_at = 0.0
            raise
        await self._told(cards, alerts)
        return ref

    async def send_text(self, text: str) -> str:
        """The message, with the lines owed appended."""
        extra, cards, alerts = await self._owed(text)
        try:
            ref = await self.inner.send_text(text + extra)
        except MaybeDone:
            self._look_at = 0.0
            raise
        await self._told(cards, alerts)
        return ref

    async def _owed(self, text: str) -> tuple[str, list[Message], list[Outbox]]:
        """The lines to append (within Telegram's limit) and what they tell."""
        now = time.monotonic()
        if now < self._look_at:
            return "", [], []
        try:
            cards = await self.store.alerts.uncertain_cards()
            alerts = await self.store.alerts.uncertain()
        except Exception as exc:  # the lines wait for a later message; this one goes out regardless
            log.warning("retell.unknown", error=str(exc), error_class=type(exc).__name__)
            return "", [], []
        if not cards and not alerts:
            self._look_at = now + RECHECK_SECONDS
            return "", [], []
        budget = TELEGRAM_LIMIT - utf16_len(text) - utf16_len(_HEAD) - 8
        plain = isinstance(self.inner, StdoutNotifier)
        lines: list[str] = []
        told_cards: list[Message] = []
        told_alerts: list[Outbox] = []
        for card in cards:
            line = self._card_line(card, plain)
            if utf16_len(line) + 1 > budget:
                break
            lines.append(line)
            budget -= utf16_len(line) + 1
            told_cards.append(card)
        for alert in alerts:
            line = _alert_line(alert)
            if utf16_len(line) + 1 > budget:
                break
            lines.append(line)
            budget -= utf16_len(line) + 1
            told_alerts.append(alert)
        if not lines:
            return "", [], []
        return _HEAD + "\n" + "\n".join(lines), told_cards, told_alerts

    def _card_line(self, message: Message, plain: bool) -> str:
        links = card_links(self.signer.base_url, self.signer.secret, message.id, now=self.clock(),
                           ttl_seconds=self.signer.ttl_seconds)
        who = _esc((message.from_addr or "unknown sender")[:60])
        subject = _esc((message.subject or "(no subject)")[:80])
        if plain:
            buttons = " ".join(f"[{name}] {url}" for name, url in links.items())
        else:
            buttons = " · ".join(f'<a href="{html.escape(url, quote=True)}">{name.capitalize()}</a>'
                                 for name, url in links.items())
        return f"• card: <b>{subject}</b> — {who} · {buttons}"

    async def _told(self, cards: list[Message], alerts: list[Outbox]) -> None:
        if not cards and not alerts:
            return
        now = datetime.now(UTC)
        try:
            await self.store.alerts.mark_cards_retold(cards, now=now)
            await self.store.alerts.mark_retold([a.id for a in alerts], now=now)
        except Exception as exc:  # told again next time: a repeated note, never a lost one
            log.warning("retell.unrecorded", error=str(exc), error_class=type(exc).__name__)
            return
        log.info("retell.told", cards=[c.id for c in cards], alerts=[a.id for a in alerts])


def _alert_line(alert: Outbox) -> str:
    first = html_to_plain(alert.text).strip().splitlines()[0] if alert.text.strip() else alert.kind
    at = alert.created_at.strftime("%Y-%m-%d %H:%M UTC") if alert.created_at else "?"
    return f"• {_esc(alert.kind)} of {at}: {_esc(first[:120])}"


def _esc(text: str) -> str:
    return html.escape(text, quote=False)
