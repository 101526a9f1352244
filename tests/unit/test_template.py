"""Template replies built from the owner profile, for when no LLM is configured."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources

from recruiter.mail.parse import ParsedMail
from recruiter.model import Meeting, TriageResult
from recruiter.reply.template import profile_facts, profile_questions, template_decline, template_reply

PROFILE = resources.files("recruiter").joinpath("data/owner-profile.example.md").read_text(encoding="utf-8")


def mail(from_name: str = "Priya Shah") -> ParsedMail:
    return ParsedMail(key="k", message_id="<k>", subject="Staff SRE", from_name=from_name,
                      from_addr="priya@example.org", to_addrs=(), reply_to=None, date=None, references=())


def triage(**fields: object) -> TriageResult:
    base: dict[str, object] = {"is_recruiter": True, "confidence": 0.8, "kind": "outreach"}
    base.update(fields)
    return TriageResult.model_validate(base)


def test_example_profile_states_what_the_templates_need() -> None:
    facts = profile_facts(PROFILE)
    assert facts["name"] == "Alex Example"
    assert "written" in facts["contact"] and "no phone" in facts["contact"]
    assert "Staff" in facts["level"] and "Principal" in facts["level"]
    assert "£150k" in facts["compensation floor"] and "€170k" in facts["compensation floor"]
    assert "London" in facts["locations"] and "remote" in facts["locations"]
    questions = " ".join(profile_questions(PROFILE))
    for topic in ("company", "role", "team", "compensation", "remote"):
        assert topic in questions


def test_reply_asks_only_for_what_is_missing_and_states_preferences() -> None:
    body = template_reply(PROFILE, mail(), triage(company="Acme", role="Staff SRE"), owner_name="Alex Example")
    assert body.startswith("Hi Priya,\n\nThank you for reaching out about the Staff SRE role at Acme.")
    assert "company name" not in body  # already known
    assert "compensation range" in body
    assert "don't take phone calls" in body
    assert "£150k" in body
    assert body.rstrip().endswith("Best regards,\nAlex Example")


def test_reply_to_a_proposed_time_does_not_accept_a_call() -> None:
    meeting = Meeting(start=datetime(2026, 12, 3, 15, tzinfo=UTC))
    body = template_reply(PROFILE, mail(), triage(kind="scheduling", meetings=[meeting]), owner_name="Alex")
    assert "in writing first" in body
    assert "15:00" not in body


def test_rejection_and_offer_get_short_fitting_answers() -> None:
    rejection = template_reply(PROFILE, mail(), triage(kind="rejection"), owner_name="Alex")
    assert "Thank you for letting me know" in rejection
    assert "compensation" not in rejection
    offer = template_reply(PROFILE, mail(), triage(kind="offer", role="Staff SRE"), owner_name="Alex")
    assert "Thank you for the offer for the Staff SRE role" in offer


def test_decline_is_polite_and_brief() -> None:
    body = template_decline(PROFILE, mail(), triage(company="Acme"), owner_name="Alex Example")
    assert body.startswith("Hi Priya,\n\nThank you for thinking of me for the role at Acme.")
    assert "pass on this one" in body
    assert "£150k" not in body


def test_greeting_falls_back_for_teams_and_handles_last_first() -> None:
    assert template_decline(PROFILE, mail("Acme Careers"), triage(), owner_name="A").startswith("Hello,")
    assert template_decline(PROFILE, mail("Talent Team"), triage(), owner_name="A").startswith("Hello,")
    assert template_decline(PROFILE, mail("Doe, Jane"), triage(), owner_name="A").startswith("Hi Jane,")
    assert template_decline(PROFILE, mail(""), triage(), owner_name="A").startswith("Hello,")


def test_mail_derived_fields_are_made_inert() -> None:
    hostile = triage(role="SRE <script>x</script> https://evil.example/phish", company="Acme\nBcc: x")
    body = template_reply(PROFILE, mail(), hostile, owner_name="Alex")
    assert "https://" not in body and "<script>" not in body and "Acme\nBcc" not in body


def test_a_bare_profile_still_gives_a_reply() -> None:
    body = template_reply("no structure at all", mail(), triage(), owner_name="")
    assert body.startswith("Hi Priya,")
    assert "- the compensation range" in body
    assert body.rstrip().endswith("Best regards")
