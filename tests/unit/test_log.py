"""The log redactor keeps a field's structure: with secrets configured (production), dicts and lists come
out as JSON objects and arrays with the secret replaced, not as Python reprs; structures that contain
themselves or nest very deep are cut, never crash logging."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import structlog

from recruiter.log import CYCLE, MAX_DEPTH, REDACTED, TOO_DEEP, configure_logging

SECRET = "s3cret-token-9f1e"
_LIBRARIES = ("httpx", "httpcore", "telegram", "aioimaplib", "caldav")


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """Logging configured for the test, and the process's logging as it was afterwards (configure_logging
    quiets the libraries' loggers: left so, later tests that capture their records would see none)."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {name: logging.getLogger(name).level for name in _LIBRARIES})
    out = io.StringIO()
    configure_logging(level="INFO", fmt="json", secrets=[SECRET, ""], stream=out)
    try:
        yield out
    finally:
        structlog.reset_defaults()
        root.handlers[:], root.level = saved[0], saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)


def _logged(out: io.StringIO, **fields: Any) -> dict[str, Any]:
    structlog.get_logger().info("test.event", **fields)
    text = out.getvalue()
    assert SECRET not in text
    line: dict[str, Any] = json.loads(text.splitlines()[-1])
    return line


def test_dicts_and_lists_stay_json_with_the_secret_replaced(lines: io.StringIO) -> None:
    line = _logged(lines, detail={"tier": "gpt", "error": f"Bearer {SECRET} refused", "codes": [401, 403],
                                  "retry": None, "ok": False, f"key-{SECRET}": 1.5, 7: "seven"},
                   recipients=["a@example.org", f"token={SECRET}"], pair=("x", 2), count=3, ratio=0.5,
                   flag=True, nothing=None)
    assert line["detail"] == {"tier": "gpt", "error": f"Bearer {REDACTED} refused", "codes": [401, 403],
                              "retry": None, "ok": False, f"key-{REDACTED}": 1.5, "7": "seven"}
    assert line["recipients"] == ["a@example.org", f"token={REDACTED}"]
    assert line["pair"] == ["x", 2]
    assert (line["count"], line["ratio"], line["flag"], line["nothing"]) == (3, 0.5, True, None)


def test_what_json_cannot_render_becomes_its_scrubbed_text(lines: io.StringIO) -> None:
    line = _logged(lines, path=Path(f"/tmp/{SECRET}"), day=date(2026, 12, 7),
                   error=ValueError(f"bad {SECRET}"), nested={"where": [Path("/x"), {SECRET}]},
                   weird_keys={("a", SECRET): 1})
    assert line["path"] == f"/tmp/{REDACTED}"
    assert line["day"] == "2026-12-07"
    assert line["error"] == f"bad {REDACTED}"
    assert line["nested"] == {"where": ["/x", f"{{'{REDACTED}'}}"]}
    assert line["weird_keys"] == {f"('a', '{REDACTED}')": 1}


def test_a_cyclic_structure_is_cut_at_the_repetition(lines: io.StringIO) -> None:
    loop: dict[str, Any] = {"token": SECRET}
    loop["self"] = loop
    items: list[Any] = [SECRET]
    items.append(items)
    shared = ["same"]
    line = _logged(lines, loop=loop, items=items, twice=[shared, shared])
    assert line["loop"] == {"token": REDACTED, "self": CYCLE}
    assert line["items"] == [REDACTED, CYCLE]
    assert line["twice"] == [["same"], ["same"]]  # the same list twice is not a cycle


def test_a_very_deep_structure_is_cut_and_does_not_crash(lines: io.StringIO) -> None:
    deep: Any = SECRET
    for _ in range(100_000):  # deeper than the interpreter's recursion limit: str() or json would fail
        deep = [deep]
    line = _logged(lines, deep=deep)
    value = line["deep"]
    for _ in range(MAX_DEPTH):
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    assert value == TOO_DEEP
