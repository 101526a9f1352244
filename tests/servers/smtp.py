"""A real SMTP server on loopback (aiosmtpd) with STARTTLS, a self-signed certificate and AUTH, recording
what it receives. It can refuse recipients (550), and stall in DATA (after the data arrived, before its
answer) to test a client that dies mid-send.

The certificate is made once per session with ``openssl`` (CN=localhost, SAN DNS:localhost and
IP:127.0.0.1); clients trust it through ``cert_file``, as ``SMTP_CA_FILE`` does for a private CA.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.servers.dovecot import free_port

USER = "owner@example.org"
PASSWORD = "smtp-secret-pass"


@dataclass(frozen=True)
class Received:
    """One message the sink accepted (or, while stalled, received)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key for localhost / 127.0.0.1, valid for a week."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "7", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


class SmtpSink:
    """An aiosmtpd Controller on 127.0.0.1 that requires STARTTLS and AUTH and keeps every message."""

    def __init__(self, cert: Path, key: Path, *, tls: str = "starttls") -> None:
        self.tls = tls  # "starttls" (STARTTLS required before AUTH) or "ssl" (implicit TLS)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.cert_file = cert
        self.user, self.password = USER, PASSWORD
        self.messages: list[Received] = []  # answered 250
        self.data_received: list[Received] = []  # every DATA that arrived, answered or not
        self.refuse_recipients = False
        self.stalled = threading.Event()  # set: DATA is received but not answered until cleared
        self.logins: list[str] = []
        self.on_data: Callable[[], None] | None = None  # called (in the sink's thread) before DATA is answered
        self._lock = threading.Lock()
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls.load_cert_chain(str(cert), str(key))
        self._controller: Controller | None = None

    # --- handler hooks (run in the controller's own thread and loop) --------------------------
    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if self.refuse_recipients:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        received = Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), bytes(content))
        with self._lock:
            self.data_received.append(received)
        while self.stalled.is_set():
            await asyncio.sleep(0.05)
        if self.on_data is not None:
            self.on_data()
        with self._lock:
            self.messages.append(received)
        return "250 2.0.0 Ok: queued"

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.user
              and auth_data.password.decode() == self.password)
        if ok:
            self.logins.append(self.user)
        return AuthResult(success=ok, handled=False)

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Listen (again) on the same port."""
        if self._controller is not None:
            return
        if self.tls == "ssl":
            # aiosmtpd only counts STARTTLS as TLS for its AUTH check; here the whole connection is TLS.
            tls: dict[str, Any] = {"ssl_context": self._tls, "auth_require_tls": False}
        else:
            tls = {"tls_context": self._tls, "require_starttls": True, "auth_require_tls": True}
        controller = Controller(
            self, hostname=self.host, port=self.port, authenticator=self._authenticate, auth_required=True,
            decode_data=False, server_hostname="localhost", auth_exclude_mechanism=["LOGIN"], **tls,
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Stop listening: clients are refused until :meth:`start`."""
        self.stalled.clear()
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    @property
    def running(self) -> bool:
        return self._controller is not None


@pytest.fixture(scope="session")
def smtp_certificate() -> Iterator[tuple[Path, Path]]:
    """(cert, key) of a self-signed certificate for the session."""
    directory = Path(tempfile.mkdtemp(prefix="rr-smtp-"))
    try:
        yield make_certificate(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def smtp_sink(smtp_certificate: tuple[Path, Path]) -> Iterator[SmtpSink]:
    """A fresh SMTP sink on a free port for each test, stopped afterwards."""
    sink = SmtpSink(*smtp_certificate)
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()
