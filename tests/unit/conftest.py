"""Fixtures of the unit tests: nothing here starts a real server (the loopback fakes run in-process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from recruiter.store.migrate import prepare_database
from recruiter.store.repo import Store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """The incidents' own store: a migrated SQLite file (time in these tests is a fake clock)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'alerts.db'}"
    await prepare_database(url)
    store = Store.from_url(url)
    try:
        yield store
    finally:
        await store.aclose()
