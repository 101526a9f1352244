"""The stages of one message.

prefilter ─► triage ─► draft ─► calendar ─► notify ─► done
   │skip        │not recruiter
   ▼            ▼
 skipped      skipped

Side effects are keyed `<message key>:<stage>[:n]`; a stage checks the key before it acts, so a
retry or a restart after a crash resumes without doing anything twice.

Progress is written when it must be, not after every stage: a stage's result waits in the job
(:meth:`Job.move`) and goes to the store with the next write that has to happen anyway — the one
before the draft is APPENDed (so a restart looks for that draft instead of writing a second one),
the notify intent, the end, or the worker's record of a failure or a pause. A crash loses only
work that is safe to redo: a prefilter verdict, an LLM answer (asked again), an event PUT under the
same UID (it replaces itself), a draft APPEND already recorded as the stage (found again by its key
header). A live recruiter mail costs three writes after its claim (a backlog one two), not seven.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, TypeVar

import structlog

from recruiter.alerts.incidents import LLM, Incidents, imap_key
from recruiter.calendar.caldav import CalendarSink, build_event, event_uid
from recruiter.calendar.conflicts import SlotCheck, conflict_lines, conflict_marker, slot_bounds
from recruiter.calendar.ics import build_invitation_event
from recruiter.errors import MaybeDone, Misconfigured, Postponed, TransientError
from recruiter.mail.invite import Invitation, invitation_meetings, invitations
from recruiter.mail.parse import ParsedMail
from recruiter.model import Meeting, TriageResult
from recruiter.notify.card import render_card
from recruiter.notify.links import card_links
from recruiter.notify.telegram import Button, Notifier
from recruiter.reply.compose import build_reply
from recruiter.reply.draft import Drafter
from recruiter.reply.drafts import DraftSink
from recruiter.store.models import DONE, FINISHED, REPLAY_PREFIX, SKIPPED, Message
from recruiter.store.models import STAGES as STAGE_NAMES
from recruiter.store.patience import patiently
from recruiter.store.repo import Store
from recruiter.triage.fit import FitCheck
from recruiter.triage.llm import Triaged, Triager
from recruiter.triage.prefilter import skip_reason

log = structlog.get_logger()


@dataclass(frozen=True)
class Identity:
    """Who the owner is when writing: per mailbox From address, a display name, own addresses."""

    name: str
    addresses: dict[str, str]  # mailbox name -> address
    default_address: str
    own_addresses: frozenset[str]

    def address_for(self, mailbox: str, mail: ParsedMail) -> str:
        """The From address of a reply written in ``mailbox``."""
        if mailbox in self.addresses:
            return self.addresses[mailbox]
        return self.default_address or (mail.to_addrs[0] if mail.to_addrs else "me@localhost")


@dataclass(frozen=True)
class Links:
    """How to sign the card's buttons."""

    base_url: str
    secret: str
    ttl_seconds: int


@dataclass
class Deps:
    """Every collaborator the stages need, handed in."""

    store: Store
    triager: Triager
    drafter: Drafter
    drafts_for: Callable[[str], DraftSink]
    calendar: CalendarSink
    notifier: Notifier
    identity: Identity
    links: Links
    incidents: Incidents | None = None
    clock: Callable[[], float] = time.time
    imap_mailboxes: frozenset[str] = frozenset()  # mailboxes whose drafts go to an IMAP server
    conflicts: CalendarSink | None = None  # asked what is already at a proposed time; None: ``calendar``
    fit: FitCheck | None = None  # the owner profile's facts: the card's fit line (None: no fit line)


