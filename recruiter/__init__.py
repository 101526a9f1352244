"""recruiter-responder: recruiter mail in, drafted replies and one-tap decisions out."""

from __future__ import annotations

import sys

__version__ = "0.1.0"


def _import_without_console_extras() -> None:
    """Keep rich, pygments and click (~4 MB) out of processes that do not print tables, chiefly `recruiter run`.

    Two libraries import them only because they are installed: httpx for its command-line client (never
    used here: ``httpx._main`` is made to fail, so ``httpx.main`` is httpx's stub), and structlog for its
    rich tracebacks on a terminal (it falls back to plain tracebacks, which show no local variables, and
    so no secrets). The commands that print tables import rich themselves.
    """
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # type: ignore[assignment]
    try:
        import structlog  # noqa: F401
    finally:
        del sys.modules["rich"]


_import_without_console_extras()
