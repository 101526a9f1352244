"""Threaded replies: the RFC 5322 bytes of a draft answering one parsed mail."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import policy
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime, formataddr, make_msgid

from recruiter.mail.headers import clean_text, decode_header_value
from recruiter.mail.parse import ParsedMail

KEY_HEADER = "X-Recruiter-Key"
_MAX_REFERENCES = 20
# Reply prefixes in the languages recruiters write in; forwarding prefixes (Fwd:, WG:) are kept.
_REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|sv|antw|antwort|odp|rif|res|vs|ref|r)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*)+",
    re.IGNORECASE,
)


def reply_subject(subject: str) -> str:
    """``Re: <subject>`` with any existing reply prefixes (Re:, RE:, Aw:, Sv:, Antw:, …) removed first."""
    rest = _REPLY_PREFIX.sub("", clean_text(subject))
    return f"Re: {rest}" if rest else "Re: (no subject)"


def build_reply(mail: ParsedMail, *, from_addr: str, from_name: str, body: str, key: str,
                date: datetime | None = None) -> bytes:
    """A reply to ``mail`` as CRLF RFC 5322 bytes: From ``from_name <from_addr>``, To the Reply-To
    address or else the sender, ``Re:`` subject, In-Reply-To and References threading it under the
    original, a fresh Message-ID, Date, ``X-Recruiter-Key: <key>`` and a UTF-8 text/plain body.
    Values taken from the incoming mail are stripped of line breaks, so they cannot add headers."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = _address(from_name, from_addr)
    msg["To"] = _recipient(mail)
    msg["Subject"] = reply_subject(mail.subject)
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=_domain(from_addr))
    if mail.message_id:
        msg["In-Reply-To"] = mail.message_id
    references = _references(mail)
    if references:
        msg["References"] = " ".join(references)
    msg[KEY_HEADER] = clean_text(key)
    msg.set_content(body, charset="utf-8", cte="quoted-printable")
    return _unfold_key(msg.as_bytes())


def _unfold_key(raw: bytes) -> bytes:
    # The folder moves a long key to a continuation line; keep "X-Recruiter-Key: <key>" on one line so
    # IMAP SEARCH HEADER and line-based readers of drafts find it.
    head, separator, body = raw.partition(b"\r\n\r\n")
    head = re.sub(rb"(?im)^(" + KEY_HEADER.encode() + rb":)[ \t]*\r\n[ \t]+", rb"\1 ", head)
    return head + separator + body


def _recipient(mail: ParsedMail) -> str:
    if mail.reply_to:
        return _address("", mail.reply_to)
    return _address(mail.from_name, mail.from_addr)


def _address(name: str, addr: str) -> str:
    name, addr = clean_text(name), clean_text(addr)
    try:
        return str(Address(display_name=name, addr_spec=addr))
    except (ValueError, IndexError, HeaderParseError):
        # An address the header registry refuses (odd local part): still a valid one-line header.
        return formataddr((name, addr))


def _domain(addr: str) -> str:
    domain = addr.rpartition("@")[2].strip().lower()
    return domain if re.fullmatch(r"[a-z0-9.-]+", domain) else "localhost"


def _references(mail: ParsedMail) -> list[str]:
    ids = [*mail.references, *([mail.message_id] if mail.message_id else [])]
    unique = [ident for index, ident in enumerate(ids) if ident not in ids[:index] and _safe_id(ident)]
    if len(unique) > _MAX_REFERENCES:
        # RFC 5322 §3.6.4: keep the thread's root and the most recent ids.
        unique = [unique[0], *unique[-(_MAX_REFERENCES - 1):]]
    return unique


def _safe_id(ident: str) -> bool:
    return bool(re.fullmatch(r"<[^<>\s]+>", ident))


def find_header_value(raw: bytes, name: str) -> str | None:
    """The decoded value of the first ``name`` header (case-insensitive) in raw mail bytes, or None.
    Reads the header block only; never raises on malformed input."""
    try:
        headers = BytesHeaderParser(policy=policy.default).parsebytes(raw)
    except Exception:  # the header parser's failure modes are open-ended; "no such header" is the answer
        return None
    wanted = name.lower()
    for key, value in headers.raw_items():
        if str(key).lower() == wanted:
            return decode_header_value(str(value))
    return None
