"""Builds test mail as raw bytes, the way other mail programs would write it."""

from __future__ import annotations

import random
import secrets
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid


def make_mail(
    *,
    subject: str = "Staff SRE role at Acme",
    body: str = "Hi Alex,\n\nI'm a recruiter at Acme and we're hiring a Staff SRE. Would you be open to a chat?\n",
    sender: str = "Jane Recruiter <jane@acme-talent.example>",
    to: str = "me@example.org",
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
    html: str | None = None,
) -> bytes:
    """A plain (or HTML-only) mail; ``headers`` adds or replaces header fields."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id or make_msgid(idstring=secrets.token_hex(4), domain="test.example")
    for name, value in (headers or {}).items():
        del msg[name]
        msg[name] = value
    if html is not None:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(body)
    return bytes(msg)


def crlf(raw: bytes) -> bytes:
    """IMAP wants CRLF line ends; Cyrus refuses an APPEND with bare LFs (Dovecot accepts them)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def damage(raw: bytes, rng: random.Random) -> bytes:
    """``raw`` with 1-20 random byte flips, insertions, deletions and MIME-ish fragments (seeded by ``rng``)."""
    data = bytearray(raw)
    for _ in range(rng.randint(1, 20)):
        choice = rng.random()
        position = rng.randrange(len(data) + 1)
        if choice < 0.4 and data:
            data[min(position, len(data) - 1)] = rng.randrange(256)
        elif choice < 0.7:
            data[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif choice < 0.85:
            del data[position:position + rng.randint(1, 50)]
        else:
            data[position:position] = rng.choice([b"=?utf-8?q?", b"?=", b"\n\n", b"--", b"boundary=",
                                                  b"Content-Type: multipart/mixed", b"=\n", b"charset=x"])
    return bytes(data)
