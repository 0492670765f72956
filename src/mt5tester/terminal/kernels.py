"""Compiled kernels for the hot path: the first SL/TP hit or pending activation over bars.

Rules (spec 5.4, 6.1): a buy position closes at Bid, its SL triggers when Bid <= SL and its TP when
Bid >= TP; a sell closes at Ask, SL when Ask >= SL, TP when Ask <= TP. In bar modes Ask = Bid +
the bar's spread, fixed for the bar. A bar that opens beyond a level fills at the open (the first
available price, not the level). When SL and TP both lie inside one bar that did not gap, the
order cannot be known from OHLC: the pessimistic policy takes the SL and the bar is counted as
ambiguous. ``no_gap_first``: the position or order appeared inside bar ``start`` (a pending fill),
so that bar's open came before it and only its range counts.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NONE, SL, TP = 0, 1, 2
# ORDER_TYPE_* (spec 4.2)
BUY_LIMIT, SELL_LIMIT, BUY_STOP, SELL_STOP = 2, 3, 4, 5


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
    no_gap_first: bool = False,
) -> tuple[int, int, float, bool]:
    """Scan bars [start, stop); return (index, NONE|SL|TP, fill price, ambiguous). sl/tp 0 = unset."""
    for i in range(start, stop):
        sp = spread[i] * point
        gap_ok = not (no_gap_first and i == start)
        if is_buy:
            o, h, lo = open_[i], high[i], low[i]
            if gap_ok and sl > 0.0 and o <= sl:
                return i, SL, o, False
            if gap_ok and tp > 0.0 and o >= tp:
                return i, TP, o, False
            hit_sl = sl > 0.0 and lo <= sl
            hit_tp = tp > 0.0 and h >= tp
        else:
            o, h, lo = open_[i] + sp, high[i] + sp, low[i] + sp
            if gap_ok and sl > 0.0 and o >= sl:
                return i, SL, o, False
            if gap_ok and tp > 0.0 and o <= tp:
                return i, TP, o, False
            hit_sl = sl > 0.0 and h >= sl
            hit_tp = tp > 0.0 and lo <= tp
        if hit_sl:
            return i, SL, sl, hit_tp
        if hit_tp:
            return i, TP, tp, False
    return -1, NONE, 0.0, False


@njit(cache=True)
def first_activation(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    spread: np.ndarray,
    point: float,
    start: int,
    stop: int,
    order_type: int,
    price: float,
    no_gap_first: bool = False,
) -> tuple[int, float]:
    """First bar in [start, stop) activating a pending order (spec 5.3): BUY_LIMIT when Ask <= price,
    SELL_LIMIT when Bid >= price, BUY_STOP when Ask >= price, SELL_STOP when Bid <= price. Fill at the
    order price, or at the bar's open when it opened beyond it (spec 5.4). Returns (index, price)."""
    for i in range(start, stop):
        sp = spread[i] * point
        gap_ok = not (no_gap_first and i == start)
        if order_type == BUY_LIMIT or order_type == BUY_STOP:  # noqa: SIM109 - numba-friendly
            o, h, lo = open_[i] + sp, high[i] + sp, low[i] + sp
        else:
            o, h, lo = open_[i], high[i], low[i]
        if order_type == BUY_LIMIT or order_type == SELL_STOP:  # noqa: SIM109 - numba-friendly
            if gap_ok and o <= price:
                return i, o
            if lo <= price:
                return i, price
        else:
            if gap_ok and o >= price:
                return i, o
            if h >= price:
                return i, price
    return -1, 0.0
