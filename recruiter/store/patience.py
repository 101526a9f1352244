"""Recording a side effect that cannot be looked up again (an SMTP send, a Telegram message)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from recruiter.errors import TransientError


async def patiently(write: Callable[[], Awaitable[Any]], log: Any, *, tries: int = 8) -> None:
    """Retry a store write through a short database outage (0.5 s doubling to 10 s, ``tries`` times).

    The write is shielded: a cancellation (shutdown) does not cut it off halfway; it finishes in the
    background while the caller stops. Still failing after ``tries``: the TransientError is raised.
    """
    delay = 0.5
    for attempt in range(1, tries + 1):
        try:
            await asyncio.shield(write())
            return
        except TransientError as exc:
            if attempt == tries:
                raise
            log.error("store.write_retry", attempt=attempt, error=str(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
