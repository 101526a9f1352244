"""A real Cyrus IMAP server (3.6, Debian's packages) on loopback, next to Dovecot.

Debian's ``cyrus-imapd`` conflicts with ``dovecot-imapd``, so ``.ci/run`` installs ``cyrus-common`` (the
``cyrus`` user, ``master``, the libraries and tools) and ``sasl2-bin`` (``saslpasswd2``) and only unpacks
the ``cyrus-imapd`` .deb (``apt-get download``, ``dpkg -x``) into ``$CYRUS_ROOT`` (``/opt/cyrus-imapd``),
where ``imapd`` and ``idled`` are taken from. The recipe:

* ``imapd.conf`` and ``cyrus.conf`` in a temporary folder owned by ``cyrus``; ``master -C imapd.conf -M
  cyrus.conf -p master.pid -d`` runs as ``cyrus`` (``runuser``). ``conf/db``, ``conf/socket`` and
  ``conf/proc`` are created first: without ``conf/socket`` ``idled`` cannot bind its socket and IDLE
  silently falls back to polling every 60 s. ``idled`` runs in the DAEMON section: it pushes a change
  to IDLE clients within milliseconds (Dovecot batches on a 500 ms timer).
* Users live in a sasldb (``saslpasswd2 -f <tmp>/sasldb2``, ``virtdomains: userid`` so logins are
  ``u@example.org``); ``autocreate_quota: 0`` creates INBOX at the first login, where the fixture creates
  Drafts and Sent with ``CREATE name (USE (\\Drafts))`` (RFC 6154). ``specialusealways`` stays off: LIST
  shows special-use flags only when asked for them (``LIST (SPECIAL-USE)`` / ``RETURN (SPECIAL-USE)``).
* ``altnamespace`` and ``unixhierarchysep``: folders next to INBOX, ``/`` as the separator.
* Cyrus logs only to syslog; :meth:`Cyrus.log_tail` says so.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.dovecot import ImapServer, _live_group_members, _signal_group, free_port

CYRUS_ROOT = Path(os.environ.get("CYRUS_ROOT", "/opt/cyrus-imapd"))
MASTER = Path("/usr/lib/cyrus/bin/master")
CTL_CYRUSDB = Path("/usr/lib/cyrus/bin/ctl_cyrusdb")
_INSTALL_HINT = ("Install it as .ci/run does: `apt-get install -y --no-install-recommends cyrus-common sasl2-bin`, "
                 "then `apt-get download cyrus-imapd && dpkg -x cyrus-imapd_*.deb /opt/cyrus-imapd`.")

_IMAPD_CONF = """\
configdirectory: {root}/conf
partition-default: {root}/spool
defaultpartition: default
admins: cyrus
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {root}/sasldb2
sasl_mech_list: PLAIN LOGIN
allowplaintext: yes
altnamespace: yes
unixhierarchysep: yes
virtdomains: userid
autocreate_quota: 0
syslog_prefix: rr-cyrus
"""

_CYRUS_CONF = """\
START {{
  recover cmd="{ctl_cyrusdb} -C {root}/imapd.conf -r"
}}
SERVICES {{
  imap cmd="{bin}/imapd -C {root}/imapd.conf" listen="127.0.0.1:{port}" prefork=0
}}
EVENTS {{
}}
DAEMON {{
  idled cmd="{bin}/idled -C {root}/imapd.conf"
}}
"""


class CyrusError(RuntimeError):
    """Cyrus could not be found, started, stopped or talked to."""


class Cyrus(ImapServer):
    """A Cyrus ``master`` with ``imapd`` and ``idled``, its config, sasldb and spool under ``root``."""

    kind = "cyrus"
    name = "Cyrus"
    error = CyrusError

    def __init__(self, root: Path, port: int | None = None) -> None:
        super().__init__()
        self.root = root
        self.host = "127.0.0.1"
        self.port = port if port is not None else free_port()
        self.pid_file = root / "master.pid"
        self.bin = CYRUS_ROOT / "usr/lib/cyrus/bin"
        for needed in (MASTER, CTL_CYRUSDB, self.bin / "imapd", self.bin / "idled"):
            if not needed.exists():
                raise CyrusError(f"{needed} is missing. {_INSTALL_HINT}")
        if shutil.which("saslpasswd2", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"])) is None:
            raise CyrusError(f"saslpasswd2 is missing. {_INSTALL_HINT}")
        self._write_files()

    def _write_files(self) -> None:
        for sub in ("conf/db", "conf/socket", "conf/proc", "conf/log", "spool"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "imapd.conf").write_text(_IMAPD_CONF.format(root=self.root))
        (self.root / "cyrus.conf").write_text(_CYRUS_CONF.format(
            root=self.root, port=self.port, bin=self.bin, ctl_cyrusdb=CTL_CYRUSDB))
        self._chown()

    def _chown(self) -> None:
        cyrus = pwd.getpwnam("cyrus")
        for path in [self.root, *self.root.rglob("*")]:
            os.chown(path, cyrus.pw_uid, cyrus.pw_gid)

    # --- users -----------------------------------------------------------------------------------

    def add_user(self, user: str, password: str, *,
                 folders: tuple[str | tuple[str, str], ...] = ("Drafts", "Sent")) -> None:
        """Add a login (``name@domain``) to the sasldb, log in once (INBOX is created) and create
        ``folders``: ``Drafts`` and ``Sent`` with their special-use flag, ``(name, flag)`` with ``flag``
        (``""`` for none), any other name without one."""
        if "@" not in user or any(c in user + password for c in ":/\n\r"):
            raise ValueError(f"user must be name@domain, without ':', '/' or newlines: {user!r}")
        name, domain = user.split("@", 1)
        result = subprocess.run(
            ["saslpasswd2", "-p", "-c", "-f", str(self.root / "sasldb2"), "-u", domain, name],
            input=password, capture_output=True, text=True, timeout=30, check=False,
            env={**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin"},
        )
        if result.returncode != 0:
            raise CyrusError(f"saslpasswd2 for {user} exited {result.returncode}: {result.stderr.strip()}")
        self._chown_file(self.root / "sasldb2")
        self._passwords[user] = password
        client = self.connect(user)
        try:
            for entry in folders:
                folder, use = entry if isinstance(entry, tuple) else (
                    entry, {"Drafts": "\\Drafts", "Sent": "\\Sent"}.get(entry, ""))
                args = (f'"{folder}"', f"(USE ({use}))") if use else (f'"{folder}"',)
                status, data = client._simple_command("CREATE", *args)
                if status != "OK":
                    raise CyrusError(f"CREATE {folder} for {user} answered {status} {data!r}")
        finally:
            client.logout()

    def _chown_file(self, path: Path) -> None:
        cyrus = pwd.getpwnam("cyrus")
        os.chown(path, cyrus.pw_uid, cyrus.pw_gid)

    # --- process ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start ``master`` as ``cyrus`` (no-op if it runs) and return once the IMAP port greets."""
        if self.running:
            return
        output = self.root / "start.out"
        with output.open("wb") as out:
            returncode = subprocess.call(
                ["runuser", "-u", "cyrus", "--", str(MASTER), "-C", str(self.root / "imapd.conf"),
                 "-M", str(self.root / "cyrus.conf"), "-p", str(self.pid_file), "-d"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=30,
            )
        if returncode != 0:
            raise CyrusError(f"cyrus master exited {returncode}: {output.read_text().strip()}")
        self._wait_for_greeting(deadline=time.monotonic() + 15)
        if not (self.root / "conf/socket/idle").exists():  # idled is up once its socket is
            deadline = time.monotonic() + 5
            while not (self.root / "conf/socket/idle").exists():
                if time.monotonic() > deadline:
                    raise CyrusError("idled did not create conf/socket/idle: IDLE would poll every 60 s")
                time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM to master and its children; returns once they are gone (SIGKILL after 10 s)."""
        self._signal(signal.SIGTERM, grace=10)

    def kill(self) -> None:
        """``kill -9`` of master, idled and every imapd: clients get no BYE."""
        self._signal(signal.SIGKILL, grace=10)

    def _signal(self, signum: int, grace: float) -> None:
        pid = self.master_pid()
        if pid is None:
            return
        _signal_group(pid, signum)
        deadline = time.monotonic() + grace
        while _live_group_members(pid):
            if time.monotonic() > deadline:
                _signal_group(pid, signal.SIGKILL)
            time.sleep(0.01)
        self.pid_file.unlink(missing_ok=True)
        (self.root / "conf/socket/idle").unlink(missing_ok=True)

    def kick(self, user: str) -> None:
        """End every imapd serving ``user`` (found in ``conf/proc``, where each records its login)."""
        for entry in (self.root / "conf/proc").glob("*"):
            try:
                fields = entry.read_text(errors="replace").split("\t")
            except OSError:
                continue
            if user in fields:
                try:
                    os.kill(int(entry.name), signal.SIGTERM)
                except (ValueError, ProcessLookupError):
                    pass

    def log_tail(self, lines: int = 30) -> str:
        return "(Cyrus logs to syslog only; run it by hand with `master -D` to see why it fails)"


@pytest.fixture(scope="session")
def cyrus_server() -> Iterator[Cyrus]:
    """One running Cyrus for the whole session (tests marked ``both_imap_servers`` get it as ``dovecot``)."""
    root = Path(tempfile.mkdtemp(prefix="rr-cyrus-"))
    root.chmod(0o755)
    try:
        server = Cyrus(root)
        server.start()
    except CyrusError as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
