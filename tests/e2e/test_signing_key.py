"""CALLBACK_SIGNING_KEY: the card's links are signed with a key of their own, so whatever may read `/api`
(with WEBHOOK_BEARER_TOKEN) cannot mint a Send link. Unset, the bearer signs them as before, and the
service says so once at start-up. Once the key is set, links signed with the bearer stop working."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

from recruiter.notify.links import sign_link, verify_link
from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, ImapUser, free_port
from tests.servers.fake_llm import FakeLLM
from tests.servers.fake_telegram import FakeTelegram
from tests.support.poll import wait_for
from tests.support.service import cli, finished, service_env, start

BEARER = "crash-secret-1"
KEY = "a-separate-link-signing-key-0123456789"


def _world(tmp_path: Path, imap_user: ImapUser, fake_llm: FakeLLM, fake_telegram: FakeTelegram,
           **extra: str) -> dict[str, Any]:
    env = service_env(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'r.db'}", imap_user, fake_llm, fake_telegram)
    port = free_port()
    env.update({"HTTP_PORT": str(port), "CALLBACK_BASE_URL": f"http://127.0.0.1:{port}", **extra})
    assert cli(env, tmp_path, "migrate").returncode == 0
    return {"env": env, "cwd": tmp_path, "user": imap_user, "port": port}


def _send_link(fake_telegram: FakeTelegram) -> str:
    [card] = [m for m in fake_telegram.messages() if "reply_markup" in m]
    return str(card["reply_markup"]["inline_keyboard"][0][0]["url"])


def test_a_separate_key_signs_the_links_and_the_bearer_cannot(
    tmp_path: Path, dovecot: Dovecot, imap_user: ImapUser, fake_llm: FakeLLM, fake_telegram: FakeTelegram,
) -> None:
    world = _world(tmp_path, imap_user, fake_llm, fake_telegram, CALLBACK_SIGNING_KEY=KEY)
    service = start(world)
    try:
        dovecot.append(imap_user.user, make_mail(subject="Recruiting: Staff role at Keyed"))
        wait_for(lambda: finished(world["env"], world["cwd"], 1), timeout=30, what="the card")
        link = urlparse(_send_link(fake_telegram))
        query = {k: v[0] for k, v in parse_qs(link.query).items()}
        message, expires, sig = int(query["m"]), int(query["exp"]), query["sig"]
        assert verify_link(KEY, "send", message, expires, sig, now=expires - 60)
        assert not verify_link(BEARER, "send", message, expires, sig, now=expires - 60)

        base = f"http://127.0.0.1:{world['port']}"
        minted = sign_link(base, BEARER, "ignore", message, expires)  # what an /api client could forge
        assert httpx.get(minted, timeout=10).status_code == 403
        api = httpx.get(f"{base}/api/messages", headers={"Authorization": f"Bearer {BEARER}"}, timeout=10)
        assert api.status_code == 200  # the bearer still opens /api
        assert httpx.get(f"{base}/api/messages", headers={"Authorization": f"Bearer {KEY}"},
                         timeout=10).status_code == 401  # and the link key does not
        assert httpx.get(sign_link(base, KEY, "ignore", message, expires), timeout=10).status_code == 200
        assert not service.events("links.signed_with_bearer")
    finally:
        assert service.stop() == 0
    assert KEY not in "".join(service.lines)  # never logged


def test_without_the_key_the_bearer_signs_and_the_start_says_so_once(
    tmp_path: Path, dovecot: Dovecot, imap_user: ImapUser, fake_llm: FakeLLM, fake_telegram: FakeTelegram,
) -> None:
    world = _world(tmp_path, imap_user, fake_llm, fake_telegram)
    service = start(world)
    try:
        dovecot.append(imap_user.user, make_mail(subject="Recruiting: Staff role at Legacy"))
        wait_for(lambda: finished(world["env"], world["cwd"], 1), timeout=30, what="the card")
        link = urlparse(_send_link(fake_telegram))
        query = {k: v[0] for k, v in parse_qs(link.query).items()}
        assert verify_link(BEARER, "send", int(query["m"]), int(query["exp"]), query["sig"],
                           now=int(query["exp"]) - 60)
    finally:
        assert service.stop() == 0
    assert len(service.events("links.signed_with_bearer")) == 1
