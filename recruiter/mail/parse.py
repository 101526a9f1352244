"""Raw RFC 5322 bytes → ParsedMail: decoded headers and a trimmed plain-text body for the LLM."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime

from recruiter.errors import UnparseableMail
from recruiter.mail.headers import clean_text, decode_bytes, decode_header_value, message_ids, parse_addresses
from recruiter.mail.text import cap, clean_body, html_to_text, split_signature, trim_quoted

DEFAULT_MAX_BYTES = 25 * 1024 * 1024
_OVERSIZE_READ = 1024 * 1024  # of an oversized mail only this much is parsed: headers and first text part
_MAX_PARTS = 500
_MAX_PART_CHARS = 500_000
_HEADER_LINE = re.compile(rb"^[!-9;-~]{1,100}[ \t]*:")
_CRUDE_PLAIN = re.compile(r"content-type:\s*text/plain[^\n]*\n(?:[^\n]+\n)*?\r?\n(.*?)(?=\n--|\Z)",
                          re.IGNORECASE | re.DOTALL)
_CALENDAR_TYPES = ("text/calendar", "application/ics", "text/x-vcalendar")


@dataclass(frozen=True)
class ParsedMail:
    """Everything the pipeline needs from one mail, decoded.

    ``key`` is stable for the same mail wherever it is seen: the normalised Message-ID
    (lower-cased, without angle brackets) or, when there is none, ``sha256:<hex>`` of the raw bytes.
    """

    key: str
    message_id: str | None  # as in the header, with angle brackets, e.g. "<abc@x>"
    subject: str  # RFC 2047 decoded, whitespace collapsed
    from_name: str
    from_addr: str  # lower-cased, "" when missing
    to_addrs: tuple[str, ...]
    reply_to: str | None
    date: datetime | None  # aware
    references: tuple[str, ...]  # Message-IDs with angle brackets, oldest first
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-cased name -> decoded first value
    text: str = ""  # plain text: HTML converted, quoted history/signatures trimmed, capped
    calendar_parts: tuple[str, ...] = ()  # text/calendar parts, decoded
    attachments: tuple[str, ...] = ()  # file names (or content types) of attached parts
    signature: str = ""  # the block after a "-- " delimiter, capped; company names live there
    truncated: bool = False  # the mail was over the size cap: only its start was read


@dataclass
class _Body:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    calendars: list[str] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)


def parse_message(raw: bytes, *, max_text_chars: int = 6000, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedMail:
    """Parse any bytes into a ParsedMail; raise UnparseableMail only when there is no mail at all
    (empty input or no header block). Bad charsets, broken transfer encodings, malformed headers and
    odd structure degrade to best-effort text, never to an exception. Mail over ``max_bytes`` is
    parsed from its first megabyte only and marked ``truncated``."""
    # Leading blank lines, a byte-order mark or an mbox "From " line are wrapping, not mail.
    data = _strip_mbox_line(raw.removeprefix(b"\xef\xbb\xbf")).lstrip(b"\r\n")
    if not data.strip():
        raise UnparseableMail("empty message")
    if not _HEADER_LINE.match(data):
        raise UnparseableMail("no header block")
    truncated = len(data) > max_bytes
    msg = _parse_bytes(data[:_OVERSIZE_READ] if truncated else data)
    headers = _headers(msg)
    if not headers:
        raise UnparseableMail("no header block")
    body = _collect_body(msg, first_only=truncated)
    return _build(raw, msg, headers, body, max_text_chars, truncated)


def _strip_mbox_line(raw: bytes) -> bytes:
    if raw.startswith(b"From ") and b"\n" in raw[:1000]:
        return raw.split(b"\n", 1)[1]
    return raw


def _parse_bytes(data: bytes) -> Message:
    # RecursionError on deep nesting and parser bugs on odd input: fall back to headers only, where
    # the body stays one string that _crude_text reads.
    for headersonly in (False, True):
        try:
            return BytesParser(policy=policy.default).parsebytes(data, headersonly=headersonly)
        except Exception as exc:
            failure = exc
    raise UnparseableMail(f"the mail parser failed: {type(failure).__name__}") from failure


def _headers(msg: Message) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in msg.raw_items():
        key = clean_text(decode_header_value(str(name))).lower()
        if key and key not in headers:
            headers[key] = decode_header_value(str(value))
    return headers


def _raw_header(msg: Message, name: str) -> str:
    for key, value in msg.raw_items():
        if str(key).lower() == name:
            return str(value)
    return ""


def _build(raw: bytes, msg: Message, headers: dict[str, str], body: _Body, limit: int,
           truncated: bool) -> ParsedMail:
    ids = message_ids(_raw_header(msg, "message-id"))
    message_id = ids[0] if ids else None
    key = message_id.strip("<>").strip().lower() if message_id else f"sha256:{hashlib.sha256(raw).hexdigest()}"
    senders = parse_addresses(_raw_header(msg, "from"))
    from_name, from_addr = senders[0] if senders else ("", "")
    reply_to = parse_addresses(_raw_header(msg, "reply-to"))
    references = message_ids(_raw_header(msg, "references")) or message_ids(_raw_header(msg, "in-reply-to"))
    text, signature = _body_text(body, limit)
    return ParsedMail(
        key=key or f"sha256:{hashlib.sha256(raw).hexdigest()}",
        message_id=message_id,
        subject=headers.get("subject", ""),
        from_name=from_name,
        from_addr=from_addr,
        to_addrs=tuple(addr for _, addr in parse_addresses(_raw_header(msg, "to"))),
        reply_to=reply_to[0][1] if reply_to else None,
        date=_date(headers.get("date", "")),
        references=tuple(references),
        headers=headers,
        text=text,
        calendar_parts=tuple(body.calendars),
        attachments=tuple(body.attachments),
        signature=signature,
        truncated=truncated,
    )


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _body_text(body: _Body, limit: int) -> tuple[str, str]:
    plain = "\n\n".join(part for part in body.plain if part.strip())
    html = "\n\n".join(html_to_text(part) for part in body.html)
    # A stub plain part ("view this mail in a browser") next to a real HTML part: read the HTML.
    chosen = plain if len(plain.strip()) >= 40 or len(html) <= len(plain) else html
    _, signature = split_signature(trim_quoted(chosen))
    return clean_body(chosen, limit), cap(signature, 500)


def _collect_body(msg: Message, *, first_only: bool) -> _Body:
    body = _Body()
    for part in _walk(msg):
        _read_part(part, body)
        if first_only and (body.plain or body.html):
            break
    return body


def _walk(msg: Message) -> Iterator[Message]:
    """Leaf parts in order, depth-first, without recursion; after _MAX_PARTS parts the rest is ignored."""
    stack: list[Message] = [msg]
    seen = 0
    while stack and seen < _MAX_PARTS:
        part = stack.pop()
        seen += 1
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            stack.extend(child for child in reversed(payload) if isinstance(child, Message))
            continue
        yield part


def _read_part(part: Message, body: _Body) -> None:
    try:
        ctype = part.get_content_type()
        disposition = part.get_content_disposition()
        filename = part.get_filename()
    except Exception:  # malformed Content-* headers: read as plain text
        ctype, disposition, filename = "text/plain", None, None
    if ctype.startswith("multipart/"):  # a body the parser could not split (see _parse_bytes)
        body.plain.append(_crude_text(_decoded(part)))
        return
    if ctype in _CALENDAR_TYPES or (filename or "").lower().endswith(".ics"):
        body.calendars.append(_decoded(part))
        return
    if disposition == "attachment" or (filename and not ctype.startswith("text/")) \
            or not ctype.startswith("text/"):
        body.attachments.append(clean_text(filename or ctype))
        return
    if ctype == "text/html":
        body.html.append(_decoded(part))
    else:
        body.plain.append(_decoded(part))


def _decoded(part: Message) -> str:
    """A leaf part's text: transfer encoding undone leniently, charset decoded with fallbacks."""
    try:
        data = part.get_payload(decode=True)
    except Exception:  # broken base64/QP/uuencode: use the raw payload
        data = None
    if not isinstance(data, bytes):
        raw = part.get_payload()
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(data[: _MAX_PART_CHARS * 4], charset)[:_MAX_PART_CHARS]


def _crude_text(payload: str) -> str:
    """The first text/plain section of an unsplit multipart body, found by pattern, else ""."""
    match = _CRUDE_PLAIN.search(payload[:_MAX_PART_CHARS])
    return match.group(1).strip() if match else ""
