"""structlog set-up: JSON lines off a TTY, readable on a TTY, secrets redacted everywhere."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "***"
MAX_DEPTH = 16  # nesting kept in a log field; anything deeper is cut (a JSON line, not a data dump)
CYCLE = "<cycle>"
TOO_DEEP = "<too deep>"


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
            event[key] = self.clean(value)
        return event

    def clean(self, value: Any, depth: int = 0, seen: frozenset[int] = frozenset()) -> Any:
        """``value`` with every secret scrubbed and its structure kept: strings scrubbed, numbers, bools
        and None as they are, lists/tuples as lists and mappings as dicts (keys scrubbed too), scrubbed
        recursively; ``str()`` only for what JSON cannot render. A structure that contains itself is cut
        at the repetition (CYCLE), one nested deeper than MAX_DEPTH at that depth (TOO_DEEP)."""
        if isinstance(value, str):
            return self.scrub(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, list | tuple | Mapping):
            if id(value) in seen:
                return CYCLE
            if depth >= MAX_DEPTH:
                return TOO_DEEP
            inner = seen | {id(value)}
            if isinstance(value, Mapping):
                return {self._key(k): self.clean(v, depth + 1, inner) for k, v in value.items()}
            return [self.clean(item, depth + 1, inner) for item in value]
        return self.scrub(str(value))

    def _key(self, key: Any) -> Any:
        """A mapping key as JSON can write it (str, int, float, bool, None), scrubbed."""
        if key is None or isinstance(key, bool | int | float):
            return key
        return self.scrub(key if isinstance(key, str) else str(key))


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
    # Plain tracebacks on a terminal too, whether rich is importable or not: rich's show local variables,
    # and so the secrets in them.
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_lines
        else structlog.dev.ConsoleRenderer(colors=out.isatty(), exception_formatter=structlog.dev.plain_traceback)
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