@dataclass
class Job:
    """One leased message on its way through the stages."""

    row: Message
    mail: ParsedMail
    owner: str
    triage: TriageResult | None = None
    tier: str = ""
    draft: str | None = None
    log: Any = field(default=None)
    pending: dict[str, Any] = field(default_factory=dict)  # row fields not yet written
    pending_effects: list[tuple[str, str, str]] = field(default_factory=list)  # (key, kind, ref) not yet written

    @property
    def key(self) -> str:
        return self.row.key

    @property
    def fresh(self) -> bool:
        """Claimed at the first stage: no earlier attempt wrote anything, so no side effect can exist
        for it yet (the first write of a message precedes its first side effect)."""
        return self.row.stage == STAGE_NAMES[0]

    def move(self, *, effects: Sequence[tuple[str, str, str]] = (), **fields: Any) -> None:
        """Note progress (row fields, side-effect records) to be written with the next write."""
        self.pending.update(fields)
        noted = {key for key, _, _ in self.pending_effects}
        self.pending_effects.extend(effect for effect in effects if effect[0] not in noted)

    async def save(self, store: Store, *, effects: Sequence[tuple[str, str, str]] = (), **fields: Any) -> None:
        """Write the pending progress and ``fields``/``effects`` in one transaction (kept pending if it fails)."""
        self.move(effects=effects, **fields)
        await store.advance(self.row.id, self.owner, effects=self.pending_effects, **self.pending)
        self.pending.clear()
        self.pending_effects.clear()


Stage = Callable[[Deps, Job], Awaitable[str]]
T = TypeVar("T")


async def _guarded(deps: Deps, key: str, call: Callable[[], Awaitable[T]]) -> T:
    """Run a step that needs the dependency ``key`` under the incident tracker: while its incident is
    open only one probe per interval reaches it, the rest wait (Postponed: no attempt burned); each
    transient failure and each success is reported. What the dependency refuses for the message's own
    sake (a PermanentError) and what may have happened (MaybeDone) say nothing about its health."""
    incidents = deps.incidents
    if incidents is None:
        return await call()
    if incidents.paused(key) and not await incidents.probe_due(key):
        view = incidents.view(key)
        why = f"{view.title} is failing ({view.last_error})" if view is not None else f"{key} is failing"
        raise Postponed(f"{why}; waiting for the next probe", delay=_probe_delay(incidents, key), dependency=key)
    try:
        result = await call()
    except Postponed:
        raise
    except TransientError as exc:
        # A dependency that refuses us for its configuration opens its incident at once (a mailbox without
        # a Drafts folder): the message waits for the fix without an attempt counted, the next ones too.
        # Every LLM tier refusing us is told by each tier's own incident, once: the LLM one is silent.
        misconfigured = isinstance(exc, Misconfigured)
        await incidents.failed(key, error=str(exc), detail={"tier": exc.dependency} if key == LLM else None,
                               immediate=misconfigured and key != LLM, told=misconfigured and key == LLM)
        if incidents.paused(key):
            raise Postponed(str(exc), delay=_probe_delay(incidents, key), dependency=exc.dependency) from exc
        raise
    await incidents.succeeded(key)
    return result


async def _llm_guarded(deps: Deps, call: Callable[[], Awaitable[T]]) -> T:
    """:func:`_guarded` for the LLM (nothing to guard when only the rules tier is configured)."""
    if not deps.triager.llm.configured:
        return await call()
    return await _guarded(deps, LLM, call)


def _probe_delay(incidents: Incidents, key: str = LLM) -> float:
    return incidents.next_probe_in(key) + random.uniform(1.0, 1.0 + incidents.probe_seconds * 0.2)


async def prefilter(deps: Deps, job: Job) -> str:
    """Skip bulk, automatic, no-reply and own mail before any LLM call."""
    reason = skip_reason(job.mail, own_addresses=deps.identity.own_addresses)
    if reason is None:
        job.move(stage="triage")
        return "triage"
    job.log.info("prefilter.skipped", reason=reason)
    await _finish(deps, job, SKIPPED, is_recruiter=False, skip_reason=reason)
    return FINISHED


async def triage(deps: Deps, job: Job) -> str:
    """Classify; non-recruiter mail ends skipped with no draft, event or card.

    While every LLM tier is down (all breakers open, or the triage incident has paused the LLM
    stages) the rules tier classifies instead. Its "recruiter" moves the mail on to the draft stage,
    which waits for the LLM and lets it confirm the verdict before drafting; its "not recruiter" is
    not final during an outage (the mail waits for the LLM), so no recruiter mail is lost to it."""
    try:
        triaged = await _llm_guarded(deps, lambda: deps.triager.triage(job.mail))
    except TransientError as exc:
        if not (isinstance(exc, Postponed) or deps.triager.llm.all_down):
            raise  # one tier hiccuped: retry with backoff rather than settle for the rules tier
        provisional = await deps.triager.by_rules(job.mail)
        job.log.warning("triage.rules_fallback", error=str(exc), is_recruiter=provisional.result.is_recruiter)
        if not provisional.result.is_recruiter:
            raise
        triaged = provisional
    return await _record_triage(deps, job, triaged)


