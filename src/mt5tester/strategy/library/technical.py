"""Technical strategies."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from mt5tester.model.bars import BarArrays
from mt5tester.model.signal import Signal
from mt5tester.model.timeframe import TF, Timeframe
from mt5tester.strategy.base import Strategy, StrategyParams
from mt5tester.strategy.library import indicators as ind


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


# ------------------------------------------------------------------------------ shared machinery
#
# The strategies below compute everything in prepare() (vectorised, causal) into a "signal" column
# (+1 buy, -1 sell, 0 nothing) and an "atr" column; generate_signals() only reads the last row, so a
# call is O(1). The lookahead checker compares these columns on truncated data as well as the signals.


class StopParams(StrategyParams):
    """Stops of the technical strategies: fixed point distances or multiples of ATR(``atr_period``).

    Each side is given one way: ``sl_points`` or ``sl_atr`` (setting ``sl_points`` alone switches
    off the default ``sl_atr``), ``tp_points`` or ``tp_atr``; null for no stop on that side.
    ATR multiples are converted to points with the symbol's point at the signal (ATR of the last
    closed bar), so they are distances from the fill price, like fixed points.
    """

    sl_points: float | None = Field(default=None, gt=0, description="stop loss distance in points")
    tp_points: float | None = Field(default=None, gt=0, description="take profit distance in points")
    sl_atr: float | None = Field(default=2.0, gt=0, description="stop loss distance in ATRs")
    tp_atr: float | None = Field(default=3.0, gt=0, description="take profit distance in ATRs")
    atr_period: int = Field(default=14, ge=1, description="ATR period (Wilder) for the ATR stops")

    @model_validator(mode="before")
    @classmethod
    def _points_replace_atr(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for side in ("sl", "tp"):
                if data.get(f"{side}_points") is not None and f"{side}_atr" not in data:
                    data[f"{side}_atr"] = None
        return data

    @model_validator(mode="after")
    def _one_kind_per_side(self) -> StopParams:
        for side in ("sl", "tp"):
            if getattr(self, f"{side}_points") is not None and getattr(self, f"{side}_atr") is not None:
                raise ValueError(f"give {side}_points or {side}_atr, not both")
        return self


class _PreparedSignalStrategy(Strategy):
    """Base of the strategies whose decision is the ``signal`` column computed in prepare().

    Subclasses implement ``_indicators(bars)`` returning a DataFrame with at least ``signal``
    (+1/-1/0) and optionally ``exit`` (True: emit "flat"); ``atr`` is added here. ``tag_columns``
    are copied into each signal's tags.
    """

    category = "technical"
    data_format = "numpy"
    tag_columns: ClassVar[tuple[str, ...]] = ()
    label: ClassVar[str] = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._points: dict[str, float] = {}
        self._exits: dict[str, bool] = {}  # per symbol: its prepared columns have "exit"

    def _indicators(self, bars: pd.DataFrame) -> pd.DataFrame:
        raise NotImplementedError

    def prepare(self, symbol: str, timeframe: Timeframe, bars: pd.DataFrame) -> pd.DataFrame:
        p = self.params
        assert isinstance(p, StopParams)
        out = self._indicators(bars)
        out["atr"] = ind.atr(bars["high"], bars["low"], bars["close"], p.atr_period).to_numpy()
        out["signal"] = out["signal"].astype(np.int8)
        # whether the call reads an exit column (``df.extra`` would copy every prepared column per call)
        self._exits[symbol] = "exit" in out.columns
        return out

    def point(self, symbol: str) -> float:
        """The symbol's point, from the terminal (cached)."""
        if symbol not in self._points:
            info = self.ctx.mt5.symbol_info(symbol)
            if info is None:
                raise RuntimeError(f"{self.name}: the terminal has no symbol {symbol}")
            self._points[symbol] = float(info.point)
        return self._points[symbol]

    def stops(self, symbol: str, atr_value: float) -> tuple[float | None, float | None] | None:
        """(sl_points, tp_points) for an entry now; None when an ATR stop is asked but ATR is unknown."""
        p = self.params
        assert isinstance(p, StopParams)
        out: list[float | None] = []
        for fixed, mult in ((p.sl_points, p.sl_atr), (p.tp_points, p.tp_atr)):
            if mult is None:
                out.append(fixed)
                continue
            if not (math.isfinite(atr_value) and atr_value > 0):
                return None
            out.append(round(mult * atr_value / self.point(symbol), 1))
        return out[0], out[1]

    def entry(
        self, symbol: str, direction: str, df: BarArrays, comment: str, tags: dict[str, Any] | None = None
    ) -> list[Signal]:
        """A market entry with this strategy's stops (none when the ATR is not known yet)."""
        stops = self.stops(symbol, float(df["atr"][-1]))
        if stops is None:
            return []
        extra = {c: tag_value(df[c][-1]) for c in self.tag_columns}
        return [
            Signal(
                symbol=symbol,
                direction=direction,
                sl_points=stops[0],
                tp_points=stops[1],
                strategy=self.name,
                comment=comment,
                tags={**extra, **(tags or {})},
            )
        ]

    def generate_signals(self, symbol: str, timeframe: Timeframe, df: BarArrays) -> list[Signal]:  # type: ignore[override]
        if len(df) == 0:
            return []
        side = int(df["signal"][-1])
        if side:
            return self.entry(symbol, "buy" if side > 0 else "sell", df, self.label)
        has_exit = self._exits.get(symbol)
        if has_exit is None:  # not prepared here (a subclass's own prepare): ask the window
            has_exit = "exit" in df.extra
        if has_exit and bool(df["exit"][-1]):
            return [Signal(symbol=symbol, direction="flat", strategy=self.name, comment=f"{self.label} exit")]
        return []


