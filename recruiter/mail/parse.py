"""Raw RFC 5322 bytes → ParsedMail: decoded headers and a trimmed plain-text body for the LLM."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


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
