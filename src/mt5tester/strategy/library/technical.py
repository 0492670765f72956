"""Technical strategies."""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from mt5tester.model.signal import Signal
from mt5tester.model.timeframe import Timeframe
from mt5tester.strategy.base import BarArrays, Strategy, StrategyParams


class MovingAverageCrossParams(StrategyParams):
    fast: int = Field(default=10, ge=1, description="fast SMA period (bars)")
    slow: int = Field(default=30, ge=2, description="slow SMA period (bars)")
    sl_points: float | None = Field(default=300, gt=0, description="stop loss distance in points")
    tp_points: float | None = Field(default=600, gt=0, description="take profit distance in points")

    @model_validator(mode="after")
    def _order(self) -> MovingAverageCrossParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")
        return self


class MovingAverageCross(Strategy):
    """Simple moving-average cross.

    Idea: follow the trend when the fast SMA of closes crosses the slow one. Buys when fast
    crosses above slow on the last closed bar, sells when it crosses below; each entry closes
    the opposite position first. SL/TP at fixed point distances from the fill price.
    Needs ``slow + 1`` closed bars.
    """

    category = "technical"
    Params = MovingAverageCrossParams
    data_format = "numpy"

    def generate_signals(self, symbol: str, timeframe: Timeframe, df: BarArrays) -> list[Signal]:  # type: ignore[override]
        p = self.params
        assert isinstance(p, MovingAverageCrossParams)
        close = df.close
        if len(close) < p.slow + 1:
            return []
        fast_now, fast_prev = close[-p.fast :].mean(), close[-p.fast - 1 : -1].mean()
        slow_now, slow_prev = close[-p.slow :].mean(), close[-p.slow - 1 : -1].mean()
        diff_now, diff_prev = fast_now - slow_now, fast_prev - slow_prev
        if np.sign(diff_now) == np.sign(diff_prev) or diff_now == 0:
            return []
        direction = "buy" if diff_now > 0 else "sell"
        return [
            Signal(
                symbol=symbol,
                direction=direction,
                sl_points=p.sl_points,
                tp_points=p.tp_points,
                strategy=self.name,
                comment=f"sma{p.fast}/{p.slow} cross",
            )
        ]
