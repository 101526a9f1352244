"""Backtest: triage quality on labelled mail, so prompts, models and rules can be compared before a switch.

Runs only what decides "is this recruiter mail, and what does it say": the prefilter, then the
configured LLM tiers (or the rules tier). Nothing is stored, drafted, booked or sent. The figures:
precision, recall and F1 of ``is_recruiter``; accuracy of company, role and meeting extraction on the
mails both the labels and triage call recruiter mail; LLM calls, tokens and latency per tier.

Labels are a CSV with a header: ``file`` and/or ``message_id`` to find the mail, ``is_recruiter``
(yes/no, true/false, 1/0), and optionally ``company``, ``role`` and ``meeting_start`` (ISO 8601 with
an offset; empty: no meeting proposed).

Fit (issue 16): a row with ``expected_fit`` (space-separated ``criterion=verdict``, e.g. ``level=meets
location=meets comp=misses``; criteria level, location, comp, equity, domain; verdicts meets, misses,
unknown) is also scored on pay, location and level extraction (columns ``compensation``, ``location``,
``level``; empty: the mail does not say) and on the fit verdicts against the configured owner profile.
"""

from __future__ import annotations

import csv
import re
import time
import unicodedata
from collections import Counter
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any

from recruiter.errors import LabelError, RecruiterError
from recruiter.mail.parse import ParsedMail, parse_message
from recruiter.model import TriageResult
from recruiter.triage.fit import FitCheck, Verdict, level_of, parse_money, regions_of
from recruiter.triage.llm import Triager
from recruiter.triage.prefilter import skip_reason

_TRUE = {"yes", "y", "true", "1", "recruiter"}
_FALSE = {"no", "n", "false", "0", "other", ""}
_LEGAL = re.compile(r"\b(?:gmbh|ag|se|inc|ltd|llc|plc|corp|co|sa|sas|sarl|bv|nv|srl|spa|sl|oy|ab|as|kg)\b")
_GENDER = re.compile(r"\((?:[mwfdhx]\s*/\s*)+[mwfdhx]\)|\b[mwfdhx]/[mwfdhx](?:/[mwfdhx])?\b", re.IGNORECASE)


@dataclass(frozen=True)
class Label:
    """What a mail really is."""

    is_recruiter: bool
    company: str | None = None
    role: str | None = None
    meeting_start: datetime | None = None
    compensation: str | None = None  # the next four only count when ``fit`` is given
    location: str | None = None
    level: str | None = None
    fit: dict[str, Verdict] | None = None  # expected verdict per criterion


FIT_CRITERIA = ("level", "location", "comp", "equity", "domain")
_VERDICTS = frozenset({"meets", "misses", "unknown"})


@dataclass(frozen=True)
class Labels:
    """Labels found by file name (the basename) or by normalised Message-ID."""

    by_file: dict[str, Label]
    by_message_id: dict[str, Label]

    def find(self, source: str, mail: ParsedMail | None) -> Label | None:
        """The label of the mail read from ``source`` (a path, ``path#n`` in an mbox, or an IMAP label)."""
        if mail is not None and mail.message_id:
            found = self.by_message_id.get(_norm_id(mail.message_id))
            if found is not None:
                return found
        return self.by_file.get(PurePath(source.split("#", 1)[0]).name)

    def __len__(self) -> int:
        return max(len(self.by_file), len(self.by_message_id))


def load_labels(path: Path) -> Labels:
    """Read a labels CSV (see the module docstring); raise LabelError naming the line of a bad row."""
    by_file: dict[str, Label] = {}
    by_id: dict[str, Label] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or "is_recruiter" not in reader.fieldnames:
                raise LabelError(f"{path}: needs a header with an is_recruiter column")
            for row in reader:
                label = _label(row, f"{path}:{reader.line_num}")
                if row.get("file"):
                    by_file[PurePath(row["file"].strip()).name] = label
                if row.get("message_id"):
                    by_id[_norm_id(row["message_id"])] = label
    except OSError as exc:
        raise LabelError(f"{path}: cannot read labels: {exc.strerror or exc}") from exc
    return Labels(by_file, by_id)


