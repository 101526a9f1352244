"""The card's one-tap actions — send the draft as it is now, decline politely, ignore — each exactly once.

Every step is a keyed side effect of the message (``side_effects.key`` is unique):

    {key}:action        the claim: whoever inserts it runs the action (a JSON lease, renewed while running)
    {key}:smtp-intent   written before the SMTP conversation: the bytes, Message-ID and draft UID
    {key}:smtp          the server accepted the message
    {key}:sent-copy     the copy filed in Sent
    {key}:draft-deleted the draft removed from Drafts
    {key}:answered      the original flagged \\Answered
    {key}:handled       the end: "sent", "declined", "ignored" or "uncertain"

A concurrent second tap loses the insert race and is told the action is in progress. A tap after a
crash takes over the expired claim and resumes: an intent without a result means the process died
while talking to the SMTP server — the reply may have gone out, so it is never sent again and the
owner is told so. A failure before the server accepted the message releases the claim, so the link
works again; a failure after it (IMAP down) also releases it, and the next tap finishes the rest.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import html
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, TypeVar

import structlog

from recruiter.budget import Budget
from recruiter.errors import AmbiguousDraft, MaybeSent, PermanentError, RecruiterError, TransientError
from recruiter.mail.parse import ParsedMail, parse_message
from recruiter.mail.smtp import SmtpSender
from recruiter.model import TriageResult
from recruiter.notify.telegram import Notifier
from recruiter.reply.compose import KEY_HEADER, build_reply
from recruiter.reply.mailbox import ImapMailbox
from recruiter.reply.outgoing import Outgoing, prepare
from recruiter.reply.template import template_decline
from recruiter.store.models import DONE, Message
from recruiter.store.patience import patiently
from recruiter.store.repo import Store

log = structlog.get_logger()
T = TypeVar("T")
SENDING = ("send", "decline")
HANDLED_TITLES = {
    "sent": "Sent", "declined": "Declined", "ignored": "Ignored", "uncertain": "May have been sent",
}


@dataclass(frozen=True)
class Outcome:
    """What the page says: an HTTP status, a short title, one paragraph and, after a send, the text that
    went out."""

    status: int
    title: str
    detail: str
    sent_text: str | None = None


@dataclass(frozen=True)
class Identity:
    """Who the replies are from when the draft does not say (decline, or a From-less edited draft)."""

    name: str = ""
    address: str = ""  # SMTP_FROM_ADDR: also the envelope sender when set


class _Retry(Exception):
    """An outcome after which the claim is released, so the link can be used again."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.detail)
        self.outcome = outcome


