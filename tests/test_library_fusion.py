"""Fusion built-in (weighted_vote): scenario, per-regime weights, lookahead and a golden run on real data."""

from __future__ import annotations

from pathlib import Path

import pytest

from mt5tester.config import parse_config
from mt5tester.engine.build import build
from mt5tester.engine.lookahead import check_lookahead
from mt5tester.engine.loop import Runner
from mt5tester.model import constants as C
from mt5tester.model.signal import Signal
from mt5tester.model.timeframe import Timeframe
from mt5tester.strategy.base import StrategyContext
from mt5tester.strategy.library.fusion import WeightedVote, WeightedVoteParams

from conftest import base_config


def _vote(params: dict, regime: str | None = None) -> WeightedVote:
    s = WeightedVote("v", WeightedVoteParams(**params), ["EURUSD"], Timeframe.H1, 10)
    ctx = StrategyContext("r")
    ctx.regime = lambda symbol: regime  # type: ignore[method-assign]
    s.ctx = ctx
    return s


def _sig(direction: str, conf: float = 1.0, sl: float | None = 100, name: str = "") -> Signal:
    return Signal(symbol="EURUSD", direction=direction, confidence=conf, sl_points=sl, strategy=name)


def test_weighted_vote_threshold_and_mean_stops() -> None:
    v = _vote({"members": ["a", "b", "c"], "threshold": 0.5, "weights": {"c": 2.0}})
    out = v.combine(
        "EURUSD",
        Timeframe.H1,
        None,
        {"a": [_sig("buy", 1.0, 100, "a")], "b": [], "c": [_sig("buy", 0.5, 200, "c")]},
    )
    # vote = (1 x 1.0 + 2 x 0.5) / (1 + 1 + 2) = 0.5 -> buy, SL = mean(100, 200)
    assert [(s.direction, s.confidence, s.sl_points) for s in out] == [("buy", 0.5, 150.0)]
    assert v.combine("EURUSD", Timeframe.H1, None, {"a": [_sig("buy")], "b": [_sig("sell")], "c": []}) == []


def test_weighted_vote_regime_weights_replace_weights() -> None:
    params = {"members": ["a", "b"], "threshold": 0.6, "regime_weights": {"ranging": {"a": 0.0, "b": 1.0}}}
    signals = {"a": [_sig("buy")], "b": [_sig("sell")]}
    assert _vote(params, "trending_up").combine("EURUSD", Timeframe.H1, None, signals) == []  # 0 vs 0.6
    out = _vote(params, "ranging").combine("EURUSD", Timeframe.H1, None, signals)
    assert [(s.direction, s.confidence, s.tags["weights_regime"]) for s in out] == [("sell", 1.0, "ranging")]
    with pytest.raises(ValueError, match="unknown regime 'sideways'"):
        WeightedVoteParams(members=["a"], regime_weights={"sideways": {"a": 1.0}})


def _real(shared_data: Path, tmp: Path, end: str) -> dict:
    folder = tmp / "data"
    folder.mkdir(exist_ok=True)
    link = folder / "EURUSD_M1_x.parquet"
    if not link.exists():
        link.symlink_to(shared_data / "m1" / "EURUSD_M1_2018-2019.parquet")
    raw = base_config(folder, tmp, start="2018-02-01", end=end, warmup_bars=60, seed=42)
    raw["execution"] = {"spread": {"source": "fixed", "points": 10}}
    raw["strategies"] = [
        {"class": "rsi_reversion", "name": "rsi", "trade": False},
        {"class": "macd_cross", "name": "macd", "trade": False},
        {"class": "donchian_trend", "name": "donchian", "trade": False},
        {
            "class": "weighted_vote",
            "name": "vote",
            "params": {"members": ["rsi", "macd", "donchian"], "threshold": 0.3},
        },
    ]
    return raw


def test_weighted_vote_lookahead_clean_on_real_data(shared_data: Path, tmp_path: Path) -> None:
    report = check_lookahead(
        parse_config(_real(shared_data, tmp_path, "2018-05-01")), tmp_path, "vote", points=3
    )
    assert report.clean and report.signals_checked > 0


def test_fusion_golden_run_eurusd_h1(shared_data: Path, tmp_path: Path, golden) -> None:
    runner = Runner(build(parse_config(_real(shared_data, tmp_path, "2018-06-01")), tmp_path))
    result = runner.run()
    closing = (C.DEAL_ENTRY_OUT, C.DEAL_ENTRY_INOUT, C.DEAL_ENTRY_OUT_BY)
    trades = sum(1 for d in runner.c.server.deals if d.entry in closing)
    state = runner.c.server.state
    owners = {runner.journal.owners.deal(state, d)[0] for d in state.deals if d.type in (0, 1)}
    assert trades > 0 and owners == {"vote"}
    golden(
        "fusion_weighted_vote", {"trades": trades, "net_profit": round(result.final_balance - 10_000.0, 2)}
    )
