"""`recruiter replay --dry-run`: what a replay would do, worked out in memory, changing nothing.

The backlog is searched and fetched like a replay (``BODY.PEEK[]``: ``\\Seen`` stays), each mail is
parsed, prefiltered and triaged (the LLM is asked, as the replay would), and the planned actions are
listed. Nothing is written: no store row (the database is opened read-only, and a SQLite file that
does not exist is not created), no draft, no event, no Telegram message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog

from recruiter.budget import Budget
from recruiter.errors import OverBudget, PermanentError, RecruiterError
from recruiter.ingest.replay import ReplayOptions, check_options, search_criteria
from recruiter.llm.client import LLM
from recruiter.mail import imap
from recruiter.mail.parse import ParsedMail, parse_message
from recruiter.settings import MailboxSettings, Settings
from recruiter.store.repo import Store
from recruiter.triage.llm import Triager
from recruiter.triage.prefilter import skip_reason

log = structlog.get_logger()


@dataclass
class PlannedMail:
    """One row of the dry run's table."""

    mailbox: str
    uid: int
    sender: str
    subject: str
    result: str  # "recruiter (rules)", "not recruiter (llama-swap)", "skip: list", "triage failed: …"
    actions: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass
class ReplayPlan:
    """Every unread mail a replay would take, and how many it would leave out as already stored."""

    rows: list[PlannedMail] = field(default_factory=list)
    found: int = 0
    already_stored: int = 0

    def counts(self) -> dict[str, int]:
        """found, already_stored, to_process, recruiter, skipped (prefilter or triage), failed."""
        recruiter = sum(1 for r in self.rows if r.result.startswith("recruiter"))
        failed = sum(1 for r in self.rows if r.result.startswith(("triage failed", "unparseable")))
        return {"found": self.found, "already_stored": self.already_stored, "to_process": len(self.rows),
                "recruiter": recruiter, "skipped": len(self.rows) - recruiter - failed, "failed": failed}


async def plan_replay(settings: Settings, options: ReplayOptions,
                      progress: Callable[[int, int], None] | None = None) -> ReplayPlan:
    """What ``recruiter replay`` with ``options`` would do; changes nothing anywhere.
    ``progress(done, total)`` is called after each fetched batch."""
    mailboxes = check_options(settings, options)
    store = await Store.open_readonly(settings.db_url.get_secret_value())
    llm = LLM.from_settings(settings)
    budget = Budget(settings.message_cpu_seconds)
    plan = ReplayPlan()
    try:
        left = options.limit
        for mb in mailboxes:
            if left is not None and left <= 0:
                break
            left = await _plan_mailbox(settings, mb, options, store, Triager(llm, budget=budget), plan, left,
                                       progress)
    finally:
        await budget.aclose()
        await llm.aclose()
        if store is not None:
            await store.aclose()
    return plan


async def _plan_mailbox(settings: Settings, mb: MailboxSettings, options: ReplayOptions, store: Store | None,
                        triager: Triager, plan: ReplayPlan, left: int | None,
                        progress: Callable[[int, int], None] | None) -> int | None:
    client = await imap.connect(mb, timeout=settings.imap_timeout)
    try:
        with imap.guard(mb.name, "replay dry run"):
            selected = await imap.select(client, mb.name, mb.folder)
            uids = await imap.uid_search(client, mb.name, *search_criteria(options.since))
            held = await store.stored_uids(mb.name, mb.folder, selected.uidvalidity) if store else set()
            todo = [u for u in uids if u not in held]
            plan.found += len(uids)
            plan.already_stored += len(uids) - len(todo)
            if left is not None:
                todo, left = todo[:left], left - len(todo[:left])
            for start in range(0, len(todo), options.batch_size):
                batch = todo[start:start + options.batch_size]
                raws = await imap.fetch_raw(client, mb.name, batch)
                found = [(uid, raws[uid]) for uid in batch if uid in raws]
                mails = [(uid, await _parse(triager, raw, settings.max_text_chars)) for uid, raw in found]
                keys = [m.key for _, m in mails if isinstance(m, ParsedMail)]
                stored = await store.keys_stored(keys) if store and keys else set()
                plan.already_stored += len(stored)
                rows = [_plan_one(mb.name, uid, mail, triager, settings) for uid, mail in mails
                        if not (isinstance(mail, ParsedMail) and mail.key in stored)]
                plan.rows.extend(await asyncio.gather(*rows))
                if progress is not None:
                    progress(start + len(batch), len(todo))
    finally:
        await imap.close(client)
    return left


async def _parse(triager: Triager, raw: bytes, max_text_chars: int) -> ParsedMail | str:
    """The mail parsed in a helper process under the CPU budget, or why it goes to the DLQ."""
    assert triager.budget is not None
    try:
        mail: ParsedMail = await triager.budget.run(parse_message, raw, max_text_chars=max_text_chars)
    except OverBudget as exc:
        return f"cpu_budget: {exc}"
    except (PermanentError, ValueError, LookupError, UnicodeError) as exc:
        return f"unparseable: {exc}"
    return mail


async def _plan_one(mailbox: str, uid: int, mail: ParsedMail | str, triager: Triager,
                    settings: Settings) -> PlannedMail:
    if isinstance(mail, str):
        return PlannedMail(mailbox, uid, "", "", mail[:120], ["dead-letter queue"])
    row = PlannedMail(mailbox, uid, mail.from_addr, mail.subject, "")
    reason = skip_reason(mail, own_addresses=settings.owner_addresses)
    if reason is not None:
        row.result = f"skip: {reason}"
        return row
    try:
        triaged = await triager.triage(mail)
    except RecruiterError as exc:
        row.result = f"triage failed: {type(exc).__name__}"
        row.actions = ["retry later"]
        return row
    result = triaged.result
    if not result.is_recruiter:
        row.result = f"not recruiter ({triaged.tier})"
        return row
    row.result = f"recruiter ({triaged.tier})"
    row.actions = ["draft"]
    if result.meetings:
        row.actions.append(f"{len(result.meetings)} event{'s' if len(result.meetings) != 1 else ''}")
    row.actions.append("digest line")
    return row
