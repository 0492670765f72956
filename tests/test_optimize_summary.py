"""A study's robustness summary from its stored passes (daily curves, trade results)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mt5tester.config import parse_config
from mt5tester.optimize import robustness as rb
from mt5tester.optimize.summary import returns_matrix, robustness
from mt5tester.results.trial_sink import MetricsSink

from conftest import base_config

DAY = 86_400 * 10**9
T0 = pd.Timestamp("2024-01-01T00:00:00Z").value
FAST = "strategies.ma.params.fast"


def _curve(values: list[float]) -> list[list[float]]:
    return [[float(T0 + i * DAY), v] for i, v in enumerate(values)]


def _rows() -> list[dict]:
    rising = [10000.0 + 10 * i * i for i in range(9)]
    flat = [10000.0] * 9
    zigzag = [10000.0, 10050.0, 9990.0, 10080.0, 10010.0, 10100.0, 10000.0, 10120.0, 10060.0]
    return [
        {
            "number": 0,
            "params": {FAST: 5},
            "score": rising[-1],
            "curve": _curve(rising),
            "trade_pnl": [100.0, -50.0, -50.0, 100.0],
        },
        {"number": 1, "params": {FAST: 10}, "score": flat[-1], "curve": _curve(flat), "trade_pnl": []},
        {
            "number": 2,
            "params": {FAST: 15},
            "score": zigzag[-1],
            "curve": _curve(zigzag),
            "trade_pnl": [60.0],
        },
    ]


def test_returns_matrix_daily_returns_per_pass() -> None:
    m = returns_matrix(_rows())

    assert list(m.columns) == [0, 1, 2]
    assert len(m) == 8
    assert m[0].iloc[0] == pytest.approx(10 / 10000)
    assert m[1].abs().sum() == 0.0
    assert m[2].iloc[1] == pytest.approx(9990 / 10050 - 1)


def test_robustness_of_best_pass_matches_the_formulas(tmp_path: Path) -> None:
    raw = base_config(tmp_path, tmp_path)
    raw["optimize"] = {"parameters": {FAST: {"start": 5, "step": 5, "stop": 15}}, "seed": 3}
    cfg = parse_config(raw, "s.yaml")
    rows = _rows()

    out = robustness(rows, rows[0], cfg)

    m = returns_matrix(rows).to_numpy()
    sharpes = [float(np.mean(c) / np.std(c, ddof=1)) if np.std(c) > 0 else 0.0 for c in m.T]
    assert out["dsr"] == pytest.approx(rb.deflated_sharpe_of_returns(m[:, 0], np.array(sharpes)))
    assert out["pbo"] == pytest.approx(rb.pbo_cscv(m, n_blocks=8).pbo)
    assert out["pbo_splits"] == 70  # C(8, 4)
    # trades +100, -50, -50, +100 shuffled: the worst order puts both losses after the first win
    assert out["mc_order"]["max_dd"]["0.99"] == 100.0
    assert out["mc_order"]["final_balance"]["0.5"] == 10100.0  # the order never changes the sum
    # neighbours of fast 5: fast 10 only; criterion balance: compared as profits (0 against 640)
    assert out["stability"] == 0.0


def test_metrics_sink_keeps_deals_and_equity_only_and_builds_daily_curve() -> None:
    from mt5tester.results import db

    sink = MetricsSink()
    sink.add(db.signals, {"signal_id": 1})
    sink.add(db.equity, {"time": T0 + 3600 * 10**9, "equity": 10005.0})
    sink.add(db.equity, {"time": T0 + 23 * 3600 * 10**9, "equity": 10010.0})
    sink.add(db.equity, {"time": T0 + DAY, "equity": 10020.0})  # 00:00: closes the first day
    sink.add(db.equity, {"time": T0 + DAY + 60 * 10**9, "equity": 10030.0})
    for ticket, entry, profit in ((1, 0, 0.0), (2, 1, 12.5)):
        sink.add(
            db.deals,
            {
                "ticket": ticket,
                "type": 0,
                "entry": entry,
                "position_id": 7,
                "profit": profit,
                "commission": -0.5,
                "swap": -1.0,
            },
        )

    assert sink.rows("signals") == []
    assert sink.curve(10000.0) == [
        [float(T0), 10000.0],
        [float(T0 + DAY), 10020.0],
        [float(T0 + 2 * DAY), 10030.0],
    ]
    assert sink.trade_pnl() == [12.5 - 1.0 - 2.0]


def test_metrics_sink_keeps_rows_given_as_columns_like_rows_given_one_by_one() -> None:
    """The compiled kernel hands its rows as columns: the pass keeps the same deals and equity either way."""
    from mt5tester.results import db

    rows = [{"time": 60_000_000_000 * i, "balance": 1000.0 + i, "equity": 999.5 + i} for i in range(3)]
    by_row, by_column = MetricsSink(), MetricsSink()
    for row in rows:
        by_row.add(db.equity, row)
    by_column.add_columns(db.equity, {k: [r[k] for r in rows] for k in rows[0]})
    by_column.add_columns(db.signals, {"time": [1, 2]})  # not kept
    assert by_column.rows("equity") == by_row.rows("equity") == rows
    assert by_column.rows("signals") == []
