"""What a one-tap action does in the owner's IMAP mailbox: read the current draft, file the sent copy,
delete the draft, flag the original ``\\Answered``.

Each call opens its own short connection (a tap is rare; the watcher's connection is busy in IDLE).
Every operation can be repeated safely: the sent copy is looked up by Message-ID before it is
appended, deleting a draft that is gone does nothing, and setting a flag twice is setting it once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aioimaplib

from recruiter.mail import imap
from recruiter.mail.compose import KEY_HEADER
from recruiter.settings import MailboxSettings

_MSG_ID = re.compile(r"<[^<>\s\"\\]{1,900}>")


@dataclass(frozen=True)
class DraftCopy:
    """A draft as it is now in the Drafts folder."""

    folder: str
    uidvalidity: int
    uid: int
    raw: bytes


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

    async def _folder(self, client: aioimaplib.IMAP4, flag: str, configured: str | None, default: str) -> str:
        if flag not in self._folders:
            found = configured or await imap.find_special_use(client, self.mb.name, flag)
            self._folders[flag] = found or default
        return self._folders[flag]

    async def _drafts(self, client: aioimaplib.IMAP4) -> tuple[str, int]:
        folder = await self._folder(client, "\\Drafts", self.mb.drafts, "Drafts")
        return folder, (await imap.select(client, self.mb.name, folder)).uidvalidity

    async def _search_drafts(self, client: aioimaplib.IMAP4, key: str, original_id: str | None, *,
                             live_only: bool = False) -> list[int]:
        """Drafts carrying our key header; when the owner removed it, replies threaded under the original.
        ``live_only`` leaves out versions flagged ``\\Deleted`` (a client's replaced draft, not yet expunged)."""
        live = ("UNDELETED",) if live_only else ()
        uids = await imap.uid_search(client, self.mb.name, *live, "HEADER", KEY_HEADER, imap.quote(key))
        if not uids and original_id and _MSG_ID.fullmatch(original_id):
            quoted = imap.quote(original_id)
            uids = sorted(
                set(await imap.uid_search(client, self.mb.name, *live, "HEADER", "In-Reply-To", quoted))
                | set(await imap.uid_search(client, self.mb.name, *live, "HEADER", "References", quoted)))
        return uids

    async def find_draft(self, key: str, original_id: str | None) -> DraftCopy | None:
        """The newest draft for ``key`` (an edited draft is usually a new message with a higher UID)."""
        async with self._session("draft fetch") as client:
            folder, validity = await self._drafts(client)
            uids = await self._search_drafts(client, key, original_id, live_only=True)
            for uid in reversed(uids):
                raw = (await imap.fetch_raw(client, self.mb.name, [uid])).get(uid)
                if raw:
                    return DraftCopy(folder, validity, uid, raw)
        return None

    async def delete_drafts(self, key: str, original_id: str | None, *, uidvalidity: int | None = None,
                            uids: Iterable[int] = ()) -> int:
        """Delete the given draft UIDs (when UIDVALIDITY still matches) and every other draft for ``key``:
        ``\\Deleted`` then ``UID EXPUNGE`` of exactly those UIDs. Returns how many were deleted."""
        async with self._session("draft delete") as client:
            _, validity = await self._drafts(client)
            chosen = set(uids) if uidvalidity == validity else set()
            chosen |= set(await self._search_drafts(client, key, original_id))
            if chosen:
                await self._expunge(client, sorted(chosen))
            return len(chosen)

    async def _expunge(self, client: aioimaplib.IMAP4, uids: list[int]) -> None:
        await asyncio.wait_for(imap.add_flags(client, self.mb.name, uids, "\\Deleted"), self.timeout)
        response = await asyncio.wait_for(client.uid("expunge", ",".join(str(u) for u in uids)), self.timeout)
        if response.result != "OK":
            raise imap.unavailable(self.mb.name, f"UID EXPUNGE answered {response.result}")

    async def append_sent(self, raw: bytes, message_id: str) -> str:
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

    async def flag_answered(self, folder: str, uidvalidity: int | None, uid: int | None,
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
