"""A parsed mail, a triage verdict and hostile text for the card and notifier tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from recruiter.mail.parse import ParsedMail
from recruiter.model import Meeting, TriageResult

RTL = "مرحبا بك في شركتنا — שלום"
NASTY = "<b>bold</b> & <script>alert('x')</script> *stars* _under_ `tick` 😀👩‍💻 " + RTL


def a_mail(**overrides: Any) -> ParsedMail:
    """A parsed recruiter mail from Jane Doe at Acme; ``overrides`` replace its fields."""
    values: dict[str, Any] = {
        "key": "k@acme.example", "message_id": "<k@acme.example>",
        "subject": "Staff SRE at Acme — quick chat?", "from_name": "Jane Doe",
        "from_addr": "jane@acme.example", "to_addrs": ("me@example.org",), "reply_to": None,
        "date": datetime(2026, 11, 20, 9, 30, tzinfo=UTC), "references": (),
    }
    values.update(overrides)
    return ParsedMail(**values)


def a_triage(**overrides: Any) -> TriageResult:
    """Acme's Staff SRE verdict with three meetings in three time zones; ``overrides`` replace its fields."""
    values: dict[str, Any] = {
        "is_recruiter": True, "confidence": 0.87, "kind": "scheduling", "company": "Acme",
        "role": "Staff SRE", "location": "London", "remote": "hybrid", "compensation": "£150k-£180k",
        "summary": "Acme proposes an intro call for a Staff SRE role.",
        "meetings": [
            Meeting.model_validate({"start": "2026-12-03T15:00:00+02:00", "title": "Intro call"}),
            Meeting(start=datetime(2026, 12, 4, 10, 0, tzinfo=ZoneInfo("Europe/Berlin")), title="Tech"),
            Meeting.model_validate({"start": "2026-12-05T09:00:00Z", "title": "Onsite"}),
        ],
    }
    values.update(overrides)
    return TriageResult(**values)
