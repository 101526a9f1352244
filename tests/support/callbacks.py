"""One processed recruiter mail behind the service's HTTP app: the world of the one-tap link tests
(the service's variables, the runtime, Dovecot, the SMTP sink and the loopback Bot API)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx

from recruiter.app import Runtime, build_actions, build_runtime
from recruiter.http.app import make_app
from recruiter.http.callbacks import callback_router
from recruiter.ingest.describe import describe
from recruiter.settings import Settings
from recruiter.store.migrate import upgrade_head
from tests.servers.dovecot import Dovecot, ImapUser
from tests.servers.fake_telegram import FakeTelegram
from tests.servers.smtp import SmtpSink

SECRET = "cb-secret-0123456789abcdef"


def env_for(tmp_path: Path, db_url: str, user: ImapUser, telegram: FakeTelegram, sink: SmtpSink | None,
            **extra: str) -> dict[str, str]:
    """The service's variables for one Dovecot mailbox, the fake Bot API and (optionally) the SMTP sink."""
    env = {
        "IMAP_MAILBOXES": "me", "IMAP_ME_HOST": user.host, "IMAP_ME_PORT": str(user.port),
        "IMAP_ME_USER": user.user, "IMAP_ME_PASS": user.password, "IMAP_ME_TLS": "none",
        "DB_CONNECTION_STRING": db_url, "TELEGRAM_BOT_TOKEN": telegram.token, "TELEGRAM_CHAT_ID": "4242",
        "TELEGRAM_API_BASE_URL": telegram.base_url, "WEBHOOK_BEARER_TOKEN": SECRET,
        "CALLBACK_BASE_URL": "https://rr.example.org", "ICS_DIR": str(tmp_path / "events"),
        "DRAFTS_DIR": str(tmp_path / "drafts"), "IMAP_TIMEOUT_SECONDS": "5", "LEASE_SECONDS": "5",
        "OWNER_NAME": "Alex Example",
    }
    if sink is not None:
        env.update({
            "SMTP_HOST": sink.host, "SMTP_PORT": str(sink.port), "SMTP_TLS": "starttls", "SMTP_USER": sink.user,
            "SMTP_PASSWORD": sink.password, "SMTP_CA_FILE": str(sink.cert_file), "SMTP_FROM_ADDR": user.user,
            "SMTP_FROM_NAME": "Alex Example", "SMTP_TIMEOUT_SECONDS": "5",
        })
    env.update(extra)
    return env


@dataclass
class World:
    """One processed recruiter mail with its draft in Drafts and its card on the fake Bot API."""

    settings: Settings
    runtime: Runtime
    dovecot: Dovecot
    user: ImapUser
    telegram: FakeTelegram
    sink: SmtpSink
    message_id: int
    key: str
    original: bytes
    original_uid: int
    client: httpx.AsyncClient

    def links(self) -> dict[str, str]:
        card = self.telegram.messages()[0]  # the card of this world's mail (the first one)
        buttons = card["reply_markup"]["inline_keyboard"][0]
        return {name: button["url"] for name, button in zip(("send", "decline", "ignore"), buttons, strict=True)}

    async def tap(self, url: str, client: httpx.AsyncClient | None = None) -> httpx.Response:
        parsed = urlparse(url)
        return await (client or self.client).get(f"{parsed.path}?{parsed.query}")

    def drafts(self) -> list[tuple[int, set[str], bytes]]:
        return self.dovecot.messages(self.user.user, "Drafts")

    def folder(self, name: str) -> list[tuple[int, set[str], bytes]]:
        return self.dovecot.messages(self.user.user, name)

    async def effects(self) -> dict[str, str]:
        rows = await self.runtime.store.effects_for(self.message_id)
        return {row.key.removeprefix(f"{self.key}:"): row.ref for row in rows}


def uidvalidity(dovecot: Dovecot, user: str, folder: str = "INBOX") -> int:
    client = dovecot.connect(user)
    try:
        client.select(folder, readonly=True)
        _, data = client.response("UIDVALIDITY")
        return int(data[0])
    finally:
        client.logout()


def app_for(settings: Settings, runtime: Runtime) -> httpx.AsyncClient:
    """The service's HTTP app with the /cb routes, as `recruiter run` builds it, behind an ASGI client."""
    router = callback_router(build_actions(settings, runtime.store, runtime.notifier), SECRET)
    app = make_app(runtime.store, [], runtime.llm, None, stale_seconds=60, token=SECRET, callbacks=router)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://rr.example.org")


@contextlib.asynccontextmanager
async def bare_world(settings: Settings, dovecot: Dovecot, user: ImapUser, telegram: FakeTelegram,
                     sink: SmtpSink) -> AsyncIterator[World]:
    """A World on a database at the newest schema, with no mail processed yet (``message_id``/``key`` are
    filled in by the test); the runtime is closed afterwards."""
    await upgrade_head(settings.db_url.get_secret_value())
    runtime = await build_runtime(settings)
    try:
        async with app_for(settings, runtime) as client:
            yield World(settings, runtime, dovecot, user, telegram, sink, 0, "", b"", 0, client)
    finally:
        await runtime.aclose()


async def process(runtime: Runtime, dovecot: Dovecot, user: ImapUser, raw: bytes) -> tuple[int, int]:
    """Deliver ``raw`` to INBOX, store it as the watcher would and run the pipeline; (message id, uid)."""
    uid = dovecot.append(user.user, raw)
    new = describe(raw, mailbox="me", folder="INBOX", uidvalidity=uidvalidity(dovecot, user.user), uid=uid)
    message_id = await runtime.store.add_message(new)
    assert message_id is not None
    await runtime.worker.drain()
    return message_id, uid
