"""A CPU budget per message, spent away from the event loop.

Parsing, text extraction and the rules tier read untrusted bytes. They run here, in a small pool of
long-lived helper processes (started by a fork server, so none of them inherits the service's sockets,
database connections or event loop), never in the service's own interpreter: a thread would keep the
GIL and starve the loop, and ``wait_for(to_thread(...))`` only stops *waiting*. Each task is guarded
twice:

* in the helper, ``ITIMER_PROF`` fires after ``cpu_seconds`` of the helper's CPU time and raises
  :class:`_CpuExceeded` (a ``BaseException``, so no ``except Exception`` in the parser swallows it;
  should the task swallow it, the second alarm half a CPU second later ends the helper), and the regex
  engine and the interpreter both stop for it;
* in the service, a wall-clock timer kills the helper (SIGKILL) if no answer came well after the
  budget (code stuck in C that never looks at signals, a helper starved of CPU by a neighbour).

Either way the caller gets :class:`~recruiter.errors.OverBudget` and the helper (if killed) is
replaced by the next task. An exception inside the task comes back as itself (or, when it cannot be
pickled, as :class:`HelperFailed` naming it); a helper that dies (an OOM kill, a crash in C) gives
:class:`HelperFailed` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import pickle
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar, cast

import structlog

from recruiter.errors import DependencyUnavailable, HelperFailed, OverBudget
from recruiter.log import configure_logging, process_config

log = structlog.get_logger()
T = TypeVar("T")

DEFAULT_CPU_SECONDS = 10.0
_REFIRE = 0.5  # CPU seconds to the second alarm, should a task swallow the first: then the helper exits
_LARGE = 256 * 1024  # after a task with an input this large the helper returns its free heap pages
_BUDGET_EXIT = 75  # a helper's exit code when a task swallowed its first alarm
# helper_start first: it keeps the console libraries out of the fork server, before structlog is imported.
_PRELOAD = ["recruiter.helper_start", "recruiter.budget", "recruiter.mail.parse", "recruiter.mail.invite",
            "recruiter.triage.rules"]


class _CpuExceeded(BaseException):
    """Raised in a helper by its CPU timer; a BaseException so that ``except Exception`` lets it by."""


def wall_limit(cpu_seconds: float) -> float:
    """How long the service waits for a helper before it kills it: well past the CPU budget, because
    on a busy machine a helper gets only part of a core."""
    return cpu_seconds * 3 + 10.0


class Budget:
    """Runs picklable top-level functions in helper processes, ``cpu_seconds`` of CPU each at most.

    ``helpers`` processes at most (started on first use), each replaced after ``max_tasks`` tasks
    (whatever a parser leaves behind in its heap goes with it). Safe to share between tasks of one
    event loop; :meth:`aclose` stops the helpers."""

    def __init__(self, cpu_seconds: float = DEFAULT_CPU_SECONDS, *, helpers: int = 1, max_tasks: int = 1000,
                 wall_seconds: float | None = None, context: str = "forkserver") -> None:
        self.cpu_seconds = cpu_seconds
        self.wall_seconds = wall_seconds if wall_seconds is not None else wall_limit(cpu_seconds)
        self.size = max(1, helpers)
        self.max_tasks = max_tasks
        self._context_name = context
        self._context: Any = None  # a forkserver or spawn context, made on first use
        self._idle: list[_Helper] = []
        self._started = 0  # helpers alive or being started
        self._free = asyncio.Condition()
        self._closed = False
        self.killed = 0  # helpers killed by the wall-clock backstop
        self.over_budget = 0  # tasks stopped for their CPU

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a helper. Raises OverBudget when it spends more than the budget,
        the task's own exception when it raises one, HelperFailed when the helper dies."""
        helper = await self._acquire()
        keep = False
        try:
            try:
                reply = await asyncio.wait_for(asyncio.to_thread(helper.call, fn, args, kwargs, self.cpu_seconds),
                                               timeout=self.wall_seconds)
            except TimeoutError:
                self.killed += 1
                self.over_budget += 1
                log.error("budget.killed", seconds=self.wall_seconds, task=_name(fn), pid=helper.pid)
                raise OverBudget(f"no answer within {self.wall_seconds:g} s (CPU budget {self.cpu_seconds:g} s): "
                                 f"the helper was killed") from None
            except (EOFError, OSError) as exc:
                code = helper.exitcode()
                if code == _BUDGET_EXIT:
                    self.over_budget += 1
                    log.warning("budget.exceeded", task=_name(fn), cpu_seconds=self.cpu_seconds + _REFIRE)
                    raise OverBudget(f"over the CPU budget of {self.cpu_seconds:g} s per message") from None
                log.error("budget.helper_died", task=_name(fn), pid=helper.pid, exitcode=code)
                raise HelperFailed(f"the helper process died on this input (exit code {code})") from exc
            kind, value = reply
            keep = True
            if kind == "ok":
                return cast(T, value)
            if kind == "budget":
                self.over_budget += 1
                log.warning("budget.exceeded", task=_name(fn), cpu_seconds=round(float(value), 2))
                raise OverBudget(f"over the CPU budget of {self.cpu_seconds:g} s per message "
                                 f"(stopped after {float(value):.1f} s)")
            if isinstance(value, BaseException):
                raise value
            raise HelperFailed(str(value))
        finally:
            await self._release(helper, keep=keep)

    async def _acquire(self) -> _Helper:
        async with self._free:
            while True:
                if self._closed:
                    raise DependencyUnavailable("the CPU budget's helpers are stopped", dependency="budget")
                if self._idle:
                    return self._idle.pop()
                if self._started < self.size:
                    self._started += 1
                    break
                await self._free.wait()
        try:
            return await asyncio.to_thread(self._start)
        except BaseException as exc:
            async with self._free:
                self._started -= 1
                self._free.notify()
            if isinstance(exc, Exception):  # no process could be started: not this input's fault
                log.error("budget.cannot_start", error=f"{type(exc).__name__}: {exc}")
                raise DependencyUnavailable(f"cannot start a helper process: {type(exc).__name__}: {exc}",
                                            dependency="budget") from exc
            raise

    async def _release(self, helper: _Helper, *, keep: bool) -> None:
        keep = keep and not self._closed and helper.tasks < self.max_tasks and helper.alive()
        if not keep:
            await asyncio.to_thread(helper.stop)
        async with self._free:
            if keep:
                self._idle.append(helper)
            else:
                self._started -= 1
            self._free.notify()

    def _start(self) -> _Helper:
        if self._context is None:
            context = multiprocessing.get_context(self._context_name)
            if self._context_name == "forkserver":
                context.set_forkserver_preload(_PRELOAD)
            self._context = context
        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(target=_serve, args=(child, process_config()), name="recruiter-budget",
                                        daemon=True)
        process.start()
        child.close()
        return _Helper(process, parent)

    def pids(self) -> list[int]:
        """The helpers' process ids (for the memory benchmark and tests)."""
        return [h.pid for h in self._idle]

    async def aclose(self) -> None:
        """Stop every helper; running tasks get HelperFailed. Never raises."""
        async with self._free:
            self._closed = True
            idle, self._idle = self._idle, []
            self._free.notify_all()
        for helper in idle:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(helper.stop)


