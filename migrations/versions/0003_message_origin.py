"""messages.origin: 'live' (watcher, files) or 'replay:<run id>' (backlog replay, notified by digest)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 06:10:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin", sa.String(length=64), server_default="live", nullable=False))
        batch_op.create_index("ix_messages_origin", ["origin", "state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_origin")
        batch_op.drop_column("origin")
