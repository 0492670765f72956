"""prepare() gets the bars as a frame over their own arrays (no copy of the bars per strategy): a write
through that frame never reaches the bars (pandas' copy-on-write copies the column first)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mt5tester.engine.feed import full_frame, prepared_columns
from mt5tester.model.bars import Bars
from mt5tester.model.timeframe import Timeframe
from mt5tester.strategy.base import Strategy, StrategyParams


def _bars(n: int = 5) -> Bars:
    t = 1_704_067_200_000_000_000 + np.arange(n, dtype=np.int64) * 60_000_000_000
    px = 1.1 + np.arange(n) * 1e-4
    return Bars("EURUSD", Timeframe.M1, t, px, px + 2e-4, px - 2e-4, px + 1e-4, np.ones(n, np.int64),
                np.zeros(n, np.int32))  # fmt: skip


class Scribbler(Strategy):
    """A prepare() that writes into the frame it was given, every way pandas allows."""

    def prepare(self, symbol: str, timeframe: Timeframe, bars: pd.DataFrame) -> pd.DataFrame | None:
        bars.loc[0, "close"] = -1.0
        bars["open"] *= 2
        bars.iloc[1, bars.columns.get_loc("high")] = 99.0
        return pd.DataFrame({"seen": bars["close"].to_numpy()}, index=bars.index)


def test_prepare_writes_into_its_frame_leave_the_bars_untouched() -> None:
    bars = _bars()
    before = {k: getattr(bars, k).copy() for k in ("time", "open", "high", "low", "close")}
    strategy = Scribbler("s", StrategyParams(), ["EURUSD"], Timeframe.M1, 3)
    out = prepared_columns(strategy, "EURUSD", bars)
    assert out["seen"][0] == -1.0  # the strategy saw its own write
    for k, v in before.items():
        assert np.array_equal(getattr(bars, k), v), k


def test_full_frame_time_is_utc_datetimes_of_the_bars() -> None:
    bars = _bars()
    frame = full_frame(bars)
    expected = pd.to_datetime(bars.time, utc=True)
    assert str(frame["time"].dtype) == "datetime64[ns, UTC]"
    assert frame["time"].tolist() == list(expected)
    assert full_frame(bars, copy=False).equals(frame)