async def _record_triage(deps: Deps, job: Job, triaged: Triaged) -> str:
    """Keep a triage verdict; returns the next stage (FINISHED when the mail is not recruiter mail)."""
    invited = invitation_meetings(job.mail.calendar_parts)
    if invited:  # a calendar invitation's times, not the model's reading of the prose (as the rules tier does)
        triaged = replace(triaged, result=triaged.result.model_copy(update={"meetings": invited}))
    job.triage, job.tier = triaged.result, triaged.tier
    result = triaged.result
    job.log.info("triage.done", tier=triaged.tier, is_recruiter=result.is_recruiter, kind=result.kind,
                 confidence=result.confidence)
    fields: dict[str, Any] = {
        "triage": result.model_dump(mode="json"), "triage_tier": triaged.tier, "is_recruiter": result.is_recruiter,
    }
    if not result.is_recruiter:
        await _finish(deps, job, SKIPPED, skip_reason="not recruiter", **fields)
        return FINISHED
    job.move(stage="draft", **fields)
    return "draft"


async def draft(deps: Deps, job: Job) -> str:
    """Write the reply body once, then APPEND it to Drafts once (found again by its key header)."""
    assert job.triage is not None
    if job.draft is None and job.tier == "rules" and deps.triager.llm.configured:
        # The rules tier stood in while the LLM was down: the LLM has the last word before a draft.
        confirmed = await _llm_guarded(deps, lambda: deps.triager.triage(job.mail))
        if await _record_triage(deps, job, confirmed) == FINISHED:
            return FINISHED
    assert job.triage is not None
    if job.draft is None:
        triage_result = job.triage
        text, tier = await _llm_guarded(deps, lambda: deps.drafter.draft(job.mail, triage_result))
        job.move(draft_text=text)
        job.draft = text
        job.log.info("draft.written", tier=tier, chars=len(text))
    effect_key = f"{job.key}:draft"
    effects = []
    # Only a job that started at this stage can meet the draft of an earlier attempt (a crash, a lost
    # lease, a redrive); one that came from triage just now skips both lookups (an IMAP SEARCH each time).
    resumed = job.row.stage == "draft"
    if not resumed or await deps.store.effect(effect_key) is None:
        sink = deps.drafts_for(job.row.mailbox)
        ref = await sink.find(job.key, job.row.message_id) if resumed else None
        if ref is None:
            # Written before the APPEND: after a crash the message resumes here and looks for this draft.
            await job.save(deps.store, stage="draft")
            raw = build_reply(
                job.mail, from_addr=deps.identity.address_for(job.row.mailbox, job.mail),
                from_name=deps.identity.name, body=job.draft or "", key=job.key,
            )
            ref = await _guarded(deps, _drafts_key(deps, job), lambda: sink.append(raw))
            job.log.info("draft.appended", ref=ref)
        else:
            job.log.info("draft.found_existing", ref=ref)
        effects.append((effect_key, "draft", ref))
    following = "calendar" if job.triage.meetings or job.mail.calendar_parts else "notify"
    job.move(effects=effects, stage=following)
    return following


