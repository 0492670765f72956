"""The trade server's records and settings: positions, orders, deals, ticks (spec 3.6-3.9, 5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from mt5tester.model.bars import Bars
from mt5tester.model.symbol import SymbolSpec
from mt5tester.terminal import constants as C

MINUTE_NS = 60_000_000_000
# A symbol with no quote in the last 15 minutes is treated as closed for trading [U]: MT5 knows the
# symbol's sessions; the tester only has the quotes, and quiet minutes without a bar are normal.
MARKET_CLOSED_AFTER_NS = 15 * MINUTE_NS

BUY_TYPES = (C.ORDER_TYPE_BUY, C.ORDER_TYPE_BUY_LIMIT, C.ORDER_TYPE_BUY_STOP, C.ORDER_TYPE_BUY_STOP_LIMIT)
PENDING_TYPES = (
    C.ORDER_TYPE_BUY_LIMIT,
    C.ORDER_TYPE_SELL_LIMIT,
    C.ORDER_TYPE_BUY_STOP,
    C.ORDER_TYPE_SELL_STOP,
    C.ORDER_TYPE_BUY_STOP_LIMIT,
    C.ORDER_TYPE_SELL_STOP_LIMIT,
)
IntrabarPolicy = Literal["pessimistic", "ohlc_path"]
TickMode = Literal["bars", "every_tick", "real_ticks"]


class PriceSource(Protocol):
    """What the server needs from market data (implemented by terminal.market.MarketData)."""

    m1: dict[str, Bars]
    specs: dict[str, SymbolSpec]
    spread: dict[str, np.ndarray]

    def index_at(self, symbol: str, t: int) -> int: ...

    def bid_before(self, symbol: str, t: int) -> float: ...

    def quote_at(self, symbol: str, t: int) -> tuple[float, float, int, int] | None: ...

    def tick_path(self, symbol: str, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

    def quotes_at(
        self, symbol: str, times: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...


@dataclass(slots=True)
class Position:
    ticket: int
    identifier: int
    symbol: str
    type: int  # POSITION_TYPE_BUY 0 / SELL 1
    volume: float
    price_open: float
    sl: float
    tp: float
    time: int
    time_update: int
    magic: int = 0
    comment: str = ""
    reason: int = C.POSITION_REASON_EXPERT
    swap: float = 0.0  # accumulated, realised in the closing deal (spec 5.10)
    strategy: str = ""
    signal_id: int | None = None
    cursor: int = 0  # next bar index of the trigger data to scan for SL/TP
    no_gap_at_cursor: bool = False  # opened inside bar `cursor`: its open price came before the fill
    tick_from: int = 0  # tick modes: the next tick to scan has time >= tick_from (UTC ns)


@dataclass(slots=True)
class Order:
    ticket: int
    symbol: str
    type: int
    volume_initial: float
    volume_current: float
    price_open: float
    sl: float
    tp: float
    price_stoplimit: float
    time_setup: int
    type_time: int = C.ORDER_TIME_GTC
    type_filling: int = C.ORDER_FILLING_FOK
    time_expiration: int = 0  # UTC ns, 0 = none
    state: int = C.ORDER_STATE_PLACED
    time_done: int = 0
    magic: int = 0
    position_id: int = 0
    position_by_id: int = 0
    reason: int = C.ORDER_REASON_EXPERT
    comment: str = ""
    price_done: float = 0.0
    strategy: str = ""
    signal_id: int | None = None
    cursor: int = 0
    no_gap_at_cursor: bool = False
    tick_from: int = 0


@dataclass(slots=True)
class Deal:
    ticket: int
    order: int
    time: int
    type: int
    entry: int
    reason: int
    position_id: int
    symbol: str
    volume: float
    price: float
    commission: float
    swap: float
    profit: float
    balance: float
    comment: str
    strategy: str
    signal_id: int | None
    magic: int = 0
    fee: float = 0.0


@dataclass
class ServerSettings:
    currency: str = "USD"
    leverage: int = 100
    deposit: float = 10_000.0
    hedging: bool = True
    commission_enabled: bool = True
    margin_call: float = 50.0  # margin level % (or money with stop_out_mode "money")
    stop_out: float = 30.0
    stop_out_mode: Literal["percent", "money"] = "percent"
    slippage_model: Literal["none", "fixed", "random"] = "none"
    slippage_points: int = 0
    intrabar: IntrabarPolicy = "pessimistic"
    tick_mode: TickMode = "bars"
    seed: int = 42


@dataclass
class TickStream:
    """Ticks of one symbol as arrays (time UTC ns, bid, ask), sorted by time."""

    time: np.ndarray
    bid: np.ndarray
    ask: np.ndarray


NEVER_NS = 2**63 - 1  # a time after every other
