"""Reading the account and the market through a MetaTrader5-shaped object, with per-review caching.

Only the package's functions are used (``account_info``, ``positions_get``, ``symbol_info``,
``symbol_info_tick``, ``copy_rates_from_pos`` with start 1 = closed bars only, ``order_check``,
``order_calc_margin``), so the same code runs on our simulated terminal and on a live terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mt5tester.model import constants as C
from mt5tester.model.mt5api import Mt5Api
from mt5tester.risk import lots


@dataclass
class Exposure:
    """An open position, or an entry approved earlier in the same review (ticket None)."""

    ticket: int | None
    symbol: str
    strategy: str | None
    direction: int  # +1 buy, -1 sell
    volume: float
    price_current: float
    sl: float  # 0: none


class Mt5View:
    """Cached reads of one review (the market does not move during a review)."""

    def __init__(self, mt5: Mt5Api) -> None:
        self.mt5 = mt5
        self._info: dict[str, Any] = {}
        self._tick: dict[str, Any] = {}
        self._rates: dict[tuple[str, int, int], np.ndarray | None] = {}

    def info(self, symbol: str) -> Any:
        if symbol not in self._info:
            self._info[symbol] = self.mt5.symbol_info(symbol)
        return self._info[symbol]

    def tick(self, symbol: str) -> Any:
        if symbol not in self._tick:
            self._tick[symbol] = self.mt5.symbol_info_tick(symbol)
        return self._tick[symbol]

    def entry_price(self, symbol: str, direction: int) -> float | None:
        """Ask for a buy, Bid for a sell (spec 5.4); None without a quote."""
        t = self.tick(symbol)
        if t is None or t.bid <= 0:
            return None
        return float(t.ask if direction > 0 else t.bid)

    def tick_value_loss(self, symbol: str) -> float:
        """Deposit-currency value of one tick per lot on the losing side (spec 3.5, 5.8)."""
        i = self.info(symbol)
        if i is None:
            return 0.0
        return float(i.trade_tick_value_loss or i.trade_tick_value)

    def money_per_lot(self, symbol: str, distance: float) -> float:
        """Deposit-currency loss of 1 lot over a price distance: distance / tick_size * tick_value."""
        i = self.info(symbol)
        if i is None or i.trade_tick_size <= 0:
            return 0.0
        return float(lots.money_per_lot(distance, float(i.trade_tick_size), self.tick_value_loss(symbol)))

    def closed_rates(self, symbol: str, timeframe: int, count: int) -> np.ndarray | None:
        """The last ``count`` CLOSED bars (start position 1: the forming bar is never read)."""
        key = (symbol, int(timeframe), int(count))
        if key not in self._rates:
            self._rates[key] = self.mt5.copy_rates_from_pos(symbol, int(timeframe), 1, int(count))
        return self._rates[key]

    def order_check(self, symbol: str, direction: int, volume: float, price: float) -> Any:
        info = self.info(symbol)
        fill = int(info.filling_mode) if info is not None else 0
        filling = (
            C.ORDER_FILLING_FOK if fill & 1 else C.ORDER_FILLING_IOC if fill & 2 else C.ORDER_FILLING_RETURN
        )
        return self.mt5.order_check(
            {
                "action": C.TRADE_ACTION_DEAL,
                "symbol": symbol,
                "volume": float(volume),
                "type": C.ORDER_TYPE_BUY if direction > 0 else C.ORDER_TYPE_SELL,
                "price": float(price),
                "type_filling": filling,
            }
        )

    def margin(self, symbol: str, direction: int, volume: float, price: float) -> float:
        m = self.mt5.order_calc_margin(
            C.ORDER_TYPE_BUY if direction > 0 else C.ORDER_TYPE_SELL, symbol, float(volume), float(price)
        )
        return float(m or 0.0)


def round_volume(volume: float, info: Any) -> float:
    """Round DOWN to ``volume_min + k * volume_step`` (spec 5.6), clip to ``volume_max``; 0.0 below min."""
    return float(
        lots.round_volume(
            float(volume), float(info.volume_min), float(info.volume_max), float(info.volume_step)
        )
    )
