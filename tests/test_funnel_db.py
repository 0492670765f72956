"""The funnel printed after a run is computed from the stored rows and agrees with the engine's counts."""

from __future__ import annotations

from pathlib import Path

from mt5tester.config import parse_config
from mt5tester.engine.build import build
from mt5tester.engine.loop import Runner
from mt5tester.results.funnel import funnel_from_db

from conftest import STRATEGIES_FILE, base_config


def test_funnel_from_rows_equals_engine_counts(demo_data: Path, tmp_path: Path) -> None:
    raw = base_config(demo_data, tmp_path, symbols=["EURUSD", "GBPUSD", "USDJPY"], end="2024-02-15")
    always = f"{STRATEGIES_FILE}:Always"
    raw["strategies"] = [
        {
            "class": "ma_cross",
            "name": "ma",
            "params": {"fast": 5, "slow": 20, "sl_points": 100, "tp_points": 150},
        },
        {"class": f"{STRATEGIES_FILE}:BadSignals", "name": "bad", "symbols": ["EURUSD"]},
        {"class": always, "name": "up", "trade": False, "symbols": ["USDJPY"]},
        {"class": "weighted_vote", "name": "vote", "symbols": ["USDJPY"], "params": {"members": ["up"]}},
    ]
    raw["coordinator"] = {"max_positions": 3, "max_positions_per_symbol": 1}
    raw["backtest"]["on_strategy_error"] = "continue"  # the invalid signals of "bad" do not stop the run
    runner = Runner(build(parse_config(raw), tmp_path))
    mem = runner.run().funnel
    rows = funnel_from_db(runner.c.engine, runner.run_id)
    for key in (
        "decision_points",
        "signals_generated",
        "fed_to_fusion",
        "invalid_signals",
        "approved",
        "resized",
        "rejected",
        "executed",
        "strategy_errors",
    ):
        assert rows[key] == mem[key], key
    assert {k: rows["closed"][k] for k in mem["closed"]} == mem["closed"]
    assert (
        mem["rejected"]["max_positions_per_symbol"] > 0
        and mem["executed"] > 10
        and mem["invalid_signals"] == 4
    )
