"""Smart Money Concepts (SMC) strategies and their causal building blocks.

Building blocks (pure, vectorised functions of bar arrays; row ``j`` of every result is what is
known when bar ``j`` closes, computed from bars ``0..j`` only):

- ``swings``: swing highs/lows, each usable only from its **confirmation** bar ``pivot + right``;
- ``market_structure``: breaks of the last confirmed swing by a close, labelled BOS (with the
  current structure) or CHoCH (the first break against it), and the resulting trend;
- ``order_blocks``: the last opposite-colour candle before a structural break, valid until mitigated;
- ``fair_value_gaps``: three-candle imbalances, known at the close of the third candle, with
  retest / fill tracking;
- ``liquidity_sweeps``: the first trade beyond a confirmed swing, closed back inside on the same bar;
- ``atr``: Wilder's average true range (used for stop buffers and gap filters).

Sequential "until the next event" state is expressed with group ids (cumulative event counts) and
grouped cumulative operations, so no Python loop runs over the bars.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import Field

from mt5tester.model.bars import BarArrays
from mt5tester.model.signal import Signal
from mt5tester.model.timeframe import Timeframe
from mt5tester.strategy.base import Strategy, StrategyParams

ArrayLike = npt.ArrayLike


# ---------------------------------------------------------------------------------- building blocks
def _series(x: ArrayLike) -> pd.Series:
    return pd.Series(np.asarray(x, dtype=float))


def _first_in_group(cond: pd.Series, group: pd.Series) -> pd.Series:
    """True on the first bar of each group where ``cond`` holds (and only there)."""
    c = cond.fillna(False).astype(bool)
    return c & (c.astype(np.int64).groupby(group).cumsum() == 1)


def _seen_in_group(cond: pd.Series, group: pd.Series) -> pd.Series:
    """True from the first bar of the group where ``cond`` holds onwards (within the group)."""
    c = cond.fillna(False).astype(bool)
    return c.astype(np.int64).groupby(group).cummax().astype(bool)


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> pd.Series:
    """Wilder's ATR: true range smoothed with alpha 1/period (recursive, so causal); NaN for the
    first ``period - 1`` bars. Row j uses bars 0..j."""
    h, lo, c = _series(high), _series(low), _series(close)
    prev = c.shift(1)
    tr = pd.concat([h - lo, (h - prev).abs(), (lo - prev).abs()], axis=1).max(axis=1)
    return tr.ewm(alpha=1.0 / period, adjust=False, min_periods=period).mean()


def swings(high: ArrayLike, low: ArrayLike, left: int = 3, right: int = 3) -> pd.DataFrame:
    """Swing highs and lows indexed by their confirmation bar.

    A swing high at bar ``i`` has ``high[i]`` strictly greater than each of the ``left`` highs
    before it and the ``right`` highs after it (equal highs make no swing). It can only be known
    once bar ``i + right`` has closed, so it is reported at ``j = i + right`` and never before.

    Columns (row j = known at the close of bar j):
      ``swing_high_new``  a swing high (pivot at bar ``j - right``) is confirmed at bar j;
      ``swing_high``      price of the latest swing high confirmed at or before j (NaN before any);
      ``swing_high_id``   how many swing highs were confirmed up to j (0 = none yet);
      ``swing_low_new``, ``swing_low``, ``swing_low_id``: the same for swing lows (strictly lower).
    """
    if left < 1 or right < 1:
        raise ValueError(f"left and right must be >= 1, got {left}, {right}")
    out: dict[str, pd.Series] = {}
    for name, s, sign in (("swing_high", _series(high), 1.0), ("swing_low", _series(low), -1.0)):
        v = s * sign  # a swing low is a swing high of -low
        pivot = v.shift(right)  # the candidate bar j - right
        before = v.shift(right + 1).rolling(left, min_periods=left).max()  # bars j-right-left .. j-right-1
        after = v.rolling(right, min_periods=right).max()  # bars j-right+1 .. j (all closed at j)
        new = (pivot > before) & (pivot > after)
        out[f"{name}_new"] = new
        out[name] = (pivot * sign).where(new).ffill()
        out[f"{name}_id"] = new.astype(np.int64).cumsum()
    return pd.DataFrame(out)


def market_structure(close: ArrayLike, sw: pd.DataFrame) -> pd.DataFrame:
    """Breaks of structure from closes against the last **confirmed** swings (``sw`` from ``swings``).

    A break up at bar j is the first close above the latest confirmed swing high (each swing high
    can be broken once; a newly confirmed swing high replaces it); a break down likewise below the
    latest confirmed swing low. Known at the close of bar j. A bar breaking both ways (only
    possible when the swing high lies below the swing low) counts as neither.

    The trend is the direction of the latest break (0 before the first). A break in the direction
    of the trend before it (or the very first break) is a BOS; a break against it is a CHoCH.

    Columns: ``break_up``, ``break_down``, ``bos_up``, ``bos_down``, ``choch_up``, ``choch_down``
    (bool), ``trend`` (+1 / -1 / 0, after bar j).
    """
    c = _series(close)
    up = _first_in_group(c > sw["swing_high"], sw["swing_high_id"])
    down = _first_in_group(c < sw["swing_low"], sw["swing_low_id"])
    both = up & down
    up, down = up & ~both, down & ~both
    event = pd.Series(np.where(up, 1.0, np.where(down, -1.0, np.nan)))
    trend = event.ffill().fillna(0.0).astype(np.int64)
    prev = trend.shift(1, fill_value=0)
    return pd.DataFrame(
        {
            "break_up": up,
            "break_down": down,
            "bos_up": up & (prev >= 0),
            "bos_down": down & (prev <= 0),
            "choch_up": up & (prev < 0),
            "choch_down": down & (prev > 0),
            "trend": trend,
        }
    )


def order_blocks(
    open_: ArrayLike,
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    break_up: ArrayLike,
    break_down: ArrayLike,
    max_age: int = 10,
) -> pd.DataFrame:
    """Order blocks created by structural breaks, tracked until mitigated.

    At a break up on bar j the bullish order block is the last bearish candle (close < open) before
    bar j, if it lies at most ``max_age`` bars before j; its zone is that candle's [low, high]. It
    is created (known) at the close of bar j. It stays valid until mitigated: the first later bar
    (> j) whose low reaches the zone's high. A newer bullish OB replaces the current one. Bearish
    OBs mirror this (last bullish candle before a break down; mitigated when a high reaches its low).

    Columns: ``bull_ob_new`` (bool: created at j), ``bull_ob_top``/``bull_ob_bottom`` (zone of the
    latest bullish OB while valid at the close of j, NaN otherwise), ``bull_ob_mitigated`` (bool:
    bar j mitigated it), and the ``bear_ob_*`` mirror.
    """
    o, h, lo, c = _series(open_), _series(high), _series(low), _series(close)
    idx = pd.Series(np.arange(len(c), dtype=float))
    out: dict[str, pd.Series] = {}
    for side, brk, candle, hit_col, edge_is_top in (
        ("bull", break_up, c < o, lo, True),
        ("bear", break_down, c > o, h, False),
    ):
        last = idx.where(candle).ffill().shift(1)  # the latest such candle strictly before j
        new = pd.Series(np.asarray(brk, dtype=bool)) & ((idx - last) <= max_age)
        k = last.where(new)
        pos = k.fillna(0).astype(np.int64).to_numpy()
        top = pd.Series(np.where(new, h.to_numpy()[pos], np.nan)).ffill()
        bottom = pd.Series(np.where(new, lo.to_numpy()[pos], np.nan)).ffill()
        group = new.astype(np.int64).cumsum()
        edge = top if edge_is_top else bottom
        touch = ((hit_col <= edge) if edge_is_top else (hit_col >= edge)) & ~new & (group > 0)
        gone = _seen_in_group(touch, group)
        valid = (group > 0) & ~gone
        out[f"{side}_ob_new"] = new
        out[f"{side}_ob_top"] = top.where(valid)
        out[f"{side}_ob_bottom"] = bottom.where(valid)
        out[f"{side}_ob_mitigated"] = _first_in_group(touch, group)
    return pd.DataFrame(out)


def fair_value_gaps(high: ArrayLike, low: ArrayLike, min_size: ArrayLike | float = 0.0) -> pd.DataFrame:
    """Three-candle fair value gaps, known at the close of the third candle ``i``.

    Bullish FVG at i: ``low[i] > high[i-2]``, zone [high[i-2], low[i]]; bearish FVG at i:
    ``high[i] < low[i-2]``, zone [high[i], low[i-2]]. Gaps narrower than ``min_size`` (scalar or a
    per-bar array, e.g. a multiple of the ATR at i) are ignored. Only the latest gap per side is
    tracked (a newer one replaces it). After bar i, a bar that trades into the zone (bullish: low
    <= zone top) touches it; one that trades through it (bullish: low <= zone bottom) fills it.

    Columns (bullish shown, ``bear_fvg_*`` mirror):
      ``bull_fvg_new``     a gap is created at j;
      ``bull_fvg_top``/``bull_fvg_bottom``  zone of the latest gap while unfilled at the close of j;
      ``bull_fvg_age``     bars since its creation (0 on the creation bar);
      ``bull_fvg_retest``  bar j is the first touch of the gap and does not fill it;
      ``bull_fvg_filled``  bar j filled it.
    """
    h, lo = _series(high), _series(low)
    size = pd.Series(np.broadcast_to(np.asarray(min_size, dtype=float), (len(h),)))
    out: dict[str, pd.Series] = {}
    for side in ("bull", "bear"):
        if side == "bull":
            bottom_i, top_i = h.shift(2), lo
            new = (top_i > bottom_i) & ((top_i - bottom_i) >= size)
        else:
            bottom_i, top_i = h, lo.shift(2)
            new = (top_i > bottom_i) & ((top_i - bottom_i) >= size)
        top = top_i.where(new).ffill()
        bottom = bottom_i.where(new).ffill()
        group = new.astype(np.int64).cumsum()
        later = ~new & (group > 0)
        if side == "bull":
            touch, fill = later & (lo <= top), later & (lo <= bottom)
        else:
            touch, fill = later & (h >= bottom), later & (h >= top)
        filled = _seen_in_group(fill, group)
        open_gap = (group > 0) & ~filled
        out[f"{side}_fvg_new"] = new
        out[f"{side}_fvg_top"] = top.where(open_gap)
        out[f"{side}_fvg_bottom"] = bottom.where(open_gap)
        out[f"{side}_fvg_age"] = pd.Series(np.arange(len(h))).groupby(group).cumcount().where(group > 0, -1)
        out[f"{side}_fvg_retest"] = _first_in_group(touch, group) & ~fill
        out[f"{side}_fvg_filled"] = _first_in_group(fill, group)
    return pd.DataFrame(out)


def liquidity_sweeps(high: ArrayLike, low: ArrayLike, close: ArrayLike, sw: pd.DataFrame) -> pd.DataFrame:
    """Stop hunts of confirmed swings (``sw`` from ``swings``), known at the close of bar j.

    The liquidity above the latest confirmed swing high is taken by the first bar whose high goes
    beyond it; that bar is a sweep of the high if it closes back below the swing (a close above is
    a breakout, not a sweep). Mirror for swing lows. Each swing is taken once.

    Columns: ``sweep_high`` / ``sweep_low`` (bool), ``sweep_high_level`` / ``sweep_low_level``
    (the swept swing price on sweep bars, NaN elsewhere).
    """
    h, lo, c = _series(high), _series(low), _series(close)
    sh, sl = sw["swing_high"], sw["swing_low"]
    take_high = _first_in_group(h > sh, sw["swing_high_id"])
    take_low = _first_in_group(lo < sl, sw["swing_low_id"])
    sweep_high = take_high & (c < sh)
    sweep_low = take_low & (c > sl)
    return pd.DataFrame(
        {
            "sweep_high": sweep_high,
            "sweep_high_level": sh.where(sweep_high),
            "sweep_low": sweep_low,
            "sweep_low_level": sl.where(sweep_low),
        }
    )


# ---------------------------------------------------------------------------------- strategies
class SMCParams(StrategyParams):
    swing_left: int = Field(default=3, ge=1, description="bars left of a swing pivot that must be lower")
    swing_right: int = Field(
        default=3, ge=1, description="bars right of a swing pivot; the swing is known only after them"
    )
    rr: float | None = Field(
        default=2.0, gt=0, description="take profit at rr x the stop distance; None: no take profit"
    )
    atr_period: int = Field(default=14, ge=1, description="ATR period (Wilder) for the stop buffer")
    sl_buffer_atr: float = Field(default=0.1, ge=0, description="stop placed this many ATRs beyond its level")


class _SMCStrategy(Strategy):
    """Shared plumbing: prepare() builds the columns, generate_signals() reads the last row."""

    category = "smc"
    Params = SMCParams
    data_format = "numpy"

    def _p(self) -> SMCParams:
        p = self.params
        assert isinstance(p, SMCParams)
        return p

    def _base(self, bars: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        p = self._p()
        sw = swings(bars["high"], bars["low"], p.swing_left, p.swing_right)
        ms = market_structure(bars["close"], sw)
        return sw, ms

    def _atr(self, bars: pd.DataFrame) -> pd.Series:
        return atr(bars["high"], bars["low"], bars["close"], self._p().atr_period)

    def _buffer(self, df: BarArrays) -> float:
        """The stop buffer at the last bar: ``sl_buffer_atr`` x ATR (NaN while the ATR warms up, which
        suppresses signals; exactly 0 when ``sl_buffer_atr`` is 0)."""
        k = self._p().sl_buffer_atr
        return k * float(df["atr"][-1]) if k > 0 else 0.0

    def _round(self, symbol: str, price: float) -> float:
        info = self.ctx.mt5.symbol_info(symbol) if self.ctx.mt5 is not None else None
        return round(price, int(info.digits)) if info is not None else price

    def _signal(
        self,
        symbol: str,
        direction: Literal["buy", "sell"],
        entry: float,
        stop: float,
        comment: str,
        **kw: object,
    ) -> Signal | None:
        """A signal with its stop at ``stop`` and take profit at rr x the risk from ``entry``; None if
        the stop is not on the loss side of the entry."""
        risk = entry - stop if direction == "buy" else stop - entry
        if not np.isfinite(risk) or risk <= 0:
            return None
        rr = self._p().rr
        tp = None
        if rr is not None:
            tp = entry + rr * risk if direction == "buy" else entry - rr * risk
            if tp <= 0:
                return None
            tp = self._round(symbol, tp)
        return Signal(
            symbol=symbol,
            direction=direction,
            sl=self._round(symbol, stop),
            tp=tp,
            strategy=self.name,
            comment=comment,
            **kw,
        )


class MarketStructureParams(SMCParams):
    entries: Literal["both", "bos", "choch"] = Field(
        default="both", description="which breaks are traded: BOS, CHoCH or both"
    )


class MarketStructure(_SMCStrategy):
    """Trade breaks of market structure in their direction.

    Idea: a close beyond the last confirmed swing high (low) shows order flow turning or continuing
    up (down). Swings are confirmed ``swing_right`` bars after their pivot (``swings``); the break
    is known at the close of the breaking bar (``market_structure``).

    Params: ``swing_left``/``swing_right`` (swing definition and confirmation delay), ``entries``
    ("both", "bos" or "choch"), ``rr`` (take profit in multiples of the risk), ``atr_period`` and
    ``sl_buffer_atr`` (stop buffer).

    When it trades: at the close of a bar that breaks up (BOS up or CHoCH up, per ``entries``) it
    buys at market with the stop ``sl_buffer_atr`` ATRs below the last confirmed swing low; a break
    down sells with the stop above the last confirmed swing high. No signal when that swing is not
    on the loss side of the close. Each entry closes the opposite position (exit_opposite).
    """

    Params = MarketStructureParams

    def prepare(self, symbol: str, timeframe: Timeframe, bars: pd.DataFrame) -> pd.DataFrame:
        p = self.params
        assert isinstance(p, MarketStructureParams)
        sw, ms = self._base(bars)
        prefix = {"both": "break", "bos": "bos", "choch": "choch"}[p.entries]
        up, dn = ms[f"{prefix}_up"], ms[f"{prefix}_down"]
        return pd.DataFrame(
            {
                "ms_buy": up,
                "ms_sell": dn,
                "ms_choch": ms["choch_up"] | ms["choch_down"],
                "swing_high": sw["swing_high"],
                "swing_low": sw["swing_low"],
                "atr": self._atr(bars),
            }
        )

    def generate_signals(self, symbol: str, timeframe: Timeframe, df: BarArrays) -> list[Signal]:  # type: ignore[override]
        if len(df) == 0:
            return []
        buf = self._buffer(df)
        close = float(df.close[-1])
        kind = "choch" if bool(df["ms_choch"][-1]) else "bos"
        sig = None
        if bool(df["ms_buy"][-1]):
            sig = self._signal(symbol, "buy", close, float(df["swing_low"][-1]) - buf, f"smc {kind} up")
        elif bool(df["ms_sell"][-1]):
            sig = self._signal(symbol, "sell", close, float(df["swing_high"][-1]) + buf, f"smc {kind} down")
        return [sig] if sig is not None else []


class OrderBlockRetestParams(SMCParams):
    ob_max_age: int = Field(
        default=10, ge=1, description="the OB candle must lie at most this many bars before the break"
    )
    include_choch: bool = Field(default=True, description="also use OBs of CHoCH breaks, not only BOS")


class OrderBlockRetest(_SMCStrategy):
    """Enter on the retest of the order block that launched a break of structure.

    Idea: the last bearish candle before an up-move that broke structure marks where large orders
    were filled; price often returns to it. The OB is created at the close of the breaking bar
    (``order_blocks``; swings confirmed ``swing_right`` bars after their pivot).

    Params: ``swing_left``/``swing_right``, ``ob_max_age`` (OB candle at most this many bars before
    the break), ``include_choch`` (CHoCH breaks too, else BOS only), ``rr``, ``atr_period``,
    ``sl_buffer_atr``.

    When it trades: at the close of a break up with a bullish OB whose high is below the close, it
    places a buy **limit** at the OB high (the zone edge nearest price), stop ``sl_buffer_atr`` ATRs
    below the OB low, take profit ``rr`` x risk from the limit price; a break down mirrors this with
    a sell limit at the bearish OB low. The pending order fills on the first retest of the zone,
    which is exactly when the OB counts as mitigated; Signals carry no expiry, so an unfilled order
    stays pending.
    """

    Params = OrderBlockRetestParams

    def prepare(self, symbol: str, timeframe: Timeframe, bars: pd.DataFrame) -> pd.DataFrame:
        p = self.params
        assert isinstance(p, OrderBlockRetestParams)
        _, ms = self._base(bars)
        up = ms["break_up"] if p.include_choch else ms["bos_up"]
        dn = ms["break_down"] if p.include_choch else ms["bos_down"]
        ob = order_blocks(bars["open"], bars["high"], bars["low"], bars["close"], up, dn, p.ob_max_age)
        return pd.DataFrame(
            {
                "bull_ob_new": ob["bull_ob_new"],
                "bull_ob_top": ob["bull_ob_top"],
                "bull_ob_bottom": ob["bull_ob_bottom"],
                "bear_ob_new": ob["bear_ob_new"],
                "bear_ob_top": ob["bear_ob_top"],
                "bear_ob_bottom": ob["bear_ob_bottom"],
                "atr": self._atr(bars),
            }
        )

    def generate_signals(self, symbol: str, timeframe: Timeframe, df: BarArrays) -> list[Signal]:  # type: ignore[override]
        if len(df) == 0:
            return []
        buf = self._buffer(df)
        close = float(df.close[-1])
        sig = None
        if bool(df["bull_ob_new"][-1]):
            top, bottom = float(df["bull_ob_top"][-1]), float(df["bull_ob_bottom"][-1])
            if top < close:
                sig = self._signal(
                    symbol,
                    "buy",
                    top,
                    bottom - buf,
                    "smc bull ob",
                    order_type="limit",
                    price=top,
                    tags={"ob_top": top, "ob_bottom": bottom},
                )
        elif bool(df["bear_ob_new"][-1]):
            top, bottom = float(df["bear_ob_top"][-1]), float(df["bear_ob_bottom"][-1])
            if bottom > close:
                sig = self._signal(
                    symbol,
                    "sell",
                    bottom,
                    top + buf,
                    "smc bear ob",
                    order_type="limit",
                    price=bottom,
                    tags={"ob_top": top, "ob_bottom": bottom},
                )
        return [sig] if sig is not None else []


class FairValueGapParams(SMCParams):
    min_gap_atr: float = Field(default=0.0, ge=0, description="ignore gaps narrower than this many ATRs")
    max_age: int = Field(default=30, ge=1, description="only retests within this many bars of the gap")


class FairValueGap(_SMCStrategy):
    """Enter on the first retest of an unfilled fair value gap in the trend direction.

    Idea: a three-candle imbalance (``fair_value_gaps``, known at the close of its third candle)
    left in the direction of the structure tends to be revisited and defended. The trend is the
    direction of the latest structural break (``market_structure``; swings confirmed
    ``swing_right`` bars after their pivot).

    Params: ``swing_left``/``swing_right``, ``min_gap_atr`` (minimum gap width in ATRs at its
    creation), ``max_age`` (bars), ``rr``, ``atr_period``, ``sl_buffer_atr``.

    When it trades: at the close of a bar that, while the trend is up, first trades into the latest
    bullish gap (low <= gap top) without filling it (low > gap bottom), at most ``max_age`` bars
    after the gap, it buys at market with the stop ``sl_buffer_atr`` ATRs below the gap bottom;
    mirrored for a bearish gap in a down trend.
    """

    Params = FairValueGapParams

    def prepare(self, symbol: str, timeframe: Timeframe, bars: pd.DataFrame) -> pd.DataFrame:
        p = self.params
        assert isinstance(p, FairValueGapParams)
        _, ms = self._base(bars)
        a = self._atr(bars)
        min_size = (a * p.min_gap_atr).fillna(np.inf).to_numpy() if p.min_gap_atr > 0 else 0.0
        fvg = fair_value_gaps(bars["high"], bars["low"], min_size)
        fresh_bull = fvg["bull_fvg_retest"] & (fvg["bull_fvg_age"] <= p.max_age)
        fresh_bear = fvg["bear_fvg_retest"] & (fvg["bear_fvg_age"] <= p.max_age)
        return pd.DataFrame(
            {
                "fvg_buy": fresh_bull & (ms["trend"] > 0),
                "fvg_sell": fresh_bear & (ms["trend"] < 0),
                "bull_fvg_bottom": fvg["bull_fvg_bottom"],
                "bear_fvg_top": fvg["bear_fvg_top"],
                "atr": a,
            }
        )

    def generate_signals(self, symbol: str, timeframe: Timeframe, df: BarArrays) -> list[Signal]:  # type: ignore[override]
        if len(df) == 0:
            return []
        buf = self._buffer(df)
        close = float(df.close[-1])
        sig = None
        if bool(df["fvg_buy"][-1]):
            sig = self._signal(symbol, "buy", close, float(df["bull_fvg_bottom"][-1]) - buf, "smc fvg buy")
        elif bool(df["fvg_sell"][-1]):
            sig = self._signal(symbol, "sell", close, float(df["bear_fvg_top"][-1]) + buf, "smc fvg sell")
        return [sig] if sig is not None else []


class LiquiditySweep(_SMCStrategy):
    """Fade a stop hunt of a confirmed swing.

    Idea: stops rest beyond swing highs/lows; a bar that runs them and closes back inside shows the
    move was a liquidity grab, and price tends to reverse. Swings are confirmed ``swing_right`` bars
    after their pivot (``swings``); the sweep is known at the close of the sweeping bar
    (``liquidity_sweeps``: the first bar beyond the latest confirmed swing, closing back inside).

    Params: ``swing_left``/``swing_right``, ``rr``, ``atr_period``, ``sl_buffer_atr``.

    When it trades: at the close of a sweep of a swing high it sells at market with the stop
    ``sl_buffer_atr`` ATRs above the sweep bar's high; a sweep of a swing low buys with the stop
    below the sweep bar's low. Take profit ``rr`` x risk from the close.
    """

    def prepare(self, symbol: str, timeframe: Timeframe, bars: pd.DataFrame) -> pd.DataFrame:
        sw, _ = self._base(bars)
        sweeps = liquidity_sweeps(bars["high"], bars["low"], bars["close"], sw)
        return pd.DataFrame(
            {
                "sweep_high": sweeps["sweep_high"],
                "sweep_low": sweeps["sweep_low"],
                "sweep_high_level": sweeps["sweep_high_level"],
                "sweep_low_level": sweeps["sweep_low_level"],
                "atr": self._atr(bars),
            }
        )

    def generate_signals(self, symbol: str, timeframe: Timeframe, df: BarArrays) -> list[Signal]:  # type: ignore[override]
        if len(df) == 0:
            return []
        buf = self._buffer(df)
        close = float(df.close[-1])
        sig = None
        if bool(df["sweep_high"][-1]) and not bool(df["sweep_low"][-1]):
            level = float(df["sweep_high_level"][-1])
            sig = self._signal(
                symbol, "sell", close, float(df.high[-1]) + buf, "smc sweep high", tags={"swept": level}
            )
        elif bool(df["sweep_low"][-1]) and not bool(df["sweep_high"][-1]):
            level = float(df["sweep_low_level"][-1])
            sig = self._signal(
                symbol, "buy", close, float(df.low[-1]) - buf, "smc sweep low", tags={"swept": level}
            )
        return [sig] if sig is not None else []
