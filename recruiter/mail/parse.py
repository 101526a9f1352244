"""Raw RFC 5322 bytes → ParsedMail: decoded headers and a trimmed plain-text body for the LLM."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.feedparser import BytesFeedParser
from email.message import Message
from email.policy import Compat32
from email.utils import parsedate_to_datetime

from recruiter.errors import UnparseableMail
from recruiter.mail.headers import clean_text, decode_bytes, decode_header_value, message_ids, parse_addresses
from recruiter.mail.text import cap, clean_body, html_to_text, split_signature, trim_quoted

DEFAULT_MAX_BYTES = 25 * 1024 * 1024
_OVERSIZE_READ = 1024 * 1024  # of an oversized mail only this much is parsed: headers and first text part
_MAX_PARTS = 500
_MAX_PART_CHARS = 500_000
_HEADER_LINE = re.compile(rb"^[!-9;-~]{1,100}[ \t]*:")
_CRUDE_TYPE = "content-type:"
_CRUDE_PLAIN = re.compile(r"\s*text/plain")  # after "content-type:" (matched where that was found)
_CALENDAR_TYPES = ("text/calendar", "application/ics", "text/x-vcalendar")
_FEED_BYTES = 64 * 1024
_PLAIN_ENOUGH = 40  # a plain part this long (stripped) is read even when an HTML part is longer
_HEADER_END = re.compile(rb"\n\n|\n\r|\r\r")  # an empty line, whichever of CRLF, LF or CR ends lines
_FOLDS = re.compile(r"[\r\n]")  # policy.default unfolds by removing the line breaks only
# A Content-* value in its plain form: "type/subtype" (or a bare token) and name=token or name="text"
# parameters; no comments, encoded words, RFC 2231 names, escapes or 8-bit bytes (see _RawHeaders).
_MIME_ATOM = r"[!#$%&'+\-.0-9A-Z^_`a-z{|}~]+"  # an RFC 2045 token without "*"
_MIME_PARAM = rf'[ \t]*;[ \t]*{_MIME_ATOM}[ \t]*=[ \t]*(?:{_MIME_ATOM}|"[ !#-\[\]-~]*")'
# The tail is "[ \t]*(?:;[ \t]*)?", not "[ \t]*;?[ \t]*": two blank runs side by side can split a long run
# of blanks in n ways, and a value that fails to match then costs n² steps.
_SIMPLE_MIME_VALUE = re.compile(rf"{_MIME_ATOM}(?:/{_MIME_ATOM})?(?:{_MIME_PARAM})*[ \t]*(?:;[ \t]*)?")
_DEFAULT_POLICY = policy.default


class _RawHeaders(Compat32):
    """compat32 parsing (header values stay raw strings) that still answers the body walk's Content-*
    lookups exactly as ``policy.default`` did. Building ``policy.default``'s header objects is most
    of a parse's cost, but they are only needed for unusual values: a plain ``type/subtype; name=value;
    name="value"`` reads the same through compat32's parameter parsing, while comments, RFC 2231 and
    RFC 2047 parameters, stray quotes, 8-bit bytes and other damage are interpreted by the header
    registry as before (it is lenient in ways compat32 is not, e.g. about junk after a quoted boundary).
    What the pipeline is shown is decoded from the raw values by recruiter.mail.headers anyway."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        if not isinstance(value, str):
            return value
        if "\r" in value or "\n" in value:
            value = _FOLDS.sub("", value)
        # An apostrophe may be RFC 2231's charset'language'value, which the registry decodes even without
        # the "*" (hypothesis found charset=utf-8''%C3%A4.pdf read as the charset "utf-8''%c3%a4.pdf").
        if _SIMPLE_MIME_VALUE.fullmatch(value) and "=?" not in value and "'" not in value:
            return value
        try:
            return str(_DEFAULT_POLICY.header_factory(name, value))
        except Exception:  # e.g. RecursionError on thousands of nested comments: the value as it is
            return value


_POLICY = _RawHeaders()


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
    data = _mail_data(raw)
    truncated = len(data) > max_bytes
    msg = _parse_bytes(data[:_OVERSIZE_READ] if truncated else data)
    headers = _headers(msg)
    if not headers:
        raise UnparseableMail("no header block")
    body = _collect_body(msg, first_only=truncated)
    return _build(raw, msg, headers, body, max_text_chars, truncated)