class _Helper:
    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.pid = process.pid or 0
        self.tasks = 0

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
             cpu_seconds: float) -> tuple[str, Any]:
        """One task, blocking (run in a thread). EOFError/OSError when the helper dies or is killed."""
        self.tasks += 1
        self.conn.send((fn, args, kwargs, cpu_seconds))
        data = self.conn.recv_bytes()
        try:
            # What Connection.recv does; the bytes come from our own helper over a private pipe.
            return cast(tuple[str, Any], pickle.loads(data))  # noqa: S301
        except Exception as exc:  # e.g. an exception class whose constructor wants other arguments
            return "error", HelperFailed(f"the helper's answer cannot be read: {type(exc).__name__}: {exc}")

    def alive(self) -> bool:
        return self.process.is_alive()

    def exitcode(self) -> int | None:
        with contextlib.suppress(Exception):
            self.process.join(timeout=1.0)
        return self.process.exitcode

    def stop(self) -> None:
        """Kill the helper and reap it (a helper mid-task is stuck by definition: no polite request)."""
        with contextlib.suppress(Exception):
            self.conn.close()
        with contextlib.suppress(Exception):
            self.process.kill()
            self.process.join(timeout=5.0)
        with contextlib.suppress(Exception):
            self.process.close()


def _name(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


# ---- in the helper -------------------------------------------------------------------------------

_armed = False
_alarms = 0


def _alarm(signum: int, frame: object) -> None:
    global _alarms
    if not _armed:
        return
    _alarms += 1
    if _alarms > 1:  # the first one was swallowed: the task will not stop by itself
        os._exit(_BUDGET_EXIT)
    raise _CpuExceeded


def _serve(conn: Connection, logging_config: dict[str, Any]) -> None:
    """A helper's life: run tasks from ``conn`` until it closes. Ctrl-C and SIGTERM are for the service
    (they reach the whole process group); the helper ends when the service closes the pipe or kills it.
    It logs as the service does (``logging_config``: level, format, secrets), on the stderr they share."""
    global _armed, _alarms
    if logging_config:
        configure_logging(**logging_config)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGPROF, _alarm)
    from recruiter.memory import release_memory, tune_malloc  # in the helper only

    tune_malloc()  # the service's heap settings: a large mail's buffers go back to the system
    while True:
        try:
            fn, args, kwargs, cpu_seconds = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        started = time.process_time()
        reply: tuple[str, Any]
        try:
            _armed, _alarms = True, 0
            signal.setitimer(signal.ITIMER_PROF, cpu_seconds, _REFIRE)
            try:
                reply = ("ok", fn(*args, **kwargs))
            finally:
                _armed = False
                signal.setitimer(signal.ITIMER_PROF, 0, 0)
        except _CpuExceeded:
            reply = ("budget", time.process_time() - started)
        except BaseException as exc:  # the task's own failure goes back to the caller
            reply = ("error", exc)
        try:
            conn.send(reply)
        except (EOFError, BrokenPipeError):
            return
        except Exception as exc:  # the result or exception does not pickle: say what it was
            conn.send(("error", HelperFailed(f"{type(reply[1]).__name__}: {str(reply[1])[:500]} "
                                             f"(not sendable: {type(exc).__name__})")))
        if any(isinstance(arg, bytes | str) and len(arg) > _LARGE for arg in args):
            release_memory()  # a large input's pages, freed but kept by the heap, go back now


def descendants(pid: int | None = None) -> list[int]:
    """Process ids of every descendant of ``pid`` (default: this process), from /proc: the fork
    server and the helpers it forked (they are its children, not ours)."""
    parents: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError), open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
                    parents.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    todo = [pid if pid is not None else os.getpid()]
    while todo:
        children = parents.get(todo.pop(), [])
        found.extend(children)
        todo.extend(children)
    return found
