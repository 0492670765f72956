"""The simulated trade server: orders, positions and deals, in the deposit currency.

It follows ../shared/spec/mt5_python_api.md: fills at Bid/Ask (5.4), stops and freeze levels (5.5),
volume rules (5.6), hedging and netting (5.7), profit (5.8), margin (5.9), swaps (5.10), margin call
and stop-out (5.11). Between two decision points ``advance(t)`` replays, in time order, every SL/TP
hit, pending-order activation, expiry, swap rollover and stop-out on the finest data the tester mode
allows.

The server is data plus functions (ARCHITECTURE 6): ``state`` (``TradeState``: everything that
changes, pickled whole by checkpoints), ``inputs`` (``Market``: prices, specs, tick streams, rollover
schedule, settings; read-only), and the rules over them in ``money`` (quotes, conversion, profit,
margin, costs), ``ledger`` (deals and fills), ``trading`` (send, check) and ``replay`` (advance).
``core`` (a ``TradeCore``) is where a compiled implementation plugs in. ``TradeServer`` is a thin
facade with the methods the engine, the results and the terminal API call; only it (through those
modules) mutates trading state (ARCHITECTURE 4).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from mt5tester.model.bars import Bars
from mt5tester.model.structs import OrderCheckResult, OrderSendResult, TradeRequest
from mt5tester.model.symbol import SymbolSpec
from mt5tester.model.trade import BUY_TYPES, PENDING_TYPES, Deal, Order, Position
from mt5tester.terminal import ledger, money, replay, trading
from mt5tester.terminal.history import History
from mt5tester.terminal.records import (
    MARKET_CLOSED_AFTER_NS,
    MINUTE_NS,
    IntrabarPolicy,
    PriceSource,
    ServerSettings,
    TickMode,
    TickStream,
)
from mt5tester.terminal.replay import real_tick_stream, rollover_schedule
from mt5tester.terminal.state import Market, MarketMemo, StateMemo, TradeCore, TradeState

__all__ = [  # the records and schedules are re-exported: callers import them from here
    "BUY_TYPES",
    "MARKET_CLOSED_AFTER_NS",
    "MINUTE_NS",
    "PENDING_TYPES",
    "Deal",
    "IntrabarPolicy",
    "Order",
    "Position",
    "PriceSource",
    "PythonCore",
    "ServerSettings",
    "TickMode",
    "TickStream",
    "TradeServer",
    "real_tick_stream",
    "rollover_schedule",
]


class PythonCore:
    """The trade rules in Python over one ``Market``: the reference ``TradeCore``."""

    def __init__(self, market: Market) -> None:
        self.market = market

    def advance(self, state: TradeState, t: int) -> list[Deal]:
        return replay.advance(self.market, state, t)

    def send(self, state: TradeState, request: TradeRequest) -> OrderSendResult:
        return trading.send(self.market, state, request)

    def check(self, state: TradeState, request: TradeRequest) -> OrderCheckResult:
        return trading.check(self.market, state, request)


def _no_times() -> np.ndarray:
    return np.zeros(0, np.int64)


class TradeServer:
    """One account on the simulated server: the state, the read-only inputs, and the core's rules."""

    def __init__(
        self,
        market: PriceSource,
        settings: ServerSettings | None = None,
        trigger_bars: dict[str, Bars] | None = None,  # bars SL/TP/pending resolve on (default M1)
        core: Callable[[Market], TradeCore] = PythonCore,
    ) -> None:
        settings = settings or ServerSettings()
        self.inputs = Market(
            market,
            settings,
            market.m1 if trigger_bars is None else trigger_bars,
            {},
            _no_times(),
            _no_times(),
        )
        self.state: TradeState = ledger.open_account(settings)
        self._make_core = core
        self.core: TradeCore = core(self.inputs)

    def _set_inputs(self, **changes: object) -> None:
        """Replace read-only inputs (the engine sets the schedule after construction); the derived
        values are recomputed for the new ones."""
        self.inputs = dataclasses.replace(self.inputs, memo=MarketMemo(), **changes)  # type: ignore[arg-type]
        self.state.memo = StateMemo()  # e.g. the time of the next rollover, read from the old schedule
        self.core = self._make_core(self.inputs)

    # ------------------------------------------------------------------------------- inputs
    @property
    def market(self) -> PriceSource:
        return self.inputs.prices

    @property
    def settings(self) -> ServerSettings:
        return self.inputs.settings

    @property
    def specs(self) -> dict[str, SymbolSpec]:
        return self.inputs.specs

    @property
    def trigger_bars(self) -> dict[str, Bars]:
        return self.inputs.trigger_bars

    @trigger_bars.setter
    def trigger_bars(self, bars: dict[str, Bars]) -> None:
        self._set_inputs(trigger_bars=bars)

    @property
    def real_ticks(self) -> dict[str, TickStream]:
        return self.inputs.real_ticks

    @real_ticks.setter
    def real_ticks(self, streams: dict[str, TickStream]) -> None:
        self._set_inputs(real_ticks=streams)

    @property
    def rollovers(self) -> np.ndarray:
        return self.inputs.rollovers

    @rollovers.setter
    def rollovers(self, times: np.ndarray) -> None:
        self._set_inputs(rollovers=times)

    @property
    def rollover_days(self) -> np.ndarray:
        return self.inputs.rollover_days

    @rollover_days.setter
    def rollover_days(self, days: np.ndarray) -> None:
        self._set_inputs(rollover_days=days)

    # -------------------------------------------------------------------------------- state
    @property
    def now(self) -> int:
        return self.state.now

    @now.setter
    def now(self, t: int) -> None:
        self.state.now = t

    @property
    def server_offset_ns(self) -> int:
        return self.state.server_offset_ns

    @server_offset_ns.setter
    def server_offset_ns(self, offset: int) -> None:
        self.state.server_offset_ns = offset

    @property
    def balance(self) -> float:
        return self.state.balance

    @property
    def positions(self) -> list[Position]:
        return self.state.positions

    @property
    def orders(self) -> list[Order]:
        return self.state.orders

    @property
    def history_orders(self) -> History[Order]:
        return self.state.history_orders

    @property
    def deals(self) -> History[Deal]:
        return self.state.deals

    @property
    def ambiguous_bars(self) -> int:
        return self.state.ambiguous_bars

    @property
    def stop_outs(self) -> int:
        return self.state.stop_outs

    # ------------------------------------------------------------------------------ trading
    def advance(self, t: int) -> list[Deal]:
        """Replay everything between the previous point and t, in time order; return the deals made."""
        return self.core.advance(self.state, t)

    def quiet_until(self) -> int:
        """Before this time ``advance`` only moves the clock, as long as no request changes the state
        (the engine's loop skips it then); -1 when it must replay at every point."""
        return replay.quiet_until(self.inputs, self.state)

    def send(self, req: TradeRequest) -> OrderSendResult:
        """order_send semantics (spec 5.3). Refusals are results with a retcode, never exceptions."""
        return self.core.send(self.state, req)

    def check(self, req: TradeRequest) -> OrderCheckResult:
        """order_check: the account as it would be after the request (spec 3.11); nothing changes."""
        return self.core.check(self.state, req)

    def close_position(self, p: Position, t: int, price: float, reason: int, comment: str) -> Deal:
        """Close all of p at ``price`` (SL, TP, stop-out, end of run) with a server-side order."""
        return ledger.close_position(self.inputs, self.state, p, t, price, reason, comment)

    # -------------------------------------------------------------------------------- money
    def quote(self, symbol: str, t: int | None = None) -> tuple[float, float, int] | None:
        """(bid, ask, index of the M1 bar) of the current tick at t (default now), or None."""
        return money.quote(self.inputs, symbol, self.state.now if t is None else t)

    def rate(self, ccy: str, t: int) -> float:
        return money.rate(self.inputs, ccy, t)

    def profit_raw(
        self, spec: SymbolSpec, is_buy: bool, volume: float, open_: float, close: float, t: int
    ) -> float:
        return money.profit_raw(self.inputs, spec, is_buy, volume, open_, close, t)

    def conversion(self, spec: SymbolSpec, t: int) -> tuple[int, float]:
        """(conv kind, rate) of the symbol's profit currency into deposit currency at ``t``."""
        return money.conversion(self.inputs, spec, t)

    def profit_raw_many(
        self, spec: SymbolSpec, is_buy: np.ndarray, volume: np.ndarray, open_: np.ndarray,
        close: np.ndarray, t: np.ndarray,
    ) -> np.ndarray:  # fmt: skip
        return money.profit_raw_many(self.inputs, spec, is_buy, volume, open_, close, t)

    def profit(
        self, spec: SymbolSpec, is_buy: bool, volume: float, open_: float, close: float, t: int
    ) -> float:
        return money.profit(self.inputs, spec, is_buy, volume, open_, close, t)

    def margin_for(self, spec: SymbolSpec, volume: float, price: float, t: int) -> float:
        return money.margin_for(self.inputs, spec, volume, price, t)

    def commission(self, spec: SymbolSpec, volume: float, price: float, t: int) -> float:
        return money.commission(self.inputs, spec, volume, price, t)

    def swap_charge(self, p: Position, t: int) -> float:
        return money.swap_charge(self.inputs, p, t)

    def position_profit(self, p: Position, t: int) -> tuple[float, float]:
        """(floating profit without swap, current close price) of a position at t."""
        return money.position_profit(self.inputs, p, t)

    def floating(self, t: int | None = None) -> float:
        return money.floating(self.inputs, self.state, self.state.now if t is None else t)

    def margin(self, t: int | None = None, positions: list[Position] | None = None) -> float:
        return money.margin(self.inputs, self.state, self.state.now if t is None else t, positions)

    def equity(self, t: int | None = None) -> float:
        return money.equity(self.inputs, self.state, self.state.now if t is None else t)

    def margin_level(self, t: int | None = None) -> float:
        return money.margin_level(self.inputs, self.state, self.state.now if t is None else t)