def parse_headers(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedMail:
    """The header fields of ``parse_message(raw)`` (key, message_id, subject, addresses, date,
    references, headers, truncated) with empty body fields, from the header block alone: ingest stores
    and prefilters mail on these, and the body is parsed once, by the worker. Raises UnparseableMail
    exactly when parse_message does."""
    data = _mail_data(raw)
    truncated = len(data) > max_bytes
    msg = _parse_bytes(_header_block(data[:_OVERSIZE_READ] if truncated else data), headers_only=True)
    headers = _headers(msg)
    if not headers:
        raise UnparseableMail("no header block")
    return _build(raw, msg, headers, _Body(), 0, truncated)


def _mail_data(raw: bytes) -> bytes:
    """The mail in ``raw``: leading blank lines, a byte-order mark or an mbox "From " line are
    wrapping, not mail. UnparseableMail when what is left cannot start a header block."""
    data = _strip_mbox_line(raw.removeprefix(b"\xef\xbb\xbf")).lstrip(b"\r\n")
    if not data.strip():
        raise UnparseableMail("empty message")
    if not _HEADER_LINE.match(data):
        raise UnparseableMail("no header block")
    return data


def _header_block(data: bytes) -> bytes:
    """``data`` up to just after its first empty line (or all of it): the parser reads headers line by
    line up to that line, so the rest cannot change them and need not be split into lines at all."""
    end = _HEADER_END.search(data)
    return data[:end.end() + 1] if end else data


def _strip_mbox_line(raw: bytes) -> bytes:
    if raw.startswith(b"From ") and b"\n" in raw[:1000]:
        return raw.split(b"\n", 1)[1]
    return raw


def _parse_bytes(data: bytes, *, headers_only: bool = False) -> Message:
    # RecursionError on deep nesting and parser bugs on odd input: fall back to headers only, where
    # the body stays one string that _crude_text reads.
    for headersonly in (True,) if headers_only else (False, True):
        try:
            return _feed(data, headersonly=headersonly)
        except Exception as exc:
            failure = exc
    raise UnparseableMail(f"the mail parser failed: {type(failure).__name__}") from failure


def _feed(data: bytes, *, headersonly: bool) -> Message:
    """What ``BytesParser.parsebytes`` does, in slices: it decodes the whole mail to one string and
    copies that into a StringIO (4 bytes a character), about 8× a large mail's size at once; fed
    64 KiB at a time, the parser holds little more than the message it builds."""
    parser = BytesFeedParser(policy=_POLICY)
    if headersonly:
        parser._set_headersonly()  # type: ignore[attr-defined]  # as BytesParser does for headersonly=True
    view = memoryview(data)
    for start in range(0, len(view), _FEED_BYTES):
        parser.feed(bytes(view[start:start + _FEED_BYTES]))
    return parser.close()


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
    # A stub plain part ("view this mail in a browser") next to a real HTML part: read the HTML. Only
    # then is the HTML converted: the conversion is most of the cost of an HTML mail.
    chosen = plain if len(plain.strip()) >= _PLAIN_ENOUGH else _longer(plain, body.html)
    _, signature = split_signature(trim_quoted(chosen))
    return clean_body(chosen, limit), cap(signature, 500)


def _longer(plain: str, html_parts: list[str]) -> str:
    """The HTML parts' text when it is longer than ``plain``, else ``plain``."""
    html = "\n\n".join(html_to_text(part) for part in html_parts)
    return plain if len(html) <= len(plain) else html


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
    """The first text/plain section of an unsplit multipart body, else "": after the first line with
    "Content-Type: text/plain", the part's header lines up to an empty line, then the text up to a
    line starting with "--" (or the end).

    Found by scanning, each character looked at a bounded number of times: a pattern for the same
    (lazy header lines, then lazy text up to a lookahead) backtracked quadratically, 25 s of CPU for a
    body of 500,000 characters of "content-type: text/plain" lines without an empty line."""
    text = payload[:_MAX_PART_CHARS]
    lower = text.lower()
    start = 0
    while True:
        found = lower.find(_CRUDE_TYPE, start)
        if found < 0:
            return ""
        start = found + len(_CRUDE_TYPE)
        plain = _CRUDE_PLAIN.match(lower, start)
        if plain is None:
            continue
        line_end = text.find("\n", plain.end())
        if line_end < 0:
            return ""  # no line after it, nor after any later one
        body = _after_header_lines(text, line_end + 1)
        if body < 0:
            return ""  # no empty line after it, nor after any later one
        end = text.find("\n--", body)
        return text[body:end if end >= 0 else len(text)].strip()


def _after_header_lines(text: str, position: int) -> int:
    """The index after the first empty line ("" or "\\r") at or after ``position``, or -1."""
    while True:
        line_end = text.find("\n", position)
        if line_end < 0:
            return -1
        if line_end == position or (line_end == position + 1 and text[position] == "\r"):
            return line_end + 1
        position = line_end + 1
