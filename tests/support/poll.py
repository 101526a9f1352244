"""Poll until a condition holds: the one poll-until helper of the tests (a blocking and an asyncio form)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Iterator
from typing import Any


def _rounds(timeout: float, what: str) -> Iterator[None]:
    """One round per check; AssertionError naming ``what`` once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        yield
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition", every: float = 0.2) -> Any:
    """Call ``check`` every ``every`` s until it returns something truthy, and return that; fail after
    ``timeout`` seconds."""
    for _ in _rounds(timeout, what):
        if result := check():
            return result
        time.sleep(every)
    raise AssertionError("unreachable")  # pragma: no cover - _rounds raises


async def eventually(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition",
                     every: float = 0.1) -> Any:
    """:func:`wait_for` inside the event loop: ``check`` may return an awaitable; sleeps without blocking."""
    for _ in _rounds(timeout, what):
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(every)
    raise AssertionError("unreachable")  # pragma: no cover - _rounds raises