async def calendar(deps: Deps, job: Job) -> str:
    """One tentative event per proposed meeting, under a UID derived from the message and meeting.
    A calendar invitation in the mail gives the real times; the LLM's meetings are used only without one."""
    assert job.triage is not None
    effects = []
    invites = invitations(job.mail.calendar_parts)
    proposals: list[Invitation | Meeting] = [*invites] or [*job.triage.meetings]
    own_uids = frozenset(event_uid(job.key, i) for i in range(max(len(proposals), _OWN_UIDS)))
    for index, proposal in enumerate(proposals):
        effect_key = f"{job.key}:event:{index}"
        if not job.fresh and await deps.store.effect(effect_key) is not None:
            continue
        uid = event_uid(job.key, index)
        check = await _check_conflicts(deps, job, proposal, own_uids)
        mark = conflict_marker(check)
        if isinstance(proposal, Invitation):
            ics = build_invitation_event(uid=uid, invitation=proposal, triage=job.triage, mail=job.mail, mark=mark)
        else:
            ics = build_event(uid=uid, meeting=proposal, triage=job.triage, mail=job.mail, mark=mark)
        ref = await _guarded(deps, "calendar", lambda: deps.calendar.put_event(uid, ics))  # noqa: B023
        job.log.info("calendar.event_put", uid=uid, start=proposal.start.isoformat(), from_invitation=bool(invites),
                     conflicts=len(check.overlaps), conflicts_checked=check.checked)
        # The check travels with the event: the notify stage (this run's or a resumed one) tells it on the card.
        effects += [(effect_key, "event", ref), (f"{job.key}:{CONFLICTS}:{index}", CONFLICTS, check.to_json())]
    job.move(effects=effects, stage="notify")
    return "notify"


CONFLICTS = "conflicts"  # the side-effect kind (and key part) of a slot's conflict check
_OWN_UIDS = 32  # event UIDs of a message never counted against it: this many, or as many as it proposes


async def _check_conflicts(deps: Deps, job: Job, proposal: Invitation | Meeting, own: frozenset[str]) -> SlotCheck:
    """What is already on the owner's calendars at ``proposal`` (the message's own events left out). A calendar
    that cannot be asked does not fail the stage: the slot is marked not checked."""
    if isinstance(proposal, Invitation):
        start, end, all_day = slot_bounds(proposal.start, proposal.end)
    else:
        start, end, all_day = slot_bounds(proposal.start, proposal.start + timedelta(minutes=proposal.duration_minutes))
    if deps.incidents is not None and deps.incidents.paused("calendar"):
        # The calendar is failing: the PUT below waits for its probe (or is it); asking first would only
        # spend a timeout per slot. The slot is written, if at all, as not checked.
        job.log.info("calendar.conflicts_not_checked", reason="calendar incident open")
        return SlotCheck(start=start, end=end, checked=False, all_day=all_day)
    source = deps.conflicts or deps.calendar
    try:
        found = await source.busy(start, end, ignore_uids=own)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # whatever went wrong, the event is still written; the card says so
        job.log.warning("calendar.conflicts_not_checked", error=str(exc), error_type=type(exc).__name__)
        return SlotCheck(start=start, end=end, checked=False, all_day=all_day)
    return SlotCheck(start=start, end=end, checked=True, overlaps=tuple(found), all_day=all_day)


async def _slot_checks(deps: Deps, job: Job) -> list[SlotCheck]:
    """The conflict checks of the calendar stage, in slot order: still pending in the job, or recorded by an
    earlier run of the message (read only when one may exist)."""
    refs = {key: ref for key, kind, ref in job.pending_effects if kind == CONFLICTS}
    assert job.triage is not None
    if not job.fresh and (job.triage.meetings or job.mail.calendar_parts):
        for effect in await deps.store.effects_for(job.row.id):
            if effect.kind == CONFLICTS:
                refs.setdefault(effect.key, effect.ref)
    checks = []
    for key in sorted(refs, key=lambda k: int(k.rsplit(":", 1)[1])):
        try:
            checks.append(SlotCheck.from_json(refs[key]))
        except (ValueError, KeyError, TypeError):
            job.log.warning("notify.bad_conflict_record", key=key)
    return checks


