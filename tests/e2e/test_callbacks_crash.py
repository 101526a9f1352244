"""From the outside: `recruiter run` is killed with SIGKILL while the SMTP server holds the reply's DATA
unanswered; after a restart the same link is tapped again. No second SMTP message may ever leave, and
the page must say plainly that the reply may have been sent and where to check.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import httpx
import pytest

from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, ImapUser, free_port
from tests.servers.fake_llm import FakeLLM
from tests.servers.fake_telegram import FakeTelegram
from tests.servers.smtp import SmtpSink
from tests.support.poll import wait_for
from tests.support.service import Service, cli, service_env

pytestmark = pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning")


def start(env: dict[str, str], cwd: Path) -> Service:
    service = Service(env, cwd)
    wait_for(lambda: service.events("imap.connected") and service.events("http.listening"), what="service up")
    return service


def tap(url: str) -> httpx.Response:
    return httpx.get(url, timeout=30)


def test_kill_9_mid_send_never_sends_twice(
    tmp_path: Path, db_url: str, dovecot: Dovecot, imap_user: ImapUser, fake_llm: FakeLLM,
    fake_telegram: FakeTelegram, smtp_sink: SmtpSink,
) -> None:
    env = service_env(tmp_path, db_url, imap_user, fake_llm, fake_telegram)
    for name in ("LLAMA_SWAP_URL", "LLAMA_SWAP_MODEL"):  # the rules tier triages: no LLM needed here
        env.pop(name)
    port = free_port()
    env.update({
        "HTTP_PORT": str(port), "CALLBACK_BASE_URL": f"http://127.0.0.1:{port}",
        "SMTP_HOST": smtp_sink.host, "SMTP_PORT": str(smtp_sink.port), "SMTP_TLS": "starttls",
        "SMTP_USER": smtp_sink.user, "SMTP_PASSWORD": smtp_sink.password, "SMTP_CA_FILE": str(smtp_sink.cert_file),
        "SMTP_FROM_ADDR": imap_user.user, "SMTP_TIMEOUT_SECONDS": "60", "LEASE_SECONDS": "5",
    })
    assert cli(env, tmp_path, "migrate").returncode == 0
    service = start(env, tmp_path)
    try:
        dovecot.append(imap_user.user, make_mail(to=imap_user.user))
        [card] = wait_for(fake_telegram.messages, timeout=60, what="the card")
        send = card["reply_markup"]["inline_keyboard"][0][0]["url"]
        assert send.startswith(f"http://127.0.0.1:{port}/cb/send?")

        smtp_sink.stalled.set()
        first: list[object] = []
        tapper = threading.Thread(target=lambda: first.append(_try(send)), daemon=True)
        tapper.start()
        wait_for(lambda: smtp_sink.data_received, what="the reply's data to reach the SMTP server")
        service.proc.send_signal(signal.SIGKILL)
        service.proc.wait(timeout=10)
        tapper.join(timeout=10)
        assert first and isinstance(first[0], httpx.HTTPError)  # the phone saw the connection drop
        smtp_sink.stalled.clear()  # the server now answers 250 into a dead connection

        service = start(env, tmp_path)
        # Until the dead process's claim expires (LEASE_SECONDS) a tap says "in progress" and does nothing.
        response = wait_for(lambda: (r := tap(send)).status_code != 409 and r, timeout=30, what="the claim to expire")
        assert response.status_code == 200, response.text
        assert "May have been sent" in response.text and "will not be sent again" in response.text
        assert "Sent folder" in response.text and smtp_sink.host in response.text
        again = tap(send)
        assert again.status_code == 200 and "May have been sent" in again.text
        assert len(smtp_sink.data_received) == 1  # never a second SMTP transaction
        assert len(dovecot.messages(imap_user.user, "Drafts")) == 1  # kept: it may not have gone out
        assert dovecot.messages(imap_user.user, "Sent") == []
        assert service.events("action.uncertain")
    finally:
        smtp_sink.stalled.clear()
        service.stop()


def _try(url: str) -> object:
    try:
        return tap(url)
    except httpx.HTTPError as exc:
        return exc
