"""What each strategy call sees: the last ``warmup_bars`` closed bars, with its prepared columns.

Built once before bar 1: for every (strategy, symbol) the full bar series of the strategy's
timeframe as a DataFrame, plus the columns its ``prepare()`` returned (checked: same length, no clash
with the bar columns). Per call the loop hands out a window of rows [lo, hi): a lazy ``WindowFrame``
(pandas form) or ``BarArrays`` (numpy form), both serving **copies** of just those rows, so nothing
after the current bar is reachable through a view.
"""

from __future__ import annotations

import traceback
import weakref
from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd

from mt5tester.engine.window_frame import BarSource, FrameSource, WindowFrame
from mt5tester.errors import StrategyLoadError
from mt5tester.model.bars import BAR_COLUMNS, BarArrays, Bars, bar_columns, windows
from mt5tester.strategy.base import Strategy


def full_frame(bars: Bars, copy: bool = True) -> pd.DataFrame:
    """The bars as a DataFrame (time as UTC datetimes). ``copy=False``: the price columns are the bars'
    own arrays (pandas' copy-on-write copies a column before anything writes into it through a derived
    frame; see ``prepared_columns``)."""
    # int64 ns seen as datetime64[ns], then UTC: the values of pd.to_datetime(time, utc=True), without
    # its per-element parse (~1 s on 1M bars)
    time = pd.Series(np.asarray(bars.time, np.int64).view("M8[ns]"), copy=False).dt.tz_localize("UTC")
    return pd.DataFrame(
        {
            "time": time,
            "open": bars.open,
            "high": bars.high,
            "low": bars.low,
            "close": bars.close,
            "tick_volume": bars.tick_volume,
            "spread": bars.spread,
        },
        copy=copy,
    )


def prepared_columns(strategy: Strategy, symbol: str, bars: Bars) -> dict[str, np.ndarray]:
    """Run ``prepare()`` on the whole series and check its result; StrategyLoadError on any fault."""
    # No copy of the bars: prepare() gets a shallow copy of a frame over the bars' arrays; with pandas'
    # copy-on-write a write through it copies the column first (``frame`` holds a reference while
    # prepare runs), so the bars stay untouched, and a strategy that only reads costs no copy.
    frame = full_frame(bars, copy=False)
    where = f"strategy {strategy.name}: prepare({symbol}, {strategy.timeframe.name})"
    try:
        out = strategy.prepare(symbol, strategy.timeframe, frame.copy(deep=False))
    except Exception as e:
        tb = "".join(traceback.format_exception(type(e), e, e.__traceback__)[-3:]).rstrip()
        raise StrategyLoadError(f"{where} raised {type(e).__name__}: {e}\n{tb}") from e
    if out is None:
        if strategy.signal_column is not None:
            raise StrategyLoadError(f"{where} returned None but signal_column is '{strategy.signal_column}'")
        return {}
    if not isinstance(out, pd.DataFrame):
        raise StrategyLoadError(f"{where} returned {type(out).__name__}; expected a DataFrame or None")
    if len(out) != len(frame):
        raise StrategyLoadError(
            f"{where} returned {len(out)} rows for {len(frame)} bars; align it with the bars"
        )
    clash = sorted(set(out.columns) & set(BAR_COLUMNS))
    if clash:
        raise StrategyLoadError(f"{where} returned columns {clash} that clash with the bar columns")
    columns = {str(c): np.ascontiguousarray(out[c].to_numpy()) for c in out.columns}
    if strategy.signal_column is not None and strategy.signal_column not in columns:
        raise StrategyLoadError(
            f"{where}: signal_column '{strategy.signal_column}' is not among the prepared columns "
            f"{sorted(columns)}"
        )
    return columns


# One bar frame per series of bars, shared by every pandas feed on them (strategies on the same symbol
# and timeframe): built once, freed with the bars.
_BAR_SOURCES: weakref.WeakKeyDictionary[Bars, BarSource] = weakref.WeakKeyDictionary()


def bar_source(bars: Bars) -> BarSource:
    src = _BAR_SOURCES.get(bars)
    if src is None:
        src = _BAR_SOURCES[bars] = BarSource(full_frame(bars))
    return src


class StrategyFeed:
    """The df of one (strategy, symbol): DataFrame or BarArrays slices of its series.

    ``window(lo, hi)``: rows [lo, hi), built in microseconds (pandas) or a few hundred ns (numpy); each
    column a copy of those rows when first read. Made by one frame over what every window shares."""

    window: Callable[[int, int], pd.DataFrame | BarArrays]

    def __init__(self, strategy: Strategy, bars: Bars, extra: dict[str, np.ndarray]) -> None:
        self.numpy = strategy.data_format == "numpy"
        self.bars = bars
        self.extra = extra
        self._source: FrameSource | None = None
        if not self.numpy:
            extra_frame = pd.DataFrame(extra) if extra else None
            self._source = FrameSource(bar_source(bars), extra_frame)
            self.window = partial(WindowFrame.window, self._source)
        else:
            self.window = windows(*bar_columns(bars, extra))
