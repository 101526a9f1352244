"""What a database error means: the store is unavailable (an outage: wait, retry, alert), or it refused
the values of one write (about that message only: quarantine or dead-letter it).

Decided by the error's code, never its text: PostgreSQL's SQLSTATE (kept by asyncpg and SQLAlchemy's
adapter) and SQLite's extended result code (``sqlite3.Error.sqlite_errorcode``, Python 3.11+).
A database that is locked past the busy timeout, read-only (a fail-over, a full disk), out of
connections, restarting or unreachable is an outage; a value too long, text it cannot encode or a
violated constraint is the write's own fault. Anything the driver raises that is neither is treated
as an outage: waiting never loses mail, while quarantining good mail because the database was
confused would.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Literal

from sqlalchemy.exc import DBAPIError, SQLAlchemyError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from recruiter.errors import DependencyUnavailable, StoreRejected

Verdict = Literal["outage", "rejected"]

# SQLSTATE classes about the values of one statement: 22 data exception (string too long, invalid
# byte sequence, NUL in text, numeric out of range), 23 integrity constraint violation.
_REJECTED_CLASSES = frozenset({"22", "23"})
# SQLite primary result codes about the values: TOOBIG, CONSTRAINT, MISMATCH, RANGE.
_SQLITE_REJECTED = frozenset({18, 19, 20, 25})
# Errors Python raises while binding a parameter, before the database sees the statement.
_BIND_ERRORS = (UnicodeError, ValueError, OverflowError, TypeError)


def classify(exc: BaseException) -> Verdict | None:
    """``outage`` or ``rejected`` for a database error, None for an error that is not the database's."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return "outage"
        return _by_code(exc.orig)
    if isinstance(exc, StatementError):  # a parameter could not be processed (SQLAlchemy wraps it)
        return "rejected" if isinstance(exc.orig, _BIND_ERRORS) else "outage"
    if isinstance(exc, PoolTimeout | OSError):
        return "outage"
    if isinstance(exc, SQLAlchemyError):
        return "outage"
    if isinstance(exc, sqlite3.Error):
        return _by_code(exc)
    if isinstance(exc, UnicodeEncodeError):  # aiosqlite binds outside SQLAlchemy's wrapping
        return "rejected"
    return None


def _by_code(orig: BaseException | None) -> Verdict:
    sqlstate = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None)
    if isinstance(sqlstate, str) and len(sqlstate) == 5:
        return "rejected" if sqlstate[:2] in _REJECTED_CLASSES else "outage"
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return "rejected" if code & 0xFF in _SQLITE_REJECTED else "outage"
    if isinstance(orig, _BIND_ERRORS):
        return "rejected"
    return "outage"


def describe(exc: BaseException) -> str:
    """A short name for the error: the driver's class and code (never the statement or its values)."""
    orig = getattr(exc, "orig", None) or exc
    cause = getattr(orig, "__cause__", None)
    name = type(cause).__name__ if cause is not None and type(orig).__name__ in ("Error", "DBAPIError") \
        else type(orig).__name__
    code = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
    return f"{name} ({code})" if code else name


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Database errors raised inside become DependencyUnavailable (an outage of ``db``) or StoreRejected
    (the values of this write); other errors pass through unchanged."""
    try:
        yield
    except (DependencyUnavailable, StoreRejected):
        raise
    except Exception as exc:
        verdict = classify(exc)
        if verdict is None:
            raise
        if verdict == "rejected":
            raise StoreRejected(f"the database refused the values: {describe(exc)}") from exc
        raise DependencyUnavailable(f"database unavailable: {describe(exc)}", dependency="db") from exc
