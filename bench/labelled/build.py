"""Writes the labelled sample set: ``bench/labelled/*.eml`` and ``bench/labelled/labels.csv``.

Run ``python bench/labelled/build.py`` from the repository root; the output is byte-for-byte the
same on every run (fixed dates, Message-IDs and MIME boundaries), so the files in git can be
checked against it. Every person, company and domain here is invented (``.example`` domains).

Label conventions (what ``recruiter backtest`` compares against):

- ``is_recruiter``: a person (in-house or agency recruiter, hiring manager) or an applicant-tracking
  system writing to the owner about a specific job or an interview process of theirs. Job-board
  alerts, recruiting-platform marketing, employee-referral newsletters, sales pitches and "we are
  recruiting participants for a study" are not.
- ``company``: the hiring company when the mail names it, else the agency's name; empty when not
  recruiter mail. ``role``: the job title as written (empty when none is named).
- ``meeting_start``: the first proposed interview time, ISO 8601 with its UTC offset, when the mail
  proposes a concrete one (a date, a time and a zone or an invitation); else empty.
- ``compensation``, ``location``, ``level``, ``expected_fit``: the fit labels of recruiter mail, from
  ``bench/labelled/fit_labels.py`` (see its conventions); empty for other mail.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parents[1]) not in sys.path:
    sys.path.insert(0, str(HERE.parents[1]))

from bench.labelled.corpus import SAMPLES, Sample  # noqa: E402
from bench.labelled.fit_labels import FIT  # noqa: E402
from bench.labelled.render import render  # noqa: E402

FIELDS = ("file", "message_id", "is_recruiter", "company", "role", "meeting_start", "compensation", "location", "level",
          "expected_fit", "language", "category", "note")


def write(out: Path = HERE) -> list[Path]:
    """Write every sample and labels.csv into ``out``; return the .eml paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    rows: list[dict[str, str]] = []
    for index, sample in enumerate(SAMPLES, start=1):
        name = f"{index:02d}-{sample.slug}.eml"
        path = out / name
        path.write_bytes(render(sample))
        written.append(path)
        rows.append(_row(name, sample))
    with (out / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return written


def _row(name: str, sample: Sample) -> dict[str, str]:
    compensation, location, level, fit = FIT.get(sample.slug, ("", "", "", ""))
    return {
        "file": name,
        "message_id": sample.message_id,
        "is_recruiter": "yes" if sample.is_recruiter else "no",
        "company": sample.company,
        "role": sample.role,
        "meeting_start": sample.meeting,
        "compensation": compensation,
        "location": location,
        "level": level,
        "expected_fit": fit,
        "language": sample.lang,
        "category": sample.category,
        "note": sample.note,
    }


if __name__ == "__main__":
    for stale in HERE.glob("*.eml"):
        stale.unlink()
    paths = write()
    recruiter = sum(1 for s in SAMPLES if s.is_recruiter)
    print(f"wrote {len(paths)} messages ({recruiter} recruiter, {len(paths) - recruiter} other) and labels.csv "
          f"to {HERE}")
