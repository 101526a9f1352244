"""The exception tree. Callers decide what to do by class, never by message text.

    RecruiterError
    ├── ConfigError            a setting is missing or malformed; the process stops
    ├── TransientError         try again later (backoff): a dependency is down or slow
    │   ├── DependencyUnavailable  (dependency, status) — LLM 5xx, IMAP/SMTP/CalDAV/Telegram down
    │   └── Postponed          the dependency is paused (incident open): wait, without burning an attempt
    └── PermanentError         retrying will not help: dead-letter now
        ├── UnparseableMail
        └── InvalidAnswer      the LLM's answer does not fit the schema
"""

from __future__ import annotations


class RecruiterError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(RecruiterError):
    """A setting is missing or malformed. ``variable`` names it."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class TransientError(RecruiterError):
    """The operation may succeed later; schedule a retry."""

    def __init__(
        self,
        message: str,
        *,
        dependency: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.dependency = dependency
        self.status = status
        self.retry_after = retry_after


class DependencyUnavailable(TransientError):
    """A server we depend on refused, timed out or answered 5xx."""


class Postponed(TransientError):
    """The stage waits for a paused dependency; this is not an attempt and is not recorded as one."""

    def __init__(self, message: str, *, delay: float, dependency: str = "") -> None:
        super().__init__(message, dependency=dependency)
        self.delay = delay


class PermanentError(RecruiterError):
    """Retrying will not change the outcome; dead-letter the message with ``reason``."""

    def __init__(self, message: str, *, reason: str = "permanent", status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


class UnparseableMail(PermanentError):
    """The bytes are not a mail we can read."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="unparseable")


class InvalidAnswer(PermanentError):
    """The LLM answered something that does not fit the schema."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="invalid_answer")
