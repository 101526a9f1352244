"""SmtpSender against the real aiosmtpd sink (STARTTLS and implicit TLS, self-signed CA, AUTH), the SMTP
settings, the draft preparation, and the card edit on the loopback Bot API."""

from __future__ import annotations

import email
from collections.abc import Iterator
from email import policy
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from recruiter.errors import ConfigError, DependencyUnavailable, MaybeSent, PermanentError
from recruiter.mail.smtp import SmtpSender, SmtpSettings
from recruiter.notify.telegram import Button, TelegramNotifier
from recruiter.reply.outgoing import prepare
from recruiter.settings import settings_from
from tests.servers.fake_telegram import FakeTelegram
from tests.servers.smtp import SmtpSink

pytestmark = [
    pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning"),
    # aiosmtpd counts only STARTTLS as TLS; the implicit-TLS sink is encrypted from the first byte.
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]
RAW = b"From: Alex <owner@example.org>\r\nTo: jane@acme.example\r\nSubject: Re: role\r\n\r\nHello\r\n"


def sender(sink: SmtpSink, **changes: object) -> SmtpSender:
    values: dict[str, object] = {
        "host": sink.host, "port": sink.port, "tls": sink.tls, "user": sink.user, "password": sink.password,
        "ca_file": sink.cert_file, "timeout": 3.0,
    }
    values.update(changes)
    return SmtpSender(SmtpSettings(**values))  # type: ignore[arg-type]


@pytest.fixture
def ssl_sink(smtp_certificate: tuple[Path, Path]) -> Iterator[SmtpSink]:
    sink = SmtpSink(*smtp_certificate, tls="ssl")
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.mark.parametrize("fixture", ["smtp_sink", "ssl_sink"])
async def test_sends_over_tls_with_a_private_ca_and_auth(fixture: str, request: pytest.FixtureRequest) -> None:
    sink: SmtpSink = request.getfixturevalue(fixture)
    answer = await sender(sink).send(RAW, sender="owner@example.org", recipients=["jane@acme.example"])
    assert answer.startswith("250")
    [received] = sink.messages
    assert received.mail_from == "owner@example.org" and received.rcpt_tos == ("jane@acme.example",)
    assert received.content.replace(b"\r\n", b"\n") == RAW.replace(b"\r\n", b"\n")
    assert sink.logins == [sink.user]


