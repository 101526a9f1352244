"""The rules tier: a transparent recruiter-mail classifier for when no LLM is configured.

Points for recruiting vocabulary (en, de, fr, nl, es, it, pt, pl), applicant-tracking and agency
senders, a job title and a salary; points against for list/bulk/automated mail, notification senders
and newsletter or receipt wording. ``score >= THRESHOLD`` means recruiter mail. ``explain`` lists every
rule that fired, so a verdict can always be traced back to words in the mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from recruiter.mail.parse import ParsedMail
from recruiter.model import Kind, Meeting, Remote, TriageResult
from recruiter.triage import rules_extract as extract
from recruiter.triage.fit import level_of
from recruiter.triage.prefilter import is_ats_domain, skip_reason
from recruiter.triage.rules_dates import meetings_from_calendar, meetings_from_text
from recruiter.triage.rules_vocab import (
    APPLICATION_WORDS,
    ATS_NAMES,
    FOLLOW_UP_PHRASES,
    NOT_RECRUITING_PHRASES,
    OFFER_PHRASES,
    RECRUITING_DOMAIN_TOKENS,
    RECRUITING_LOCAL_TOKENS,
    RECRUITING_PHRASES,
    REJECTION_PHRASES,
    REJECTION_SOFT,
    SCHEDULING_PHRASES,
)

THRESHOLD = 4
_VOCABULARY_CAP = 10
_NEGATIVE_CAP = 6
_PHRASES = [(lang, weight, re.compile(pattern, re.IGNORECASE)) for lang, weight, pattern in RECRUITING_PHRASES]
_NEGATIVES = [re.compile(pattern, re.IGNORECASE) for pattern in NOT_RECRUITING_PHRASES]
_ATS_MENTION = re.compile(r"\b(?:via|powered by|sent (?:with|via|using))\s+(?:" + "|".join(ATS_NAMES) + r")\b",
                          re.IGNORECASE)
_REPLY_SUBJECT = re.compile(r"^\s*(?:re|aw|sv|antw|odp|rif|res|vs|ref)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)


@dataclass
class _Evidence:
    score: int = 0
    reasons: list[str] = field(default_factory=list)

    def add(self, points: int, why: str) -> None:
        self.score += points
        self.reasons.append(f"{points:+d} {why}")


@dataclass(frozen=True)
class _Facts:
    company: str | None
    role: str | None
    location: str | None
    remote: Remote
    compensation: str | None
    meetings: list[Meeting]
    level: str | None = None
    equity: bool | None = None
    industry: str | None = None


def classify(mail: ParsedMail) -> TriageResult:
    """A schema-valid triage answer from rules alone: is_recruiter from the score, a confidence that
    grows with the distance from the threshold (at most 0.9: rules are never certain), the kind from
    wording, and only facts found in the mail (meetings only from invitations or zoned dates)."""
    evidence = _evaluate(mail)
    recruiter = evidence.score >= THRESHOLD
    facts = _facts(mail) if recruiter else _Facts(None, None, None, "unknown", None, [])
    kind = _kind(mail, facts)[0] if recruiter else "other"
    return TriageResult(
        is_recruiter=recruiter,
        confidence=_confidence(evidence.score),
        kind=kind,
        company=facts.company,
        role=facts.role,
        location=facts.location,
        remote=facts.remote,
        compensation=facts.compensation,
        meetings=facts.meetings,
        summary=_summary(mail, recruiter, kind, facts),
        level=facts.level,
        equity=facts.equity,
        industry=facts.industry,
    )


def explain(mail: ParsedMail) -> list[str]:
    """Every rule that fired for ``mail``, with its points, then the verdict and why the kind was
    chosen — one human-readable line each."""
    evidence = _evaluate(mail)
    lines = list(evidence.reasons)
    verdict = "recruiter" if evidence.score >= THRESHOLD else "not recruiter"
    lines.append(f"= score {evidence.score} (threshold {THRESHOLD}): {verdict}")
    if evidence.score >= THRESHOLD:
        lines.append(f"kind: {_kind(mail, _facts(mail))[1]}")
    return lines


def _evaluate(mail: ParsedMail) -> _Evidence:
    evidence = _Evidence()
    reason = skip_reason(mail)
    if reason:
        evidence.add(-6, f"automated or unanswerable mail ({reason})")
    _vocabulary(mail, evidence)
    _negatives(mail, evidence)
    _sender(mail, evidence)
    title, money = extract.role(mail), extract.compensation(mail)
    if title:
        evidence.add(2, f"job title '{title}'")
    if money:
        evidence.add(1, f"compensation '{money}'")
    return evidence


def _corpus(mail: ParsedMail) -> str:
    # One line: phrases wrap across lines in plain-text mail.
    return re.sub(r"\s+", " ", f"{mail.subject}\n{mail.text}\n{mail.signature}")


def _vocabulary(mail: ParsedMail, evidence: _Evidence) -> None:
    text = _corpus(mail)
    taken: list[tuple[int, int]] = []  # spans already counted: "candidate" is not also "candidat"
    total = 0
    for lang, weight, pattern in _PHRASES:
        match = pattern.search(text)
        if not match or total >= _VOCABULARY_CAP or any(
                match.start() < end and start < match.end() for start, end in taken):
            continue
        taken.append(match.span())
        points = min(weight, _VOCABULARY_CAP - total)
        total += points
        evidence.add(points, f"recruiting phrase '{match.group(0)}' ({lang})")


def _negatives(mail: ParsedMail, evidence: _Evidence) -> None:
    text = _corpus(mail)
    total = 0
    for pattern in _NEGATIVES:
        match = pattern.search(text)
        if match and total < _NEGATIVE_CAP:
            total += 2
            evidence.add(-2, f"notification/marketing wording '{match.group(0)}'")


def _sender(mail: ParsedMail, evidence: _Evidence) -> None:
    domains = {_domain(addr) for addr in (mail.from_addr, mail.reply_to or "", _header_addr(mail, "sender"),
                                          _header_addr(mail, "return-path")) if addr}
    ats = sorted(domain for domain in domains if is_ats_domain(domain))
    if ats:
        evidence.add(3, f"applicant-tracking sender domain {ats[0]}")
    elif _ATS_MENTION.search(f"{mail.from_name}\n{mail.headers.get('x-mailer', '')}\n{mail.text}"):
        evidence.add(2, "sent through an applicant-tracking system")
    sender_domain = _domain(mail.from_addr)
    label = extract.registrable_label(sender_domain)
    if extract.is_agency_domain(sender_domain):
        evidence.add(3, f"recruitment agency domain {sender_domain}")
    elif any(token in label for token in RECRUITING_DOMAIN_TOKENS):
        evidence.add(2, f"recruiting word in sender domain {sender_domain}")
    local = mail.from_addr.partition("@")[0]
    if any(re.search(rf"(?:^|[-_.+]){token}", local) for token in RECRUITING_LOCAL_TOKENS):
        evidence.add(1, f"recruiting word in sender address {mail.from_addr}")
    if re.search(r"recruit|talent|headhunt|hiring|careers", mail.from_name, re.IGNORECASE):
        evidence.add(1, f"recruiting word in sender name '{mail.from_name}'")


def _header_addr(mail: ParsedMail, name: str) -> str:
    match = re.search(r"(?<![\w.+-])[\w.+-]+@[\w.-]+", mail.headers.get(name, ""))  # starts of runs only
    return match.group(0).lower() if match else ""


def _domain(addr: str) -> str:
    return addr.rpartition("@")[2].lower()


def _facts(mail: ParsedMail) -> _Facts:
    remote = extract.remote(mail)
    company = extract.company(mail)
    title = f"Intro call with {company}" if company else "Intro call"
    meetings = meetings_from_calendar(mail.calendar_parts) or meetings_from_text(
        f"{mail.subject}\n{mail.text}", reference=mail.date, title=title)
    role = extract.role(mail)
    return _Facts(
        company=company,
        role=role,
        location=extract.location(mail, remote),
        remote=remote,
        compensation=extract.compensation(mail),
        meetings=meetings,
        level=level_of(role or ""),
        equity=extract.equity(mail),
        industry=extract.industry(mail),
    )


def _kind(mail: ParsedMail, facts: _Facts) -> tuple[Kind, str]:
    text = _corpus(mail)
    hit = _first_hit(REJECTION_PHRASES, text)
    if hit or (_first_hit((REJECTION_SOFT,), text) and _first_hit((APPLICATION_WORDS,), text)):
        return "rejection", f"rejection wording '{hit or _first_hit((REJECTION_SOFT,), text)}'"
    hit = _first_hit(OFFER_PHRASES, text)
    if hit:
        return "offer", f"offer wording '{hit}'"
    if mail.calendar_parts and facts.meetings:
        return "scheduling", "calendar invitation"
    if facts.meetings:
        return "scheduling", f"proposed time {facts.meetings[0].start.isoformat()}"
    is_reply = bool(_REPLY_SUBJECT.match(mail.subject) or mail.references)
    hit = _first_hit(SCHEDULING_PHRASES, text)
    if hit and is_reply:
        return "scheduling", f"scheduling wording '{hit}' in a reply"
    hit = _first_hit(FOLLOW_UP_PHRASES, text)
    if hit:
        return "follow_up", f"follow-up wording '{hit}'"
    if is_reply:
        return "follow_up", "a reply in an existing thread"
    return "outreach", "first contact"


def _first_hit(patterns: tuple[str, ...], text: str) -> str | None:
    for pattern in patterns:
        match = re.search(pattern, text, re.IGNORECASE)
        if match:
            return match.group(0)
    return None


def _confidence(score: int) -> float:
    distance = abs(score - (THRESHOLD - 0.5))
    return round(min(0.9, 0.5 + 0.05 * distance), 2)


def _summary(mail: ParsedMail, recruiter: bool, kind: Kind, facts: _Facts) -> str:
    sender = mail.from_name or mail.from_addr or "unknown sender"
    if not recruiter:
        return f"Not recruiter mail from {sender}: {mail.subject or '(no subject)'}"[:500]
    what = facts.role or "a role"
    where = ", ".join(part for part in (facts.location, facts.remote if facts.remote != "unknown" else None,
                                        facts.compensation) if part)
    line = f"{kind.replace('_', '-').capitalize()} from {sender}: {what}"
    line += f" at {facts.company}" if facts.company else ""
    line += f" ({where})" if where else ""
    if facts.meetings:
        line += f"; proposes {facts.meetings[0].start.isoformat()}"
    return re.sub(r"\s+", " ", line)[:500]
