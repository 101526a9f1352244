"""Chat completions against the configured OpenAI-compatible tiers, gently, on the official ``openai`` SDK.

The GPU behind llama-swap is shared: one request in flight by default, reasoning off, no client
retries. Each tier has a circuit breaker (:mod:`recruiter.llm.breaker`): a transient failure moves on
to the next tier instead of hammering the starved one, and after a few in a row the tier is skipped
until a probe finds it answering again.

The client. One ``openai.AsyncOpenAI`` per tier, built with the :class:`LLM` when it has tiers (the
rules-only default, with none, and the commands that never build one do not import the SDK at all; the
service builds it at start-up, so the second or so the import takes never stalls the event loop once
mail flows), with ``max_retries=0`` (retrying is the worker's and the breaker's business) and the
tier's timeout. The answer is read from
the raw body (``with_raw_response``) with ``json.loads``: a malformed body is an empty answer of that
tier, not whatever the SDK's lenient model construction would make of it. What it costs (bench/README.md,
"memory"): about 15 MB of RSS with a tier configured (``import openai`` is ~13 MB of its type modules
and pydantic models, the clients and the chat resource the rest; idle 92 → 107 MB), and 2.3–2.6 times
the client CPU of a plain POST per call (5.3–6.3 ms against 2.3–2.5 ms, 1,000 calls to the loopback
fake on a loaded 2-core machine) — small beside a GPU answer, but not nothing.

Dialects. The llama-swap tiers speak llama.cpp's dialect: ``temperature: 0``, ``max_tokens``, the
full JSON schema (llama.cpp turns it into a grammar, lengths included) and, in ``extra_body``,
``chat_template_kwargs: {"enable_thinking": false}``. Any other tier (the ``gpt-mini`` relay) gets only
fields the OpenAI chat completions API documents: ``model``, ``messages``, ``max_completion_tokens``,
a strict ``json_schema`` in OpenAI's structured-output subset (:func:`recruiter.model.strict_schema`)
and ``reasoning_effort`` when configured — no ``temperature``, which reasoning models refuse.

Errors are classified by type, status and the server's ``code``/``param``/``type``, never by our own
text (see :mod:`recruiter.llm.classify`): a tier that is down is transient; a request that is at fault
(context too long) is permanent for that request only; a tier that refuses us (401, 403, 404, a
refused parameter, and a 400 that different requests get in a row) is :class:`Misconfigured` — its
breaker opens at once, the next tier is asked, the owner is told once through ``on_tier_event``, and
the tier is probed at the breaker's pace until it answers again (told once more). No mail dies because
of a tier's configuration: when no tier answers and one failed transiently or as misconfigured, the
error raised is a TransientError. Server texts are scrubbed of the key before they go anywhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import structlog

from recruiter.errors import DependencyUnavailable, Misconfigured, PermanentError, RecruiterError, TransientError
from recruiter.llm.breaker import CircuitBreaker
from recruiter.llm.classify import (
    Verdict,
    classify,
    classify_llm_error,
    classify_status,
    clip,
    retry_after,
    scrub,
    where,
)
from recruiter.model import strict_schema
from recruiter.settings import LLMEndpoint, Settings

if TYPE_CHECKING:
    from openai import AsyncOpenAI

log = structlog.get_logger()
BAD_REQUEST_LIMIT = 3  # unexplained 400s of different requests in a row that make a tier misconfigured
_REMEMBERED_REFUSALS = 256  # refused request fingerprints remembered per tier


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


TierEventKind = Literal["misconfigured", "recovered"]


@dataclass(frozen=True)
class TierEvent:
    """A tier started refusing us for a reason of configuration, or answers again after that.

    ``message``: what the server said (``misconfigured``) or that it answers again, the keys scrubbed,
    at most 300 characters. Fired once per transition."""

    kind: TierEventKind
    tier: str
    model: str
    status: int | None
    message: str


TierEventHook = Callable[[TierEvent], Awaitable[None]]
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

    @property
    def fingerprint(self) -> str:
        """Tells one request from another (the same mail asked again has the same one)."""
        return hashlib.sha256(json.dumps(self.messages, sort_keys=True).encode("utf-8", "replace")).hexdigest()[:16]


@dataclass
class _Refusals:
    """A tier's unexplained 400s (no code, no param, no text that says why): see :meth:`LLM._judge_refusal`."""

    successes: int = 0  # answers of the tier so far
    streak: set[str] = field(default_factory=set)  # requests refused since the tier's last answer
    first_refused: OrderedDict[str, int] = field(default_factory=OrderedDict)  # request -> successes then


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
        on_tier_event: TierEventHook | None = None,
        bad_request_limit: int = BAD_REQUEST_LIMIT,
    ) -> None:
        self.endpoints = tuple(endpoints)
        self.timeout = timeout
        self.on_tier_event = on_tier_event
        self.bad_request_limit = bad_request_limit
        self._clients: dict[str, AsyncOpenAI] = {}
        for endpoint in self.endpoints:  # the first one imports openai: only when a tier is configured
            self._client(endpoint)
        self.breakers: dict[str, CircuitBreaker] = {
            e.tier: CircuitBreaker(e.tier, failure_threshold=failure_threshold, probe_after=probe_after,
                                   max_probe_after=max_probe_after, clock=clock)
            for e in self.endpoints
        }
        self._refusals = {e.tier: _Refusals() for e in self.endpoints}
        keys = {e.api_key.get_secret_value() for e in self.endpoints}
        self._keys = tuple(sorted(keys - {""}, key=len, reverse=True))
        self._gate = asyncio.Semaphore(concurrency)
        self.calls = 0  # real HTTP calls, not skipped tiers
        self.usage = Usage()
        self.repairs: Counter[tuple[str, str]] = Counter()  # (field, kind) of answers mended before validation

    @classmethod
    def from_settings(cls, settings: Settings, *, tiers: Sequence[LLMEndpoint] | None = None,
                      on_tier_event: TierEventHook | None = None) -> LLM:
        """The configured tiers (or ``tiers``, e.g. none for the rules tier) with the configured timeout,
        concurrency and breakers."""
        return cls(settings.llm_tiers if tiers is None else tiers, timeout=settings.llm_timeout,
                   concurrency=settings.llm_concurrency, failure_threshold=settings.llm_breaker_threshold,
                   probe_after=settings.llm_breaker_probe_seconds,
                   max_probe_after=max(settings.llm_breaker_probe_seconds, settings.llm_breaker_max_probe_seconds),
                   on_tier_event=on_tier_event)

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
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.close()

    def status(self) -> list[dict[str, Any]]:
        """Each tier in order: tier, model, and its breaker's state, failures, misconfigured, last error, opened_at."""
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

    def record_repairs(self, repairs: Sequence[tuple[str, str]]) -> None:
        """Count the repairs made to an answer before it was validated: (field, kind) each."""
        self.repairs.update(repairs)

    def repairs_snapshot(self) -> list[dict[str, Any]]:
        """One dict per (field, kind) with its count, sorted."""
        return [{"field": f, "kind": k, "count": n} for (f, k), n in sorted(self.repairs.items())]

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

        A transient failure counts against that tier's breaker; a misconfiguration opens it at once;
        a refusal of the request itself does not touch it; in every case the next tier is tried.
        When none answers, see :meth:`_final_error`: a TransientError whenever a tier failed
        transiently or as misconfigured (the message waits), a PermanentError only when every tier
        was asked and each refused the request itself.
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

        Respects the tier's breaker (raises while it is open) and counts a transient failure against
        it, but a success here does not reset it: the answer is judged by the caller, which reports an
        unusable one with :meth:`record_invalid`.
        """
        answer = await self._attempt(endpoint, _Request(messages, json_schema, max_tokens), follow_up=True)
        if answer is None:
            raise self._paused_error([endpoint], [])
        return answer

    # --- one call to one tier ---------------------------------------------------------------------

    async def _attempt(self, endpoint: LLMEndpoint, request: _Request, *, follow_up: bool = False) -> ChatAnswer | None:
        """One call to one tier through its breaker; None when the breaker skips the tier. The owner's
        hook hears of a misconfiguration or a recovery after the concurrency gate is released."""
        breaker = self.breakers[endpoint.tier]
        async with self._gate:
            if not breaker.allow():
                log.debug("llm.tier_skipped", tier=endpoint.tier, state=breaker.state)
                return None
            probe = breaker.probing
            try:
                answer = await self._ask(endpoint, request)
            except _Failed as failed:
                event = self._judge(endpoint, request, failed, probe)
                error: RecruiterError | None = failed.error
            except BaseException:  # a cancellation: no verdict on the tier's health
                if probe:
                    breaker.release()
                raise
            else:
                event = self._answered(endpoint, breaker, probe=probe, follow_up=follow_up)
                error = None
        if event is not None:
            await self._tell(event)
        if error is not None:
            raise error
        return answer

    def _answered(self, endpoint: LLMEndpoint, breaker: CircuitBreaker, *, probe: bool,
                  follow_up: bool) -> TierEvent | None:
        """Record a success; the recovery event when it ends a misconfiguration."""
        refusals = self._refusals[endpoint.tier]
        refusals.successes += 1
        refusals.streak.clear()
        was_misconfigured = breaker.misconfigured
        if probe or not follow_up:
            breaker.record_success()
        if was_misconfigured and not breaker.misconfigured:
            log.info("llm.tier_recovered", tier=endpoint.tier, role=endpoint.role, model=endpoint.model)
            return TierEvent("recovered", endpoint.tier, endpoint.model, None,
                             f"{where(endpoint)} answers again")
        return None

    def _judge(self, endpoint: LLMEndpoint, request: _Request, failed: _Failed, probe: bool) -> TierEvent | None:
        """Tell the breaker what a failure says about the tier; the event when it starts a misconfiguration."""
        breaker = self.breakers[endpoint.tier]
        if failed.verdict == "undecided":
            failed.error = self._judge_refusal(endpoint, request, failed.error)
        error = failed.error
        event: TierEvent | None = None
        if isinstance(error, Misconfigured):
            if breaker.record_misconfigured(str(error)):
                event = TierEvent("misconfigured", endpoint.tier, endpoint.model, error.status, clip(str(error)))
            error.retry_after = breaker.seconds_until_probe()
            log.error("llm.tier_misconfigured", tier=endpoint.tier, role=endpoint.role, model=endpoint.model,
                      status=error.status, error=str(error), first=event is not None)
        elif isinstance(error, DependencyUnavailable):
            breaker.record_failure(str(error))
            log.warning("llm.tier_failed", tier=endpoint.tier, role=endpoint.role, model=endpoint.model,
                        error=str(error))
        else:  # the request's own fault, or not known yet whose: no verdict on the tier
            if probe:
                breaker.release()
            log.warning("llm.tier_rejected", tier=endpoint.tier, role=endpoint.role, model=endpoint.model,
                        error=str(error), final=isinstance(error, PermanentError))
        return event

    def _judge_refusal(self, endpoint: LLMEndpoint, request: _Request, error: RecruiterError) -> RecruiterError:
        """A 400 that says nothing of why: the tier's fault or the request's, by what other requests get.

        ``bad_request_limit`` different requests refused in a row (no answer in between) → the tier
        is Misconfigured. A request refused again after the tier has answered others since its first
        refusal → PermanentError (it is the request). Otherwise not known yet → a TransientError: the
        mail waits and is asked again, by when one of the two has shown itself.
        """
        refusals = self._refusals[endpoint.tier]
        fingerprint = request.fingerprint
        refusals.streak.add(fingerprint)
        first = refusals.first_refused.setdefault(fingerprint, refusals.successes)
        refusals.first_refused.move_to_end(fingerprint)
        while len(refusals.first_refused) > _REMEMBERED_REFUSALS:
            refusals.first_refused.popitem(last=False)
        status = getattr(error, "status", None)
        if len(refusals.streak) >= self.bad_request_limit:
            return Misconfigured(f"{error} ({len(refusals.streak)} different requests refused in a row)",
                                 dependency=endpoint.tier, status=status)
        if refusals.successes > first:
            return error
        return TransientError(f"{error} (not yet known whether the request or the tier is at fault)",
                              dependency=endpoint.tier, status=status)

    async def _tell(self, event: TierEvent) -> None:
        """Hand ``event`` to the owner's hook; the hook's own failure is logged, never the caller's."""
        if self.on_tier_event is None:
            return
        try:
            await self.on_tier_event(event)
        except Exception:  # the alert path must not fail a mail's LLM call: logged with its traceback
            log.exception("llm.tier_event_hook_failed", kind=event.kind, tier=event.tier)

    def _client(self, endpoint: LLMEndpoint) -> AsyncOpenAI:
        """The tier's SDK client (built again if :meth:`aclose` closed it)."""
        client = self._clients.get(endpoint.tier)
        if client is None:
            import openai

            # Org/project headers from OPENAI_* variables are left out: the tier's settings say all.
            client = openai.AsyncOpenAI(
                base_url=f"{endpoint.base_url.rstrip('/')}/v1", api_key=endpoint.api_key.get_secret_value() or "unused",
                max_retries=0, timeout=self.timeout,
                default_headers={"OpenAI-Organization": openai.omit, "OpenAI-Project": openai.omit},  # type: ignore[dict-item]
            )
            self._clients[endpoint.tier] = client
        return client

    def _arguments(self, endpoint: LLMEndpoint, request: _Request) -> dict[str, Any]:
        """The ``chat.completions.create`` arguments in the tier's dialect (see the module docstring)."""
        import openai

        arguments: dict[str, Any] = {"model": endpoint.model, "messages": request.messages}
        schema = request.json_schema
        if endpoint.dialect == "llama.cpp":
            arguments.update(temperature=0, max_tokens=request.max_tokens,
                             extra_body={"chat_template_kwargs": {"enable_thinking": False}})
        else:
            arguments["max_completion_tokens"] = request.max_tokens
            if endpoint.reasoning_effort:
                arguments["reasoning_effort"] = endpoint.reasoning_effort
            schema = strict_schema(schema) if schema is not None else None
        if schema is not None:
            arguments["response_format"] = {"type": "json_schema",
                                            "json_schema": {"name": "triage", "strict": True, "schema": schema}}
        if not endpoint.api_key.get_secret_value():
            arguments["extra_headers"] = {"Authorization": openai.omit}  # no key configured: no header
        return arguments

    async def _ask(self, endpoint: LLMEndpoint, request: _Request) -> ChatAnswer:
        """The HTTP call itself; a failure comes out as :class:`_Failed`. Call with the gate held."""
        import openai

        client = self._client(endpoint)
        arguments = self._arguments(endpoint, request)
        started = time.monotonic()
        self.calls += 1
        try:
            raw = await client.chat.completions.with_raw_response.create(**arguments)
            body = raw.content
        except openai.OpenAIError as exc:
            self.usage.add(endpoint.tier, endpoint.model, "error", seconds=time.monotonic() - started)
            error, verdict = classify(exc, endpoint, self._keys)
            # Not chained: the SDK's exception text quotes the server's body, which may echo the key.
            raise _Failed(error, verdict) from None
        except BaseException:  # cancelled mid-call: the GPU may still have worked on it
            self.usage.add(endpoint.tier, endpoint.model, "error", seconds=time.monotonic() - started)
            raise
        seconds = time.monotonic() - started
        try:
            answer = _answer(body, endpoint, seconds, request.messages)
        except DependencyUnavailable as exc:
            self.usage.add(endpoint.tier, endpoint.model, "error", seconds=seconds)
            raise _Failed(exc, "transient") from None
        self.usage.add(endpoint.tier, endpoint.model, "ok", prompt_tokens=answer.prompt_tokens,
                       completion_tokens=answer.completion_tokens, seconds=seconds, estimated=answer.estimated)
        return answer

    # --- when no tier answers ---------------------------------------------------------------------

    def _final_error(self, errors: list[RecruiterError], skipped: list[LLMEndpoint]) -> RecruiterError:
        """What to raise when no tier answered, most telling first: a tier that is down (the last
        such error), a tier paused because it is down, a tier that refuses us (Misconfigured), tiers
        paused because they refuse us, a refusal not yet judged — all TransientErrors, the mail waits —
        and only when every tier was asked and each refused this request, the last such refusal."""
        down = [e for e in errors if isinstance(e, DependencyUnavailable)]
        if down:
            return down[-1]
        starved = [e for e in skipped if not self.breakers[e.tier].misconfigured]
        if starved:
            return self._paused_error(starved, errors)
        refusing = [e for e in errors if isinstance(e, Misconfigured)]
        if refusing:
            return refusing[-1]
        if skipped:
            return self._paused_error(skipped, errors)
        waiting = [e for e in errors if isinstance(e, TransientError)]
        return waiting[-1] if waiting else errors[-1]

    def _paused_error(self, skipped: list[LLMEndpoint], rejected: list[RecruiterError]) -> TransientError:
        """The skipped tiers' breakers are open: name the first one and its last error; retry at the
        next probe. Misconfigured when every one of them is open because it refuses us."""
        first = skipped[0]
        refusing = all(self.breakers[e.tier].misconfigured for e in skipped)
        if len(skipped) == len(self.endpoints):
            what = "all LLM tiers are paused"
        else:
            what = f"{', '.join(e.tier for e in skipped)} {'is' if len(skipped) == 1 else 'are'} paused"
        why = "misconfigured" if refusing else "circuit open"
        message = f"{what} ({why}): {self.breakers[first.tier].last_error or 'no error recorded'}"
        if rejected:
            message += f"; {rejected[-1]}"
        waits = [w for e in skipped if (w := self.breakers[e.tier].seconds_until_probe()) is not None]
        wait = min(waits) if waits else None
        if refusing:
            return Misconfigured(message, dependency=first.tier, retry_after=wait)
        return DependencyUnavailable(message, dependency=first.tier, retry_after=wait)


