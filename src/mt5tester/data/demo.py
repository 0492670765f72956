"""Deterministic synthetic M1 market data for the demo and the tests.

The real data in ``shared/data`` may not be redistributed, so the demo runs on bars made here. They
imitate what matters to a backtest (see ``shared/data/README.md``):

* the FX trading week: first bar Sunday 22:00 UTC, last bar Friday 21:59 UTC, no Saturday bars.
  XAUUSD (``daily_break``) pauses 21:00-21:59 UTC every day and opens on Sunday at 23:00 UTC.
  **Simplification**: no DST. The real week opens at 21:00 UTC in the US summer; here it is always
  the winter schedule (and the XAUUSD break is always 21:00-22:00 UTC);
* intraday volatility by session (Asia quiet, London and New York busy, their overlap busiest) times a
  slowly varying daily volatility factor;
* regimes: a Markov chain over range / up-trend / down-trend stretches lasting hours to days. Trends
  carry a drift of 0.5-1.3 daily sigmas per day; a range stretch is pulled back towards the level where
  it began (a partial Brownian bridge); the trend direction leans against the distance from the start
  price, so long series do not wander off;
* bid prices rounded to the symbol's digits, opens equal to the previous close give or take a point,
  gaps after weekends and breaks, ~0.1 % of quiet-hour minutes missing, tick volume that follows
  activity, spreads in points that widen 3-5x for the 15 minutes after the 22:00 UTC rollover.

Determinism: the generator for ``(seed, symbol)`` is ``numpy.random.default_rng`` seeded from a SHA-256
of both, and the arithmetic after the draws uses only IEEE-exact operations (+ - * / sqrt, sequential
cumulative sums/products, rint), no libm transcendental functions whose last bit may differ between
machines. Same inputs and numpy version, same bytes.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mt5tester.data.store import m1_table
from mt5tester.errors import DataError
from mt5tester.model.bars import Bars
from mt5tester.model.time import MINUTE_NS
from mt5tester.model.timeframe import Timeframe

GENERATOR_VERSION = "1"
SOURCE = "mt5tester synthetic demo"

_F64 = npt.NDArray[np.float64]
_I64 = npt.NDArray[np.int64]

_MIN_PER_DAY = 1440
_MIN_PER_WEEK = 7 * _MIN_PER_DAY
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday; Monday = 0.
_FX_WEEK_CLOSE = 4 * _MIN_PER_DAY + 22 * 60  # Friday 22:00, minutes after Monday 00:00 UTC
_FX_WEEK_OPEN = 6 * _MIN_PER_DAY + 22 * 60  # Sunday 22:00
_METAL_WEEK_OPEN = 6 * _MIN_PER_DAY + 23 * 60  # Sunday 23:00
_METAL_BREAK = (21 * 60, 22 * 60)  # daily, minutes of the UTC day, end exclusive
_ROLLOVER = 22 * 60  # 22:00 UTC = 17:00 New York, the FX day boundary
_ROLLOVER_MINUTES = 15

_TRADING_MINUTES_PER_YEAR = 260 * _MIN_PER_DAY

# Relative volatility per UTC hour, before normalisation. Sydney/Tokyo 22-07 quiet, London from 07,
# London/New York overlap 12-16 busiest, New York afternoon fading into the rollover.
_HOURLY_ACTIVITY = (
    0.55, 0.60, 0.60, 0.55, 0.50, 0.50, 0.65, 0.95,  # 00-07
    1.25, 1.20, 1.10, 1.05, 1.35, 1.60, 1.70, 1.55,  # 08-15
    1.20, 0.95, 0.85, 0.75, 0.60, 0.45, 0.40, 0.50,  # 16-23
)  # fmt: skip
_ASIA_HOURS = (22, 23, 0, 1, 2, 3, 4, 5, 6)
_QUIET_HOURS = (20, 21, 22, 23, 0, 1, 2, 3, 4, 5, 6)

# Regime chain (durations in trading minutes).
_RANGE, _UP, _DOWN = 0, 1, 2
_RANGE_MINUTES = (240, 2880)
_TREND_MINUTES = (360, 7200)
_TREND_TO_RANGE = 0.6
_RANGE_KEEP = 0.25  # share of a range stretch's random walk left after the pull-back
_TREND_STRENGTH = (0.3, 0.9)  # drift in daily sigmas per day
_NOISE_SHARE = 0.9  # noise sigma / target sigma: the trends supply the rest of the realised volatility

_MISSING_PROB = 0.001


@dataclass(frozen=True)
class DemoSymbol:
    """What the generator needs to know about a symbol."""

    name: str
    start_price: float
    digits: int
    spread_points: int  # typical spread in London hours, in points
    annual_vol: float  # annualised volatility of returns, e.g. 0.07 = 7 %
    ticks_per_minute: float  # tick volume of an average-activity M1 bar
    asia_activity: float = 1.0  # multiplies the Asian-hours activity (JPY, AUD, gold are livelier)
    daily_break: bool = False  # metals: daily 21:00-22:00 UTC break, week opens Sunday 23:00 UTC

    @property
    def point(self) -> float:
        return 10.0**-self.digits


DEMO_SYMBOLS: dict[str, DemoSymbol] = {
    s.name: s
    for s in (
        DemoSymbol("EURUSD", 1.08500, 5, 10, 0.07, 60.0),
        DemoSymbol("GBPUSD", 1.27000, 5, 14, 0.08, 70.0),
        DemoSymbol("USDJPY", 148.500, 3, 12, 0.09, 65.0, asia_activity=1.35),
        DemoSymbol("EURGBP", 0.85500, 5, 15, 0.05, 35.0),
        DemoSymbol("AUDUSD", 0.66000, 5, 12, 0.10, 45.0, asia_activity=1.35),
        DemoSymbol("USDCHF", 0.88000, 5, 14, 0.07, 40.0),
        DemoSymbol("USDCAD", 1.35000, 5, 16, 0.06, 45.0),
        DemoSymbol("XAUUSD", 2030.00, 2, 25, 0.15, 90.0, asia_activity=1.2, daily_break=True),
    )
}


class DemoDataError(DataError, ValueError):
    """Bad input to this module: a DataError for the CLI, a ValueError for callers."""


def session_activity(symbol: str) -> tuple[float, ...]:
    """Volatility multiplier per UTC hour (0..23) for ``symbol``; mean square over the day is 1."""
    spec = _spec(symbol)
    raw = [a * (spec.asia_activity if h in _ASIA_HOURS else 1.0) for h, a in enumerate(_HOURLY_ACTIVITY)]
    norm = math.sqrt(math.fsum(a * a for a in raw) / len(raw))
    return tuple(a / norm for a in raw)


def generate_m1(symbol: str, start: str | pd.Timestamp, end: str | pd.Timestamp, seed: int = 42) -> Bars:
    """Synthetic M1 bid bars of ``symbol`` whose open time lies in [start, end) UTC.

    Naive ``start``/``end`` are read as UTC (the range is defined in UTC). Same arguments give
    byte-identical arrays.
    """
    spec = _spec(symbol)
    start_ns, end_ns = _utc_ns(start, "start"), _utc_ns(end, "end")
    if end_ns < start_ns:
        raise DemoDataError(f"generate_m1 {symbol}: end {end} is before start {start}")
    minutes = _trading_minutes(spec, -(-start_ns // MINUTE_NS), -(-end_ns // MINUTE_NS))
    n = len(minutes)
    if n == 0:
        empty = np.empty(0, np.float64)
        return _bars(symbol, minutes, empty, empty, empty, empty, minutes, np.empty(0, np.int32))
    rng = np.random.default_rng(_stable_seed(seed, symbol))
    normals = rng.standard_normal((3, n))
    uniforms = rng.random((4, n))

    # Volatility: session profile x daily factor (AR(1) over trading days, days start at the rollover).
    minute_of_day = minutes % _MIN_PER_DAY
    hour = minute_of_day // 60
    day = (minutes - _ROLLOVER) // _MIN_PER_DAY
    day -= day[0]
    day_factor = _daily_factor(rng, int(day[-1]) + 1)
    activity = np.asarray(session_activity(symbol))[hour] * day_factor[day]
    sigma_minute = spec.annual_vol / math.sqrt(_TRADING_MINUTES_PER_YEAR)
    sigma = _NOISE_SHARE * sigma_minute * activity
    noise = sigma * normals[0]
    drift = _regime_drift(rng, noise, sigma * sigma, spec)
    body = np.clip(noise + drift, -0.2, 0.2)

    # Gaps where the market was closed (weekend, metal break): a jump between last close and open.
    gap = np.zeros(n)
    closed = np.diff(minutes) - 1
    reopen = np.flatnonzero(closed > 0) + 1
    gap[reopen] = 0.1 * sigma_minute * np.sqrt(closed[reopen - 1].astype(np.float64))
    gap[reopen] *= rng.standard_normal(len(reopen))

    close_px = spec.start_price * np.cumprod((1.0 + gap) * (1.0 + body))
    open_px = close_px / (1.0 + body)
    scale = 10**spec.digits
    close_pts = np.rint(close_px * scale).astype(np.int64)
    open_pts = np.rint(open_px * scale).astype(np.int64)
    # Within a session the next bar opens on the previous close, sometimes a point away.
    jitter = (uniforms[0] > 0.92).astype(np.int64) - (uniforms[0] < 0.08).astype(np.int64)
    cont = np.ones(n, dtype=bool)
    cont[0] = False
    cont[reopen] = False
    open_pts[cont] = close_pts[:-1][cont[1:]] + jitter[cont]

    sigma_pts = sigma * close_px * scale
    # Wicks beyond the body: half-normal, about 0.4 sigma each on average (M1 range ~1.6 sigma).
    wick_up = np.rint(0.5 * sigma_pts * np.abs(normals[1])).astype(np.int64)
    wick_down = np.rint(0.5 * sigma_pts * np.abs(normals[2])).astype(np.int64)
    high_pts = np.maximum(open_pts, close_pts) + wick_up
    low_pts = np.minimum(open_pts, close_pts) - wick_down
    low_pts = np.maximum(low_pts, 1)

    spread = _spread(spec, minute_of_day, hour, uniforms[1])
    base_pts = sigma_minute * spec.start_price * scale * 1.6  # expected M1 range at activity 1
    range_rel = (high_pts - low_pts) / base_pts
    tick_volume = 1 + np.floor(
        spec.ticks_per_minute * (0.5 * activity + 0.5 * range_rel) * (0.5 + uniforms[2])
    ).astype(np.int64)

    # No quote in a quiet minute, no bar (real feeds miss ~0.1 % of them); never the session's first bar.
    quiet = np.isin(hour, _QUIET_HOURS)
    keep = ~(quiet & (uniforms[3] < _MISSING_PROB) & cont)
    return _bars(
        symbol,
        minutes[keep] * MINUTE_NS,
        open_pts[keep] / scale,
        high_pts[keep] / scale,
        low_pts[keep] / scale,
        close_pts[keep] / scale,
        tick_volume[keep],
        spread[keep],
    )


def write_demo_data(
    directory: Path,
    symbols: Sequence[str],
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    seed: int = 42,
) -> list[Path]:
    """Write ``{SYMBOL}_M1_demo.parquet`` per symbol into ``directory``; return the paths.

    A file whose metadata already matches (symbol, start, end, seed, generator version) is left alone.
    Files are written to a temporary name and moved into place, so readers never see half a file.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    start_iso = pd.Timestamp(_utc_ns(start, "start"), tz="UTC").isoformat()
    end_iso = pd.Timestamp(_utc_ns(end, "end"), tz="UTC").isoformat()
    paths = []
    for symbol in symbols:
        _spec(symbol)
        path = directory / f"{symbol}_M1_demo.parquet"
        meta = {
            "symbol": symbol,
            "timeframe": "M1",
            "source": SOURCE,
            "seed": str(seed),
            "start": start_iso,
            "end": end_iso,
            "generator_version": GENERATOR_VERSION,
            "price_side": "bid",
            "timezone": "UTC",
        }
        if not _same_metadata(path, meta):
            _write_parquet(generate_m1(symbol, start_iso, end_iso, seed), path, meta)
        paths.append(path)
    return paths


