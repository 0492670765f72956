"""live_requests and live_sessions: the requests of live / paper sessions and their restart state.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"  # relinked after 0005 when the branches merge
branch_labels = None
depends_on = None


def _run_id() -> sa.Column:
    return sa.Column(
        "run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    )


def upgrade() -> None:
    op.create_table(
        "live_requests",
        _run_id(),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("signal_id", sa.Integer),
        sa.Column("strategy", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("magic", sa.BigInteger, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("retcode", sa.Integer),
        sa.Column("result", sa.JSON),
        sa.Column("last_error", sa.JSON),
        sa.Column("outcome", sa.String(16), nullable=False),
    )
    op.create_table(
        "live_sessions",
        _run_id(),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("account", sa.JSON, nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("live_sessions")
    op.drop_table("live_requests")
