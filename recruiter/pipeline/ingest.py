"""From raw bytes to a row the store can hold — whatever the bytes are."""

from __future__ import annotations

import hashlib

from recruiter.errors import RecruiterError
from recruiter.mail.parse import ParsedMail, parse_headers
from recruiter.store.repo import NewMessage


def describe(
    raw: bytes,
    *,
    mailbox: str,
    folder: str | None = None,
    uidvalidity: int | None = None,
    uid: int | None = None,
    source: str | None = None,
) -> NewMessage:
    """A NewMessage for ``raw``. Mail that cannot be parsed is still stored (the pipeline dead-letters it).

    Only the header block is read (parse_headers): the row needs header fields alone, and the body is
    parsed once, by the worker, which finds the same key."""
    try:
        mail = parse_headers(raw)
    except (RecruiterError, ValueError, LookupError, UnicodeError):
        return NewMessage(
            key=f"sha256:{hashlib.sha256(raw).hexdigest()}", mailbox=mailbox, raw=raw, folder=folder,
            uidvalidity=uidvalidity, uid=uid, source=source,
        )
    return described(raw, mail, mailbox=mailbox, folder=folder, uidvalidity=uidvalidity, uid=uid, source=source)


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
        key=mail.key, mailbox=mailbox, raw=raw, message_id=mail.message_id, subject=mail.subject,
        from_addr=mail.from_addr, folder=folder, uidvalidity=uidvalidity, uid=uid, source=source,
    )
