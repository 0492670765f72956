"""Rows of the results tables: deals, signals, orders and positions (with MFE/MAE) and daily equity.

Positions are rebuilt from the deals (grouped by position id) and get their maximum favourable and
adverse excursion (MFE/MAE) in deposit currency, measured on the trigger bars while they were open:
a buy at the bars' Bid high/low, a sell at their Ask (Bid + spread).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from mt5tester.model import constants as C
from mt5tester.model.bars import Bars
from mt5tester.model.symbol import SymbolSpec
from mt5tester.model.trade import Deal, Order, Position


class _M1(Protocol):
    @property
    def m1(self) -> dict[str, Bars]: ...


class ServerView(Protocol):
    """What the rows read from the trade server (``terminal.server.TradeServer``); results sit above
    the value types only, so they name the fields they need instead of importing the terminal."""

    @property
    def positions(self) -> list[Position]: ...

    @property
    def orders(self) -> list[Order]: ...

    @property
    def history_orders(self) -> list[Order]: ...

    @property
    def deals(self) -> list[Deal]: ...

    @property
    def specs(self) -> dict[str, SymbolSpec]: ...

    @property
    def trigger_bars(self) -> dict[str, Bars]: ...

    @property
    def market(self) -> _M1: ...

    def profit_raw(
        self, spec: SymbolSpec, is_buy: bool, volume: float, open_: float, close: float, t: int
    ) -> float: ...


# (strategy, signal id) of an order or position, by ticket: the engine's journal reads them back from the
# orders' magic and comment (engine/attribution.py); the trade server does not know strategies.
Owners = Callable[[int], tuple[str, int | None]]


def deal_row(d: Deal, strategy: str = "", signal_id: int | None = None) -> dict[str, Any]:
    """The deals-table row of a deal, attributed to ``strategy`` and ``signal_id``."""
    return {
        "ticket": d.ticket,
        "order": d.order,
        "time": d.time,
        "type": d.type,
        "entry": d.entry,
        "reason": d.reason,
        "position_id": d.position_id,
        "symbol": d.symbol,
        "volume": d.volume,
        "price": d.price,
        "commission": d.commission,
        "swap": d.swap,
        "profit": d.profit,
        "balance": d.balance,
        "comment": d.comment,
        "strategy": strategy,
        "signal_id": signal_id,
    }


def signal_row(
    signal_id: int, t: int, strategy: Any, symbol: str, sig: Any, **decision: Any
) -> dict[str, Any]:
    """The signals-table row of a signal; ``decision`` fills the decision and execution columns."""
    row = {
        "signal_id": signal_id,
        "time": t,
        "strategy": strategy.name,
        "symbol": symbol,
        "timeframe": strategy.timeframe.name,
        "direction": sig.direction,
        "order_type": sig.order_type,
        "price": sig.price,
        "sl": sig.sl,
        "tp": sig.tp,
        "confidence": sig.confidence,
        "comment": sig.comment,
        "tags": sig.tags,
        "status": "",
        "rule": None,
        "reason": None,
        "details": None,
        "volume": None,
        "order_ticket": None,
        "retcode": None,
        "position_id": None,
        "trading_mode": None,
    }
    row.update(decision)
    return row


def order_rows(server: ServerView, owner: Owners) -> list[dict[str, Any]]:
    """The orders table's rows (see ``order_columns``), one dict each."""
    cols = order_columns(server, owner)
    names = list(cols)
    return [dict(zip(names, values, strict=True)) for values in zip(*cols.values(), strict=True)]


