"""HMAC-signed one-tap links for the Telegram card's buttons.

A link is ``{base}/cb/{action}?m={message_id}&exp={expires}&sig={sig}`` where ``sig`` is the hex
HMAC-SHA256 of ``"{action}\\n{message_id}\\n{expires}"``. The key is derived from the configured
secret (``WEBHOOK_BEARER_TOKEN``) with its own label, so a signature is never equal to anything
else computed from the same secret. The ``/cb`` endpoints call :func:`verify_link`; making a link
work only once is their job (they record its use), not this module's.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from urllib.parse import quote

ACTIONS: tuple[str, ...] = ("send", "decline", "ignore")
DEFAULT_TTL_SECONDS = 7 * 86400

_KEY_LABEL = b"recruiter-responder/cb"
_ACTION_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_SIG_RE = re.compile(r"[0-9a-f]{64}")


def _key(secret: str) -> bytes:
    """The signing key: HMAC(secret, label), so the raw secret never signs anything itself."""
    if not secret:
        raise ValueError("the link secret must not be empty")
    return hmac.new(secret.encode("utf-8"), _KEY_LABEL, hashlib.sha256).digest()


def _check_action(action: str) -> None:
    if not _ACTION_RE.fullmatch(action):
        raise ValueError(f"invalid link action {action!r}")


def signature(secret: str, action: str, message_id: int, expires: int) -> str:
    """The hex HMAC-SHA256 over ``action``, ``message_id`` and ``expires``."""
    _check_action(action)
    payload = f"{action}\n{int(message_id)}\n{int(expires)}".encode("ascii")
    return hmac.new(_key(secret), payload, hashlib.sha256).hexdigest()


def sign_link(base_url: str, secret: str, action: str, message_id: int, expires: int) -> str:
    """A signed link for ``action`` on the stored message ``message_id``, valid until ``expires``."""
    sig = signature(secret, action, message_id, expires)
    return (
        f"{base_url.rstrip('/')}/cb/{quote(action, safe='')}"
        f"?m={int(message_id)}&exp={int(expires)}&sig={sig}"
    )


def verify_link(secret: str, action: str, message_id: int, expires: int, sig: str, *, now: float) -> bool:
    """True when ``sig`` is the signature of these values and ``now`` is not past ``expires``.

    The comparison is constant-time; malformed input (unknown action shape, non-hex or
    wrong-length signature, empty secret) is simply not valid.
    """
    if not isinstance(sig, str) or not _SIG_RE.fullmatch(sig):
        return False
    try:
        expected = signature(secret, action, message_id, expires)
    except (ValueError, TypeError):
        return False
    if not hmac.compare_digest(expected, sig):
        return False
    return math.isfinite(now) and now <= expires


def card_links(
    base_url: str,
    secret: str,
    message_id: int,
    *,
    now: float,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
) -> dict[str, str]:
    """Signed links for every card action (send, decline, ignore), all expiring together."""
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    expires = int(now) + int(ttl_seconds)
    return {action: sign_link(base_url, secret, action, message_id, expires) for action in ACTIONS}
