"""Start-up, in-process (issue 5: the pod's memory): the newest schema read from the migration scripts without
alembic, and the memory release. What a fresh `recruiter run` process loads is tests/e2e/test_startup_process.py."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from recruiter.memory import keep_releasing, release_memory
from recruiter.store.migrate import alembic_config, at_head, head_of, head_revision


def test_head_read_from_the_scripts_is_alembics_head(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    assert head_revision() == ScriptDirectory.from_config(alembic_config(url)).get_current_head()


@pytest.mark.parametrize(
    ("scripts", "head"),
    [
        ({"a.py": "revision = 'a'\ndown_revision = None\n", "b.py": 'revision: str = "b"\ndown_revision = "a"\n'},
         "b"),
        # a merge revision names both parents
        ({"a.py": "revision = 'a'\ndown_revision = None\n", "b.py": "revision = 'b'\ndown_revision = 'a'\n",
          "c.py": "revision = 'c'\ndown_revision = 'a'\n", "m.py": "revision = 'm'\ndown_revision = ('b', 'c')\n"},
         "m"),
        # two heads, a parent that is missing, a computed value, no scripts: alembic decides
        ({"a.py": "revision = 'a'\ndown_revision = None\n", "b.py": "revision = 'b'\ndown_revision = None\n"}, None),
        ({"b.py": "revision = 'b'\ndown_revision = 'a'\n"}, None),
        ({"a.py": "revision = 'a'\ndown_revision = PARENT\n"}, None),
        ({"a.py": "revision = REV\ndown_revision = None\n"}, None),
        ({"__init__.py": ""}, None),
    ],
)
def test_head_of_scripts_or_none_when_unsure(tmp_path: Path, scripts: dict[str, str], head: str | None) -> None:
    for name, source in scripts.items():
        (tmp_path / name).write_text(f'"""A migration.\n\nRevision ID: x\n"""\n{source}')
    assert head_of(tmp_path) == head


def test_empty_file_is_not_at_head(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    assert not asyncio.run(at_head(url))


def test_release_memory_answers_what_it_gave_back() -> None:
    released = release_memory(collect=True)
    if sys.platform == "linux" and os.path.exists("/proc/self/statm"):
        assert isinstance(released, float)


async def test_memory_release_runs_until_cancelled() -> None:
    task = asyncio.create_task(keep_releasing(first=0.0, every=0.01))
    await asyncio.sleep(0.1)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
