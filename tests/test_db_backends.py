"""The results database on SQLite and PostgreSQL: a backtest stored on each backend, batched writes,
complete rows at completion, passwords kept out of errors and stored configs.

PostgreSQL tests get a fresh database each (CREATE DATABASE mt5tester_<uuid>, dropped at the end of the
session), so parallel workers (pytest -n 2) never see each other's rows. They skip locally without a
server and fail under CI=true (conftest.pg_url).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, func, make_url, select, text

from mt5tester.errors import StorageError
from mt5tester.results import db

from conftest import base_config, write_yaml

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def pg_database(pg_url: str) -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty PostgreSQL databases (URLs); all are dropped when the session ends."""
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def make() -> str:
        name = f"mt5tester_{uuid.uuid4().hex[:16]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return make_url(pg_url).set(database=name).render_as_string(hide_password=False)

    yield make
    with admin.connect() as conn:
        for name in created:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty results database on each backend (MT5TESTER_DB_URL unset so it cannot override it)."""
    monkeypatch.delenv("MT5TESTER_DB_URL", raising=False)
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'results.sqlite'}"
    return request.getfixturevalue("pg_database")()


def _config(demo_data: Path, tmp: Path, url: str) -> Path:
    cfg = base_config(demo_data, tmp)
    cfg["results"]["database_url"] = url
    return write_yaml(tmp / "config.yaml", cfg)


def test_backtest_each_backend_runs_list_show_export_work(
    db_url: str, demo_data: Path, tmp_path: Path, run_cli
) -> None:
    code, out, err = run_cli("backtest", "--config", str(_config(demo_data, tmp_path, db_url)))
    assert code == 0, err

    code, out, err = run_cli("runs", "list", "--db", db_url, "--json")
    assert code == 0, err
    [run] = json.loads(out)
    assert run["status"] == "completed"
    assert run["symbols"] == ["EURUSD"]
    assert run["strategies"] == ["ma"]
    assert run["trades"] > 0

    code, out, err = run_cli("runs", "show", run["run_id"], "--db", db_url, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["run"]["run_id"] == run["run_id"]
    assert shown["schema_revision"] == db.head_revision()
    assert shown["metrics"]["total_trades"] == run["trades"]
    assert math.isclose(shown["metrics"]["total_net_profit"], run["net_profit"], abs_tol=0.005)
    assert shown["metrics"]["equity_source"] == "equity samples"
    assert shown["rows"]["deals"] == run["deals"]
    assert [s["name"] for s in shown["strategies"]] == ["ma"]
    assert [(h["symbol"], h["timeframe"]) for h in shown["data_health"]] == [("EURUSD", "M1")]
    assert shown["funnel"]["signals_generated"] == shown["rows"]["signals"]
    # the stored config names the database with its password hidden
    stored = shown["run"]["config"]["results"]["database_url"]
    assert stored == db.redact(db_url)
    password = make_url(db_url).password
    if password:
        assert f":{password}@" not in out

    out_dir = tmp_path / "export"
    code, out, err = run_cli("runs", "export", run["run_id"], "--out", str(out_dir), "--db", db_url, "--json")
    assert code == 0, err
    assert json.loads(out)["rows"]["deals"] == run["deals"]
    code, out, err = run_cli("metrics", str(out_dir / "deals.csv"), "--json")
    assert code == 0, err
    from_csv = json.loads(out)
    assert from_csv["total_trades"] == run["trades"]
    assert from_csv["total_net_profit"] == pytest.approx(shown["metrics"]["total_net_profit"], abs=1e-9)


def test_recorder_run_batches_writes_and_rows_complete_at_completion(
    db_url: str, demo_data: Path, tmp_path: Path
) -> None:
    from mt5tester.config import load_config
    from mt5tester.engine.build import build
    from mt5tester.engine.loop import Runner

    config_path = _config(demo_data, tmp_path, db_url)
    components = build(load_config(config_path), config_path.parent)
    engine = components.engine
    transactions: list[str] = []
    event.listen(engine, "begin", lambda conn: transactions.append("begin"))
    runner = Runner(components)

    result = runner.run()

    # an independent engine sees every row once the run is over
    reader = db.connect(db_url, use_env=False)
    try:
        with reader.connect() as conn:

            def count(table: object) -> int:
                t = db.metadata.tables[str(table)]
                return int(
                    conn.execute(
                        select(func.count()).select_from(t).where(t.c.run_id == result.run_id)
                    ).scalar_one()
                )

            run_row = conn.execute(select(db.runs).where(db.runs.c.run_id == result.run_id)).mappings().one()
            rows = {name: count(name) for name in ("signals", "deals", "equity", "strategy_errors")}
            strategies = count("run_strategies")
            health = count("data_health")
    finally:
        reader.dispose()
    f = result.funnel
    assert run_row["status"] == "completed"
    assert run_row["finished_at"] is not None
    assert run_row["funnel"] == json.loads(json.dumps(f))
    assert rows["deals"] == result.deals
    assert rows["signals"] == f["signals_generated"]
    assert rows["equity"] == f["decision_points"] + 1  # every decision point plus the end of the run
    assert rows["strategy_errors"] == 0
    assert strategies == 1
    assert health == 1
    # batched: start, one flush per batch_rows rows, the flush before the daily summary (computed from
    # the stored equity rows), finish; never a transaction per row
    total = sum(rows.values())
    batches = math.ceil(total / runner.rec.batch_rows)
    assert total > 500
    assert 2 < len(transactions) <= 2 + batches + 2
    assert len(transactions) * 100 < total


def test_connect_wrong_postgres_password_storage_error_hides_password(
    pg_url: str, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MT5TESTER_DB_URL", raising=False)
    secret = "Wr0ng-s3cret-pw"
    bad = make_url(pg_url).set(password=secret).render_as_string(hide_password=False)

    with pytest.raises(StorageError) as info:
        db.connect(bad)
    assert secret not in str(info.value)
    assert "***" in str(info.value)
    assert info.value.exit_code == 6

    code, out, err = run_cli("runs", "list", "--db", bad)
    assert code == 6
    assert secret not in out + err
    assert "***" in err
    assert "not reachable or not writable" in err


def test_backtest_wrong_postgres_password_exit_6_without_password(
    pg_url: str, demo_data: Path, tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MT5TESTER_DB_URL", raising=False)
    secret = "An0ther-s3cret"
    bad = make_url(pg_url).set(password=secret).render_as_string(hide_password=False)

    code, out, err = run_cli("backtest", "--config", str(_config(demo_data, tmp_path, bad)))

    assert code == 6
    assert secret not in out + err
    assert "***" in err


def test_connect_unparsable_url_message_does_not_echo_it() -> None:
    with pytest.raises(StorageError) as info:
        db.connect("nonsense with p4ssw0rd-inside", use_env=False)
    assert "p4ssw0rd" not in str(info.value)
    assert "not a valid SQLAlchemy URL" in str(info.value)


def test_connect_missing_driver_storage_error_hides_password() -> None:
    with pytest.raises(StorageError) as info:
        db.connect("mysql+nosuchdriver://user:hunter2-pw@localhost/db", use_env=False)
    assert "hunter2-pw" not in str(info.value)


def test_connect_sqlite_sets_wal_journal(tmp_path: Path) -> None:
    engine = db.connect(f"sqlite:///{tmp_path / 'r.sqlite'}", use_env=False)
    with engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar_one()
        fks = conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one()
    engine.dispose()
    assert (mode, fks) == ("wal", 1)


def test_connect_env_overrides_url_unless_use_env_false(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_db = tmp_path / "env.sqlite"
    arg_db = tmp_path / "arg.sqlite"
    monkeypatch.setenv("MT5TESTER_DB_URL", f"sqlite:///{env_db}")

    db.connect(f"sqlite:///{arg_db}").dispose()
    assert env_db.is_file() and not arg_db.exists()
    db.connect(f"sqlite:///{arg_db}", use_env=False).dispose()
    assert arg_db.is_file()


def test_scrub_hides_password_in_driver_text_keeps_same_named_user() -> None:
    assert db._scrub("dsn host=h password=topsecret9 user=u", "postgresql://u:topsecret9@h/d") == (
        "dsn host=h password=*** user=u"
    )
    assert db._scrub(
        'password authentication failed for user "mt5tester"', "postgresql://mt5tester:mt5tester@h/x"
    ) == ('password authentication failed for user "mt5tester"')
    assert db._scrub("url postgresql://mt5tester:mt5tester@h/x", "postgresql://mt5tester:mt5tester@h/x") == (
        "url postgresql://mt5tester:***@h/x"
    )


def test_connect_read_only_sqlite_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "ro.sqlite"
    db.connect(f"sqlite:///{path}", use_env=False).dispose()

    with pytest.raises(StorageError) as info:
        db.connect(f"sqlite:///file:{path}?mode=ro&uri=true", use_env=False)

    assert "attempt to write a readonly database" in str(info.value)
    assert not (tmp_path / "file:").exists()


def test_backtest_strategy_name_at_column_limit_stored_longer_refused_on_each_backend(
    db_url: str, demo_data: Path, tmp_path: Path, run_cli
) -> None:
    # 128 characters fit the column on both backends; 129 are refused by the config on both, before bar 1
    # (PostgreSQL used to fail mid-run with exit 1 while SQLite stored the name silently)
    raw = base_config(demo_data, tmp_path)
    raw["results"]["database_url"] = db_url
    raw["report"] = {"html": False}
    raw["strategies"][0]["name"] = "n" * 128
    code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "fits.yaml", raw)))
    assert code == 0, err

    raw["strategies"][0]["name"] = "n" * 129
    code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "long.yaml", raw)))
    assert code == 2, err
    assert "strategies.0.name: String should have at most 128 characters" in err

    engine = db.connect(db_url, use_env=False)
    try:
        with engine.connect() as conn:
            names = conn.execute(select(db.run_strategies.c.name)).scalars().all()
            deal_names = set(conn.execute(select(db.deals.c.strategy)).scalars().all())
    finally:
        engine.dispose()
    assert names == ["n" * 128]
    assert "n" * 128 in deal_names


def test_connect_postgres_lock_never_released_storage_error_after_statement_timeout(
    pg_database: Callable[[], str],
) -> None:
    url = pg_database()
    db.connect(url, use_env=False).dispose()
    holder = create_engine(url)
    try:
        with holder.connect() as conn:
            conn.execute(text("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE"))  # held, never released
            with pytest.raises(StorageError) as info:
                db.connect(url, use_env=False, statement_timeout=1)
            conn.rollback()
    finally:
        holder.dispose()
    assert "canceling statement due to statement timeout" in str(info.value)
    assert "statement_timeout_seconds 1" in str(info.value)
    assert info.value.exit_code == 6


def test_runs_list_table_locked_past_statement_timeout_exit_6_without_traceback(
    pg_database: Callable[[], str], tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    url = pg_database()
    db.connect(url, use_env=False).dispose()
    holder = create_engine(url)
    env = {k: v for k, v in os.environ.items() if k != "MT5TESTER_DB_URL"}
    try:
        with holder.connect() as conn:
            conn.execute(text("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE"))  # held, never released
            # a read under a command waits for the default statement timeout (10 s), never for ever
            proc = subprocess.run(
                [str(Path(sys.executable).parent / "mt5tester"), "runs", "list", "--db", url],
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
            )
            conn.rollback()
    finally:
        holder.dispose()
    assert proc.returncode == 6, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "canceling statement due to statement timeout" in proc.stderr
