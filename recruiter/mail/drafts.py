"""Where reply drafts go: the mailbox's Drafts folder over IMAP, or `.eml` files in a folder.

Both can be asked whether a draft for a message key already exists, so a retry after a crash never
writes a second one (the draft carries the key in its `X-Recruiter-Key` header).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from pathlib import Path
from typing import Protocol

import aioimaplib

from recruiter.mail import imap
from recruiter.mail.compose import KEY_HEADER, find_header_value
from recruiter.mail.mailops import match_drafts
from recruiter.settings import MailboxSettings


class DraftSink(Protocol):
    """Somewhere a reply draft can be stored once."""

    async def find(self, key: str, original_id: str | None = None) -> str | None:
        """A reference to the existing draft for ``key`` (or the one key-less reply to ``original_id``),
        or None."""

    async def append(self, raw: bytes) -> str:
        """Store a draft; returns a reference to it."""

    async def aclose(self) -> None:
        """Release connections."""


class DirDrafts:
    """Drafts as `.eml` files: the embedded default (`./drafts/`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, key: str) -> Path:
        """The file a draft for ``key`` lives in."""
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:80]
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        return self.directory / f"{safe}-{digest}.eml"

    async def find(self, key: str, original_id: str | None = None) -> str | None:
        path = self.path_for(key)
        return str(path) if path.exists() else None

    async def append(self, raw: bytes) -> str:
        key = _key_of(raw)
        path = self.path_for(key)
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(raw)
        os.replace(tmp, path)
        return str(path)

    async def aclose(self) -> None:
        return None


def _key_of(raw: bytes) -> str:
    key = find_header_value(raw, KEY_HEADER)
    if not key:
        raise ValueError(f"draft has no {KEY_HEADER} header")
    return key.strip()


class ImapDrafts:
    """The Drafts folder of one IMAP mailbox, over its own connection (the watcher's is in IDLE)."""

    def __init__(self, mb: MailboxSettings, *, timeout: float = 30.0) -> None:
        self.mb = mb
        self.timeout = timeout
        self.folder: str | None = None
        self._client: aioimaplib.IMAP4 | None = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> aioimaplib.IMAP4:
        if self._client is not None and self._client.get_state() == "SELECTED":
            return self._client
        await self._drop()
        client = await imap.connect(self.mb, timeout=self.timeout)
        try:
            if self.folder is None:
                self.folder = self.mb.drafts or await imap.find_special_use(client, self.mb.name, "\\Drafts")
                self.folder = self.folder or "Drafts"
            await imap.select(client, self.mb.name, self.folder)
        except BaseException:
            await imap.close(client)
            raise
        self._client = client
        return client

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await imap.close(client)

    async def find(self, key: str, original_id: str | None = None) -> str | None:
        """The draft for ``key`` identified exactly (see :func:`match_drafts`); several competing key-less
        replies count as none (a draft with our key is then written, and that one is sent)."""
        async with self._lock:
            try:
                with imap.guard(self.mb.name, "draft search"):
                    client = await self._connect()
                    await client.noop()
                    match = await match_drafts(client, self.mb.name, key, original_id)
            except BaseException:
                await self._drop()
                raise
            uid = match.newest
            return f"{self.mb.name}:{self.folder}:{uid}" if uid is not None else None

    async def append(self, raw: bytes) -> str:
        async with self._lock:
            try:
                with imap.guard(self.mb.name, "draft append"):
                    client = await self._connect()
                    assert self.folder is not None
                    uid = await imap.append(client, self.mb.name, raw, self.folder, "(\\Draft)")
            except BaseException:
                await self._drop()
                raise
            return f"{self.mb.name}:{self.folder}:{uid if uid is not None else '?'}"

    async def aclose(self) -> None:
        async with self._lock:
            await self._drop()
