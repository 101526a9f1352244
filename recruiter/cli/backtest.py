"""`recruiter backtest`: where the mail comes from (files or two IMAP folders) and how the figures look."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from recruiter.errors import ConfigError, LabelError, RecruiterError
from recruiter.log import configure_logging
from recruiter.settings import MailboxSettings, Settings, load_settings

if TYPE_CHECKING:  # the backtest pulls in the LLM client: imported when the command runs, not for every command
    from recruiter.triage.backtest import Label, Labels

_FETCH_BATCH = 50


def command(
    mbox: Annotated[list[Path] | None, typer.Option(
        "--mbox", help="An mbox file, a maildir, a folder of .eml files or one .eml (repeatable).")] = None,
    labels: Annotated[Path | None, typer.Option(
        "--labels", help="CSV: file and/or message_id, is_recruiter, company, role, meeting_start; for fit: "
                         "compensation, location, level, expected_fit.")] = None,
    imap_recruiter: Annotated[str | None, typer.Option(
        "--imap-recruiter", help="IMAP folder of known recruiter mail (read with BODY.PEEK, nothing changes).")] = None,
    imap_other: Annotated[str | None, typer.Option(
        "--imap-other", help="IMAP folder of known other mail.")] = None,
    mailbox: Annotated[str | None, typer.Option(
        help="Which IMAP_MAILBOXES account the folders are in (default: the first).")] = None,
    rules: Annotated[bool, typer.Option(
        "--rules", help="Use the rules tier even when LLM tiers (LLAMA_SWAP_URL, …) are configured.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The whole report as one JSON object.")] = False,
) -> None:
    """Measure triage on labelled mail: prefilter + the configured tiers (or rules); changes nothing.

    Prints precision, recall and F1 of is_recruiter, accuracy of company/role/meeting extraction on
    the true positives, and LLM calls, tokens and latency per tier. No store, drafts, events or cards.
    """
    if not mbox and not (imap_recruiter or imap_other):
        typer.echo("error: give --mbox PATH (with --labels) or --imap-recruiter/--imap-other FOLDER", err=True)
        raise typer.Exit(2)
    if mbox and not labels:
        typer.echo("error: --mbox needs --labels FILE.csv", err=True)
        raise typer.Exit(2)
    for path in [*(mbox or []), *([labels] if labels else [])]:
        if not path.exists():
            typer.echo(f"error: {path}: no such file or directory", err=True)
            raise typer.Exit(2)
    from recruiter.triage.backtest import Labels, load_labels

    try:
        settings = load_settings()
        configure_logging(level="WARNING" if as_json else settings.log_level, fmt=settings.log_format,
                          secrets=settings.secrets, stream=sys.stderr)
        known = load_labels(labels) if labels else Labels({}, {})
        report = asyncio.run(_backtest(settings, known, mbox or [], imap_recruiter, imap_other, mailbox, rules))
    except (ConfigError, LabelError) as exc:
        typer.echo(f"{'configuration error' if isinstance(exc, ConfigError) else 'error'}: {exc}", err=True)
        raise typer.Exit(2) from None
    except RecruiterError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    else:
        render(report, Console())
    if not report["messages"]:
        raise typer.Exit(1)


async def _backtest(settings: Settings, labels: Labels, paths: list[Path], imap_recruiter: str | None,
                    imap_other: str | None, mailbox: str | None, rules: bool) -> dict[str, Any]:
    from recruiter.budget import Budget
    from recruiter.ingest.files import iter_paths
    from recruiter.llm.client import LLM
    from recruiter.reply.draft import load_profile
    from recruiter.triage.backtest import Backtest
    from recruiter.triage.fit import FitCheck, load_rates
    from recruiter.triage.llm import Triager

    tiers = () if rules else settings.llm_tiers
    llm = LLM.from_settings(settings, tiers=tiers)
    budget = Budget(settings.message_cpu_seconds)
    try:
        rates = load_rates(settings.fx_rates_file)
    except (ValueError, OSError) as exc:
        raise ConfigError("FX_RATES_FILE", str(exc)) from exc
    fit = FitCheck.from_profile(load_profile(settings.owner_profile), rates)
    run = Backtest(Triager(llm, budget=budget), labels, own_addresses=settings.owner_addresses,
                   max_text_chars=settings.max_text_chars, fit=fit)
    try:
        if paths:
            await run.run(iter_paths(paths))
        folders = [(f, True) for f in [imap_recruiter] if f] + [(f, False) for f in [imap_other] if f]
        if folders:
            account = _account(settings, mailbox)
            verdicts: dict[str, Label] = {}
            await run.run(_imap_messages(account, folders, verdicts, settings.imap_timeout), verdicts.get)
    finally:
        await budget.aclose()
        await llm.aclose()
    report = run.report()
    report["triage"] = "rules" if not tiers else " → ".join(f"{t.tier} ({t.model})" for t in tiers)
    return report


def _account(settings: Settings, name: str | None) -> MailboxSettings:
    if not settings.mailboxes:
        raise ConfigError("IMAP_MAILBOXES", "is needed for --imap-recruiter/--imap-other")
    for account in settings.mailboxes:
        if name is None or account.name == name:
            return account
    raise ConfigError("IMAP_MAILBOXES", f"has no mailbox named {name!r}")


async def _imap_messages(account: MailboxSettings, folders: list[tuple[str, bool]], verdicts: dict[str, Label],
                         timeout: float) -> AsyncIterator[tuple[str, bytes]]:
    """(label, raw) for every message in each folder, fetched with BODY.PEEK[] in batches (flags stay
    as they are; aioimaplib's EXAMINE does not enter the selected state, so SELECT it is); each label
    is recorded in ``verdicts`` with the folder's verdict before it is yielded."""
    from recruiter.mail import imap
    from recruiter.triage.backtest import Label

    client = await imap.connect(account, timeout=timeout)
    try:
        for folder, is_recruiter in folders:
            with imap.guard(account.name, f"reading {folder}"):
                await imap.select(client, account.name, folder)
                uids = await imap.uid_search(client, account.name, "ALL")
                for start in range(0, len(uids), _FETCH_BATCH):
                    batch = await imap.fetch_raw(client, account.name, uids[start:start + _FETCH_BATCH])
                    for uid, raw in sorted(batch.items()):
                        source = f"imap:{account.name}/{folder}#{uid}"
                        verdicts[source] = Label(is_recruiter)
                        yield source, raw
    finally:
        await imap.close(client)


def render(report: dict[str, Any], console: Console) -> None:
    """The report as rich tables: quality, extraction, tiers; then the misclassified mails."""
    c = report["classification"]
    quality = Table("messages", "tp", "fp", "fn", "tn", "precision", "recall", "F1",
                    title=f"is_recruiter — triage: {report.get('triage', '?')}")
    quality.add_row(str(report["messages"]), *(str(c[k]) for k in ("tp", "fp", "fn", "tn")),
                    *(f"{c[k]:.3f}" for k in ("precision", "recall", "f1")))
    console.print(quality)
    facts = Table("field", "correct", "of", "accuracy", title="extraction on true positives")
    for name, row in report["extraction"].items():
        facts.add_row(name, str(row["correct"]), str(row["total"]), f"{row['accuracy']:.3f}")
    console.print(facts)
    if report.get("fit", {}).get("all", {}).get("total"):
        fit = Table("criterion", "correct", "of", "accuracy", title="fit against the owner profile (labelled mails)")
        for name, row in report["fit"].items():
            fit.add_row(name, str(row["correct"]), str(row["total"]), f"{row['accuracy']:.3f}")
        console.print(fit)
    tiers = Table("tier", "model", "outcome", "calls", "prompt tok", "completion tok", "latency s", "mean ms",
                  title=f"tiers (prefilter skipped {report['prefilter']['skipped']})")
    for row in report["tiers"]:
        tiers.add_row(row["tier"], row["model"], row["outcome"], str(row["calls"]), str(row["prompt_tokens"]),
                      str(row["completion_tokens"]), f"{row['seconds']:.3f}", f"{row['mean_ms']:.1f}")
    console.print(tiers)
    wrong = [m for m in report["mails"] if bool(m["expected"]) != bool(m["predicted"])]
    if wrong:
        table = Table("source", "expected", "predicted", "tier", "subject", title="misclassified")
        for mail in wrong:
            table.add_row(Path(mail["source"]).name, str(mail["expected"]), str(mail["predicted"]), mail["tier"],
                          (mail["subject"] or "")[:60])
        console.print(table)
    if report["unlabelled"]:
        console.print(f"[yellow]{report['unlabelled']} message(s) had no label and were not scored[/yellow]")
    for error in report["errors"]:
        console.print(f"[red]error[/red] {error['source']}: {error['error']}")
