"""structlog set-up: JSON lines off a TTY, readable on a TTY, secrets redacted everywhere."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "***"


class Redactor:
    """A structlog processor that replaces every known secret value wherever it appears."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """Return ``text`` with every secret replaced by ***."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def __call__(self, _logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if not self.secrets:
            return event
        for key, value in list(event.items()):
            if isinstance(value, str):
                event[key] = self.scrub(value)
            elif value is not None and not isinstance(value, int | float | bool):
                event[key] = self.scrub(str(value))
        return event


_process_redactor = Redactor(())
_process_config: dict[str, Any] = {}  # the arguments of the last configure_logging, for helper processes


def scrub(text: str) -> str:
    """``text`` with every secret this process was configured with (see :func:`configure_logging`)
    replaced by ***. For outputs other than logs: error texts and tracebacks written to the store."""
    return _process_redactor.scrub(text)


def configure_logging(
    *,
    level: str = "INFO",
    fmt: str = "auto",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Configure structlog (and stdlib logging of libraries) once for the process.

    Each line goes out in one write (structlog's WriteLogger, not PrintLogger: ``print`` writes the line
    and its newline separately, and the CPU budget's helper processes share the service's stderr, so a
    helper's line could land between the two)."""
    out = stream or sys.stderr
    json_lines = fmt == "json" or (fmt == "auto" and not out.isatty())
    global _process_redactor, _process_config
    secrets = tuple(secrets)
    _process_config = {"level": level, "fmt": "json" if json_lines else "console", "secrets": secrets}
    redactor = _process_redactor = Redactor(secrets)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redactor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.WriteLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Libraries log through stdlib logging; keep them quiet and redacted.
    handler = logging.StreamHandler(out)
    handler.addFilter(_StdlibRedactFilter(redactor))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for noisy in ("httpx", "httpcore", "telegram", "aioimaplib", "caldav"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def process_config() -> dict[str, Any]:
    """The keyword arguments this process's logging was configured with (empty if it was not): a helper
    process passes them to :func:`configure_logging` so that its lines look like the service's."""
    return dict(_process_config)


class _StdlibRedactFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.scrub(record.getMessage())
        record.args = None
        return True


def get_logger(**bound: Any) -> Any:
    """A structlog logger with ``bound`` context."""
    return structlog.get_logger().bind(**bound)