async def test_an_untrusted_certificate_is_refused(smtp_sink: SmtpSink) -> None:
    with pytest.raises(DependencyUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        await sender(smtp_sink, ca_file=None).send(RAW, sender="o@example.org", recipients=["j@acme.example"])
    assert smtp_sink.data_received == []


async def test_failures_are_classified_and_the_password_never_shows(smtp_sink: SmtpSink) -> None:
    wrong = "wrong-password-7f3a"
    with capture_logs() as logs:
        with pytest.raises(PermanentError) as refused_login:
            await sender(smtp_sink, password=wrong).send(RAW, sender="o@example.org", recipients=["j@acme.example"])
        smtp_sink.refuse_recipients = True
        with pytest.raises(PermanentError) as refused_rcpt:
            await sender(smtp_sink).send(RAW, sender="o@example.org", recipients=["j@acme.example"])
        smtp_sink.refuse_recipients = False
        smtp_sink.stalled.set()
        with pytest.raises(MaybeSent):  # the data went out, the answer did not come back
            await sender(smtp_sink).send(RAW, sender="o@example.org", recipients=["j@acme.example"])
        smtp_sink.stop()
        with pytest.raises(DependencyUnavailable) as down:
            await sender(smtp_sink).send(RAW, sender="o@example.org", recipients=["j@acme.example"])
    assert not isinstance(down.value, MaybeSent)
    assert refused_rcpt.value.status == 550 and refused_rcpt.value.reason == "smtp_recipient_refused"
    assert refused_login.value.status == 535
    for text in [str(refused_login.value), repr(sender(smtp_sink, password=wrong)), str(logs),
                 repr(SmtpSettings(host="h", password=wrong))]:
        assert wrong not in text and smtp_sink.password not in text
    assert len(smtp_sink.data_received) == 1


def test_smtp_settings(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = settings_from({"SMTP_HOST": "smtp.example.org", "SMTP_USER": "me", "SMTP_PASSWORD": "s3cret-pw",
                              "SMTP_CA_FILE": str(ca), "SMTP_FROM_ADDR": "me@example.org",
                              "IMAP_MAILBOXES": "me", "IMAP_ME_HOST": "h", "IMAP_ME_USER": "me@example.org",
                              "IMAP_ME_PASS": "p4ss", "IMAP_ME_SENT": "Gesendet"})
    assert (settings.smtp_port, settings.smtp_tls, settings.smtp_ca_file) == (587, "starttls", ca)
    assert "s3cret-pw" in settings.secrets and "s3cret-pw" not in repr(settings)
    assert settings.mailboxes[0].sent == "Gesendet"
    assert settings_from({"SMTP_HOST": "h", "SMTP_TLS": "ssl"}).smtp_port == 465
    assert settings_from({}).smtp_host == "" and settings_from({}).mailboxes == ()
    for values, variable in (({"SMTP_TLS": "tls"}, "SMTP_TLS"), ({"SMTP_USER": "me"}, "SMTP_PASSWORD"),
                             ({"SMTP_CA_FILE": str(tmp_path / "missing.pem")}, "SMTP_CA_FILE"),
                             ({"SMTP_PORT": "x"}, "SMTP_PORT")):
        with pytest.raises(ConfigError) as error:
            settings_from({"SMTP_HOST": "h", **values})
        assert error.value.variable == variable


def test_prepare_strips_our_header_and_sets_date_and_message_id() -> None:
    draft = (b"From: Alex <owner@example.org>\r\nTo: Jane <jane@acme.example>, bob@acme.example\r\n"
             b"Cc: hr@acme.example\r\nBcc: me@example.org\r\nSubject: Re: role\r\n"
             b"Date: Mon, 1 Jan 2001 00:00:00 +0000\r\nIn-Reply-To: <orig@acme.example>\r\n"
             b"X-Recruiter-Key:\r\n orig@acme.example\r\n\r\nBody stays as it is.\r\n")
    out = prepare(draft, from_addr="owner@example.org")
    assert out.recipients == ("jane@acme.example", "bob@acme.example", "hr@acme.example", "me@example.org")
    assert out.sender == "owner@example.org" and out.message_id.startswith("<")
    wire = email.message_from_bytes(out.wire, policy=policy.default)
    assert "X-Recruiter-Key" not in wire and "Bcc" not in wire and "2001" not in wire["Date"]
    assert wire["Message-ID"] == out.message_id and wire["In-Reply-To"] == "<orig@acme.example>"
    assert out.wire.endswith(b"\r\n\r\nBody stays as it is.\r\n") and b"Bcc: me@example.org" in out.raw
    with pytest.raises(ValueError, match="no recipient"):
        prepare(b"From: a@b.example\r\nSubject: x\r\n\r\nbody\r\n", from_addr="a@b.example")
    kept = prepare(b"To: j@acme.example\r\nMessage-ID: <mine@x.example>\r\n\r\nb\r\n", from_addr="o@example.org",
                   from_name="Alex")
    assert kept.message_id == "<mine@x.example>" and kept.raw.startswith(b"From: Alex <o@example.org>\r\n")


async def test_edit_card_replaces_the_text_and_removes_the_buttons(fake_telegram: FakeTelegram) -> None:
    notifier = TelegramNotifier(fake_telegram.token, "4242", base_url=fake_telegram.base_url, timeout=5)
    try:
        ref = await notifier.send_card("<b>card</b>", [Button("Send", "https://rr.example.org/cb/send?m=1")])
        await notifier.edit_card(ref, "✅ <b>Sent</b> to jane@acme.example")
        with pytest.raises(PermanentError):
            await notifier.edit_card("not-a-ref", "x")
    finally:
        await notifier.aclose()
    [message] = fake_telegram.chats["4242"].values()
    assert message["text"] == "✅ Sent to jane@acme.example" and "reply_markup" not in message
