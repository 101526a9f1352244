"""Where reply drafts go: the mailbox's Drafts folder over IMAP, or `.eml` files in a folder.

Both can be asked whether a draft for a message key already exists, so a retry after a crash never
writes a second one (the draft carries the key in its `X-Recruiter-Key` header).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol, TypeVar

import aioimaplib
import structlog

from recruiter.errors import Dropped, ImapError
from recruiter.mail import imap
from recruiter.reply.compose import KEY_HEADER, find_header_value
from recruiter.reply.mailbox import DraftMatch, match_drafts
from recruiter.settings import MailboxSettings

log = structlog.get_logger()
T = TypeVar("T")
PROBE_AFTER_SECONDS = 15.0  # a kept connection unused this long is checked with a NOOP before it is trusted
PROBE_TIMEOUT_SECONDS = 3.0  # ... which must answer this fast


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
    """The Drafts folder of one IMAP mailbox, over a kept connection of its own (the watcher's is in IDLE).

    A kept connection dies with its server, often without a word. It is dropped as soon as the transport
    says the server closed it; one unused for ``probe_after`` seconds is checked with a NOOP (answered
    within ``probe_timeout``) before it is trusted again; a command that loses its connection or gets no
    answer is tried once more at once on a new connection (not a failed attempt of the message). An APPEND
    whose answer was lost first looks for its draft by exact key, so the retry never leaves two."""

    def __init__(self, mb: MailboxSettings, *, timeout: float = 30.0, probe_after: float = PROBE_AFTER_SECONDS,
                 probe_timeout: float = PROBE_TIMEOUT_SECONDS) -> None:
        self.mb = mb
        self.timeout = timeout
        self.probe_after = probe_after
        self.probe_timeout = min(probe_timeout, timeout)
        self.folder: str | None = None
        self._client: aioimaplib.IMAP4 | None = None
        self._lost = asyncio.Event()
        self._used = 0.0
        self._lock = asyncio.Lock()

    async def _connect(self) -> aioimaplib.IMAP4:
        client = self._client
        if client is not None and (self._lost.is_set() or client.get_state() != "SELECTED"):
            log.info("imap.kept_connection_dropped", mailbox=self.mb.name, reason="closed by the server")
            await self._drop(polite=False)
        elif client is not None and time.monotonic() - self._used > self.probe_after:
            try:
                answer = await imap.until_lost(client.noop(), self._lost, self.probe_timeout, self.mb.name, "NOOP")
                alive = answer.result == "OK"
            except (ImapError, aioimaplib.AioImapException, OSError):
                alive = False
            if not alive:
                log.info("imap.kept_connection_dropped", mailbox=self.mb.name, reason="no answer to NOOP")
                await self._drop(polite=False)
        if self._client is None:
            lost = asyncio.Event()
            client = await imap.connect(self.mb, timeout=self.timeout, conn_lost=lambda _exc: lost.set())
            try:
                if self.folder is None:
                    self.folder = await imap.find_folder(client, self.mb.name, "\\Drafts", self.mb.drafts)
                    if self.folder is None:
                        raise imap.missing_folder(self.mb.name, "\\Drafts")
                await imap.select(client, self.mb.name, self.folder)
            except BaseException:
                await imap.close(client)
                raise
            self._client, self._lost = client, lost
        self._used = time.monotonic()
        assert self._client is not None
        return self._client

    async def _drop(self, *, polite: bool = True) -> None:
        client, self._client = self._client, None
        if client is not None:
            await imap.close(client, polite=polite and not self._lost.is_set())

    async def _run(self, what: str, op: Callable[[aioimaplib.IMAP4], Awaitable[T]], *,
                   before_retry: Callable[[aioimaplib.IMAP4], Awaitable[T | None]] | None = None) -> T:
        """``op`` on the kept connection; once more at once on a new one when the first lost its answer."""
        for attempt in (1, 2):
            try:
                with imap.guard(self.mb.name, what):
                    client = await self._connect()
                    if attempt == 2 and before_retry is not None:
                        found = await imap.until_lost(before_retry(client), self._lost, self.timeout,
                                                      self.mb.name, what)
                        if found is not None:
                            return found
                    result = await imap.until_lost(op(client), self._lost, self.timeout, self.mb.name, what)
                    self._used = time.monotonic()
                    return result
            except Dropped as exc:
                await self._drop(polite=False)
                if attempt == 2:
                    raise
                log.warning("imap.retry_at_once", mailbox=self.mb.name, what=what, error=str(exc))
            except BaseException:
                await self._drop()
                raise
        raise AssertionError("unreachable")

    async def find(self, key: str, original_id: str | None = None) -> str | None:
        """The draft for ``key`` identified exactly (see :func:`match_drafts`); several competing key-less
        replies count as none (a draft with our key is then written, and that one is sent)."""
        async with self._lock:
            async def search(client: aioimaplib.IMAP4) -> DraftMatch:
                # A kept selected connection sees drafts appended elsewhere only once the server has told it.
                await client.noop()
                return await match_drafts(client, self.mb.name, key, original_id)

            match = await self._run("draft search", search)
            uid = match.newest
            return f"{self.mb.name}:{self.folder}:{uid}" if uid is not None else None

    async def append(self, raw: bytes) -> str:
        key = _key_of(raw)

        async def write(client: aioimaplib.IMAP4) -> str:
            assert self.folder is not None
            uid = await imap.append(client, self.mb.name, raw, self.folder, "(\\Draft)")
            return f"{self.mb.name}:{self.folder}:{uid if uid is not None else '?'}"

        async def written(client: aioimaplib.IMAP4) -> str | None:
            # The first APPEND's answer was lost, not necessarily the APPEND itself.
            match = await match_drafts(client, self.mb.name, key, None)
            if match.newest is None:
                return None
            log.info("draft.append_found_after_lost_answer", mailbox=self.mb.name, uid=match.newest)
            return f"{self.mb.name}:{self.folder}:{match.newest}"

        async with self._lock:
            return await self._run("draft append", write, before_retry=written)

    async def aclose(self) -> None:
        async with self._lock:
            await self._drop()
