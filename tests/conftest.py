"""Shared fixtures. Each real server or loopback fake lives in its own module under tests/servers/."""

import pytest

pytest_plugins = [
    "tests.servers.dovecot",
    "tests.servers.cyrus",
    "tests.servers.fake_llm",
    "tests.servers.postgres",
    "tests.servers.radicale",
    "tests.servers.fake_telegram",
    "tests.servers.smtp",
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_imap_servers: run on Dovecot and on Cyrus (the `dovecot` fixture "
                                       "and `imap_user` are then the server of the test id's `-cyrus`/`-dovecot`)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked ``both_imap_servers`` runs against Dovecot and against Cyrus, like the two databases."""
    if metafunc.definition.get_closest_marker("both_imap_servers") and "imap_kind" in metafunc.fixturenames:
        metafunc.parametrize("imap_kind", ["dovecot", "cyrus"])
