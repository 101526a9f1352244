"""The exception tree: every public error lives in recruiter.errors, and "maybe it happened" is never a
transient failure, whatever order a caller writes its except clauses in."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import SimpleNamespace
from typing import Any, cast

import pytest

import recruiter
from recruiter import errors
from recruiter.errors import (
    MaybeDone,
    MaybeSent,
    PermanentError,
    RecruiterError,
    TransientError,
)
from recruiter.pipeline.stages import STAGES, Deps, Job
from recruiter.pipeline.worker import Worker
from recruiter.store.models import Message
from tests.mailfactory import make_mail


@pytest.mark.parametrize("maybe", [MaybeDone, MaybeSent])
def test_maybe_done_is_neither_transient_nor_permanent(maybe: type[MaybeDone]) -> None:
    assert issubclass(maybe, RecruiterError)
    assert not issubclass(maybe, TransientError)
    assert not issubclass(maybe, PermanentError)


def _handle(exc: BaseException) -> str:
    """A caller that puts its retry clause first: a MaybeSent must still not land there."""
    try:
        raise exc
    except TransientError:
        return "retry"
    except PermanentError:
        return "dead"
    except MaybeDone:
        return "uncertain"
    except RecruiterError:
        return "failed"


def test_a_maybe_sent_is_not_caught_by_a_retry_clause_placed_first() -> None:
    assert _handle(MaybeSent("the data went out, no answer", dependency="smtp")) == "uncertain"
    assert _handle(MaybeDone("no answer", dependency="telegram")) == "uncertain"
    assert _handle(errors.Dropped("no answer", dependency="imap:me")) == "retry"
    assert _handle(errors.HelperFailed("exit code 3")) == "dead"


# A driver's own exception type, extended where the driver is used (never raised past that module).
DRIVER_SUBCLASSES = {"recruiter.mail.imap.ConnectionGone"}


def test_every_public_exception_of_the_package_is_defined_in_errors() -> None:
    strays = []
    for info in pkgutil.walk_packages(recruiter.__path__, "recruiter."):
        if info.name.endswith(".__main__") or info.name == "recruiter.errors":
            continue  # __main__ runs the CLI when imported
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == info.name
                    and not name.startswith("_")):
                strays.append(f"{info.name}.{name}")
    assert sorted(set(strays) - DRIVER_SUBCLASSES) == []


def test_the_moved_errors_keep_their_place_in_the_tree() -> None:
    assert issubclass(errors.ConnectionLost, errors.ImapError)
    assert issubclass(errors.Dropped, errors.ImapError)
    assert issubclass(errors.ImapError, errors.DependencyUnavailable)
    assert issubclass(errors.HelperFailed, PermanentError) and errors.HelperFailed("x").reason == "unparseable"
    for value_error in (errors.LabelError, errors.SourceError):
        assert issubclass(value_error, ValueError)
    for name in ("LeaseLost", "AmbiguousDraft", "ApiError", "ReplayError", "LabelError", "SourceError"):
        assert issubclass(getattr(errors, name), RecruiterError)


def test_every_class_in_errors_is_drawn_in_its_docstring() -> None:
    doc = errors.__doc__ or ""
    drawn = {name for name, value in vars(errors).items()
             if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == errors.__name__}
    assert {name for name in drawn if f" {name}" not in doc} == set()


class _Store:
    """The calls the worker makes around one failed stage; records how the failure is written."""

    def __init__(self) -> None:
        self.failures: list[dict[str, Any]] = []

    async def fail(self, message_id: int, owner: str, **record: Any) -> None:
        self.failures.append({"message_id": message_id, **record})

    async def renew_lease(self, message_id: int, owner: str, seconds: float) -> None:
        return None

    def drop_raw(self, row: Message) -> None:
        return None


@pytest.mark.parametrize("uncertain", [MaybeSent("the data went out, no answer came", dependency="smtp"),
                                       MaybeDone("the request was sent; no answer came", dependency="telegram")])
async def test_a_maybe_done_out_of_a_stage_is_dead_lettered_never_retried(
    monkeypatch: pytest.MonkeyPatch, uncertain: MaybeDone
) -> None:
    """A stage that lets "it may have happened" out (instead of settling it as notify does): the worker
    does not schedule the stage again, whatever its except clauses' order; the owner decides."""
    calls: list[str] = []

    async def stage(_deps: Deps, job: Job) -> str:
        calls.append(job.key)
        raise uncertain

    monkeypatch.setitem(STAGES, "notify", stage)
    store = _Store()
    worker = Worker(cast(Deps, SimpleNamespace(store=store, incidents=None)), lease_seconds=60)
    row = Message(id=7, key="me:1:1", mailbox="me", stage="notify", attempts=0, raw=make_mail(), draft_text=None,
                  triage=None, triage_tier=None)
    await worker._process(row)
    assert calls == ["me:1:1"]
    [failure] = store.failures
    assert (failure["retry_at"], failure["reason"], failure["exc"]) == (None, "maybe_done", uncertain)
