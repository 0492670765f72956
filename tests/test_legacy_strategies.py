"""Strategies of the original system run as they are (issue 17 part 2): each accepted shape trades
exactly as the native strategy with the same rule, the manager shows closed bars only, dict signals
are validated with errors naming the strategy, the field and the bar, folders load every class or stop
with exit 4, and check-lookahead works on adapted strategies."""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import mt5tester
from mt5tester.config import parse_config

from conftest import FIXTURES, base_config, write_yaml

LEGACY = FIXTURES / "legacy"
TECH = LEGACY / "technical"
SHAPES = LEGACY / "shapes.py"
NATIVE = {"class": "ma_cross", "name": "x", "params": {"fast": 5, "slow": 20}}


def _raw(demo_data: Path, tmp_path: Path, strategies: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    raw = base_config(demo_data, tmp_path, symbols=["EURUSD", "GBPUSD"], warmup_bars=40)
    raw["strategies"] = strategies
    raw.update(extra)
    return raw


def _run(raw: dict[str, Any], tmp_path: Path) -> mt5tester.RunResult:
    return mt5tester.run(parse_config(copy.deepcopy(raw)), base_dir=tmp_path, sink=mt5tester.MemorySink())


@pytest.mark.parametrize(
    "entry",
    [
        {"class": f"{TECH / 'sma_cross.py'}:SmaCrossStrategy", "params": {"fast": 5, "slow": 20}},  # (symbol)
        {"class": f"{TECH / 'df_cross.py'}:DfCross", "params": {"config": {"fast": 5, "slow": 20}}},  # (df)
        {"class": f"{TECH / 'analyzer.py'}:CrossAnalyzer"},  # analyze(df) -> [dict]
    ],
)
def test_each_legacy_shape_trades_exactly_as_the_native_strategy(
    demo_data: Path, tmp_path: Path, entry: dict[str, Any]
) -> None:
    legacy = _run(_raw(demo_data, tmp_path, [{**entry, "name": "x"}]), tmp_path)
    native = _run(_raw(demo_data, tmp_path, [NATIVE]), tmp_path)
    assert len(native.deals) > 10
    pd.testing.assert_frame_equal(legacy.deals, native.deals)
    cols = ["time", "strategy", "symbol", "direction", "status", "volume", "sl", "tp"]
    pd.testing.assert_frame_equal(legacy.signals[cols], native.signals[cols])


def test_dict_signal_keys_become_signal_fields_and_the_rest_tags(demo_data: Path, tmp_path: Path) -> None:
    spec = {"class": f"{TECH / 'sma_cross.py'}:SmaCrossStrategy", "name": "x"}
    result = _run(_raw(demo_data, tmp_path, [spec]), tmp_path)
    first = result.signals.iloc[0]
    assert first["comment"] == "sma5/20 cross"  # "reason" -> comment
    assert set(first["tags"]) == {"fast_minus_slow"}  # unknown keys kept as tags (JSON numbers)
    assert isinstance(first["tags"]["fast_minus_slow"], float)
    assert set(result.signals["direction"]) == {"buy", "sell"}


def _module(path: Path) -> Any:
    return sys.modules["mt5tester_user_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]]


def test_manager_shows_closed_bars_tick_account_positions_at_the_simulated_time(
    demo_data: Path, tmp_path: Path
) -> None:
    raw = _raw(demo_data, tmp_path, [{"class": f"{SHAPES}:Recorder", "name": "rec", "symbols": ["EURUSD"]}])
    raw["backtest"]["end"] = "2024-01-04"
    result = _run(raw, tmp_path)
    seen = _module(SHAPES).Recorder.seen
    times = list(pd.DatetimeIndex(result.signals["time"]).tz_localize(None))
    calls = result.funnel["strategy_calls"]
    assert len(seen) == calls > 40
    first_decision = pd.Timestamp("2024-01-01 00:00")
    for k, s in enumerate(seen[-calls:]):
        now = first_decision + pd.Timedelta(hours=k)
        assert s["last_bar"] == now - pd.Timedelta(hours=1)  # the bar that just closed, never the forming one
        assert s["rows"] == 5 and s["connected"] is True and s["digits"] == 5
        assert s["columns"] == [
            "time",
            "open",
            "high",
            "low",
            "close",
            "tick_volume",
            "spread",
            "real_volume",
        ]
        assert s["tick_time"] == int(now.timestamp())  # the first tick after the close (server seconds)
        assert s["positions"] == (0 if k == 0 else 1)
    assert seen[-calls]["balance"] == 10_000.0
    assert times[0] == first_decision  # one signal: the first call's buy


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (
            "MissingDirection",
            "strategy legacy: signal for bar EURUSD H1 2023-12-31 23:00 UTC: field 'direction' missing "
            "(one of direction, signal, action, type, side)",
        ),
        (
            "BadAction",
            "strategy legacy: signal for bar EURUSD H1 2023-12-31 23:00 UTC: field 'action' is 'maybe'; "
            "use buy/long, sell/short, close/flat or hold/none",
        ),
        (
            "TextStop",
            "strategy legacy: signal for bar EURUSD H1 2023-12-31 23:00 UTC: field 'stop_loss' is 'abc', not a "
            "number",
        ),
    ],
)
def test_invalid_dict_signal_names_strategy_field_and_bar(
    demo_data: Path, tmp_path: Path, run_cli, cls: str, message: str
) -> None:
    raw = _raw(demo_data, tmp_path, [{"class": f"{SHAPES}:{cls}", "name": "legacy", "symbols": ["EURUSD"]}])
    code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
    assert code == 5, err
    assert message in err and "on EURUSD at bar close 2024-01-01 00:00" in err
    assert "Traceback" not in err


