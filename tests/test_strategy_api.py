"""Strategy API: invalid signals, fusion, on_trade, prepare() faults, plug-ins, `strategies list`."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from mt5tester.config import parse_config
from mt5tester.engine.build import build
from mt5tester.engine.loop import Runner

from conftest import STRATEGIES_FILE, base_config, write_yaml


def _run(raw: dict, tmp_path: Path) -> Runner:
    runner = Runner(build(parse_config(raw), tmp_path))
    runner.run()
    return runner


def test_invalid_signals_rejected_with_reasons_and_counted(demo_data: Path, tmp_path: Path) -> None:
    raw = base_config(demo_data, tmp_path, end="2024-01-03")
    raw["strategies"] = [{"class": f"{STRATEGIES_FILE}:BadSignals", "name": "bad"}]
    raw["backtest"]["on_strategy_error"] = "continue"
    runner = _run(raw, tmp_path)
    f = runner.funnel.as_dict()
    assert f["invalid_signals"] == 4 and f["signals_generated"] == 0 and f["executed"] == 0
    assert f["invalid_by_strategy"] == {
        "bad": {
            "not a Signal: str": 1,
            "wrong symbol: signal for GBPUSD returned from a call for EURUSD": 1,
            "stops on the wrong side: buy with its SL on the wrong side of the price": 1,
            "invalid Signal: signal: Value error, sl must be a positive finite price, got nan": 1,
        }
    }
    assert f["strategy_errors"] == {}  # bad signals are not exceptions: counted apart


INVALID_REASONS = {
    "long": "invalid Signal: direction: Input should be 'buy', 'sell' or 'flat'",
    "dict": "not a Signal: dict",
    "other_symbol": "wrong symbol: signal for XAUUSD returned from a call for EURUSD",
}


@pytest.mark.parametrize("kind", sorted(INVALID_REASONS))
def test_invalid_signal_stops_the_run_by_default_exit_5_naming_strategy_time_and_reason(
    demo_data: Path, tmp_path: Path, run_cli, kind: str
) -> None:
    import sqlite3

    raw = base_config(demo_data, tmp_path, end="2024-01-03")
    raw["strategies"] = [{"class": f"{STRATEGIES_FILE}:Invalid", "name": "bug", "params": {"kind": kind}}]
    code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
    assert code == 5
    assert "strategy bug returned an invalid signal (" + INVALID_REASONS[kind] in err
    assert "on EURUSD at bar close 2024-01-01 00:00 UTC (on_strategy_error: stop)" in err
    assert "Traceback" not in err
    with sqlite3.connect(tmp_path / "results.sqlite") as con:
        assert con.execute("SELECT status FROM runs").fetchall() == [("failed",)]


@pytest.mark.parametrize("kind", sorted(INVALID_REASONS))
def test_invalid_signal_reason_in_funnel_first_logged_and_policy_applies(
    demo_data: Path, tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the funnel table on one line per row
    raw = base_config(demo_data, tmp_path, end="2024-01-03")
    raw["backtest"]["on_strategy_error"] = "continue"
    raw["strategies"] = [{"class": f"{STRATEGIES_FILE}:Invalid", "name": "bug", "params": {"kind": kind}}]
    cfg = write_yaml(tmp_path / "c.yaml", raw)
    code, out, err = run_cli("backtest", "--config", str(cfg))
    assert code == 0, err
    reason = INVALID_REASONS[kind]
    assert re.search(rf"^. +invalid: bug: {re.escape(reason)} +. +48 .$", out, re.M), out
    warnings = [line for line in err.splitlines() if "invalid signal" in line]
    assert len(warnings) == 1  # only the first one of the strategy, at WARNING
    assert warnings[0].startswith(
        "WARNING mt5tester.engine.loop: strategy bug returned an invalid signal on EURUSD at "
        f"2024-01-01 00:00 UTC: {reason}"
    )
    continued = _run(raw, tmp_path).funnel.as_dict()
    assert continued["invalid_by_strategy"] == {"bug": {reason: 48}}  # every H1 close of 2024-01-01..02
    raw["backtest"]["on_strategy_error"] = "disable"
    disabled = _run(raw, tmp_path).funnel.as_dict()
    assert disabled["invalid_by_strategy"] == {"bug": {reason: 1}}
    assert disabled["disabled_strategies"] == ["bug"] and disabled["calls"] == {"bug": 1}


def test_fusion_weighted_vote_trades_only_on_agreement(demo_data: Path, tmp_path: Path) -> None:
    raw = base_config(demo_data, tmp_path, end="2024-01-04")
    always = f"{STRATEGIES_FILE}:Always"
    raw["strategies"] = [
        {"class": always, "name": "up", "trade": False, "params": {"direction": "buy"}},
        {"class": always, "name": "up2", "trade": False, "params": {"direction": "buy", "confidence": 0.5}},
        {"class": always, "name": "down", "trade": False, "params": {"direction": "sell"}},
        {
            "class": "weighted_vote",
            "name": "vote",
            "params": {"members": ["up", "up2", "down"], "threshold": 0.15},
        },
    ]
    runner = _run(raw, tmp_path)
    f = runner.funnel.as_dict()
    # vote = (1 x 1 + 1 x 0.5 - 1 x 1) / 3 = +0.1667 >= 0.15: a buy each bar, from "vote" only
    assert f["fed_to_fusion"] == 3 * f["strategy_calls"] // 4
    assert f["executed"] > 0
    state = runner.c.server.state
    assert {runner.journal.owners.deal(state, d)[0] for d in state.deals if d.type in (0, 1)} == {"vote"}
    raw["strategies"][3]["params"]["threshold"] = 0.2  # now below the threshold: no trade
    assert _run(raw, tmp_path).funnel.executed == 0


@pytest.mark.parametrize(
    ("members", "trade", "message"),
    [
        (["up", "ghost"], False, "member 'ghost' is not a configured strategy"),
        (["up"], True, "member 'up' must be configured with trade: false"),
    ],
)
def test_fusion_config_faults_exit_4(
    demo_data: Path, tmp_path: Path, run_cli, members: list, trade: bool, message: str
) -> None:
    raw = base_config(demo_data, tmp_path)
    raw["strategies"] = [
        {"class": f"{STRATEGIES_FILE}:Always", "name": "up", "trade": trade},
        {"class": "weighted_vote", "name": "vote", "params": {"members": members}},
    ]
    code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
    assert code == 4 and message in err


def test_trade_false_without_fusion_is_refused(demo_data: Path, tmp_path: Path, run_cli) -> None:
    raw = base_config(demo_data, tmp_path)
    raw["strategies"] = [{"class": "ma_cross", "name": "idle", "trade": False}]
    code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
    assert code == 4 and "strategies ['idle'] have trade: false but no fusion strategy" in err


def test_portfolio_category_without_strategies_exit_4(demo_data: Path, tmp_path: Path, run_cli) -> None:
    raw = base_config(demo_data, tmp_path)
    raw["portfolio"] = {"categories": ["technical", "smc"]}
    code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
    assert code == 4 and "portfolio.categories lists ['smc'] but no configured strategy is in them" in err


def test_on_trade_receives_the_strategys_deals(demo_data: Path, tmp_path: Path) -> None:
    raw = base_config(demo_data, tmp_path, end="2024-01-10")
    raw["strategies"] = [{"class": f"{STRATEGIES_FILE}:TradeLogger", "name": "logger"}]
    runner = _run(raw, tmp_path)
    log = sys.modules[type(runner.c.strategies[0].strategy).__module__].TRADES
    assert log[:2] == [("logger", 0, 0), ("logger", 1, 1)]  # the buy, then its SL/TP close


def test_prepare_wrong_length_is_a_load_error(demo_data: Path, tmp_path: Path, run_cli) -> None:
    plugin = tmp_path / "short_prepare.py"
    plugin.write_text(
        "import pandas as pd\nfrom mt5tester.strategy.base import Strategy\n"
        "class Short(Strategy):\n"
        "    def prepare(self, symbol, timeframe, bars):\n"
        "        return pd.DataFrame({'x': bars['close'].iloc[:-1]})\n"
        "    def generate_signals(self, symbol, timeframe, df):\n        return []\n"
    )
    raw = base_config(demo_data, tmp_path)
    raw["strategies"] = [{"class": f"{plugin}:Short", "name": "short"}]
    code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
    assert (
        code == 4
        and "strategy short: prepare(EURUSD, H1) returned" in err
        and "align it with the bars" in err
    )


def test_entry_point_plugin_is_loaded_and_listed(
    demo_data: Path, tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    (site / "acme_strats").mkdir(parents=True)
    (site / "acme_strats" / "__init__.py").write_text(
        "from mt5tester.strategy.base import Strategy\n"
        "class Quiet(Strategy):\n    '''Never trades (a plug-in).'''\n    category = 'technical'\n"
        "    def generate_signals(self, symbol, timeframe, df):\n        return []\n"
    )
    dist = site / "acme_strats-1.2.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-strats\nVersion: 1.2\n")
    (dist / "entry_points.txt").write_text("[mt5tester.strategies]\nacme_quiet = acme_strats:Quiet\n")
    monkeypatch.syspath_prepend(str(site))
    code, out, _ = run_cli("strategies", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert (
        code == 0
        and rows["acme_quiet"]["plugin"] is True
        and rows["acme_quiet"]["doc"] == "Never trades (a plug-in)."
    )
    assert rows["ma_cross"]["params"]["fast"]["default"] == 10 and rows["ma_cross"]["category"] == "technical"
    raw = base_config(demo_data, tmp_path)
    raw["strategies"] = [{"class": "acme_quiet"}]
    code, out, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
    assert code == 0, err
    assert "Quiet" in out and "Strategies loaded" in out
