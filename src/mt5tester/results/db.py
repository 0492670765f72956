"""SQLAlchemy tables and the database connection (SQLite by default, any SQLAlchemy URL works).

The schema is versioned by Alembic (``mt5tester/results/migrations``, shipped with the package, no
alembic.ini needed): ``connect()`` upgrades every database to the head revision before use. The schema
version of a database is the row of its ``alembic_version`` table (``schema_revision()``); there is no
other version table. ``metadata`` below always equals the head revision (a test compares them).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
    make_url,
    text,
)
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import SQLAlchemyError

from mt5tester.errors import StorageError
from mt5tester.model import limits

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
    Column("currency", String(limits.CURRENCY), nullable=False),
    Column("error", Text),
    Column("funnel", JSON),
    Column("timings", JSON),
)

run_strategies = Table(
    "run_strategies",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(limits.STRATEGY_NAME), primary_key=True),
    Column("category", String(16), nullable=False),
    Column("spec", String(limits.STRATEGY_SPEC), nullable=False),
    Column("source_file", String(limits.SOURCE_FILE), nullable=False),
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
    Column("strategy", String(limits.STRATEGY_NAME), nullable=False),
    Column("symbol", String(limits.SYMBOL), nullable=False),
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
    Column("trading_mode", String(64)),  # the trading-mode profile in force (None: no profile)
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
    Column("symbol", String(limits.SYMBOL), nullable=False),
    Column("volume", Float, nullable=False),
    Column("price", Float, nullable=False),
    Column("commission", Float, nullable=False),
    Column("swap", Float, nullable=False),
    Column("profit", Float, nullable=False),
    Column("balance", Float, nullable=False),
    Column("comment", Text, nullable=False),
    Column("strategy", String(limits.STRATEGY_NAME), nullable=False),
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
    Column("strategy", String(limits.STRATEGY_NAME), nullable=False),
    Column("symbol", String(limits.SYMBOL), nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("error_type", String(128), nullable=False),
    Column("message", Text, nullable=False),
    Column("traceback", Text),
)


data_health = Table(
    "data_health",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("symbol", String(limits.SYMBOL), primary_key=True),
    Column("timeframe", String(8), primary_key=True),
    Column("score", Float, nullable=False),
    Column("bars", BigInteger, nullable=False),
    Column("report", JSON, nullable=False),
)


# revision 0002: engine state snapshots for resuming a run (written by the checkpointing feature)
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("time_ns", BigInteger, nullable=False),  # UTC ns of the decision point the state belongs to
    Column("created_at", String(40), nullable=False),
    Column("state", LargeBinary, nullable=False),  # serialized engine state (opaque to the database)
    Column("recorder_position", JSON, nullable=False),  # rows per table already flushed at `time_ns`
)

orders = Table(
    "orders",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("ticket", BigInteger, primary_key=True, autoincrement=False),
    Column("time_setup", BigInteger, nullable=False),  # UTC ns
    Column("time_done", BigInteger),
    Column("type", Integer, nullable=False),  # ORDER_TYPE_*
    Column("state", Integer, nullable=False),  # ORDER_STATE_*
    Column("reason", Integer, nullable=False),  # ORDER_REASON_*
    Column("symbol", String(limits.SYMBOL), nullable=False),
    Column("volume_initial", Float, nullable=False),
    Column("volume_current", Float, nullable=False),
    Column("price_open", Float, nullable=False),
    Column("price_done", Float, nullable=False),
    Column("sl", Float, nullable=False),
    Column("tp", Float, nullable=False),
    Column("price_stoplimit", Float, nullable=False),
    Column("position_id", BigInteger, nullable=False),
    Column("comment", Text, nullable=False),
    Column("strategy", String(limits.STRATEGY_NAME), nullable=False),
    Column("signal_id", Integer),
)

positions = Table(
    "positions",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("position_id", BigInteger, primary_key=True, autoincrement=False),
    Column("symbol", String(limits.SYMBOL), nullable=False),
    Column("type", Integer, nullable=False),  # POSITION_TYPE_* of the opening deal
    Column("volume", Float, nullable=False),  # volume opened
    Column("time_open", BigInteger, nullable=False),
    Column("time_close", BigInteger),  # null: still open at the end
    Column("price_open", Float, nullable=False),
    Column("price_close", Float),
    Column("net", Float, nullable=False),  # profit + swap + commission of all its deals
    Column("mfe", Float),  # maximum favourable excursion, deposit currency
    Column("mae", Float),  # maximum adverse excursion (<= 0), deposit currency
    Column("close_reason", Integer),  # DEAL_REASON_* of the final deal
    Column("strategy", String(limits.STRATEGY_NAME), nullable=False),
    Column("signal_id", Integer),
)

daily_equity = Table(
    "daily_equity",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("day", String(10), primary_key=True),  # server-clock date, YYYY-MM-DD
    Column("time", BigInteger, nullable=False),  # UTC ns of the day's last equity sample
    Column("balance", Float, nullable=False),
    Column("equity", Float, nullable=False),
    Column("equity_min", Float, nullable=False),  # lowest equity sampled that day
)

# Live and paper sessions (mt5tester live / paper): every trading request sent to the terminal with its
# result, retcode and last_error, written at once (an order sent must be on record before the next one).
live_requests = Table(
    "live_requests",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("time", BigInteger, nullable=False),  # UTC ns of the decision point (or of the stop)
    Column("signal_id", Integer),
    Column("strategy", String(limits.STRATEGY_NAME), nullable=False),
    Column("symbol", String(limits.SYMBOL), nullable=False),
    Column("magic", BigInteger, nullable=False),
    Column("comment", Text, nullable=False),
    Column("request", JSON, nullable=False),  # the order_send dict as sent
    Column("retcode", Integer),  # None: order_send returned None (no answer)
    Column("result", JSON),  # the OrderSendResult fields
    Column("last_error", JSON),  # (code, text) when order_send returned None
    Column("outcome", String(16), nullable=False),  # done / refused / no_answer / duplicate
)

# One row per live/paper session: its mode, account, and the state a restart continues from.
live_sessions = Table(
    "live_sessions",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("mode", String(8), nullable=False),  # live / paper
    Column("account", JSON, nullable=False),  # login, server, company, currency of the account
    Column("state", JSON, nullable=False),  # signal numbering and the last bar each strategy saw
    Column("updated_at", String(40), nullable=False),
)

DEFAULT_TIMEOUT_SECONDS = 10.0  # results.connect_timeout_seconds / statement_timeout_seconds
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
WRITE_PROBE = "_write_probe"  # scratch table of the writability proof before 0002: ignored
_PG_MIGRATION_LOCK = 0x6D74357465  # pg_advisory_xact_lock key: one migrating process at a time


def redact(url: str) -> str:
    """The URL with its password hidden, for messages and stored configs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


