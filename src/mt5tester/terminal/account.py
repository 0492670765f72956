"""Prices the trade server reads: M1 bid bars per symbol with a spread in points per bar."""

from __future__ import annotations

import numpy as np

from mt5tester.errors import DataError
from mt5tester.model.bars import Bars
from mt5tester.model.symbol import SymbolSpec


class Market:
    """M1 bid bars per symbol with spreads in points: the prices the account trades at."""

    def __init__(self, m1: dict[str, Bars], specs: dict[str, SymbolSpec], fixed_spread: int | None) -> None:
        self.m1 = m1
        self.specs = specs
        self.spread: dict[str, np.ndarray] = {}
        for sym, bars in m1.items():
            spec = specs[sym]
            if fixed_spread is not None:
                sp = np.full(len(bars), fixed_spread, dtype=np.int32)
            elif len(bars) and int(bars.spread.max()) > 0:
                sp = bars.spread.astype(np.int32)
            else:  # data without spread: the symbol's configured spread (execution.spread)
                sp = np.full(len(bars), spec.spread, dtype=np.int32)
            self.spread[sym] = sp

    def index_at(self, symbol: str, t: int) -> int:
        """Index of the first M1 bar opening at or after t (the next tick after t)."""
        return int(np.searchsorted(self.m1[symbol].time, t, "left"))

    def bid_before(self, symbol: str, t: int) -> float:
        """Last known bid strictly before t (close of the last M1 bar that opened before t)."""
        i = self.index_at(symbol, t) - 1
        if i < 0:
            raise DataError(f"{symbol}: no price before {np.datetime64(t, 'ns')}")
        return float(self.m1[symbol].close[i])
