"""A `recruiter run` subprocess and the CLI calls a test makes around it (shared by end-to-end tests)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.servers.dovecot import ImapUser, free_port
from tests.servers.fake_llm import FakeLLM
from tests.servers.fake_telegram import FakeTelegram
from tests.support.poll import wait_for


class Service:
    """A `recruiter run` subprocess with its log lines (JSON) collected."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "recruiter", "run"], env=env, cwd=cwd,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def events(self, name: str) -> list[dict[str, Any]]:
        """The log records whose ``event`` is ``name``."""
        found = []
        for line in list(self.lines):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("event") == name:
                found.append(record)
        return found

    def stop(self) -> int:
        """SIGTERM, then wait (kill after 30 s)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._reader.join(timeout=5)
        if code != 0:
            print(f"--- the service exited with {code}; its last lines ---\n" + "".join(self.lines[-40:]))
        return code


def clean_env() -> dict[str, str]:
    """The environment without any of the service's variables."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR")
    return {k: v for k, v in os.environ.items() if k in keep}


def recruiter(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`recruiter ARGS` in ``cwd`` with only ``env`` on top of :func:`clean_env`."""
    return subprocess.run([sys.executable, "-m", "recruiter", *args], cwd=cwd, env={**clean_env(), **env},
                          capture_output=True, text=True, timeout=120, check=False)


def cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`recruiter ARGS` in ``cwd`` with ``env``."""
    return subprocess.run([sys.executable, "-m", "recruiter", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)


def stored(env: dict[str, str], cwd: Path) -> list[dict[str, Any]]:
    """Every stored message, as `recruiter messages --json` lists them."""
    result = cli(env, cwd, "messages", "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def finished(env: dict[str, str], cwd: Path, count: int) -> list[dict[str, Any]] | None:
    """The stored messages once at least ``count`` exist and every one is done, skipped or dead."""
    rows = stored(env, cwd)
    ended = [r for r in rows if r["state"] in {"done", "skipped", "dead"}]
    return rows if len(rows) >= count and len(ended) == len(rows) else None


def run_env(tmp_path: Path, user: ImapUser, telegram: FakeTelegram, **llm: str) -> dict[str, str]:
    """The environment of a `recruiter run` on one Dovecot mailbox, SQLite, the fake Bot API and fast
    timings; ``llm`` sets the LLM variables (none of the caller's own LLM settings leak in)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("IMAP_", "LLAMA_", "GPT_MINI_", "TELEGRAM_", "CALDAV_", "OPENAI_"))}
    env.update({
        "IMAP_MAILBOXES": "me", "IMAP_ME_HOST": user.host, "IMAP_ME_PORT": str(user.port),
        "IMAP_ME_USER": user.user, "IMAP_ME_PASS": user.password, "IMAP_ME_TLS": "none",
        "DB_CONNECTION_STRING": f"sqlite+aiosqlite:///{tmp_path / 'recruiter.db'}",
        "TELEGRAM_BOT_TOKEN": telegram.token, "TELEGRAM_CHAT_ID": "7",
        "TELEGRAM_API_BASE_URL": telegram.base_url, "WEBHOOK_BEARER_TOKEN": "relay-e2e-secret-1",
        "ICS_DIR": str(tmp_path / "events"),
        "LOG_FORMAT": "json", "POLL_SECONDS": "0.3", "LEASE_SECONDS": "10", "RETRY_BASE_SECONDS": "0.5",
        "RETRY_MAX_SECONDS": "2", "IMAP_TIMEOUT_SECONDS": "5", "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(free_port()),
    })
    env.update(llm)
    return env


def alerts(telegram: FakeTelegram) -> list[str]:
    """Messages to the owner without buttons (alerts, recovery messages), in order."""
    return [m["text"] for m in telegram.messages() if not m.get("reply_markup")]


def cards(telegram: FakeTelegram) -> list[dict[str, Any]]:
    """Messages with buttons: the cards."""
    return [m for m in telegram.messages() if m.get("reply_markup")]


def service_env(
    tmp_path: Path, db_url: str, imap_user: ImapUser, fake_llm: FakeLLM, fake_telegram: FakeTelegram,
) -> dict[str, str]:
    """The environment of a `recruiter run` on one Dovecot mailbox, the fake LLM and Bot API, fast timings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAP_", "LLAMA_", "TELEGRAM_", "CALDAV_"))}
    env.update({
        "IMAP_MAILBOXES": "me", "IMAP_ME_HOST": imap_user.host, "IMAP_ME_PORT": str(imap_user.port),
        "IMAP_ME_USER": imap_user.user, "IMAP_ME_PASS": imap_user.password, "IMAP_ME_TLS": "none",
        "DB_CONNECTION_STRING": db_url,
        "LLAMA_SWAP_URL": fake_llm.url, "LLAMA_SWAP_MODEL": "qwen3-8b",
        "TELEGRAM_BOT_TOKEN": fake_telegram.token, "TELEGRAM_CHAT_ID": "7",
        "TELEGRAM_API_BASE_URL": fake_telegram.base_url, "WEBHOOK_BEARER_TOKEN": "crash-secret-1",
        "ICS_DIR": str(tmp_path / "events"),
        "LOG_FORMAT": "json", "POLL_SECONDS": "0.3", "LEASE_SECONDS": "5", "RETRY_BASE_SECONDS": "0.5",
        "RETRY_MAX_SECONDS": "2", "IMAP_TIMEOUT_SECONDS": "5", "HTTP_PORT": "0", "HTTP_HOST": "127.0.0.1",
    })
    return env


def start(setup: dict[str, Any]) -> Service:
    """`recruiter run` for the ``setup`` fixture (tests/e2e/conftest.py), once its watcher is connected."""
    service = Service(setup["env"], setup["cwd"])
    wait_for(lambda: service.events("imap.connected"), what="watcher connected")
    return service


def card_ids(fake_telegram: FakeTelegram) -> Counter[int]:
    """How many cards each stored message got (messages without buttons — alerts — are not cards)."""
    ids: Counter[int] = Counter()
    for card in fake_telegram.messages():
        if "reply_markup" not in card:
            continue
        send = card["reply_markup"]["inline_keyboard"][0][0]["url"]
        ids[int(parse_qs(urlparse(send).query)["m"][0])] += 1
    return ids
