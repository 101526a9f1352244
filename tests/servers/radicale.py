"""A real Radicale CalDAV server on loopback, for tests.

Started as ``python -m radicale`` with htpasswd (plain) auth, ``owner_only`` rights and filesystem
storage in a temporary folder. The session-scoped fixture ``radicale`` yields a :class:`Radicale`
that can be stopped and started again (same port, same storage) to test outages.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

USERNAME = "cal"
PASSWORD = "calpass"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Radicale:
    """One Radicale process; ``url`` is the server root, e.g. ``http://127.0.0.1:PORT/``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.storage = root / "collections"
        self.users_file = root / "users"
        self.log_file = root / "radicale.log"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.username = USERNAME
        self.password = PASSWORD
        self._proc: subprocess.Popen[bytes] | None = None
        self.users_file.write_text(f"{USERNAME}:{PASSWORD}\n", encoding="utf-8")

    def _command(self) -> list[str]:
        return [
            sys.executable, "-m", "radicale",
            "--server-hosts", f"127.0.0.1:{self.port}",
            "--auth-type", "htpasswd",
            "--auth-htpasswd-filename", str(self.users_file),
            "--auth-htpasswd-encryption", "plain",
            "--auth-delay", "0",
            "--rights-type", "owner_only",
            "--storage-filesystem-folder", str(self.storage),
            "--logging-level", "warning",
        ]

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and wait until it answers HTTP; raise if it does not."""
        if self._proc is not None and self._proc.poll() is None:
            return
        log = self.log_file.open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("RADICALE_")}
        self._proc = subprocess.Popen(
            self._command(), stdout=log, stderr=subprocess.STDOUT, env=env
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            if self._answers():
                return
            time.sleep(0.05)
        self.stop()
        tail = self.log_file.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"Radicale did not start on port {self.port}:\n{tail}")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + ".web/", timeout=0.5):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def stop(self) -> None:
        """Terminate the server and wait until its port is closed."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def calendar_dir(self, calendar_name: str) -> Path | None:
        """The storage folder of the user's calendar whose display name is ``calendar_name``."""
        user_root = self.storage / "collection-root" / USERNAME
        if not user_root.is_dir():
            return None
        for props in user_root.glob("*/.Radicale.props"):
            if json.loads(props.read_text(encoding="utf-8")).get("D:displayname") == calendar_name:
                return props.parent
        return None

    def calendar_names(self) -> list[str]:
        """Folder names of every collection the user owns."""
        user_root = self.storage / "collection-root" / USERNAME
        if not user_root.is_dir():
            return []
        return sorted(p.name for p in user_root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def events(self, calendar_name: str) -> list[bytes]:
        """The stored ``.ics`` items of the calendar with this display name ([] if it does not exist)."""
        folder = self.calendar_dir(calendar_name)
        if folder is None:
            return []
        return [p.read_bytes() for p in sorted(folder.glob("*.ics"))]


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    """A running Radicale for the whole session. Tests that stop it must start it again."""
    server = Radicale(tmp_path_factory.mktemp("radicale"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