def _label(row: dict[str, str], where: str) -> Label:
    flag = (row.get("is_recruiter") or "").strip().lower()
    if flag not in _TRUE | _FALSE:
        raise LabelError(f"{where}: is_recruiter must be yes or no, not {flag!r}")
    start = (row.get("meeting_start") or "").strip()
    meeting = None
    if start:
        try:
            meeting = datetime.fromisoformat(start)
        except ValueError as exc:
            raise LabelError(f"{where}: meeting_start {start!r} is not ISO 8601") from exc
        if meeting.utcoffset() is None:
            raise LabelError(f"{where}: meeting_start {start!r} needs a UTC offset")
    return Label(flag in _TRUE, _cell(row, "company"), _cell(row, "role"), meeting,
                 _cell(row, "compensation"), _cell(row, "location"), _cell(row, "level"), _expected_fit(row, where))


def _cell(row: dict[str, str], name: str) -> str | None:
    return (row.get(name) or "").strip() or None


def _expected_fit(row: dict[str, str], where: str) -> dict[str, Verdict] | None:
    text = (row.get("expected_fit") or "").strip()
    if not text:
        return None
    expected: dict[str, Verdict] = {}
    for pair in text.split():
        name, _, verdict = pair.partition("=")
        if name not in FIT_CRITERIA or verdict not in _VERDICTS:
            raise LabelError(f"{where}: expected_fit {pair!r} is not criterion=verdict "
                             f"({'/'.join(FIT_CRITERIA)} = meets/misses/unknown)")
        expected[name] = verdict  # type: ignore[assignment]
    return expected


def _norm_id(message_id: str) -> str:
    return message_id.strip().strip("<>").strip().lower()


@dataclass
class MailResult:
    """One mail's verdict next to its label."""

    source: str
    subject: str
    label: Label | None
    predicted: bool | None  # None: triage failed (counted as "not recruiter")
    tier: str  # "prefilter", "rules", an LLM tier, or "error"
    skip_reason: str | None = None
    result: TriageResult | None = None
    error: str | None = None
    checks: dict[str, bool] = field(default_factory=dict)  # company/role/meeting: extraction correct?
    fit: dict[str, str] = field(default_factory=dict)  # criterion -> the verdict computed (fit-labelled mails)

    def to_json(self) -> dict[str, Any]:
        """The JSON view of this mail's outcome."""
        label = self.label
        return {
            "source": self.source, "subject": self.subject, "tier": self.tier,
            "expected": None if label is None else label.is_recruiter, "predicted": self.predicted,
            "skip_reason": self.skip_reason, "error": self.error,
            "company": self.result.company if self.result else None, "role": self.result.role if self.result else None,
            "meetings": [m.start.isoformat() for m in self.result.meetings] if self.result else [],
            "expected_company": label.company if label else None, "expected_role": label.role if label else None,
            "expected_meeting": label.meeting_start.isoformat() if label and label.meeting_start else None,
            "checks": self.checks,
            "fit": self.fit, "expected_fit": label.fit if label else None,
        }


