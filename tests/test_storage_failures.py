"""Storage failures never lose a run: a write that fails in the real driver (SQLite's max_page_count as a
full disk) is exit 6, the run is marked failed, keeps the rows written before the failure and resumes from
its last checkpoint to exactly the rows of an uninterrupted run; a database server that never answers is
exit 6 after the connect timeout; text longer than its column is refused by the config on every backend."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from mt5tester.results import db

from conftest import base_config, write_yaml

EXE = Path(sys.executable).parent / "mt5tester"
MAX_PAGES: dict[str, int] = {}  # database path -> max_page_count set on each new connection


def _config(demo_data: Path, folder: Path, **results: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    raw = base_config(demo_data, folder)
    raw["strategies"][0]["params"] |= {"sl_points": 150, "tp_points": 250}
    raw["results"] |= results
    raw["report"] = {"html": False}
    return write_yaml(folder / "c.yaml", raw)


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path, int], None]:
    """full_disk(db_path, extra_pages): from now on the SQLite database at db_path holds at most its
    current size plus extra_pages pages, enforced by SQLite itself (PRAGMA max_page_count on every new
    connection), so writes past it fail in the real driver with "database or disk is full"."""
    connect = db.connect

    def limited(url: str, *args: Any, **kwargs: Any) -> Engine:
        engine = connect(url, *args, **kwargs)
        limit = MAX_PAGES.get(str(engine.url.database))
        if limit is not None:
            event.listen(engine, "connect", lambda dbapi, _rec: _set_max_pages(dbapi, limit))
            engine.dispose()  # the connections opened by connect() had no limit
        return engine

    def fill(path: Path, extra_pages: int) -> None:
        with sqlite3.connect(path) as conn:
            MAX_PAGES[str(path)] = conn.execute("PRAGMA page_count").fetchone()[0] + extra_pages

    monkeypatch.setattr(db, "connect", limited)
    yield fill
    MAX_PAGES.clear()


def _set_max_pages(dbapi_conn: Any, limit: int) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA max_page_count = {limit}")
    cur.close()


def _rows(path: Path, run_id: str) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as conn:
        return {
            "deals": conn.execute(
                'SELECT ticket, "order", time, type, entry, reason, position_id, symbol, volume, price, '
                "commission, swap, profit, balance, comment, strategy FROM deals WHERE run_id = ? "
                "ORDER BY ticket",
                (run_id,),
            ).fetchall(),
            "equity": conn.execute(
                "SELECT time, balance, equity, margin, open_positions FROM equity WHERE run_id = ? ORDER BY time",
                (run_id,),
            ).fetchall(),
            "signals": conn.execute(
                "SELECT signal_id, time, strategy, symbol, direction, status, reason, volume, retcode "
                "FROM signals WHERE run_id = ? ORDER BY signal_id",
                (run_id,),
            ).fetchall(),
            "positions": conn.execute(
                "SELECT position_id, time_open, time_close, price_open, price_close, net FROM positions "
                "WHERE run_id = ? ORDER BY position_id",
                (run_id,),
            ).fetchall(),
            "daily_equity": conn.execute(
                "SELECT day, balance, equity FROM daily_equity WHERE run_id = ? ORDER BY day", (run_id,)
            ).fetchall(),
        }


def _only_run(path: Path) -> tuple[str, str, str | None]:
    with sqlite3.connect(path) as conn:
        [(run_id, status, error)] = conn.execute("SELECT run_id, status, error FROM runs").fetchall()
    return run_id, status, error


@pytest.fixture
def reference(demo_data: Path, tmp_path: Path, run_cli) -> dict[str, list[tuple]]:
    """The rows of the same run, uninterrupted, on a database with room."""
    cfg = _config(demo_data, tmp_path / "ref")
    code, _, err = run_cli("backtest", "--config", str(cfg))
    assert code == 0, err
    path = tmp_path / "ref" / "results.sqlite"
    return _rows(path, _only_run(path)[0])


def test_backtest_disk_full_at_final_flush_exit_6_failed_then_resume_gives_uninterrupted_rows(
    demo_data: Path, tmp_path: Path, run_cli, full_disk, reference: dict[str, list[tuple]]
) -> None:
    # the case: every row of a short run is still buffered when the database is full
    cfg = _config(demo_data, tmp_path / "full")
    path = tmp_path / "full" / "results.sqlite"
    db.connect(f"sqlite:///{path}", use_env=False).dispose()  # schema in place: the preflight write passes
    full_disk(path, 6)  # room for the run's start, not for its rows

    code, _, err = run_cli("backtest", "--config", str(cfg))

    assert code == 6, err
    assert "Traceback" not in err
    assert "database or disk is full" in err
    run_id, status, error = _only_run(path)
    assert f"mt5tester backtest --resume {run_id}" in err
    assert status == "failed"
    assert error is not None and "database or disk is full" in error
    with sqlite3.connect(path) as conn:
        (checkpoints,) = conn.execute(
            "SELECT count(*) FROM checkpoints WHERE run_id = ?", (run_id,)
        ).fetchone()
    assert checkpoints == 1  # the one before bar 1

    MAX_PAGES.clear()  # space freed
    code, out, err = run_cli("backtest", "--resume", run_id, "--config", str(cfg))

    assert code == 0, err
    assert f"resuming run {run_id} after 0 decision points" in out
    assert _only_run(path)[1:] == ("completed", None)
    assert _rows(path, run_id) == reference


def test_backtest_disk_full_before_bar_1_exit_6_no_run_says_run_it_again(
    demo_data: Path, tmp_path: Path, run_cli, full_disk
) -> None:
    cfg = _config(demo_data, tmp_path)
    path = tmp_path / "results.sqlite"
    db.connect(f"sqlite:///{path}", use_env=False).dispose()
    with sqlite3.connect(path) as conn:  # other runs fill the pages of the runs table to the last byte
        conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0] + 2}")
        n = 0
        for size in (2000, 500, 100, 20, 1):
            try:
                while True:
                    n += 1
                    conn.execute(
                        "INSERT INTO runs (run_id, status, started_at, config, config_hash, package_version, "
                        "seed, deposit, currency) VALUES (?, 'completed', '', ?, '', '', 0, 0, 'USD')",
                        (f"other{n}", '"' + "x" * size + '"'),
                    )
                    conn.commit()
            except sqlite3.OperationalError:
                conn.rollback()
    full_disk(path, 0)  # the preflight's write changes nothing and passes; storing the run does not fit

    code, _, err = run_cli("backtest", "--config", str(cfg))

    assert code == 6, err
    assert "Traceback" not in err
    assert "writing the start of run" in err
    assert "database or disk is full" in err
    assert err.rstrip().endswith("then run it again")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM runs WHERE run_id NOT LIKE 'other%'").fetchone() == (0,)


def test_runner_disk_full_mid_run_keeps_written_rows_and_resumes_from_last_checkpoint(
    demo_data: Path, tmp_path: Path, run_cli, full_disk, reference: dict[str, list[tuple]]
) -> None:
    from mt5tester.config import load_config
    from mt5tester.engine.build import build
    from mt5tester.engine.loop import Runner
    from mt5tester.errors import StorageError

    # a checkpoint at (nearly) every decision point and small batches: rows reach the database as the
    # run goes, and the database fills up in the middle of the run
    cfg_path = _config(demo_data, tmp_path / "full", checkpoint_seconds=1e-9)
    path = tmp_path / "full" / "results.sqlite"
    db.connect(f"sqlite:///{path}", use_env=False).dispose()
    full_disk(path, 60)
    components = build(load_config(cfg_path), cfg_path.parent)
    runner = Runner(components)
    runner.rec.batch_rows = 20

    with pytest.raises(StorageError) as info:
        runner.run()

    assert info.value.exit_code == 6
    assert "database or disk is full" in str(info.value)
    assert f"--resume {runner.run_id}" in str(info.value)
    components.engine.dispose()
    run_id, status, error = _only_run(path)
    assert (run_id, status) == (runner.run_id, "failed")
    assert error is not None and error.startswith("StorageError: ") and "database or disk is full" in error
    kept = _rows(path, run_id)
    # what was written before the failure is still there: a prefix of the uninterrupted run
    assert 1 < len(kept["deals"]) < len(reference["deals"])
    assert kept["deals"] == reference["deals"][: len(kept["deals"])]
    assert kept["equity"] == reference["equity"][: len(kept["equity"])]
    with sqlite3.connect(path) as conn:
        (last_checkpoint,) = conn.execute(
            "SELECT max(time_ns) FROM checkpoints WHERE run_id = ?", (run_id,)
        ).fetchone()
    assert last_checkpoint > reference["equity"][0][0]  # a timed checkpoint, after the first decision point

    MAX_PAGES.clear()
    code, out, err = run_cli("backtest", "--resume", run_id, "--config", str(cfg_path))

    assert code == 0, err
    assert f"resuming run {run_id} after 0 decision points" not in out
    assert _only_run(path)[1:] == ("completed", None)
    assert _rows(path, run_id) == reference


def test_recorder_failed_write_is_sticky_and_finish_marks_failed(tmp_path: Path, full_disk) -> None:
    from mt5tester.errors import StorageError
    from mt5tester.results.recorder import Recorder

    path = tmp_path / "r.sqlite"
    db.connect(f"sqlite:///{path}", use_env=False).dispose()
    full_disk(path, 4)
    engine = db.connect(f"sqlite:///{path}", use_env=False)
    rec = Recorder(engine, "run1", batch_rows=10**9)
    rec.start_run({"k": 1}, "h", 1, 1000.0, "USD", [])
    for i in range(3000):
        rec.add(db.equity, {"time": i, "balance": 1.0, "equity": 1.0, "margin": 0.0, "open_positions": 0})

    with pytest.raises(StorageError) as first:
        rec.flush()
    with pytest.raises(StorageError) as again:  # nothing is tried after a failed write
        rec.add(db.equity, {"time": -1, "balance": 1.0, "equity": 1.0, "margin": 0.0, "open_positions": 0})
        rec.flush()
    with pytest.raises(StorageError) as at_finish:
        rec.finish("completed", {"decision_points": 3000}, None)

    assert again.value is first.value and at_finish.value is first.value
    assert "writing rows (3000 equity) of run run1" in str(first.value)
    assert str(first.value).endswith("then run it again")  # no checkpoints: nothing to resume from
    engine.dispose()
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT status, error, funnel, finished_at FROM runs").fetchone()
        (equity_rows,) = conn.execute("SELECT count(*) FROM equity").fetchone()
    assert row[0] == "failed"
    assert row[1] == f"StorageError: {first.value}"
    assert row[2] == '{"decision_points": 3000}'
    assert row[3] is not None
    assert equity_rows == 0  # the failed batch was rolled back as a whole


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word; its port number."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed at teardown
                return
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.close()
    for conn in accepted:
        conn.close()
    thread.join(timeout=5)


def test_backtest_silent_postgres_server_exit_6_after_connect_timeout(
    silent_server: int, demo_data: Path, tmp_path: Path
) -> None:
    url = f"postgresql+psycopg://mt5tester:s3cret-pw@127.0.0.1:{silent_server}/mt5tester"
    cfg = _config(demo_data, tmp_path, database_url=url, connect_timeout_seconds=2)
    env = {k: v for k, v in __import__("os").environ.items() if k != "MT5TESTER_DB_URL"}

    # before the timeouts this hung for ever: the subprocess timeout turns that into a failure
    proc = subprocess.run(
        [str(EXE), "backtest", "--config", str(cfg)], capture_output=True, text=True, timeout=120, env=env
    )

    assert proc.returncode == 6, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "not reachable or not writable" in proc.stderr
    assert "timeout" in proc.stderr
    assert "results.connect_timeout_seconds 2" in proc.stderr
    assert "s3cret-pw" not in proc.stderr


def test_connect_sqlite_locked_by_another_writer_storage_error_after_statement_timeout(
    tmp_path: Path,
) -> None:
    from mt5tester.errors import StorageError

    path = tmp_path / "locked.sqlite"
    db.connect(f"sqlite:///{path}", use_env=False).dispose()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock and never lets go
    try:
        with pytest.raises(StorageError) as info:
            db.connect(f"sqlite:///{path}", use_env=False, statement_timeout=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "database is locked" in str(info.value)
    assert "statement_timeout_seconds 0.2" in str(info.value)


@pytest.mark.parametrize(
    ("edit", "key", "limit"),
    [
        (lambda raw: raw["strategies"][0].update(name="n" * 129), "strategies.0.name", 128),
        (
            lambda raw: raw["strategies"][0].update({"class": "ma_cross" + " " * 505}),
            "strategies.0.class",
            512,
        ),
        (lambda raw: raw["backtest"].update(symbols=["EURUSD", "X" * 33]), "backtest.symbols.1", 32),
        (lambda raw: raw["strategies"][0].update(symbols=["E" * 40]), "strategies.0.symbols.0", 32),
    ],
)
def test_config_text_longer_than_its_column_exit_2(
    edit: Callable[[dict], None], key: str, limit: int, demo_data: Path, tmp_path: Path, run_cli
) -> None:
    raw = base_config(demo_data, tmp_path)
    edit(raw)
    cfg = write_yaml(tmp_path / "c.yaml", raw)

    for command in (["config", "check", str(cfg)], ["backtest", "--config", str(cfg)]):
        code, _, err = run_cli(*command)

        assert code == 2, err
        assert "c.yaml:" in err
        assert f"{key}: String should have at most {limit} characters" in err
    assert not (tmp_path / "results.sqlite").exists()  # refused before the database is opened


def test_backtest_class_name_longer_than_its_column_exit_4_names_the_fix(
    demo_data: Path, tmp_path: Path, run_cli
) -> None:
    # no `name:`: the strategy is named after its class, which is too long for the database
    long = "L" * 129
    (tmp_path / "long.py").write_text(
        f"from mt5tester.strategy.library.technical import MovingAverageCross\n\n\nclass {long}"
        "(MovingAverageCross):\n    pass\n"
    )
    raw = base_config(demo_data, tmp_path)
    raw["strategies"] = [{"class": f"long.py:{long}", "params": {"fast": 5, "slow": 20}}]
    cfg = write_yaml(tmp_path / "c.yaml", raw)

    code, _, err = run_cli("backtest", "--config", str(cfg))

    assert code == 4, err
    assert "has 129 characters, more than the 128 the results database stores; set a shorter 'name:'" in err
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_recorder_finish_on_full_disk_marks_failed_without_a_funnel_too_big_to_fit(
    tmp_path: Path, full_disk
) -> None:
    from mt5tester.errors import StorageError
    from mt5tester.results.recorder import Recorder

    path = tmp_path / "r.sqlite"
    db.connect(f"sqlite:///{path}", use_env=False).dispose()
    full_disk(path, 3)
    engine = db.connect(f"sqlite:///{path}", use_env=False)
    rec = Recorder(engine, "run2", resumable=True)
    rec.start_run({"k": 1}, "h", 1, 1000.0, "USD", [])
    for i in range(3000):
        rec.add(db.equity, {"time": i, "balance": 1.0, "equity": 1.0, "margin": 0.0, "open_positions": 0})
    funnel = {"calls": {f"strategy_{i}": i for i in range(5000)}}  # about 100 kB: more than the free pages

    with pytest.raises(StorageError) as info:
        rec.finish("completed", funnel, None)

    assert "mt5tester backtest --resume run2 --config FILE (or --db URL)" in str(info.value)
    engine.dispose()
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT status, error, funnel FROM runs").fetchone()
    assert row == ("failed", f"StorageError: {info.value}", None)
