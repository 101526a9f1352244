"""Prefilter: mail that must never reach the LLM and must never be answered.

Cheap header and sender checks only. Recall on recruiter mail matters more than precision here: a
person writing through an applicant-tracking system (Greenhouse, Lever, Workable, Ashby, …) is never
skipped unless the mail carries list or bulk headers or says it was sent automatically.
"""

from __future__ import annotations

import re

from recruiter.mail.parse import ParsedMail

ATS_DOMAINS = frozenset({
    "greenhouse.io", "greenhouse-mail.io", "lever.co", "hire.lever.co", "workable.com", "workablemail.com",
    "ashbyhq.com", "smartrecruiters.com", "teamtailor.com", "teamtailor-mail.com", "recruitee.com",
    "personio.de", "personio.com", "jobvite.com", "icims.com", "bamboohr.com", "breezy.hr",
    "pinpointhq.com", "gem.com", "beamery.com", "homerun.co", "join.com", "successfactors.com",
})

_NO_REPLY = re.compile(
    r"(?:^|[-_.+])(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|dont[-_.]?reply|noreply\d*)(?:$|[-_.+\d])|"
    r"^(?:mailer[-_.]?daemon|postmaster|bounces?(?:$|[-_.+].*)|return[-_.]?path|auto[-_.]?(?:reply|mailer))$",
    re.IGNORECASE,
)
_NOTIFICATION_LOCAL = re.compile(
    r"^(?:.*[-_.])?(?:notifications?|notify|alerts?|jobalerts?|job[-_.]alerts?|newsletters?|digest|"
    r"calendar[-_.]notification)(?:[-_.+].*)?$",
    re.IGNORECASE,
)
_NOTIFICATION_ADDRESSES = frozenset({
    "notifications@github.com", "noreply@github.com", "calendar-notification@google.com",
    "messages-noreply@linkedin.com", "jobalerts-noreply@linkedin.com", "jobs-noreply@linkedin.com",
    "notifications-noreply@linkedin.com", "invitations@linkedin.com", "jobs-listings@linkedin.com",
    "updates-noreply@linkedin.com", "news@linkedin.com", "messaging-digest-noreply@linkedin.com",
    "no-reply@accounts.google.com", "drive-shares-noreply@google.com", "comments-noreply@docs.google.com",
    "no-reply@slack.com", "feedback@slack.com", "jira@atlassian.net", "confluence@atlassian.net",
})
_NOTIFICATION_DOMAINS = frozenset({
    "facebookmail.com", "reply.github.com", "noreply.github.com", "atlassian.net", "mail.instagram.com",
    "bounce.linkedin.com", "e.linkedin.com", "notifications.google.com", "mailchimpapp.net",
})
_BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})


def skip_reason(mail: ParsedMail, *, own_addresses: frozenset[str] = frozenset()) -> str | None:
    """Why ``mail`` must be skipped without any LLM call, or None when it may be triaged.

    Reasons: "empty sender", "own address", "auto-submitted", "list", "bulk", "auto-reply",
    "notification sender", "no-reply sender". The first that applies is returned, in that order."""
    for check in (_sender_reason, _header_reason, _notification_reason, _no_reply_reason):
        reason = check(mail, own_addresses)
        if reason:
            return reason
    return None


def _sender_reason(mail: ParsedMail, own: frozenset[str]) -> str | None:
    sender = mail.from_addr.strip().lower()
    if not sender or "@" not in sender:
        return "empty sender"
    if sender in {addr.strip().lower() for addr in own}:
        return "own address"
    return None


def _header_reason(mail: ParsedMail, _own: frozenset[str]) -> str | None:
    headers = mail.headers
    auto = headers.get("auto-submitted", "").strip().lower()
    if "auto-submitted" in headers and not auto.startswith("no"):
        return "auto-submitted"
    if "list-id" in headers or "list-unsubscribe" in headers:
        return "list"
    if headers.get("precedence", "").strip().lower() in _BULK_PRECEDENCE:
        return "bulk"
    if _auto_reply_headers(mail):
        return "auto-reply"
    return None


def _auto_reply_headers(mail: ParsedMail) -> bool:
    headers = mail.headers
    if "x-autoreply" in headers or "x-autorespond" in headers:
        return True
    # Vacation responders that predate RFC 3834 (Zimbra, Yahoo, procmail recipes) mark themselves so.
    if headers.get("precedence", "").strip().lower() in ("auto_reply", "auto-reply"):
        return True
    suppress = {token.strip().lower() for token in headers.get("x-auto-response-suppress", "").split(",")}
    # Exchange stamps "All" on much automated mail; a recruiter writing from an ATS may carry it too.
    return bool(suppress & {"all", "oof"}) and not is_ats_domain(_domain(mail.from_addr))


def _notification_reason(mail: ParsedMail, _own: frozenset[str]) -> str | None:
    sender = mail.from_addr.lower()
    local, _, domain = sender.rpartition("@")
    if sender in _NOTIFICATION_ADDRESSES or _domain_in(domain, _NOTIFICATION_DOMAINS):
        return "notification sender"
    if _NOTIFICATION_LOCAL.match(local) and not is_ats_domain(domain):
        return "notification sender"
    return None


def _no_reply_reason(mail: ParsedMail, _own: frozenset[str]) -> str | None:
    local, _, domain = mail.from_addr.lower().rpartition("@")
    if not _NO_REPLY.search(local):
        return None
    # An ATS sends as no-reply@ on a recruiter's behalf with the person in Reply-To: answerable.
    reply_local = (mail.reply_to or "").lower().rpartition("@")[0]
    if is_ats_domain(domain) and mail.reply_to and not _NO_REPLY.search(reply_local):
        return None
    return "no-reply sender"


def is_ats_domain(domain: str) -> bool:
    """True when ``domain`` is, or is under, a known applicant-tracking system's domain."""
    return _domain_in(domain.lower(), ATS_DOMAINS)


def _domain_in(domain: str, domains: frozenset[str]) -> bool:
    labels = domain.split(".")
    return any(".".join(labels[index:]) in domains for index in range(len(labels) - 1))


def _domain(addr: str) -> str:
    return addr.rpartition("@")[2].lower()
