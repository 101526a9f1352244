"""`alembic upgrade head` on the configured database, without needing alembic.ini."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from recruiter.store.repo import make_engine


def alembic_config(url: str) -> Config:
    """An Alembic Config whose scripts are the installed `migrations` package."""
    config = Config()
    config.set_main_option("script_location", str(Path(str(resources.files("migrations")))))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade_head(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` from inside a running event loop."""
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, url, revision)
    finally:
        await engine.dispose()


async def prepare_database(url: str) -> None:
    """SQLite (the embedded default) is migrated on start; other databases by `recruiter migrate`."""
    if url.startswith("sqlite"):
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
    config = alembic_config(url)
    config.attributes["connection"] = sync_connection
    command.upgrade(config, revision)


def _downgrade(sync_connection: Connection, url: str, revision: str, /) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = sync_connection
    command.downgrade(config, revision)
