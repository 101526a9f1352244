"""Chat completions against the configured OpenAI-compatible tiers, gently.

The GPU behind llama-swap is shared: one request in flight by default, reasoning off, no client
retries. Each tier has a circuit breaker (:mod:`recruiter.llm.breaker`): a transient failure moves on
to the next tier instead of hammering the starved one, and after a few in a row the tier is skipped
until a probe finds it answering again.

The calls are plain HTTP: one shared ``httpx.AsyncClient`` per tier POSTs the JSON body to
``{base_url}/v1/chat/completions`` and reads the answer with ``json.loads``. The ``openai`` SDK did the
same over httpx, but its request path (TypedDict ``maybe_transform`` of the params, pydantic parsing of
the ChatCompletion) about doubled the CPU of a call: against the loopback fake LLM in another process,
1,000 calls each, 2.3–2.5 ms of CPU per call with the SDK, 1.2–1.3 ms with the plain POST (every
recruiter mail makes two). ``import openai`` also cost RSS: 14 MB on top of ``import recruiter.service``
(82 → 97 MB), 24 MB on top of ``import recruiter.llm.client`` alone (28 → 52 MB). The behaviour is the
SDK's as used here: bearer key when one is set, one timeout for connect/read/write/pool, no retries,
redirects followed, non-2xx answers classified by status (see :func:`classify_llm_error`).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import structlog

from recruiter.errors import DependencyUnavailable, PermanentError, RecruiterError, TransientError
from recruiter.llm.breaker import CircuitBreaker
from recruiter.settings import LLMEndpoint, Settings

log = structlog.get_logger()
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


@dataclass(frozen=True)
class ChatAnswer:
    """One completion and where it came from."""

    content: str
    tier: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    estimated: bool = False  # the server sent no usage: the token counts are estimates


Outcome = Literal["ok", "error", "invalid"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "error", "invalid")


def estimate_tokens(text: str) -> int:
    """A tokenizer-free token estimate: one token per four characters, rounded up (BPE tokenizers of
    current chat models average 3.5–4.5 characters per token on English prose and mail)."""
    return (len(text) + 3) // 4


def estimate_prompt_tokens(messages: Sequence[dict[str, str]]) -> int:
    """``estimate_tokens`` of every message's content plus four tokens per message for the chat
    template's role markers."""
    return sum(estimate_tokens(str(m.get("content") or "")) + 4 for m in messages)


