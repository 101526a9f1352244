"""The Store: the one object that reads and writes the database, assembled from one part per concern.

All SQL of the service lives in :mod:`recruiter.store`, one module per concern:

- :mod:`~recruiter.store.engine`   the engine, sessions and transactions, SQLite's one writer, read-only opening
- :mod:`~recruiter.store.locks`    the watcher lock (one watcher per mailbox among replicas)
- :mod:`~recruiter.store.inbox`    storing new mail (quarantined too), what is stored, mailbox checkpoints
- :mod:`~recruiter.store.queue`    leases, the writes a worker makes under its lease, failed attempts, reaping
- :mod:`~recruiter.store.effects`  side-effect records (each action once), the one-tap actions' claims
- :mod:`~recruiter.store.dlq`      the dead-letter queue: redrive, purge, its figures
- :mod:`~recruiter.store.backlog`  backlog replays' progress and the digest they owe
- :mod:`~recruiter.store.reads`    messages and their history for the CLI, the API and the views
- :mod:`~recruiter.store.alerts`   incidents and the owner's outbox (``store.alerts``)
- :mod:`~recruiter.store.models`, :mod:`~recruiter.store.migrate`, :mod:`~recruiter.store.faults`,
  :mod:`~recruiter.store.safe`    the tables, their migrations, what a database error means, safe values

This module defines :class:`Store` from those parts (mixins sharing one engine and one SQLite write lock),
so callers hold one object: ``store.claim(...)``, ``store.add_message(...)``. :class:`LeaseLost` is
defined in :mod:`recruiter.store.queue` and stays importable from here, where its callers import it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from recruiter.store.alerts import AlertStore
from recruiter.store.backlog import BacklogMixin
from recruiter.store.dlq import DeadLetterMixin
from recruiter.store.effects import EffectsMixin
from recruiter.store.inbox import InboxMixin
from recruiter.store.locks import LocksMixin
from recruiter.store.queue import LeaseLost, QueueMixin
from recruiter.store.reads import ReadsMixin

__all__ = ["LeaseLost", "Store"]


class Store(LocksMixin, InboxMixin, QueueMixin, EffectsMixin, DeadLetterMixin, BacklogMixin, ReadsMixin):
    """The one object that reads and writes the database (its parts: see the module docstring)."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.alerts = AlertStore(self)
