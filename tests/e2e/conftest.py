"""Fixtures of the end-to-end tests: a `recruiter run` environment, migrated, ready to start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.dovecot import ImapUser
from tests.servers.fake_llm import FakeLLM
from tests.servers.fake_telegram import FakeTelegram
from tests.support.service import cli, service_env


@pytest.fixture
def setup(
    tmp_path: Path, db_url: str, imap_user: ImapUser, fake_llm: FakeLLM, fake_telegram: FakeTelegram,
) -> Iterator[dict[str, Any]]:
    """``env``, ``cwd`` and ``user`` of a `recruiter run` (see :func:`tests.support.service.service_env`) on a
    migrated store; start it with :func:`tests.support.service.start`."""
    env = service_env(tmp_path, db_url, imap_user, fake_llm, fake_telegram)
    assert cli(env, tmp_path, "migrate").returncode == 0
    yield {"env": env, "cwd": tmp_path, "user": imap_user}
