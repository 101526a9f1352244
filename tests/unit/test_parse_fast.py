"""The fast parsing paths: parse_headers (ingest) agrees with parse_message (worker), and the compat32
parse answers every Content-* question as policy.default did."""

from __future__ import annotations

import base64
import dataclasses
import random
from collections.abc import Iterator
from email import policy
from email.message import Message
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bench import corpus
from recruiter.errors import UnparseableMail
from recruiter.ingest.describe import describe
from recruiter.mail import parse
from recruiter.mail.parse import ParsedMail, parse_headers, parse_message
from tests.mailfactory import damage

ROOT = Path(__file__).resolve().parents[2]
BODY_FIELDS = {"text", "calendar_parts", "attachments", "signature"}


def corpora() -> Iterator[tuple[str, bytes]]:
    """Every stored mail (tests/data, samples, the labelled set), two generated backlogs, and damaged
    copies of the stored mail (no Message-ID, broken headers, unparseable)."""
    stored = [path for folder in ("tests/data", "samples", "bench/labelled")
              for path in sorted((ROOT / folder).rglob("*")) if path.suffix in (".eml", ".mbox")]
    for path in stored:
        yield path.name, path.read_bytes()
    for seed, count in ((20, 2000), (7, 500)):
        for index, (kind, raw) in enumerate(corpus.mixed(count, seed=seed)):
            yield f"mixed-{seed}-{index}-{kind}", raw
    rng = random.Random(5)
    seeds = [path.read_bytes() for path in stored]
    for index in range(400):
        yield f"damaged-{index}", damage(rng.choice(seeds), rng)


@pytest.fixture(scope="module")
def mails() -> list[tuple[str, bytes]]:
    return list(corpora())


def outcome(parser: object, raw: bytes, **kwargs: int) -> ParsedMail | str:
    try:
        return parser(raw, **kwargs)  # type: ignore[operator,no-any-return]
    except UnparseableMail as exc:
        return f"unparseable: {exc}"


def header_fields(mail: ParsedMail) -> dict[str, object]:
    return {name: value for name, value in dataclasses.asdict(mail).items() if name not in BODY_FIELDS}


def test_parse_headers_gives_the_key_and_header_fields_of_the_full_parse(mails: list[tuple[str, bytes]]) -> None:
    unparseable = without_id = 0
    for label, raw in mails:
        full, head = outcome(parse_message, raw), outcome(parse_headers, raw)
        if isinstance(full, str):
            assert head == full, label
            unparseable += 1
            continue
        assert isinstance(head, ParsedMail), label
        assert head.key == full.key, label
        assert header_fields(head) == header_fields(full), label
        assert (head.text, head.calendar_parts, head.attachments, head.signature) == ("", (), (), ""), label
        without_id += full.message_id is None
    assert unparseable and without_id  # the damaged copies cover both


def test_describe_stores_the_key_the_worker_finds(mails: list[tuple[str, bytes]]) -> None:
    for label, raw in mails[::7]:
        new, full = describe(raw, mailbox="me"), outcome(parse_message, raw)
        if isinstance(full, str):
            assert new.key.startswith("sha256:") and new.message_id is None, label
        else:
            assert (new.key, new.message_id, new.subject, new.from_addr) == (
                full.key, full.message_id, full.subject, full.from_addr), label


@pytest.mark.parametrize("newline", [b"\r\n", b"\n", b"\r"])
@pytest.mark.parametrize("blank", [b"", b" ", b"\r", b"\n"])
def test_the_header_block_ends_where_the_parser_ends_it(newline: bytes, blank: bytes) -> None:
    head = [b"From: Jane <jane@acme.example>", b"Subject: Role", b" folded", b"Message-ID: <id@x>"]
    body = [b"X-Not-A-Header: body text", b"", b"more"]
    raw = newline.join([*head, blank.strip(b" ")]) + newline + newline.join(body)
    full, head_only = outcome(parse_message, raw), outcome(parse_headers, raw)
    assert isinstance(full, ParsedMail) and isinstance(head_only, ParsedMail)
    assert header_fields(head_only) == header_fields(full)
    assert "x-not-a-header" not in head_only.headers


def test_an_oversized_mail_is_read_the_same_way_by_both() -> None:
    attachment = base64.b64encode(b"\0" * 600_000).decode()
    raw = (b"From: a@example.org\nMessage-ID: <big@x>\nContent-Type: multipart/mixed; boundary=b\n\n"
           b"--b\nContent-Type: text/plain\n\nA role.\n--b\nContent-Type: application/zip\n\n"
           + attachment.encode() + b"\n--b--\n")
    full, head = parse_message(raw, max_bytes=100_000), parse_headers(raw, max_bytes=100_000)
    assert full.truncated and head.truncated
    assert header_fields(head) == header_fields(full)


