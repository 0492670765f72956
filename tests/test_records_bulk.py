"""Records in bulk (issue 14): the columnar recorder writes exactly the rows the per-row path wrote.

``tests/golden/records_bulk.json`` was written by the recorder as it was before the columnar buffers
(one dict per row, executemany per batch): every table of one run (signals with decisions, deals,
equity, strategy errors with their tracebacks, orders, positions with MFE/MAE, daily equity, strategies,
data health, the run row's status and funnel), row by row and column by column. The same run recorded
now, on SQLite and on PostgreSQL (COPY), must give the same rows.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, make_url, select, text

from mt5tester.errors import StorageError
from mt5tester.results import db

from conftest import GOLDEN, STRATEGIES_FILE, base_config, write_yaml

# every table a run writes, with the columns that identify a row (the order the rows are compared in)
TABLES = {
    "run_strategies": ("name",),
    "data_health": ("symbol", "timeframe"),
    "signals": ("signal_id",),
    "deals": ("ticket",),
    "equity": ("time",),
    "strategy_errors": ("seq",),
    "orders": ("ticket",),
    "positions": ("position_id",),
    "daily_equity": ("day",),
}


def golden_config(demo_data: Path, folder: Path, url: str) -> Path:
    """Two symbols on M15, SL/TP crosses, a weighted vote fed by two members that do not trade (to_fusion
    signals) and a strategy that raises from its 940th call on (errors, the first with its traceback)."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = base_config(
        demo_data,
        folder,
        symbols=["EURUSD", "USDJPY"],
        primary_timeframe="M15",
        start="2024-01-02",
        end="2024-01-09",
        warmup_bars=40,
        on_strategy_error="continue",
    )
    raw["strategies"] = [
        {
            "class": "ma_cross",
            "name": "fast",
            "params": {"fast": 5, "slow": 20, "sl_points": 150, "tp_points": 250},
        },
        {"class": "rsi_reversion", "name": "rsi_member", "trade": False},
        {"class": "macd_cross", "name": "macd_member", "trade": False},
        {"class": "weighted_vote", "name": "vote", "params": {"members": ["rsi_member", "macd_member"]}},
        {"class": f"{STRATEGIES_FILE}:RaiseOnFifth", "name": "fragile", "params": {"nth": 940}},
    ]
    raw["results"]["database_url"] = url
    raw["report"] = {"html": False}
    return write_yaml(folder / "c.yaml", raw)


def _plain(column: str, value: Any) -> Any:
    if column == "traceback" and value is not None:
        # paths and line numbers depend on the checkout and on edits elsewhere; the exception line does not
        return "Traceback ... " + value.rstrip().splitlines()[-1]
    return value


def dump(url: str, run_id: str) -> dict[str, Any]:
    """Every row of the run in every table (run_id left out), ordered by its key; JSON columns decoded;
    the strategies' source paths and hashes and the funnel's timings left out (they depend on the checkout and the
    machine, not on the recorder)."""
    engine = db.connect(url, use_env=False)
    out: dict[str, Any] = {}
    try:
        with engine.connect() as conn:
            for name, key in TABLES.items():
                table = db.metadata.tables[name]
                columns = [c for c in table.columns if c.name not in ("run_id", "source_file", "source_hash")]
                rows = conn.execute(
                    select(*columns).where(table.c.run_id == run_id).order_by(*(table.c[k] for k in key))
                ).all()
                names = [c.name for c in columns]
                out[name] = {
                    "columns": names,
                    "rows": [[_plain(k, v) for k, v in zip(names, r, strict=True)] for r in rows],
                }
            status, funnel = conn.execute(
                select(db.runs.c.status, db.runs.c.funnel).where(db.runs.c.run_id == run_id)
            ).one()
    finally:
        engine.dispose()
    funnel = {k: v for k, v in funnel.items() if k != "mean_call_us"}
    out["runs"] = {"status": status, "funnel": funnel}
    # JSON values, as the golden holds them; strategy paths relative to the checkout, which may be anywhere
    root = str(Path(__file__).resolve().parents[1])
    return json.loads(json.dumps(out).replace(json.dumps(root)[1:-1], "<repo>"))