def tag_value(v: Any) -> float:
    """An indicator value for a signal's tags: 8 significant digits."""
    return float(f"{float(v):.8g}")


def _side(buy: pd.Series, sell: pd.Series) -> np.ndarray:
    """+1 where buy, -1 where sell (never both in the rules below), else 0."""
    return np.where(buy.to_numpy(), 1, np.where(sell.to_numpy(), -1, 0)).astype(np.int8)


# ---------------------------------------------------------------------------------- 1. RSI reversion


class RsiMeanReversionParams(StopParams):
    period: int = Field(default=14, ge=2, description="RSI period (Wilder)")
    oversold: float = Field(default=30.0, gt=0, lt=100, description="buy when RSI crosses up through it")
    overbought: float = Field(default=70.0, gt=0, lt=100, description="sell when RSI crosses down through it")
    exit_mid: bool = Field(default=False, description="close the positions when RSI crosses 50")
    sl_atr: float | None = Field(default=2.0, gt=0, description="stop loss distance in ATRs")
    tp_atr: float | None = Field(default=2.0, gt=0, description="take profit distance in ATRs")

    @model_validator(mode="after")
    def _levels(self) -> RsiMeanReversionParams:
        if not self.oversold < 50 < self.overbought:
            raise ValueError(f"need oversold < 50 < overbought, got {self.oversold} / {self.overbought}")
        return self


class RsiMeanReversion(_PreparedSignalStrategy):
    """RSI mean reversion.

    Idea: a market that was oversold (overbought) and starts to recover tends to revert toward its
    mean. Wilder RSI(``period``) of closes.

    Trades (at the close of bar i, on RSI of closed bars only):
    - buy when RSI crosses up through ``oversold``: ``rsi[i-1] <= oversold < rsi[i]``;
    - sell when RSI crosses down through ``overbought``: ``rsi[i-1] >= overbought > rsi[i]``;
    - each entry closes the opposite position first (exit_opposite);
    - with ``exit_mid``, a "flat" signal (closes the strategy's positions on the symbol, either side)
      when RSI crosses 50 in either direction on a bar without an entry (an entry wins on the bar).
    Stops: ``sl_atr``/``tp_atr`` x ATR(``atr_period``) (default 2 and 2) or fixed points.
    Needs ``period + 2`` bars of history before the first signal.
    """

    Params = RsiMeanReversionParams
    tag_columns = ("rsi",)
    label = "rsi reversion"

    def _indicators(self, bars: pd.DataFrame) -> pd.DataFrame:
        p = self.params
        assert isinstance(p, RsiMeanReversionParams)
        r = ind.rsi(bars["close"], p.period)
        buy = ind.cross_up(r, p.oversold)
        sell = ind.cross_down(r, p.overbought)
        out = pd.DataFrame({"rsi": r.to_numpy(), "signal": _side(buy, sell)})
        if p.exit_mid:
            mid = (ind.cross_up(r, 50.0) | ind.cross_down(r, 50.0)) & ~buy & ~sell
            out["exit"] = mid.to_numpy()
        return out


