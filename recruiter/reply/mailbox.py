"""What a one-tap action does in the owner's IMAP mailbox: read the current draft, file the sent copy,
delete the draft, flag the original ``\\Answered``.

Each call opens its own short connection (a tap is rare; the watcher's connection is busy in IDLE).
Every operation can be repeated safely: the sent copy is looked up by Message-ID before it is
appended, deleting a draft that is gone does nothing, and setting a flag twice is setting it once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

import aioimaplib
import structlog

from recruiter.errors import AmbiguousDraft, Dropped, ImapError
from recruiter.mail import imap
from recruiter.reply.compose import KEY_HEADER, find_header_value
from recruiter.settings import MailboxSettings

log = structlog.get_logger()
T = TypeVar("T")
_MSG_ID = re.compile(r"<[^<>\s\"\\]{1,900}>")
_FOLD = re.compile(r"\r?\n[ \t]+")


@dataclass(frozen=True)
class Competitor:
    """A draft that answers the mail but carries no key: one of several the owner must choose between."""

    uid: int
    subject: str
    to: str


@dataclass(frozen=True)
class DraftMatch:
    """The drafts of one mail. ``by="key"``: every version carrying exactly our key (newest last);
    ``by="reply"``: the one key-less draft whose In-Reply-To is exactly the mail's Message-ID;
    ``by="ambiguous"``: several such drafts compete (``competing``) and none may be picked."""

    by: str
    uids: list[int]
    competing: list[Competitor]

    @property
    def newest(self) -> int | None:
        return self.uids[-1] if self.uids and self.by != "ambiguous" else None


def _header(raw: bytes, name: str) -> str:
    return _FOLD.sub(" ", find_header_value(raw, name) or "").strip()


async def match_drafts(client: aioimaplib.IMAP4, mailbox: str, key: str, original_id: str | None, *,
                       live_only: bool = True) -> DraftMatch:
    """The drafts of the mail with ``key`` in the selected Drafts folder, identified exactly.

    SEARCH HEADER is a substring match (``<abc@x>`` finds ``<zabc@x>``; a follow-up's draft references
    the first mail), so it only narrows: the fetched header must equal the key. Several drafts with the
    key are versions of one draft. Without any, a draft whose In-Reply-To equals ``original_id`` (an edit
    that lost our header) counts only when it is the only one and carries no other mail's key.
    ``live_only`` leaves out versions flagged ``\\Deleted`` (a client's replaced draft, not yet expunged)."""
    live = ("UNDELETED",) if live_only else ()
    fields = f"{KEY_HEADER.upper()} IN-REPLY-TO SUBJECT TO"
    found = await imap.uid_search(client, mailbox, *live, "HEADER", KEY_HEADER, imap.quote(key))
    if found:
        heads = await imap.fetch_headers(client, mailbox, found, fields)
        exact = sorted(uid for uid, head in heads.items() if _header(head.header, KEY_HEADER) == key)
        if exact:
            return DraftMatch("key", exact, [])
    if not original_id or not _MSG_ID.fullmatch(original_id):
        return DraftMatch("none", [], [])
    found = await imap.uid_search(client, mailbox, *live, "HEADER", "In-Reply-To", imap.quote(original_id))
    heads = await imap.fetch_headers(client, mailbox, found, fields) if found else {}
    replies = sorted(uid for uid, head in heads.items()
                     if _header(head.header, "In-Reply-To") == original_id
                     and not _header(head.header, KEY_HEADER))
    if len(replies) == 1:
        return DraftMatch("reply", replies, [])
    if replies:
        competing = [Competitor(uid, _header(heads[uid].header, "Subject")[:200],
                                _header(heads[uid].header, "To")[:200]) for uid in replies]
        return DraftMatch("ambiguous", replies, competing)
    return DraftMatch("none", [], [])


@dataclass(frozen=True)
class DraftCopy:
    """A draft as it is now in the Drafts folder."""

    folder: str
    uidvalidity: int
    uid: int
    raw: bytes
    by: str = "key"  # "key": it carries our key; "reply": the one key-less reply to the mail


class ImapMailbox:
    """The folders of one IMAP mailbox that the actions touch."""

    def __init__(self, mb: MailboxSettings, *, timeout: float = 30.0) -> None:
        self.mb = mb
        self.timeout = timeout
        self._folders: dict[str, str] = {}

    @asynccontextmanager
    async def _session(self, what: str) -> AsyncIterator[aioimaplib.IMAP4]:
        with imap.guard(self.mb.name, what):
            client = await imap.connect(self.mb, timeout=self.timeout)
            try:
                yield client
            finally:
                await imap.close(client)

    async def _twice(self, what: str, op: Callable[[], Awaitable[T]]) -> T:
        """``op`` (its own session), once more at once when the connection was lost under it or a command
        timed out: every operation here is safe to repeat (see the module's docstring)."""
        try:
            return await op()
        except ImapError as exc:
            if not (isinstance(exc, Dropped)
                    or isinstance(exc.__cause__, imap.ConnectionGone | aioimaplib.CommandTimeout)):
                raise
            log.warning("imap.retry_at_once", mailbox=self.mb.name, what=what, error=str(exc))
            return await op()

    async def find_draft(self, key: str, original_id: str | None) -> DraftCopy | None:
        """See :meth:`_find_draft_once`; retried once at once when the connection breaks."""
        return await self._twice("draft fetch", lambda: self._find_draft_once(key, original_id))

    async def delete_drafts(self, key: str, original_id: str | None, *, uidvalidity: int | None = None,
                            uids: Iterable[int] = ()) -> int:
        """See :meth:`_delete_drafts_once`; retried once at once when the connection breaks."""
        chosen = list(uids)
        return await self._twice("draft delete", lambda: self._delete_drafts_once(
            key, original_id, uidvalidity=uidvalidity, uids=chosen))

    async def append_sent(self, raw: bytes, message_id: str) -> str:
        """See :meth:`_append_sent_once`; retried once at once when the connection breaks (the copy is
        looked up by Message-ID first, so a lost APPEND answer never files two)."""
        return await self._twice("sent copy", lambda: self._append_sent_once(raw, message_id))

    async def flag_answered(self, folder: str, uidvalidity: int | None, uid: int | None,
                            message_id: str | None) -> int:
        """See :meth:`_flag_answered_once`; retried once at once when the connection breaks."""
        return await self._twice("flag answered", lambda: self._flag_answered_once(
            folder, uidvalidity, uid, message_id))

    async def _folder(self, client: aioimaplib.IMAP4, flag: str, configured: str | None, default: str) -> str:
        del default  # a folder that does not exist is said, never guessed (imap.missing_folder)
        if flag not in self._folders:
            found = await imap.find_folder(client, self.mb.name, flag, configured)
            if found is None:
                raise imap.missing_folder(self.mb.name, flag)
            self._folders[flag] = found
        return self._folders[flag]

    async def _drafts(self, client: aioimaplib.IMAP4) -> tuple[str, int]:
        folder = await self._folder(client, "\\Drafts", self.mb.drafts, "Drafts")
        return folder, (await imap.select(client, self.mb.name, folder)).uidvalidity

    async def _find_draft_once(self, key: str, original_id: str | None) -> DraftCopy | None:
        """The newest version of the draft for ``key`` (an edited draft is usually a new message with a
        higher UID), else the one key-less reply to ``original_id``; raises AmbiguousDraft when several
        key-less replies compete."""
        async with self._session("draft fetch") as client:
            folder, validity = await self._drafts(client)
            match = await match_drafts(client, self.mb.name, key, original_id)
            if match.by == "ambiguous":
                raise AmbiguousDraft(match.competing, KEY_HEADER)
            for uid in reversed(match.uids):
                raw = (await imap.fetch_raw(client, self.mb.name, [uid])).get(uid)
                if raw:
                    return DraftCopy(folder, validity, uid, raw, match.by)
        return None

    async def _delete_drafts_once(self, key: str, original_id: str | None, *, uidvalidity: int | None = None,
                            uids: Iterable[int] = ()) -> int:
        """Delete what was sent: the given draft UIDs (when UIDVALIDITY still matches) and every version
        carrying exactly ``key`` (``\\Deleted`` then ``UID EXPUNGE`` of exactly those UIDs). Other drafts
        answering the same mail stay. Returns how many were deleted."""
        del original_id  # a key-less draft is deleted only by its UID: the one that was sent
        async with self._session("draft delete") as client:
            _, validity = await self._drafts(client)
            chosen = set(uids) if uidvalidity == validity else set()
            match = await match_drafts(client, self.mb.name, key, None, live_only=False)
            if match.by == "key":
                chosen |= set(match.uids)
            if chosen:
                await self._expunge(client, sorted(chosen))
            return len(chosen)

    async def _expunge(self, client: aioimaplib.IMAP4, uids: list[int]) -> None:
        await asyncio.wait_for(imap.add_flags(client, self.mb.name, uids, "\\Deleted"), self.timeout)
        response = await asyncio.wait_for(client.uid("expunge", ",".join(str(u) for u in uids)), self.timeout)
        if response.result != "OK":
            raise imap.unavailable(self.mb.name, f"UID EXPUNGE answered {response.result}")

    async def _append_sent_once(self, raw: bytes, message_id: str) -> str:
        """File a copy in Sent (``\\Seen``) unless one with this Message-ID is there already."""
        async with self._session("sent copy") as client:
            folder = await self._folder(client, "\\Sent", self.mb.sent, "Sent")
            await imap.select(client, self.mb.name, folder)
            if _MSG_ID.fullmatch(message_id):
                found = await imap.uid_search(client, self.mb.name, "HEADER", "Message-ID", imap.quote(message_id))
                if found:
                    return f"{folder}:{found[-1]}"
            uid = await imap.append(client, self.mb.name, raw, folder, "(\\Seen)")
            return f"{folder}:{uid if uid is not None else '?'}"

    async def _flag_answered_once(self, folder: str, uidvalidity: int | None, uid: int | None,
                            message_id: str | None) -> int:
        """Set ``\\Answered`` on the original: by UID when UIDVALIDITY still matches, else found by
        Message-ID. Returns how many messages were flagged (0 when it cannot be found any more)."""
        async with self._session("flag answered") as client:
            selected = await imap.select(client, self.mb.name, folder)
            if uid is not None and uidvalidity == selected.uidvalidity:
                uids = [uid]
            elif message_id and _MSG_ID.fullmatch(message_id):
                uids = await imap.uid_search(client, self.mb.name, "HEADER", "Message-ID", imap.quote(message_id))
            else:
                uids = []
            if uids:
                await asyncio.wait_for(imap.add_flags(client, self.mb.name, uids, "\\Answered"), self.timeout)
            return len(uids)
