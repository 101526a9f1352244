"""The Store: the one object that reads and writes the database, assembled from one part per concern.

Each part is a mixin in its own module (the map: :mod:`recruiter.store`), all sharing one engine and one
SQLite write lock (:class:`recruiter.store.engine.StoreBase`); callers hold one object and call
``store.claim(...)``, ``store.add_message(...)``. This module only assembles them.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from recruiter.store.alerts import AlertStore
from recruiter.store.backlog import BacklogMixin
from recruiter.store.dlq import DeadLetterMixin
from recruiter.store.effects import EffectsMixin
from recruiter.store.inbox import InboxMixin
from recruiter.store.locks import LocksMixin
from recruiter.store.queue import QueueMixin
from recruiter.store.reads import ReadsMixin

__all__ = ["Store"]


class Store(LocksMixin, InboxMixin, QueueMixin, EffectsMixin, DeadLetterMixin, BacklogMixin, ReadsMixin):
    """The one object that reads and writes the database (its parts: see :mod:`recruiter.store`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.alerts = AlertStore(self)
