"""An answer a little off the schema is mended, counted, and used; only one without a verdict costs a retry.

Through the real client against the loopback LLM where a whole triage is meant, on ``read_answer``
alone for the table of repairs, and with hypothesis throwing mutated answers at the parser.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recruiter.errors import InvalidAnswer
from recruiter.http.metrics import metrics_text
from recruiter.llm.client import LLM
from recruiter.mail.parse import parse_message
from recruiter.model import MAX_MEETINGS, TriageResult, cut_at_word
from recruiter.settings import LLMEndpoint
from recruiter.store.migrate import prepare_database
from recruiter.store.repo import Store
from recruiter.triage.llm import Triager, parse_answer, read_answer
from tests.mailfactory import make_mail
from tests.servers.fake_llm import FakeLLM, default_triage_answer

MAIL = parse_message(make_mail(subject="Staff SRE at Acme", body="Hi, I'm recruiting for Acme.\nCompany: Acme\n"))
GOOD: dict[str, Any] = {
    "is_recruiter": True, "confidence": 0.9, "kind": "outreach", "company": "Acme", "role": "Staff SRE",
    "location": None, "remote": "remote", "compensation": None,
    "meetings": [{"start": "2026-12-03T15:00:00+00:00", "duration_minutes": 30, "title": "Intro"}],
    "summary": "Acme recruits a Staff SRE.",
}
LONG_SUMMARY = " ".join(f"The recruiter explains detail number {i} of the role at length." for i in range(67))


@pytest.fixture
async def llm(fake_llm: FakeLLM) -> AsyncIterator[LLM]:
    client = LLM([LLMEndpoint("llama-swap", fake_llm.url, "qwen3-8b")], timeout=5)
    yield client
    await client.aclose()


async def test_a_4200_character_summary_is_cut_at_a_word_not_dead_lettered(llm: LLM, fake_llm: FakeLLM) -> None:
    assert 4100 <= len(LONG_SUMMARY) <= 4300
    fake_llm.triage_answer = lambda text: {**default_triage_answer(text), "summary": LONG_SUMMARY}
    triaged = await Triager(llm).triage(MAIL)
    summary = triaged.result.summary
    assert triaged.result.is_recruiter and len(summary) <= 500 and summary.endswith("…")
    assert LONG_SUMMARY.startswith(summary[:-1]) and LONG_SUMMARY[len(summary) - 1] == " "  # cut before a word
    assert len(fake_llm.triage_requests()) == 1  # no repair round
    assert llm.repairs_snapshot() == [{"field": "summary", "kind": "truncated", "count": 1}]
    assert [row["outcome"] for row in llm.usage_snapshot()] == ["ok"]


async def test_repairs_are_counted_in_metrics(llm: LLM, fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.triage_answer = lambda text: {**default_triage_answer(text), "summary": LONG_SUMMARY,
                                           "confidence": "0.9", "reasoning": "because"}
    await Triager(llm).triage(MAIL)
    url = f"sqlite+aiosqlite:///{tmp_path / 'metrics.db'}"
    await prepare_database(url)
    store = Store.from_url(url)
    try:
        text = (await metrics_text(store, [], llm, None)).decode()
    finally:
        await store.aclose()
    for line in ('recruiter_llm_repairs_total{field="summary",kind="truncated"} 1.0',
                 'recruiter_llm_repairs_total{field="confidence",kind="coerced"} 1.0',
                 'recruiter_llm_repairs_total{field="(unknown)",kind="dropped"} 1.0',
                 'recruiter_llm_tier_misconfigured{model="qwen3-8b",tier="llama-swap"} 0.0'):
        assert line in text


async def test_an_answer_without_a_verdict_costs_one_repair_round(llm: LLM, fake_llm: FakeLLM) -> None:
    fake_llm.script(FakeLLM.Raw(json.dumps({"confidence": 0.9, "summary": "no verdict here"})))
    triaged = await Triager(llm).triage(MAIL)  # the second answer (the default) is good
    assert triaged.result.is_recruiter and len(fake_llm.triage_requests()) == 2


def test_obvious_types_are_coerced_and_extras_dropped() -> None:
    meeting = {"start": "2026-12-03T15:00:00+01:00", "duration_minutes": "45", "title": 12, "room": "B2"}
    answer = {**GOOD, "is_recruiter": "true", "confidence": "0.9", "kind": "Follow-up", "remote": "On-site",
              "company": 42, "meetings": [meeting] * (MAX_MEETINGS + 2), "reasoning": "…", "summary": None}
    result, repairs = read_answer(json.dumps(answer))
    assert (result.is_recruiter, result.confidence, result.kind, result.remote) == (True, 0.9, "follow_up", "onsite")
    assert result.company == "42" and result.summary == ""
    assert len(result.meetings) == MAX_MEETINGS
    assert {(m.duration_minutes, m.title) for m in result.meetings} == {(45, "12")}
    assert set(repairs) == {("is_recruiter", "coerced"), ("confidence", "coerced"), ("kind", "coerced"),
                            ("remote", "coerced"), ("company", "coerced"), ("meetings", "dropped"),
                            ("meetings.duration_minutes", "coerced"), ("meetings.title", "coerced"),
                            ("(unknown)", "dropped"), ("summary", "defaulted")}


@pytest.mark.parametrize(("content", "expected"), [
    ('Sure! Here it is: {"is_recruiter": false, "confidence": 0.8} Hope that helps.', [("(answer)", "extracted")]),
    ('```json\n{"is_recruiter": false, "confidence": 0.8}\n```', []),
    ('{"is_recruiter": 0, "confidence": 1, "kind": "spam", "remote": null}',
     [("is_recruiter", "coerced"), ("kind", "defaulted"), ("remote", "defaulted")]),
    ('{"is_recruiter": true, "confidence": 0.5, "company": "A\\u0000cme \\ud800Corp"}', [("company", "sanitized")]),
    ('{"is_recruiter": true, "confidence": 0.5, "meetings": null}', [("meetings", "defaulted")]),
    ('{"is_recruiter": true, "confidence": 0.5, "meetings": {"start": "2026-12-03T15:00:00Z"}}',
     [("meetings", "coerced")]),
])
def test_repairs_table(content: str, expected: list[tuple[str, str]]) -> None:
    result, repairs = read_answer(content)
    assert repairs == expected
    company = result.company or ""
    assert "\x00" not in company
    company.encode("utf-8")  # no lone surrogate left: a database can store it


@pytest.mark.parametrize("content", [
    "", "null", "[]", '"yes"', '{"confidence": 0.9}', '{"is_recruiter": "maybe", "confidence": 0.9}',
    '{"is_recruiter": true}', '{"is_recruiter": true, "confidence": "high"}', '{"is_recruiter": true, "confidence": 7}',
    '{"is_recruiter": true, "confidence": 0.5, "meetings": [{"start": "2026-12-03T15:00:00"}]}',
    '{"is_recruiter": true, "confidence": 0.5, "meetings": [{"start": "x", "duration_minutes": 30}]}',
    '{"is_recruiter": true, "confidence": 0.5, "company": ["A", "B"]}',
    "[" * 100_000 + "]" * 100_000, '{"a": ' * 50_000 + "1" + "}" * 50_000,
    '{"is_recruiter": true, "confidence": ' + "9" * 5000 + "}",
])
def test_no_usable_verdict_is_invalid(content: str) -> None:
    with pytest.raises(InvalidAnswer):
        parse_answer(content)


def test_cut_at_word() -> None:
    assert cut_at_word("short", 10) == "short"
    assert cut_at_word("one two three four", 12) == "one two…"
    assert cut_at_word("x" * 30, 10) == "x" * 9 + "…"  # no space in reach: cut mid-word
    assert len(cut_at_word("word " * 300, 500)) <= 500


# --- hypothesis: whatever the model sends, the parser says InvalidAnswer or gives a valid result --------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_STRINGY = st.text(max_size=700) | st.integers().map(str) | st.floats().map(str) | st.sampled_from(
    ["true", "false", "yes", "0.9", "45", "null", "", " 45 ", "1e999", "-0", "Outreach", "follow up", "hybrid"])


@st.composite
def mutated_answers(draw: st.DrawFn) -> str:
    answer: dict[str, Any] = json.loads(json.dumps(GOOD))
    for _ in range(draw(st.integers(0, 5))):
        action = draw(st.sampled_from(["replace", "stringify", "delete", "add", "meetings", "long"]))
        key = draw(st.sampled_from(sorted(GOOD)))
        if action == "replace":
            answer[key] = draw(_JSON)
        elif action == "stringify":
            answer[key] = draw(_STRINGY)
        elif action == "delete":
            answer.pop(key, None)
        elif action == "add":
            answer[draw(st.text(max_size=12))] = draw(_JSON)
        elif action == "meetings":
            meeting = {"start": draw(st.sampled_from(["2026-12-03T15:00:00+00:00", "2026-12-03T15:00:00", "x"])),
                       "duration_minutes": draw(_JSON | _STRINGY), "title": draw(_JSON | _STRINGY)}
            answer["meetings"] = [meeting] * draw(st.integers(0, 14))
        else:
            answer[key] = draw(st.text(min_size=190, max_size=900))
    text = json.dumps(answer, ensure_ascii=draw(st.booleans()))
    wrap = draw(st.sampled_from(["", "fence", "prose", "cut"]))
    if wrap == "fence":
        return f"```json\n{text}\n```"
    if wrap == "prose":
        return f"Here you go: {text} — done."
    if wrap == "cut":
        return text[: draw(st.integers(0, len(text)))]
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_answers())
def test_mutated_answers_give_a_valid_result_or_invalid_answer(content: str) -> None:
    try:
        result, _ = read_answer(content)
    except InvalidAnswer:
        return
    assert isinstance(result, TriageResult)
    assert len(result.summary) <= 500 and len(result.meetings) <= MAX_MEETINGS
    for value in (result.company, result.role, result.location, result.compensation, result.summary):
        if value is not None:
            assert "\x00" not in value and len(value) <= 500
            value.encode("utf-8")  # no lone surrogate left


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300) | _JSON.map(json.dumps))
def test_arbitrary_text_never_raises_anything_but_invalid_answer(content: str) -> None:
    try:
        parse_answer(content)
    except InvalidAnswer:
        pass
