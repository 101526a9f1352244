"""The triage answer: one JSON schema shared by the LLM prompt, the validator and the rules tier."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Kind = Literal["outreach", "follow_up", "scheduling", "rejection", "offer", "other"]
Remote = Literal["remote", "hybrid", "onsite", "unknown"]
Tier = Literal["llama-swap", "llama-swap-fallback", "gpt-mini", "rules"]


class Meeting(BaseModel):
    """One proposed meeting. ``start`` is always timezone-aware."""

    model_config = ConfigDict(extra="ignore")

    start: datetime
    duration_minutes: int = Field(default=30, ge=5, le=480)
    title: str = Field(default="Call", max_length=200)

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("start must carry a UTC offset")
        return value


class TriageResult(BaseModel):
    """What triage knows about one mail. New fields may only ever be added as optional."""

    model_config = ConfigDict(extra="ignore")

    is_recruiter: bool
    confidence: float = Field(ge=0.0, le=1.0)
    kind: Kind = "other"
    company: str | None = Field(default=None, max_length=200)
    role: str | None = Field(default=None, max_length=200)
    location: str | None = Field(default=None, max_length=200)
    remote: Remote = "unknown"
    compensation: str | None = Field(default=None, max_length=200)
    meetings: list[Meeting] = Field(default_factory=list, max_length=10)
    summary: str = Field(default="", max_length=500)

    @field_validator("company", "role", "location", "compensation", mode="before")
    @classmethod
    def _null_words(cls, value: Any) -> Any:
        # Models often write the string "null" or "" where they mean null.
        if isinstance(value, str) and value.strip().lower() in {"", "null", "none", "n/a", "unknown"}:
            return None
        return value


_NULLABLE_STR = {"type": ["string", "null"], "maxLength": 200}

TRIAGE_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "is_recruiter", "confidence", "kind", "company", "role", "location",
        "remote", "compensation", "meetings", "summary",
    ],
    "properties": {
        "is_recruiter": {"type": "boolean"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "kind": {"type": "string", "enum": ["outreach", "follow_up", "scheduling", "rejection", "offer", "other"]},
        "company": _NULLABLE_STR,
        "role": _NULLABLE_STR,
        "location": _NULLABLE_STR,
        "remote": {"type": "string", "enum": ["remote", "hybrid", "onsite", "unknown"]},
        "compensation": _NULLABLE_STR,
        "meetings": {
            "type": "array",
            "maxItems": 10,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["start", "duration_minutes", "title"],
                "properties": {
                    "start": {"type": "string", "format": "date-time"},
                    "duration_minutes": {"type": "integer", "minimum": 5, "maximum": 480},
                    "title": {"type": "string", "maxLength": 200},
                },
            },
        },
        "summary": {"type": "string", "maxLength": 500},
    },
}
