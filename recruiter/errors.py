"""The exception tree. Callers decide what to do by class, never by message text.

Every error this package raises on purpose is defined here (private control-flow exceptions such as
``actions._Retry`` and ``budget._CpuExceeded`` stay in their modules), so the whole tree reads at once:

    RecruiterError
    ├── ConfigError            a setting is missing or malformed; the process stops
    ├── TransientError         try again later (backoff): a dependency is down or slow
    │   ├── DependencyUnavailable  (dependency, status) — LLM 5xx, IMAP/SMTP/CalDAV/Telegram down
    │   │   └── ImapError      an IMAP command failed or the server is unreachable
    │   │       ├── Dropped    a command got no answer (connection lost, timeout); the connection is useless
    │   │       └── ConnectionLost  the watcher's server said BYE, closed or went silent
    │   ├── Misconfigured      (dependency, status) — the dependency refuses *us* (401/403, unknown model,
    │   │                      a refused parameter, a missing folder): the same for every request until
    │   │                      the owner fixes it. Never the message's fault: it waits, the owner is told
    │   └── Postponed          the dependency is paused (incident open): wait, without burning an attempt
    ├── MaybeDone              the request was written and no answer came: it may have acted. Never
    │   │                      repeated blindly: deliberately NOT a TransientError (nor a PermanentError),
    │   │                      so no ``except TransientError`` catches it, whatever the clause order
    │   └── MaybeSent          SMTP: the message data went out, the server's answer did not come back
    ├── PermanentError         retrying will not help: dead-letter now
    │   ├── UnparseableMail
    │   ├── InvalidAnswer      the LLM's answer does not fit the schema
    │   ├── OverBudget         the mail needs more CPU than one message may spend
    │   ├── HelperFailed       the parser's helper process died on this input
    │   └── StoreRejected      the database refuses this message's values (too long, not encodable)
    ├── IngestBlocked          not even a quarantine row of this mail could be stored: its mailbox stalls
    │                          there (the stalled-mailbox alert tells the owner)
    ├── LeaseLost              another worker holds the message now: drop the work without writing
    ├── AmbiguousDraft         several key-less drafts answer the mail: none is sent, the owner chooses
    ├── ApiError               an HTTP API answer other than 2xx: (status, message) as a JSON body
    ├── ReplayError            the replay's options are wrong: nothing was done
    ├── LabelError (ValueError)    the backtest's labels file is unreadable or malformed
    └── SourceError (ValueError)   a mail file/directory given on the command line cannot be read

"Maybe it happened" has one rule: code that retries catches :class:`TransientError`, which a
:class:`MaybeDone` never is; the code that made the request settles it (the notify stage records the card
as uncertain, a one-tap send as "may have been sent"), and one that escapes a pipeline stage is
dead-lettered by the worker (reason ``maybe_done``), never retried.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recruiter.reply.mailbox import Competitor


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


class ImapError(DependencyUnavailable):
    """An IMAP command failed or the server is unreachable."""


class Dropped(ImapError):
    """A command got no answer: the connection was lost under it, or it timed out. The command may or may
    not have been carried out; the connection is useless now."""


class ConnectionLost(ImapError):
    """The server said BYE, closed the connection or went silent."""


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


class MaybeSent(MaybeDone):
    """The message data reached the server but its answer did not reach us: it may have been sent."""


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


class HelperFailed(PermanentError):
    """The helper process died reading this input, or its exception could not be sent back."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="unparseable")


class StoreRejected(PermanentError):
    """The database refused a write because of the values it was given (a value too long for its column,
    text the driver cannot encode, a constraint): about this message, not about the database's health."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="store_rejected")


class LeaseLost(RecruiterError):
    """Another worker holds this message now; drop the work without writing."""


class AmbiguousDraft(RecruiterError):
    """Several drafts without our key answer the mail (In-Reply-To): none is sent."""

    def __init__(self, competing: Sequence[Competitor], key_header: str) -> None:
        super().__init__(f"{len(competing)} drafts answer this mail and none carries {key_header}")
        self.competing = list(competing)


class ApiError(RecruiterError):
    """An HTTP error with a JSON body ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class ReplayError(RecruiterError):
    """The replay's options are wrong (unknown mailbox, malformed date): nothing was done."""


class LabelError(RecruiterError, ValueError):
    """The labels file cannot be read or has a malformed row; ``line`` names it."""


class SourceError(RecruiterError, ValueError):
    """A path given as a mail source does not exist or cannot be read. ``path`` names it."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
