"""Recording a side effect that cannot be looked up again (an SMTP send, a Telegram message)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from recruiter.backoff import Backoff
from recruiter.errors import TransientError

PATIENCE = Backoff(0.5, cap=10.0)


async def patiently(write: Callable[[], Awaitable[Any]], log: Any, *, tries: int = 8) -> None:
    """Retry a store write through a short database outage (0.5 s doubling to 10 s, ``tries`` times).

    The write is shielded: a cancellation (shutdown) does not cut it off halfway; it finishes in the
    background while the caller stops. Still failing after ``tries``: the TransientError is raised.
    """
    for attempt in range(1, tries + 1):
        try:
            await asyncio.shield(write())
            return
        except TransientError as exc:
            if attempt == tries:
                raise
            delay = PATIENCE.delay(attempt)
            log.error("store.write_retry", attempt=attempt, error=str(exc), retry_in=delay)
            await asyncio.sleep(delay)
