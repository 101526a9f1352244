"""The `recruiter` command: `python -m recruiter` and the console script both start here."""

from __future__ import annotations

import sys


def start(argv: list[str]) -> None:
    """What a process does before it imports the CLI: `recruiter run`, the long-running service, leaves
    the console libraries out (see :mod:`recruiter.lean`); every other command prints and keeps them."""
    if argv[1:2] == ["run"]:
        from recruiter.lean import keep_console_libraries_out

        keep_console_libraries_out()


def main() -> None:
    start(sys.argv)
    from recruiter.cli.main import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
