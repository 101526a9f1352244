"""A 30 MB mail through `recruiter run` and a real Dovecot: stored whole, processed from its headers and
first text part only, announced with a note that it was large, and the service's memory stays sane."""

from __future__ import annotations

import asyncio
import email
import io
import json
import os
from email.message import EmailMessage
from pathlib import Path

import pytest

from recruiter.app import process_paths
from recruiter.errors import ConfigError
from recruiter.settings import settings_from
from recruiter.store.migrate import upgrade_head
from recruiter.store.repo import Store
from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, ImapUser
from tests.servers.fake_llm import FakeLLM
from tests.servers.fake_telegram import FakeTelegram
from tests.support.poll import wait_for
from tests.support.service import Service, cli, finished, service_env

MB = 1024 * 1024


def large_mail(size: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Jane Recruiter <jane@acme-talent.example>"
    msg["To"] = "me@example.org"
    msg["Subject"] = "Staff SRE role at Acme: portfolio and job pack attached"
    msg["Message-ID"] = "<large-30mb@acme-talent.example>"
    msg.set_content("Hi Alex,\n\nI'm a recruiter at Acme and we're hiring a Staff SRE. The job pack is attached.\n")
    msg.add_attachment(os.urandom(size * 3 // 4), maintype="application", subtype="zip", filename="pack.zip")
    return bytes(msg)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_30_mb_mail_is_stored_processed_and_announced_as_large(
    tmp_path: Path, db_url: str, dovecot: Dovecot, imap_user: ImapUser, fake_llm: FakeLLM,
    fake_telegram: FakeTelegram,
) -> None:
    env = service_env(tmp_path, db_url, imap_user, fake_llm, fake_telegram)
    assert cli(env, tmp_path, "migrate").returncode == 0
    raw = large_mail(30 * MB)
    assert len(raw) > 30 * MB
    service = Service(env, tmp_path)
    try:
        wait_for(lambda: service.events("imap.connected"), what="watcher connected")
        baseline = peak_rss_mb(service.proc.pid)
        dovecot.append(imap_user.user, raw)
        dovecot.append(imap_user.user, make_mail(subject="Small one after the big one"))
        rows = wait_for(lambda: finished(env, tmp_path, 2), timeout=120, what="both mails finished")
        peak = peak_rss_mb(service.proc.pid)
    finally:
        code = service.stop()
        print("".join(service.lines[-40:]))
    assert code == 0

    big = next(r for r in rows if r["message_id"] == "<large-30mb@acme-talent.example>")
    assert big["state"] == "done" and big["is_recruiter"] is True
    assert {r["state"] for r in rows} == {"done"}

    # The whole mail was stored, not just the part that was read.
    assert asyncio.run(_stored_raw(db_url, int(big["id"]))) == raw.replace(b"\n", b"\r\n")  # IMAP: CRLF
    # Only the first text part reached the model: no attachment bytes in any prompt.
    [triage] = [r for r in fake_llm.triage_requests() if "job pack" in json.dumps(r)]
    assert len(json.dumps(triage)) < 20_000

    # One card per mail; the big one says it was large, the small one does not.
    cards = [c["text"] for c in fake_telegram.messages()]
    assert len(cards) == 2
    [big_card] = [text for text in cards if "job pack" in text]
    [small_card] = [text for text in cards if "Small one" in text]
    assert "large mail" in big_card and "MAX_MESSAGE_BYTES" in big_card
    assert "large mail" not in small_card

    # The draft is threaded to the big mail without carrying its attachment.
    assert len(_draft_for(dovecot, imap_user)[2]) < 100_000
    # Memory: the raw mail is held a few times over (IMAP literal, store, parse of the first MB), not
    # decoded whole; 30 MB in must not make a process of many hundreds of MB.
    print(f"peak RSS of `recruiter run`: {baseline:.0f} MB before, {peak:.0f} MB with a 30 MB mail")
    assert peak - baseline < 350, f"peak RSS {baseline:.0f} MB -> {peak:.0f} MB"


def _draft_for(dovecot: Dovecot, user: ImapUser) -> tuple[int, set[str], bytes]:
    for row in dovecot.messages(user.user, "Drafts"):
        if email.message_from_bytes(row[2])["In-Reply-To"] == "<large-30mb@acme-talent.example>":
            return row
    raise AssertionError("no draft for the large mail")


async def _stored_raw(db_url: str, message_id: int) -> bytes:
    store = Store.from_url(db_url)
    try:
        row = await store.get(message_id, with_raw=True)
        assert row is not None
        return bytes(row.raw)
    finally:
        await store.aclose()


def test_max_message_bytes_setting() -> None:
    assert settings_from({}).max_message_bytes == 26_214_400
    assert settings_from({"MAX_MESSAGE_BYTES": "2048"}).max_message_bytes == 2048
    for bad in ("lots", "12"):
        with pytest.raises(ConfigError, match="MAX_MESSAGE_BYTES"):
            settings_from({"MAX_MESSAGE_BYTES": bad})


async def test_the_setting_reaches_the_parser_through_the_worker(tmp_path: Path, db_url: str) -> None:
    """MAX_MESSAGE_BYTES=200000: a 600 kB mail is read from its first text part only and its card says so;
    a mail under the cap is read whole, attachments and all, and its card says nothing."""
    big, small = tmp_path / "big.eml", tmp_path / "small.eml"
    big.write_bytes(large_mail(600 * 1024))
    small.write_bytes(make_mail(subject="Small recruiter mail", message_id="<small@test.example>"))
    settings = settings_from({"DB_CONNECTION_STRING": db_url, "MAX_MESSAGE_BYTES": "200000",
                              "DRAFTS_DIR": str(tmp_path / "drafts"), "ICS_DIR": str(tmp_path / "events")})
    await upgrade_head(db_url)
    out = io.StringIO()
    counts = await process_paths(settings, [big, small], stdout=out)
    assert counts.get("done") == 2, (counts, out.getvalue())
    cards = out.getvalue().split("Recruiter mail ·")[1:]
    assert len(cards) == 2
    [big_card] = [card for card in cards if "job pack" in card]
    [small_card] = [card for card in cards if "Small recruiter mail" in card]
    assert "large mail, over MAX_MESSAGE_BYTES" in big_card
    assert "large mail" not in small_card