async def notify(deps: Deps, job: Job) -> str:
    """One Telegram card with signed Send / Decline / Ignore links (backlog mail: a digest line instead)."""
    assert job.triage is not None
    if job.row.origin.startswith(REPLAY_PREFIX):
        # Backlog replay: no card per mail. The message is done; recruiter.notify.digest tells it in a
        # digest and records its `:notify-intent` / `:notify` effects there.
        job.log.info("notify.digest_owed")
        await _finish(deps, job, DONE)
        return FINISHED
    effect_key, intent_key = f"{job.key}:notify", f"{job.key}:notify-intent"
    effects = []
    sent = None if job.fresh else await deps.store.effect(effect_key)
    if sent is None and not job.fresh and await deps.store.effect(intent_key) is not None:
        # The process died while sending: Telegram cannot be asked whether the card arrived. Never send
        # twice; say so loudly instead (the draft is in Drafts either way).
        job.log.error("notify.uncertain", note="the service died while sending this card; not sent again")
        effects.append((effect_key, "notify", "uncertain"))
        await patiently(lambda: _finish(deps, job, DONE, effects=effects,
                                        last_error="card may not have arrived: the service died while sending"),
                        job.log)
        return FINISHED
    if sent is None:
        links = card_links(deps.links.base_url, deps.links.secret, job.row.id, now=deps.clock(),
                           ttl_seconds=deps.links.ttl_seconds)
        conflicts = conflict_lines(await _slot_checks(deps, job))
        fit = deps.fit.assess(job.triage) if deps.fit is not None else None
        text = render_card(mail=job.mail, triage=job.triage, draft=job.draft or "", mailbox=job.row.mailbox,
                           tier=job.tier or (job.row.triage_tier or ""), conflicts=conflicts, fit=fit)
        buttons = [Button("✉️ Send", links["send"]), Button("🙅 Decline", links["decline"]),
                   Button("🙈 Ignore", links["ignore"])]
        if fit is not None and fit.decline_first:  # a miss on compensation, level or domain; still only a tap
            buttons.insert(0, buttons.pop(1))
        await job.save(deps.store)
        # The intent is a claim, not just a note: of two workers that reach this point for one mail (a lease
        # that ran out under a live but slow worker), only the one that inserts it sends.
        if not await deps.store.claim_effect(job.row.id, intent_key, "notify-intent", job.owner):
            job.log.error("notify.uncertain", note="another worker is sending (or died sending) this card; "
                                                   "not sent again")
            await patiently(lambda: _finish(deps, job, DONE, effects=[(effect_key, "notify", "uncertain")],
                                            last_error="card may not have arrived: another worker was sending it"),
                            job.log)
            return FINISHED
        try:
            ref = await _guarded(deps, "telegram", lambda: deps.notifier.send_card(text, buttons))
        except MaybeDone as exc:
            # Written, and no answer: Telegram may have shown it. Never sent again; told in the next
            # message that reaches the owner, and listed by `recruiter status`.
            note = f"card may not have arrived: {exc}"
            job.log.error("notify.uncertain", error=str(exc), note="the card may not have arrived; not sent again")
            await patiently(lambda: _finish(deps, job, DONE, effects=[(effect_key, "notify", "uncertain")],
                                            last_error=note), job.log)
            return FINISHED
        except asyncio.CancelledError:
            # Shutdown while the card was on its way: it may have arrived. The intent stays, so the next
            # run marks it uncertain instead of sending it again.
            raise
        except BaseException:
            # Telegram refused or could not be reached: nothing was shown, a retry may send.
            await deps.store.forget_effect(intent_key)
            raise
        job.log.info("notify.sent", ref=ref)
        effects.append((effect_key, "notify", ref))
    # Telegram cannot be asked whether a card was sent: record it patiently, or a retry sends it twice.
    await patiently(lambda: _finish(deps, job, DONE, effects=effects), job.log)
    return FINISHED


def _drafts_key(deps: Deps, job: Job) -> str:
    """The dependency a draft APPEND needs: the mailbox's IMAP server, or the drafts folder on disk."""
    return imap_key(job.row.mailbox) if job.row.mailbox in deps.imap_mailboxes else "drafts"


async def _finish(deps: Deps, job: Job, state: str, *, effects: list[tuple[str, str, str]] | None = None,
                  **fields: Any) -> None:
    fields.setdefault("last_error", None)
    await job.save(deps.store, effects=effects or (), state=state, stage=FINISHED, lease_owner=None,
                   lease_expires_at=None, **fields)
    job.log.info("message.finished", state=state)


STAGES: dict[str, Stage] = {
    "prefilter": prefilter,
    "triage": triage,
    "draft": draft,
    "calendar": calendar,
    "notify": notify,
}
