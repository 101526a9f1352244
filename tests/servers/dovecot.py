"""A real Dovecot IMAP server on loopback, and the pytest fixtures that hand it to tests.

Dovecot runs from a standalone config in its own temporary folder (none of ``/etc/dovecot`` is read),
listens on ``127.0.0.1`` on a free port that stays the same across restarts, and authenticates users
from passwd-files that :meth:`Dovecot.add_user` writes, one per user (``users.d/<user>``): Dovecot looks
at a passwd-file for changes at most once a second, so one shared file would not know a user added
right after another login; a file of its own is read fresh at that user's first login.

New mail reaches an IDLE client about 0.5 s after another client's APPEND: Dovecot's inotify watch
waits a fixed 500 ms (``NOTIFY_DELAY_MSECS`` in its source, not configurable) to batch changes.
``mailbox_idle_check_interval = 1s`` only matters as the fallback when inotify does not fire
(for example when the per-user inotify instance limit is used up).
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import pytest

MAIL_UID = 65534  # "nobody": Dovecot's mail processes refuse to run as root
_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
_INSTALL_HINT = (
    "Install it with `apt-get install -y --no-install-recommends dovecot-imapd` (.ci/run does this)."
)
_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]")
_FETCH_UID = re.compile(rb"UID (\d+)")
_FETCH_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")

_CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_login_user = dovenull
default_internal_user = dovecot
mail_location = maildir:{root}/mail/%u
mail_max_userip_connections = 100
mailbox_idle_check_interval = 1s
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users.d/%u
}}
userdb {{
  driver = static
  args = uid={uid} gid={uid} home={root}/mail/%u
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
}}
"""


class DovecotError(RuntimeError):
    """Dovecot could not be found, started, stopped or talked to."""


class ImapUser(NamedTuple):
    """One mailbox on the test Dovecot: log in with ``user``/``password`` at ``host``:``port``."""

    user: str
    password: str
    host: str
    port: int


