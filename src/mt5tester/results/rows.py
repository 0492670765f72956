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
from mt5tester.model.trade import Deal, Order, Position, Side


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
    def row(o: Order) -> dict[str, Any]:
        strategy, signal_id = owner(o.ticket)
        return {
            "ticket": o.ticket,
            "time_setup": o.time_setup,
            "time_done": o.time_done or None,
            "type": o.type,
            "state": o.state,
            "reason": o.reason,
            "symbol": o.symbol,
            "volume_initial": o.volume_initial,
            "volume_current": o.volume_current,
            "price_open": o.price_open,
            "price_done": o.price_done,
            "sl": o.sl,
            "tp": o.tp,
            "price_stoplimit": o.price_stoplimit,
            "position_id": o.position_id,
            "comment": o.comment,
            "strategy": strategy,
            "signal_id": signal_id,
        }

    return [row(o) for o in sorted([*server.history_orders, *server.orders], key=lambda o: o.ticket)]


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
    by_id: dict[int, list[Any]] = {}
    for d in server.deals:
        if d.type in (C.DEAL_TYPE_BUY, C.DEAL_TYPE_SELL):
            by_id.setdefault(d.position_id, []).append(d)
    still_open = {p.identifier for p in server.positions}
    bars_of = server.trigger_bars or server.market.m1
    # Bars from the entry bar up to (not including) the bar of the exit, plus the exit price itself:
    # the exit bar's range may hold prices after the exit, so it is not used. Ranges per symbol.
    ids = sorted(by_id)
    of_symbol: dict[str, list[int]] = {}
    for pid in ids:
        of_symbol.setdefault(by_id[pid][0].symbol, []).append(pid)
    extremes: dict[int, tuple[dict[str, np.ndarray], int]] = {}
    for sym, pids in of_symbol.items():
        bars = bars_of[sym]
        opened = np.array([by_id[pid][0].time for pid in pids], dtype=np.int64)
        ended = [by_id[pid][-1].time if pid not in still_open else None for pid in pids]
        lo = np.maximum(np.searchsorted(bars.time, opened, "right") - 1, 0)
        hi = np.array(
            [len(bars) if t is None else int(np.searchsorted(bars.time, t, "left")) for t in ended], np.int64
        )
        some = hi > lo
        ext = _range_extremes(bars, lo[some], hi[some], server.specs[sym].point) if some.any() else {}
        for j, pid in enumerate(np.array(pids)[some].tolist()):
            extremes[pid] = (ext, j)
    rows = []
    for pid in ids:
        deals = by_id[pid]
        first = deals[0]
        is_buy = first.side is Side.BUY
        closed = pid not in still_open
        last = deals[-1]
        t_close = last.time if closed else None
        volume = float(sum(d.volume for d in deals if d.entry == C.DEAL_ENTRY_IN))
        mfe = mae = None
        spec = server.specs[first.symbol]
        prices = [last.price] if closed else []
        if pid in extremes:
            ext, j = extremes[pid]
            if is_buy:
                prices += [float(ext["bid_high"][j]), float(ext["bid_low"][j])]
            elif ext["has_spread"][j]:
                prices += [float(ext["ask_low"][j]), float(ext["ask_high"][j])]
            else:
                fixed = spec.spread * spec.point
                prices += [float(ext["bid_low"][j] + fixed), float(ext["bid_high"][j] + fixed)]
        strategy, signal_id = owner(pid)
        if prices:
            best = max(prices) if is_buy else min(prices)
            worst = min(prices) if is_buy else max(prices)
            t_ref = t_close if t_close is not None else first.time
            mfe = round(server.profit_raw(spec, is_buy, volume, first.price, best, t_ref), 2)
            mae = round(server.profit_raw(spec, is_buy, volume, first.price, worst, t_ref), 2)
        rows.append(
            {
                "position_id": pid,
                "symbol": first.symbol,
                "type": 0 if is_buy else 1,
                "volume": volume,
                "time_open": first.time,
                "time_close": t_close,
                "price_open": first.price,
                "price_close": last.price if closed else None,
                "net": round(sum(d.profit + d.swap + d.commission for d in deals), 2),
                "mfe": mfe,
                "mae": mae,
                "close_reason": last.reason if closed else None,
                "strategy": strategy,
                "signal_id": signal_id,
            }
        )
    return rows
