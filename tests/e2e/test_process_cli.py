"""`recruiter process` on the shipped samples with no configuration at all: the embedded-default path."""

from __future__ import annotations

import email
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.service import clean_env

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"


def recruiter(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "recruiter", *args], cwd=cwd, env=clean_env(),
                          capture_output=True, text=True, timeout=120, check=False)


def test_process_samples_without_configuration(tmp_path: Path) -> None:
    result = recruiter(tmp_path, "process", str(SAMPLES))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "recruiter.db").is_file()

    listed = recruiter(tmp_path, "messages", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(rows) == 19
    for row in rows:
        assert {"id", "mailbox", "message_id", "subject", "state", "stage", "is_recruiter", "attempts",
                "last_error"} <= row.keys()
        assert row["state"] in {"done", "skipped"}
    recruiting = [r for r in rows if r["is_recruiter"]]
    assert {r["triage_tier"] for r in recruiting} == {"rules"}

    drafts = sorted((tmp_path / "drafts").glob("*.eml"))
    assert len(drafts) == len(recruiting)
    for path in drafts:
        draft = email.message_from_bytes(path.read_bytes())
        assert draft["Subject"].lower().startswith("re:") and draft["In-Reply-To"]
    assert len(list((tmp_path / "events").glob("*.ics"))) >= 2
    assert result.stdout.count("/cb/send?") == len(recruiting)  # one card per recruiter mail

    again = recruiter(tmp_path, "process", str(SAMPLES))
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("/cb/send?") == 0  # already stored: nothing happens twice
    assert len(list((tmp_path / "drafts").glob("*.eml"))) == len(drafts)


@pytest.mark.parametrize(
    ("env", "needle"),
    [({"IMAP_MAILBOXES": "me"}, "IMAP_ME_HOST"), ({"DB_CONNECTION_STRING": "oracle://x"}, "DB_CONNECTION_STRING"),
     ({"HTTP_PORT": "nine"}, "HTTP_PORT: must be an integer")],
)
def test_bad_setting_stops_with_one_line_naming_it(tmp_path: Path, env: dict[str, str], needle: str) -> None:
    result = subprocess.run([sys.executable, "-m", "recruiter", "run"], cwd=tmp_path, env={**clean_env(), **env},
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    result = recruiter(tmp_path, "process", str(tmp_path / "nope.mbox"))
    assert result.returncode == 2
    assert "nope.mbox" in result.stderr
