"""Where SQL lives: all of the service's database access, one module per concern.

- ``engine``   the engine, sessions and transactions, SQLite's one writer, opening read-only (replay dry run)
- ``repo``     :class:`~recruiter.store.repo.Store`, the one object callers hold, assembled from the parts below
- ``locks``    the watcher lock (one watcher per mailbox among replicas)
- ``inbox``    storing new mail (quarantined too), what is already stored, mailbox checkpoints
- ``queue``    leases on due messages, the writes a worker makes under its lease, failed attempts, reaping
- ``effects``  side-effect records (each action happens once), the one-tap actions' claims
- ``dlq``      the dead-letter queue: redrive, purge, its figures
- ``backlog``  backlog replays' progress and the digest they owe
- ``reads``    messages and their history for the CLI, the API and the views
- ``alerts``   incidents and the owner's outbox (``store.alerts``)
- ``models``   the tables; ``migrate`` their migrations; ``faults`` what a database error means (an outage,
  or values refused); ``safe`` values made safe for the columns; ``patience`` retrying a write through an outage

Nothing else in :mod:`recruiter` imports SQLAlchemy (the migration scripts in ``migrations/`` use the engine here).
"""
