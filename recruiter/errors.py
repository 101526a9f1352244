"""The exception tree. Callers decide what to do by class, never by message text.

    RecruiterError
    ├── ConfigError            a setting is missing or malformed; the process stops
    ├── TransientError         try again later (backoff): a dependency is down or slow
    │   ├── DependencyUnavailable  (dependency, status) — LLM 5xx, IMAP/SMTP/CalDAV/Telegram down
    │   ├── Misconfigured      (dependency, status) — the dependency refuses *us* (401/403, unknown model,
    │   │                      a refused parameter, a missing folder): the same for every request until
    │   │                      the owner fixes it. Never the message's fault: it waits, the owner is told
    │   └── Postponed          the dependency is paused (incident open): wait, without burning an attempt
    ├── IngestBlocked          not even a quarantine row of this mail could be stored: its mailbox stalls
    │                          there (the stalled-mailbox alert tells the owner)
    ├── MaybeDone              the request was written and no answer came: it may have acted. Never
    │                          repeated blindly (not a TransientError, so no retry path catches it)
    └── PermanentError         retrying will not help: dead-letter now
        ├── UnparseableMail
        ├── InvalidAnswer      the LLM's answer does not fit the schema
        ├── OverBudget         the mail needs more CPU than one message may spend
        └── StoreRejected      the database refuses this message's values (too long, not encodable)
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


class Misconfigured(TransientError):
    """A dependency refuses this service's requests for a reason of configuration (a rotated key, a
    renamed model, a parameter the endpoint does not accept, a folder that does not exist). Every
    request gets the same answer until the owner fixes it: an incident for the dependency, never a
    verdict on the message (which waits, without its attempts counting)."""


class Postponed(TransientError):
    """The stage waits for a paused dependency; this is not an attempt and is not recorded as one."""

    def __init__(self, message: str, *, delay: float, dependency: str = "") -> None:
        super().__init__(message, dependency=dependency)
        self.delay = delay


class IngestBlocked(RecruiterError):
    """The store took other writes but refused this mail, its quarantine row and even a minimal row: the
    watcher cannot move past it. Neither the IMAP server's fault nor a database outage: the mailbox
    stalls, and the stalled-mailbox check tells the owner (mailbox, UID, error class)."""

    dependency = "ingest"


class MaybeDone(RecruiterError):
    """The request was written and no answer came (a read timeout, a connection reset after the write,
    a cancellation): the other side may have acted (a card shown, a mail accepted). Such a request is
    recorded as uncertain and told to the owner, never sent again."""

    def __init__(self, message: str, *, dependency: str = "") -> None:
        super().__init__(message)
        self.dependency = dependency


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


class OverBudget(PermanentError):
    """Reading this mail took more than the CPU budget of one message: it is quarantined, not retried."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="cpu_budget")


class StoreRejected(PermanentError):
    """The database refused a write because of the values it was given (a value too long for its column,
    text the driver cannot encode, a constraint): about this message, not about the database's health."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="store_rejected")