# --- internals ---------------------------------------------------------------------------------------


def _spec(symbol: str) -> DemoSymbol:
    try:
        return DEMO_SYMBOLS[symbol]
    except KeyError:
        raise DemoDataError(f"no demo data for {symbol!r}; known: {', '.join(DEMO_SYMBOLS)}") from None


def _utc_ns(value: str | pd.Timestamp, name: str) -> int:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise DemoDataError(f"{name} {value!r} is not a time: {exc}") from exc
    if ts is pd.NaT:
        raise DemoDataError(f"{name} is NaT")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.as_unit("ns").value)


def _stable_seed(seed: int, symbol: str) -> int:
    """A seed from (seed, symbol) that is the same in every process (unlike ``hash()``)."""
    digest = hashlib.sha256(f"mt5tester.demo|{seed}|{symbol}".encode()).digest()
    return int.from_bytes(digest[:16], "little")


def _trading_minutes(spec: DemoSymbol, first: int, stop: int) -> _I64:
    """Minutes since the epoch in [first, stop) at which ``spec`` trades."""
    minutes = np.arange(first, max(first, stop), dtype=np.int64)
    minute_of_week = (minutes + _EPOCH_WEEKDAY * _MIN_PER_DAY) % _MIN_PER_WEEK
    week_open = _METAL_WEEK_OPEN if spec.daily_break else _FX_WEEK_OPEN
    trading = (minute_of_week < _FX_WEEK_CLOSE) | (minute_of_week >= week_open)
    if spec.daily_break:
        minute_of_day = minutes % _MIN_PER_DAY
        trading &= (minute_of_day < _METAL_BREAK[0]) | (minute_of_day >= _METAL_BREAK[1])
    return minutes[trading]