def order_columns(server: ServerView, owner: Owners) -> dict[str, list[Any]]:
    """The orders table as columns: history and open orders by ticket, with their owners."""
    orders = sorted([*server.history_orders, *server.orders], key=lambda o: o.ticket)
    owners = [owner(o.ticket) for o in orders]
    return {
        "ticket": [o.ticket for o in orders],
        "time_setup": [o.time_setup for o in orders],
        "time_done": [o.time_done or None for o in orders],
        "type": [o.type for o in orders],
        "state": [o.state for o in orders],
        "reason": [o.reason for o in orders],
        "symbol": [o.symbol for o in orders],
        "volume_initial": [o.volume_initial for o in orders],
        "volume_current": [o.volume_current for o in orders],
        "price_open": [o.price_open for o in orders],
        "price_done": [o.price_done for o in orders],
        "sl": [o.sl for o in orders],
        "tp": [o.tp for o in orders],
        "price_stoplimit": [o.price_stoplimit for o in orders],
        "position_id": [o.position_id for o in orders],
        "comment": [o.comment for o in orders],
        "strategy": [w[0] for w in owners],
        "signal_id": [w[1] for w in owners],
    }


def _range_extremes(bars: Any, lo: np.ndarray, hi: np.ndarray, point: float) -> dict[str, np.ndarray]:
    """Per range [lo, hi) of ``bars`` (every range non-empty): Bid high/low, Ask (Bid + the bars'
    spread) low/high, and whether any bar of the range has a spread. One reduceat per column."""
    # Interleaved bounds: the even results are the ranges; a sentinel row keeps hi == len(bars) valid.
    idx = np.empty(2 * len(lo), dtype=np.int64)
    idx[0::2], idx[1::2] = lo, hi

    def over(values: np.ndarray, ufunc: Any) -> np.ndarray:
        return ufunc.reduceat(np.append(values, values[-1]), idx)[0::2]

    spread = bars.spread * point
    return {
        "bid_high": over(bars.high, np.maximum),
        "bid_low": over(bars.low, np.minimum),
        "ask_low": over(bars.low + spread, np.minimum),
        "ask_high": over(bars.high + spread, np.maximum),
        "has_spread": over((bars.spread != 0).astype(np.int8), np.maximum) > 0,
    }


def position_rows(server: ServerView, owner: Owners) -> list[dict[str, Any]]:
    """The positions table's rows (see ``position_columns``), one dict each."""
    cols = position_columns(server, owner)
    names = list(cols)
    return [dict(zip(names, values, strict=True)) for values in zip(*cols.values(), strict=True)]


