"""Alembic migrations of the results database, on SQLite and PostgreSQL (fresh database per test)."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event, inspect, select, text

from mt5tester.errors import StorageError
from mt5tester.results import db
from mt5tester.results.queries import list_runs
from mt5tester.results.recorder import Recorder
from test_db_backends import db_url, pg_database  # noqa: F401  (fixtures: both backends)

SCHEMA_0001 = {"runs", "run_strategies", "signals", "deals", "equity", "strategy_errors", "data_health"}


def _raw_engine(url: str) -> Engine:
    """An engine without connect()'s migration (to build databases at older revisions)."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", db._sqlite_pragmas)
    return engine


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _store_run(engine: Engine, run_id: str) -> None:
    """A finished run with a strategy, a health row, two deals, equity and a signal (0001 tables only)."""
    rec = Recorder(engine, run_id)
    rec.start_run(
        {"backtest": {"symbols": ["EURUSD"]}},
        "hash",
        7,
        10_000.0,
        "USD",
        [
            {
                "name": "ma",
                "category": "technical",
                "spec": "ma_cross",
                "source_file": "builtin",
                "source_hash": "0" * 16,
                "params": {"fast": 5},
                "timeframe": "H1",
                "symbols": ["EURUSD"],
            }
        ],
        [{"symbol": "EURUSD", "timeframe": "M1", "score": 99.5, "bars": 100, "report": {}}],
    )
    deal = {"order": 1, "reason": 3, "symbol": "EURUSD", "volume": 0.1, "commission": 0.0, "swap": 0.0}
    rec.add(
        db.deals,
        {
            **deal,
            "ticket": 1,
            "time": 10**18,
            "type": 0,
            "entry": 0,
            "position_id": 1,
            "price": 1.1,
            "profit": 0.0,
            "balance": 10_000.0,
            "comment": "",
            "strategy": "ma",
        },
    )
    rec.add(
        db.deals,
        {
            **deal,
            "ticket": 2,
            "time": 10**18 + 3600 * 10**9,
            "type": 1,
            "entry": 1,
            "position_id": 1,
            "price": 1.1012,
            "profit": 12.0,
            "balance": 10_012.0,
            "comment": "",
            "strategy": "ma",
        },
    )
    rec.add(
        db.equity,
        {"time": 10**18, "balance": 10_000.0, "equity": 10_000.0, "margin": 0.0, "open_positions": 0},
    )
    rec.finish("completed", {"signals_generated": 1}, None)


def _schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"include_object": db.include_object, "compare_type": True}
        )
        return list(compare_metadata(ctx, db.metadata))


def test_migrate_empty_database_reaches_head_equal_to_metadata(db_url: str) -> None:  # noqa: F811
    engine = _raw_engine(db_url)
    assert db.schema_revision(engine) is None

    applied = db.migrate(engine)

    assert applied == ["0001", "0002", "0003", "0004", "0006", "0007"]
    assert db.schema_revision(engine) == db.head_revision() == "0007"
    assert _tables(engine) == {t.name for t in db.metadata.sorted_tables} | {"alembic_version"}
    assert _schema_diff(engine) == []
    engine.dispose()


def test_connect_empty_database_gets_head_schema(db_url: str) -> None:  # noqa: F811
    engine = db.connect(db_url, use_env=False)
    assert db.schema_revision(engine) == "0007"
    assert _schema_diff(engine) == []  # the write probe table is ignored
    engine.dispose()


def test_migrate_up_to_date_database_only_reads(db_url: str) -> None:  # noqa: F811
    engine = db.connect(db_url, use_env=False)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda c, cur, stmt, *a: statements.append(stmt))

    applied = db.migrate(engine)

    assert applied == []
    writes = [s for s in statements if s.lstrip().split()[0].upper() not in ("SELECT", "PRAGMA", "WITH")]
    assert writes == []
    engine.dispose()


def test_upgrade_from_0001_keeps_run_and_adds_checkpoints(db_url: str) -> None:  # noqa: F811
    old = _raw_engine(db_url)
    assert db.migrate(old, "0001") == ["0001"]
    assert _tables(old) == SCHEMA_0001 | {"alembic_version"}
    _store_run(old, "run0001")
    old.dispose()

    engine = db.connect(db_url, use_env=False)

    assert db.schema_revision(engine) == "0007"
    assert _schema_diff(engine) == []
    [run] = list_runs(engine)
    assert (run.run_id, run.status, run.symbols, run.strategies) == (
        "run0001",
        "completed",
        ["EURUSD"],
        ["ma"],
    )
    assert (run.net_profit, run.trades, run.deals) == (12.0, 1, 2)
    with engine.begin() as conn:
        conn.execute(
            db.checkpoints.insert().values(
                run_id="run0001",
                seq=1,
                time_ns=10**18,
                created_at="2024-01-01T00:00:00+00:00",
                state=b"\x00\x01state\xff",
                recorder_position={"deals": 2, "equity": 1},
            )
        )
    with engine.connect() as conn:
        row = conn.execute(select(db.checkpoints)).mappings().one()
    assert (bytes(row["state"]), row["recorder_position"]) == (
        b"\x00\x01state\xff",
        {"deals": 2, "equity": 1},
    )
    engine.dispose()


def test_connect_pre_migration_database_is_stamped_0001_and_upgraded(db_url: str) -> None:  # noqa: F811
    """A database made by create_all before migrations existed: 0001 tables, no alembic_version."""
    old = _raw_engine(db_url)
    db.migrate(old, "0001")
    _store_run(old, "legacy")
    with old.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    assert db.schema_revision(old) is None
    old.dispose()

    engine = db.connect(db_url, use_env=False)

    assert db.schema_revision(engine) == "0007"
    assert [r.run_id for r in list_runs(engine)] == ["legacy"]
    assert _schema_diff(engine) == []
    engine.dispose()


def test_connect_newer_unknown_revision_storage_error_changes_nothing(db_url: str) -> None:  # noqa: F811
    engine = db.connect(db_url, use_env=False)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()

    with pytest.raises(StorageError) as info:
        db.connect(db_url, use_env=False)

    assert "'9999'" in str(info.value)
    assert "newer mt5tester" in str(info.value)
    assert info.value.exit_code == 6
    check = _raw_engine(db_url)
    assert db.schema_revision(check) == "9999"
    check.dispose()


def test_connect_parallel_on_empty_database_migrates_once(db_url: str) -> None:  # noqa: F811
    def open_and_count() -> str | None:
        engine = db.connect(db_url, use_env=False)
        try:
            return db.schema_revision(engine)
        finally:
            engine.dispose()

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        revisions = list(pool.map(lambda _: open_and_count(), range(4)))

    assert revisions == ["0007"] * 4
    engine = _raw_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    assert _schema_diff(engine) == []
    engine.dispose()


def test_migrations_ship_as_packages_with_their_template() -> None:
    """setuptools finds packages by __init__.py: the revisions must be in one (non-editable installs)."""
    from setuptools import find_packages

    src = Path(db.__file__).resolve().parents[2]
    packages = find_packages(str(src))
    assert {"mt5tester.results.migrations", "mt5tester.results.migrations.versions"} <= set(packages)
    versions = sorted(p.name for p in (db.MIGRATIONS_DIR / "versions").glob("0*.py"))
    assert versions == [
        "0001_initial.py",
        "0002_checkpoints.py",
        "0003_orders_positions.py",
        "0004_daily_equity.py",
        "0006_live.py",
        "0007_trading_mode.py",
    ]
    assert (db.MIGRATIONS_DIR / "script.py.mako").is_file()
