"""The trade server's settings and inputs: price source, server settings, tick streams (spec 5). The trade
records themselves (positions, orders, deals) are values in ``model.trade``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from mt5tester.model.bars import Bars
from mt5tester.model.symbol import SymbolSpec
from mt5tester.model.time import MINUTE_NS

# A symbol with no quote in the last 15 minutes is treated as closed for trading [U]: MT5 knows the
# symbol's sessions; the tester only has the quotes, and quiet minutes without a bar are normal.
MARKET_CLOSED_AFTER_NS = 15 * MINUTE_NS

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