def _group_sums(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per group (consecutive rows from ``starts``), the sum of ``values`` exactly as Python's ``sum``
    gives it: numpy may add three or more in another order (unrolled, pairwise), so those groups are
    summed in Python; one or two values add alike, and ``+ 0.0`` turns -0.0 into 0.0 as ``0 + x`` does."""
    out = np.add.reduceat(values, starts) + 0.0 if len(values) else np.zeros(0)
    for g in np.flatnonzero(lengths >= 3).tolist():
        a = int(starts[g])
        out[g] = sum(values[a : a + int(lengths[g])].tolist())
    return out


def position_columns(server: ServerView, owner: Owners) -> dict[str, list[Any]]:
    """The positions table as columns, rebuilt from the trade deals grouped by position id (ids in
    order), with MFE/MAE over the trigger bars while each was open. Vectorised over positions: what
    stays per position is the owner and the deposit-currency profit of the two extremes."""
    deals = [d for d in server.deals if d.type in (C.DEAL_TYPE_BUY, C.DEAL_TYPE_SELL)]
    n_deals = len(deals)
    pid_of = np.fromiter((d.position_id for d in deals), np.int64, n_deals)
    order = np.argsort(pid_of, kind="stable")  # the deals of a position stay in the order they were made
    pid_s = pid_of[order]
    starts = np.flatnonzero(np.r_[True, pid_s[1:] != pid_s[:-1]]) if n_deals else np.zeros(0, np.int64)
    lengths = np.diff(np.r_[starts, n_deals])
    ids = pid_s[starts].tolist()
    first_i = order[starts].tolist()
    last_i = order[starts + lengths - 1].tolist()
    firsts, lasts = [deals[k] for k in first_i], [deals[k] for k in last_i]
    still_open = {p.identifier for p in server.positions}
    closed = np.array([pid not in still_open for pid in ids], dtype=bool)
    is_buy = np.array([d.type == C.DEAL_TYPE_BUY for d in firsts], dtype=bool)
    t_open = np.array([d.time for d in firsts], dtype=np.int64)
    t_last = np.array([d.time for d in lasts], dtype=np.int64)
    p_open = np.array([d.price for d in firsts], dtype=np.float64)
    p_last = np.array([d.price for d in lasts], dtype=np.float64)
    symbols = [d.symbol for d in firsts]
    vol_in = np.array([d.volume if d.entry == C.DEAL_ENTRY_IN else 0.0 for d in deals], np.float64)
    money = np.array([d.profit + d.swap + d.commission for d in deals], np.float64)
    volume = _group_sums(vol_in[order], starts, lengths)
    net = _group_sums(money[order], starts, lengths)
    # Candidate prices: the exit price of a closed position, and the extremes of the bars from the entry
    # bar up to (not including) the bar of the exit (its range may hold prices after the exit).
    n = len(ids)
    hi_c, lo_c = np.where(closed, p_last, -np.inf), np.where(closed, p_last, np.inf)
    has = closed.copy()
    bars_of = server.trigger_bars or server.market.m1
    sym_arr = np.array(symbols, dtype=object)
    for sym in dict.fromkeys(symbols):
        at = np.flatnonzero(sym_arr == sym)
        bars = bars_of[sym]
        lo = np.maximum(np.searchsorted(bars.time, t_open[at], "right") - 1, 0)
        hi = np.where(closed[at], np.searchsorted(bars.time, t_last[at], "left"), len(bars))
        some = hi > lo
        if not some.any():
            continue
        at, spec = at[some], server.specs[sym]
        ext = _range_extremes(bars, lo[some], hi[some], spec.point)
        fixed = spec.spread * spec.point
        buy = is_buy[at]
        sp = ext["has_spread"]
        up = np.where(buy, ext["bid_high"], np.where(sp, ext["ask_high"], ext["bid_high"] + fixed))
        down = np.where(buy, ext["bid_low"], np.where(sp, ext["ask_low"], ext["bid_low"] + fixed))
        hi_c[at], lo_c[at] = np.maximum(hi_c[at], up), np.minimum(lo_c[at], down)
        has[at] = True
    best = np.where(is_buy, hi_c, lo_c).tolist()
    worst = np.where(is_buy, lo_c, hi_c).tolist()
    t_ref = np.where(closed, t_last, t_open).tolist()
    mfe: list[float | None] = [None] * n
    mae: list[float | None] = [None] * n
    buy_l, vol_l, open_l = is_buy.tolist(), volume.tolist(), p_open.tolist()
    for j in np.flatnonzero(has).tolist():
        spec = server.specs[symbols[j]]
        mfe[j] = round(server.profit_raw(spec, buy_l[j], vol_l[j], open_l[j], best[j], t_ref[j]), 2)
        mae[j] = round(server.profit_raw(spec, buy_l[j], vol_l[j], open_l[j], worst[j], t_ref[j]), 2)
    owners = [owner(pid) for pid in ids]
    closed_l = closed.tolist()
    return {
        "position_id": ids,
        "symbol": symbols,
        "type": [0 if b else 1 for b in buy_l],
        "volume": vol_l,
        "time_open": t_open.tolist(),
        "time_close": [t if c else None for t, c in zip(t_last.tolist(), closed_l, strict=True)],
        "price_open": open_l,
        "price_close": [p if c else None for p, c in zip(p_last.tolist(), closed_l, strict=True)],
        "net": [round(v, 2) for v in net.tolist()],
        "mfe": mfe,
        "mae": mae,
        "close_reason": [d.reason if c else None for d, c in zip(lasts, closed_l, strict=True)],
        "strategy": [o[0] for o in owners],
        "signal_id": [o[1] for o in owners],
    }