class Backtest:
    """Runs prefilter + triage over labelled mail and scores it; never writes anything anywhere."""

    def __init__(self, triager: Triager, labels: Labels, *, own_addresses: frozenset[str] = frozenset(),
                 max_text_chars: int = 6000, fit: FitCheck | None = None) -> None:
        self.triager = triager
        self.fit = fit  # the owner profile's facts: fit-labelled mails are scored on it (None: not scored)
        self.labels = labels
        self.own_addresses = own_addresses
        self.max_text_chars = max_text_chars
        self.results: list[MailResult] = []
        self.unlabelled: list[str] = []
        self.rules_calls = 0
        self.rules_seconds = 0.0

    async def run(self, messages: Iterable[tuple[str, bytes]] | AsyncIterable[tuple[str, bytes]],
                  label_for: Callable[[str], Label | None] | None = None) -> None:
        """Triage every (source, raw) message; ``label_for(source)`` may supply a label (IMAP folders)."""
        if isinstance(messages, AsyncIterable):
            async for source, raw in messages:
                await self.one(source, raw, label_for(source) if label_for else None)
        else:
            for source, raw in messages:
                await self.one(source, raw, label_for(source) if label_for else None)

    async def one(self, source: str, raw: bytes, given: Label | None = None) -> MailResult | None:
        """Triage one message; an unlabelled one is only counted."""
        mail: ParsedMail | None = None
        error: str | None = None
        try:
            budget = self.triager.budget  # the rules tier's helpers parse too, under the same budget
            mail = (await budget.run(parse_message, raw, max_text_chars=self.max_text_chars) if budget is not None
                    else parse_message(raw, max_text_chars=self.max_text_chars))
        except RecruiterError as exc:
            error = str(exc)
        label = _merge(given, self.labels.find(source, mail))
        if label is None:
            self.unlabelled.append(source)
            return None
        if mail is None:
            outcome = MailResult(source, "", label, None, "error", error=error)
        else:
            outcome = await self._triage(source, mail, label)
        outcome.checks = extraction_checks(label, outcome.result) if outcome.predicted and label.is_recruiter else {}
        if outcome.checks and label.fit is not None and outcome.result is not None and self.fit is not None:
            outcome.fit = {c.name: c.verdict for c in self.fit.assess(outcome.result).criteria}
        self.results.append(outcome)
        return outcome

    async def _triage(self, source: str, mail: ParsedMail, label: Label) -> MailResult:
        reason = skip_reason(mail, own_addresses=self.own_addresses)
        if reason is not None:
            return MailResult(source, mail.subject, label, False, "prefilter", skip_reason=reason)
        started = time.monotonic()
        try:
            triaged = await self.triager.triage(mail)
        except RecruiterError as exc:
            return MailResult(source, mail.subject, label, None, "error", error=f"{type(exc).__name__}: {exc}")
        if triaged.tier == "rules":
            self.rules_calls += 1
            self.rules_seconds += time.monotonic() - started
        return MailResult(source, mail.subject, label, triaged.result.is_recruiter, triaged.tier, result=triaged.result)

    def report(self) -> dict[str, Any]:
        """Every figure, JSON-ready: classification, extraction, tiers, prefilter, errors, mails."""
        return {
            "messages": len(self.results),
            "unlabelled": len(self.unlabelled),
            "classification": classification(self.results),
            "extraction": extraction(self.results),
            "fit": fit_accuracy(self.results),
            "tiers": self.tier_rows(),
            "prefilter": {
                "skipped": sum(1 for r in self.results if r.tier == "prefilter"),
                "by_reason": dict(Counter(r.skip_reason for r in self.results if r.skip_reason)),
                "recruiter_mail_skipped": [r.source for r in self.results
                                           if r.tier == "prefilter" and r.label and r.label.is_recruiter],
            },
            "errors": [{"source": r.source, "error": r.error} for r in self.results if r.tier == "error"],
            "mails": [r.to_json() for r in self.results],
        }

    def tier_rows(self) -> list[dict[str, Any]]:
        """LLM usage per (tier, model, outcome) from the client's counters, then the rules tier."""
        rows = [dict(row) for row in self.triager.llm.usage_snapshot()]
        if self.rules_calls:
            rows.append({"tier": "rules", "model": "", "outcome": "ok", "calls": self.rules_calls,
                         "prompt_tokens": 0, "completion_tokens": 0, "seconds": self.rules_seconds,
                         "estimated_calls": 0})
        for row in rows:
            row["mean_ms"] = round(1000 * row["seconds"] / row["calls"], 2) if row["calls"] else 0.0
            row["seconds"] = round(row["seconds"], 4)
        return rows


def _merge(given: Label | None, listed: Label | None) -> Label | None:
    """A folder's verdict with the CSV's facts (the folder wins on is_recruiter)."""
    if given is None:
        return listed
    if listed is None:
        return given
    return Label(given.is_recruiter, listed.company, listed.role, listed.meeting_start, listed.compensation,
                 listed.location, listed.level, listed.fit)


def classification(results: Iterable[MailResult]) -> dict[str, Any]:
    """Confusion counts and precision, recall, F1 of is_recruiter (a failed triage counts as "no")."""
    counts = Counter((bool(r.label and r.label.is_recruiter), bool(r.predicted)) for r in results)
    tp, fp, fn, tn = counts[True, True], counts[False, True], counts[True, False], counts[False, False]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(f1, 4)}


