"""Property-based tests of the parsing entry point: any bytes in, a defined outcome out."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recruiter.errors import UnparseableMail
from recruiter.ingest.describe import describe
from recruiter.mail.parse import ParsedMail, parse_message
from recruiter.reply.compose import KEY_HEADER
from recruiter.reply.mailbox import _header

HEADER_NAMES = st.sampled_from(["From", "To", "Subject", "Date", "Message-ID", "Content-Type",
                                "Content-Transfer-Encoding", "References", "List-Id", "Auto-Submitted"])
HEADER_VALUES = st.one_of(
    st.text(max_size=80),
    st.sampled_from([
        "=?utf-8?B?broken", "=?x-unknown?Q?caf=E9?=", "multipart/mixed; boundary=\"b\"",
        "text/plain; charset=x-made-up", "base64", "quoted-printable", "<a@b> <c@d", "Mon, 99 Foo 2026",
        "text/html; charset=utf-16", "message/rfc822",
    ]),
)
BODIES = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--", b"=ZZ=\r\n", b"!!!notbase64",
                     "<html><script>x</script><p style='display:none'>hidden</p>\u200bhi</html>".encode()]),
)


@st.composite
def mails(draw: st.DrawFn) -> bytes:
    headers = draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=8))
    head = b"".join(f"{name}: {value}".encode("utf-8", "surrogatepass") + b"\r\n" for name, value in headers)
    return head + b"\r\n" + draw(BODIES)


def check_outcome(raw: bytes) -> None:
    try:
        mail = parse_message(raw, max_text_chars=500)
    except UnparseableMail:
        return
    assert isinstance(mail, ParsedMail)
    assert mail.key and len(mail.text) <= 501
    assert "\u200b" not in mail.text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mails())
def test_any_mail_shaped_bytes_parse_or_are_unparseable(raw: bytes) -> None:
    check_outcome(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_parse_or_are_unparseable(raw: bytes) -> None:
    check_outcome(raw)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1000))
def test_ingest_always_gives_a_storable_row_with_a_stable_key(raw: bytes) -> None:
    first, second = describe(raw, mailbox="me"), describe(raw, mailbox="spam")
    assert first.key == second.key and first.key
    assert first.raw == raw


_IDS = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="<>"), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(inner=_IDS, before=_IDS, junk=st.binary(max_size=300))
def test_a_draft_key_matches_only_itself_whatever_the_header_block(inner: str, before: str, junk: bytes) -> None:
    """The exact-key check the one-tap Send relies on, on headers fetched from the server: a key that
    contains ours (SEARCH HEADER's substring match finds it) never reads as ours, and no fetched
    header block, however mangled, makes the check raise."""
    ours, theirs = f"<{inner}@x>", f"<{before}{inner}@x>"
    raw = junk + f"\r\n{KEY_HEADER}: {theirs}\r\nSubject: s\r\n\r\n".encode()
    assert _header(raw, KEY_HEADER) != ours
    _header(junk, KEY_HEADER)  # never raises
    clean = f"{KEY_HEADER}: {ours}\r\nSubject: s\r\n\r\n".encode()
    assert _header(clean, KEY_HEADER) == ours
