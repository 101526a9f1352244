"""A draft made ready to send: our internal header removed, Date and Message-ID set, the envelope read.

The header block is edited as bytes, field by field, and the body is never touched: the owner's
edits (encoding, attachments, HTML) go out exactly as their mail program wrote them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.parser import BytesHeaderParser
from email.utils import format_datetime, formataddr, make_msgid

from recruiter.mail.headers import message_ids, parse_addresses
from recruiter.reply.compose import KEY_HEADER


@dataclass(frozen=True)
class Outgoing:
    """What goes to the SMTP server and what is filed in Sent."""

    raw: bytes  # as filed in Sent (Bcc kept, as mail programs do)
    wire: bytes  # as sent (without Bcc)
    sender: str  # envelope MAIL FROM
    recipients: tuple[str, ...]  # To, Cc and Bcc addresses
    message_id: str
    subject: str


def _split(raw: bytes) -> tuple[list[bytes], bytes, bytes]:
    """(header fields with their continuation lines, line ending, body with its separator)."""
    crlf = raw.find(b"\r\n\r\n")
    lf = raw.find(b"\n\n")
    if crlf != -1 and (lf == -1 or crlf <= lf):
        head, body, nl = raw[:crlf], raw[crlf:], b"\r\n"
    elif lf != -1:
        head, body, nl = raw[:lf], raw[lf:], b"\n"
    else:
        head, body, nl = raw, b"\r\n\r\n", b"\r\n"
    fields: list[bytes] = []
    for line in head.split(nl):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += nl + line
        elif line:
            fields.append(line)
    return fields, nl, body


def _name(field_bytes: bytes) -> str:
    return field_bytes.split(b":", 1)[0].strip().decode("ascii", "replace").lower()


def _join(fields: list[bytes], nl: bytes, body: bytes) -> bytes:
    return nl.join(fields) + body


def prepare(raw: bytes, *, from_addr: str, from_name: str = "", envelope_from: str = "",
            now: datetime | None = None) -> Outgoing:
    """The draft ``raw`` ready to send: ``X-Recruiter-Key`` removed, Date set to ``now``, a Message-ID
    added when missing, From added when missing. Raises ValueError when it has no recipient."""
    fields, nl, body = _split(raw)
    headers = BytesHeaderParser(policy=policy.default).parsebytes(_join(fields, nl, body))
    fields = [f for f in fields if _name(f) not in {KEY_HEADER.lower(), "date"}]
    fields.insert(0, b"Date: " + format_datetime(now or datetime.now(UTC)).encode("ascii"))
    sender_pairs = parse_addresses(str(headers.get("From", "") or ""))
    if not sender_pairs:
        fields.insert(0, b"From: " + formataddr((from_name, from_addr)).encode("utf-8"))
    ids = message_ids(str(headers.get("Message-ID", "") or ""))
    message_id = ids[0] if ids else make_msgid(domain=_domain(from_addr))
    if not ids:
        fields = [f for f in fields if _name(f) != "message-id"]
        fields.append(b"Message-ID: " + message_id.encode("ascii"))
    recipients: list[str] = []
    for name in ("To", "Cc", "Bcc"):
        for value in headers.get_all(name, []) or []:
            recipients += [addr for _, addr in parse_addresses(str(value)) if addr not in recipients]
    if not recipients:
        raise ValueError("the draft has no recipient (To, Cc or Bcc)")
    envelope = envelope_from or (sender_pairs[0][1] if sender_pairs else from_addr)
    filed = _join(fields, nl, body)
    wire = _join([f for f in fields if _name(f) != "bcc"], nl, body)
    return Outgoing(filed, wire, envelope, tuple(recipients), message_id, str(headers.get("Subject", "") or ""))


def _domain(addr: str) -> str:
    domain = addr.rpartition("@")[2].strip().lower()
    return domain if re.fullmatch(r"[a-z0-9.-]+", domain) else "localhost"