class Actions:
    """Runs one action on one stored message; collaborators are handed in."""

    def __init__(self, store: Store, *, mailboxes: Mapping[str, ImapMailbox], smtp: SmtpSender | None,
                 notifier: Notifier | None, profile: str, identity: Identity, lease_seconds: float = 60.0,
                 clock: Callable[[], float] = time.time, budget: Budget | None = None) -> None:
        self.store, self.mailboxes, self.smtp, self.notifier = store, mailboxes, smtp, notifier
        self.budget = budget  # the mail is parsed there, never on the event loop
        self.profile, self.identity, self.lease_seconds, self.clock = profile, identity, lease_seconds, clock

    async def run(self, action: str, message_id: int) -> Outcome:
        """Do ``action`` on the message once; every later call answers what was done."""
        row = await self.store.get(message_id, with_raw=True)
        if row is None:
            return Outcome(404, "Unknown mail", "There is no stored mail with this number.")
        if row.state != DONE or not row.is_recruiter:
            return Outcome(409, "Not possible", "This mail is not a processed recruiter mail.")
        if action in SENDING and self.smtp is None:
            return Outcome(503, "SMTP is not configured", "Set SMTP_HOST to send replies. Nothing was done.")
        if action in SENDING and row.mailbox not in self.mailboxes:
            return Outcome(409, "Not possible", "This mail did not come from a watched IMAP mailbox; "
                                                "answer it from your mail program. Nothing was done.")
        bound = log.bind(message_id=row.id, key=row.key, action=action)
        done = await self.store.effect(f"{row.key}:handled")
        if done is not None:
            return self._already(done, row, await self._intent(row))
        claim = await self._claim(row, action)
        if claim is None:
            done = await self.store.effect(f"{row.key}:handled")
            if done is not None:
                return self._already(done, row, await self._intent(row))
            return Outcome(409, "In progress", "This action is being carried out right now. "
                                               "Open the link again in a few minutes to see the result.")
        renewer = asyncio.create_task(self._renew(row.key, claim), name=f"claim:{row.id}")
        try:
            outcome = await self._perform(action, row, bound)
        except _Retry as retry:
            await self._release(row.key, renewer)
            return retry.outcome
        except BaseException:
            await self._release(row.key, renewer)
            raise
        renewer.cancel()
        return outcome

    async def _intent(self, row: Message) -> dict[str, Any] | None:
        """What was (or may have been) handed to SMTP for this mail, or None."""
        intent = await self.store.effect(f"{row.key}:smtp-intent")
        return _loads(intent) if intent else None

    # ---- the claim --------------------------------------------------------------------------

    def _lease(self, action: str) -> str:
        return json.dumps({"action": action, "owner": secrets.token_hex(8), "at": self.clock()})

    async def _claim(self, row: Message, action: str) -> list[str] | None:
        """The held claim's current ref (in a one-element list the renewer updates), or None."""
        key = f"{row.key}:action"
        ref = self._lease(action)
        if await self.store.claim_effect(row.id, key, "action", ref):
            return [ref]
        current = await self.store.effect(key)
        if current is None:  # released in between: try once more
            return [ref] if await self.store.claim_effect(row.id, key, "action", ref) else None
        if _lease_at(current) + self.lease_seconds > self.clock():
            return None
        # The holder stopped renewing (it died): take over, atomically against other takers.
        return [ref] if await self.store.swap_effect(key, current, ref) else None

    async def _renew(self, key: str, claim: list[str]) -> None:
        while True:
            await asyncio.sleep(max(0.5, self.lease_seconds / 3))
            fresh = json.dumps({**json.loads(claim[0]), "at": self.clock()})
            try:
                if await self.store.swap_effect(f"{key}:action", claim[0], fresh):
                    claim[0] = fresh
            except RecruiterError as exc:
                log.warning("action.renew_failed", key=key, error=str(exc))

    async def _release(self, key: str, renewer: asyncio.Task[None]) -> None:
        renewer.cancel()
        try:
            await asyncio.shield(self.store.forget_effect(f"{key}:action"))
        except RecruiterError as exc:  # the claim expires by itself
            log.warning("action.release_failed", key=key, error=str(exc))

    # ---- the actions ------------------------------------------------------------------------

    async def _perform(self, action: str, row: Message, bound: Any) -> Outcome:
        intent = await self.store.effect(f"{row.key}:smtp-intent")
        if intent is None and action == "ignore":
            await self._finish(row, "ignored", bound)
            return Outcome(200, "Ignored", "Marked as handled. Nothing was sent; the draft stays in Drafts.")
        if intent is None:
            intent, accepted = await self._send(action, row, bound)
            if not accepted:
                return await self._uncertain(row, json.loads(intent), bound)
        elif await self.store.effect(f"{row.key}:smtp") is None:
            return await self._uncertain(row, json.loads(intent), bound)
        return await self._after_send(row, json.loads(intent), bound)

    async def _send(self, action: str, row: Message, bound: Any) -> tuple[str, bool]:
        """Record the intent, hand the message to SMTP, record the result. Returns the intent and whether
        the server accepted the message (False: it may have, the connection broke after the data)."""
        assert self.smtp is not None
        mailbox = self.mailboxes[row.mailbox]
        mail = await self._parse(row.raw)
        outgoing, draft = await self._outgoing(action, row, mail, mailbox)
        intent = json.dumps({
            "action": action, "message_id": outgoing.message_id, "to": list(outgoing.recipients),
            "subject": outgoing.subject[:300], "draft": draft, "raw": base64.b64encode(outgoing.raw).decode(),
        })
        await self.store.claim_effect(row.id, f"{row.key}:smtp-intent", "smtp-intent", intent)
        try:
            answer = await self.smtp.send(outgoing.wire, sender=outgoing.sender, recipients=outgoing.recipients)
        except MaybeSent as exc:
            bound.error("action.smtp_uncertain", server=self.smtp.settings.host, error=str(exc))
            return intent, False
        except (TransientError, PermanentError) as exc:
            # The server did not take it: nothing was sent, the link may be used again.
            await patiently(lambda: self.store.forget_effect(f"{row.key}:smtp-intent"), bound)
            bound.warning("action.smtp_failed", error=str(exc), error_class=type(exc).__name__)
            if isinstance(exc, PermanentError):
                raise _Retry(Outcome(502, "Not sent", f"The mail server refused the message: {exc}. "
                                                      "Nothing was sent; fix the draft and try again.")) from exc
            raise _Retry(Outcome(503, "Not sent — try again", f"The mail server could not be reached ({exc}). "
                                 "Nothing was sent. Open the link again later.")) from exc
        await patiently(lambda: self.store.claim_effect(row.id, f"{row.key}:smtp", "smtp", answer), bound)
        bound.info("action.smtp_sent", message_id=outgoing.message_id, recipients=len(outgoing.recipients))
        return intent, True

    async def _parse(self, raw: bytes) -> ParsedMail:
        """The stored mail, parsed in a helper process under the CPU budget (a thread without one).
        The worker read it within the budget once; should it fail now, nothing is sent."""
        try:
            if self.budget is None:
                return await asyncio.to_thread(parse_message, raw)
            return await self.budget.run(parse_message, raw)
        except PermanentError as exc:
            raise _Retry(Outcome(500, "Not sent", f"The mail cannot be read again ({exc}). Nothing was sent; "
                                                  "answer it from your mail program.")) from exc

    async def _outgoing(self, action: str, row: Message, mail: ParsedMail,
                        mailbox: ImapMailbox) -> tuple[Outgoing, dict[str, Any] | None]:
        """The bytes to send: the draft as it is now, or a decline written from the owner profile."""
        from_addr = self.identity.address or mailbox.mb.address
        draft: dict[str, Any] | None = None
        try:
            if action == "send":
                try:
                    copy = await mailbox.find_draft(row.key, row.message_id)
                except AmbiguousDraft as exc:
                    raise _Retry(_competing(exc)) from exc
                if copy is None:
                    raise _Retry(Outcome(409, "No draft", "There is no draft for this mail in Drafts any more. "
                                                          "Nothing was sent."))
                raw = copy.raw
                draft = {"folder": copy.folder, "uidvalidity": copy.uidvalidity, "uid": copy.uid, "by": copy.by}
            else:
                triage = TriageResult.model_validate(row.triage or {"is_recruiter": True, "confidence": 1.0})
                body = template_decline(self.profile, mail, triage, owner_name=self.identity.name)
                raw = build_reply(mail, from_addr=from_addr, from_name=self.identity.name, body=body, key=row.key)
        except TransientError as exc:
            raise _Retry(Outcome(503, "Not sent — try again", f"The mailbox could not be read ({exc}). "
                                                               "Nothing was sent. Open the link again later.")) from exc
        try:
            return prepare(raw, from_addr=from_addr, from_name=self.identity.name,
                           envelope_from=self.identity.address), draft
        except ValueError as exc:
            raise _Retry(Outcome(409, "Not sent", f"The draft cannot be sent: {exc}.")) from exc

    async def _after_send(self, row: Message, intent: dict[str, Any], bound: Any) -> Outcome:
        """The steps after SMTP accepted the message, each once; then the card."""
        mailbox = self.mailboxes.get(row.mailbox)
        steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
        if mailbox is not None:
            raw = base64.b64decode(intent["raw"])
            draft = intent.get("draft") or {}
            steps = [
                ("sent-copy", lambda: mailbox.append_sent(raw, intent["message_id"])),
                ("draft-deleted", lambda: mailbox.delete_drafts(
                    row.key, row.message_id, uidvalidity=draft.get("uidvalidity"),
                    uids=[draft["uid"]] if draft.get("uid") else [])),
                ("answered", lambda: mailbox.flag_answered(row.folder or "INBOX", row.uidvalidity, row.uid,
                                                           row.message_id)),
            ]
        for name, step in steps:
            key = f"{row.key}:{name}"
            if await self.store.effect(key) is not None:
                continue
            try:
                ref = await step()
            except TransientError as exc:
                bound.warning("action.step_failed", step=name, error=str(exc))
                raise _Retry(Outcome(503, "Sent — not finished", "The reply was sent. Filing the copy in Sent, "
                                     "deleting the draft and flagging the mail did not all finish "
                                     f"({exc}). Open the link again later to finish; it will not be sent "
                                     "again.")) from exc
            await self.store.claim_effect(row.id, key, name, str(ref))
            bound.info(f"action.{name.replace('-', '_')}", ref=str(ref))
        what = "sent" if intent.get("action") == "send" else "declined"
        await self._finish(row, what, bound, intent)
        return self._already(what, row, intent)

    async def _uncertain(self, row: Message, intent: dict[str, Any], bound: Any) -> Outcome:
        bound.error("action.uncertain", note="an earlier attempt died while talking to the SMTP server")
        await self._finish(row, "uncertain", bound, intent)
        return self._already("uncertain", row, intent)

    async def _finish(self, row: Message, what: str, bound: Any, intent: dict[str, Any] | None = None) -> None:
        stored = json.dumps({"done": what, "message_id": (intent or {}).get("message_id"),
                             "to": (intent or {}).get("to", [])})
        await patiently(lambda: self.store.claim_effect(row.id, f"{row.key}:handled", "handled", stored), bound)
        bound.info("action.done", done=what)
        await self._edit_card(row, what, intent, bound)

    # ---- what the owner sees ----------------------------------------------------------------

    def _already(self, done: str, row: Message, intent: dict[str, Any] | None = None) -> Outcome:
        record = _loads(done)
        what = record.get("done", done)
        to = ", ".join((intent or record).get("to") or [])
        message_id = (intent or record).get("message_id") or "?"
        if what == "uncertain":
            server = self.smtp.settings.host if self.smtp is not None else "the SMTP server"
            return Outcome(200, "May have been sent", (
                f"The service stopped while handing this reply to {server}, so it may or may not have gone out "
                f"to {to or 'the recipient'}. It will not be sent again. Check the Sent folder of that mail "
                f"account (Message-ID {message_id}) or ask the recipient. The draft is still in Drafts if you "
                "want to send it yourself."))
        if what == "sent":
            return Outcome(200, "Sent", f"Your reply went to {to} (Message-ID {message_id}); a copy is in Sent, "
                                        "the draft is deleted and the mail is marked answered. This is what "
                                        "went out:", sent_text=_sent_text(intent))
        if what == "declined":
            return Outcome(200, "Declined", f"A short polite decline went to {to}; a copy is in Sent. This is "
                                            "what went out:", sent_text=_sent_text(intent))
        return Outcome(200, "Ignored", "This mail is marked as handled. Nothing was sent.")

    async def _edit_card(self, row: Message, what: str, intent: dict[str, Any] | None, bound: Any) -> None:
        """Show on the card what was done; a failure is logged and changes nothing else."""
        ref = await self.store.effect(f"{row.key}:notify")
        if self.notifier is None or not ref or ref == "uncertain":
            return
        try:
            if await self.store.count_effects("notify", ref) > 1:
                bound.info("card.edit_skipped", reason="digest card shared with other mails")
                return
            await self.notifier.edit_card(ref, card_text(row, what, intent))
            bound.info("card.edited", ref=ref, done=what)
        except RecruiterError as exc:
            bound.error("card.edit_failed", ref=ref, error=str(exc))


