"""SQLAlchemy tables and the database connection (SQLite by default, any SQLAlchemy URL works)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    make_url,
    text,
)
from sqlalchemy.exc import SQLAlchemyError

from mt5tester.errors import StorageError

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("status", String(16), nullable=False),  # running / completed / failed / interrupted
    Column("started_at", String(40), nullable=False),
    Column("finished_at", String(40)),
    Column("config", JSON, nullable=False),
    Column("config_hash", String(32), nullable=False),
    Column("package_version", String(32), nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("deposit", Float, nullable=False),
    Column("currency", String(8), nullable=False),
    Column("error", Text),
    Column("funnel", JSON),
    Column("timings", JSON),
)

run_strategies = Table(
    "run_strategies",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("category", String(16), nullable=False),
    Column("spec", String(512), nullable=False),
    Column("source_file", String(1024), nullable=False),
    Column("source_hash", String(64), nullable=False),
    Column("params", JSON, nullable=False),
    Column("timeframe", String(8), nullable=False),
    Column("symbols", JSON, nullable=False),
)

signals = Table(
    "signals",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("signal_id", Integer, primary_key=True),
    Column("time", BigInteger, nullable=False),  # UTC ns of the decision point
    Column("strategy", String(128), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("timeframe", String(8), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("order_type", String(8), nullable=False),
    Column("price", Float),
    Column("sl", Float),
    Column("tp", Float),
    Column("confidence", Float, nullable=False),
    Column("comment", Text, nullable=False),
    Column("tags", JSON, nullable=False),
    # decision
    Column("status", String(16), nullable=False),  # approved / rejected
    Column("rule", String(64)),
    Column("reason", String(64)),
    Column("details", JSON),
    Column("volume", Float),
    # execution
    Column("order_ticket", BigInteger),
    Column("retcode", Integer),
    Column("position_id", BigInteger),
)
Index("ix_signals_run_time", signals.c.run_id, signals.c.time)

deals = Table(
    "deals",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("ticket", BigInteger, primary_key=True),
    Column("order", BigInteger, nullable=False),
    Column("time", BigInteger, nullable=False),  # UTC ns
    Column("type", Integer, nullable=False),  # DEAL_TYPE_*
    Column("entry", Integer, nullable=False),  # DEAL_ENTRY_*
    Column("reason", Integer, nullable=False),  # DEAL_REASON_*
    Column("position_id", BigInteger, nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("volume", Float, nullable=False),
    Column("price", Float, nullable=False),
    Column("commission", Float, nullable=False),
    Column("swap", Float, nullable=False),
    Column("profit", Float, nullable=False),
    Column("balance", Float, nullable=False),
    Column("comment", Text, nullable=False),
    Column("strategy", String(128), nullable=False),
    Column("signal_id", Integer),
)

equity = Table(
    "equity",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("time", BigInteger, primary_key=True),
    Column("balance", Float, nullable=False),
    Column("equity", Float, nullable=False),
    Column("margin", Float, nullable=False),
    Column("open_positions", Integer, nullable=False),
)

strategy_errors = Table(
    "strategy_errors",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("strategy", String(128), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("error_type", String(128), nullable=False),
    Column("message", Text, nullable=False),
    Column("traceback", Text),
)


data_health = Table(
    "data_health",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("symbol", String(32), primary_key=True),
    Column("timeframe", String(8), primary_key=True),
    Column("score", Float, nullable=False),
    Column("bars", BigInteger, nullable=False),
    Column("report", JSON, nullable=False),
)


def redact(url: str) -> str:
    """The URL with its password hidden, for messages and stored configs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


def connect(url: str) -> Engine:
    """Open the database, create missing tables, and prove it is writable. StorageError otherwise."""
    url = os.environ.get("MT5TESTER_DB_URL") or url
    try:
        parsed = make_url(url)
    except Exception as e:
        raise StorageError(f"results.database_url is not a valid SQLAlchemy URL: {e}") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        folder = Path(parsed.database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(
                f"cannot create the folder of the results database {parsed.database}: {e}. "
                "Set results.database_url to a writable path."
            ) from None
    try:
        engine = create_engine(url, future=True)
        if parsed.get_backend_name() == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        metadata.create_all(engine)
        with engine.begin() as conn:  # a real write, rolled back by the delete: proves writability
            conn.execute(text("CREATE TABLE IF NOT EXISTS _write_probe (x INTEGER)"))
            conn.execute(text("INSERT INTO _write_probe VALUES (1)"))
            conn.execute(text("DELETE FROM _write_probe"))
    except SQLAlchemyError as e:
        raise StorageError(
            f"results database {redact(url)} is not reachable or not writable: {e.__class__.__name__}: "
            f"{str(e.orig if hasattr(e, 'orig') else e).strip()}. "
            "Fix results.database_url or MT5TESTER_DB_URL."
        ) from None
    return engine


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
