"""Drafts and Sent are found, not assumed (issue 14, point 4), against Cyrus: by SPECIAL-USE when the server
offers it (Cyrus shows the flags only when asked), else by the usual names in the personal namespace; a
mailbox with neither is said once at start-up, naming the variable to set, and is not ready — mail waits
for the fix without burning attempts instead of failing against a folder that does not exist."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx

from recruiter.reply.compose import KEY_HEADER
from recruiter.reply.drafts import ImapDrafts
from recruiter.reply.mailbox import ImapMailbox
from recruiter.settings import settings_from
from tests.mailfactory import crlf, make_mail
from tests.servers.cyrus import Cyrus
from tests.servers.dovecot import ImapUser
from tests.servers.fake_telegram import FakeTelegram
from tests.support.poll import wait_for
from tests.support.service import Service, alerts, cli, run_env, stored


def cyrus_user(cyrus: Cyrus, folders: tuple[str | tuple[str, str], ...]) -> ImapUser:
    user, password = f"u{secrets.token_hex(6)}@example.org", secrets.token_hex(8)
    cyrus.add_user(user, password, folders=folders)
    return ImapUser(user, password, cyrus.host, cyrus.port)


async def test_folders_by_special_use_else_by_their_usual_names(
    tmp_path: Path, cyrus_server: Cyrus, fake_telegram: FakeTelegram,
) -> None:
    # Special-use flags on names nobody would guess; and a plain "Draft" / "Sent Items" without flags.
    flagged = cyrus_user(cyrus_server, (("Mes brouillons", "\\Drafts"), ("Envoyes", "\\Sent"), ("Drafts", "")))
    plain = cyrus_user(cyrus_server, ("Draft", "Sent Items"))
    for user, drafts, sent in ((flagged, "Mes brouillons", "Envoyes"), (plain, "Draft", "Sent Items")):
        mb = settings_from(run_env(tmp_path, user, fake_telegram)).mailboxes[0]
        sink = ImapDrafts(mb, timeout=5)
        try:
            ref = await sink.append(crlf(make_mail(headers={KEY_HEADER: f"k-{secrets.token_hex(3)}@x.example"})))
        finally:
            await sink.aclose()
        assert ref.startswith(f"me:{drafts}:") and len(cyrus_server.messages(user.user, drafts)) == 1
        assert await ImapMailbox(mb, timeout=5).append_sent(crlf(make_mail()), "<s@x.example>") == f"{sent}:1"


def test_a_mailbox_without_drafts_is_said_once_and_not_ready(
    tmp_path: Path, cyrus_server: Cyrus, fake_telegram: FakeTelegram,
) -> None:
    user = cyrus_user(cyrus_server, ())
    env = run_env(tmp_path, user, fake_telegram)
    assert cli(env, tmp_path, "migrate").returncode == 0
    service = Service(env, tmp_path)
    base = f"http://127.0.0.1:{env['HTTP_PORT']}"
    try:
        wait_for(lambda: service.events("imap.connected"), what="watcher connected")
        for i in range(3):
            cyrus_server.append(user.user, make_mail(subject=f"Staff SRE role #{i} at Acme"))
        wait_for(lambda: len(stored(env, tmp_path)) == 3, what="three mails stored")
        wait_for(lambda: alerts(fake_telegram), what="the alert")
        ready = wait_for(lambda: (r := httpx.get(f"{base}/readyz", timeout=5)).status_code == 503 and r,
                         what="not ready")
        check = ready.json()["checks"]["imap:me"]
        assert check["ok"] is False and "IMAP_ME_DRAFTS" in check["last_error"]
        rows = stored(env, tmp_path)
        assert all(r["state"] in ("pending", "retry_wait") and r["attempts"] == 0 for r in rows), [
            (r["state"], r["stage"], r["attempts"], r["last_error"]) for r in rows]
    finally:
        service.stop()
    missing = service.events("imap.folder_missing")
    assert [e["flag"] for e in missing] == ["\\Drafts", "\\Sent"]  # once each, at start-up
    assert "IMAP_ME_DRAFTS" in missing[0]["error"] and "IMAP_ME_SENT" in missing[1]["error"]
    [alert] = alerts(fake_telegram)
    assert "IMAP_ME_DRAFTS" in alert, alert
    assert len(cyrus_server.messages(user.user)) == 3 and cyrus_server.messages(user.user, "INBOX")