def _same(got: Any, want: Any, where: str) -> None:
    if isinstance(want, float) or isinstance(got, float):
        assert isinstance(got, (int, float)) and isinstance(want, (int, float)), (
            f"{where}: {got!r} != {want!r}"
        )
        assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12), f"{where}: {got!r} != {want!r}"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), f"{where}: keys {got!r} != {want!r}"
        for k in want:
            _same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {len(got)} rows != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _same(g, w, f"{where}[{i}]")
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def compare_with_golden(got: dict[str, Any], request: pytest.FixtureRequest) -> None:
    path = GOLDEN / "records_bulk.json"
    if request.config.getoption("--update-golden"):
        path.write_text(json.dumps(got, sort_keys=True) + "\n")
        return
    want = json.loads(path.read_text())
    assert sorted(got) == sorted(want)
    for name in want:
        if "columns" in want[name]:
            assert got[name]["columns"] == want[name]["columns"], name
        _same(got[name], want[name], name)


@pytest.fixture
def fresh_pg(pg_url: str) -> Iterator[Callable[[], str]]:
    """Fresh, empty PostgreSQL databases (URLs), dropped at the end of the test."""
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make() -> str:
        name = f"mt5tester_{uuid.uuid4().hex[:16]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return make_url(pg_url).set(database=name).render_as_string(hide_password=False)

    yield make
    with admin.connect() as conn:
        for name in made:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def results_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("MT5TESTER_DB_URL", raising=False)
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'results.sqlite'}"
    return str(request.getfixturevalue("fresh_pg")())


def test_run_tables_equal_the_per_row_recorders_golden_row_by_row(
    demo_data: Path, tmp_path: Path, results_url: str, request: pytest.FixtureRequest
) -> None:
    import mt5tester

    result = mt5tester.run(golden_config(demo_data, tmp_path / "run", results_url))

    got = dump(results_url, result.run_id)
    assert result.status == "completed"
    counts = {name: len(got[name]["rows"]) for name in TABLES}
    assert min(counts.values()) > 0, counts  # every table has rows: the comparison covers them all
    first_error = got["strategy_errors"]["rows"][0]
    assert first_error[4:] == ["ValueError", "boom on call 940", "Traceback ... ValueError: boom on call 940"]
    assert {row[-1] for row in got["strategy_errors"]["rows"][1:]} == {None}  # one traceback per strategy
    assert {"to_fusion", "approved"} <= {row[13] for row in got["signals"]["rows"]}
    compare_with_golden(got, request)


def _deal(ticket: int, **extra: Any) -> dict[str, Any]:
    row = {
        "ticket": ticket,
        "order": ticket,
        "time": 1_704_067_200_000_000_000 + ticket,
        "type": ticket % 2,
        "entry": 0,
        "reason": 3,
        "position_id": ticket,
        "symbol": "EURUSD",
        "volume": 0.1,
        "price": 1.08125,
        "commission": -0.35,
        "swap": 0.0,
        "profit": 0.0,
        "balance": 10_000.0 - 0.35 * ticket,
        "comment": "",
        "strategy": "s",
        "signal_id": None,
    }
    return row | extra


def _read(url: str, table: str, run_id: str, key: str) -> list[tuple[Any, ...]]:
    engine = db.connect(url, use_env=False)
    t = db.metadata.tables[table]
    try:
        with engine.connect() as conn:
            cols = [c for c in t.columns if c.name != "run_id"]
            return [
                tuple(r) for r in conn.execute(select(*cols).where(t.c.run_id == run_id).order_by(t.c[key]))
            ]
    finally:
        engine.dispose()


