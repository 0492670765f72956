"""The strategy API: subclass Strategy, declare Params, implement generate_signals."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mt5tester.model.signal import Signal
from mt5tester.model.timeframe import Timeframe

Category = Literal["technical", "smc", "ml", "fusion"]


class StrategyContext:
    """What a strategy may read besides its ``df``.

    ``now``: the simulated time (UTC ns) of the decision point, the first tick after the bar closed.
    ``mt5``: the simulated terminal as a ``MetaTrader5``-shaped module (other timeframes and symbols,
    account, positions): it holds nothing after ``now``. Orders sent through it are the strategy's and
    meet the coordinator as ``backtest.strategy_orders`` says (reviewed like signals, or refused).
    """

    def __init__(self, run_id: str, mt5: Any = None) -> None:
        self.run_id = run_id
        self.now = 0
        self.mt5 = mt5

    def regime(self, symbol: str) -> str | None:
        """The symbol's regime label now (its last closed regime bar), or None without regime detection."""
        return None


class StrategyParams(BaseModel):
    """Base of every strategy's params model: frozen, unknown params rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Strategy:
    """Base class. A subclass sets ``category`` and ``Params`` and implements ``generate_signals``.

    ``generate_signals`` is called at each close of a ``timeframe`` bar for each of ``symbols`` with
    ``df``: the last ``warmup_bars`` *closed* bars (columns time, open, high, low, close,
    tick_volume, spread; time is the bar open in UTC). It returns a list of Signals (maybe empty).

    ``df`` is a ``pandas.DataFrame`` (index: the rows' positions in the run's series). It is built
    lazily (engine/window_frame.py): ``df["close"]``, ``df.close`` and ``len(df)`` cost microseconds,
    each column a new Series holding a copy of just these rows; any other use builds the whole frame
    once, as a copy. Nothing reachable through it holds a later bar, and writing into it (or into a
    Series taken from it) changes only that object, never a later call's df or another strategy's.
    """

    category: ClassVar[Category] = "technical"
    Params: ClassVar[type[StrategyParams]] = StrategyParams
    # "pandas": df is a DataFrame (lazy, see above); "numpy": df is a BarArrays of the same bars (plain
    # arrays, the fastest per call: no pandas object is built at all).
    data_format: ClassVar[Literal["pandas", "numpy"]] = "pandas"
    # Name of a prepare() column that is non-zero exactly on the bars where the strategy may signal:
    # the engine then calls generate_signals only on those bars (vectorised strategies run at array
    # speed). The column is proved causal by check-lookahead like any prepared value.
    signal_column: ClassVar[str | None] = None
    # True: the sign of ``signal_column`` is the whole decision at each of its bars: > 0 a market buy,
    # < 0 a market sell, of the strategy's volume, closing the strategy's opposite positions first (a
    # reversal). No ``generate_signals`` is needed, and the run can go whole inside the compiled kernel
    # (driver b, engine/kernel.py) when its other settings allow.
    column_signals: ClassVar[bool] = False
    # True: the strategy's signals depend only on the bars and market data it reads (its windows, prepared
    # columns, copy_rates, symbol_info, ticks), never on the account, positions, orders, deals or
    # on_trade. The engine may then call it at every point first (a signal pass) and run the trading
    # over its signals inside the compiled kernel (engine/signal_pass.py). Enforced: during the pass the
    # account, book, history and trading calls of its terminal stop the run with a message.
    bars_only: ClassVar[bool] = False
    # With ``column_signals``: SL / TP of each entry, in points from the fill's quote side (None: none).
    column_sl_points: ClassVar[float | None] = None
    column_tp_points: ClassVar[float | None] = None

    def __init__(
        self,
        name: str,
        params: StrategyParams,
        symbols: list[str],
        timeframe: Timeframe,
        warmup_bars: int,
        volume: float = 0.1,
    ) -> None:
        self.name = name
        self.params = params
        self.symbols = symbols
        self.timeframe = timeframe
        self.warmup_bars = warmup_bars
        self.volume = volume
        self.ctx = StrategyContext("")

    def on_start(self, ctx: Any) -> None:
        """Called once before the first bar."""

    def prepare(self, symbol: str, timeframe: Timeframe, bars: pd.DataFrame) -> pd.DataFrame | None:
        """Optional vectorised indicators, computed once before bar 1 over the whole series.

        ``bars`` has the columns of ``df`` for every bar of the run (warm-up included). Return a
        DataFrame of the same length whose columns are added to every ``df`` (row i = the value known
        when bar i closed), or None. Values must be **causal**: row i may use bars 0..i only. The
        lookahead checker (``mt5tester check-lookahead``) recomputes it on truncated data to prove it.
        """
        return None

    def on_trade(self, ctx: Any, deal: Any) -> None:
        """Called after each deal of this strategy (a terminal.server.Deal)."""

    def on_stop(self, ctx: Any) -> None:
        """Called once after the last bar."""

    def generate_signals(self, symbol: str, timeframe: Timeframe, df: pd.DataFrame) -> list[Signal]:
        if self.column_signals and self.signal_column:
            value = float(np.asarray(df[self.signal_column])[-1])
            if value == 0 or value != value:  # zero or NaN: no signal
                return []
            direction = "buy" if value > 0 else "sell"
            sl, tp = self.column_sl_points or None, self.column_tp_points or None
            return [
                Signal(symbol=symbol, direction=direction, strategy=self.name, sl_points=sl, tp_points=tp)
            ]
        raise NotImplementedError(f"{type(self).__name__}.generate_signals")


class FusionParams(StrategyParams):
    members: list[str] = Field(min_length=1, description="names of the strategies combined (trade: false)")


class FusionStrategy(Strategy):
    """Combines the signals of other configured strategies into its own.

    Members are configured with ``trade: false`` and the same timeframe; at each bar close the
    fusion strategy gets, per member, the signals it produced for the symbol (possibly none), after
    the members ran. ``generate_signals`` is not used.
    """

    category: ClassVar[Category] = "fusion"
    Params: ClassVar[type[StrategyParams]] = FusionParams

    @property
    def members(self) -> list[str]:
        return list(self.params.members)  # type: ignore[attr-defined]

    def combine(
        self, symbol: str, timeframe: Timeframe, df: Any, member_signals: dict[str, list[Signal]]
    ) -> list[Signal]:
        raise NotImplementedError(f"{type(self).__name__}.combine")

    def generate_signals(self, symbol: str, timeframe: Timeframe, df: pd.DataFrame) -> list[Signal]:
        raise TypeError("a fusion strategy is called through combine()")
