"""daily_equity: balance and equity per server day (last sample, and the day's lowest equity).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "daily_equity",
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("balance", sa.Float, nullable=False),
        sa.Column("equity", sa.Float, nullable=False),
        sa.Column("equity_min", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("daily_equity")
