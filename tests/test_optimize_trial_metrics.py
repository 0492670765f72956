"""A pass's metrics, daily curve and trade results from the optimizer's sink's columns equal those of the
full run: ``MetricsSink.metrics`` against ``RunResult.metrics`` of the same run kept in a ``MemorySink``
(both drivers: rows one by one from the Python loop, columns from the compiled kernel), and the
vectorised reductions against plain loops over the deals (the definitions they replace)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mt5tester
from mt5tester.config import parse_config
from mt5tester.model import constants as C
from mt5tester.results import db
from mt5tester.results.metrics import holding_times
from mt5tester.results.trial_sink import MetricsSink

from conftest import FIXTURES, base_config

COLUMNS = FIXTURES / "column_strategies.py"


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, float) and math.isnan(x):
            assert isinstance(y, float) and math.isnan(y), k
        else:
            assert x == y, k  # exact: the same function on the same values


@pytest.mark.parametrize(
    ("strategy", "driver"),
    [
        ({"class": "ma_cross", "name": "ma", "params": {"fast": 5, "slow": 20}}, "loop"),
        (
            {"class": f"{COLUMNS}:RandomColumnStops", "name": "r", "params": {"seed": 3, "density": 0.3}},
            "kernel",
        ),
    ],
)
def test_metrics_sink_metrics_equal_full_run_metrics(
    demo_data: Path, tmp_path: Path, strategy: dict[str, Any], driver: str
) -> None:
    raw = base_config(demo_data, tmp_path)
    raw["strategies"] = [strategy]
    raw["results"]["equity_sampling"] = "H1"
    cfg = parse_config(raw, "t.yaml")
    data = mt5tester.load_data(cfg)

    full = mt5tester.run(cfg, data=data, sink=mt5tester.MemorySink(), driver=driver)
    sink = MetricsSink()
    trial = mt5tester.run(cfg, data=data, sink=sink, driver=driver)

    assert trial.funnel["driver"] == full.funnel["driver"] == driver
    assert full.metrics.total_trades > 20  # a real case: many trades, SL/TP and signal closes
    _same(
        sink.metrics(cfg.backtest.initial_deposit, trial.funnel.get("margin_level_min")).to_dict(),
        full.metrics.to_dict(),
    )
    # the daily curve and trade results of the pass, against the full run's frames
    deals = full.deals
    trades = deals[deals["type"].isin(["buy", "sell"])]
    net = (trades["profit"] + trades["commission"] + trades["swap"]).groupby(
        trades["position_id"], sort=False
    )
    closed = trades[trades["entry"] != "in"].drop_duplicates("position_id")["position_id"]
    assert sink.trade_pnl() == [round(float(net.get_group(p).sum()), 2) for p in closed]
    # equity at the end of each UTC day (a sample at 00:00 closes the day before), after the deposit
    eq = full.equity
    days = {eq["time"].iloc[0].floor("D").value: cfg.backtest.initial_deposit}
    days |= {t.value: v for t, v in eq.groupby(eq["time"].dt.ceil("D"))["equity"].last().items()}
    assert sink.curve(cfg.backtest.initial_deposit) == [[float(t), float(v)] for t, v in days.items()]


# -- the vectorised reductions against loops over the deals ---------------------------------------------
def _trade_pnl_loop(deals: list[dict[str, Any]]) -> list[float]:
    """The definition: net of each position summed deal by deal in ticket order, listed at its first exit."""
    net: dict[int, float] = {}
    closed: list[int] = []
    for d in sorted(deals, key=lambda r: r["ticket"]):
        if d["type"] not in (C.DEAL_TYPE_BUY, C.DEAL_TYPE_SELL):
            continue
        pid = int(d["position_id"])
        net[pid] = net.get(pid, 0.0) + float(d["profit"]) + float(d["commission"]) + float(d["swap"])
        if d["entry"] != C.DEAL_ENTRY_IN and pid not in closed:
            closed.append(pid)
    return [round(net[p], 2) for p in closed]


def _holding_loop(pids: list[Any], t: list[float], vol: list[float], trade: list[bool]) -> list[float]:
    """The definition: seconds from a position's first deal to the deal that brings its volume to zero."""
    opened: dict[int, float] = {}
    net: dict[int, float] = {}
    out: list[float] = []
    for pid, ts, v, tr in zip(pids, t, vol, trade, strict=True):
        if not tr or pid is None or (isinstance(pid, float) and math.isnan(pid)):
            continue
        if pid not in opened:
            opened[pid], net[pid] = ts, 0.0
        net[pid] += v
        if abs(net[pid]) < 1e-9:
            out.append(ts - opened.pop(pid))
            del net[pid]
    return out


money = st.floats(-500, 500, allow_nan=False).map(lambda x: round(x, 2)) | st.sampled_from([0.0, -0.0, 0.005])
deal = st.tuples(
    st.integers(0, 5),  # position id
    st.sampled_from([C.DEAL_TYPE_BUY, C.DEAL_TYPE_SELL, C.DEAL_TYPE_BALANCE]),
    st.sampled_from([C.DEAL_ENTRY_IN, C.DEAL_ENTRY_OUT, C.DEAL_ENTRY_INOUT]),
    money,
    money,
    money,
    st.sampled_from([0.1, 0.2, 0.3, 0.01]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(deal, max_size=40), st.randoms(use_true_random=False))
def test_trade_pnl_equals_loop_over_deals(raw: list[tuple], rnd: Any) -> None:
    deals = [
        {"ticket": 100 + i, "position_id": p, "type": t, "entry": e, "profit": pr, "commission": c, "swap": s}
        for i, (p, t, e, pr, c, s, _) in enumerate(raw)
    ]
    shuffled = deals[:]
    rnd.shuffle(shuffled)  # arrival order is not ticket order
    by_rows, by_columns = MetricsSink(), MetricsSink()
    for d in shuffled:
        by_rows.add(db.deals, d)
    half = len(shuffled) // 2
    for part in (shuffled[:half], shuffled[half:]):
        if part:
            by_columns.add_columns(db.deals, {k: np.array([d[k] for d in part]) for k in part[0]})

    expected = _trade_pnl_loop(deals)
    assert by_rows.trade_pnl() == expected
    assert by_columns.trade_pnl() == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(deal, max_size=40))
def test_holding_times_equal_loop_over_deals(raw: list[tuple]) -> None:
    pids: list[Any] = [float("nan") if i % 7 == 3 else p for i, (p, *_) in enumerate(raw)]
    t = [float(60 * i) for i in range(len(raw))]
    vol = [v if (i + p) % 3 else -v for i, (p, _, _, _, _, _, v) in enumerate(raw)]
    trade = [ty != C.DEAL_TYPE_BALANCE for _, ty, *_ in raw]
    times = pd.Series(pd.to_datetime([int(x * 1e9) for x in t], unit="ns", utc=True))

    got = holding_times(np.array(pids, dtype=float), times, np.array(vol), np.array(trade, dtype=bool))

    assert got == _holding_loop(pids, t, vol, trade)


def test_holding_times_reopened_position_id_starts_a_new_period() -> None:
    times = pd.Series(pd.to_datetime([0, 60, 120, 600, 900], unit="s", utc=True))
    pids = np.array([7, 7, 8, 7, 7])
    vol = np.array([0.1, -0.1, 0.2, 0.3, -0.3])

    assert holding_times(pids, times, vol, np.ones(5, dtype=bool)) == [60.0, 300.0]
