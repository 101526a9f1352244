"""Every text path of ours grows linearly with its input, on inputs built to make it not (issue 17).

The growth check compares the CPU time of one input with that of an input 8× larger (the least of three
runs each, the smaller one floored at 2 ms so that noise in tiny figures does not count): linear growth
gives about 8, quadratic 64. The bound of 32 is generous on purpose; the figures themselves are in
bench/textpaths.py. The other tests pin what the linear rewrites must still do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from bench.textshapes import PATHS, MailShape, Shape
from recruiter.llm.client import without_thinking
from recruiter.mail.headers import _ADDRESS, parse_addresses
from recruiter.mail.parse import _crude_text, parse_message
from recruiter.mail.text import html_to_text, trim_signature
from recruiter.reply.draft import clean_draft
from recruiter.triage.llm import read_answer

SMALL = 6_000
GROWTH = 8
BOUND = 32.0
FLOOR = 0.002

CASES = [pytest.param(fn, shape, id=f"{path}:{shape.name}") for path, fn, shapes in PATHS for shape in shapes]


def _cpu(fn: Callable[[Any], object], arg: Any) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        fn(arg)
        best = min(best, time.process_time() - started)
    return best


@pytest.mark.parametrize(("fn", "shape"), CASES)
def test_work_grows_linearly(fn: Callable[[Any], object], shape: Shape) -> None:
    small = _cpu(fn, shape.build(SMALL))
    large = _cpu(fn, shape.build(SMALL * GROWTH))
    if large / max(small, FLOOR) >= BOUND:  # once more, in case the machine was busy for one of them
        small = min(small, _cpu(fn, shape.build(SMALL)))
        large = min(large, _cpu(fn, shape.build(SMALL * GROWTH)))
    assert large / max(small, FLOOR) < BOUND, f"{small * 1000:.1f} ms → {large * 1000:.1f} ms for 8× the input"


def test_the_mail_of_issue_17_is_read() -> None:
    raw = MailShape("crude", "content-type: text/plain\n", head="From: a@b.example\nSubject: x\n"
                    "Content-Type: multipart/alternative\n\n").build(500_000)
    started = time.process_time()
    mail = parse_message(raw)
    assert mail.subject == "x" and mail.text == ""
    assert time.process_time() - started < 5.0  # 25 s before; well under a second now


def test_crude_text_finds_the_plain_section_as_before() -> None:
    body = ("preamble\n--x\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 7bit\n\n"
            "Hello there\nsecond line\n--x\nContent-Type: text/html\n\n<p>hi</p>\n--x--\n")
    assert _crude_text(body) == "Hello there\nsecond line"
    assert _crude_text(body.replace("\n", "\r\n")) == "Hello there\r\nsecond line"
    assert _crude_text("Content-Type:\n  text/plain\n\nfolded type\n") == "folded type"
    assert _crude_text("content-type: text/html\n\nno\n--x\ncontent-type: text/plain\n\nyes") == "yes"
    assert _crude_text("content-type: text/plain\nno empty line after the headers\n") == ""
    assert _crude_text("content-type: text/plain") == ""
    assert _crude_text("nothing here") == ""


def test_html_unclosed_constructs_cost_one_pass() -> None:
    assert html_to_text("<p>before</p><!-- never closed <p>after</p>") == "before"
    assert html_to_text("<p>kept</p><a href='never closed>still text") == "kept\n<a href='never closed>still text"
    assert html_to_text("<p title=\"a > b\">x</p>") == "x"
    assert html_to_text("a < b and c<d") == "a < b and c<d"
    assert html_to_text("<SCRIPT>var s = '<p>no</p>';</ScRiPt><p>yes</p>") == "yes"
    assert html_to_text("<style>p {}</style") == ""
    assert html_to_text("x<br/>y<div hidden/>z") == "x\ny\nz"
    assert html_to_text("<p>caf&eacute; &amp; <b>bar</b></p>") == "café & bar"
    assert html_to_text("<span style=\"DISPLAY: none\">secret</span>shown") == "shown"
    assert html_to_text("<div aria-hidden=true>secret</div><p>shown") == "shown"


def test_rewritten_patterns_keep_their_meaning() -> None:
    assert parse_addresses("Jane <jane@agency.example>") == [("Jane", "jane@agency.example")]
    assert _ADDRESS.findall("to: junk.jane+x@agency.example, (bob@b.example) @x") \
        == ["junk.jane+x@agency.example", "bob@b.example"]
    assert trim_signature("Hello\n  ** CONFIDENTIALITY NOTICE: blah") == "Hello"
    assert trim_signature("Hello\n" + " " * 50_000 + "x") == "Hello\n" + " " * 50_000 + "x"
    assert without_thinking("<think>hm</think>{\"a\": 1}<think>x</think>") == "{\"a\": 1}"
    assert without_thinking("<think>never closed {}") == "<think>never closed {}"
    assert clean_draft("```text\nHi there\n```") == "Hi there"
    assert clean_draft("```\nHi``` there   ```") == "Hi``` there"
    result, _ = read_answer('```json\n{"is_recruiter": false, "confidence": 0.9, "kind": "other"}\n```')
    assert result.is_recruiter is False