def _daily_factor(rng: np.random.Generator, n_days: int) -> _F64:
    """Slowly varying volatility level: 1 + 0.2 * AR(1)(0.8) with unit variance, clipped to [0.5, 1.5]."""
    shocks = rng.standard_normal(n_days)
    level = np.empty(n_days)
    x = float(shocks[0])
    level[0] = x
    for i in range(1, n_days):
        x = 0.8 * x + 0.6 * float(shocks[i])
        level[i] = x
    return 1.0 + 0.2 * np.clip(level, -2.5, 2.5)


def _regime_drift(rng: np.random.Generator, noise: _F64, variance: _F64, spec: DemoSymbol) -> _F64:
    """Per-minute drift of the regime chain, spread over each stretch in proportion to variance.

    Sums over stretches come from sequential cumulative sums (reproducible to the bit)."""
    n = len(noise)
    cum_noise = np.concatenate(([0.0], np.cumsum(noise)))
    cum_var = np.concatenate(([0.0], np.cumsum(variance)))
    sigma_day = spec.annual_vol / math.sqrt(260.0)
    lengths: list[int] = []
    rates: list[float] = []
    state, pos, level = _RANGE, 0, 0.0
    while pos < n:
        u_len, u_strength, u_next = rng.random(3)
        lo, hi = _RANGE_MINUTES if state == _RANGE else _TREND_MINUTES
        stop = min(n, pos + lo + int((hi - lo) * u_len * u_len))
        walk = float(cum_noise[stop] - cum_noise[pos])
        var = float(cum_var[stop] - cum_var[pos])
        if state == _RANGE:
            total = -(1.0 - _RANGE_KEEP) * walk
        else:
            strength = _TREND_STRENGTH[0] + (_TREND_STRENGTH[1] - _TREND_STRENGTH[0]) * float(u_strength)
            total = (1.0 if state == _UP else -1.0) * strength * sigma_day * (stop - pos) / _MIN_PER_DAY
        lengths.append(stop - pos)
        rates.append(total / var)
        level += walk + total
        # Lean against the distance from the start price, measured in annual sigmas.
        p_up = 0.5 - 0.3 * min(1.0, max(-1.0, level / spec.annual_vol))
        if state != _RANGE and float(u_next) < _TREND_TO_RANGE:
            state = _RANGE
        else:
            u_dir = (float(u_next) - _TREND_TO_RANGE) / (1.0 - _TREND_TO_RANGE) if state != _RANGE else u_next
            state = _UP if u_dir < p_up else _DOWN
        pos = stop
    return np.repeat(np.asarray(rates), lengths) * variance


