"""`recruiter backtest` scores fit (issue 16): pay/location/level extraction and the fit verdicts against the
owner profile, on mails labelled with an expected fit."""

from __future__ import annotations

from pathlib import Path

import pytest

from recruiter.errors import LabelError
from recruiter.llm.client import LLM
from recruiter.reply.draft import load_profile
from recruiter.triage.backtest import Backtest, Label, Labels, load_labels, same_pay, same_place
from recruiter.triage.fit import FitCheck, load_rates
from recruiter.triage.llm import Triager
from tests.mailfactory import make_mail

CHECK = FitCheck.from_profile(load_profile(None), load_rates(None))
BERLIN = make_mail(subject="Staff Platform Engineer in Berlin", body=(
    "Hi Alex,\n\nI'm a recruiter at Acme and we're hiring a Staff Platform Engineer in Berlin, salary €95k "
    "plus stock options. Would you be open to a chat?\n"))


def test_the_labels_read_the_fit_columns(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("file,is_recruiter,compensation,location,level,expected_fit\n"
                    "a.eml,yes,€95k,Berlin,Staff,level=meets comp=misses\n"
                    "b.eml,yes,,,,\n", encoding="utf-8")
    labels = load_labels(path)
    assert labels.by_file["a.eml"] == Label(True, compensation="€95k", location="Berlin", level="Staff",
                                            fit={"level": "meets", "comp": "misses"})
    assert labels.by_file["b.eml"].fit is None
    path.write_text("file,is_recruiter,expected_fit\na.eml,yes,comp=great\n", encoding="utf-8")
    with pytest.raises(LabelError, match=r"labels\.csv:2: expected_fit 'comp=great'"):
        load_labels(path)


async def test_fit_labelled_mail_is_scored() -> None:
    right = Label(True, company="Acme", role="Staff Platform Engineer", compensation="€95k", location="Berlin",
                  level="Staff", fit={"level": "meets", "location": "meets", "comp": "misses", "equity": "meets",
                                      "domain": "unknown"})
    wrong = Label(True, company="Acme", role="Staff Platform Engineer", compensation="€195k", location="Paris",
                  level="Senior", fit={"comp": "meets"})
    run = Backtest(Triager(LLM([])), Labels({"right.eml": right, "wrong.eml": wrong}, {}), fit=CHECK)
    await run.run([("right.eml", BERLIN), ("wrong.eml", BERLIN)])
    report = run.report()
    assert report["extraction"]["pay"] == {"correct": 1, "total": 2, "accuracy": 0.5}
    assert report["extraction"]["location"]["correct"] == 1 and report["extraction"]["level"]["correct"] == 1
    assert report["fit"]["comp"] == {"correct": 1, "total": 2, "accuracy": 0.5}
    assert report["fit"]["level"] == {"correct": 1, "total": 1, "accuracy": 1.0}
    assert report["fit"]["all"] == {"correct": 1, "total": 2, "accuracy": 0.5}
    assert report["mails"][0]["fit"]["comp"] == "misses"


async def test_without_fit_labels_there_is_no_fit_figure() -> None:
    run = Backtest(Triager(LLM([])), Labels({"a.eml": Label(True, company="Acme")}, {}), fit=CHECK)
    await run.run([("a.eml", BERLIN)])
    report = run.report()
    assert set(report["extraction"]) == {"company", "role", "meeting"}
    assert report["fit"]["all"]["total"] == 0


def test_pay_and_place_compare_by_meaning() -> None:
    assert same_pay("EUR 95,000-115,000", "€95k–€115k") and not same_pay("€95k", "£95k")
    assert same_pay(None, None) and not same_pay("€95k", None)
    assert same_place("Berlin", "Berlin, Germany") and not same_place("Berlin", "Munich")
