"""The worker: claims due messages under a lease and runs each one's stages from where it stopped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import socket
import time
from datetime import datetime, timedelta
from typing import Any

import structlog

from recruiter.alerts.incidents import LLM
from recruiter.backoff import Backoff, Rand
from recruiter.budget import Budget
from recruiter.errors import LeaseLost, MaybeDone, PermanentError, Postponed, TransientError, UnparseableMail
from recruiter.mail.invite import read_mail, remember
from recruiter.mail.parse import DEFAULT_MAX_BYTES, ParsedMail, parse_message
from recruiter.metrics import Metrics
from recruiter.model import TriageResult
from recruiter.pipeline.stages import STAGES, Deps, Job
from recruiter.store.models import FINISHED, Message, utcnow

log = structlog.get_logger()


# The claim loop's wait while the store is down: 0.5 s doubling to 30 s (failures counted in process).
CLAIM_BACKOFF = Backoff(0.5, cap=30.0)


def retry_delay(attempt: int, *, base: float, maximum: float, retry_after: float | None = None,
                rand: Rand = random.random) -> float:
    """The persisted schedule's wait before a message's next attempt: min(maximum, base × 2^(attempt−1))
    plus 0–20 % jitter, never less than the server's Retry-After."""
    delay = Backoff(base, cap=maximum, jitter=0.2).delay(attempt, rand=rand)
    return max(delay, retry_after or 0.0)


