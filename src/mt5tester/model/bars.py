"""Bars as contiguous arrays: the one market-data shape every layer shares.

Times are UTC int64 nanoseconds of the bar's *open* (MT5 labels bars by open time);
prices are bid (MT5 charts FX by Bid, spec 5.1); ``spread`` is in points per bar. ``close_at`` holds
the UTC ns instant each bar closes when it was computed on the server clock (``data.resample``);
without it the bars are taken as cut on a UTC clock (M1, whose close is always open + 1 minute).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt

from mt5tester.model.timeframe import Timeframe

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]


@dataclass(frozen=True, eq=False)
class Bars:
    symbol: str
    timeframe: Timeframe
    time: I64
    open: F64
    high: F64
    low: F64
    close: F64
    tick_volume: I64
    spread: I32
    close_at: I64 | None = None

    def __post_init__(self) -> None:
        n = len(self.time)
        for name in ("open", "high", "low", "close", "tick_volume", "spread", "close_at"):
            column = getattr(self, name)
            if column is not None and len(column) != n:
                raise ValueError(f"Bars {self.symbol} {self.timeframe.name}: column {name} has wrong length")

    def __len__(self) -> int:
        return len(self.time)

    @property
    def close_time(self) -> I64:
        """UTC ns instant each bar closes and becomes visible: the start of the next period on the server
        clock (D1/W1 bars across a DST change last 23/25 h and 167/169 h, MN1 ends at the server's
        month end). Bars built by ``data.resample`` carry it; otherwise the clock is UTC."""
        if self.close_at is not None:
            return self.close_at
        if self.timeframe.is_fixed:
            return self.time + np.int64(self.timeframe.period_ns)
        months = self.time.astype("datetime64[ns]").astype("datetime64[M]") + np.timedelta64(1, "M")
        return months.astype("datetime64[ns]").astype(np.int64)

    def slice(self, start: int, stop: int) -> Bars:
        return Bars(
            self.symbol,
            self.timeframe,
            self.time[start:stop],
            self.open[start:stop],
            self.high[start:stop],
            self.low[start:stop],
            self.close[start:stop],
            self.tick_volume[start:stop],
            self.spread[start:stop],
            None if self.close_at is None else self.close_at[start:stop],
        )

    def between(self, start_ns: int, end_ns: int) -> Bars:
        """Bars whose open time lies in [start_ns, end_ns)."""
        i = int(np.searchsorted(self.time, start_ns, "left"))
        j = int(np.searchsorted(self.time, end_ns, "left"))
        return self.slice(i, j)


class BarArrays:
    """``df`` for strategies with ``data_format = "numpy"``: the same closed bars as numpy arrays
    (time is UTC ns of the bar open), plus the prepared columns in ``extra``. Each column read is a new
    copy of just these rows (as each read of the pandas form is a new Series), so nothing after the
    current bar is reachable and writing into it changes nothing else.

    A window costs a few hundred ns: it holds the shared name -> full column mapping (private: never an
    array of the window), the prepared columns' names and its rows [lo, hi)."""

    __slots__ = ("_cols", "_extra", "_hi", "_lo")

    def __init__(
        self,
        time: np.ndarray,
        open: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        tick_volume: np.ndarray,
        spread: np.ndarray,
        extra: dict[str, np.ndarray] | None = None,
    ) -> None:
        cols = {
            "time": time,
            "open": open,
            "high": high,
            "low": low,
            "close": close,
            "tick_volume": tick_volume,
            "spread": spread,
        }
        self._cols, self._extra = bar_columns(SimpleNamespace(**cols), extra)
        self._lo, self._hi = 0, len(time)

    @classmethod
    def window(cls, bars: Any, lo: int, hi: int, extra: dict[str, np.ndarray] | None = None) -> BarArrays:
        """Rows [lo, hi) of ``bars`` (any object with the bar columns) without copying anything yet."""
        cols, names = bar_columns(bars, extra)
        return cls.rows(cols, names, lo, hi)

    @classmethod
    def rows(cls, cols: dict[str, np.ndarray], extra: tuple[str, ...], lo: int, hi: int) -> BarArrays:
        """Rows [lo, hi) of the full columns ``cols`` (``bar_columns``: built once per series)."""
        return windows(cols, extra)(lo, hi)

    def __len__(self) -> int:
        return self._hi - self._lo

    def __getitem__(self, name: str) -> np.ndarray:
        """``df["close"]`` or a prepared column ``df["rsi"]``, as with the DataFrame form."""
        try:
            return self._cols[name][self._lo : self._hi].copy()
        except KeyError:
            pass
        raise KeyError(f"no column {name!r}; bar columns {BAR_COLUMNS}, prepared {sorted(self._extra)}")

    @property
    def extra(self) -> dict[str, np.ndarray]:
        return {k: self[k] for k in self._extra}

    time = property(lambda self: self["time"])
    open = property(lambda self: self["open"])
    high = property(lambda self: self["high"])
    low = property(lambda self: self["low"])
    close = property(lambda self: self["close"])
    tick_volume = property(lambda self: self["tick_volume"])
    spread = property(lambda self: self["spread"])


class _Rows(BarArrays):
    """A window: a BarArrays that ``_Rows()`` allocates in C (object's own ``__init__``; BarArrays' takes
    the columns), ~100 ns less than ``object.__new__(BarArrays)`` at every strategy call."""

    __slots__ = ()
    __init__ = object.__init__


def windows(cols: dict[str, np.ndarray], extra: tuple[str, ...]) -> Callable[[int, int], BarArrays]:
    """``window(lo, hi)``: rows [lo, hi) of the full columns ``cols`` (``bar_columns``), in one frame."""

    def window(lo: int, hi: int) -> BarArrays:
        self: BarArrays = _Rows()
        self._cols, self._extra, self._lo, self._hi = cols, extra, lo, hi
        return self

    return window


def bar_columns(
    bars: Any, extra: dict[str, np.ndarray] | None = None
) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """The name -> full column mapping a ``BarArrays`` window reads (the bar columns of ``bars``, then the
    prepared ones, first when a name is both) and the prepared columns' names."""
    cols = {name: getattr(bars, name) for name in BAR_COLUMNS}
    cols.update(extra or {})
    return cols, tuple(extra or ())


BAR_COLUMNS = ("time", "open", "high", "low", "close", "tick_volume", "spread")
