"""Every preflight failure through the real CLI entry point: exit code, message, and no completed run."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from conftest import FIXTURES, STRATEGIES_FILE, base_config, write_yaml


def completed_runs(db: Path) -> list[tuple[str, str]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT run_id, status FROM runs WHERE status = 'completed'").fetchall()


def test_backtest_valid_config_completes_and_prints_funnel(demo_data: Path, tmp_path: Path, run_cli) -> None:
    cfg = write_yaml(tmp_path / "c.yaml", base_config(demo_data, tmp_path))
    code, out, err = run_cli("backtest", "--config", str(cfg))
    assert code == 0, err
    assert "Lifecycle funnel" in out and "closed by sl" in out and "report: " in out
    assert len(completed_runs(tmp_path / "results.sqlite")) == 1
    # The loop's speed line: the EURUSD M1 bars of January 2024 and the H1 decision points.
    m1 = pd.read_parquet(next(demo_data.glob("EURUSD*.parquet")), columns=["time"])["time"]
    bars = int(((m1 >= "2024-01-01") & (m1 < "2024-02-01")).sum())
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        points = json.loads(conn.execute("SELECT funnel FROM runs").fetchone()[0])["decision_points"]
    assert re.search(
        rf"^loop: {bars:,} M1 bars, {points:,} decision points in \d+\.\d\d s \([\d,]+ M1 bars/s\)$",
        out,
        re.M,
    )


def test_backtest_typo_key_exits_2_with_hint_and_line(demo_data: Path, tmp_path: Path, run_cli) -> None:
    raw = base_config(demo_data, tmp_path)
    raw["coordinator"] = {"max_position": 3}
    cfg = write_yaml(tmp_path / "c.yaml", raw)
    line = next(i for i, t in enumerate(cfg.read_text().splitlines(), 1) if "max_position:" in t)
    code, _, err = run_cli("backtest", "--config", str(cfg))
    assert code == 2
    assert f"{cfg}:{line}: unknown key 'coordinator.max_position'; did you mean 'max_positions'?" in err
    assert completed_runs(tmp_path / "results.sqlite") == []


def test_backtest_missing_symbol_data_exits_3_naming_symbol(demo_data: Path, tmp_path: Path, run_cli) -> None:
    cfg = write_yaml(tmp_path / "c.yaml", base_config(demo_data, tmp_path, symbols=["EURUSD", "AUDUSD"]))
    code, _, err = run_cli("backtest", "--config", str(cfg))
    assert code == 3
    assert f"no M1 data for symbol AUDUSD in {demo_data}" in err
    assert "symbols with data there: EURUSD, GBPUSD, USDJPY" in err
    assert completed_runs(tmp_path / "results.sqlite") == []


def test_backtest_range_outside_data_exits_3_with_ranges(demo_data: Path, tmp_path: Path, run_cli) -> None:
    cfg = write_yaml(tmp_path / "c.yaml", base_config(demo_data, tmp_path))
    code, _, err = run_cli("backtest", "--config", str(cfg), "--start", "2024-05-01", "--end", "2024-06-01")
    assert code == 3
    assert "EURUSD H1:" in err
    assert "asked for" in err and "2024-06-01" in err
    assert (
        "EURUSD H1: no data through the run; asked for 2024-05-01 .. 2024-06-01 plus 50 warm-up bars" in err
    )
    assert "available 2023-11-01 00:00 .. 2024-02-29 23:59" in err
    assert completed_runs(tmp_path / "results.sqlite") == []


def test_backtest_not_enough_warmup_exits_3(demo_data: Path, tmp_path: Path, run_cli) -> None:
    cfg = write_yaml(tmp_path / "c.yaml", base_config(demo_data, tmp_path, start="2023-11-02"))
    code, _, err = run_cli("backtest", "--config", str(cfg))
    assert code == 3
    assert (
        "EURUSD H1: the run needs 50 closed bars before 2023-11-02 (warmup_bars) but the data has 24" in err
    )


def test_backtest_strategy_import_error_exits_4_naming_module(
    demo_data: Path, tmp_path: Path, run_cli
) -> None:
    raw = base_config(demo_data, tmp_path)
    raw["strategies"] = [{"class": f"{FIXTURES / 'import_error_strategy.py'}:Nope"}]
    code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
    assert code == 4
    assert "import_error_strategy.py raised ModuleNotFoundError" in err
    assert "No module named 'mt5tester_no_such_module_xyz'" in err
    assert completed_runs(tmp_path / "results.sqlite") == []


def test_backtest_strategy_module_path_import_error_exits_4(demo_data: Path, tmp_path: Path, run_cli) -> None:
    raw = base_config(demo_data, tmp_path)
    raw["strategies"] = [{"class": "no_such_pkg.strategies:Trend"}]
    code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
    assert code == 4
    assert "cannot import module 'no_such_pkg.strategies': ModuleNotFoundError" in err


def test_backtest_strategy_constructor_raises_exits_4(demo_data: Path, tmp_path: Path, run_cli) -> None:
    raw = base_config(demo_data, tmp_path)
    raw["strategies"] = [{"class": f"{STRATEGIES_FILE}:BrokenConstructor", "name": "broken"}]
    code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
    assert code == 4
    assert "strategy #1 'broken'" in err
    assert "constructor raised RuntimeError: cannot build: model file missing" in err
    assert completed_runs(tmp_path / "results.sqlite") == []


def test_backtest_empty_strategy_list_exits_4(demo_data: Path, tmp_path: Path, run_cli) -> None:
    raw = base_config(demo_data, tmp_path)
    raw["strategies"] = []
    code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
    assert code == 4
    assert "no strategies configured" in err
    assert completed_runs(tmp_path / "results.sqlite") == []


def test_backtest_unknown_strategy_param_exits_4(demo_data: Path, tmp_path: Path, run_cli) -> None:
    raw = base_config(demo_data, tmp_path)
    raw["strategies"] = [{"class": "ma_cross", "params": {"fats": 3}}]
    code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
    assert code == 4
    assert (
        "bad params: fats: Extra inputs are not permitted. Valid params: fast, slow, sl_points, tp_points"
        in err
    )


def test_backtest_unwritable_database_exits_6(demo_data: Path, tmp_path: Path, run_cli) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the database folder should be")
    raw = base_config(demo_data, tmp_path)
    raw["results"]["database_url"] = f"sqlite:///{blocker / 'sub' / 'r.sqlite'}"
    code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
    assert code == 6
    assert "cannot create the folder of the results database" in err
    assert "Set results.database_url to a writable path" in err


def test_backtest_regime_rules_without_detection_refused(demo_data: Path, tmp_path: Path, run_cli) -> None:
    raw = base_config(demo_data, tmp_path)
    raw["coordinator"] = {"regime_gate": {"ma": ["trending_up"]}}
    code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
    assert code == 2
    assert "coordinator.regime_gate / regime_risk need regime.enabled: true" in err


@pytest.mark.parametrize("policy", ["stop", "continue", "disable"])
def test_backtest_strategy_raising_on_fifth_call_follows_policy(
    demo_data: Path, tmp_path: Path, run_cli, policy: str
) -> None:
    raw = base_config(demo_data, tmp_path, on_strategy_error=policy)
    raw["strategies"] = [{"class": f"{STRATEGIES_FILE}:RaiseOnFifth", "name": "fragile"}]
    code, out, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
    db = tmp_path / "results.sqlite"
    with sqlite3.connect(db) as conn:
        ((status, error, funnel_json),) = conn.execute("SELECT status, error, funnel FROM runs").fetchall()
        calls = conn.execute("SELECT count(*) FROM equity").fetchone()[0] - 1  # one row per point + the end
        errors = conn.execute("SELECT count(*), min(time) FROM strategy_errors").fetchone()
    funnel = json.loads(funnel_json)
    # January 2024 H1 closes of the demo EURUSD data; the 5th call is 2024-01-01 04:00 UTC (bar 03:00).
    fifth = "2024-01-01 04:00"
    assert "WARNING mt5tester.engine.loop: strategy fragile raised on EURUSD at bar close " + fifth in err
    if policy == "stop":
        assert code == 5
        assert f"strategy fragile raised ValueError: boom on call 5 on EURUSD at bar close {fifth} UTC" in err
        assert status == "failed" and error.startswith("StrategyRuntimeError")
        assert errors[0] == 1
    elif policy == "continue":
        assert code == 0 and status == "completed"
        assert errors[0] == calls - 4
        line = next(t for t in out.splitlines() if "strategy errors: fragile" in t)
        assert line.split("│")[2].strip() == str(calls - 4)
        assert funnel["strategy_errors"] == {"fragile": calls - 4}
    else:
        assert code == 0 and status == "completed"
        assert errors[0] == 1
    assert err.count("Traceback") == 1  # the first traceback only, at WARNING


def test_backtest_prints_health_and_refuses_below_min_health(
    demo_data: Path, tmp_path: Path, run_cli
) -> None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(demo_data / "EURUSD_M1_demo.parquet")
    # inject a stale stretch: 600 bars of one unchanged price on 2024-01-10 from 12:00 UTC
    times = table.column("time").to_pandas()
    stale = ((times >= "2024-01-10 12:00Z") & (times < "2024-01-10 22:00Z")).to_numpy()
    price = float(table.column("close").to_numpy()[stale.argmax() - 1])
    for col in ("open", "high", "low", "close"):
        values = table.column(col).to_numpy().copy()
        values[stale] = price
        table = table.set_column(table.schema.get_field_index(col), col, pc.cast(values, "double"))
    (tmp_path / "bad").mkdir()
    pq.write_table(table, tmp_path / "bad" / "EURUSD_M1_bad.parquet")
    raw = base_config(tmp_path / "bad", tmp_path)
    raw["data"]["min_health"] = 99.0
    cfg = write_yaml(tmp_path / "c.yaml", raw)
    code, _, err = run_cli("backtest", "--config", str(cfg))
    assert code == 3
    assert (
        "EURUSD M1: data health" in err
        and "is below data.min_health 99 (stale x600 at 2024-01-10 12:00" in err
    )
    assert "--allow-unhealthy" in err
    assert completed_runs(tmp_path / "results.sqlite") == []
    code, out, err = run_cli("backtest", "--config", str(cfg), "--allow-unhealthy")
    assert code == 0, err
    assert "EURUSD" in out and "score" in out.lower()
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        (score,) = conn.execute("SELECT score FROM data_health WHERE symbol = 'EURUSD'").fetchone()
    assert 0 < score < 99


def test_backtest_from_catalog_source(demo_data: Path, tmp_path: Path, run_cli) -> None:
    code, _, err = run_cli(
        "data",
        "import",
        str(demo_data / "EURUSD_M1_demo.parquet"),
        "--symbol",
        "EURUSD",
        "--catalog",
        str(tmp_path / "cat"),
    )
    assert code == 0, err
    raw = base_config(demo_data, tmp_path)
    raw["data"] = {"source": "catalog", "catalog": str(tmp_path / "cat")}
    code, out, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
    assert code == 0, err
    files = base_config(demo_data, tmp_path / "f")
    (tmp_path / "f").mkdir()
    code2, out2, _ = run_cli("backtest", "--config", str(write_yaml(tmp_path / "f.yaml", files)))
    assert code2 == 0
    final = [line for line in out.splitlines() if line.startswith("final balance")]
    final2 = [line for line in out2.splitlines() if line.startswith("final balance")]
    assert final == final2 and final  # the same bars from the catalog as from the file


def _stored_strategies(db_path: Path) -> list[tuple[str, list[str]]]:
    with sqlite3.connect(db_path) as con:
        rows = con.execute("SELECT name, symbols FROM run_strategies ORDER BY name").fetchall()
    return [(name, json.loads(symbols)) for name, symbols in rows]


def test_backtest_symbols_flag_narrows_strategies_that_list_their_own(
    demo_data: Path, tmp_path: Path, run_cli
) -> None:
    raw = base_config(demo_data, tmp_path, symbols=["EURUSD", "GBPUSD", "USDJPY"], end="2024-01-05")
    raw["strategies"] = [
        {
            "class": "ma_cross",
            "name": "fx",
            "symbols": ["EURUSD", "GBPUSD"],
            "params": {"fast": 5, "slow": 20},
        },
        {
            "class": "ma_cross",
            "name": "yen",
            "symbols": ["USDJPY", "GBPUSD"],
            "params": {"fast": 5, "slow": 20},
        },
        {"class": "ma_cross", "name": "all", "params": {"fast": 5, "slow": 20}},
    ]
    cfg = write_yaml(tmp_path / "c.yaml", raw)
    code, _, err = run_cli("backtest", "--config", str(cfg), "--symbols", "GBPUSD,USDJPY")
    assert code == 0, err
    assert _stored_strategies(tmp_path / "results.sqlite") == [
        ("all", ["GBPUSD", "USDJPY"]),
        ("fx", ["GBPUSD"]),
        ("yen", ["USDJPY", "GBPUSD"]),
    ]


def test_backtest_symbols_flag_leaving_a_strategy_none_exits_4_naming_it(
    demo_data: Path, tmp_path: Path, run_cli
) -> None:
    raw = base_config(demo_data, tmp_path, symbols=["EURUSD", "GBPUSD", "USDJPY"])
    raw["strategies"] = [
        {"class": "ma_cross", "name": "yen", "symbols": ["USDJPY"]},
        {"class": "ma_cross", "name": "euro", "symbols": ["EURUSD", "GBPUSD"]},
    ]
    cfg = write_yaml(tmp_path / "c.yaml", raw)
    code, _, err = run_cli("backtest", "--config", str(cfg), "--symbols", "EURUSD")
    assert code == 4
    assert (
        "strategy #1 'yen': none of its symbols ['USDJPY'] is in --symbols ['EURUSD']; add one of them to "
        "--symbols or remove the strategy from the config" in err
    )
    assert "Traceback" not in err
    assert completed_runs(tmp_path / "results.sqlite") == []
    # a strategy symbol that the config itself does not list stays an error of the config
    raw["strategies"] = [{"class": "ma_cross", "name": "typo", "symbols": ["EURUSDX", "EURUSD"]}]
    code, _, err = run_cli("backtest", "--config", str(write_yaml(cfg, raw)), "--symbols", "EURUSD")
    assert code == 4
    assert "strategy #1 'typo': symbols ['EURUSDX'] are not in backtest.symbols" in err