def _scrub(message: str, url: str) -> str:
    """A driver's ``message`` with the URL's password replaced by ***, wherever the driver echoed it.

    A password that is also the user, database or host name (CI's mt5tester:mt5tester) is only replaced
    where it is a password (``:pw@``, ``password=pw``), so the message still names the user and database.
    """
    try:
        parsed = make_url(url)
    except Exception:
        return message
    if not parsed.password:
        return message
    pw = str(parsed.password)
    for pattern in (f":{pw}@", f"password={pw}", f"password='{pw}'", f'password="{pw}"'):
        message = message.replace(pattern, pattern.replace(pw, "***"))
    if pw not in (parsed.username, parsed.database, parsed.host):
        message = message.replace(pw, "***")
    return message


def _timeout_args(parsed: URL, connect_timeout: float, statement_timeout: float) -> dict[str, Any]:
    """Driver arguments that bound every wait on the database, so a server that accepts connections but
    never answers, or a lock nobody releases, is a StorageError and not a hang."""
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "sqlite":
        return {"timeout": statement_timeout}  # how long a write waits for another process's lock
    if backend == "postgresql" and driver in ("psycopg", "psycopg2"):
        # libpq counts connect_timeout in whole seconds and takes 2 for anything lower
        setting = f"-c statement_timeout={max(1, round(statement_timeout * 1000))}"
        options = parsed.query.get("options")
        return {
            "connect_timeout": max(2, math.ceil(connect_timeout)),
            "options": f"{options} {setting}" if isinstance(options, str) else setting,
        }
    return {}


def describe(e: SQLAlchemyError, url: str) -> str:
    """A database error as ``Class: driver message``, without the URL's password."""
    orig = getattr(e, "orig", None)
    return f"{e.__class__.__name__}: {_scrub(str(orig if orig is not None else e).strip(), url)}"


@contextmanager
def storage_errors(engine: Engine, what: str, fix: str) -> Iterator[None]:
    """Turn a database error inside the block into a StorageError (exit 6): what failed, why, the fix."""
    try:
        yield
    except SQLAlchemyError as e:
        url = engine.url.render_as_string(hide_password=False)
        raise StorageError(
            f"{what} in the results database {redact(url)} failed: {describe(e, url)}. {fix}"
        ) from None


