"""`alembic upgrade head` on the configured database, without needing alembic.ini.

Alembic (with Mako and the Pygments lexers Mako pulls in) weighs about 10 MB of a process that must stay
small. Every command that starts on a SQLite database migrates it (:func:`prepare_database`), so that is
done in two steps: the database's ``alembic_version`` is compared with the head revision read from the
migration scripts' ``revision``/``down_revision`` lines, and alembic is imported only when they differ
(or when the scripts cannot be read that simply: then alembic decides, as before).
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from recruiter.store.engine import make_engine

if TYPE_CHECKING:  # imported when a migration actually runs
    from alembic.config import Config

_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]\s*$", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")


def _scripts() -> Path:
    return Path(str(resources.files("migrations")))


def alembic_config(url: str) -> Config:
    """An Alembic Config whose scripts are the installed `migrations` package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_scripts()))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@functools.cache
def head_revision() -> str | None:
    """The head revision of the installed migration scripts, read without alembic (see head_of)."""
    return head_of(_scripts() / "versions")


def head_of(versions: Path) -> str | None:
    """The single head revision of the migration scripts in ``versions``, read from their
    ``revision =`` and ``down_revision =`` lines; None when that is not certain (no scripts, a line it
    cannot read, several heads, a parent that is not there): then alembic must decide."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in sorted(versions.glob("*.py")):
        source = script.read_text(encoding="utf-8")
        found, down = _REVISION.findall(source), _DOWN_REVISION.findall(source)
        if not found and not down:
            continue  # __init__.py, helpers
        if len(found) != 1 or len(down) != 1:
            return None
        if down[0] != "None":
            names = _QUOTED.findall(down[0])
            if not names:
                return None
            parents.update(names)
        revisions.add(found[0])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def _current_revisions(sync_connection: Connection, /) -> set[str]:
    if not inspect(sync_connection).has_table("alembic_version"):
        return set()
    return {row[0] for row in sync_connection.execute(text("SELECT version_num FROM alembic_version"))}


async def upgrade_head(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` from inside a running event loop."""
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, url, revision)
    finally:
        await engine.dispose()


async def at_head(url: str) -> bool:
    """Whether the database at ``url`` is at the scripts' head revision (False when that is not certain)."""
    head = head_revision()
    if head is None:
        return False
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_current_revisions) == {head}
    finally:
        await engine.dispose()


async def prepare_database(url: str) -> None:
    """SQLite (the embedded default) is migrated on start; other databases by `recruiter migrate`.
    A database already at head is left alone without importing alembic."""
    if url.startswith("sqlite") and not await at_head(url):
        await upgrade_head(url)


async def downgrade(url: str, revision: str) -> None:
    """Downgrade the database at ``url`` to ``revision`` (tests and rollbacks)."""
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_downgrade, url, revision)
    finally:
        await engine.dispose()


def _upgrade(sync_connection: Connection, url: str, revision: str, /) -> None:
    from alembic import command

    config = alembic_config(url)
    config.attributes["connection"] = sync_connection
    command.upgrade(config, revision)


def _downgrade(sync_connection: Connection, url: str, revision: str, /) -> None:
    from alembic import command

    config = alembic_config(url)
    config.attributes["connection"] = sync_connection
    command.downgrade(config, revision)