class _Failed(Exception):
    """A call that failed, with our error and whose fault it is (only inside :class:`LLM`)."""

    def __init__(self, error: RecruiterError, verdict: Verdict) -> None:
        super().__init__(str(error))
        self.error = error
        self.verdict = verdict


def without_thinking(text: str) -> str:
    """``text`` without its ``<think>…</think>`` blocks (an unclosed one is left as it is). By search,
    not by a lazy pattern, which scans to the end from every "<think>" that is never closed."""
    out: list[str] = []
    position = 0
    while True:
        start = text.find("<think>", position)
        end = text.find("</think>", start + 7) if start >= 0 else -1
        if end < 0:
            out.append(text[position:])
            return "".join(out)
        out.append(text[position:start])
        position = end + 8


def _count(usage: Any, name: str) -> int | None:
    """A token count from the answer's ``usage``, or None when absent or not a whole number."""
    value = usage.get(name) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _parse(raw_body: bytes) -> tuple[str, Any] | None:
    """The first choice's message content (None read as "") and the ``usage`` of a chat completion body;
    None when the body is not JSON or has no first choice with a message whose content is text or null."""
    try:
        completion = json.loads(raw_body)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, nesting past the limit
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
        raise DependencyUnavailable(f"empty answer from {where(endpoint)}", dependency=endpoint.tier)
    raw, usage = parsed
    content = without_thinking(raw).strip()
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
    log.info("llm.answered", tier=answer.tier, role=endpoint.role, model=answer.model, seconds=round(seconds, 3),
             prompt_tokens=answer.prompt_tokens)
    return answer


__all__ = ["LLM", "OUTCOMES", "ChatAnswer", "CircuitBreaker", "TierEvent", "TierEventHook", "TransientError", "Usage",
           "classify_llm_error", "classify_status", "estimate_prompt_tokens", "estimate_tokens", "retry_after", "scrub"]
