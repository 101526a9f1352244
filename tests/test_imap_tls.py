"""IMAP over TLS (the default, IMAP_<NAME>_TLS=ssl) against a real Dovecot with a self-signed certificate:
the watcher connects, verifies the server against IMAP_<NAME>_CA_FILE and hears pushed mail; a server it
cannot verify is a clear error naming the mailbox, never a crash."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from recruiter.errors import ConfigError
from recruiter.mail import imap
from recruiter.mail.watcher import Watcher
from recruiter.settings import MailboxSettings, settings_from
from recruiter.store.migrate import upgrade_head
from recruiter.store.repo import Store
from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, DovecotError
from tests.servers.smtp import make_certificate
from tests.test_watcher import eventually, stop, subjects

USER, PASSWORD = "tls@example.org", "tls-secret-7"


@pytest.fixture(scope="module")
def dovecot_tls() -> Iterator[tuple[Dovecot, Path]]:
    """A Dovecot of its own that also speaks IMAP over TLS, and the certificate it presents."""
    root = Path(tempfile.mkdtemp(prefix="rr-dovecot-tls-"))
    root.chmod(0o755)
    cert, key = make_certificate(root)
    server = Dovecot(root, tls=(cert, key))
    server.add_user(USER, PASSWORD)
    try:
        server.start()
    except DovecotError as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server, cert
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite+aiosqlite:///{tmp_path}/tls.db"
    await upgrade_head(url)
    store = Store.from_url(url)
    yield store
    await store.aclose()


def _mailbox(server: Dovecot, ca_file: Path | None) -> MailboxSettings:
    assert server.tls_port is not None
    return MailboxSettings(name="me", host="127.0.0.1", port=server.tls_port, user=USER, password=PASSWORD, tls="ssl",
                           folder="INBOX", drafts=None, address=USER, ca_file=ca_file)


async def test_the_watcher_hears_mail_over_tls(dovecot_tls: tuple[Dovecot, Path], store: Store) -> None:
    server, cert = dovecot_tls
    watcher = Watcher(_mailbox(server, cert), store, timeout=5)
    task = asyncio.create_task(watcher.run())
    try:
        await eventually(lambda: watcher.connected and watcher.last_error is None)
        await eventually(lambda: store.checkpoint("me"))
        server.append(USER, make_mail(subject="over tls"))
        await eventually(lambda: _has(store, "over tls"))
        assert watcher.sessions == 1
    finally:
        await stop(task)


async def _has(store: Store, subject: str) -> bool:
    return subject in await subjects(store)


async def test_a_server_that_cannot_be_verified_is_a_clear_error(dovecot_tls: tuple[Dovecot, Path]) -> None:
    server, cert = dovecot_tls
    with pytest.raises(imap.ImapError) as caught:  # self-signed, and no CA file trusts it
        await imap.connect(_mailbox(server, None), timeout=5)
    assert "IMAP me: cannot connect" in str(caught.value) and "SSLCertVerificationError" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    client = await imap.connect(_mailbox(server, cert), timeout=5)  # the CA file makes it good
    await imap.close(client)


async def test_the_watcher_keeps_retrying_an_unverifiable_server(
    dovecot_tls: tuple[Dovecot, Path], store: Store,
) -> None:
    server, _ = dovecot_tls
    watcher = Watcher(_mailbox(server, None), store, timeout=5)
    task = asyncio.create_task(watcher.run())
    try:
        await eventually(lambda: watcher.last_error is not None)
        assert "SSLCertVerificationError" in str(watcher.last_error)
        assert not watcher.connected and not task.done()
    finally:
        await stop(task)


def test_a_ca_file_that_is_not_there_stops_the_start(tmp_path: Path) -> None:
    env = {"IMAP_MAILBOXES": "me", "IMAP_ME_HOST": "imap.example.org", "IMAP_ME_USER": USER,
           "IMAP_ME_PASS": PASSWORD}
    with pytest.raises(ConfigError) as caught:
        settings_from({**env, "IMAP_ME_CA_FILE": str(tmp_path / "missing.pem")})
    assert "IMAP_ME_CA_FILE" in str(caught.value)
    (tmp_path / "ca.pem").write_text("x")
    [mailbox] = settings_from({**env, "IMAP_ME_CA_FILE": str(tmp_path / "ca.pem")}).mailboxes
    assert mailbox.ca_file == tmp_path / "ca.pem" and mailbox.tls == "ssl" and mailbox.port == 993