# -------------------------------------------------------------------- 2. Bollinger/Keltner breakout


class BollingerKeltnerBreakoutParams(StopParams):
    period: int = Field(default=20, ge=2, description="Bollinger and Keltner period")
    bb_k: float = Field(default=2.0, gt=0, description="Bollinger width in standard deviations")
    kc_mult: float = Field(default=1.5, gt=0, description="Keltner width in ATR(period)s")
    squeeze_lookback: int = Field(
        default=5, ge=1, description="a squeeze must have been on within this many bars before the break"
    )
    require_squeeze: bool = Field(default=True, description="false: every fresh Bollinger break trades")
    sl_atr: float | None = Field(default=2.0, gt=0, description="stop loss distance in ATRs")
    tp_atr: float | None = Field(default=4.0, gt=0, description="take profit distance in ATRs")


class BollingerKeltnerBreakout(_PreparedSignalStrategy):
    """Volatility squeeze breakout (Bollinger bands vs Keltner channel).

    Idea: quiet markets (Bollinger bands contracted *inside* the Keltner channel: a squeeze) tend to
    be followed by a directional expansion; trade the first close outside the Bollinger bands soon
    after a squeeze, in the breakout direction.

    Indicators on closed bars: Bollinger(``period``, ``bb_k``) = SMA +- k population std of closes;
    Keltner(``period``, ``kc_mult``) = EMA(period) +- kc_mult x ATR(period) (Wilder).
    ``squeeze[j]`` = ``bb_upper[j] <= kc_upper[j] and bb_lower[j] >= kc_lower[j]``.

    Exact rule at the close of bar i:
    - buy when ``close[i] > bb_upper[i]`` and ``close[i-1] <= bb_upper[i-1]`` (a fresh break) and
      ``squeeze[j]`` for some j in ``i - squeeze_lookback .. i - 1``;
    - sell when ``close[i] < bb_lower[i]`` and ``close[i-1] >= bb_lower[i-1]`` and the same squeeze
      condition;
    - with ``require_squeeze: false`` the squeeze condition is dropped (plain Bollinger breakout).
    Each entry closes the opposite position (exit_opposite). Stops: 2 x ATR SL, 4 x ATR TP by default.
    """

    Params = BollingerKeltnerBreakoutParams
    tag_columns = ("bb_upper", "bb_lower")
    label = "bb/kc breakout"

    def _indicators(self, bars: pd.DataFrame) -> pd.DataFrame:
        p = self.params
        assert isinstance(p, BollingerKeltnerBreakoutParams)
        close = bars["close"].astype(float)
        _, bb_up, bb_lo = ind.bollinger(close, p.period, p.bb_k)
        _, kc_up, kc_lo = ind.keltner(bars["high"], bars["low"], close, p.period, p.kc_mult)
        squeeze = (bb_up <= kc_up) & (bb_lo >= kc_lo)
        recent = squeeze.astype(float).rolling(p.squeeze_lookback, min_periods=1).max().shift(1) > 0
        ok = recent | (not p.require_squeeze)
        buy = ind.cross_up(close, bb_up) & ok
        sell = ind.cross_down(close, bb_lo) & ok
        return pd.DataFrame(
            {
                "bb_upper": bb_up.to_numpy(),
                "bb_lower": bb_lo.to_numpy(),
                "kc_upper": kc_up.to_numpy(),
                "kc_lower": kc_lo.to_numpy(),
                "squeeze": squeeze.to_numpy(),
                "signal": _side(buy, sell),
            }
        )


# ----------------------------------------------------------------------------- 3. Donchian trend


class DonchianAtrTrendParams(StopParams):
    period: int = Field(default=20, ge=1, description="Donchian channel length (prior bars)")
    sl_atr: float | None = Field(default=2.0, gt=0, description="stop loss distance in ATRs")
    tp_atr: float | None = Field(default=None, gt=0, description="take profit in ATRs (none: reversal)")


