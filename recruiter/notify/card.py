"""The owner's card for one recruiter mail: Telegram HTML (:func:`render_card`) or plain text.

Everything that comes from the mail or the model is untrusted: it is cleaned of control characters,
cut to a per-field budget *after* escaping (so a cut never lands inside ``&amp;``), and wrapped only
in tags this module writes itself. The budgets add up to less than Telegram's 4096-character limit;
a final check drops whole low-priority sections if it were ever exceeded, so no tag is ever cut.
The card has no links of its own: buttons come only from the signed ``/cb`` links.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from recruiter.mail.invite import Invitation, invitations
from recruiter.mail.parse import ParsedMail
from recruiter.model import Meeting, TriageResult
from recruiter.triage.fit import Fit

TELEGRAM_LIMIT = 4096
DRAFT_PREVIEW_CHARS = 400
LARGE_NOTE = "⚠️ large mail, over MAX_MESSAGE_BYTES: only its headers and first text part were read"
MAX_MEETINGS_SHOWN = 5
# Bidi embeddings/overrides/isolates: they could reorder the text around a field.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class _Part:
    """One section of the card. ``kind``: header, field, list, block or footer."""

    kind: str
    label: str
    value: str
    budget: int
    priority: int  # higher is dropped later


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def clean(text: str, *, multiline: bool = False) -> str:
    """Untrusted text made safe to show: control and bidi-override characters removed,
    lone surrogates replaced, whitespace collapsed (kept as line breaks when ``multiline``)."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    kept = []
    for char in text:
        if char in "\n\t" or (unicodedata.category(char) != "Cc" and char not in _BIDI_CONTROLS):
            kept.append(char)
    text = "".join(kept)
    if not multiline:
        return " ".join(text.split())
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _fit(value: str, budget: int, escape: Callable[[str], str]) -> str:
    """``escape(value)`` cut on a character boundary so its UTF-16 length is at most ``budget``."""
    full = escape(value)
    if utf16_len(full) <= budget:
        return full
    out: list[str] = []
    used = 0
    for char in value:
        piece = escape(char)
        size = utf16_len(piece)
        if used + size > budget - 1:
            break
        out.append(piece)
        used += size
    return "".join(out).rstrip() + "…"


def cut(text: str, budget: int) -> str:
    """Untrusted ``text``, cleaned, of at most ``budget`` UTF-16 units (as Telegram counts), cut on a
    character with an ellipsis; escape it afterwards (the budget counts what Telegram shows)."""
    return _fit(clean(text), budget, _plain)


def _html_escape(text: str) -> str:
    return html.escape(text, quote=False)


def _plain(text: str) -> str:
    return text


def zone_label(moment: datetime) -> str:
    """``CET (Europe/Berlin)`` for a named zone, ``UTC`` or ``UTC+02:00`` for a fixed offset."""
    zone = moment.tzinfo
    if isinstance(zone, ZoneInfo):
        return f"{moment.tzname()} ({zone.key})"
    offset = moment.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        return "UTC"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def meeting_line(meeting: Meeting) -> str:
    """``Thu 03 Dec 2026 15:00 UTC+02:00 · 30 min · Intro call`` in the meeting's own zone."""
    start = meeting.start
    return f"{start:%a %d %b %Y %H:%M} {zone_label(start)} · {meeting.duration_minutes} min · {clean(meeting.title)}"


def invitation_line(invitation: Invitation) -> str:
    """``Thu 03 Dec 2026 15:00–16:00 CET (Europe/Berlin) · Interview`` as the invitation wrote it:
    in its zone, as floating local time, or as all-day dates."""
    start, end = invitation.start, invitation.end
    title = clean(invitation.summary or "Meeting")
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        last = end - timedelta(days=1) if end > start else start
        days = f"{start:%a %d %b %Y}" + (f" – {last:%a %d %b %Y}" if last != start else "")
        return f"{days} · all day · {title}"
    until = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%a %d %b %H:%M}"
    zone = "your local time (no zone given)" if start.tzinfo is None else zone_label(start)
    return f"{start:%a %d %b %Y %H:%M}–{until} {zone} · {title}"


def invitation_note(invitation: Invitation) -> str:
    """The card's calendar line when the times come from a calendar invitation, not the model."""
    who = invitation.organizer_name or invitation.organizer
    return "📅 from the invitation" + (f" · organizer {who}" if who else "")


def draft_preview(draft: str, limit: int = DRAFT_PREVIEW_CHARS) -> str:
    """The start of the draft, cut at a word boundary near ``limit`` characters."""
    text = clean(draft, multiline=True)
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space > limit * 3 // 4:
        cut = cut[:space]
    return cut.rstrip() + " …"


