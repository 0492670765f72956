"""Shared vectorised indicators: pure, causal functions of price series.

Every function takes pandas Series or numpy arrays (or lists) and returns pandas Series of the same
length (the input's index when it is a Series, else a RangeIndex). Row i uses rows 0..i only, so the
results can be returned from ``Strategy.prepare()``. Rows without enough history are NaN.

Conventions (the same as the usual charting packages; noted where MT5's built-ins differ):

- ``ema``: recursive EMA with ``alpha = 2 / (n + 1)`` seeded at the first value; NaN for the first
  ``n - 1`` rows (warm-up). MT5's iMA(MODE_EMA) also seeds at the first price.
- ``wilder``: Wilder's smoothing, ``alpha = 1 / n``, seeded with the simple mean of the first ``n``
  values (Wilder's original definition, used by ``rsi`` and ``atr``).
- ``atr``: Wilder-smoothed true range (MT5's iATR is a *simple* average of the true range).
- ``bollinger``: middle = SMA, bands = middle +- k * population standard deviation (ddof 0, as
  Bollinger and MT5's iBands).
- ``macd``: EMA(fast) - EMA(slow), signal line = EMA(signal) of it (Appel's definition; MT5's
  iMACD uses an SMA signal line).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

ArrayLike = pd.Series | np.ndarray | list[float]


def _series(x: Any) -> pd.Series:
    if isinstance(x, pd.Series):
        return x.astype(float)
    return pd.Series(np.asarray(x, dtype=float))


def _check_period(n: int, name: str = "n") -> None:
    if int(n) != n or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")


def sma(x: ArrayLike, n: int) -> pd.Series:
    """Simple moving average of the last ``n`` values (NaN until ``n`` values exist)."""
    _check_period(n)
    return _series(x).rolling(n, min_periods=n).mean()


def ema(x: ArrayLike, n: int) -> pd.Series:
    """Exponential moving average, ``alpha = 2 / (n + 1)``, seeded at the first value.

    ``ema[0] = x[0]``, ``ema[i] = alpha * x[i] + (1 - alpha) * ema[i - 1]``; the first ``n - 1``
    rows are reported as NaN (too little history to mean anything).
    """
    _check_period(n)
    s = _series(x)
    values = s.ewm(span=n, adjust=False).mean().to_numpy(copy=True)
    values[: n - 1] = np.nan  # on the array: a pandas .iloc assignment costs ~50 us per call
    return pd.Series(values, index=s.index, name=s.name)


def wilder(x: ArrayLike, n: int) -> pd.Series:
    """Wilder's smoothing: the mean of the first ``n`` values, then ``prev + (x - prev) / n``.

    Leading NaNs (e.g. the first difference) are skipped: the seed is the mean of the first ``n``
    valid values, at the row of the n-th of them.
    """
    _check_period(n)
    s = _series(x)
    valid = np.flatnonzero(s.notna().to_numpy())
    out = pd.Series(np.nan, index=s.index)
    if len(valid) < n:
        return out
    first = int(valid[0])
    seed_at = first + n - 1
    seeded = s.copy()
    seeded.iloc[:seed_at] = np.nan
    seeded.iloc[seed_at] = s.iloc[first : seed_at + 1].mean()
    return seeded.ewm(alpha=1.0 / n, adjust=False, ignore_na=True).mean()


def rsi(close: ArrayLike, n: int = 14) -> pd.Series:
    """Wilder's RSI: ``100 - 100 / (1 + avg_gain / avg_loss)`` with Wilder-smoothed gains and losses.

    First defined at row ``n`` (n changes). No losses: 100 (50 when there are no gains either).
    """
    _check_period(n)
    delta = _series(close).diff()
    gain = wilder(delta.clip(lower=0.0), n)
    loss = wilder((-delta).clip(lower=0.0), n)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 100.0 - 100.0 / (1.0 + gain / loss)
    out = out.mask((loss == 0) & (gain > 0), 100.0).mask((loss == 0) & (gain == 0), 50.0)
    return out.where(gain.notna())


def true_range(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> pd.Series:
    """``max(high - low, |high - prev close|, |low - prev close|)``; the first row is ``high - low``."""
    h, lo, c = _series(high), _series(low), _series(close)
    prev = c.shift(1)
    tr = pd.concat([h - lo, (h - prev).abs(), (lo - prev).abs()], axis=1).max(axis=1)
    tr.iloc[:1] = (h - lo).iloc[:1]
    return tr


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> pd.Series:
    """Average true range, Wilder-smoothed (first defined at row ``n - 1``)."""
    return wilder(true_range(high, low, close), n)


def bollinger(close: ArrayLike, n: int = 20, k: float = 2.0) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(middle, upper, lower): SMA(n) and +- ``k`` population standard deviations of the last n closes."""
    _check_period(n)
    c = _series(close)
    mid = c.rolling(n, min_periods=n).mean()
    sd = c.rolling(n, min_periods=n).std(ddof=0)
    return mid, mid + k * sd, mid - k * sd


