"""Tolerant decoding of header values, charsets, addresses and Message-IDs.

The stdlib's header objects raise on some malformed input; these helpers work on the raw strings the
parser keeps and never raise: bad charsets fall back to UTF-8 then Windows-1252, broken encoded words
are left as they are, 8-bit header bytes are decoded as UTF-8 or Windows-1252.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from email.utils import getaddresses

_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,75})\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"^[ \t\r\n]*$")
_QP_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")
# The lookbehind makes a search start only where a run of address characters starts: without it, a long
# run without "@" is scanned again from each of its characters (n² steps).
_ADDRESS = re.compile(r"(?<![\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_MSG_ID = re.compile(r"<([^<>\s]+)>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SPACES = re.compile(r"\s+")
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # an 8-bit byte the parser kept as a surrogate escape
_SURROGATE = re.compile("[\ud800-\udfff]")
_CHARSET_ALIASES = {"utf8": "utf-8", "unicode-1-1-utf-8": "utf-8", "x-unknown": "utf-8", "unknown-8bit": "utf-8",
                    "iso-8859-8-i": "iso-8859-8", "ks_c_5601-1987": "cp949", "gb2312": "gb18030",
                    "gbk": "gb18030", "x-sjis": "shift_jis", "ascii": "utf-8", "us-ascii": "utf-8"}


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """``data`` as text: the declared charset if it decodes cleanly, else UTF-8, else the declared
    charset (or Windows-1252) with replacement characters. Never raises, and never returns a lone
    surrogate (utf-7 and unicode-escape can decode to one; no encoder takes it): each becomes U+FFFD."""
    return _without_surrogates(_decode_bytes(data, charset))


def _decode_bytes(data: bytes, charset: str | None) -> str:
    declared = _codec_name(charset)
    for candidate in (declared, "utf-8"):
        if candidate is None:
            continue
        try:
            return data.decode(candidate)
        except (UnicodeError, LookupError, ValueError, TypeError):
            continue
    try:
        return data.decode(declared or "cp1252", errors="replace")
    except (UnicodeError, LookupError, ValueError, TypeError):
        return data.decode("cp1252", errors="replace")


def _without_surrogates(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def _codec_name(charset: str | None) -> str | None:
    if not charset:
        return None
    name = charset.strip().strip("\"'").split("*", 1)[0].lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    # Only real text encodings: "rot13", "zlib", "base64" and friends are not charsets.
    return name if getattr(info, "_is_text_encoding", True) else None


def raw_to_text(value: str) -> str:
    """A raw header string as the parser kept it (8-bit bytes as surrogate escapes) → real text."""
    if value.isascii() or not _ESCAPED_BYTE.search(value):
        return value
    return decode_bytes(value.encode("utf-8", "surrogateescape"))


def decode_header_value(value: str) -> str:
    """A raw header value → display text: 8-bit bytes decoded, RFC 2047 encoded words decoded
    (adjacent words joined, unknown charsets tolerated, broken words kept verbatim), unfolded,
    control characters removed and whitespace collapsed. Never raises."""
    text = raw_to_text(value)
    if "=?" not in text:  # no encoded word: most values
        return clean_text(text)
    pieces: list[tuple[str | bytes, str | None]] = []
    position = 0
    for match in _ENCODED_WORD.finditer(text):
        between = text[position:match.start()]
        decoded = _decode_word(match.group(2), match.group(3))
        if decoded is None:
            pieces.append((text[position:match.end()], None))
        else:
            if between and not (_BETWEEN_WORDS.match(between) and pieces and pieces[-1][1] is not None):
                pieces.append((between, None))
            pieces.append((decoded, match.group(1)))
        position = match.end()
    pieces.append((text[position:], None))
    return clean_text(_join_pieces(pieces))


def clean_text(text: str) -> str:
    """One line: control characters dropped, runs of whitespace collapsed, stripped."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()


def _decode_word(encoding: str, payload: str) -> bytes | None:
    try:
        if encoding in "bB":
            padded = payload + "=" * (-len(payload) % 4)
            return base64.b64decode(padded.encode("ascii"), validate=False)
        data = payload.replace("_", " ").encode("ascii")
        return _QP_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), data)
    except (binascii.Error, ValueError, UnicodeError):
        return None


def _join_pieces(pieces: list[tuple[str | bytes, str | None]]) -> str:
    # Adjacent words in one charset are joined before decoding: senders split multi-byte characters.
    out: list[str] = []
    buffer = b""
    charset: str | None = None
    for piece, piece_charset in pieces:
        if isinstance(piece, bytes) and piece_charset == charset and buffer:
            buffer += piece
            continue
        if buffer:
            out.append(decode_bytes(buffer, charset))
            buffer = b""
        if isinstance(piece, bytes):
            buffer, charset = piece, piece_charset
        else:
            out.append(piece)
            charset = None
    if buffer:
        out.append(decode_bytes(buffer, charset))
    return "".join(out)


def parse_addresses(value: str) -> list[tuple[str, str]]:
    """(display name, lower-cased address) pairs from a raw address header. Names are decoded after
    the structure is parsed, so an encoded comma cannot split an address. Never raises."""
    text = clean_text(raw_to_text(value))
    if not text:
        return []
    try:
        pairs = [(name, addr) for name, addr in getaddresses([text]) if _ADDRESS.fullmatch(addr.strip())]
    except (ValueError, TypeError, IndexError, AttributeError, RecursionError):
        # RecursionError: the stdlib's address parser recurses once per nested comment "(((…"
        pairs = []
    if not pairs:
        pairs = _addresses_by_pattern(text)
    return [(decode_header_value(name).strip("\"' "), addr.strip().lower()) for name, addr in pairs]


def _addresses_by_pattern(text: str) -> list[tuple[str, str]]:
    found = _ADDRESS.findall(text)
    if not found:
        return []
    name = text.split("<", 1)[0] if "<" in text else ""
    return [(name if index == 0 else "", addr) for index, addr in enumerate(found)]


def message_ids(value: str) -> list[str]:
    """Every ``<id>`` in a raw Message-ID/References/In-Reply-To value, with angle brackets; a bare
    token without brackets counts as one id."""
    text = clean_text(raw_to_text(value))
    found = [f"<{ident}>" for ident in _MSG_ID.findall(text)]
    if not found and text and " " not in text:
        found = [f"<{text.strip('<>')}>"] if text.strip("<>") else []
    return found
