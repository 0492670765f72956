"""results/excursions.py: the compiled pass over each position's bars gives the very extremes numpy's
reductions over the same ranges give (the positions table's MFE/MAE, results/rows.py)."""

from __future__ import annotations

import numpy as np

from mt5tester.results.excursions import widen


def _reference(
    time: np.ndarray, high: np.ndarray, low: np.ndarray, spread: np.ndarray, point: float, fixed: float,
    t_open: np.ndarray, t_close: np.ndarray, closed: np.ndarray, is_buy: np.ndarray, start: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Range by range with numpy's max/min (the rule as the positions table states it)."""
    highest, lowest, seen = start.copy(), start.copy(), np.zeros(len(t_open), bool)
    lowest[~closed] = np.inf
    highest[~closed] = -np.inf
    for k in range(len(t_open)):
        lo = max(int(np.searchsorted(time, t_open[k], "right")) - 1, 0)
        hi = int(np.searchsorted(time, t_close[k], "left")) if closed[k] else len(time)
        if hi <= lo:
            continue
        h, lw, sp = high[lo:hi], low[lo:hi], spread[lo:hi] * point
        if is_buy[k]:
            up, down = np.max(h), np.min(lw)
        elif (spread[lo:hi] != 0).any():
            up, down = np.max(h + sp), np.min(lw + sp)
        else:
            up, down = np.max(h) + fixed, np.min(lw) + fixed
        highest[k], lowest[k] = np.maximum(highest[k], up), np.minimum(lowest[k], down)
        seen[k] = True
    return highest, lowest, seen


def test_widen_equals_numpy_reductions_over_each_positions_bars() -> None:
    rng = np.random.default_rng(7)
    n, m, point = 400, 300, 1e-5
    time = np.cumsum(rng.integers(1, 3, n)).astype(np.int64) * 60
    high = np.round(1.1 + rng.normal(0, 1e-3, n), 5)
    low = np.round(high - rng.uniform(0, 5e-4, n), 5)
    spread = np.where(rng.random(n) < 0.7, 0, rng.integers(1, 30, n)).astype(np.int32)
    spread[:150] = 0  # ranges of bars without any spread: the symbol's fixed spread
    high[333] = np.nan  # numpy's max propagates NaN
    t_open = rng.integers(int(time[0]) - 200, int(time[-1]) + 100, m)
    t_close = t_open + rng.integers(-300, 1500, m)
    closed = rng.random(m) < 0.8
    is_buy = rng.random(m) < 0.5
    start = np.round(1.1 + rng.normal(0, 1e-3, m), 5)  # a closed position's exit price
    want = _reference(time, high, low, spread, point, 2 * point, t_open, t_close, closed, is_buy, start)
    highest, lowest, seen = start.copy(), start.copy(), np.zeros(m, bool)
    lowest[~closed], highest[~closed] = np.inf, -np.inf
    mine = np.flatnonzero(rng.random(m) < 0.5)  # two symbols' positions, each widened on its own call
    for at in (mine, np.setdiff1d(np.arange(m), mine)):
        widen(
            time,
            high,
            low,
            spread,
            point,
            2 * point,
            at,
            t_open,
            t_close,
            closed,
            is_buy,
            highest,
            lowest,
            seen,
        )
    np.testing.assert_array_equal(seen, want[2])
    np.testing.assert_array_equal(highest, want[0])  # NaN where the reference has NaN
    np.testing.assert_array_equal(lowest, want[1])
    assert seen.sum() > 100 and (~seen).sum() > 5 and np.isnan(highest).any()
    assert (is_buy & seen & (t_open < time[150]) & closed).any()


def test_search_from_any_hint_is_numpys_searchsorted() -> None:
    from mt5tester.arith.search import search, search_sorted

    time = np.array([60, 120, 120, 180, 300, 300, 300, 420], np.int64)
    for t in range(0, 500, 30):
        for right in (False, True):
            want = int(np.searchsorted(time, t, "right" if right else "left"))
            for hint in range(len(time) + 1):
                assert search(time, t, right, hint) == want, (t, right, hint)
    assert search(np.zeros(0, np.int64), 5, True, 0) == 0
    keys = np.array([0, 60, 60, 130, 300, 301, 500, 100, 30], np.int64)  # ascending, then not
    for right in (False, True):
        side = "right" if right else "left"
        assert search_sorted(time, keys, right).tolist() == np.searchsorted(time, keys, side).tolist()