def connect(
    url: str,
    use_env: bool = True,
    connect_timeout: float = DEFAULT_TIMEOUT_SECONDS,
    statement_timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Engine:
    """Open the database, migrate it to the head schema, and prove it is writable. StorageError otherwise.

    ``MT5TESTER_DB_URL`` overrides ``url`` unless ``use_env`` is False (the caller resolved it already).
    Connecting and each statement give up after their timeout (seconds). No message raised here contains
    the password of the URL.
    """
    if use_env:
        url = os.environ.get("MT5TESTER_DB_URL") or url
    try:
        parsed = make_url(url)
    except Exception:
        # the parser's own message quotes the whole string, password included: not shown
        raise StorageError(
            "results.database_url is not a valid SQLAlchemy URL (expected dialect[+driver]://user:"
            "password@host/database or sqlite:///path)"
        ) from None
    if (
        parsed.get_backend_name() == "sqlite"
        and parsed.database
        and parsed.database != ":memory:"
        and not parsed.database.startswith("file:")  # an SQLite URI (?uri=true): opened as given
    ):
        folder = Path(parsed.database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(
                f"cannot create the folder of the results database {parsed.database}: {e}. "
                "Set results.database_url to a writable path."
            ) from None
    try:
        engine = create_engine(
            url, future=True, connect_args=_timeout_args(parsed, connect_timeout, statement_timeout)
        )
        if parsed.get_backend_name() == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        migrate(engine)
        with engine.begin() as conn:
            # a real, committed write that changes nothing proves writability; no DDL, so parallel
            # processes opening one database do not race (CREATE TABLE IF NOT EXISTS does on PostgreSQL)
            conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
    except SQLAlchemyError as e:
        detail = describe(e, url)
        waited = (
            f" (gave up after results.connect_timeout_seconds {connect_timeout:g} / "
            f"statement_timeout_seconds {statement_timeout:g})"
            if any(word in detail.lower() for word in ("timeout", "timed out", "locked"))
            else ""
        )
        raise StorageError(
            f"results database {redact(url)} is not reachable or not writable: {detail}{waited}. "
            "Fix results.database_url or MT5TESTER_DB_URL."
        ) from None
    except ImportError as e:  # the URL's DB driver is not installed (e.g. postgresql:// needs psycopg2)
        raise StorageError(
            f"results database {redact(url)}: its driver is not installed ({_scrub(str(e), url)}). Install "
            "it (PostgreSQL: pip install 'mt5tester[postgres]' and use postgresql+psycopg://...)."
        ) from None
    return engine


# --- schema migrations (Alembic, run programmatically) -------------------------------------------------
def alembic_config() -> Any:
    """An Alembic Config pointing at the shipped migrations (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def schema_revision(conn_or_engine: Engine | Connection) -> str | None:
    """The Alembic revision a database is at (None: not under migration control, e.g. empty)."""
    from alembic.runtime.migration import MigrationContext

    if isinstance(conn_or_engine, Engine):
        with conn_or_engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    return MigrationContext.configure(conn_or_engine).get_current_revision()


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic filter: the write probe is not part of the schema (autogenerate ignores it)."""
    return not (type_ == "table" and name == WRITE_PROBE)


def migrate(engine: Engine, target: str = "head") -> list[str]:
    """Bring the database to ``target`` (default: head); return the revisions applied, in order.

    An up-to-date database is only read. Otherwise one process migrates at a time (PostgreSQL: an
    advisory transaction lock; SQLite: BEGIN IMMEDIATE) inside one transaction, and the revision is read
    again under the lock, so parallel runs starting on a fresh database do not race. A database created
    by create_all before migrations existed (tables, no alembic_version) is the 0001 schema: it is stamped
    0001 and upgraded from there. A revision unknown to this package (a newer mt5tester wrote it) is a
    StorageError: nothing is changed.
    """
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    cfg = alembic_config()
    script = ScriptDirectory.from_config(cfg)
    goal = (script.get_current_head() if target == "head" else target) or "base"

    def known(rev: str | None) -> None:
        if rev is None:
            return
        try:
            script.get_revision(rev)
        except CommandError:
            raise StorageError(
                f"the results database is at schema revision {rev!r}, unknown to mt5tester "
                f"{_package_version()} (its newest is {script.get_current_head()}): it was written by a "
                "newer mt5tester. Upgrade mt5tester or use another database."
            ) from None

    current = schema_revision(engine)
    known(current)
    if current == goal:
        return []
    applied: list[str] = []
    with engine.connect() as conn:
        backend = engine.dialect.name
        if backend == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock now, not at the first DDL
        elif backend == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        env = EnvironmentContext(
            cfg,
            script,
            fn=lambda rev, _ctx: script._upgrade_revs(goal, rev),
            destination_rev=goal,
        )
        with env:
            env.configure(connection=conn, target_metadata=metadata, include_object=include_object)
            ctx = env.get_context()
            current = ctx.get_current_revision()  # again, under the lock
            known(current)
            if current is None and inspect(conn).has_table("runs"):
                ctx.stamp(script, "0001")  # pre-migration database: its tables are revision 0001
                current = "0001"
            if current != goal:
                applied = [
                    s.revision for s in reversed(list(script.iterate_revisions(goal, current or "base")))
                ]
                try:
                    with env.begin_transaction():  # joins the open transaction: committed below, at once
                        env.run_migrations()
                except CommandError as e:
                    raise StorageError(f"migrating the results database to {goal} failed: {e}") from None
        conn.commit()
    return applied


def _package_version() -> str:
    from mt5tester import __version__

    return __version__


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
