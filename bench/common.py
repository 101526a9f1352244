"""What the benchmarks share: real servers on loopback (Dovecot, PostgreSQL), the loopback LLM and Bot API,
`recruiter run` as a subprocess, and the arithmetic of the figures.

Every resource is registered on an ExitStack so that a benchmark cleans up after itself even when it
fails or is interrupted: Dovecot stopped and its folder deleted, the PostgreSQL database dropped,
the service and the fakes stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.servers import fake_telegram as tg  # noqa: E402
from tests.servers.cyrus import Cyrus  # noqa: E402
from tests.servers.dovecot import Dovecot, ImapServer, ImapUser, free_port  # noqa: E402
from tests.servers.fake_llm import FakeLLM  # noqa: E402
from tests.servers.postgres import PG_HOST, PG_PORT, PG_USER, create_database, drop_database  # noqa: E402

PYTHON = sys.executable


# --- figures ------------------------------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0–100) with linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def machine() -> str:
    """One line about the machine the figures come from."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.1f} GiB RAM"
    load = ", load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    return f"{os.cpu_count()} cores, {cpu}{mem}{load}; Python {platform.python_version()}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int | None:
    """VmRSS of a process in KiB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


# --- servers ------------------------------------------------------------------------------------------

class TimedTelegram(tg.FakeTelegram):
    """The fake Bot API, also noting when each sendMessage arrived (time.monotonic())."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, str]] = []
        self.arrived = threading.Condition()

    def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        at = time.monotonic()
        result = super()._m_sendMessage(params)
        with self.arrived:
            self.arrivals.append((at, str(params.get("text", ""))))
            self.arrived.notify_all()
        return result

    def sent(self) -> int:
        with self.arrived:
            return len(self.arrivals)


def start_telegram(stack: contextlib.ExitStack) -> TimedTelegram:
    """The fake Bot API on a free loopback port, stopped when ``stack`` closes."""
    fake = TimedTelegram()
    server = tg._Server(("127.0.0.1", 0), tg._Handler)
    server.fake = fake
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/bot"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="bench-telegram", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    stack.callback(stop)
    return fake


def start_llm(stack: contextlib.ExitStack) -> FakeLLM:
    """The zero-latency loopback LLM (OpenAI chat API), stopped when ``stack`` closes."""
    return stack.enter_context(FakeLLM())


def start_dovecot(stack: contextlib.ExitStack, *, idle_check: str = "30s") -> Dovecot:
    """A real Dovecot in a temporary folder, stopped and deleted when ``stack`` closes.

    The tests' config checks IDLE mailboxes every second as a fallback for inotify; the benchmarks use
    Dovecot's own default (30 s) unless told otherwise, so that the push delay measured is the one a
    production server has (inotify, batched for 500 ms) and not the phase of a 1-second timer.
    """
    root = Path(tempfile.mkdtemp(prefix="rr-bench-dovecot-"))
    root.chmod(0o755)
    stack.callback(shutil.rmtree, root, ignore_errors=True)
    server = Dovecot(root)
    config = server.config.read_text()
    if "mailbox_idle_check_interval = 1s" not in config:
        raise SystemExit("tests/servers/dovecot.py changed its config: update bench/common.start_dovecot")
    server.config.write_text(config.replace("mailbox_idle_check_interval = 1s",
                                            f"mailbox_idle_check_interval = {idle_check}"))
    server.start()
    stack.callback(server.stop)
    return server


def start_cyrus(stack: contextlib.ExitStack) -> Cyrus:
    """A real Cyrus (master, imapd, idled; tests/servers/cyrus.py) in a temporary folder, stopped and
    deleted when ``stack`` closes."""
    root = Path(tempfile.mkdtemp(prefix="rr-bench-cyrus-"))
    root.chmod(0o755)
    stack.callback(shutil.rmtree, root, ignore_errors=True)
    server = Cyrus(root)
    server.start()
    stack.callback(server.stop)
    return server


def add_user(server: ImapServer) -> ImapUser:
    user, password = f"bench{secrets.token_hex(4)}@example.org", secrets.token_hex(8)
    server.add_user(user, password)
    return ImapUser(user, password, server.host, server.port)