def test_invalid_dict_signal_counted_with_continue(demo_data: Path, tmp_path: Path) -> None:
    raw = _raw(demo_data, tmp_path, [{"class": f"{SHAPES}:BadAction", "name": "legacy"}])
    raw["backtest"]["on_strategy_error"] = "continue"
    result = _run(raw, tmp_path)
    assert result.funnel["invalid_signals"] == result.funnel["strategy_calls"] > 0
    assert result.deal_count == 1  # the deposit only


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"class": f"{SHAPES}:NeedsThreshold"},
            "constructor raised TypeError: NeedsThreshold.__init__ needs 'threshold': give it under params:",
        ),
        (
            {"class": f"{TECH / 'sma_cross.py'}:SmaCrossStrategy", "params": {"fats": 3}},
            "SmaCrossStrategy.__init__ takes no parameter 'fats' (its parameters: mt5_manager, symbols, fast, "
            "slow, timeframe); fix params:",
        ),
        (
            {"class": f"{SHAPES}:Nope"},
            "has no class 'Nope'",
        ),
    ],
)
def test_legacy_constructor_problems_are_exit_4(
    demo_data: Path, tmp_path: Path, run_cli, entry: dict[str, Any], message: str
) -> None:
    raw = _raw(demo_data, tmp_path, [{**entry, "name": "legacy"}])
    code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
    assert code == 4, err
    assert message in err and "legacy" in err


def test_folder_loads_every_strategy_class_with_its_category(
    demo_data: Path, tmp_path: Path, run_cli
) -> None:
    raw = _raw(demo_data, tmp_path, [NATIVE, {"folder": str(TECH), "category": "smc"}])
    path = write_yaml(tmp_path / "c.yaml", raw)
    code, out, err = run_cli("backtest", "--config", str(path))
    assert code == 0, err
    run_id = out.split("run ", 1)[1].split(":", 1)[0]
    stored = mt5tester.load_run(run_id, db=raw["results"]["database_url"])
    names = [s["name"] for s in stored.config["strategies"]]
    # files in name order, classes in file order; the shared BaseAnalyzer and _helpers.py are not strategies
    assert names == ["x", "CrossAnalyzer", "DfCross", "SmaCrossStrategy"]
    assert [s["category"] for s in stored.config["strategies"]] == [None, "smc", "smc", "smc"]
    assert stored.config["strategy_folders"] == []
    assert (
        "4 strategies: x (technical, H1), CrossAnalyzer (smc, H1), DfCross (smc, H1), SmaCrossStrategy (smc, H1)"
        in out
    )
    assert set(stored.signals["strategy"]) == {"x", "CrossAnalyzer", "DfCross", "SmaCrossStrategy"}


def test_folder_with_a_file_that_cannot_load_is_exit_4_naming_it(
    demo_data: Path, tmp_path: Path, run_cli
) -> None:
    broken = LEGACY / "broken"
    raw = _raw(demo_data, tmp_path, [{"folder": str(broken), "category": "technical"}])
    path = write_yaml(tmp_path / "c.yaml", raw)
    for args in (("backtest", "--config", str(path)), ("config", "check", str(path))):
        code, _, err = run_cli(*args)
        assert code == (4 if args[0] == "backtest" else 2), err
        assert f"importing {broken / 'needs_missing_package.py'} raised ModuleNotFoundError" in err
        assert "talib_not_installed" in err


def test_folder_missing_or_empty_is_exit_4(demo_data: Path, tmp_path: Path, run_cli) -> None:
    (tmp_path / "empty").mkdir()
    for folder, message in (("nowhere", "strategies[0].folder: no folder"), ("empty", "no strategy class")):
        raw = _raw(demo_data, tmp_path, [{"folder": folder}])
        code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
        assert code == 4 and message in err, err