def extraction(results: Iterable[MailResult]) -> dict[str, Any]:
    """Accuracy of company, role and meeting on the true positives: {field: {correct, total, accuracy}}."""
    checked = [r.checks for r in results if r.checks]
    figures: dict[str, Any] = {}
    for name in ("company", "role", "meeting", "pay", "location", "level"):
        scored = [checks for checks in checked if name in checks]
        if not scored and name in ("pay", "location", "level"):
            continue  # no fit-labelled mail: not part of the report
        correct = sum(1 for checks in scored if checks[name])
        figures[name] = {"correct": correct, "total": len(scored),
                         "accuracy": round(correct / len(scored), 4) if scored else 0.0}
    return figures


def fit_accuracy(results: Iterable[MailResult]) -> dict[str, Any]:
    """Per criterion, how often the computed fit verdict is the labelled one, on the true positives with an
    expected fit; ``all``: mails whose every labelled criterion is right."""
    scored = [(r.label.fit, r.fit) for r in results if r.fit and r.label is not None and r.label.fit]
    figures: dict[str, Any] = {}
    for name in FIT_CRITERIA:
        pairs = [(expected[name], got.get(name)) for expected, got in scored if name in expected]
        figures[name] = _share(sum(1 for want, have in pairs if want == have), len(pairs))
    figures["all"] = _share(sum(1 for expected, got in scored if all(got.get(k) == v for k, v in expected.items())),
                            len(scored))
    return figures


def _share(correct: int, total: int) -> dict[str, Any]:
    return {"correct": correct, "total": total, "accuracy": round(correct / total, 4) if total else 0.0}


def extraction_checks(label: Label, result: TriageResult | None) -> dict[str, bool]:
    """Which extracted facts agree with the label: names loosely (case, accents, legal suffixes, one
    containing the other), meetings exactly (the labelled start among the proposed ones; no label: none)."""
    if result is None:
        return {"company": False, "role": False, "meeting": False}
    starts = [m.start for m in result.meetings]
    meeting = label.meeting_start in starts if label.meeting_start else not starts
    checks = {"company": same_name(label.company, result.company), "role": same_name(label.role, result.role),
              "meeting": meeting}
    if label.fit is not None:
        checks["pay"] = same_pay(label.compensation, result.compensation)
        checks["location"] = same_place(label.location, result.location)
        checks["level"] = level_of(label.level or "") == (level_of(result.level or "") or level_of(result.role or ""))
    return checks


def same_pay(expected: str | None, got: str | None) -> bool:
    """Both empty, or the same figures (low, top) in the same currency, however written."""
    if not expected or not got:
        return not expected and not got
    a, b = parse_money(expected), parse_money(got)
    return a == b if a is not None and b is not None else same_name(expected, got)


def same_place(expected: str | None, got: str | None) -> bool:
    """Both empty, the same name, or the same first known place ("Berlin" = "Berlin, Germany")."""
    if not expected or not got:
        return not expected and not got
    a, b = regions_of(expected), regions_of(got)
    return same_name(expected, got) or (bool(a) and a[:1] == b[:1])


def same_name(expected: str | None, got: str | None) -> bool:
    """True when both are empty, or when one normalised name contains the other as whole words, is at
    least 3 characters long and has at least half the other's words ("Sternwerk" = "Sternwerk AG",
    "Backend Engineer" = "Backend Engineer, Payments", but "Ingeniero" ≠ "Ingeniero/a de Plataforma")."""
    a, b = _normalise(expected), _normalise(got)
    if not a or not b:
        return a == b
    shorter, longer = sorted((a, b), key=len)
    return (len(shorter) >= 3 and f" {shorter} " in f" {longer} "
            and 2 * len(shorter.split()) >= len(longer.split()))


def _normalise(name: str | None) -> str:
    if not name:
        return ""
    text = unicodedata.normalize("NFKD", _GENDER.sub(" ", name.casefold()))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"[^\w]+", " ", text)
    return re.sub(r"\s+", " ", _LEGAL.sub(" ", text)).strip()
