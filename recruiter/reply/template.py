"""Reply and decline bodies without an LLM, built from the owner profile markdown.

The profile is free-form markdown; the template reads ``Key: value`` lines (Contact, Level,
Compensation floor, Locations, Name) and the bullet list under a heading such as "Before a call".
Anything missing is left out of the reply rather than invented. Text from the incoming mail (company,
role) is used only after links, markup and line breaks are removed.
"""

from __future__ import annotations

import re

from recruiter.mail.parse import ParsedMail
from recruiter.model import TriageResult

_FACT = re.compile(r"^\s*(?:[-*+]\s+)?\**([A-Za-z][\w /()-]{1,40}?)\**\s*:\s*(.+?)\s*$", re.MULTILINE)
_HEADING = re.compile(r"^#{1,6}\s*(.+?)\s*#*\s*$", re.MULTILINE)
_QUESTION_HEADING = re.compile(r"before|want to know|questions|need to know|ask", re.IGNORECASE)
_BULLET = re.compile(r"^\s*[-*+]\s+(.+?)\s*$", re.MULTILINE)
_GENERIC_NAMES = frozenset({"team", "the", "careers", "recruiting", "recruitment", "talent", "hiring", "jobs",
                            "hr", "info", "no", "noreply", "people", "hello", "contact", "admin"})
# Which question topics a triage answer already covers.
_TOPICS = {
    "company": "company", "role": "role", "title": "role", "compensation": "compensation",
    "salary": "compensation", "base": "compensation", "pay": "compensation", "remote": "remote",
    "office": "remote", "location": "location", "where": "location",
}
_UNANSWERABLE = re.compile(r"team|level|process|stage|interview|bonus|equity|funding", re.IGNORECASE)
_DEFAULT_QUESTIONS = ("the company and the team", "the role and its level", "the compensation range",
                      "the remote and office policy")


def profile_facts(profile: str) -> dict[str, str]:
    """``Key: value`` lines of the profile (bulleted or not), keys lower-cased; the first one wins."""
    facts: dict[str, str] = {}
    for key, value in _FACT.findall(profile):
        facts.setdefault(key.strip().lower(), value.strip())
    return facts


def profile_questions(profile: str) -> list[str]:
    """The bullets under the first heading about what to know before a call, else a default list."""
    headings = list(_HEADING.finditer(profile))
    for index, heading in enumerate(headings):
        if _QUESTION_HEADING.search(heading.group(1)):
            end = headings[index + 1].start() if index + 1 < len(headings) else len(profile)
            bullets = _BULLET.findall(profile[heading.end():end])
            if bullets:
                return bullets
    return list(_DEFAULT_QUESTIONS)


def template_reply(profile: str, mail: ParsedMail, triage: TriageResult, *, owner_name: str) -> str:
    """A polite reply body in the owner's voice: thanks, the profile's open questions that the mail
    has not answered yet, the owner's written-only preference and context (level, compensation
    floor, locations) when the profile states them, and a sign-off. Never agrees to a call or a
    time; rejections and offers get a short, fitting answer instead."""
    facts = profile_facts(profile)
    name = owner_name or facts.get("name", "")
    if triage.kind == "rejection":
        middle = ["Thank you for letting me know, and for the time you and the team put into the process. "
                  "I'd be glad to hear about future roles that fit."]
    elif triage.kind == "offer":
        middle = [f"Thank you for the offer{_about(triage, ' for ')}. I'll read it carefully and come back to you "
                  "in writing. Could you send the full details by email: base, bonus, equity, start date and "
                  "the contract?"]
    else:
        middle = _conversation(profile, facts, triage)
    return "\n\n".join([_greeting(mail), *middle, _sign_off(name)]) + "\n"


def template_decline(profile: str, mail: ParsedMail, triage: TriageResult, *, owner_name: str) -> str:
    """A short, polite decline: thanks, no reasons given, no door held open beyond good wishes."""
    name = owner_name or profile_facts(profile).get("name", "")
    body = (f"Thank you for thinking of me{_about(triage, ' for ')}. It isn't the right fit for me at the "
            "moment, so I'll pass on this one. I appreciate you reaching out, and good luck with the search.")
    return "\n\n".join([_greeting(mail), body, _sign_off(name)]) + "\n"


