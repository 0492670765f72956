"""The trade server's data, in two halves: ``Market``, what a run reads and never changes (prices,
specs, trigger bars, tick streams, the rollover schedule, the settings), and ``TradeState``, everything
the server changes (balance, book, history, tickets, the random generator, rollover and stop-out
counters). A checkpoint pickles the ``TradeState`` whole; the ``Market`` is rebuilt from the config
and data. ``money``, ``ledger``, ``trading`` and ``replay`` are functions over the two, and
``TradeCore`` is the boundary a compiled implementation plugs into (ARCHITECTURE 6).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from mt5tester.model.bars import Bars
from mt5tester.model.structs import OrderCheckResult, OrderSendResult, TradeRequest
from mt5tester.model.symbol import SymbolSpec
from mt5tester.model.time import NEVER_NS
from mt5tester.model.trade import Deal, Order, Position
from mt5tester.terminal.history import History
from mt5tester.terminal.records import MINUTE_NS, PriceSource, ServerSettings, TickStream


@dataclass(eq=False)
class MarketMemo:
    """Values derived from the market data alone, computed on first use (never part of a checkpoint)."""

    directions: dict[str, np.ndarray] = field(default_factory=dict)
    ticks: dict[str, tuple[int, int, TickStream]] = field(default_factory=dict)
    extremes: dict[str, tuple[float, float]] = field(default_factory=dict)
    spread: dict[str, np.ndarray] = field(default_factory=dict)
    closes: dict[str, np.ndarray] = field(default_factory=dict)  # trigger bars' close times
    quotes: dict[str, tuple[int, tuple[float, float, int] | None]] = field(default_factory=dict)
    # (t, (bid, ask, contract size, conversion kind, rate)) per symbol: ``money._mark`` at the last t
    marks: dict[str, tuple[int, tuple[float, float, float, int, float]]] = field(default_factory=dict)
    # margin of (symbol, lots, open price) for symbols whose margin reads no rate (money._time_free)
    fixed_margin: dict[tuple[str, float, float], float] = field(default_factory=dict)
    # profit of (symbol, type, lots, open price) at the symbol's worst price of the history, for symbols
    # whose profit reads no rate (replay's stop-out bound)
    worst_profit: dict[tuple[str, int, float, float], float] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Market:
    """Read-only inputs of the trade server. ``trigger_bars`` are the bars SL/TP and pending orders are
    resolved on: M1 (the same dict as ``prices.m1``, compared by identity) or the tested timeframe."""

    prices: PriceSource
    settings: ServerSettings
    trigger_bars: dict[str, Bars]
    real_ticks: dict[str, TickStream]  # real_ticks mode: the merged stream per symbol
    rollovers: np.ndarray  # server midnights (UTC ns) in the run
    rollover_days: np.ndarray  # DAY_OF_WEEK_* of the day each rollover ends
    memo: MarketMemo = field(default_factory=MarketMemo)

    @property
    def specs(self) -> dict[str, SymbolSpec]:
        return self.prices.specs

    def on_m1(self, symbol: str) -> bool:
        """SL/TP and pending orders of the symbol are resolved on M1 bars."""
        return self.trigger_bars[symbol] is self.prices.m1[symbol]

    def trigger_index(self, symbol: str, t: int) -> int:
        """Index of the first trigger bar at or after t."""
        return int(self.trigger_bars[symbol].time.searchsorted(t, "left"))

    def complete_index(self, symbol: str, t: int) -> int:
        """Number of trigger bars closed by t. Only those are replayed whole: at a time inside a bar
        (a script's sleep) its later ticks are not known yet (ARCHITECTURE 2, one quote at t)."""
        bars = self.trigger_bars[symbol]
        if self.on_m1(symbol):
            return int(bars.time.searchsorted(t - MINUTE_NS, "right"))
        closes = self.memo.closes.get(symbol)
        if closes is None:
            # A bar is over at its period's end or at the next bar's open, whichever comes first
            # (a server day shortened by DST ends at the next day's open).
            nxt = np.append(np.asarray(bars.time[1:], np.int64), NEVER_NS)
            closes = self.memo.closes[symbol] = np.minimum(bars.close_time, nxt)
        return int(closes.searchsorted(t, "right"))

    def entry_index(self, symbol: str, t: int) -> int:
        """First trigger bar to watch for an order or position placed at t: on M1, the bar t falls
        inside of (only its ticks after t count, ``replay.scan_inside``); else the first bar opening
        at or after t."""
        bars = self.trigger_bars[symbol]
        k = self.trigger_index(symbol, t)
        inside = k > 0 and (k == len(bars) or int(bars.time[k]) > t) and t - int(bars.time[k - 1]) < MINUTE_NS
        return k - 1 if inside and self.on_m1(symbol) else k


@dataclass(eq=False)
class StateMemo:
    """Facts about the current state kept to skip work; consistent with the state they were computed
    on, and dropped by pickling (a restored state starts without them, as a new run does)."""

    margin: tuple[tuple[int, int], float] = ((-1, -1), 0.0)  # ((t, deals), margin of the open positions)
    # ((t, deals, rollovers), floating profit + swaps): dropped when a rollover charges swaps
    floating: tuple[tuple[int, int, int], float] | None = None
    # ((t, deals), per symbol [buy, sell] margin sums of the open positions): ``money.margin_with``
    margin_parts: tuple[tuple[int, int], dict[str, list[float]]] | None = None
    safe_key: tuple[int, int, float] | None = None  # (deals, rollovers, margin) known far from stop-out
    # (deals, rollovers) of a book with nothing to replay: no SL/TP, no orders, stop-out out of reach
    quiet: tuple[int, int] | None = None
    rollover_at: tuple[int, int] = (-1, 0)  # (next_rollover, its time)
    # per position ticket: the trigger bars known to hold no SL/TP hit for its levels (replay.Clear)
    clear: dict[int, tuple[tuple[int, float, float, int], int, bool, int]] = field(default_factory=dict)

    def __reduce__(self) -> tuple[type[StateMemo], tuple[()]]:
        return StateMemo, ()


@dataclass(eq=False)
class TradeState:
    """Everything the trade server changes during a run: one picklable object."""

    balance: float = 0.0
    credit: float = 0.0  # the tester grants none; here so the account is whole
    positions: list[Position] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    # the history: lists whose compiled driver's parts stay arrays until read (terminal/history.py)
    history_orders: History[Order] = field(default_factory=History)
    deals: History[Deal] = field(default_factory=History)
    now: int = 0
    server_offset_ns: int = 0  # server clock minus UTC, for SPECIFIED expirations
    next_ticket: int = 2  # MT5's tester: deal #1 is the deposit, the first order is #2
    next_deal: int = 1
    next_rollover: int = 0  # index into Market.rollovers of the next swap charge
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))  # random slippage
    ambiguous_bars: int = 0
    stop_outs: int = 0
    memo: StateMemo = field(default_factory=StateMemo)


class TradeCore(Protocol):
    """The trade server's rules over a state: what a compiled implementation provides (issue 14)."""

    def advance(self, state: TradeState, t: int) -> list[Deal]:
        """Replay SL/TP, pending orders, swaps and stop-outs up to t; the deals made."""
        ...

    def send(self, state: TradeState, request: TradeRequest) -> OrderSendResult:
        """order_send: refusals are results with a retcode, never exceptions. The request is the whole
        input: who sent it is in its ``magic`` and ``comment`` (the engine's journal reads them back)."""
        ...

    def check(self, state: TradeState, request: TradeRequest) -> OrderCheckResult:
        """order_check: the account as it would be after the request; the state does not change."""
        ...
