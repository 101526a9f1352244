"""Chat completions against the configured OpenAI-compatible tiers, gently.

The GPU behind llama-swap is shared: one request in flight by default, reasoning off, no client
retries (a 5xx moves on to the next tier instead of hammering the starved one).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import structlog

from recruiter.errors import DependencyUnavailable, PermanentError, RecruiterError, TransientError
from recruiter.settings import LLMEndpoint

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


def classify_llm_error(exc: Exception, endpoint: LLMEndpoint) -> RecruiterError:
    """Map an openai/httpx exception to Transient or Permanent by type and status, never by text."""
    where = f"{endpoint.tier} ({endpoint.model})"
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        reason = httpx.codes.get_reason_phrase(status) or "error"
        message = f"{status} {reason} from {where}"
        if status >= 500 or status in (408, 409, 429):
            retry_after = _retry_after(exc.response)
            return DependencyUnavailable(message, dependency=endpoint.tier, status=status, retry_after=retry_after)
        return PermanentError(message, reason="llm_4xx", status=status)
    if isinstance(exc, openai.APITimeoutError):
        return DependencyUnavailable(f"timeout from {where}", dependency=endpoint.tier)
    if isinstance(exc, openai.APIConnectionError):
        return DependencyUnavailable(f"cannot connect to {where}", dependency=endpoint.tier)
    return DependencyUnavailable(f"{type(exc).__name__} from {where}", dependency=endpoint.tier)


def _retry_after(response: Any) -> float | None:
    raw = response.headers.get("retry-after", "")
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


class LLM:
    """The tiers in order, sharing one concurrency limit."""

    def __init__(
        self,
        endpoints: Sequence[LLMEndpoint],
        *,
        timeout: float = 120.0,
        concurrency: int = 1,
    ) -> None:
        self.endpoints = tuple(endpoints)
        self._clients = {
            e.tier: openai.AsyncOpenAI(
                base_url=f"{e.base_url}/v1",
                api_key=e.api_key or "none",
                max_retries=0,
                timeout=timeout,
            )
            for e in self.endpoints
        }
        self._gate = asyncio.Semaphore(concurrency)
        self.calls = 0

    @property
    def configured(self) -> bool:
        """True when at least one tier exists."""
        return bool(self.endpoints)

    async def aclose(self) -> None:
        """Close every tier's HTTP client."""
        for client in self._clients.values():
            await client.close()

    async def chat(
        self,
        messages: list[dict[str, str]],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 800,
    ) -> ChatAnswer:
        """Ask each tier in turn until one answers; raise the last tier's error if none does."""
        if not self.endpoints:
            raise PermanentError("no LLM tier is configured", reason="no_llm")
        last: RecruiterError | None = None
        for endpoint in self.endpoints:
            try:
                return await self._ask(endpoint, messages, json_schema, max_tokens)
            except RecruiterError as exc:
                log.warning("llm.tier_failed", tier=endpoint.tier, model=endpoint.model, error=str(exc))
                last = exc
        assert last is not None
        raise last

    async def ask_tier(
        self, endpoint: LLMEndpoint, messages: list[dict[str, str]], *, json_schema: dict[str, Any] | None = None,
        max_tokens: int = 800,
    ) -> ChatAnswer:
        """Ask one named tier only (the schema repair step stays on the tier that answered)."""
        return await self._ask(endpoint, messages, json_schema, max_tokens)

    async def _ask(
        self,
        endpoint: LLMEndpoint,
        messages: list[dict[str, str]],
        json_schema: dict[str, Any] | None,
        max_tokens: int,
    ) -> ChatAnswer:
        extra: dict[str, Any] = {"chat_template_kwargs": {"enable_thinking": False}}
        kwargs: dict[str, Any] = {}
        if json_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "triage", "strict": True, "schema": json_schema},
            }
        async with self._gate:
            started = time.monotonic()
            self.calls += 1
            try:
                completion = await self._clients[endpoint.tier].chat.completions.create(
                    model=endpoint.model,
                    messages=messages,  # type: ignore[arg-type]
                    temperature=0,
                    max_tokens=max_tokens,
                    extra_body=extra,
                    **kwargs,
                )
            except openai.OpenAIError as exc:
                raise classify_llm_error(exc, endpoint) from exc
            seconds = time.monotonic() - started
        return _answer(completion, endpoint, seconds)


def _answer(completion: Any, endpoint: LLMEndpoint, seconds: float) -> ChatAnswer:
    choices = getattr(completion, "choices", None) or []
    if not choices or choices[0].message is None:
        raise DependencyUnavailable(f"empty answer from {endpoint.tier} ({endpoint.model})", dependency=endpoint.tier)
    content = _THINK.sub("", choices[0].message.content or "").strip()
    usage = getattr(completion, "usage", None)
    answer = ChatAnswer(
        content=content,
        tier=endpoint.tier,
        model=endpoint.model,
        prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
        seconds=seconds,
    )
    log.info("llm.answered", tier=answer.tier, model=answer.model, seconds=round(seconds, 3),
             prompt_tokens=answer.prompt_tokens)
    return answer


__all__ = ["LLM", "ChatAnswer", "TransientError", "classify_llm_error"]
