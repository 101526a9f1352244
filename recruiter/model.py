"""The triage answer: one JSON schema shared by the LLM prompt, the validator and the rules tier."""

from __future__ import annotations

import re
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
    # What the fit line needs (recruiter.triage.fit); None: the mail does not say.
    level: str | None = Field(default=None, max_length=60)  # "Staff", "Senior", "Head of …"
    equity: bool | None = None  # equity, stock options or RSUs offered (False: the mail says none)
    industry: str | None = Field(default=None, max_length=100)  # "fintech", "crypto exchange", "ad-tech"

    @field_validator("company", "role", "location", "compensation", "level", "industry", mode="before")
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
        "remote", "compensation", "meetings", "summary", "level", "equity", "industry",
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
        "level": {"type": ["string", "null"], "maxLength": 60,
                  "description": "seniority the role is at, e.g. Senior, Staff, Principal, Head; null if not stated"},
        "equity": {"type": ["boolean", "null"],
                   "description": "true if equity, stock options or RSUs are offered; false if none; null if unsaid"},
        "industry": {"type": ["string", "null"], "maxLength": 100,
                     "description": "the hiring company's industry, e.g. fintech, crypto, ad-tech; null if not stated"},
    },
}


# --- OpenAI's structured-output subset ------------------------------------------------------------

