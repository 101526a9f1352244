"""Whose fault a failed LLM call is: the tier's (down, or refusing us) or the request's.

The SDK's typed errors (``APIConnectionError``, ``APITimeoutError``, ``APIStatusError`` by status and
by the server's ``code``/``param``/``type``/message) become our error classes; never our own text.
Server texts are scrubbed of keys before they go anywhere (a server may echo the key it refused).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from datetime import UTC
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Literal

from recruiter.errors import DependencyUnavailable, Misconfigured, PermanentError, RecruiterError
from recruiter.settings import LLMEndpoint

if TYPE_CHECKING:
    from openai import OpenAIError

MAX_RETRY_AFTER_SECONDS = 600.0  # a server may ask for a day; the breaker's longest probe delay is the cap
MAX_SERVER_TEXT = 300  # characters of a server's error text kept in errors, events and logs

Verdict = Literal["transient", "request", "misconfigured", "undecided"]

_CONTENT_CODES = frozenset({"context_length_exceeded", "string_above_max_length", "invalid_prompt",
                            "content_policy_violation", "content_filter"})
_CONTENT_TYPES = frozenset({"exceed_context_size_error"})  # llama.cpp's server
_CONFIG_CODES = frozenset({"invalid_api_key", "model_not_found", "unsupported_parameter", "unsupported_value",
                           "unknown_parameter", "invalid_json_schema", "insufficient_quota", "invalid_organization",
                           "invalid_project", "unsupported_country_region_territory", "account_deactivated"})
_CONTENT_TEXT = re.compile(r"context (length|size|window)|maximum context|too many tokens|prompt is too long|"
                           r"exceeds the available context", re.IGNORECASE)
_CONFIG_TEXT = re.compile(
    r"unrecognized request argument|unsupported (parameter|value)|unknown (parameter|field|argument)|"
    r"extra (inputs|fields) (are )?not permitted|invalid schema for response_format|"
    r"could not find (real modelid|suitable handler)|unable to swap to model|"
    r"model\b.{0,100}\b(does not exist|not found)|"
    r"(response_format|json_schema)\b.{0,60}\bnot supported",
    re.IGNORECASE,
)


def classify_status(status: int, *, code: str | None = None, param: str | None = None, kind: str | None = None,
                    text: str = "") -> Verdict:
    """Whose fault a non-2xx answer is, from the status and what the server said.

    ``transient``: the tier is down or busy (408, 409, 429 but for an exhausted quota, 5xx).
    ``misconfigured``: the tier refuses *us* (401, 403, 404, 407, an exhausted quota, any other 4xx
    but 400/413/422; a 400/422 that names a parameter other than ``messages`` or has a code or text
    of configuration: an unrecognized argument, an unsupported value, a refused schema, an unknown model).
    ``request``: this request is at fault (413; a 400/422 about the content: context too long).
    ``undecided``: a 400/422 that says nothing of why (the caller judges by what other requests get).
    """
    if status >= 500 or status in (408, 409, 425):
        return "transient"
    if status == 429:
        return "misconfigured" if code == "insufficient_quota" else "transient"
    if status == 413:
        return "request"
    if status not in (400, 422):
        return "misconfigured"
    if (code in _CONTENT_CODES or kind in _CONTENT_TYPES or _CONTENT_TEXT.search(text)
            or (param or "").startswith("messages")):
        return "request"
    if code in _CONFIG_CODES or param or _CONFIG_TEXT.search(text):
        return "misconfigured"
    return "undecided"


def scrub(text: str, keys: Sequence[str]) -> str:
    """``text`` without the tiers' keys (a server may echo the key it refused, or a proxy another one)
    or anything shaped like a key or a bearer token, on one line, cut to ``MAX_SERVER_TEXT`` characters."""
    for key in keys:
        if len(key) >= 4:
            text = text.replace(key, "***")
    text = re.sub(r"\bsk-[A-Za-z0-9_*.\-]{3,}", "sk-***", text)
    text = re.sub(r"(?i)\b(bearer)\s+\S+", r"\1 ***", text)
    return clip(" ".join(text.split()))


def clip(text: str) -> str:
    return text if len(text) <= MAX_SERVER_TEXT else text[: MAX_SERVER_TEXT - 1] + "…"


def _status_line(status: int, endpoint: LLMEndpoint) -> str:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "error"
    return f"{status} {reason} from {where(endpoint)}"


def _server_text(body: object) -> str:
    """The human part of an error body: OpenAI's ``message``, llama-swap's ``error`` string, or the text."""
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, str):
                return value
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])
        return json.dumps(body)[:MAX_SERVER_TEXT * 2]
    return body if isinstance(body, str) else ""


def retry_after(headers: Any, *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``retry-after`` in seconds or as an HTTP date, at most
    ``MAX_RETRY_AFTER_SECONDS``; None when absent or unreadable."""
    millis = headers.get("retry-after-ms")
    raw = (headers.get("retry-after") or "").strip()
    seconds: float | None = None
    try:
        if millis:
            seconds = float(millis) / 1000
        elif raw:
            seconds = float(raw)
    except ValueError:
        seconds = None
    if seconds is None and raw:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds is None or seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def classify(exc: OpenAIError, endpoint: LLMEndpoint, keys: Sequence[str]) -> tuple[RecruiterError, Verdict]:
    """Our error for one of the SDK's, and whose fault it is; ``keys`` are scrubbed from the server's text."""
    import openai

    at = where(endpoint)
    if isinstance(exc, openai.APITimeoutError):
        return DependencyUnavailable(f"timeout from {at}", dependency=endpoint.tier), "transient"
    if isinstance(exc, openai.APIConnectionError):
        return DependencyUnavailable(f"cannot connect to {at}", dependency=endpoint.tier), "transient"
    if not isinstance(exc, openai.APIStatusError):
        return DependencyUnavailable(f"{type(exc).__name__} from {at}", dependency=endpoint.tier), "transient"
    status = exc.status_code
    said = scrub(_server_text(exc.body), keys)
    body = exc.body if isinstance(exc.body, dict) else {}
    kind = body.get("type") if isinstance(body.get("type"), str) else None
    verdict = classify_status(status, code=exc.code, param=exc.param, kind=kind, text=said)
    line = _status_line(status, endpoint)
    if verdict == "transient":
        wait = retry_after(exc.response.headers)
        return DependencyUnavailable(line, dependency=endpoint.tier, status=status, retry_after=wait), verdict
    message = f"{line}: {said}" if said else line
    if verdict == "misconfigured":
        return Misconfigured(message, dependency=endpoint.tier, status=status), verdict
    return PermanentError(message, reason="llm_4xx", status=status), verdict


def classify_llm_error(exc: OpenAIError, endpoint: LLMEndpoint) -> RecruiterError:
    """Our error for one of the SDK's, judged on its own: DependencyUnavailable (timeout, refused
    connection, 5xx, 408/409/429; a ``Retry-After`` is kept, capped), Misconfigured (401/403/404,
    a refused parameter or schema, an unknown model, an exhausted quota) or PermanentError
    (``llm_4xx``: the request's own fault, or a 400 that says nothing of why — :class:`LLM` judges
    those by what other requests get). No text of the SDK's exception is kept: it may quote a key."""
    return classify(exc, endpoint, (endpoint.api_key.get_secret_value(),))[0]


def where(endpoint: LLMEndpoint) -> str:
    """``tier (model)``, as errors name a tier."""
    return f"{endpoint.tier} ({endpoint.model})"
