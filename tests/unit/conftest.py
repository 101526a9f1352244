"""Fixtures of the unit tests: nothing here starts a real server (the loopback fakes run in-process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from recruiter.notify.telegram import TelegramNotifier
from recruiter.store.migrate import prepare_database
from recruiter.store.repo import Store
from tests.servers.fake_telegram import FakeTelegram
from tests.support.telegram import CHAT


@pytest.fixture
async def notifier(fake_telegram: FakeTelegram) -> AsyncIterator[TelegramNotifier]:
    """A real TelegramNotifier pointed at the fake Bot API, sending to ``CHAT``."""
    notifier = TelegramNotifier(fake_telegram.token, CHAT, base_url=fake_telegram.base_url, timeout=5)
    try:
        yield notifier
    finally:
        await notifier.aclose()


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