# The keywords every reading of OpenAI's strict mode accepts. Length, range, format and item-count
# keywords are left out: some of them are refused outright ("'maxLength' is not permitted"), and the
# limits are enforced on our side anyway (see repair_answer and TriageResult).
_STRICT_KEYWORDS = frozenset({"type", "properties", "required", "additionalProperties", "items", "enum", "const",
                              "anyOf", "description", "title", "$ref", "$defs"})


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` in OpenAI's strict structured-output subset: every object lists all its properties
    in ``required`` and sets ``additionalProperties: false``; only the keywords above are kept."""
    out: dict[str, Any] = {k: v for k, v in schema.items() if k in _STRICT_KEYWORDS}
    if "properties" in out or out.get("type") == "object":
        properties = {name: strict_schema(sub) for name, sub in (out.get("properties") or {}).items()}
        out["properties"] = properties
        out["required"] = list(properties)
        out["additionalProperties"] = False
    if isinstance(out.get("items"), dict):
        out["items"] = strict_schema(out["items"])
    if isinstance(out.get("anyOf"), list):
        out["anyOf"] = [strict_schema(sub) for sub in out["anyOf"]]
    if isinstance(out.get("$defs"), dict):
        out["$defs"] = {name: strict_schema(sub) for name, sub in out["$defs"].items()}
    return out


# --- mending an answer that is a little off the schema --------------------------------------------

Repair = tuple[str, str]  # (field, kind); kind: truncated, dropped, coerced, defaulted, sanitized, extracted
UNKNOWN_FIELD = "(unknown)"  # the metrics label of a field the schema does not have (its name is the model's)
MAX_MEETINGS = 10
_LIMITS = {"company": 200, "role": 200, "location": 200, "compensation": 200, "summary": 500, "level": 60,
           "industry": 100}
_FIELDS = frozenset(TriageResult.model_fields)
_MEETING_FIELDS = frozenset(Meeting.model_fields)
_KINDS = frozenset(Kind.__args__)  # type: ignore[attr-defined]
_REMOTES = frozenset(Remote.__args__)  # type: ignore[attr-defined]
_TRUE, _FALSE = frozenset({"true", "yes"}), frozenset({"false", "no"})
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def cut_at_word(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, ``…`` marking the cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


def repair_answer(data: dict[str, Any]) -> tuple[dict[str, Any], list[Repair]]:
    """Mend what cannot change the meaning, before validation: drop fields the schema lacks, coerce
    obvious types (``"0.9"`` → 0.9, ``"true"`` → true, ``"45"`` → 45, a number where text belongs),
    cut over-long text at a word, keep the first ``MAX_MEETINGS`` meetings, read an unknown ``kind``
    or ``remote`` as ``other``/``unknown``, ``null`` for a list or text as empty, and strip NUL and
    lone surrogates (no database stores them). Returns the mended copy and the repairs made; what is
    still wrong (no verdict, no confidence, a meeting without an offset) is left to validation."""
    repairs: list[Repair] = []
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in _FIELDS:
            out[key] = value
        else:
            repairs.append((UNKNOWN_FIELD, "dropped"))
    if "is_recruiter" in out:
        out["is_recruiter"] = _boolean(out["is_recruiter"], "is_recruiter", repairs)
    if "confidence" in out:
        out["confidence"] = _number(out["confidence"], "confidence", repairs, integer=False)
    for name, values, fallback in (("kind", _KINDS, "other"), ("remote", _REMOTES, "unknown")):
        if name in out:
            out[name] = _choice(out[name], name, values, fallback, repairs)
    for name, limit in _LIMITS.items():
        if name in out:
            out[name] = _text(out[name], name, limit, repairs, nullable=name != "summary")
    if "meetings" in out:
        out["meetings"] = _meetings(out["meetings"], repairs)
    if out.get("equity") is not None:
        out["equity"] = _boolean(out["equity"], "equity", repairs)
        if not isinstance(out["equity"], bool):  # "unknown", "maybe": not stated
            repairs.append(("equity", "defaulted"))
            out["equity"] = None
    return out, repairs


def _boolean(value: Any, name: str, repairs: list[Repair]) -> Any:
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        repairs.append((name, "coerced"))
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        repairs.append((name, "coerced"))
        return bool(value)
    return value


def _number(value: Any, name: str, repairs: list[Repair], *, integer: bool) -> Any:
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        number = float(value.strip())
        repairs.append((name, "coerced"))
        return int(number) if integer and number.is_integer() else number
    if integer and isinstance(value, float) and value.is_integer():
        repairs.append((name, "coerced"))
        return int(value)
    return value


def _choice(value: Any, name: str, allowed: frozenset[str], fallback: str, repairs: list[Repair]) -> Any:
    if isinstance(value, str) and value in allowed:
        return value
    if isinstance(value, str):
        folded = re.sub(r"[\s-]+", "_", value.strip().lower())
        folded = {"on_site": "onsite", "in_office": "onsite", "followup": "follow_up"}.get(folded, folded)
        if folded in allowed:
            repairs.append((name, "coerced"))
            return folded
    repairs.append((name, "defaulted"))
    return fallback


def _text(value: Any, name: str, limit: int, repairs: list[Repair], *, nullable: bool) -> Any:
    if value is None:
        if nullable:
            return None
        repairs.append((name, "defaulted"))
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        repairs.append((name, "coerced"))
        value = str(value)
    if not isinstance(value, str):
        return value  # a list or an object where text belongs: validation says so
    clean = value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if clean != value:
        repairs.append((name, "sanitized"))
    cut = cut_at_word(clean, limit)
    if cut != clean:
        repairs.append((name, "truncated"))
    return cut


def _meetings(value: Any, repairs: list[Repair]) -> Any:
    if value is None:
        repairs.append(("meetings", "defaulted"))
        return []
    if isinstance(value, dict):
        repairs.append(("meetings", "coerced"))
        value = [value]
    if not isinstance(value, list):
        return value
    if len(value) > MAX_MEETINGS:
        repairs.append(("meetings", "dropped"))
        value = value[:MAX_MEETINGS]
    return [_meeting(item, repairs) if isinstance(item, dict) else item for item in value]


def _meeting(item: dict[str, Any], repairs: list[Repair]) -> dict[str, Any]:
    out = {key: value for key, value in item.items() if key in _MEETING_FIELDS}
    if len(out) < len(item):
        repairs.append((UNKNOWN_FIELD, "dropped"))
    if "duration_minutes" in out:
        if out["duration_minutes"] is None:
            repairs.append(("meetings.duration_minutes", "defaulted"))
            del out["duration_minutes"]
        else:
            out["duration_minutes"] = _number(out["duration_minutes"], "meetings.duration_minutes", repairs,
                                              integer=True)
    if "title" in out:
        if out["title"] is None:
            repairs.append(("meetings.title", "defaulted"))
            del out["title"]
        else:
            out["title"] = _text(out["title"], "meetings.title", 200, repairs, nullable=False)
    return out
