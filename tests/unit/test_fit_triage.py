"""The triage verdict carries what fit needs (issue 16): level, equity, industry — in the model, the LLM
schema (strict too), the repair step and the rules tier."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from recruiter.mail.parse import parse_message
from recruiter.model import TRIAGE_JSON_SCHEMA, TriageResult, repair_answer, strict_schema
from recruiter.triage.rules import classify
from tests.servers.fake_llm import strict_schema_problem

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def test_the_new_fields_are_optional_so_stored_verdicts_still_load() -> None:
    old = TriageResult.model_validate({"is_recruiter": True, "confidence": 0.8, "company": "Acme"})
    assert (old.level, old.equity, old.industry) == (None, None, None)


def test_the_schema_asks_for_them_and_stays_strict_valid() -> None:
    assert {"level", "equity", "industry"} <= set(TRIAGE_JSON_SCHEMA["required"])
    assert set(TRIAGE_JSON_SCHEMA["required"]) == set(TRIAGE_JSON_SCHEMA["properties"])
    assert strict_schema_problem(strict_schema(TRIAGE_JSON_SCHEMA)) is None
    assert TRIAGE_JSON_SCHEMA["properties"]["equity"]["type"] == ["boolean", "null"]


def test_repair_mends_the_new_fields() -> None:
    base = {"is_recruiter": True, "confidence": 0.9}
    mended, repairs = repair_answer({**base, "equity": "yes", "level": "null", "industry": "x" * 300})
    result = TriageResult.model_validate(mended)
    assert result.equity is True and result.level is None and len(result.industry or "") <= 100
    assert ("equity", "coerced") in repairs and ("industry", "truncated") in repairs
    mended, repairs = repair_answer({**base, "equity": "not mentioned"})
    assert TriageResult.model_validate(mended).equity is None and ("equity", "defaulted") in repairs


def _mail(body: str, subject: str = "Staff Platform Engineer role") -> bytes:
    message = EmailMessage()
    message["From"] = "Jane Recruiter <jane@talent-partners.example>"
    message["To"] = "me@example.com"
    message["Subject"] = subject
    message["Message-ID"] = "<fit-1@example>"
    message.set_content(body)
    return message.as_bytes()


def test_the_rules_tier_finds_level_equity_and_industry() -> None:
    mail = parse_message(_mail(
        "Hi,\n\nI'm a recruiter at Talent Partners. My client, a fast-growing crypto exchange, is hiring a "
        "Staff Platform Engineer in Berlin. Salary €95k plus stock options.\n\nWould you be open to a chat?\n"))
    result = classify(mail)
    assert result.is_recruiter
    assert (result.level, result.equity, result.industry) == ("Staff", True, "crypto/web3")


def test_the_rules_tier_says_none_when_the_mail_does_not() -> None:
    mail = parse_message(_mail(
        "Hi,\n\nI'm a recruiter at Talent Partners. My client is hiring a Platform Engineer in Berlin, "
        "no equity, €120k.\n\nWould you be open to a chat?\n", subject="Platform Engineer role"))
    result = classify(mail)
    assert result.is_recruiter
    assert (result.level, result.equity, result.industry) == (None, False, None)


def test_the_samples_get_their_levels() -> None:
    northwind = classify(parse_message((SAMPLES / "01-outreach-en-northwind.eml").read_bytes()))
    assert northwind.level == "Staff"
    contoso = classify(parse_message((SAMPLES / "04-greenhouse-html-only.eml").read_bytes()))
    assert contoso.level == "Staff"  # "Senior Staff Software Engineer"


def test_the_rules_tier_names_industries_in_several_languages() -> None:
    for body, industry in (("fleet software for our warehouse robots", "robotics"),
                           ("une scale-up e-santé basée à Lyon", "healthtech"),
                           ("eines etablierten Hamburger Logistikunternehmens", "logistics"),
                           ("Staff SRE at a Series D dev-tools company", "developer tools"),
                           ("a sports betting operator", "gambling")):
        mail = parse_message(_mail(f"Hi,\n\nI'm a recruiter at Talent Partners: {body}, hiring a Staff Engineer.\n"))
        assert classify(mail).industry == industry, body
