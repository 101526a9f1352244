"""Shared fixtures. Each real server or loopback fake lives in its own module under tests/servers/.

The tests come in three layers, one folder each, and each test gets its folder's marker:

- ``tests/unit``: in-process only: no real server, no child process, time on a fake clock instead of sleeps (the
  loopback fakes of the Bot API and the LLM are allowed; a few client-timeout tests wait out a short timeout on
  them). ``pytest -m unit`` is the fast loop, well under a minute.
- ``tests/integration``: the code in-process against real Dovecot/Cyrus, PostgreSQL, Radicale, an SMTP sink,
  real OS processes and real time, or hours of simulated time through the real store.
- ``tests/e2e``: the ``recruiter`` command as a child process (``recruiter run`` and the one-shot commands).

Helpers that several modules share live in tests/support/; a test module never imports another one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the fixture imports them itself: they load after the plugins (assertion rewriting)
    from recruiter.notify.telegram import TelegramNotifier
    from tests.servers.fake_telegram import FakeTelegram

pytest_plugins = [
    "tests.servers.dovecot",
    "tests.servers.cyrus",
    "tests.servers.fake_llm",
    "tests.servers.postgres",
    "tests.servers.radicale",
    "tests.servers.fake_telegram",
    "tests.servers.smtp",
]


LAYERS = ("unit", "integration", "e2e")
_TESTS = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_imap_servers: run on Dovecot and on Cyrus (the `dovecot` fixture "
                                       "and `imap_user` are then the server of the test id's `-cyrus`/`-dovecot`)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with its layer, the folder under tests/ it lives in (``pytest -m unit``)."""
    for item in items:
        path = item.path.resolve()
        if not path.is_relative_to(_TESTS):
            continue
        parts = path.relative_to(_TESTS).parts
        layer = parts[0] if len(parts) > 1 else None
        if layer not in LAYERS:
            raise pytest.UsageError(f"{item.nodeid}: a test module belongs in tests/unit, tests/integration or "
                                    "tests/e2e")
        item.add_marker(layer)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked ``both_imap_servers`` runs against Dovecot and against Cyrus, like the two databases."""
    if metafunc.definition.get_closest_marker("both_imap_servers") and "imap_kind" in metafunc.fixturenames:
        metafunc.parametrize("imap_kind", ["dovecot", "cyrus"])


@pytest.fixture
async def notifier(fake_telegram: FakeTelegram) -> AsyncIterator[TelegramNotifier]:
    """A real TelegramNotifier pointed at the fake Bot API, sending to ``CHAT``."""
    from recruiter.notify.telegram import TelegramNotifier
    from tests.support.telegram import CHAT

    notifier = TelegramNotifier(fake_telegram.token, CHAT, base_url=fake_telegram.base_url, timeout=5)
    try:
        yield notifier
    finally:
        await notifier.aclose()