def test_trading_mode_selects_folder_strategies_by_category(demo_data: Path, tmp_path: Path) -> None:
    raw = _raw(
        demo_data,
        tmp_path,
        [NATIVE, {"folder": str(TECH), "category": "smc"}],
        trading_modes={"legacy_only": {"strategies": ["smc"]}},
        trading_mode="legacy_only",
    )
    result = _run(raw, tmp_path)
    assert [s["name"] for s in result.config["strategies"]] == [
        "CrossAnalyzer",
        "DfCross",
        "SmaCrossStrategy",
    ]
    assert set(result.signals["trading_mode"]) == {"legacy_only"}


@pytest.mark.parametrize(("cls", "code"), [("HonestPeek", 0), ("LeakyPeek", 7)])
def test_check_lookahead_on_adapted_strategies(
    demo_data: Path, tmp_path: Path, run_cli, cls: str, code: int
) -> None:
    raw = base_config(demo_data, tmp_path, warmup_bars=40, end="2024-01-15")
    raw["strategies"] = [{"class": f"{LEGACY / 'leaky' / 'peek.py'}:{cls}", "name": "s"}]
    path = write_yaml(tmp_path / "c.yaml", raw)
    got, out, err = run_cli(
        "check-lookahead", "s", "--config", str(path), "--points", "2", "--jobs", "2", "--json"
    )
    assert got == code, err
    report = json.loads(out)
    assert report["clean"] is (code == 0)
    if code == 7:
        assert (
            report["first_difference"]["kind"] == "signal" and report["first_difference"]["strategy"] == "s"
        )


def test_adapted_strategy_state_checkpoints_and_restores(demo_data: Path, tmp_path: Path, run_cli) -> None:
    from mt5tester.config import StrategyConfig
    from mt5tester.strategy.loader import build_strategy

    raw = _raw(demo_data, tmp_path, [{"class": f"{TECH / 'sma_cross.py'}:SmaCrossStrategy", "name": "x"}])
    cfg = parse_config(copy.deepcopy(raw))
    sc: StrategyConfig = cfg.strategies[0]
    one, two = (build_strategy(sc, cfg, tmp_path, 0).strategy for _ in range(2))
    one.legacy.memory = {"EURUSD": [1.5, 2.5]}  # type: ignore[attr-defined]
    two.load_state(one.state_dict())  # type: ignore[attr-defined]
    assert two.legacy.memory == {"EURUSD": [1.5, 2.5]}  # type: ignore[attr-defined]
    assert two.legacy.mt5_manager is two.manager is not one.manager  # type: ignore[attr-defined]
    # a whole run checkpointing every few points (the SQL recorder) completes
    raw["results"]["checkpoint_seconds"] = 0.001
    code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
    assert code == 0, err


def test_symbols_flag_narrows_a_folder_entry(demo_data: Path, tmp_path: Path, run_cli) -> None:
    raw = _raw(demo_data, tmp_path, [{"folder": str(TECH), "symbols": ["EURUSD", "GBPUSD"]}])
    path = write_yaml(tmp_path / "c.yaml", raw)
    code, out, err = run_cli("backtest", "--config", str(path), "--symbols", "GBPUSD")
    assert code == 0, err
    run_id = out.split("run ", 1)[1].split(":", 1)[0]
    stored = mt5tester.load_run(run_id, db=raw["results"]["database_url"])
    assert {tuple(s["symbols"]) for s in stored.config["strategies"]} == {("GBPUSD",)}
    code, _, err = run_cli("backtest", "--config", str(path), "--symbols", "USDJPY")
    assert code == 4 and "none of its symbols ['EURUSD', 'GBPUSD'] is in --symbols ['USDJPY']" in err


def test_check_lookahead_finds_a_strategy_of_a_folder_despite_trading_modes(
    demo_data: Path, tmp_path: Path, run_cli
) -> None:
    raw = base_config(demo_data, tmp_path, warmup_bars=40, end="2024-01-10")
    raw["strategies"] = [NATIVE, {"folder": str(TECH)}]
    raw["trading_modes"] = {"only_x": {"strategies": ["x"]}}
    raw["trading_mode"] = "only_x"
    path = write_yaml(tmp_path / "c.yaml", raw)
    code, out, err = run_cli(
        "check-lookahead", "DfCross", "--config", str(path), "--points", "1", "--jobs", "1"
    )
    assert code == 0, err
    assert "DfCross: 1 cuts (seed 0)" in out and "clean: no lookahead found" in out


def test_config_schema_accepts_folder_entries_in_strategies(run_cli) -> None:
    code, out, _ = run_cli("config", "schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["properties"]["strategies"]["items"] == {
        "anyOf": [{"$ref": "#/$defs/StrategyConfig"}, {"$ref": "#/$defs/StrategyFolderConfig"}]
    }
    assert {"folder", "category", "params"} <= set(schema["$defs"]["StrategyFolderConfig"]["properties"])