def test_html_is_not_converted_when_the_plain_part_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(_: str) -> str:
        raise AssertionError("html_to_text called")

    monkeypatch.setattr(parse, "html_to_text", fail)
    body = ("--b\nContent-Type: text/plain\n\nThe plain version of this recruiter message is here.\n"
            "--b\nContent-Type: text/html\n\n<p>The much longer HTML version of the recruiter message.</p>\n--b--\n")
    raw = b"From: a@example.org\nContent-Type: multipart/alternative; boundary=b\n\n" + body.encode()
    assert parse_message(raw).text == "The plain version of this recruiter message is here."


def attachment_mail(disposition: bytes) -> bytes:
    return (b"From: a@example.org\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n"
            b"See the attached CV.\n--b\nContent-Type: application/pdf\nContent-Disposition: " + disposition
            + b"\n\nxx\n--b--\n")


@pytest.mark.parametrize(("disposition", "name"), [
    (b'attachment; filename="=?utf-8?B?w6TDtsO8LnBkZg==?="', "äöü.pdf"),  # RFC 2047 in quotes, as mailers do
    (b"attachment; filename*=utf-8''R%C3%A9sum%C3%A9%20Jane.pdf", "Résumé Jane.pdf"),  # RFC 2231
    (b"attachment; filename*0*=utf-8''R%C3%A9; filename*1=sum.pdf", "Résum.pdf"),  # RFC 2231 continuations
    (b'attachment; filename="R\xc3\xa9sum\xc3\xa9.pdf"', "Résumé.pdf"),  # 8-bit UTF-8
    (b'attachment;\n filename="cv.pdf"', "cv.pdf"),  # folded
    (b"attachment; filename=cv.pdf (scanned)", "cv.pdf"),  # a comment
])
def test_attachment_file_names_are_decoded(disposition: bytes, name: str) -> None:
    parsed = parse_message(attachment_mail(disposition))
    assert parsed.attachments == (name,)
    assert parsed.text == "See the attached CV."


def test_junk_after_a_quoted_boundary_still_splits_the_parts() -> None:
    raw = (b'From: a@example.org\nContent-Type: multipart/alternative; boundary="b1"\x83junk\n\n'
           b"--b1\nContent-Type: text/plain; charset=utf-8\n\nThe plain part of the mail, long enough to be read.\n"
           b"--b1\nContent-Type: text/html\n\n<p>html</p>\n--b1--\n")
    assert parse_message(raw).text == "The plain part of the mail, long enough to be read."


# ---- the Content-* lookups of a compat32 parse are those of policy.default --------------------------

TOKENS = st.sampled_from(["text", "plain", "html", "multipart", "mixed", "application", "pdf", "charset", "utf-8",
                          "ISO-8859-1", "name", "filename", "boundary", "b1", "=_x", "attachment", "inline",
                          "base64", "Quoted-Printable", "format", "flowed", "x-weird"])
PARAM_VALUES = st.one_of(TOKENS, TOKENS.map(lambda t: f'"{t}"'), st.sampled_from([
    '"a b.pdf"', '"=?utf-8?q?r=C3=A9sum=C3=A9.pdf?="', '"a;b"', '""', '"x\\"y"', "utf-8''%C3%A4.pdf", '"(c)"',
    '"unterminated', "a(comment)", "\u00e9.pdf", '"b1"junk', "'q'",
]))
PARAMS = st.tuples(st.sampled_from(["", " ", "\t", "\r\n "]), TOKENS, st.sampled_from(["", "*", "*0", "*0*"]),
                   st.sampled_from(["=", " = ", ""]), PARAM_VALUES)
CONTENT_VALUES = st.one_of(
    st.tuples(TOKENS, st.sampled_from(["/", "", " / ", "//"]), TOKENS,
              st.lists(PARAMS, max_size=4), st.sampled_from(["", ";", " ", " (comment)", "; "])).map(
        lambda v: f"{v[0]}{v[1]}{v[2]}" + "".join(f";{s}{n}{star}{eq}{val}" for s, n, star, eq, val in v[3]) + v[4]),
    st.text(max_size=60),
)


def content_lookups(msg: Message) -> tuple[object, ...]:
    return (msg.get_content_type(), msg.get_content_disposition(), msg.get_filename(), msg.get_content_charset(),
            msg.get_boundary(), str(msg.get("content-transfer-encoding", "")).lower())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONTENT_VALUES, CONTENT_VALUES, st.one_of(TOKENS, CONTENT_VALUES))
@example("text/text;text=text;text=text;charset=utf-8''%C3%A4.pdf", "", "text")  # RFC 2231 without the "*"
def test_content_lookups_match_the_default_policy(ctype: str, disposition: str, cte: str) -> None:
    head = f"Content-Type: {ctype}\nContent-Disposition: {disposition}\nContent-Transfer-Encoding: {cte}\n"
    raw = head.encode("utf-8", "surrogatepass") + b"\nbody\n"
    try:
        expected: tuple[object, ...] | str = content_lookups(BytesParser(policy=policy.default).parsebytes(raw))
    except Exception as exc:  # the header registry raises on some input: so must the fast parse
        expected = type(exc).__name__
    try:
        got: tuple[object, ...] | str = content_lookups(BytesParser(policy=parse._POLICY).parsebytes(raw))
    except Exception as exc:
        got = type(exc).__name__
    assert got == expected
