"""The first module the CPU budget's fork server imports (its preload; every helper is forked from that
server): it keeps the console libraries out of the helpers, as `recruiter run` does for the service (see
:mod:`recruiter.lean`), before the other preloads import structlog."""

from recruiter.lean import keep_console_libraries_out

keep_console_libraries_out()
