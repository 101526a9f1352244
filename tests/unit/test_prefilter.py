"""Prefilter: what never reaches the LLM and is never answered."""

from __future__ import annotations

from pathlib import Path

import pytest

from recruiter.ingest.files import iter_paths
from recruiter.mail.parse import ParsedMail, parse_message
from recruiter.triage.prefilter import is_ats_domain, skip_reason

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def parsed(sender: str = "priya@northwind.example", reply_to: str | None = None, **headers: str) -> ParsedMail:
    return ParsedMail(key="k", message_id="<k>", subject="Staff SRE role", from_name="Priya", from_addr=sender,
                      to_addrs=("alex@example.net",), reply_to=reply_to, date=None, references=(),
                      headers={name.replace("_", "-").lower(): value for name, value in headers.items()})


def test_ordinary_mail_passes() -> None:
    assert skip_reason(parsed()) is None


@pytest.mark.parametrize(("headers", "reason"), [
    ({"list_id": "<weekly.example>"}, "list"),
    ({"list_unsubscribe": "<mailto:u@example.org>"}, "list"),
    ({"precedence": "bulk"}, "bulk"),
    ({"precedence": " List "}, "bulk"),
    ({"precedence": "junk"}, "bulk"),
    ({"auto_submitted": "auto-replied"}, "auto-submitted"),
    ({"auto_submitted": "auto-generated"}, "auto-submitted"),
    ({"auto_submitted": ""}, "auto-submitted"),
    ({"x_autoreply": "yes"}, "auto-reply"),
    ({"x_autorespond": "1"}, "auto-reply"),
    ({"x_auto_response_suppress": "All"}, "auto-reply"),
    ({"x_auto_response_suppress": "DR, OOF"}, "auto-reply"),
    ({"precedence": "auto_reply"}, "auto-reply"),
])
def test_header_reasons(headers: dict[str, str], reason: str) -> None:
    assert skip_reason(parsed(**headers)) == reason


def test_auto_submitted_no_and_precedence_first_class_pass() -> None:
    assert skip_reason(parsed(auto_submitted="no", precedence="first-class")) is None
    assert skip_reason(parsed(x_auto_response_suppress="DR, RN")) is None


@pytest.mark.parametrize("sender", [
    "noreply@shop.example", "no-reply@shop.example", "no_reply@shop.example", "donotreply@bank.example",
    "do-not-reply@bank.example", "mailer-daemon@mx.example", "MAILER-DAEMON@mx.example",
    "postmaster@mx.example", "bounce@news.example", "bounces+123@mail.example", "orders-noreply@shop.example",
    "noreply123@service.example",
])
def test_no_reply_senders(sender: str) -> None:
    assert skip_reason(parsed(sender)) == "no-reply sender"


@pytest.mark.parametrize("sender", [
    "notifications@github.com", "noreply@github.com", "calendar-notification@google.com",
    "messages-noreply@linkedin.com", "jobalerts-noreply@linkedin.com", "someone@facebookmail.com",
    "update+abc@facebookmail.com", "reply+AB12@reply.github.com", "notifications@tool.example",
    "alerts@jobboard.example", "newsletter@platformweekly.example", "jira@acme.atlassian.net",
])
def test_notification_senders(sender: str) -> None:
    assert skip_reason(parsed(sender)) == "notification sender"


def test_people_at_notification_companies_pass() -> None:
    # A GitHub or LinkedIn recruiter writes from a personal address at the company domain.
    assert skip_reason(parsed("jane.recruiter@github.com")) is None
    assert skip_reason(parsed("inmail-hit-reply@linkedin.com")) is None


def test_own_address_and_empty_sender() -> None:
    own = frozenset({"Alex@Example.net"})
    assert skip_reason(parsed("alex@example.net"), own_addresses=own) == "own address"
    assert skip_reason(parsed(""), own_addresses=own) == "empty sender"
    assert skip_reason(parsed("not-an-address")) == "empty sender"


@pytest.mark.parametrize("sender", ["jordan@contoso.greenhouse.io", "sam@hire.lever.co", "jo@acme.workablemail.com",
                                    "kim@ashbyhq.com", "recruiting@smartrecruiters.com"])
def test_recruiters_writing_through_an_ats_pass(sender: str) -> None:
    assert is_ats_domain(sender.rpartition("@")[2])
    assert skip_reason(parsed(sender)) is None
    # Exchange's suppress header alone does not hide a recruiter at an ATS.
    assert skip_reason(parsed(sender, x_auto_response_suppress="All")) is None


def test_ats_no_reply_with_a_person_in_reply_to_passes() -> None:
    mail = parsed("no-reply@greenhouse.io", reply_to="jordan.lee@contoso.example")
    assert skip_reason(mail) is None
    assert skip_reason(parsed("no-reply@greenhouse.io")) == "no-reply sender"
    assert skip_reason(parsed("no-reply@shop.example", reply_to="help@shop.example")) == "no-reply sender"


def test_ats_mail_with_bulk_headers_is_skipped() -> None:
    assert skip_reason(parsed("jobs@greenhouse.io", list_unsubscribe="<mailto:u@x>")) == "list"
    assert skip_reason(parsed("kim@ashbyhq.com", precedence="bulk")) == "bulk"
    assert skip_reason(parsed("kim@ashbyhq.com", auto_submitted="auto-generated")) == "auto-submitted"


SAMPLE_REASONS = {
    "08-newsletter.eml": "list",
    "09-auto-reply.eml": "auto-submitted",
    "10-github-notification.eml": "notification sender",
    "11-receipt-noreply.eml": "no-reply sender",
    "13-job-board-alert.eml": "bulk",
    "sample.mbox#2": "notification sender",
}


def test_samples_skip_exactly_the_automated_mail() -> None:
    seen = 0
    for label, raw in iter_paths([SAMPLES]):
        name = Path(label).name
        assert skip_reason(parse_message(raw), own_addresses=frozenset({"alex@example.net"})) == \
            SAMPLE_REASONS.get(name), name
        seen += 1
    assert seen >= 17
