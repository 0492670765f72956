"""checkpoints: snapshots of a run's engine state, to resume an interrupted run.

Revision ID: 0002
Revises: 0001
Create Date: 2024-06-02

One row per snapshot: the decision point it was taken at (``time_ns``, UTC ns), the serialized engine
state (opaque bytes: BLOB on SQLite, BYTEA on PostgreSQL) and ``recorder_position``, how many rows of each
table the recorder had flushed then (a resume deletes rows past it). Rows go with their run (ON DELETE
CASCADE, and ``runs delete`` removes them explicitly too).

Schema version note: the version of a database is its ``alembic_version`` row (``db.schema_revision``);
no separate schema_version table or column is kept, so there is one source of truth.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("time_ns", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("state", sa.LargeBinary, nullable=False),
        sa.Column("recorder_position", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("checkpoints")