@dataclass
class UsageCounter:
    """What one (tier, model, outcome) cost so far. ``estimated_calls``: calls whose answer carried no
    ``usage``, so their tokens are estimates."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    estimated_calls: int = 0


class Usage:
    """Per (tier, model, outcome) counters of LLM calls, tokens and latency.

    ``ok``: an answer came back; ``error``: the call failed (5xx, 4xx, timeout, refused, empty);
    ``invalid``: an answer came back but the caller found it unusable (see :meth:`LLM.mark_invalid`),
    so the call moves from ``ok`` to ``invalid``. Each call is counted under exactly one outcome.
    """

    def __init__(self) -> None:
        self._counters: dict[tuple[str, str, Outcome], UsageCounter] = {}

    def add(self, tier: str, model: str, outcome: Outcome, *, prompt_tokens: int = 0, completion_tokens: int = 0,
            seconds: float = 0.0, estimated: bool = False, calls: int = 1) -> None:
        """Count ``calls`` calls (negative to take them back) with their tokens and seconds."""
        counter = self._counters.setdefault((tier, model, outcome), UsageCounter())
        counter.calls += calls
        counter.prompt_tokens += prompt_tokens
        counter.completion_tokens += completion_tokens
        counter.seconds += seconds
        counter.estimated_calls += calls if estimated else 0

    def snapshot(self) -> list[dict[str, Any]]:
        """One dict per (tier, model, outcome) with calls, sorted: tier, model, outcome, calls, prompt_tokens,
        completion_tokens, seconds (total latency), estimated_calls."""
        return [
            {"tier": tier, "model": model, "outcome": outcome, "calls": c.calls, "prompt_tokens": c.prompt_tokens,
             "completion_tokens": c.completion_tokens, "seconds": c.seconds, "estimated_calls": c.estimated_calls}
            for (tier, model, outcome), c in sorted(self._counters.items()) if c.calls
        ]


@dataclass(frozen=True)
class _Request:
    """One chat request, as asked of any tier."""

    messages: list[dict[str, str]]
    json_schema: dict[str, Any] | None
    max_tokens: int


def classify_llm_error(exc: Exception, endpoint: LLMEndpoint) -> RecruiterError:
    """Map an httpx exception to Transient or Permanent by type and status, never by text.

    ``httpx.HTTPStatusError`` (a non-2xx answer): 5xx, 408, 409 and 429 are transient (a
    ``Retry-After`` in seconds is kept), any other status permanent (``llm_4xx``). A timeout or any
    other failure to get an answer (refused, reset, protocol error) is transient.
    """
    where = f"{endpoint.tier} ({endpoint.model})"
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        reason = httpx.codes.get_reason_phrase(status) or "error"
        message = f"{status} {reason} from {where}"
        if status >= 500 or status in (408, 409, 429):
            retry_after = _retry_after(exc.response)
            return DependencyUnavailable(message, dependency=endpoint.tier, status=status, retry_after=retry_after)
        return PermanentError(message, reason="llm_4xx", status=status)
    if isinstance(exc, httpx.TimeoutException):
        return DependencyUnavailable(f"timeout from {where}", dependency=endpoint.tier)
    if isinstance(exc, httpx.RequestError):
        return DependencyUnavailable(f"cannot connect to {where}", dependency=endpoint.tier)
    return DependencyUnavailable(f"{type(exc).__name__} from {where}", dependency=endpoint.tier)


def _status_error(response: httpx.Response) -> httpx.HTTPStatusError:
    """The error for a non-2xx answer; its text names the status only (no URL, no body: either may
    carry a credential, e.g. a server echoing the key it refused)."""
    status = response.status_code
    reason = httpx.codes.get_reason_phrase(status) or "error"
    return httpx.HTTPStatusError(f"{status} {reason}", request=response.request, response=response)


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after", "")
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


class LLM:
    """The tiers in order, each behind its own circuit breaker, sharing one concurrency limit."""

    def __init__(
        self,
        endpoints: Sequence[LLMEndpoint],
        *,
        timeout: float = 120.0,
        concurrency: int = 1,
        failure_threshold: int = 3,
        probe_after: float = 60.0,
        max_probe_after: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoints = tuple(endpoints)
        # One client (its connection pool) per tier, built once; the URL is parsed once too.
        self._clients = {
            e.tier: httpx.AsyncClient(
                headers=_headers(e), timeout=timeout, follow_redirects=True,
                limits=httpx.Limits(max_connections=max(100, concurrency), max_keepalive_connections=20),
            )
            for e in self.endpoints
        }
        self._urls = {e.tier: httpx.URL(f"{e.base_url.rstrip('/')}/v1/chat/completions") for e in self.endpoints}
        self.breakers: dict[str, CircuitBreaker] = {
            e.tier: CircuitBreaker(e.tier, failure_threshold=failure_threshold, probe_after=probe_after,
                                   max_probe_after=max_probe_after, clock=clock)
            for e in self.endpoints
        }
        self._gate = asyncio.Semaphore(concurrency)
        self.calls = 0  # real HTTP calls, not skipped tiers
        self.usage = Usage()

    @classmethod
    def from_settings(cls, settings: Settings, *, tiers: Sequence[LLMEndpoint] | None = None) -> LLM:
        """The configured tiers (or ``tiers``, e.g. none for the rules tier) with the configured timeout,
        concurrency and breakers."""
        return cls(settings.llm_tiers if tiers is None else tiers, timeout=settings.llm_timeout,
                   concurrency=settings.llm_concurrency, failure_threshold=settings.llm_breaker_threshold,
                   probe_after=settings.llm_breaker_probe_seconds,
                   max_probe_after=max(settings.llm_breaker_probe_seconds, settings.llm_breaker_max_probe_seconds))

    @property
    def configured(self) -> bool:
        """True when at least one tier exists."""
        return bool(self.endpoints)

    @property
    def all_down(self) -> bool:
        """True when every tier's breaker is open (calls skip them until a probe succeeds)."""
        return bool(self.endpoints) and all(self.breakers[e.tier].opened_at is not None for e in self.endpoints)

    async def aclose(self) -> None:
        """Close every tier's HTTP client."""
        for client in self._clients.values():
            await client.aclose()

    def status(self) -> list[dict[str, Any]]:
        """Each tier in order: tier, model, and its breaker's state, failures, last error, opened_at."""
        return [
            {
                "tier": e.tier,
                "model": e.model,
                **{k: v for k, v in self.breakers[e.tier].snapshot().items() if k != "name"},
            }
            for e in self.endpoints
        ]

    def usage_snapshot(self) -> list[dict[str, Any]]:
        """Calls, prompt and completion tokens and total latency per (tier, model, outcome); see :class:`Usage`."""
        return self.usage.snapshot()

    def mark_invalid(self, answer: ChatAnswer) -> None:
        """Count ``answer``'s call as ``invalid`` instead of ``ok``: it came back but could not be used.

        Accounting only; whether the tier's breaker hears of it is :meth:`record_invalid`'s business."""
        moves: tuple[tuple[Outcome, int], ...] = (("ok", -1), ("invalid", 1))
        for outcome, sign in moves:
            self.usage.add(answer.tier, answer.model, outcome, calls=sign, prompt_tokens=sign * answer.prompt_tokens,
                           completion_tokens=sign * answer.completion_tokens, seconds=sign * answer.seconds,
                           estimated=answer.estimated)

    def record_invalid(self, tier: str, error: str) -> None:
        """Count a schema-invalid answer (still invalid after the repair attempt) as ``tier``'s failure."""
        breaker = self.breakers.get(tier)
        if breaker is None:
            log.warning("llm.invalid_answer_unknown_tier", tier=tier, error=error)
            return
        log.warning("llm.invalid_answer", tier=tier, error=error)
        breaker.record_invalid(error)

    async def chat(
        self,
        messages: list[dict[str, str]],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 800,
    ) -> ChatAnswer:
        """Ask each tier whose breaker allows it, once, in order, until one answers.

        A transient failure counts against that tier's breaker; a 4xx does not; either way the next
        tier is tried. When none answers: the last transient error if there was one (the message
        should wait, not die); else the last 4xx if every tier was asked; else a DependencyUnavailable
        saying the skipped tiers are paused, with the first one's last error and the time to its probe
        as ``retry_after``.
        """
        if not self.endpoints:
            raise PermanentError("no LLM tier is configured", reason="no_llm")
        request = _Request(messages, json_schema, max_tokens)
        errors: list[RecruiterError] = []
        skipped: list[LLMEndpoint] = []
        for endpoint in self.endpoints:
            try:
                answer = await self._attempt(endpoint, request)
            except RecruiterError as exc:
                _log_tier_error(endpoint, exc)
                errors.append(exc)
                continue
            if answer is not None:
                return answer
            skipped.append(endpoint)
        raise self._final_error(errors, skipped)

    async def ask_tier(
        self, endpoint: LLMEndpoint, messages: list[dict[str, str]], *, json_schema: dict[str, Any] | None = None,
        max_tokens: int = 800,
    ) -> ChatAnswer:
        """Ask one named tier only (the schema repair step stays on the tier that answered).

        Respects the tier's breaker (raises DependencyUnavailable while it is open) and counts a
        transient failure against it, but a success here does not reset it: the answer is judged by
        the caller, which reports an unusable one with :meth:`record_invalid`.
        """
        answer = await self._attempt(endpoint, _Request(messages, json_schema, max_tokens), follow_up=True)
        if answer is None:
            raise self._paused_error([endpoint], [])
        return answer

    async def _attempt(self, endpoint: LLMEndpoint, request: _Request, *, follow_up: bool = False) -> ChatAnswer | None:
        """One call to one tier through its breaker; None when the breaker skips the tier."""
        breaker = self.breakers[endpoint.tier]
        async with self._gate:
            if not breaker.allow():
                log.debug("llm.tier_skipped", tier=endpoint.tier, state=breaker.state)
                return None
            probe = breaker.probing
            try:
                answer = await self._ask(endpoint, request)
            except TransientError as exc:
                breaker.record_failure(str(exc))
                raise
            except BaseException:  # a 4xx, a cancellation: no verdict on the tier's health
                if probe:
                    breaker.release()
                raise
            if probe or not follow_up:
                breaker.record_success()
            return answer

    async def _ask(self, endpoint: LLMEndpoint, request: _Request) -> ChatAnswer:
        """The HTTP call itself; errors come out classified. Call with the gate held."""
        body: dict[str, Any] = {
            "model": endpoint.model,
            "messages": request.messages,
            "temperature": 0,
            "max_tokens": request.max_tokens,
        }
        if request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "triage", "strict": True, "schema": request.json_schema},
            }
        body["chat_template_kwargs"] = {"enable_thinking": False}
        started = time.monotonic()
        self.calls += 1
        try:
            response = await self._clients[endpoint.tier].post(self._urls[endpoint.tier], json=body)
            if response.is_error:
                raise _status_error(response)
        except httpx.HTTPError as exc:
            self.usage.add(endpoint.tier, endpoint.model, "error", seconds=time.monotonic() - started)
            raise classify_llm_error(exc, endpoint) from exc
        except BaseException:  # cancelled mid-call: the GPU may still have worked on it
            self.usage.add(endpoint.tier, endpoint.model, "error", seconds=time.monotonic() - started)
            raise
        seconds = time.monotonic() - started
        try:
            answer = _answer(response.content, endpoint, seconds, request.messages)
        except RecruiterError:
            self.usage.add(endpoint.tier, endpoint.model, "error", seconds=seconds)
            raise
        self.usage.add(endpoint.tier, endpoint.model, "ok", prompt_tokens=answer.prompt_tokens,
                       completion_tokens=answer.completion_tokens, seconds=seconds, estimated=answer.estimated)
        return answer

    def _final_error(self, errors: list[RecruiterError], skipped: list[LLMEndpoint]) -> RecruiterError:
        """What to raise when no tier answered: the last transient error, else the last 4xx when every
        tier was asked, else a DependencyUnavailable for the paused tiers (they will be probed again)."""
        transient = [e for e in errors if isinstance(e, TransientError)]
        if transient:
            return transient[-1]
        if not skipped:
            return errors[-1]
        return self._paused_error(skipped, errors)

    def _paused_error(self, skipped: list[LLMEndpoint], rejected: list[RecruiterError]) -> DependencyUnavailable:
        """The skipped tiers' breakers are open: name the first one and its last error; retry at the next probe."""
        first = skipped[0]
        if len(skipped) == len(self.endpoints):
            what = "all LLM tiers are paused"
        else:
            what = f"{', '.join(e.tier for e in skipped)} {'is' if len(skipped) == 1 else 'are'} paused"
        message = f"{what} (circuit open): {self.breakers[first.tier].last_error or 'no error recorded'}"
        if rejected:
            message += f"; {rejected[-1]}"
        waits = [w for e in skipped if (w := self.breakers[e.tier].seconds_until_probe()) is not None]
        return DependencyUnavailable(message, dependency=first.tier, retry_after=min(waits) if waits else None)


