"""From raw bytes to a row the store can hold — whatever the bytes are."""

from __future__ import annotations

import hashlib

from recruiter.errors import RecruiterError
from recruiter.mail.parse import ParsedMail, parse_message
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
    """A NewMessage for ``raw``. Mail that cannot be parsed is still stored (the pipeline dead-letters it)."""
    try:
        mail = parse_message(raw)
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
