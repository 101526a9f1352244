"""Adversarial inputs for every text path of ours, by size: shared by bench/textpaths.py (figures) and
tests/unit/test_linear.py (growth checks).

Each shape repeats a unit to the requested size. The units are what a backtracking pattern or a naive
loop chokes on: a long run without the character a pattern waits for, a pattern's prefix repeated
without its end, nesting, folding, lines that almost match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from recruiter.mail.headers import decode_header_value, message_ids, parse_addresses
from recruiter.mail.parse import ParsedMail, parse_headers, parse_message
from recruiter.mail.text import clean_body, html_to_text, split_signature, trim_quoted, trim_signature
from recruiter.reply.draft import clean_draft
from recruiter.triage import rules
from recruiter.triage.llm import read_answer
from recruiter.triage.prefilter import skip_reason
from recruiter.triage.rules_dates import meetings_from_text


@dataclass(frozen=True)
class Shape:
    """An input of about ``size`` characters: ``head`` + ``unit`` repeated + ``tail``."""

    name: str
    unit: str
    head: str = ""
    tail: str = ""

    def text(self, size: int) -> str:
        return self.head + self.unit * max(1, (size - len(self.head) - len(self.tail)) // len(self.unit)) + self.tail

    def build(self, size: int) -> Any:
        return self.text(size)


@dataclass(frozen=True)
class MailShape(Shape):
    """A whole mail: ``head`` is its header block (and part headers); the body repeats ``unit``."""

    def build(self, size: int) -> Any:
        return self.text(size).encode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class BodyShape(Shape):
    """A ParsedMail whose text (uncapped) is the shape: for the rules tier and the prefilter."""

    header: str = ""

    def build(self, size: int) -> Any:
        text = self.text(size)
        return ParsedMail(key="k", message_id="<k@x>", subject=text[:200] if not self.header else "s",
                          from_name=text[:300], from_addr="jane@agency.example", to_addrs=("me@x.example",),
                          reply_to=None, date=datetime(2026, 12, 1, tzinfo=UTC), references=(),
                          headers={self.header: text} if self.header else {}, text=text, signature=text[:500])


_MIXED = "multipart/alternative"
MAIL_SHAPES = (
    # The mail of issue 17: a multipart without a boundary, its body one Content-Type line repeated.
    MailShape("crude content-type lines", "content-type: text/plain\n",
              head=f"From: a@b.example\nSubject: x\nContent-Type: {_MIXED}\n\n"),
    MailShape("crude content-type blank", "content-type: text/plain\n\n",
              head=f"From: a@b.example\nSubject: x\nContent-Type: {_MIXED}\n\n"),
    MailShape("crude header lines", "content-type: text/plain\nx: y\n",
              head=f"From: a@b.example\nSubject: x\nContent-Type: {_MIXED}\n\n"),
    MailShape("nested multiparts", "--b\nContent-Type: multipart/mixed; boundary=b\n\n",
              head="From: a@b.example\nSubject: x\nContent-Type: multipart/mixed; boundary=b\n\n"),
    MailShape("folded subject", "\n a", head="From: a@b.example\nSubject: x", tail="\n\nbody\n"),
    MailShape("folded to, no @", "\n aaaaaaaa", head="From: a@b.example\nTo: x", tail="\n\nbody\n"),
    MailShape("many headers", "X-H: v\n", head="From: a@b.example\n", tail="\nbody\n"),
    MailShape("content-type spaces", " ", head="From: a@b.example\nContent-Type: text/plain", tail="x\n\nbody\n"),
    MailShape("encoded words", "=?utf-8?q?a?= ", head="From: a@b.example\nSubject: ", tail="\n\nbody\n"),
    MailShape("html open tags", "<div>", head="From: a@b.example\nContent-Type: text/html\n\n"),
    MailShape("html unclosed attr", "<a b='", head="From: a@b.example\nContent-Type: text/html\n\n"),
    MailShape("html hidden spans", "<span style=\"display:none\">x",
              head="From: a@b.example\nContent-Type: text/html\n\n"),
    MailShape("quoted lines", "> quoted\n", head="From: a@b.example\n\nhello\n"),
    MailShape("attribution-like lines", "On Monday someone wrote wrote wrote\n", head="From: a@b.example\n\nhi\n"),
)

TEXT_SHAPES = (
    Shape("one long word", "a"),
    Shape("blank run", " ", tail="x"),
    Shape("line breaks", "\n", tail="x"),
    Shape("attribution prefix", "On wrote ", tail="x"),
    Shape("dash lines", "-----\n"),
    Shape("from/sent lines", "From: x\nSent: y\n"),
    Shape("disclaimer words", "this message is confidential "),
    Shape("mobile footer words", "sent from my phone "),
    Shape("signature marks", "-- \n"),
)

HTML_SHAPES = (
    Shape("lt run", "<"),
    Shape("open tags", "<div>"),
    Shape("unclosed attribute", "<a b='"),
    Shape("comment opens", "<!--"),
    Shape("entities", "&amp"),
    Shape("hidden spans", "<span style=\"display:none\">x"),
    Shape("style values", "<p style=\"font-size:0", tail="\">"),
)

HEADER_SHAPES = (
    Shape("encoded word starts", "=?utf-8?q?"),
    Shape("encoded words", "=?utf-8?q?a?= "),
    Shape("address chars, no @", "a"),
    Shape("at signs", "a@"),
    Shape("lt run", "<"),
    Shape("comments", "("),
    Shape("quotes", '"a'),
)

RULES_SHAPES = (
    BodyShape("one long word", "a"),
    BodyShape("blank run", " "),
    BodyShape("digits", "1"),
    BodyShape("weekday words", "Monday "),
    BodyShape("date-like", "12. 12 12:"),
    BodyShape("capitalised words", "Senior Head Director "),
    BodyShape("at words", "I am at with "),
    BodyShape("money words", "EUR 100 k "),
    BodyShape("recruiter words", "recruiter talent hiring role "),
    BodyShape("address chars", "a.b+c-", header="reply-to"),
)

ANSWER_SHAPES = (
    Shape("think opens", "<think>"),
    Shape("fence and blanks", " ", head="```json\n", tail="x"),
    Shape("braces", "{"),
    Shape("brackets", "["),
    Shape("quotes", '"'),
)

DRAFT_SHAPES = (
    Shape("fence and blanks", " ", head="```", tail="x"),
    Shape("subject lines", "subject: x\n"),
)

DATE_SHAPES = (
    Shape("digits", "1"),
    Shape("blank run", " "),
    Shape("weekday words", "Monday "),
    Shape("date-like", "12. 12 12:"),
    Shape("times", "10:00 "),
)

_REFERENCE = datetime(2026, 12, 1, tzinfo=UTC)


def _meetings(text: str) -> object:
    return meetings_from_text(text, reference=_REFERENCE)


def _answer(text: str) -> object:
    try:
        return read_answer(text)
    except Exception:  # InvalidAnswer: the time is what counts
        return None


def _draft(text: str) -> object:
    try:
        return clean_draft(text)
    except Exception:
        return None


def _skip(mail: ParsedMail) -> object:
    return skip_reason(mail)


def _headers_only(raw: bytes) -> object:
    return parse_headers(raw)


PATHS: list[tuple[str, Callable[[Any], object], tuple[Shape, ...]]] = [
    ("parse_message", parse_message, MAIL_SHAPES),
    ("parse_headers", _headers_only, MAIL_SHAPES[4:9]),
    ("html_to_text", html_to_text, HTML_SHAPES),
    ("trim_quoted", trim_quoted, TEXT_SHAPES),
    ("trim_signature", trim_signature, TEXT_SHAPES),
    ("split_signature", split_signature, TEXT_SHAPES),
    ("clean_body", lambda text: clean_body(text, 6000), TEXT_SHAPES),
    ("decode_header_value", decode_header_value, HEADER_SHAPES),
    ("parse_addresses", parse_addresses, HEADER_SHAPES),
    ("message_ids", message_ids, HEADER_SHAPES),
    ("rules.classify", rules.classify, RULES_SHAPES),
    ("prefilter", _skip, RULES_SHAPES),
    ("meetings_from_text", _meetings, DATE_SHAPES),
    ("llm read_answer", _answer, ANSWER_SHAPES),
    ("llm clean_draft", _draft, DRAFT_SHAPES),
]
