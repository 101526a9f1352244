"""Tables. Every stored message carries its raw bytes and where its pipeline stands."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints: SQLite batch migrations cannot drop unnamed ones.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Message states. `pending` and `retry_wait` are due work; the rest are terminal.
PENDING = "pending"
RETRY_WAIT = "retry_wait"
DONE = "done"
SKIPPED = "skipped"
DEAD = "dead"
TERMINAL = frozenset({DONE, SKIPPED, DEAD})

# Stages in order; `stage` names the next one to run.
STAGES = ("prefilter", "triage", "draft", "calendar", "notify")
FINISHED = "done"

# Message origins: where a stored mail came from.
LIVE = "live"
REPLAY_PREFIX = "replay:"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def aware(value: datetime | str) -> datetime:
    """A datetime read back from the store as aware UTC (SQLite hands aggregates back as naive text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Message(Base):
    """One mail, stored before anything else happens to it."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(512), unique=True)
    mailbox: Mapped[str] = mapped_column(String(64))
    folder: Mapped[str | None] = mapped_column(String(255))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str | None] = mapped_column(String(1024))
    message_id: Mapped[str | None] = mapped_column(String(998))
    subject: Mapped[str] = mapped_column(Text, default="")
    from_addr: Mapped[str] = mapped_column(String(320), default="")
    reply_to: Mapped[str | None] = mapped_column(String(320))  # where a reply goes, when not to from_addr
    size: Mapped[int] = mapped_column(Integer, default=0)
    raw: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    state: Mapped[str] = mapped_column(String(16), default=PENDING)
    stage: Mapped[str] = mapped_column(String(16), default=STAGES[0])
    is_recruiter: Mapped[bool | None] = mapped_column(Boolean)
    skip_reason: Mapped[str | None] = mapped_column(String(200))
    triage: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    triage_tier: Mapped[str | None] = mapped_column(String(32))
    draft_text: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    dead_reason: Mapped[str | None] = mapped_column(String(64))
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # 'live' (watcher, files) or 'replay:<run id>': backlog mail is told in digests, not one card each.
    origin: Mapped[str] = mapped_column(String(64), default=LIVE, server_default=LIVE)
    # When the owner was told that this message went dead (None: not yet, or it is not dead).
    dead_noticed_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (Index("ix_messages_due", "state", "next_attempt_at"),
                      Index("ix_messages_origin", "origin", "state"))


class MailboxCheckpoint(Base):
    """The highest UID stored per mailbox, valid only for its UIDVALIDITY."""

    __tablename__ = "mailbox_checkpoints"

    mailbox: Mapped[str] = mapped_column(String(64), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SideEffect(Base):
    """A side effect that happened, keyed so that it is never repeated."""

    __tablename__ = "side_effects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(600), unique=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Attempt(Base):
    """One failed run of one stage, kept for the dead-letter queue's history."""

    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    error_class: Mapped[str] = mapped_column(String(120))
    error: Mapped[str] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)


class Incident(Base):
    """One dependency's health as every replica sees it: the failure streak, and the incident the owner
    was alerted about (``opened_at``) until its recovery has held (then the row is deleted)."""

    __tablename__ = "incidents"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)  # "llm", "imap:me", "calendar", "tier:gpt-mini"
    title: Mapped[str] = mapped_column(String(200), default="")
    streak: Mapped[int] = mapped_column(Integer, default=0)  # consecutive failures
    streak_since: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    opened_at: Mapped[datetime | None] = mapped_column()  # the incident is open (or recovering) since
    since: Mapped[datetime | None] = mapped_column()  # its first failure
    recovered_at: Mapped[datetime | None] = mapped_column()  # first success of a recovery not yet confirmed
    late: Mapped[int | None] = mapped_column(Integer)  # messages waiting at ``recovered_at``
    recovery_told: Mapped[bool] = mapped_column(Boolean, default=False)
    told_at: Mapped[datetime | None] = mapped_column()  # last alert or reminder delivered
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    next_probe_at: Mapped[datetime | None] = mapped_column()
    silent: Mapped[bool] = mapped_column(Boolean, default=False)  # its cause was told by another incident
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# Outbox states: what became of one message to the owner.
OUT_PENDING = "pending"
OUT_SENDING = "sending"
OUT_SENT = "sent"
OUT_UNCERTAIN = "uncertain"  # written to Telegram, no answer: never sent again
OUT_DROPPED = "dropped"  # Telegram refused it (4xx)


class Outbox(Base):
    """A message to the owner (alert, reminder, recovery, dead-letter notice), sent at most once: its
    ``key`` is unique, and a send that may have arrived is never repeated."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    incident: Mapped[str | None] = mapped_column(String(120))
    text: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=OUT_PENDING)
    not_before: Mapped[datetime] = mapped_column(default=utcnow)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column()
    ref: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    retold_at: Mapped[datetime | None] = mapped_column()  # an uncertain send was mentioned in a later message
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (Index("ix_outbox_due", "state", "not_before"),)
