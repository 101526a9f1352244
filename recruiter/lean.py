"""Keep the console libraries (rich, pygments, click: ~4 MB a process) out of the long-running processes.

Nothing in the service prints with them, but two libraries import them merely because they are installed
(and they always are: typer, the CLI's framework, requires rich):

- structlog imports rich (console and tracebacks, which import pygments) at import time, in
  ``structlog/dev.py``, for its rich tracebacks on a terminal;
- httpx imports click, pygments and rich at import time (``httpx/__init__.py`` imports ``httpx._main``,
  its command-line client, whenever those are importable).

Measured with ``bench/memory.py --rules --messages 2000``: without this, `recruiter run` starts 3.9 MB
larger, and the service with its CPU-budget helpers (fork server and helpers) 17 MB larger in VmRSS.

Nothing here happens on ``import recruiter``: a process that wants it calls
:func:`keep_console_libraries_out` first, before anything imports structlog or httpx — `recruiter run`
(:mod:`recruiter.__main__`) and the CPU budget's fork server (:mod:`recruiter.helper_start`, its
first preload). Other commands and the tests import the libraries as installed.
"""

from __future__ import annotations

import sys


def keep_console_libraries_out() -> list[str]:
    """Import structlog without rich and make httpx's command-line client unimportable; returns what this
    kept out (nothing when structlog is already imported: too late to change how it was imported).

    structlog then formats tracebacks plainly (configure_logging asks for that explicitly anyway), and
    rich can be imported again afterwards as usual (a command that prints a table imports it itself).
    ``httpx._main`` stays unimportable for the life of the process, so that whenever httpx is imported
    (the service imports it only where it needs it) ``httpx.main`` is httpx's own stub for "the CLI is not
    installed" instead of importing click, pygments and rich; the service never runs httpx's CLI."""
    if "structlog" in sys.modules:
        return []
    kept_out = []
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]  # the import system's "not here"
        kept_out.append("httpx._main")
    if "rich" not in sys.modules:
        sys.modules["rich"] = None  # type: ignore[assignment]
        kept_out.append("rich")
    try:
        import structlog  # noqa: F401  # treats an ImportError of rich as "not installed"
    finally:
        if "rich" in kept_out and sys.modules.get("rich", ...) is None:
            del sys.modules["rich"]
    return kept_out