def _parts(
    mail: ParsedMail, triage: TriageResult, draft: str, mailbox: str, tier: str, event_note: str | None,
    conflicts: Sequence[str] = (),
    fit: Fit | None = None,
) -> list[_Part]:
    sender = f"{clean(mail.from_name)} <{mail.from_addr}>" if mail.from_name else mail.from_addr
    place = ", ".join(x for x in (triage.location, None if triage.remote == "unknown" else triage.remote) if x)
    invites = invitations(mail.calendar_parts)
    proposed: list[Invitation] | list[Meeting] = invites or triage.meetings
    meetings = [invitation_line(m) if isinstance(m, Invitation) else meeting_line(m)
                for m in proposed[:MAX_MEETINGS_SHOWN]]
    if len(proposed) > MAX_MEETINGS_SHOWN:
        meetings.append(f"… and {len(proposed) - MAX_MEETINGS_SHOWN} more")
    if invites and not event_note:
        event_note = invitation_note(invites[0])
    header = f"Recruiter mail · {triage.kind.replace('_', '-')} · {mailbox}"
    parts = [
        _Part("header", "", header, 120, 9),
        _Part("field", "From", sender or "unknown sender", 240, 8),
        *([_Part("field", "Replies go to", mail.reply_to, 240, 8)]
          if mail.reply_to and mail.reply_to.lower() != (mail.from_addr or "").lower() else []),
        _Part("field", "Subject", mail.subject or "(no subject)", 300, 8),
        *([_Part("field", "Size", LARGE_NOTE, 160, 8)] if mail.truncated else []),
        _Part("field", "Company", triage.company or "—", 120, 7),
        _Part("field", "Role", triage.role or "—", 120, 7),
        _Part("field", "Location", place or "—", 160, 6),
        _Part("field", "Compensation", triage.compensation or "not stated", 120, 6),
        *([_Part("field", "Fit", fit.evidence(), 400, 6)] if fit else []),  # the owner profile, see triage/fit.py
    ]
    if meetings:
        label = "Meetings (📅 from the invitation)" if invites else "Meetings"
        parts.append(_Part("list", label, "\n".join(meetings), 160, 5))
    if conflicts:  # lines of recruiter.calendar.conflicts.conflict_lines (plain text, escaped here)
        parts.append(_Part("list", "Calendar conflicts", "\n".join(conflicts), 200, 5))
    if triage.summary:
        parts.append(_Part("field", "Summary", triage.summary, 500, 4))
    if event_note:
        parts.append(_Part("field", "Calendar", event_note, 300, 3))
    if draft.strip():
        parts.append(_Part("block", "Draft", draft_preview(draft), 800, 2))
    parts.append(_Part("footer", "", f"Triaged by {tier} · confidence {triage.confidence:.2f}", 80, 9))
    return parts


def _render_html(part: _Part) -> str:
    if part.kind == "header":
        return f"📨 <b>{_fit(clean(part.value), part.budget, _html_escape)}</b>"
    if part.kind == "footer":
        return f"<i>{_fit(clean(part.value), part.budget, _html_escape)}</i>"
    if part.kind == "list":
        items = (f"• {_fit(clean(line), part.budget, _html_escape)}" for line in part.value.splitlines())
        return f"<b>{part.label}:</b>\n" + "\n".join(items)
    if part.kind == "block":
        body = _fit(clean(part.value, multiline=True), part.budget, _html_escape)
        return f"<b>{part.label}:</b>\n<blockquote>{body}</blockquote>"
    return f"<b>{part.label}:</b> {_fit(clean(part.value), part.budget, _html_escape)}"


def _render_plain(part: _Part) -> str:
    if part.kind in ("header", "footer"):
        return _fit(clean(part.value), part.budget, _plain)
    if part.kind == "list":
        items = (f"  • {_fit(clean(line), part.budget, _plain)}" for line in part.value.splitlines())
        return f"{part.label}:\n" + "\n".join(items)
    if part.kind == "block":
        body = _fit(clean(part.value, multiline=True), part.budget, _plain)
        return f"{part.label}:\n" + "\n".join(f"  | {line}".rstrip() for line in body.splitlines())
    return f"{part.label}: {_fit(clean(part.value), part.budget, _plain)}"


def _assemble(parts: list[_Part], render: Callable[[_Part], str], limit: int) -> str:
    """Render and join; if over ``limit``, drop whole sections, lowest priority first."""
    rendered = [(part.priority, index, render(part)) for index, part in enumerate(parts)]
    while rendered and utf16_len("\n".join(text for _, _, text in rendered)) > limit:
        rendered.remove(min(rendered, key=lambda item: (item[0], -item[1])))
    return "\n".join(text for _, _, text in rendered)


def render_card(
    *,
    mail: ParsedMail,
    triage: TriageResult,
    draft: str,
    mailbox: str,
    tier: str,
    event_note: str | None = None,
    conflicts: Sequence[str] = (),
    fit: Fit | None = None,
) -> str:
    """The card as Telegram HTML (parse mode ``HTML``), at most 4096 characters."""
    return _assemble(_parts(mail, triage, draft, mailbox, tier, event_note, conflicts, fit), _render_html,
                     TELEGRAM_LIMIT)


def render_plain(
    *,
    mail: ParsedMail,
    triage: TriageResult,
    draft: str,
    mailbox: str,
    tier: str,
    event_note: str | None = None,
    conflicts: Sequence[str] = (),
    fit: Fit | None = None,
) -> str:
    """The same card as plain text (for stdout)."""
    return _assemble(_parts(mail, triage, draft, mailbox, tier, event_note, conflicts, fit), _render_plain,
                     TELEGRAM_LIMIT)
