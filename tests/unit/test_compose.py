"""Threaded replies: headers, threading, the key header and the UTF-8 body."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from recruiter.mail.parse import ParsedMail, parse_message
from recruiter.reply.compose import KEY_HEADER, build_reply, find_header_value, reply_subject

WHEN = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def original(**changes: object) -> ParsedMail:
    fields: dict[str, object] = dict(
        key="abc@example.org", message_id="<ABC@example.org>", subject="Staff SRE at Acme", from_name="Priya Shah",
        from_addr="priya@example.org", to_addrs=("alex@example.net",), reply_to=None, date=WHEN,
        references=("<root@example.org>", "<mid@example.org>"))
    fields.update(changes)
    return ParsedMail(**fields)  # type: ignore[arg-type]


def reply(mail: ParsedMail, body: str = "Hi Priya,\n\nThanks.\n\nAlex\n") -> tuple[bytes, EmailMessage]:
    raw = build_reply(mail, from_addr="alex@example.net", from_name="Alex Example", body=body,
                      key="abc@example.org", date=WHEN)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return raw, parsed


def test_reply_headers() -> None:
    raw, msg = reply(original())
    assert msg["From"] == "Alex Example <alex@example.net>"
    assert msg["To"] == "Priya Shah <priya@example.org>"
    assert msg["Subject"] == "Re: Staff SRE at Acme"
    assert msg["In-Reply-To"] == "<ABC@example.org>"
    assert msg["References"] == "<root@example.org> <mid@example.org> <ABC@example.org>"
    assert msg[KEY_HEADER] == "abc@example.org"
    assert msg["Date"] == "Wed, 25 Nov 2026 10:00:00 +0000"
    assert msg["Message-ID"].endswith("@example.net>")
    assert msg["Message-ID"] != "<ABC@example.org>"
    assert b"\r\n" in raw


def test_reply_goes_to_reply_to_when_present() -> None:
    _, msg = reply(original(reply_to="jobs@example.org"))
    assert msg["To"] == "jobs@example.org"


@pytest.mark.parametrize("subject", ["Staff SRE", "Re: Staff SRE", "RE: Staff SRE", "re: RE: Staff SRE",
                                     "Aw: Staff SRE", "AW: Re: Staff SRE", "Sv: Staff SRE", "Antw: Staff SRE",
                                     "Re[2]: Staff SRE", "RE : Staff SRE", "  Re:Staff SRE"])
def test_subject_gets_one_re(subject: str) -> None:
    assert reply_subject(subject) == "Re: Staff SRE"


def test_forward_prefixes_are_kept_and_empty_subjects_named() -> None:
    assert reply_subject("Fwd: Staff SRE") == "Re: Fwd: Staff SRE"
    assert reply_subject("") == "Re: (no subject)"
    assert reply_subject("Re:") == "Re: (no subject)"


def test_no_threading_headers_without_a_message_id() -> None:
    _, msg = reply(original(message_id=None, references=()))
    assert msg["In-Reply-To"] is None
    assert msg["References"] is None


def test_references_are_deduplicated_and_trimmed() -> None:
    many = (*(f"<r{i}@example.org>" for i in range(40)), "<ABC@example.org>")
    _, msg = reply(original(references=many))
    ids = msg["References"].split()
    assert len(ids) == 20
    assert ids[0] == "<r0@example.org>"
    assert ids[-1] == "<ABC@example.org>"
    assert len(set(ids)) == len(ids)


def test_body_is_utf8_text_plain_and_round_trips() -> None:
    body = "Hallo Jäne,\n\nDanke — gerne schriftlich. 🚀\n\n" + "long line " * 50 + "\n"
    raw, msg = reply(original(from_name="Jäne Döe"), body)
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert msg.get_content().replace("\r\n", "\n") == body
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert msg["To"] == "Jäne Döe <priya@example.org>"


def test_values_from_the_incoming_mail_cannot_add_headers() -> None:
    hostile = original(subject="Hi\r\nBcc: victim@example.org", from_name="Eve\nX-Evil: 1")
    raw, msg = reply(hostile)
    assert msg["Bcc"] is None
    assert msg["X-Evil"] is None
    assert b"\r\nBcc:" not in raw


def test_reply_parses_back_with_parse_message() -> None:
    raw, _ = reply(original())
    parsed = parse_message(raw)
    assert parsed.subject == "Re: Staff SRE at Acme"
    assert parsed.references[-1] == "<ABC@example.org>"
    assert parsed.headers[KEY_HEADER.lower()] == "abc@example.org"
    assert parsed.text.startswith("Hi Priya,")


def test_an_odd_sender_address_still_gives_a_valid_header() -> None:
    _, msg = reply(original(from_addr='"odd local"@example.org', from_name=""))
    assert "example.org" in str(msg["To"])


def test_find_header_value() -> None:
    raw, _ = reply(original())
    assert find_header_value(raw, "x-recruiter-key") == "abc@example.org"
    assert find_header_value(raw, "Subject") == "Re: Staff SRE at Acme"
    assert find_header_value(raw, "X-Missing") is None
    assert find_header_value(b"", "Subject") is None
    assert find_header_value(b"\xff\xfe garbage", "Subject") is None
    assert find_header_value(b"Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\n", "subject") == "café"


def test_a_long_key_stays_on_one_header_line() -> None:
    key = "db9pr04mb8412a1c3e5f6@db9pr04mb8412.eurprd04.prod.outlook.example"
    raw = build_reply(original(), from_addr="alex@example.net", from_name="Alex", body="x", key=key, date=WHEN)
    assert f"\r\n{KEY_HEADER}: {key}\r\n".encode() in raw
    assert find_header_value(raw, KEY_HEADER) == key