def database(stack: contextlib.ExitStack, kind: str, workdir: Path) -> str:
    """A fresh database URL: a SQLite file in ``workdir`` or a throwaway PostgreSQL database (dropped)."""
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{workdir / 'recruiter.db'}"
    if kind != "postgresql":
        raise SystemExit(f"unknown database kind {kind!r}: sqlite or postgresql")
    name = f"rr_bench_{secrets.token_hex(5)}"
    create_database(name)
    stack.callback(drop_database, name)
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def workdir(stack: contextlib.ExitStack) -> Path:
    path = Path(tempfile.mkdtemp(prefix="rr-bench-"))
    stack.callback(shutil.rmtree, path, ignore_errors=True)
    return path


# --- the service ----------------------------------------------------------------------------------------

def service_env(cwd: Path, db_url: str, user: ImapUser, llm: FakeLLM, telegram: TimedTelegram,
                **extra: str) -> dict[str, str]:
    """The environment of `recruiter run` on one Dovecot mailbox, the loopback LLM and Bot API.

    Only what points at the loopback servers is set; every tuning knob keeps its shipped default.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("IMAP_", "LLAMA_", "TELEGRAM_", "CALDAV_", "GPT_MINI_", "DB_", "LOG_"))}
    env.update({
        "IMAP_MAILBOXES": "me", "IMAP_ME_HOST": user.host, "IMAP_ME_PORT": str(user.port),
        "IMAP_ME_USER": user.user, "IMAP_ME_PASS": user.password, "IMAP_ME_TLS": "none",
        "DB_CONNECTION_STRING": db_url,
        "LLAMA_SWAP_URL": llm.url, "LLAMA_SWAP_MODEL": "qwen3-8b",
        "TELEGRAM_BOT_TOKEN": telegram.token, "TELEGRAM_CHAT_ID": "7",
        "TELEGRAM_API_BASE_URL": telegram.base_url, "WEBHOOK_BEARER_TOKEN": "bench-secret-" + secrets.token_hex(4),
        "CALLBACK_BASE_URL": "https://rr.example.org",
        "ICS_DIR": str(cwd / "events"), "DRAFTS_DIR": str(cwd / "drafts"),
        "LOG_FORMAT": "json", "HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(free_port()),
    })
    env.update(extra)
    return env


def cli(env: dict[str, str], cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([PYTHON, "-m", "recruiter", *args], env=env, cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, check=False)
    if result.returncode != 0:
        raise SystemExit(f"`recruiter {' '.join(args)}` exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


class Service:
    """`recruiter run` as a subprocess; its log goes to a file that ``events`` reads."""

    def __init__(self, env: dict[str, str], cwd: Path, *, profile: str | None = None) -> None:
        self.log_path = cwd / "service.log"
        self._log = self.log_path.open("wb")
        prefix = ["-m", "cProfile", "-o", profile] if profile else []
        self.proc = subprocess.Popen([PYTHON, *prefix, "-m", "recruiter", "run"], env=env, cwd=cwd,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self._offset = 0
        self._events: list[dict[str, Any]] = []

    @property
    def pid(self) -> int:
        return self.proc.pid

    def events(self, name: str) -> list[dict[str, Any]]:
        """Every JSON log record named ``name`` so far."""
        with self.log_path.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        end = chunk.rfind(b"\n") + 1
        self._offset += end
        for line in chunk[:end].splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    self._events.append(record)
        return [e for e in self._events if e.get("event") == name]

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after 30 s; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode


def start_service(stack: contextlib.ExitStack, env: dict[str, str], cwd: Path, *,
                  profile: str | None = None) -> Service:
    """`recruiter run` (under cProfile, written to ``profile`` at exit, when given); stopped with ``stack``."""
    service = Service(env, cwd, profile=profile)
    stack.callback(service.stop)
    return service


def wait_for(check: Callable[[], Any], *, timeout: float, what: str, service: Service | None = None,
             every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        if service is not None and not service.alive():
            raise SystemExit(f"the service died while waiting for {what}:\n{service.tail()}")
        time.sleep(every)
    tail = f"\n{service.tail()}" if service is not None else ""
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}{tail}")


@contextlib.contextmanager
def resources() -> Iterator[contextlib.ExitStack]:
    """An ExitStack that also closes on SIGTERM (a killed benchmark still cleans up)."""
    def on_term(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        with contextlib.ExitStack() as stack:
            yield stack
    finally:
        signal.signal(signal.SIGTERM, previous)