def _log_tier_error(endpoint: LLMEndpoint, exc: RecruiterError) -> None:
    event = "llm.tier_failed" if isinstance(exc, TransientError) else "llm.tier_rejected"
    log.warning(event, tier=endpoint.tier, model=endpoint.model, error=str(exc))


def _headers(endpoint: LLMEndpoint) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if endpoint.api_key:
        headers["Authorization"] = f"Bearer {endpoint.api_key}"
    return headers


def _count(usage: Any, name: str) -> int | None:
    """A token count from the answer's ``usage``, or None when absent or not a whole number."""
    value = usage.get(name) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _parse(raw_body: bytes) -> tuple[str, Any] | None:
    """The first choice's message content (None read as "") and the ``usage`` of a chat completion body;
    None when the body is not JSON or has no first choice with a message whose content is text or null."""
    try:
        completion = json.loads(raw_body)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        return None
    if not isinstance(completion, dict):
        return None
    choices = completion.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(message, dict) or not (content is None or isinstance(content, str)):
        return None
    return content or "", completion.get("usage")


def _answer(raw_body: bytes, endpoint: LLMEndpoint, seconds: float, messages: list[dict[str, str]]) -> ChatAnswer:
    """The ChatAnswer of a 2xx body; an empty answer (DependencyUnavailable) when it is malformed."""
    parsed = _parse(raw_body)
    if parsed is None:
        raise DependencyUnavailable(f"empty answer from {endpoint.tier} ({endpoint.model})", dependency=endpoint.tier)
    raw, usage = parsed
    content = _THINK.sub("", raw).strip()
    prompt_tokens = _count(usage, "prompt_tokens")
    completion_tokens = _count(usage, "completion_tokens")
    estimated = not prompt_tokens or completion_tokens is None
    answer = ChatAnswer(
        content=content,
        tier=endpoint.tier,
        model=endpoint.model,
        prompt_tokens=prompt_tokens or estimate_prompt_tokens(messages),
        completion_tokens=completion_tokens if completion_tokens is not None else estimate_tokens(raw),
        seconds=seconds,
        estimated=estimated,
    )
    log.info("llm.answered", tier=answer.tier, model=answer.model, seconds=round(seconds, 3),
             prompt_tokens=answer.prompt_tokens)
    return answer


__all__ = ["LLM", "OUTCOMES", "ChatAnswer", "CircuitBreaker", "TransientError", "Usage", "classify_llm_error",
           "estimate_prompt_tokens", "estimate_tokens"]
