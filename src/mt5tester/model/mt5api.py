"""The MetaTrader5 calls the engine's parts make, as a Protocol (spec 3).

Strategies, the risk coordinator and the order router talk to a terminal only through these calls, so
the same code runs on our simulated terminal (``terminal.api.SimTerminal``, checked against this
Protocol by mypy there) and on a live terminal (the real ``MetaTrader5`` module). A part that needs a
new call adds it here first; tests/test_model.py keeps this list equal to the calls the code makes.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from mt5tester.model.structs import (
    AccountInfo,
    OrderCheckResult,
    OrderSendResult,
    SymbolInfo,
    Tick,
    TradePosition,
)


class Mt5Api(Protocol):
    def last_error(self) -> tuple[int, str]: ...

    def account_info(self) -> AccountInfo | None: ...

    def positions_get(
        self, *, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[TradePosition, ...] | None: ...

    def symbol_info(self, symbol: str) -> SymbolInfo | None: ...

    def symbol_info_tick(self, symbol: str) -> Tick | None: ...

    def copy_rates_from_pos(
        self, symbol: str, timeframe: int, start_pos: int, count: int
    ) -> np.ndarray | None: ...

    def order_calc_margin(self, action: int, symbol: str, volume: float, price: float) -> float | None: ...

    def order_check(self, request: dict[str, Any]) -> OrderCheckResult | None: ...

    def order_send(self, request: dict[str, Any]) -> OrderSendResult | None: ...
