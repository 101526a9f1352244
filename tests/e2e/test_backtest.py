"""`recruiter backtest`: the CLI on the shipped labelled set, exact figures on a tiny set whose answer is
known, IMAP folders on a real Dovecot, and proof that nothing is written anywhere."""

from __future__ import annotations

import csv
import json
import mailbox
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recruiter.errors import LabelError
from recruiter.llm.client import LLM
from recruiter.triage.backtest import Backtest, Label, Labels, load_labels, same_name
from recruiter.triage.llm import Triager
from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, ImapUser
from tests.servers.fake_llm import FakeLLM

REPO = Path(__file__).resolve().parents[2]
LABELLED = REPO / "bench" / "labelled"
FRIEND = "Chris Novak <chris@friends.example>"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any of the service's variables, plus ``extra``."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR")
    return {**{k: v for k, v in os.environ.items() if k in keep}, **extra}


def backtest(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "recruiter", "backtest", *args], cwd=cwd, env=env or clean_env(),
                          capture_output=True, text=True, timeout=120, check=False)


def test_labelled_set_as_json_writes_nothing(tmp_path: Path) -> None:
    result = backtest(tmp_path, "--mbox", str(LABELLED), "--labels", str(LABELLED / "labels.csv"), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert list(tmp_path.iterdir()) == []  # no recruiter.db, drafts/, events/
    assert report["messages"] == len(list(LABELLED.glob("*.eml"))) >= 60
    assert report["unlabelled"] == 0 and report["errors"] == []
    assert report["triage"] == "rules"
    c = report["classification"]
    assert c["tp"] + c["fn"] == 31 and c["tp"] + c["fp"] + c["fn"] + c["tn"] == report["messages"]
    assert c["precision"] == round(c["tp"] / (c["tp"] + c["fp"]), 4)
    assert set(report["extraction"]) == {"company", "role", "meeting", "pay", "location", "level"}
    assert {row["total"] for row in report["extraction"].values()} == {c["tp"]}  # every recruiter mail is fit-labelled
    assert set(report["fit"]) == {"level", "location", "comp", "equity", "domain", "all"}
    assert report["fit"]["all"]["total"] == c["tp"]
    rules = [row for row in report["tiers"] if row["tier"] == "rules"]
    assert rules and rules[0]["calls"] == report["messages"] - report["prefilter"]["skipped"]
    assert report["prefilter"]["recruiter_mail_skipped"] == []
    assert {"source", "expected", "predicted", "tier", "checks"} <= report["mails"][0].keys()


def test_the_table_names_the_figures(tmp_path: Path) -> None:
    result = backtest(tmp_path, "--mbox", str(LABELLED), "--labels", str(LABELLED / "labels.csv"))
    assert result.returncode == 0, result.stderr
    for needle in ("precision", "recall", "F1", "company", "role", "meeting", "rules", "fit against the owner profile",
                   "equity", "domain"):
        assert needle in result.stdout


def _tiny_set(folder: Path) -> tuple[Path, Path]:
    """Six mails whose figures with the fake LLM's keyword triage are known (see the labels' notes)."""
    mails = [
        ("<m1@t.example>", make_mail(subject="Staff SRE", body="I am recruiting.\nCompany: Acme\nRole: Staff SRE\n"
                                     "MEETING: 2026-12-03T15:00:00+00:00 30\n")),
        ("<m2@t.example>", make_mail(subject="Platform", body="We are hiring.\nCompany: Globex Inc.\n"
                                     "Role: Data Scientist\n")),
        ("<m3@t.example>", make_mail(subject="Dinner", body="Dinner on Saturday?\n", sender=FRIEND)),
        ("<m4@t.example>", make_mail(subject="Seat", body="Your position in the queue is 4.\n", sender=FRIEND)),
        ("<m5@t.example>", make_mail(subject="News", body="Everyone is hiring!\n",
                                     headers={"List-Id": "<news.example>"})),
        ("<m6@t.example>", make_mail(subject="Photos", body="Here are the photos.\n", sender=FRIEND)),
    ]
    box_path = folder / "tiny.mbox"
    box = mailbox.mbox(box_path)
    for message_id, raw in mails:
        box.add(_with_id(raw, message_id))
    box.close()
    labels = folder / "labels.csv"
    labels.write_text(
        "message_id,is_recruiter,company,role,meeting_start\n"
        "<m1@t.example>,yes,ACME GmbH,staff sre,2026-12-03T16:00:00+01:00\n"  # same instant, other offset
        "m2@t.example,yes,Globex,Platform Engineer,\n"  # role wrong
        "<m3@t.example>,yes,,,\n"  # triage says no: a false negative
        "<m4@t.example>,no,,,\n"  # "position": a false positive
        "<m5@t.example>,no,,,\n"  # skipped by the prefilter: a true negative without a call
        "<m6@t.example>,no,,,\n",  # true negative
        encoding="utf-8")
    return box_path, labels


def _with_id(raw: bytes, message_id: str) -> bytes:
    head, _, body = raw.partition(b"\n\n")
    lines = [line for line in head.split(b"\n") if not line.lower().startswith(b"message-id:")]
    return b"\n".join([*lines, f"Message-ID: {message_id}".encode()]) + b"\n\n" + body


def test_figures_on_a_tiny_set_with_a_known_answer(tmp_path: Path, fake_llm: FakeLLM) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    box, labels = _tiny_set(inputs)
    work = tmp_path / "work"
    work.mkdir()
    env = clean_env(LLAMA_SWAP_URL=fake_llm.url, LLAMA_SWAP_MODEL="qwen3-8b")
    result = backtest(work, "--mbox", str(box), "--labels", str(labels), "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["classification"] == {"tp": 2, "fp": 1, "fn": 1, "tn": 2, "precision": 0.6667, "recall": 0.6667,
                                        "f1": 0.6667}
    assert report["extraction"] == {"company": {"correct": 2, "total": 2, "accuracy": 1.0},
                                    "role": {"correct": 1, "total": 2, "accuracy": 0.5},
                                    "meeting": {"correct": 2, "total": 2, "accuracy": 1.0}}
    assert report["prefilter"] == {"skipped": 1, "by_reason": {"list": 1}, "recruiter_mail_skipped": []}
    [row] = report["tiers"]
    assert (row["tier"], row["model"], row["outcome"], row["calls"]) == ("llama-swap", "qwen3-8b", "ok", 5)
    assert row["prompt_tokens"] > 5 * 100 and row["completion_tokens"] > 0 and row["seconds"] > 0
    assert len(fake_llm.triage_requests()) == 5 and not fake_llm.draft_requests()  # triage only, no drafts
    assert list(work.iterdir()) == []

    rules = backtest(work, "--mbox", str(box), "--labels", str(labels), "--json", "--rules", env=env)
    assert rules.returncode == 0, rules.stderr
    assert json.loads(rules.stdout)["triage"] == "rules" and len(fake_llm.requests) == 5  # --rules: no LLM


def test_imap_folders_are_read_without_changing_them(tmp_path: Path, dovecot: Dovecot, imap_user: ImapUser) -> None:
    recruiter_mail = [make_mail(subject=f"Staff SRE role {n}") for n in range(3)]
    other_mail = [make_mail(subject=f"Dinner {n}", body="Dinner on Saturday?\n", sender="chris@friends.example")
                  for n in range(2)]
    for raw in recruiter_mail:
        dovecot.append(imap_user.user, raw, folder="Known/Recruiter")
    for raw in other_mail:
        dovecot.append(imap_user.user, raw, folder="Known/Other")
    before = {f: dovecot.messages(imap_user.user, f) for f in ("Known/Recruiter", "Known/Other")}
    env = clean_env(IMAP_MAILBOXES="me", IMAP_ME_HOST=imap_user.host, IMAP_ME_PORT=str(imap_user.port),
                    IMAP_ME_USER=imap_user.user, IMAP_ME_PASS=imap_user.password, IMAP_ME_TLS="none")
    result = backtest(tmp_path, "--imap-recruiter", "Known/Recruiter", "--imap-other", "Known/Other", "--json",
                      env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["messages"] == 5
    assert report["classification"]["tp"] + report["classification"]["fn"] == 3
    assert report["classification"]["tn"] + report["classification"]["fp"] == 2
    assert {f: dovecot.messages(imap_user.user, f) for f in before} == before  # no \Seen, nothing moved
    assert list(tmp_path.iterdir()) == []


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert backtest(tmp_path).returncode == 2
    assert backtest(tmp_path, "--mbox", str(LABELLED)).returncode == 2  # no labels
    missing = backtest(tmp_path, "--mbox", str(tmp_path / "nope.mbox"), "--labels", str(LABELLED / "labels.csv"))
    assert missing.returncode == 2 and "nope.mbox" in missing.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("file,is_recruiter\nx.eml,perhaps\n", encoding="utf-8")
    result = backtest(tmp_path, "--mbox", str(LABELLED), "--labels", str(bad))
    assert result.returncode == 2 and "bad.csv:2" in result.stderr


def test_the_shipped_set_is_what_its_script_writes(tmp_path: Path) -> None:
    from bench.labelled.build import write

    written = write(tmp_path)
    assert len(written) >= 60
    shipped = sorted(p.name for p in LABELLED.glob("*.eml"))
    assert sorted(p.name for p in written) == shipped
    for path in [*written, tmp_path / "labels.csv"]:
        assert path.read_bytes() == (LABELLED / path.name).read_bytes(), path.name
    with (tmp_path / "labels.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {"en", "de", "fr", "es"} <= {row["language"] for row in rows}
    assert {"ats-html", "forwarded", "threaded", "job-alert", "newsletter", "personal", "notification"} <= {
        row["category"] for row in rows}


async def test_unparseable_and_unlabelled_mail_are_reported_not_scored_silently() -> None:
    labels = Labels({"broken.eml": Label(True), "good.eml": Label(False)}, {})
    run = Backtest(Triager(LLM([])), labels)
    dinner = make_mail(subject="Dinner", sender=FRIEND, body="Dinner?\n")
    await run.run([("dir/broken.eml", b""), ("dir/good.eml", dinner), ("dir/stranger.eml", make_mail())])
    report = run.report()
    assert report["messages"] == 2 and report["unlabelled"] == 1
    assert report["errors"] == [{"source": "dir/broken.eml", "error": "empty message"}]
    assert report["classification"] == {"tp": 0, "fp": 0, "fn": 1, "tn": 1, "precision": 0.0, "recall": 0.0,
                                        "f1": 0.0}


def test_labels_need_an_offset_on_meetings(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("file,is_recruiter,meeting_start\na.eml,yes,2026-12-03T15:00:00\n", encoding="utf-8")
    with pytest.raises(LabelError, match="UTC offset"):
        load_labels(path)


@pytest.mark.parametrize(("expected", "got", "same"), [
    ("Sternwerk", "Sternwerk AG", True),
    ("Médiane", "mediane", True),
    ("Lead DevOps Engineer", "Lead DevOps Engineer (m/w/d)", True),
    (None, None, True),
    ("Acme", None, False),
    (None, "Acme", False),
    ("Quarry Labs", "Larkspur", False),
    ("AI", "Staff AI Platform Engineer", False),  # too short to count as contained
    ("Backend Engineer, Payments", "Backend Engineer", True),
    ("Ingeniero/a de Plataforma", "Ingeniero", False),  # less than half the title
])
def test_names_are_compared_loosely(expected: str | None, got: str | None, same: bool) -> None:
    assert same_name(expected, got) is same