def keltner(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 20, mult: float = 1.5
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(middle, upper, lower): EMA(n) of closes and +- ``mult`` x ATR(n) (Wilder)."""
    mid = ema(close, n)
    a = atr(high, low, close, n)
    return mid, mid + mult * a, mid - mult * a


def donchian(high: ArrayLike, low: ArrayLike, n: int = 20) -> tuple[pd.Series, pd.Series]:
    """(upper, lower): highest high and lowest low of the last ``n`` bars, the current one included.

    Shift by one row for the channel of the *prior* n bars (a breakout test).
    """
    _check_period(n)
    return (
        _series(high).rolling(n, min_periods=n).max(),
        _series(low).rolling(n, min_periods=n).min(),
    )


def macd(
    close: ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(macd, signal, histogram): EMA(fast) - EMA(slow), its EMA(signal), and their difference."""
    if fast >= slow:
        raise ValueError(f"fast ({fast}) must be shorter than slow ({slow})")
    _check_period(signal, "signal")
    line = ema(close, fast) - ema(close, slow)
    sig = ema(line.dropna(), signal).reindex(line.index)
    return line, sig, line - sig


def adx(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> pd.Series:
    """Wilder's ADX: Wilder-smoothed DX, DX = 100 |+DI - -DI| / (+DI + -DI)."""
    h, lo = _series(high), _series(low)
    up, down = h.diff(), -lo.diff()
    plus_dm = up.where((up > down) & (up > 0), 0.0).where(up.notna())
    minus_dm = down.where((down > up) & (down > 0), 0.0).where(down.notna())
    tr = true_range(h, lo, close).where(up.notna())
    atr_n = wilder(tr, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        plus_di = 100.0 * wilder(plus_dm, n) / atr_n
        minus_di = 100.0 * wilder(minus_dm, n) / atr_n
        dx = 100.0 * (plus_di - minus_di).abs() / (plus_di + minus_di)
    return wilder(dx.fillna(0.0).where(plus_di.notna()), n)


def _other(b: ArrayLike | float, like: pd.Series) -> pd.Series:
    if isinstance(b, int | float | np.floating | np.integer):
        return pd.Series(float(b), index=like.index)
    return _series(b).set_axis(like.index)


def cross_up(a: ArrayLike, b: ArrayLike | float) -> pd.Series:
    """True where ``a`` crosses above ``b``: ``a[i-1] <= b[i-1]`` and ``a[i] > b[i]`` (False on NaN)."""
    sa = _series(a)
    sb = _other(b, sa)
    return ((sa.shift(1) <= sb.shift(1)) & (sa > sb)).astype(bool)


def cross_down(a: ArrayLike, b: ArrayLike | float) -> pd.Series:
    """True where ``a`` crosses below ``b``: ``a[i-1] >= b[i-1]`` and ``a[i] < b[i]`` (False on NaN)."""
    sa = _series(a)
    sb = _other(b, sa)
    return ((sa.shift(1) >= sb.shift(1)) & (sa < sb)).astype(bool)