def _conversation(profile: str, facts: dict[str, str], triage: TriageResult) -> list[str]:
    paragraphs = [f"Thank you for reaching out{_about(triage, ' about ')}."]
    questions = [q for q in profile_questions(profile) if not _answered(q, triage)]
    if questions:
        listed = "\n".join(f"- {_plain(q, 160)}" for q in questions)
        paragraphs.append(f"Before we go further, could you share a few details in writing?\n{listed}")
    else:
        paragraphs.append("The details you shared are helpful, thank you.")
    written = _written_only(facts)
    if triage.meetings or triage.kind == "scheduling":
        paragraphs.append("Thanks for suggesting a time. I'd like to go through the details in writing first; "
                          "if they fit, we can arrange a conversation after that."
                          if written else "Thanks for suggesting a time; I'll confirm separately.")
    if written:
        paragraphs.append("I keep first conversations in writing, so email is the best way to reach me; "
                          "I don't take phone calls at this stage.")
    context = _context(facts)
    if context:
        paragraphs.append(context)
    return paragraphs


def _answered(question: str, triage: TriageResult) -> bool:
    known = {"company": bool(triage.company), "role": bool(triage.role),
             "compensation": bool(triage.compensation), "remote": triage.remote != "unknown",
             "location": bool(triage.location)}
    topics = {topic for word, topic in _TOPICS.items() if re.search(rf"\b{word}", question, re.IGNORECASE)}
    return bool(topics) and all(known[topic] for topic in topics) and not _UNANSWERABLE.search(question)


def _written_only(facts: dict[str, str]) -> bool:
    contact = " ".join(value for key, value in facts.items() if "contact" in key or "communication" in key)
    return bool(re.search(r"written|no (?:phone|calls?)|email only|e-mail only", contact, re.IGNORECASE))


def _context(facts: dict[str, str]) -> str:
    lines = [f"- {label}: {value}" for label, value in (
        ("Level", _fact(facts, "level", "seniority")),
        ("Compensation floor", _fact(facts, "compensation floor", "compensation", "salary", "minimum")),
        ("Locations", _fact(facts, "locations", "location", "where")),
    ) if value]
    return "For context, this is what I'm looking for:\n" + "\n".join(lines) if lines else ""


def _fact(facts: dict[str, str], *keys: str) -> str:
    for key in keys:
        for name, value in facts.items():
            if name == key or name.startswith(key):
                return _plain(value, 200)
    return ""


def _about(triage: TriageResult, joiner: str) -> str:
    role, company = _plain(triage.role or "", 80), _plain(triage.company or "", 80)
    if role and company:
        return f"{joiner}the {role} role at {company}"
    if role:
        return f"{joiner}the {role} role"
    if company:
        return f"{joiner}the role at {company}"
    return ""


def _greeting(mail: ParsedMail) -> str:
    display = re.sub(r"\([^()\n]*\)|\bvia\b.*$", "", mail.from_name[:200], flags=re.IGNORECASE).strip(" \"'")
    if "," in display:  # "Doe, Jane"
        display = display.split(",", 1)[1]
    words = display.split()
    first = words[0] if words else ""
    if any(word.lower() in _GENERIC_NAMES for word in words):  # "Acme Careers", "Talent Team"
        return "Hello,"
    if first.isalpha() and first[0].isupper() and len(first) <= 30:
        return f"Hi {first},"
    return "Hello,"


def _sign_off(name: str) -> str:
    cleaned = _plain(name, 80)
    return f"Best regards,\n{cleaned}" if cleaned else "Best regards"


def _plain(value: str, limit: int) -> str:
    """Mail-derived text made inert: no links, no markup, one line, capped."""
    text = re.sub(r"(?:https?://|www\.)\S+|<[^<>]*>|[<>\[\]{}`*_]", " ", value)  # [^<>]: linear on "<<<…"
    return re.sub(r"\s+", " ", text).strip(" .,;:")[:limit].strip()