def card_text(row: Message, what: str, intent: dict[str, Any] | None) -> str:
    """The card's new text (Telegram HTML): what was done, to whom, about which mail."""
    icon = {"sent": "✅", "declined": "🙅", "ignored": "🙈", "uncertain": "⚠️"}.get(what, "•")
    lines = [f"{icon} <b>{html.escape(HANDLED_TITLES.get(what, what))}</b>",
             f"<b>{html.escape(row.subject[:200] or '(no subject)', quote=False)}</b>",
             f"from {html.escape(row.from_addr[:200], quote=False)}"]
    if intent and intent.get("to"):
        lines.append(f"to {html.escape(', '.join(intent['to'])[:300], quote=False)}")
    if what == "uncertain":
        lines.append("The service stopped while sending: check your Sent folder. It will not be sent again.")
    return "\n".join(lines)


def _competing(exc: AmbiguousDraft) -> Outcome:
    """The page when several key-less drafts answer the mail: which ones, and how to settle it."""
    names = "; ".join(f"draft {c.uid}: “{c.subject or '(no subject)'}” to {c.to or '(no recipient)'}"
                      for c in exc.competing)
    return Outcome(409, "Several drafts — nothing sent", (
        f"{len(exc.competing)} drafts in Drafts answer this mail and none of them is the one the service "
        f"wrote (they lost its {KEY_HEADER} header when edited), so it cannot tell which one you mean: "
        f"{names}. Delete the ones you do not want to send, then open the link again. Nothing was sent."))


def _sent_text(intent: dict[str, Any] | None, limit: int = 8000) -> str | None:
    """The plain-text body of the message handed to SMTP (from the recorded intent), or None."""
    if not intent or not intent.get("raw"):
        return None
    try:
        message = email.message_from_bytes(base64.b64decode(intent["raw"]), policy=email.policy.default)
        part = message.get_body(preferencelist=("plain",)) if isinstance(message, EmailMessage) else None
        text = part.get_content() if part is not None else ""
    except Exception:  # a body we cannot read back is not worth failing the page for
        return None
    text = str(text).strip()
    return text if len(text) <= limit else text[:limit] + "\n…"


def _lease_at(ref: str) -> float:
    value = _loads(ref).get("at")
    return float(value) if isinstance(value, int | float) else 0.0


def _loads(ref: str) -> dict[str, Any]:
    try:
        value = json.loads(ref)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


