"""The one poll-until helper of the tests (tests/support/poll.py): what it returns, when it gives up."""

from __future__ import annotations

import pytest

from tests.support.poll import eventually, wait_for


def test_wait_for_returns_the_first_truthy_answer() -> None:
    answers = iter([None, [], ["done"]])
    assert wait_for(lambda: next(answers), timeout=5, every=0) == ["done"]


def test_wait_for_checks_at_least_once_and_names_what_it_waited_for() -> None:
    calls: list[int] = []
    with pytest.raises(AssertionError, match="timed out after 0 s waiting for the mail"):
        wait_for(lambda: calls.append(1), timeout=0, what="the mail", every=0)
    assert calls == [1]


async def test_eventually_awaits_what_the_check_returns() -> None:
    answers = iter([0, 0, 7])

    async def count() -> int:
        return next(answers)

    assert await eventually(count, timeout=5, every=0) == 7
    assert await eventually(lambda: "sync", timeout=5, every=0) == "sync"


async def test_eventually_gives_up_after_the_timeout() -> None:
    async def never() -> bool:
        return False

    with pytest.raises(AssertionError, match="waiting for condition"):
        await eventually(never, timeout=0, every=0)
