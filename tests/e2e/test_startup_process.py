"""What `recruiter run` loads at start, in a fresh process (issue 5: the pod's memory): a database already at
the newest schema is not migrated with alembic, CalDAV and the console libraries stay unimported when unused,
and the commands that do use them still work. (The in-process parts are tests/unit/test_startup.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect, text

from recruiter.store.engine import make_engine
from recruiter.store.migrate import at_head, downgrade, head_revision, prepare_database

REPO = Path(__file__).resolve().parents[2]

# Imported by nothing `recruiter run` does when CalDAV is not configured and the database is at head.
NOT_ON_THE_RUN_PATH = ("alembic", "mako", "caldav", "rich", "pygments", "mailbox", "recruiter.cli.replay",
                       "recruiter.cli.backtest", "recruiter.cli.status")

# What `recruiter run` imports before run_service builds anything, then its prepare_database.
RUN_PATH = """
import asyncio, json, sys
url, names = sys.argv[1], set(sys.argv[2:])
sys.argv = ["recruiter", "run"]
from recruiter.__main__ import start
start(sys.argv)
import recruiter.cli.main, recruiter.app, recruiter.ingest.replay
from recruiter.store.migrate import prepare_database
asyncio.run(prepare_database(url))
print(json.dumps(sorted(m for m in sys.modules if m in names or m.split(".")[0] in names)))
"""


def _run_path_modules(url: str) -> list[str]:
    """The modules of NOT_ON_THE_RUN_PATH that the start of `recruiter run` loads, in a fresh process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALDAV_", "DB_"))}
    result = subprocess.run([sys.executable, "-c", RUN_PATH, url, *NOT_ON_THE_RUN_PATH], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout.splitlines()[-1])
    return loaded


async def _versions(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
            return {row[0] for row in rows}
    finally:
        await engine.dispose()


async def _columns(url: str, table: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            found = await connection.run_sync(lambda c: inspect(c).get_columns(table))
            return {column["name"] for column in found}
    finally:
        await engine.dispose()


def test_database_at_head_starts_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    asyncio.run(prepare_database(url))  # new database: migrated
    assert asyncio.run(_versions(url)) == {head_revision()}

    assert _run_path_modules(url) == []
    assert asyncio.run(_versions(url)) == {head_revision()}


LOADED = "sorted({m.split('.')[0] for m in __import__('sys').modules} & {'rich', 'pygments', 'click'})"


def test_the_budget_helpers_run_without_the_console_libraries() -> None:
    from recruiter.budget import Budget

    async def loaded() -> list[str]:
        budget = Budget(5.0, helpers=1)
        try:
            result: list[str] = await budget.run(eval, LOADED)
            return result
        finally:
            await budget.aclose()

    assert asyncio.run(loaded()) == []


def test_importing_the_package_changes_no_import() -> None:
    """No import-time tricks: `import recruiter` leaves structlog and httpx to import what they import."""
    code = ("import sys, recruiter, recruiter.log, httpx; "
            "print(sys.modules.get('rich') is not None, sys.modules.get('httpx._main') is not None)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                            check=True)
    assert result.stdout.split() == ["True", "True"]  # rich is installed (typer needs it), so both load it


def test_console_tracebacks_are_plain_even_with_rich_installed() -> None:
    """rich's tracebacks show local variables, secrets among them: the console renderer never uses them."""
    code = """
import io, sys, structlog
from recruiter.log import configure_logging
out = io.StringIO()
configure_logging(fmt="console", secrets=(), stream=out)
def fail(password="hunter2-local"):
    raise ValueError("boom")
try:
    fail()
except ValueError:
    structlog.get_logger().exception("failed")
print("rich" in sys.modules)
print(out.getvalue())
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                            check=True)
    assert result.stdout.startswith("True")
    assert "Traceback (most recent call last)" in result.stdout and "ValueError: boom" in result.stdout
    assert "hunter2-local" not in result.stdout and "╭" not in result.stdout


def test_database_behind_head_is_still_migrated_on_start(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    asyncio.run(prepare_database(url))
    asyncio.run(downgrade(url, "0002"))
    assert "origin" not in asyncio.run(_columns(url, "messages"))
    assert not asyncio.run(at_head(url))

    loaded = _run_path_modules(url)
    assert "alembic" in loaded  # migrating is alembic's job
    assert asyncio.run(_versions(url)) == {head_revision()}
    assert "origin" in asyncio.run(_columns(url, "messages"))
    assert asyncio.run(at_head(url))


def _recruiter(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([sys.executable, "-m", "recruiter", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_every_command_is_listed_and_documented(tmp_path: Path) -> None:
    listed = _recruiter(tmp_path, "--help")
    assert listed.returncode == 0, listed.stderr
    for command in ("run", "migrate", "process", "messages", "status", "replay", "backtest", "dlq"):
        assert command in listed.stdout
    for command in ("run", "replay", "backtest"):
        helped = _recruiter(tmp_path, command, "--help")
        assert helped.returncode == 0, helped.stderr
        assert "Usage" in helped.stdout
    assert "--shutdown-grace" in _recruiter(tmp_path, "run", "--help").stdout


def test_tables_still_print(tmp_path: Path) -> None:
    result = _recruiter(tmp_path, "dlq", "list")
    assert result.returncode == 0, result.stderr
    assert "0 dead message(s)" in result.stderr
