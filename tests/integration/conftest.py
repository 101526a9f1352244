"""Fixtures of the integration tests (the real servers themselves are in tests/servers/)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from recruiter.store.migrate import upgrade_head
from recruiter.store.repo import Store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A migrated SQLite store (modules that test the store on both databases define their own)."""
    url = f"sqlite+aiosqlite:///{tmp_path}/w.db"
    await upgrade_head(url)
    store = Store.from_url(url)
    yield store
    await store.aclose()
