"""Shared fixtures. Each real server or loopback fake lives in its own module under tests/servers/."""

pytest_plugins = [
    "tests.servers.dovecot",
    "tests.servers.fake_llm",
    "tests.servers.postgres",
    "tests.servers.radicale",
    "tests.servers.fake_telegram",
    "tests.servers.smtp",
]
