"""From raw bytes to a stored row — whatever the bytes are.

Ingest never blocks on one message: :func:`describe` never raises (a mail whose header block cannot be
read is described as quarantined), and :func:`store_new` stores a mail the store refuses (a value it
cannot hold, any error that is not an outage) as a quarantined row under a hash of its raw bytes, or as
a minimal row when even that is refused. Only an outage of the store (DependencyUnavailable) escapes:
then the caller holds its place (the watcher's checkpoint) and tries again.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import traceback
from dataclasses import replace
from typing import Any

import structlog

from recruiter.budget import Budget
from recruiter.errors import DependencyUnavailable, IngestBlocked, OverBudget, StoreRejected, TransientError
from recruiter.mail.parse import DEFAULT_MAX_BYTES, ParsedMail, parse_headers
from recruiter.store.inbox import NewMessage
from recruiter.store.repo import Store
from recruiter.store.safe import safe_key

log = structlog.get_logger()
# Subject and From of a mail whose header block cannot be parsed, read by pattern for the DLQ listing:
# one header line each, bounded, linear.
_CRUDE_HEADER = re.compile(rb"^(subject|from)[ \t]*:[ \t]*([^\r\n]{0,300})", re.IGNORECASE | re.MULTILINE)
_CRUDE_SCAN = 64 * 1024


def raw_key(raw: bytes) -> str:
    """The key of a mail known by its bytes alone."""
    return f"sha256:{hashlib.sha256(raw).hexdigest()}"


def describe(
    raw: bytes,
    *,
    mailbox: str,
    folder: str | None = None,
    uidvalidity: int | None = None,
    uid: int | None = None,
    source: str | None = None,
) -> NewMessage:
    """A NewMessage for ``raw``; never raises. Mail whose header block cannot be read (no headers, a
    parser blow-up such as a RecursionError on nested comments) is described as quarantined.

    Only the header block is read (parse_headers): the row needs header fields alone, and the body is
    parsed once, by the worker, which finds the same key."""
    try:
        mail = parse_headers(raw)
    except Exception as exc:  # whatever the parser does with these bytes, it is about this mail only
        return quarantined(raw, exc, mailbox=mailbox, folder=folder, uidvalidity=uidvalidity, uid=uid,
                           source=source, why="the header block cannot be read", reason="unparseable")
    return described(raw, mail, mailbox=mailbox, folder=folder, uidvalidity=uidvalidity, uid=uid, source=source)


async def describe_within(
    budget: Budget | None,
    raw: bytes,
    *,
    mailbox: str,
    folder: str | None = None,
    uidvalidity: int | None = None,
    uid: int | None = None,
    source: str | None = None,
    origin: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> NewMessage:
    """:func:`describe`, with the header block read in a helper process under the CPU budget of one
    message (in a thread when ``budget`` is None), never on the event loop. A header block that needs
    more than the budget is quarantined with reason ``cpu_budget``. Raises only TransientError (the
    helpers are stopped: shutting down)."""
    where: dict[str, Any] = {"mailbox": mailbox, "folder": folder, "uidvalidity": uidvalidity, "uid": uid,
                             "source": source}
    try:
        if budget is None:
            mail = await asyncio.to_thread(parse_headers, raw, max_bytes=max_bytes)
        else:
            mail = await budget.run(parse_headers, raw, max_bytes=max_bytes)
    except TransientError:
        raise
    except OverBudget as exc:
        log.error("ingest.over_budget", uid=uid, error=str(exc))
        return quarantined(raw, exc, **where, origin=origin, reason="cpu_budget",
                           why="reading the header block took more than the CPU budget of one message")
    except Exception as exc:  # whatever the parser does with these bytes, it is about this mail only
        return quarantined(raw, exc, **where, origin=origin, why="the header block cannot be read",
                           reason="unparseable")
    new = described(raw, mail, **where)
    return replace(new, origin=origin) if origin is not None else new


def described(
    raw: bytes,
    mail: ParsedMail,
    *,
    mailbox: str,
    folder: str | None = None,
    uidvalidity: int | None = None,
    uid: int | None = None,
    source: str | None = None,
) -> NewMessage:
    """The NewMessage of ``raw`` once it is parsed as ``mail`` (for callers that need the parse too)."""
    return NewMessage(
        key=safe_key(mail.key), mailbox=mailbox, raw=raw, message_id=mail.message_id, subject=mail.subject,
        from_addr=mail.from_addr, reply_to=mail.reply_to, folder=folder, uidvalidity=uidvalidity, uid=uid,
        source=source,
    )


def quarantined(
    raw: bytes,
    exc: BaseException,
    *,
    mailbox: str,
    folder: str | None = None,
    uidvalidity: int | None = None,
    uid: int | None = None,
    source: str | None = None,
    why: str,
    reason: str = "quarantined",
    origin: str | None = None,
) -> NewMessage:
    """The quarantine row of ``raw``: keyed by its hash, stored dead with ``why``, the error and its
    traceback; subject and sender read by pattern (for the DLQ listing and the owner's notice)."""
    crude = {name.lower(): value for name, value in _CRUDE_HEADER.findall(raw[:_CRUDE_SCAN])}
    new = NewMessage(
        key=raw_key(raw), mailbox=mailbox, raw=raw, folder=folder, uidvalidity=uidvalidity, uid=uid,
        source=source, subject=crude.get(b"subject", b"").decode("utf-8", "replace").strip(),
        from_addr=crude.get(b"from", b"").decode("utf-8", "replace").strip(),
        quarantine=f"{why}: {type(exc).__name__}: {_short(exc)}",
        detail="".join(traceback.format_exception(exc))[-4000:], dead_reason=reason, error_class=type(exc).__name__,
    )
    return replace(new, origin=origin) if origin is not None else new


async def store_new(store: Store, new: NewMessage, *, checkpoint: bool = True) -> int | None:
    """Store ``new`` (the checkpoint moves with it); a mail the store refuses is stored quarantined, then
    minimal (no raw bytes, no header values). Returns the new id, or None for a duplicate.

    An error the store gives for this mail while it takes other writes (it answers a probe write, and
    the mail fails again) is about this mail, whatever its code: it is quarantined too. Raises
    DependencyUnavailable when the store is unavailable (hold the checkpoint, try again), IngestBlocked
    when even the minimal row is refused (the mailbox stalls there, and that is reported)."""
    try:
        return await _add(store, new, checkpoint)
    except TransientError:
        raise
    except Exception as exc:  # the store refused this mail's values (StoreRejected) or choked on them
        log.error("ingest.quarantined", key=new.key[:120], uid=new.uid, error_class=type(exc).__name__,
                  error=_short(exc))
        fallback = quarantined(new.raw, exc, mailbox=new.mailbox, folder=new.folder, uidvalidity=new.uidvalidity,
                               uid=new.uid, source=new.source, origin=new.origin,
                               why="the store refused this mail", reason="store_rejected")
    try:
        return await _add(store, fallback, checkpoint)
    except TransientError:
        raise
    except Exception as exc:
        log.error("ingest.quarantine_refused", key=fallback.key, uid=new.uid, error_class=type(exc).__name__,
                  error=_short(exc))
        minimal = NewMessage(key=fallback.key, mailbox=new.mailbox, raw=b"", folder=new.folder,
                             uidvalidity=new.uidvalidity, uid=new.uid, source=new.source, origin=new.origin,
                             dead_reason="store_rejected", error_class=type(exc).__name__,
                             quarantine=f"the store refused this mail and its quarantine row: "
                                        f"{type(exc).__name__}: {_short(exc)} (the mail is still on the server"
                                        f"{f', UID {new.uid}' if new.uid is not None else ''})")
    try:
        return await _add(store, minimal, checkpoint)
    except TransientError:
        raise
    except Exception as exc:
        raise IngestBlocked(f"the store refuses UID {new.uid} and every row that could stand for it: "
                            f"{type(exc).__name__}: {_short(exc)}") from exc


async def _add(store: Store, new: NewMessage, checkpoint: bool) -> int | None:
    """``store.add_message``; an outage error that the store contradicts (it takes a probe write, and the
    same mail fails again) is re-raised as StoreRejected: about this mail, not the store's health."""
    try:
        return await store.add_message(new, checkpoint=checkpoint)
    except DependencyUnavailable as first:
        try:
            await store.ping_write()
        except TransientError:
            raise first from None  # the store does not take writes: a real outage
        try:
            return await store.add_message(new, checkpoint=checkpoint)  # a blip heals here
        except DependencyUnavailable as again:
            raise StoreRejected(f"the store takes other writes but not this mail: {again}") from again


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:299] + "…"
