"""orders and positions: every order of a run, and each position's life with its MFE/MAE.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

``orders`` holds the history orders (market orders filled at once, pending orders with their final
state). ``positions`` holds one row per position: open and close, the net of its deals, and the
maximum favourable / adverse excursion in deposit currency measured on the trigger bars while open.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _run_id() -> sa.Column:
    return sa.Column(
        "run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    )


def upgrade() -> None:
    op.create_table(
        "orders",
        _run_id(),
        sa.Column("ticket", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("time_setup", sa.BigInteger, nullable=False),
        sa.Column("time_done", sa.BigInteger),
        sa.Column("type", sa.Integer, nullable=False),
        sa.Column("state", sa.Integer, nullable=False),
        sa.Column("reason", sa.Integer, nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("volume_initial", sa.Float, nullable=False),
        sa.Column("volume_current", sa.Float, nullable=False),
        sa.Column("price_open", sa.Float, nullable=False),
        sa.Column("price_done", sa.Float, nullable=False),
        sa.Column("sl", sa.Float, nullable=False),
        sa.Column("tp", sa.Float, nullable=False),
        sa.Column("price_stoplimit", sa.Float, nullable=False),
        sa.Column("position_id", sa.BigInteger, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("strategy", sa.String(128), nullable=False),
        sa.Column("signal_id", sa.Integer),
    )
    op.create_table(
        "positions",
        _run_id(),
        sa.Column("position_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("type", sa.Integer, nullable=False),
        sa.Column("volume", sa.Float, nullable=False),
        sa.Column("time_open", sa.BigInteger, nullable=False),
        sa.Column("time_close", sa.BigInteger),
        sa.Column("price_open", sa.Float, nullable=False),
        sa.Column("price_close", sa.Float),
        sa.Column("net", sa.Float, nullable=False),
        sa.Column("mfe", sa.Float),
        sa.Column("mae", sa.Float),
        sa.Column("close_reason", sa.Integer),
        sa.Column("strategy", sa.String(128), nullable=False),
        sa.Column("signal_id", sa.Integer),
    )


def downgrade() -> None:
    op.drop_table("positions")
    op.drop_table("orders")