class Worker:
    """Runs stages for leased messages; several at once, the LLM limiting itself."""

    def __init__(
        self,
        deps: Deps,
        *,
        concurrency: int = 4,
        lease_seconds: float = 300.0,
        poll_seconds: float = 5.0,
        retry_base: float = 30.0,
        retry_max: float = 3600.0,
        max_attempts: int = 10,
        max_text_chars: int = 6000,
        max_message_bytes: int = DEFAULT_MAX_BYTES,
        metrics: Metrics | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.budget = budget  # None: parse in a thread (tests and tools without helper processes)
        self.max_text_chars = max_text_chars
        self.max_message_bytes = max_message_bytes
        self.metrics = metrics or Metrics()
        self.deps = deps
        self.concurrency = concurrency
        self._busy: set[int] = set()  # messages this worker is processing (their leases are alive)
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.max_attempts = max_attempts
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(3)}"
        self._wake = asyncio.Event()
        self._next_reap = 0.0  # monotonic time of the next look for expired leases
        self.processed = 0

    def wake(self) -> None:
        """New work was stored: look now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and process until ``stop`` is set; running messages finish their current stage.

        Up to ``concurrency`` messages run at once, and a slot that frees up is filled at once: a batch
        of quick messages (prefilter skips) does not wait for the slowest one (an LLM call) of its batch.
        """
        outage = CLAIM_BACKOFF.waits()
        running: set[asyncio.Task[None]] = set()
        reaper = asyncio.create_task(self._reap_every(min(self.poll_seconds, self.lease_seconds / 4), stop),
                                     name="lease-reaper")
        try:
            while not stop.is_set():
                self._wake.clear()
                free = self.concurrency - len(running)
                claimed = 0
                if free > 0:
                    try:
                        rows = await self._claim(free, reap=False)  # the reaper task looks for expired leases
                        outage.reset()
                        if rows:  # the leases were written: the store takes writes
                            await self._store_ok()
                    except Exception as exc:
                        # The store is unreachable, locked or read-only (or the claim met something else):
                        # keep the service up, tell the owner after a while, and look again soon.
                        wait = outage.next()
                        if isinstance(exc, TransientError):
                            log.error("worker.store_unavailable", error=str(exc), retry_in=wait)
                        else:
                            log.exception("worker.claim_failed", retry_in=wait)
                        await self._store_failed(exc)
                        await asyncio.wait([asyncio.ensure_future(stop.wait()), *running], timeout=wait,
                                           return_when=asyncio.FIRST_COMPLETED)
                        running = {t for t in running if not t.done()}
                        continue
                    claimed = len(rows)
                    running.update(asyncio.create_task(self.process(row), name=f"message:{row.id}") for row in rows)
                if claimed == free and free > 0:
                    continue  # there may be more due right now
                waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
                await asyncio.wait([*waits, *running], timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waits:
                    waiter.cancel()
                running = {t for t in running if not t.done()}
            if running:
                await asyncio.gather(*running)
        except asyncio.CancelledError:
            for task in running:
                task.cancel()  # each one releases its lease without burning an attempt
            await asyncio.gather(*running, return_exceptions=True)
            raise
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper

    async def _store_ok(self) -> None:
        if self.deps.incidents is not None:
            await self.deps.incidents.store_ok()

    async def _store_failed(self, exc: BaseException) -> None:
        if self.deps.incidents is not None:
            await self.deps.incidents.store_failed(f"{type(exc).__name__}: {exc}")

    async def _reap_every(self, seconds: float, stop: asyncio.Event) -> None:
        """Return expired leases to the queue every ``seconds``, off the path from a wake-up to a claim."""
        while not stop.is_set():
            try:
                await self._reap()
            except TransientError as exc:
                log.error("worker.store_unavailable", error=str(exc), during="reap")
            except Exception:  # keep reaping: a dead reaper would strand every expired lease
                log.exception("worker.reap_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)

    async def _reap(self) -> None:
        # The leases of the messages this process is working on are never lost while it runs: their renewers
        # are alive (a renewal that failed during a database outage renews the lease when the database is
        # back). Its other expired leases are messages it lost track of: they are due again at once.
        reaped = await self.deps.store.reap_expired(alive=self.owner, busy=set(self._busy),
                                                    pause=timedelta(seconds=self.lease_seconds))
        for message_id, state in reaped:
            log.warning("worker.lease_expired", message=message_id, state=state)
        if reaped:
            self.wake()

    async def _claim(self, limit: int, *, reap: bool = True) -> list[Message]:
        """Lease and load up to ``limit`` due messages; with ``reap``, first return expired leases to the
        queue (at most once per poll interval)."""
        now = time.monotonic()
        if reap and now >= self._next_reap:
            self._next_reap = now + min(self.poll_seconds, self.lease_seconds / 4)
            await self._reap()
        return await self.deps.store.claim(self.owner, limit=limit, lease_seconds=self.lease_seconds)

    async def run_once(self) -> int:
        """Claim one batch of due messages and process it; returns how many were claimed."""
        rows = await self._claim(self.concurrency)
        if rows:
            await asyncio.gather(*(self.process(row) for row in rows))
        return len(rows)

    async def drain(self) -> int:
        """Process until nothing is due (used by `recruiter process`)."""
        total = 0
        while (claimed := await self.run_once()) > 0:
            total += claimed
        return total

    async def process(self, row: Message) -> None:
        """Run a leased message's remaining stages; record a failure as a retry or a dead letter."""
        if row.lease_owner != self.owner:
            return
        self._busy.add(row.id)
        try:
            with structlog.contextvars.bound_contextvars(message=row.id, key=row.key, mailbox=row.mailbox):
                await self._process(row)
        finally:
            self._busy.discard(row.id)

    async def _process(self, row: Message) -> None:
        message_id = row.id
        bound = log.bind()
        stage = row.stage
        job: Job | None = None
        renewer = asyncio.create_task(self._renew(message_id))
        try:
            try:
                mail = await self._parse(row.raw)
            except (PermanentError, TransientError):  # TransientError: no helper process to read it now
                raise
            except Exception as exc:  # whatever the parser does with these bytes is about this mail only
                raise UnparseableMail(f"cannot parse message: {type(exc).__name__}: {exc}") from exc
            self.deps.store.drop_raw(row)  # the stages read the parse; the raw bytes need not stay
            job = Job(row=row, mail=mail, owner=self.owner, log=bound, draft=row.draft_text,
                      triage=TriageResult.model_validate(row.triage) if row.triage else None,
                      tier=row.triage_tier or "")
            while stage != FINISHED:
                stage = await self._timed(stage, job)
            self.processed += 1
        except LeaseLost:
            bound.warning("worker.lease_lost", stage=stage)
        except asyncio.CancelledError:
            # Shutdown past the grace period: give the message back without burning an attempt.
            await asyncio.shield(self._release(message_id, job))
            raise
        except Postponed as exc:
            bound.info("stage.postponed", stage=stage, seconds=round(exc.delay, 1), reason=str(exc))
            await self._postpone(message_id, exc.delay, job, f"waiting: {exc}")
        except PermanentError as exc:
            bound.error("stage.dead", stage=stage, error=str(exc), reason=exc.reason)
            await self._fail(message_id, stage, exc, None, job, reason=exc.reason)
        except MaybeDone as exc:
            # A side effect that may have happened (written, no answer) and that its stage did not settle
            # itself: never repeated by a retry. Dead-lettered, so the owner decides (not a TransientError,
            # so the clause below could not catch it in any order; the catch-all after it would retry).
            bound.error("stage.dead", stage=stage, error=str(exc), reason="maybe_done", dependency=exc.dependency)
            await self._fail(message_id, stage, exc, None, job, reason="maybe_done")
        except TransientError as exc:
            if self._outage(exc):
                # The dependency is down for everyone, not because of this mail: wait with the usual
                # backoff, but the attempt does not count (a long outage must not make mail dead).
                await self._retry(message_id, row.attempts + 1, stage, exc, bound, exc.retry_after, job,
                                  count_attempt=False)
            else:
                await self._retry(message_id, row.attempts + 1, stage, exc, bound, exc.retry_after, job)
        except Exception as exc:
            bound.exception("stage.crashed", stage=stage)
            await self._retry(message_id, row.attempts + 1, stage, exc, bound, None, job)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer

    async def _parse(self, raw: bytes) -> ParsedMail:
        """Parse (and read calendar invitations) in a helper process under the CPU budget (OverBudget when
        the mail needs more): a large or hostile mail costs its own CPU, never the event loop's (IDLE,
        leases, /healthz)."""
        if self.budget is None:
            return await asyncio.to_thread(parse_message, raw, max_text_chars=self.max_text_chars,
                                           max_bytes=self.max_message_bytes)
        mail, found = await self.budget.run(read_mail, raw, max_text_chars=self.max_text_chars,
                                            max_bytes=self.max_message_bytes)
        if found is not None:  # the calendar parts were read there too: the stages and the card need not
            remember(mail.calendar_parts, found)
        return mail

    async def _timed(self, stage: str, job: Job) -> str:
        """Run one stage and record how long it took and how it ended."""
        started = time.perf_counter()
        try:
            following = await STAGES[stage](self.deps, job)
        except BaseException as exc:
            self.metrics.stage_done(stage, _outcome(exc), time.perf_counter() - started)
            raise
        self.metrics.stage_done(stage, "ok", time.perf_counter() - started)
        return following

    def _outage(self, exc: TransientError) -> bool:
        """Whether ``exc`` is part of an outage of its dependency (the store's, or one the incidents see
        failing for more than one message): then it is not this message's attempt."""
        if exc.dependency == "db":
            return True
        incidents = self.deps.incidents
        return incidents is not None and bool(exc.dependency) and incidents.in_outage(
            incident_key(exc.dependency, self.deps))

    async def _retry(self, message_id: int, attempt: int, stage: str, exc: BaseException, bound: structlog.BoundLogger,
                     retry_after: float | None, job: Job | None, *, count_attempt: bool = True) -> None:
        if count_attempt and attempt >= self.max_attempts:
            bound.error("stage.dead", stage=stage, error=str(exc), reason="max_attempts", attempts=attempt)
            await self._fail(message_id, stage, exc, None, job, reason="max_attempts")
            return
        if not count_attempt:
            attempt -= 1  # the backoff does not grow with an outage's failures either
        delay = retry_delay(max(1, attempt), base=self.retry_base, maximum=self.retry_max, retry_after=retry_after)
        bound.warning("stage.retry", stage=stage, error=str(exc), attempt=attempt, seconds=round(delay, 1),
                      counted=count_attempt)
        await self._fail(message_id, stage, exc, utcnow() + timedelta(seconds=delay), job, count_attempt=count_attempt)

    # A failure, a pause or a shutdown also writes the progress the job has not written yet (a triage
    # verdict, a recorded draft or event): the next attempt starts where this one stopped.

    async def _postpone(self, message_id: int, delay: float, job: Job | None, reason: str) -> None:
        try:
            await self.deps.store.postpone(message_id, self.owner, utcnow() + timedelta(seconds=delay),
                                           effects=_effects(job), **{**_progress(job), "last_error": reason[:2000]})
        except (LeaseLost, TransientError) as exc:
            log.warning("worker.cannot_postpone", message=message_id, error=str(exc))
        except Exception:  # the lease expires and the message comes back on its own
            log.exception("worker.cannot_postpone", message=message_id)

    async def _release(self, message_id: int, job: Job | None) -> None:
        try:
            await self.deps.store.release(message_id, self.owner, effects=_effects(job), **_progress(job))
            log.info("worker.released", message=message_id)
        except TransientError as exc:
            log.error("worker.cannot_release", message=message_id, error=str(exc))
        except Exception:  # the lease expires and the message comes back on its own
            log.exception("worker.cannot_release", message=message_id)

    async def _fail(self, message_id: int, stage: str, exc: BaseException, retry_at: datetime | None,
                    job: Job | None, *, reason: str | None = None, count_attempt: bool = True) -> None:
        try:
            await self.deps.store.fail(message_id, self.owner, stage=stage, exc=exc, retry_at=retry_at, reason=reason,
                                       effects=_effects(job), progress=_progress(job), count_attempt=count_attempt)
        except LeaseLost:
            log.warning("worker.lease_lost", message=message_id, stage=stage)
        except TransientError as db_exc:
            # The store itself is down: the lease expires and the message comes back on its own.
            log.error("worker.cannot_record_failure", message=message_id, error=str(db_exc))
        except Exception as db_exc:
            # The store refused the record itself (its progress or its texts): record the failure alone,
            # so the message still retries or goes dead instead of waiting for its lease to expire.
            log.exception("worker.failure_refused", message=message_id, error_class=type(db_exc).__name__)
            try:
                await self.deps.store.fail(message_id, self.owner, stage=stage, retry_at=retry_at, reason=reason,
                                           exc=RuntimeError(f"{type(exc).__name__} (its record was refused: "
                                                            f"{type(db_exc).__name__})"),
                                           count_attempt=count_attempt)
            except Exception:
                log.exception("worker.cannot_record_failure", message=message_id)

    async def _renew(self, message_id: int) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                await self.deps.store.renew_lease(message_id, self.owner, self.lease_seconds)
            except (LeaseLost, TransientError) as exc:
                log.warning("worker.lease_renew_failed", message=message_id, error=str(exc))
            except Exception:
                log.exception("worker.lease_renew_failed", message=message_id)


def incident_key(dependency: str, deps: Deps) -> str:
    """The incident a dependency's failure counts for: every LLM tier is "llm"; CalDAV is "calendar"."""
    if deps.triager.llm.configured and dependency in {e.tier for e in deps.triager.llm.endpoints}:
        return LLM
    return {"caldav": "calendar"}.get(dependency, dependency)


def _progress(job: Job | None) -> dict[str, Any]:
    """The row fields a job has not written yet (a finished job has none left)."""
    if job is None:
        return {}
    progress = dict(job.pending)
    for terminal in ("state", "lease_owner", "lease_expires_at"):  # the failure's own values decide these
        progress.pop(terminal, None)
    if progress.get("stage") == FINISHED:  # the final write failed: resume at the last stage written
        del progress["stage"]
    return progress


def _effects(job: Job | None) -> list[tuple[str, str, str]]:
    """The side-effect records a job has not written yet."""
    return list(job.pending_effects) if job is not None else []


def _outcome(exc: BaseException) -> str:
    """How a stage ended, for the stage-duration metric."""
    if isinstance(exc, Postponed):
        return "postponed"
    if isinstance(exc, PermanentError):
        return "permanent"
    if isinstance(exc, TransientError):
        return "transient"
    if isinstance(exc, asyncio.CancelledError | LeaseLost):
        return "interrupted"
    return "crashed"