def find_binary(name: str) -> str:
    """Return the path of a Dovecot tool, also looking in the sbin folders a user's PATH may lack."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN_DIRS])
    path = shutil.which(name, path=search)
    if path is None:
        raise DovecotError(f"`{name}` is not installed (searched {search}). {_INSTALL_HINT}")
    return path


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _signal_group(pgid: int, signum: int) -> None:
    """Signal the daemonized master (it leads its own process group) and all its children."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def _live_group_members(pgid: int) -> list[int]:
    """Processes of process group ``pgid`` that have not exited (zombies do not count)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def _quote(mailbox: str) -> str:
    """Quote a mailbox name for imaplib, which sends arguments verbatim."""
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapServer:
    """What the tests use of a real IMAP server on loopback (Dovecot here, Cyrus in tests/servers/cyrus.py):
    users, start/stop/restart/kill, and mail through stdlib imaplib."""

    kind = "imap"
    name = "the IMAP server"  # in error messages
    error: type[Exception] = RuntimeError
    host: str
    port: int
    pid_file: Path  # the master's, written while it runs

    def __init__(self) -> None:
        self._passwords: dict[str, str] = {}

    def add_user(self, user: str, password: str) -> None:
        raise NotImplementedError

    def master_pid(self) -> int | None:
        """The master process id while the server runs, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid

    def start(self) -> None:
        raise NotImplementedError

    def _wait_for_greeting(self, deadline: float) -> None:
        """Return once the IMAP port greets with ``* OK``; RuntimeError naming the server after ``deadline``."""
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    if sock.recv(4).startswith(b"* OK"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise self.error(f"{self.name} did not answer on {self.host}:{self.port}\n{self.log_tail()}")
            time.sleep(0.02)

    def stop(self) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError

    def kick(self, user: str) -> None:
        raise NotImplementedError

    def log_tail(self, lines: int = 30) -> str:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        """Whether the master process runs."""
        return self.master_pid() is not None

    def restart(self) -> None:
        """Stop and start again, on the same port, with the same users and mail."""
        self.stop()
        self.start()

    def password(self, user: str) -> str:
        """The password that :meth:`add_user` set for ``user``."""
        try:
            return self._passwords[user]
        except KeyError:
            raise DovecotError(f"{user!r} was not added with add_user") from None

    # --- mail, through stdlib imaplib ---------------------------------------------------------------

    def connect(self, user: str) -> imaplib.IMAP4:
        """A logged-in stdlib IMAP client for ``user``; the caller logs out."""
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        client.login(user, self.password(user))
        return client

    def append(self, user: str, raw: bytes, folder: str = "INBOX", flags: tuple[str, ...] = ()) -> int:
        """APPEND ``raw`` to ``folder`` (created if missing) and return its UID (from APPENDUID).

        imaplib turns bare LF line ends into CRLF, as IMAP requires.
        """
        client = self.connect(user)
        try:
            if folder.upper() != "INBOX":
                client.create(_quote(folder))  # answers NO if it exists: fine
            flag_list = f"({' '.join(flags)})" if flags else None
            status, data = client.append(_quote(folder), flag_list, None, raw)
        finally:
            client.logout()
        match = _APPENDUID.search(b" ".join(d for d in data if isinstance(d, bytes)))
        if status != "OK" or match is None:
            raise DovecotError(f"APPEND to {folder} for {user} answered {status} {data!r}")
        return int(match.group(1))

    def messages(self, user: str, folder: str = "INBOX") -> list[tuple[int, set[str], bytes]]:
        """Every message in ``folder`` as ``(uid, flags, raw)``, by UID; read-only (EXAMINE, PEEK).

        ``\\Recent`` is left out of the flags: whether it is set depends on other sessions.
        """
        client = self.connect(user)
        try:
            status, data = client.select(_quote(folder), readonly=True)
            if status != "OK":
                raise DovecotError(f"EXAMINE {folder} for {user} answered {status} {data!r}")
            if int(data[0] or 0) == 0:
                return []
            status, data = client.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
        finally:
            client.logout()
        if status != "OK":
            raise DovecotError(f"UID FETCH in {folder} for {user} answered {status} {data!r}")
        return sorted(_parse_fetch(data))


class Dovecot(ImapServer):
    """A Dovecot process with its own config, users file and maildirs under ``root``."""

    kind = "dovecot"
    name = "Dovecot"
    error = DovecotError

    def __init__(self, root: Path, port: int | None = None, *, tls: tuple[Path, Path] | None = None) -> None:
        """``tls``: a certificate and key; Dovecot then also listens for IMAP over TLS on ``tls_port``."""
        super().__init__()
        self.root = root
        self.host = "127.0.0.1"
        self.port = port if port is not None else free_port()
        self.tls = tls
        self.tls_port = free_port() if tls is not None else None
        self.config = root / "dovecot.conf"
        self.users_dir = root / "users.d"
        self.log_file = root / "dovecot.log"
        self.pid_file = root / "run" / "master.pid"
        self._write_files()

    def _write_files(self) -> None:
        mail = self.root / "mail"
        mail.mkdir(parents=True, exist_ok=True)
        os.chown(mail, MAIL_UID, MAIL_UID)
        self.users_dir.mkdir(exist_ok=True)
        self.users_dir.chmod(0o755)  # read by the auth process, which runs as user dovecot
        config = _CONFIG.format(root=self.root, uid=MAIL_UID, port=self.port)
        if self.tls is not None:
            cert, key = self.tls
            config = config.replace("ssl = no\n", f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n")
            imaps = "  inet_listener imaps {\n    port = 0\n  }"
            assert imaps in config
            listener = (f"  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {self.tls_port}\n"
                        "    ssl = yes\n  }")
            config = config.replace(imaps, listener)
        self.config.write_text(config)

    # --- users -----------------------------------------------------------------------------------

    def add_user(self, user: str, password: str) -> None:
        """Add a login, usable at once. Adding an existing user again changes the password, but
        Dovecot may go on accepting the old one for up to a second."""
        if not user or user.startswith(".") or any(c in user + password for c in ":/\n\r"):
            raise ValueError(f"user and password must be non-empty, without ':', '/' or newlines: {user!r}")
        passwd_file = self.users_dir / user
        passwd_file.write_text(f"{user}:{{PLAIN}}{password}\n")
        passwd_file.chmod(0o644)
        self._passwords[user] = password

    # --- process ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start Dovecot (no-op if it runs) and return once the IMAP port greets."""
        if self.running:
            return
        # Not a pipe: the daemonized master keeps the inherited stdout/stderr open.
        output = self.root / "start.out"
        with output.open("wb") as out:
            returncode = subprocess.call(
                [find_binary("dovecot"), "-c", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=30,
            )
        if returncode != 0:
            raise DovecotError(
                f"`dovecot -c {self.config}` exited {returncode}: {output.read_text().strip()}\n"
                f"{self.log_tail()}"
            )
        self._wait_for_greeting(deadline=time.monotonic() + 10)

    def stop(self) -> None:
        """Stop Dovecot and return once all its processes are gone; no-op if it is stopped.

        Connected clients get ``* BYE Server shutting down.`` and lose their connection. SIGTERM goes
        to the whole process group: sent to the master alone it takes about a second, and an imap
        process with a connected client outlives the master until that client disconnects.
        """
        pid = self.master_pid()
        if pid is None:
            return
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while self.pid_file.exists() or _live_group_members(pid):
            if time.monotonic() > deadline:
                _signal_group(pid, signal.SIGKILL)
                self.pid_file.unlink(missing_ok=True)
                return
            time.sleep(0.01)

    def kill(self) -> None:
        """``kill -9`` of every Dovecot process: no BYE; the kernel closes the clients' connections.
        Returns once all of them are gone; :meth:`start` brings it back with the same users and mail."""
        pid = self.master_pid()
        if pid is None:
            return
        _signal_group(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _live_group_members(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.pid_file.unlink(missing_ok=True)

    def kick(self, user: str) -> None:
        """Drop every connection of ``user`` (``doveadm kick``); fine if the user had none."""
        result = subprocess.run(
            [find_binary("doveadm"), "-c", str(self.config), "kick", user],
            capture_output=True, text=True, timeout=30, check=False,
        )
        if result.returncode not in (0, 68):  # 68 = EX_NOUSER: "no users kicked"
            raise DovecotError(f"doveadm kick {user} exited {result.returncode}: {result.stderr.strip()}")

    def set_uidvalidity(self, user: str, value: int, folder: str = "INBOX") -> None:
        """Give ``folder`` a new UIDVALIDITY (``doveadm mailbox update --uid-validity``), as a server
        restored from a backup or a migrated mailbox would: every UID the client knew means nothing now."""
        result = subprocess.run(
            [find_binary("doveadm"), "-c", str(self.config), "mailbox", "update", "-u", user,
             "--uid-validity", str(value), folder],
            capture_output=True, text=True, timeout=30, check=False,
        )
        if result.returncode != 0:
            raise DovecotError(f"doveadm mailbox update exited {result.returncode}: {result.stderr.strip()}")

    def log_tail(self, lines: int = 30) -> str:
        """The end of Dovecot's log, for error messages."""
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no Dovecot log)"
        return "Dovecot log:\n" + "\n".join(text.splitlines()[-lines:])


def _parse_fetch(data: Sequence[object]) -> Iterator[tuple[int, set[str], bytes]]:
    """Turn imaplib's FETCH answer (``(header, literal)`` tuples, then ``b')'`` pieces) into rows."""
    row: list[bytes] = []
    raw = b""
    for item in [*data, None]:
        if isinstance(item, tuple) or item is None:
            if row:
                yield _fetch_row(b" ".join(row), raw)
            row, raw = ([item[0]], item[1]) if isinstance(item, tuple) else ([], b"")
        elif isinstance(item, bytes):
            row.append(item)


def _fetch_row(meta: bytes, raw: bytes) -> tuple[int, set[str], bytes]:
    uid, flags = _FETCH_UID.search(meta), _FETCH_FLAGS.search(meta)
    if uid is None or flags is None:
        raise DovecotError(f"unexpected FETCH answer {meta!r}")
    return int(uid.group(1)), set(flags.group(1).decode().split()) - {"\\Recent"}, raw


# --- fixtures ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _running(*, tls: bool = False) -> Iterator[Dovecot]:
    """A started Dovecot in a new folder (with a self-signed certificate when ``tls``), stopped and deleted
    afterwards. Fails the test, never skips, when Dovecot is not installed or cannot start."""
    from tests.servers.smtp import make_certificate  # smtp takes free_port from here

    root = Path(tempfile.mkdtemp(prefix="rr-dovecot-"))
    root.chmod(0o755)  # the mail and auth processes (nobody, dovecot) must reach their files
    server = Dovecot(root, tls=make_certificate(root) if tls else None)
    try:
        server.start()
    except DovecotError as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[Dovecot]:
    """One running Dovecot for the whole session, stopped and deleted at its end.

    A test may stop or restart it: it is running again for the next test (see
    ``_dovecot_left_running``).
    """
    with _running() as server:
        yield server


@pytest.fixture
def imap_kind() -> str:
    """Which IMAP server ``dovecot`` (and so ``imap_user``) is: "dovecot", unless the test is marked
    ``both_imap_servers`` (conftest then runs it on "dovecot" and on "cyrus", ids ``[…-cyrus]``)."""
    return "dovecot"


@pytest.fixture
def dovecot(request: pytest.FixtureRequest, imap_kind: str) -> ImapServer:
    """The IMAP server of this test: the session's Dovecot, or (``imap_kind`` "cyrus") the session's Cyrus,
    which offers the same methods (tests/servers/cyrus.py)."""
    server = request.getfixturevalue(f"{imap_kind}_server")
    assert isinstance(server, ImapServer)
    return server


@pytest.fixture(scope="module")
def dovecot_tls() -> Iterator[Dovecot]:
    """A Dovecot of its own that also speaks IMAP over TLS on ``tls_port``, presenting a self-signed
    certificate for 127.0.0.1 (``tls[0]``, the file a client trusts)."""
    with _running(tls=True) as server:
        yield server


@pytest.fixture(autouse=True)
def _dovecot_left_running(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used Dovecot, start it again if the test stopped it."""
    server = request.getfixturevalue("dovecot") if "dovecot" in request.fixturenames else None
    yield
    if isinstance(server, ImapServer) and not server.running:
        server.start()


@pytest.fixture
def imap_account(dovecot: ImapServer) -> Callable[[], ImapUser]:
    """A factory: each call adds a fresh user ``u<hex>@example.org`` with a random password."""
    dovecot.start()

    def make() -> ImapUser:
        user, password = f"u{secrets.token_hex(6)}@example.org", secrets.token_hex(8)
        dovecot.add_user(user, password)
        return ImapUser(user, password, dovecot.host, dovecot.port)

    return make


@pytest.fixture
def imap_user(imap_account: Callable[[], ImapUser]) -> ImapUser:
    """A fresh user of its own on the running Dovecot, with empty INBOX, Drafts and Sent."""
    return imap_account()