def _spread(spec: DemoSymbol, minute_of_day: _I64, hour: _I64, u: _F64) -> npt.NDArray[np.int32]:
    """Spread in points: typical in London/NY, wider in Asia, 3-5x for 15 minutes after the rollover."""
    factor = np.where(np.isin(hour, _ASIA_HOURS), 1.3, 1.0)
    factor = np.where((minute_of_day >= _ROLLOVER - 45) & (minute_of_day < _ROLLOVER), 1.5, factor)
    since = minute_of_day - _ROLLOVER
    rollover = (since >= 0) & (since < _ROLLOVER_MINUTES)
    factor = np.where(rollover, 5.0 - 2.0 * since / (_ROLLOVER_MINUTES - 1), factor)
    points = np.rint(spec.spread_points * factor * (0.85 + 0.3 * u))
    return np.maximum(points, 1).astype(np.int32)


def _bars(
    symbol: str,
    time: npt.NDArray[Any],
    open_: npt.NDArray[Any],
    high: npt.NDArray[Any],
    low: npt.NDArray[Any],
    close: npt.NDArray[Any],
    tick_volume: npt.NDArray[Any],
    spread: npt.NDArray[Any],
) -> Bars:
    return Bars(
        symbol,
        Timeframe.M1,
        np.ascontiguousarray(time, dtype=np.int64),
        np.ascontiguousarray(open_, dtype=np.float64),
        np.ascontiguousarray(high, dtype=np.float64),
        np.ascontiguousarray(low, dtype=np.float64),
        np.ascontiguousarray(close, dtype=np.float64),
        np.ascontiguousarray(tick_volume, dtype=np.int64),
        np.ascontiguousarray(spread, dtype=np.int32),
    )


def _same_metadata(path: Path, meta: dict[str, str]) -> bool:
    if not path.is_file():
        return False
    try:
        stored = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return False
    return all(stored.get(k.encode()) == v.encode() for k, v in meta.items())


def _write_parquet(bars: Bars, path: Path, meta: dict[str, str]) -> None:
    table = m1_table(bars).replace_schema_metadata(meta)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp_name, compression="zstd", row_group_size=65_536)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