def test_recorder_rows_given_one_by_one_and_as_columns_are_stored_alike(results_url: str) -> None:
    import numpy as np

    from mt5tester.results.recorder import Recorder

    engine = db.connect(results_url, use_env=False)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    rec = Recorder(engine, "bulk1", batch_rows=10**9)
    rec.start_run({"k": 1}, "h", 1, 10_000.0, "USD", [])
    for t in range(1, 6):
        rec.add(db.deals, _deal(t))
    later = [_deal(t) for t in range(6, 11)]
    columns: dict[str, Any] = {k: np.array([d[k] for d in later]) for k in later[0] if k != "signal_id"}
    columns["symbol"] = [d["symbol"] for d in later]  # a plain list works as well as an array
    rec.add_columns(db.deals, columns)  # signal_id not given: NULL
    rec.add(db.signals, _signal(1) | {"tags": {"x": [1, 2]}, "details": None})
    with pytest.raises(ValueError, match="deals has no column colour"):
        rec.add(db.deals, _deal(99, colour="red"))
    with pytest.raises(ValueError, match="columns of different lengths"):
        rec.add_columns(db.deals, {"ticket": [1, 2], "order": [1]})

    rec.flush()

    deals = _read(results_url, "deals", "bulk1", "ticket")
    expected = [_deal(t) | ({"signal_id": None} if t > 5 else {}) for t in range(1, 11)]
    assert deals == [tuple(d.values()) for d in expected]
    assert all(
        type(v) is type(w)
        for d, e in zip(deals, expected, strict=True)
        for v, w in zip(d, e.values(), strict=True)
        if w is not None
    )  # numpy values became Python's
    (signal,) = _read(results_url, "signals", "bulk1", "signal_id")
    assert signal == tuple((_signal(1) | {"tags": {"x": [1, 2]}, "details": None}).values())
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO") and "deals" in s]
    # PostgreSQL: the rows went by COPY, no INSERT statement; SQLite: one executemany per table
    assert len(inserts) == (0 if results_url.startswith("postgresql") else 1)
    engine.dispose()


def test_recorder_bulk_write_the_database_refuses_is_storage_error_and_rolled_back(results_url: str) -> None:
    from mt5tester.results.recorder import Recorder

    engine = db.connect(results_url, use_env=False)
    rec = Recorder(engine, "dup", batch_rows=10**9)
    rec.start_run({"k": 1}, "h", 1, 10_000.0, "USD", [])
    rec.add(db.equity, {"time": 1, "balance": 1.0, "equity": 1.0, "margin": 0.0, "open_positions": 0})
    rec.add(db.deals, _deal(1))
    rec.add(db.deals, _deal(1))  # the same ticket twice: the primary key refuses the batch

    with pytest.raises(StorageError) as info:
        rec.flush()
    with pytest.raises(StorageError) as again:  # sticky: nothing is tried after a failed write
        rec.flush()

    assert again.value is info.value and info.value.exit_code == 6
    message = str(info.value)
    assert "writing rows (1 equity, 2 deals) of run dup in the results database" in message
    assert "IntegrityError" in message and "Traceback" not in message
    assert _read(results_url, "equity", "dup", "time") == []  # the whole batch was rolled back
    engine.dispose()


def _deal(ticket: int, **extra: Any) -> dict[str, Any]:
    row = {
        "ticket": ticket,
        "order": ticket + 100,
        "time": 1_704_067_200_000_000_000 + ticket,
        "type": ticket % 2,
        "entry": 0,
        "reason": 3,
        "position_id": ticket,
        "symbol": "EURUSD",
        "volume": 0.1,
        "price": 1.08125 + ticket * 1e-5,
        "commission": -0.35,
        "swap": 0.0,
        "profit": 0.0,
        "balance": 10_000.0 - 0.35 * ticket,
        "comment": f"c{ticket}",
        "strategy": "s",
        "signal_id": ticket,
    }
    return row | extra


