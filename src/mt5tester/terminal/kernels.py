"""Compiled kernels for the hot path: find the first SL/TP trigger over M1 bars.

Rules (spec 5.4, 6.1): a buy position closes at Bid, its SL triggers when Bid <= SL and its TP when
Bid >= TP; a sell closes at Ask, SL when Ask >= SL, TP when Ask <= TP. In bar modes Ask = Bid +
the M1 bar's spread, fixed for the minute. A bar that opens beyond a level fills at the open (the
first available price, not the level). When SL and TP both lie inside one bar that did not gap, the
order cannot be known from OHLC: the pessimistic policy takes the SL and the bar is counted as
ambiguous.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NONE, SL, TP = 0, 1, 2


@njit(cache=True)
def first_trigger(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    spread: np.ndarray,
    point: float,
    start: int,
    stop: int,
    is_buy: bool,
    sl: float,
    tp: float,
) -> tuple[int, int, float, bool]:
    """Scan bars [start, stop); return (index, NONE|SL|TP, fill price, ambiguous). sl/tp 0 = unset."""
    for i in range(start, stop):
        sp = spread[i] * point
        if is_buy:
            o, h, lo = open_[i], high[i], low[i]
            if sl > 0.0 and o <= sl:
                return i, SL, o, False
            if tp > 0.0 and o >= tp:
                return i, TP, o, False
            hit_sl = sl > 0.0 and lo <= sl
            hit_tp = tp > 0.0 and h >= tp
        else:
            o, h, lo = open_[i] + sp, high[i] + sp, low[i] + sp
            if sl > 0.0 and o >= sl:
                return i, SL, o, False
            if tp > 0.0 and o <= tp:
                return i, TP, o, False
            hit_sl = sl > 0.0 and h >= sl
            hit_tp = tp > 0.0 and lo <= tp
        if hit_sl:
            return i, SL, sl, hit_tp
        if hit_tp:
            return i, TP, tp, False
    return -1, NONE, 0.0, False
