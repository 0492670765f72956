"""signals.trading_mode: the trading-mode profile in force when the signal was reviewed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"  # relinked after main merged 0006 (live); the lead relinks once 0005 lands
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signals") as batch:
        batch.add_column(sa.Column("trading_mode", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("signals") as batch:
        batch.drop_column("trading_mode")