def _signal(signal_id: int) -> dict[str, Any]:
    return {
        "signal_id": signal_id,
        "time": 7,
        "strategy": "s",
        "symbol": "EURUSD",
        "timeframe": "H1",
        "direction": "buy",
        "order_type": "market",
        "price": None,
        "sl": 1.07,
        "tp": None,
        "confidence": 1.0,
        "comment": "",
        "tags": {"x": 1},
        "status": "approved",
        "rule": None,
        "reason": None,
        "details": None,
        "volume": 0.1,
        "order_ticket": 2,
        "retcode": 10009,
        "position_id": 2,
        "trading_mode": "normal",
    }


def test_memory_sink_rows_given_as_columns_equal_rows_given_one_by_one() -> None:
    import numpy as np

    from mt5tester.results.memory import MemorySink

    one_by_one, by_columns = MemorySink("m"), MemorySink("m")
    deals = [_deal(t) | {"signal_id": None} for t in range(1, 4)]
    for row in deals:
        one_by_one.add(db.deals, dict(row))
    columns: dict[str, Any] = {k: np.array([d[k] for d in deals]) for k in deals[0] if k != "signal_id"}
    by_columns.add_columns(db.deals, columns)

    assert by_columns.rows("deals") == one_by_one.rows("deals")
    assert [type(v) for v in by_columns.rows("deals")[0].values()] == [
        type(v) for v in one_by_one.rows("deals")[0].values()
    ]
    with pytest.raises(ValueError, match="deals has no column colour"):
        by_columns.add_columns(db.deals, {"colour": ["red"]})


def test_run_tables_equal_those_of_a_per_row_insert_recorder(demo_data: Path, tmp_path: Path) -> None:
    """The same run recorded by the bulk recorder and by a reference that inserts every row on its own
    through SQLAlchemy Core (its JSON type, its parameter handling, a transaction per row): the same
    rows in every table. Unlike the golden, this holds whatever the engine's trades become."""
    from sqlalchemy import insert

    import mt5tester
    from mt5tester.results.recorder import Recorder

    class PerRow(Recorder):
        def add(self, table: Any, row: dict[str, Any]) -> None:
            with self._transaction("writing one row") as conn:
                conn.execute(insert(table).values(run_id=self.run_id, **row))

    urls = {k: f"sqlite:///{tmp_path / (k + '.sqlite')}" for k in ("bulk", "per_row")}
    bulk = mt5tester.run(golden_config(demo_data, tmp_path / "bulk", urls["bulk"]))
    engine = db.connect(urls["per_row"], use_env=False)
    per_row = mt5tester.run(
        golden_config(demo_data, tmp_path / "per_row", urls["per_row"]), sink=PerRow(engine, "perrow1")
    )
    engine.dispose()

    got, want = dump(urls["bulk"], bulk.run_id), dump(urls["per_row"], per_row.run_id)
    assert min(len(want[name]["rows"]) for name in TABLES) > 0
    for name in want:
        _same(got[name], want[name], name)


def test_memory_run_fingerprints_its_bars_only_when_asked(demo_data: Path, tmp_path: Path) -> None:
    # A stored run's data-health reports name its data (the golden's sha256 fingerprints); a run kept in
    # memory skips hashing its bars unless its MemorySink asks, and then has the stored run's.
    import mt5tester
    from mt5tester.config import load_config

    cfg = load_config(golden_config(demo_data, tmp_path / "run", f"sqlite:///{tmp_path / 'r.sqlite'}"))
    want = {
        (row[0], row[1]): row[4]["fingerprints"]
        for row in json.loads((GOLDEN / "records_bulk.json").read_text())["data_health"]["rows"]
    }
    plain = mt5tester.run(cfg, sink=mt5tester.MemorySink())
    asked = mt5tester.run(cfg, sink=mt5tester.MemorySink(fingerprints=True))
    for result, fingerprints in ((plain, None), (asked, want)):
        rows = result.source.rows("data_health")
        assert [(r["symbol"], r["timeframe"]) for r in rows] == list(want)
        assert [r["report"].get("fingerprints") for r in rows] == [
            None if fingerprints is None else fingerprints[k] for k in want
        ]
        assert all(r["report"]["history_quality_pct"] == 100.0 for r in rows)