class DonchianAtrTrend(_PreparedSignalStrategy):
    """Donchian channel breakout trend following with an ATR stop.

    Idea: a close beyond the range of the last ``period`` bars starts a trend; ride it until the
    opposite breakout or the stop.

    At the close of bar i, with ``upper[i]`` = highest high and ``lower[i]`` = lowest low of bars
    ``i - period .. i - 1`` (the *prior* bars, not bar i):
    - buy when ``close[i] > upper[i]`` and ``close[i-1] <= upper[i-1]`` (the first close of a
      breakout run; consecutive breaking closes do not add entries);
    - sell when ``close[i] < lower[i]`` and ``close[i-1] >= lower[i-1]``;
    - each entry closes the opposite position (reversal).
    Stops: SL = ``sl_atr`` x ATR(``atr_period``) (default 2), no TP by default (exit on reversal or
    SL); no trailing.
    """

    Params = DonchianAtrTrendParams
    tag_columns = ("dc_upper", "dc_lower")
    label = "donchian breakout"

    def _indicators(self, bars: pd.DataFrame) -> pd.DataFrame:
        p = self.params
        assert isinstance(p, DonchianAtrTrendParams)
        upper, lower = ind.donchian(bars["high"], bars["low"], p.period)
        upper, lower = upper.shift(1), lower.shift(1)
        close = bars["close"].astype(float)
        buy = ind.cross_up(close, upper)
        sell = ind.cross_down(close, lower)
        return pd.DataFrame(
            {"dc_upper": upper.to_numpy(), "dc_lower": lower.to_numpy(), "signal": _side(buy, sell)}
        )


# ------------------------------------------------------------------------------------- 4. MACD


class MacdParams(StopParams):
    fast: int = Field(default=12, ge=1, description="fast EMA period")
    slow: int = Field(default=26, ge=2, description="slow EMA period")
    signal: int = Field(default=9, ge=1, description="signal line EMA period")
    zero_filter: bool = Field(
        default=False, description="buy only with MACD above zero, sell only below (trade with the trend)"
    )

    @model_validator(mode="after")
    def _order(self) -> MacdParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")
        return self


class Macd(_PreparedSignalStrategy):
    """MACD signal-line cross.

    Idea: momentum turns when the MACD line (EMA(fast) - EMA(slow) of closes) crosses its signal
    line (EMA(signal) of the MACD line).

    At the close of bar i:
    - buy when MACD crosses above the signal line: ``macd[i-1] <= sig[i-1]`` and ``macd[i] > sig[i]``;
    - sell when it crosses below: ``macd[i-1] >= sig[i-1]`` and ``macd[i] < sig[i]``;
    - with ``zero_filter``: buys only when ``macd[i] > 0``, sells only when ``macd[i] < 0``;
    - each entry closes the opposite position (reversal).
    Stops: 2 x ATR SL, 3 x ATR TP by default. Needs about ``slow + signal`` bars of history.
    """

    Params = MacdParams
    tag_columns = ("macd", "macd_signal")
    label = "macd cross"

    def _indicators(self, bars: pd.DataFrame) -> pd.DataFrame:
        p = self.params
        assert isinstance(p, MacdParams)
        line, sig, hist = ind.macd(bars["close"], p.fast, p.slow, p.signal)
        buy = ind.cross_up(line, sig)
        sell = ind.cross_down(line, sig)
        if p.zero_filter:
            buy &= line > 0
            sell &= line < 0
        return pd.DataFrame(
            {
                "macd": line.to_numpy(),
                "macd_signal": sig.to_numpy(),
                "macd_hist": hist.to_numpy(),
                "signal": _side(buy, sell),
            }
        )


# ------------------------------------------------------------------ 5. higher-timeframe trend filter


class HigherTimeframeTrendFilterParams(StopParams):
    htf: TF = Field(default=Timeframe.H4, description="higher timeframe of the trend filter")
    htf_period: int = Field(default=50, ge=1, description="EMA period on the higher-timeframe closes")
    htf_bars: int = Field(
        default=300, ge=2, description="closed higher-timeframe bars the EMA is computed over"
    )
    entry: Literal["cross", "pullback"] = Field(
        default="cross",
        description="cross: EMA(fast) crosses EMA(slow); pullback: close crosses back over EMA(fast)",
    )
    fast: int = Field(default=10, ge=1, description="fast EMA period on the strategy's timeframe")
    slow: int = Field(default=30, ge=2, description="slow EMA period on the strategy's timeframe")

    @model_validator(mode="after")
    def _periods(self) -> HigherTimeframeTrendFilterParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")
        if self.htf_bars < self.htf_period:
            raise ValueError(f"htf_bars ({self.htf_bars}) must be at least htf_period ({self.htf_period})")
        return self


