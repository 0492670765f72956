"""The results schema as it was before migrations: runs and everything recorded per run.

Revision ID: 0001
Revises:
Create Date: 2024-06-01

Databases created by ``metadata.create_all`` before Alembic was introduced have exactly these tables;
``db.migrate`` stamps them 0001 (they have no alembic_version table) and upgrades them from here.
Frozen: never import ``db.metadata`` here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _run_fk() -> sa.Column:
    return sa.Column(
        "run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    )


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.String(40), nullable=False),
        sa.Column("finished_at", sa.String(40)),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("config_hash", sa.String(32), nullable=False),
        sa.Column("package_version", sa.String(32), nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("deposit", sa.Float, nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("funnel", sa.JSON),
        sa.Column("timings", sa.JSON),
    )
    op.create_table(
        "run_strategies",
        _run_fk(),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("spec", sa.String(512), nullable=False),
        sa.Column("source_file", sa.String(1024), nullable=False),
        sa.Column("source_hash", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("symbols", sa.JSON, nullable=False),
    )
    op.create_table(
        "signals",
        _run_fk(),
        sa.Column("signal_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("strategy", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("order_type", sa.String(8), nullable=False),
        sa.Column("price", sa.Float),
        sa.Column("sl", sa.Float),
        sa.Column("tp", sa.Float),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rule", sa.String(64)),
        sa.Column("reason", sa.String(64)),
        sa.Column("details", sa.JSON),
        sa.Column("volume", sa.Float),
        sa.Column("order_ticket", sa.BigInteger),
        sa.Column("retcode", sa.Integer),
        sa.Column("position_id", sa.BigInteger),
    )
    op.create_index("ix_signals_run_time", "signals", ["run_id", "time"])
    op.create_table(
        "deals",
        _run_fk(),
        sa.Column("ticket", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("order", sa.BigInteger, nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("type", sa.Integer, nullable=False),
        sa.Column("entry", sa.Integer, nullable=False),
        sa.Column("reason", sa.Integer, nullable=False),
        sa.Column("position_id", sa.BigInteger, nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("volume", sa.Float, nullable=False),
        sa.Column("price", sa.Float, nullable=False),
        sa.Column("commission", sa.Float, nullable=False),
        sa.Column("swap", sa.Float, nullable=False),
        sa.Column("profit", sa.Float, nullable=False),
        sa.Column("balance", sa.Float, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("strategy", sa.String(128), nullable=False),
        sa.Column("signal_id", sa.Integer),
    )
    op.create_table(
        "equity",
        _run_fk(),
        sa.Column("time", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("balance", sa.Float, nullable=False),
        sa.Column("equity", sa.Float, nullable=False),
        sa.Column("margin", sa.Float, nullable=False),
        sa.Column("open_positions", sa.Integer, nullable=False),
    )
    op.create_table(
        "strategy_errors",
        _run_fk(),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("strategy", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("error_type", sa.String(128), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("traceback", sa.Text),
    )
    op.create_table(
        "data_health",
        _run_fk(),
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("timeframe", sa.String(8), primary_key=True),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("bars", sa.BigInteger, nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    for name in ("data_health", "strategy_errors", "equity", "deals", "signals", "run_strategies", "runs"):
        if name == "signals":
            op.drop_index("ix_signals_run_time", table_name="signals")
        op.drop_table(name)
