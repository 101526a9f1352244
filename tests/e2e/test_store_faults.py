"""The store cannot kill the service: real database faults injected under a running `recruiter run`.

* SQLite locked by another process (``BEGIN IMMEDIATE``) for longer than the busy timeout;
* PostgreSQL switched to read-only (``ALTER DATABASE … SET default_transaction_read_only = on``, then the
  sessions terminated so the pooled connections are read-only too: a fail-over to a read-only primary);
* PostgreSQL refusing connections (``CONNECTION LIMIT 0`` on the service's role, sessions terminated).

Each time: the service stays up, mail that arrives during the fault is stored and processed once it
ends (nothing lost, nothing quarantined, nothing done twice), and the owner hears of it exactly once —
one alert and one recovery message.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, ImapUser
from tests.servers.fake_llm import FakeLLM
from tests.servers.fake_telegram import FakeTelegram
from tests.servers.postgres import admin, terminate_sessions
from tests.support.poll import wait_for
from tests.support.service import card_ids, cli, finished, service_env, start

FAULT_SECONDS = 12.0


def _world(tmp_path: Any, url: str, imap_user: ImapUser, fake_llm: FakeLLM,
           fake_telegram: FakeTelegram) -> dict[str, Any]:
    env = service_env(tmp_path, url, imap_user, fake_llm, fake_telegram)
    env.update({"DB_BUSY_TIMEOUT_SECONDS": "1", "DB_ALERT_AFTER_SECONDS": "3", "IMAP_ALERT_AFTER_SECONDS": "600",
                "LEASE_SECONDS": "10"})
    assert cli(env, tmp_path, "migrate").returncode == 0
    return {"env": env, "cwd": tmp_path, "user": imap_user}


def _texts(fake_telegram: FakeTelegram) -> list[str]:
    """The messages without buttons (alerts), as the phone shows them."""
    return [re.sub(r"<[^>]+>", "", m["text"]) for m in fake_telegram.messages() if "reply_markup" not in m]


def _fault_then_mail(world: dict[str, Any], dovecot: Dovecot, fake_telegram: FakeTelegram,
                     fault: Callable[[], None], heal: Callable[[], None]) -> None:
    user = world["user"]
    service = start(world)
    try:
        dovecot.append(user.user, make_mail(subject="Recruiting: before the fault"))
        wait_for(lambda: finished(world["env"], world["cwd"], 1), timeout=30, what="the first mail done")
        fault()
        dovecot.append(user.user, make_mail(subject="Recruiting: during the fault"))
        wait_for(lambda: any("database is unavailable" in t for t in _texts(fake_telegram)), timeout=30,
                 what="the database alert")
        assert service.proc.poll() is None
        heal()
        rows = wait_for(lambda: finished(world["env"], world["cwd"], 2),
                        timeout=60, what="the mail of the fault processed after it")
        wait_for(lambda: any(t.startswith("✅ The database is back") for t in _texts(fake_telegram)), timeout=30,
                 what="the recovery message")
        dovecot.append(user.user, make_mail(subject="Recruiting: after the fault"))
        rows = wait_for(lambda: finished(world["env"], world["cwd"], 3), timeout=30, what="mail after the fault")
        time.sleep(3)
        assert service.proc.poll() is None
    finally:
        code = service.stop()
        print("".join(service.lines[-60:]))
    assert code == 0
    assert [r["state"] for r in rows] == ["done"] * 3, rows  # nothing quarantined, nothing dead
    assert set(card_ids(fake_telegram).values()) == {1} and len(card_ids(fake_telegram)) == 3
    alerts = _texts(fake_telegram)
    assert sum(t.startswith("⚠️ The database is unavailable") for t in alerts) == 1, alerts
    assert sum(t.startswith("✅ The database is back") for t in alerts) == 1, alerts
    assert len(alerts) == 2, alerts  # and nothing else: no stalled-mailbox alert, no dead-letter notice


def test_sqlite_locked_past_the_busy_timeout(tmp_path: Any, dovecot: Dovecot, imap_user: ImapUser,
                                              fake_llm: FakeLLM, fake_telegram: FakeTelegram) -> None:
    path = tmp_path / "recruiter.db"
    world = _world(tmp_path, f"sqlite+aiosqlite:///{path}", imap_user, fake_llm, fake_telegram)
    release = threading.Event()
    held = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        conn.execute("BEGIN IMMEDIATE")  # another process's writer: every write here waits, then times out
        held.set()
        release.wait(60)
        conn.execute("ROLLBACK")
        conn.close()

    holder = threading.Thread(target=hold, daemon=True)

    def fault() -> None:
        holder.start()
        assert held.wait(10)

    def heal() -> None:
        time.sleep(FAULT_SECONDS)
        release.set()
        holder.join(10)

    _fault_then_mail(world, dovecot, fake_telegram, fault, heal)


def test_postgres_read_only_after_a_failover(tmp_path: Any, dovecot: Dovecot, imap_user: ImapUser, pg_url: str,
                                            fake_llm: FakeLLM, fake_telegram: FakeTelegram) -> None:
    world = _world(tmp_path, pg_url, imap_user, fake_llm, fake_telegram)
    database = urlparse(pg_url).path.lstrip("/")

    def fault() -> None:
        admin(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
        terminate_sessions(database)  # the pool's read-write sessions go: reconnects are read-only

    def heal() -> None:
        time.sleep(FAULT_SECONDS)
        admin(f'ALTER DATABASE "{database}" SET default_transaction_read_only = off')
        terminate_sessions(database)

    _fault_then_mail(world, dovecot, fake_telegram, fault, heal)


def test_postgres_refusing_connections(tmp_path: Any, dovecot: Dovecot, imap_user: ImapUser, pg_app_url: str,
                                      fake_llm: FakeLLM, fake_telegram: FakeTelegram) -> None:
    world = _world(tmp_path, pg_app_url, imap_user, fake_llm, fake_telegram)
    parsed = urlparse(pg_app_url)
    database, role = parsed.path.lstrip("/"), parsed.username

    def fault() -> None:
        admin(f'ALTER ROLE "{role}" CONNECTION LIMIT 0')  # "too many connections for role"
        terminate_sessions(database)

    def heal() -> None:
        time.sleep(FAULT_SECONDS)
        admin(f'ALTER ROLE "{role}" CONNECTION LIMIT -1')

    _fault_then_mail(world, dovecot, fake_telegram, fault, heal)