class HigherTimeframeTrendFilter(_PreparedSignalStrategy):
    """Entries on the strategy's timeframe, only in the direction of the higher-timeframe trend.

    Idea: take the faster timeframe's entries only with the slower timeframe's trend.

    Entry candidates (strategy timeframe, e.g. H1, computed in prepare() on closed bars):
    - ``entry: cross``: EMA(``fast``) crosses above EMA(``slow``) -> buy candidate, below -> sell;
    - ``entry: pullback``: with EMA(fast) above EMA(slow), the close crosses back above EMA(fast) ->
      buy candidate; with EMA(fast) below EMA(slow), the close crosses back below EMA(fast) -> sell
      candidate.
    Trend (higher timeframe ``htf``, e.g. H4): read at the candidate bar from the terminal with
    ``copy_rates_from_pos(symbol, htf, 1, htf_bars)``: position 1 onward are the **closed** HTF
    bars only (position 0, the forming bar, is never read), aligned in server time exactly as the
    terminal's HTF chart. Up when the last closed HTF close is above the EMA(``htf_period``) of
    those closes (seeded at the oldest of the ``htf_bars``), down when below.
    Trades a buy candidate only in an up trend, a sell candidate only in a down trend; nothing
    while fewer than ``htf_period`` closed HTF bars exist. Each entry closes the opposite position.
    An H1 bar closing at 10:00 thus sees the H4 bar 04:00-08:00, never the one forming 08:00-12:00.
    Stops: 2 x ATR SL, 3 x ATR TP by default. ``htf`` must be longer than the strategy's timeframe.

    Why the terminal and not prepare(): prepare() sees only the strategy's bars in UTC, not the
    server time zone the terminal aligns H4/D1 bars to; the terminal's closed bars are exactly
    what an MT5 expert would read with ``iClose(htf, 1)``. The query runs only on candidate bars
    (one ``copy_rates_from_pos`` and an EMA over ``htf_bars`` values), other calls are O(1).
    """

    Params = HigherTimeframeTrendFilterParams
    tag_columns = ("ema_fast", "ema_slow")
    label = "htf trend filter"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        p = self.params
        assert isinstance(p, HigherTimeframeTrendFilterParams)
        if p.htf.minutes <= self.timeframe.minutes:
            raise ValueError(
                f"htf {p.htf.name} must be a longer timeframe than the strategy's {self.timeframe.name}"
            )

    def _indicators(self, bars: pd.DataFrame) -> pd.DataFrame:
        p = self.params
        assert isinstance(p, HigherTimeframeTrendFilterParams)
        close = bars["close"].astype(float)
        fast, slow = ind.ema(close, p.fast), ind.ema(close, p.slow)
        if p.entry == "cross":
            buy, sell = ind.cross_up(fast, slow), ind.cross_down(fast, slow)
        else:
            buy = ind.cross_up(close, fast) & (fast > slow)
            sell = ind.cross_down(close, fast) & (fast < slow)
        return pd.DataFrame(
            {"ema_fast": fast.to_numpy(), "ema_slow": slow.to_numpy(), "signal": _side(buy, sell)}
        )

    def htf_trend(self, symbol: str) -> tuple[int, float, float]:
        """(+1 up / -1 down / 0 unknown, last closed HTF close, its EMA) from closed HTF bars only."""
        p = self.params
        assert isinstance(p, HigherTimeframeTrendFilterParams)
        rates = self.ctx.mt5.copy_rates_from_pos(symbol, int(p.htf), 1, p.htf_bars)
        if rates is None or len(rates) < p.htf_period:
            return 0, math.nan, math.nan
        closes = np.asarray(rates["close"], dtype=float)
        last, mean = float(closes[-1]), float(ind.ema(closes, p.htf_period).iloc[-1])
        return int(np.sign(last - mean)), last, mean

    def generate_signals(self, symbol: str, timeframe: Timeframe, df: BarArrays) -> list[Signal]:  # type: ignore[override]
        if len(df) == 0:
            return []
        side = int(df["signal"][-1])
        if not side:
            return []
        trend, htf_close, htf_ema = self.htf_trend(symbol)
        if trend != side:
            return []
        p = self.params
        assert isinstance(p, HigherTimeframeTrendFilterParams)
        tags = {"htf": p.htf.name, "htf_close": htf_close, "htf_ema": tag_value(htf_ema)}
        return self.entry(
            symbol, "buy" if side > 0 else "sell", df, f"{p.entry} with {p.htf.name} trend", tags
        )
