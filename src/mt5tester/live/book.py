"""A session's positions with MFE/MAE, from the quotes its terminal gave.

A backtest measures a position's excursions on the trade server's trigger bars (results/rows.py
``position_rows``). A session has no trade server of its own: it asks the terminal it traded through for
the M1 bars of each symbol over its positions' lives (``copy_rates_range``, the prices the terminal saw
while they were open) and prices the excursions with ``order_calc_profit`` (the terminal's own profit,
in the deposit currency with the broker's conversion rates). The same ``position_rows`` then builds the
rows, so a paper session's MFE/MAE are the backtest's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from mt5tester.live.terminal import ServerClock, rates_to_bars
from mt5tester.model import constants as C
from mt5tester.model.bars import Bars
from mt5tester.model.symbol import SymbolSpec
from mt5tester.model.timeframe import Timeframe
from mt5tester.model.trade import Deal, Order
from mt5tester.results.rows import position_rows


@dataclass
class _M1:
    m1: dict[str, Bars]


@dataclass
class TerminalView:
    """What ``position_rows`` reads (results/rows.py ``ServerView``), answered by a terminal module."""

    mt5: Any
    deals: list[Deal]
    specs: dict[str, SymbolSpec]
    positions: list[Any]  # the terminal's open positions (``identifier`` is what is read)
    trigger_bars: dict[str, Bars] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)
    history_orders: list[Order] = field(default_factory=list)

    @property
    def market(self) -> _M1:
        return _M1(self.trigger_bars)

    def profit_raw(
        self, spec: SymbolSpec, is_buy: bool, volume: float, open_: float, close: float, t: int
    ) -> float:
        action = C.ORDER_TYPE_BUY if is_buy else C.ORDER_TYPE_SELL
        got = self.mt5.order_calc_profit(action, spec.name, volume, open_, close)
        return float("nan") if got is None else float(got)


def session_positions(
    mt5: Any, clock: ServerClock, rows: list[Mapping[str, Any]], specs: dict[str, SymbolSpec], now_ns: int
) -> list[dict[str, Any]]:
    """The positions rows of a session's recorded deals (``rows``, oldest first), MFE/MAE measured on the
    terminal's M1 bars from the first entry to the last exit (or ``now_ns`` for one still open)."""
    deals = [
        Deal(
            *(int(r["ticket"]), int(r["order"]), int(r["time"]), int(r["type"]), int(r["entry"])),
            *(int(r["reason"]), int(r["position_id"]), str(r["symbol"]), float(r["volume"])),
            *(float(r["price"]), float(r["commission"]), float(r["swap"]), float(r["profit"])),
            *(float(r["balance"]), str(r["comment"] or "")),
        )
        for r in rows
    ]
    owners: dict[int, tuple[str, int | None]] = {}
    for r in rows:
        owners.setdefault(int(r["position_id"]), (str(r["strategy"]), r["signal_id"]))
    # Open: what the terminal holds, and a position with no exit deal on record (its close is not in the
    # history the terminal gave): not closed at its entry.
    held = {int(p.identifier) for p in mt5.positions_get() or ()}
    exited = {d.position_id for d in deals if d.entry != C.DEAL_ENTRY_IN}
    held |= {d.position_id for d in deals} - exited
    view = TerminalView(mt5, deals, specs, [SimpleNamespace(identifier=i) for i in sorted(held)])
    spans: dict[str, tuple[int, int]] = {}
    missing: set[str] = set()
    for d in deals:
        lo, hi = spans.get(d.symbol, (d.time, d.time))
        spans[d.symbol] = (min(lo, d.time), max(hi, d.time))
    for symbol, (lo, hi) in spans.items():
        if view.positions:
            hi = max(hi, now_ns)
        # both ends inclusive in the API; a minute before the first entry gives the bar it opened in
        rates = mt5.copy_rates_range(
            symbol, C.TIMEFRAME_M1, clock.to_server_s(lo) - 60, clock.to_server_s(hi) + 60
        )
        if rates is not None and len(rates):
            view.trigger_bars[symbol] = rates_to_bars(rates, symbol, Timeframe.M1, clock)
        else:
            missing.add(symbol)
            view.trigger_bars[symbol] = _no_bars(symbol)
    out = position_rows(view, lambda pid: owners[pid])
    for row in out:  # a symbol the terminal gave no bars for, or a profit it could not price: unknown
        if row["symbol"] in missing or row["mfe"] != row["mfe"] or row["mae"] != row["mae"]:
            row["mfe"] = row["mae"] = None
    return out


def _no_bars(symbol: str) -> Bars:
    f, i = np.empty(0, np.float64), np.empty(0, np.int64)
    return Bars(symbol, Timeframe.M1, i, f, f, f, f, i, np.empty(0, np.int32))
