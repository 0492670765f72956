"""The optimizer's tables: studies, study_trials (one row per pass) and study_folds.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _study_fk() -> sa.Column:
    return sa.Column(
        "study_id", sa.String(32), sa.ForeignKey("studies.study_id", ondelete="CASCADE"), primary_key=True
    )


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("study_id", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.String(40), nullable=False),
        sa.Column("finished_at", sa.String(40)),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("config_hash", sa.String(32), nullable=False),
        sa.Column("base_dir", sa.Text, nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("criterion", sa.String(64), nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("space_size", sa.BigInteger, nullable=False),
        sa.Column("budget", sa.BigInteger, nullable=False),
        sa.Column("summary", sa.JSON),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "study_trials",
        _study_fk(),
        sa.Column("fold", sa.Integer, primary_key=True),
        sa.Column("phase", sa.String(8), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("worker", sa.String(128), nullable=False),
        sa.Column("curve", sa.JSON, nullable=False),
        sa.Column("trade_pnl", sa.JSON, nullable=False),
        sa.Column("run_id", sa.String(32)),
    )
    op.create_table(
        "study_folds",
        _study_fk(),
        sa.Column("fold", sa.Integer, primary_key=True),
        sa.Column("is_start", sa.String(10), nullable=False),
        sa.Column("is_end", sa.String(10), nullable=False),
        sa.Column("oos_start", sa.String(10)),
        sa.Column("oos_end", sa.String(10)),
        sa.Column("best_number", sa.Integer),
        sa.Column("best_params", sa.JSON),
        sa.Column("is_metrics", sa.JSON),
        sa.Column("oos_metrics", sa.JSON),
        sa.Column("wfe", sa.Float),
    )


def downgrade() -> None:
    op.drop_table("study_folds")
    op.drop_table("study_trials")
    op.drop_table("studies")
