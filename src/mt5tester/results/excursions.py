"""The bars' extremes while each position was open, in one compiled pass (the positions table's MFE/MAE,
results/rows.py).

A position's range of trigger bars is found by a binary search of its open and close times, then the
bars of the range are read: the Bid's high and low, and for a sell on bars with a spread the Ask's
(Bid + the bar's spread). Max and min give the same floats in any order (NaN propagated as numpy's
maximum/minimum do), so the result equals numpy's reductions over the ranges, without their per-range
index arrays and whole-series temporaries (a million bars stay a million bars).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mt5tester.arith.search import search


@njit(cache=True)
def _span(
    high: np.ndarray, low: np.ndarray, lo: int, hi: int, spread: np.ndarray, point: float, ask: bool
) -> tuple[float, float]:
    """(highest high, lowest low) of the bars [lo, hi), the Bid's, or with ``ask`` the Ask's (+ each
    bar's spread x ``point``); NaN when a value is NaN (numpy's maximum and minimum propagate it)."""
    top, bottom = high[lo], low[lo]
    if ask:
        top, bottom = top + spread[lo] * point, bottom + spread[lo] * point
    nan_top, nan_bottom = top != top, bottom != bottom
    for j in range(lo + 1, hi):
        h, lw = high[j], low[j]
        if ask:
            h, lw = h + spread[j] * point, lw + spread[j] * point
        if h > top:
            top = h
        if lw < bottom:
            bottom = lw
        nan_top |= h != h
        nan_bottom |= lw != lw
    return (np.nan if nan_top else top), (np.nan if nan_bottom else bottom)


@njit(cache=True)
def _any_spread(spread: np.ndarray, lo: int, hi: int) -> bool:
    for j in range(lo, hi):  # noqa: SIM110 (a loop numba compiles, no generator)
        if spread[j] != 0:
            return True
    return False


@njit(cache=True)
def widen(
    time: np.ndarray, high: np.ndarray, low: np.ndarray, spread: np.ndarray, point: float, fixed: float,
    at: np.ndarray, t_open: np.ndarray, t_close: np.ndarray, closed: np.ndarray, is_buy: np.ndarray,
    highest: np.ndarray, lowest: np.ndarray, seen: np.ndarray,
) -> None:  # fmt: skip
    """Widen ``highest``/``lowest`` of the positions ``at`` (one symbol's, on its bars) to the prices
    their side saw on the bars while open: a buy the Bid high and low, a sell the Ask, Bid + the bar's
    spread x ``point`` where a bar of the range has one, else Bid + ``fixed`` (the symbol's spread).
    Position k's bars are [lo, hi): lo the bar holding ``t_open[k]`` (the first bar when it opened
    before them), hi the bar of ``t_close[k]`` (not included: its range may hold prices after the
    close) when ``closed[k]``, else the end of the bars; ``seen[k]`` is set when that range has a bar."""
    n, last = len(time), 0
    for k in at:
        last = search(time, t_open[k], True, last)
        lo = max(last - 1, 0)
        hi = search(time, t_close[k], False, lo) if closed[k] else n
        if hi <= lo:
            continue
        up, down = _span(high, low, lo, hi, spread, point, False)
        if not is_buy[k]:
            if _any_spread(spread, lo, hi):
                up, down = _span(high, low, lo, hi, spread, point, True)
            else:
                up, down = up + fixed, down + fixed
        highest[k] = up if (up != up or up > highest[k]) else highest[k]  # np.maximum
        lowest[k] = down if (down != down or down < lowest[k]) else lowest[k]  # np.minimum
        seen[k] = True
