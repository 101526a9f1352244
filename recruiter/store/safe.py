"""Values made safe for the store, at one place: whatever a mail, a model or a server put in them.

- Text: lone surrogates (what a broken RFC 2047 word in utf-7 or unicode-escape decodes to) and NUL
  (PostgreSQL text cannot hold it) become U+FFFD; every other character is kept.
- Display values (subject, sender, Message-ID, …) longer than their column are shortened with "…".
- Keys are never shortened: two long Message-IDs with a common start would collide and the second mail
  would be dropped as a duplicate. A key that is too long, or holds a character a header or a column
  cannot carry, is replaced by a hash of itself; every other key (all keys stored so far) stays as it is.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

KEY_LIMIT = 512  # messages.key is VARCHAR(512); side-effect keys add at most ~30 characters
_UNSAFE = re.compile("[\x00\ud800-\udfff]")
_KEY_UNSAFE = re.compile("[\x00-\x20\x7f\ud800-\udfff]")
REPLACEMENT = "\ufffd"
HASHED_KEY_PREFIX = "mid-sha256:"


def safe_text(value: str, limit: int | None = None) -> str:
    """``value`` without NUL or lone surrogates; cut to ``limit`` characters with "…" when longer."""
    if _UNSAFE.search(value):
        value = _UNSAFE.sub(REPLACEMENT, value)
    if limit is not None and len(value) > limit:
        value = value[: max(0, limit - 1)] + "…"
    return value


def safe_key(key: str) -> str:
    """``key`` itself when it fits the column and holds no control, space or unencodable character,
    else ``mid-sha256:<hex>`` of it (stable: the same Message-ID always gives the same key)."""
    if len(key) <= KEY_LIMIT and key and not _KEY_UNSAFE.search(key):
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{HASHED_KEY_PREFIX}{digest}"


def safe_value(value: Any, limit: int | None = None) -> Any:
    """Text made safe (see :func:`safe_text`), inside lists and dicts too (JSON columns); other values as they are."""
    if isinstance(value, str):
        return safe_text(value, limit)
    if isinstance(value, Mapping):
        return {safe_text(str(k)): safe_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [safe_value(v) for v in value]
    return value
