"""Candles for the report's price charts: the run's own M1 files (``data.path`` of the stored config),
resampled to a timeframe with at most ``MAX_CANDLES`` bars over the run's window, on the server clock.

The rest of the report reads the results database only; when the market data is gone or the run used the
catalog, the price chart says so instead of failing the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mt5tester.data.store import find_m1_file
from mt5tester.errors import DataError
from mt5tester.reports.content import RunReport

MAX_CANDLES = 1500  # readable at a report's width; zooming shows detail
TIMEFRAMES = (("M15", 900), ("H1", 3600), ("H4", 14400), ("D1", 86400), ("W1", 7 * 86400))


@dataclass
class Candles:
    symbol: str
    timeframe: str
    time: pd.Series  # UTC time of each candle's first M1 bar
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray


def _window(rep: RunReport) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The run's backtest.start .. backtest.end (UTC)."""
    cfg = rep.run.get("config") or {}
    bt = cfg.get("backtest", {}) if isinstance(cfg, dict) else {}
    start = pd.Timestamp(str(bt.get("start") or "1970-01-01"))
    end = pd.Timestamp(str(bt.get("end") or "2262-01-01"))
    return (
        start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC"),
        end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC"),
    )


def pick_timeframe(seconds: float) -> tuple[str, int]:
    """The finest timeframe giving at most MAX_CANDLES candles over ``seconds`` (W1 at most)."""
    for name, period in TIMEFRAMES:
        if seconds / period <= MAX_CANDLES:
            return name, period
    return TIMEFRAMES[-1]


def _server_seconds(time_ns: np.ndarray, tz: str) -> np.ndarray:
    """Seconds on the server clock: the zone's UTC offset looked up once per distinct hour (the M1 times are
    sorted), not once per bar."""
    hours = time_ns // 3_600_000_000_000
    starts = np.flatnonzero(np.concatenate(([True], hours[1:] != hours[:-1])))
    stamps = pd.DatetimeIndex(pd.to_datetime(hours[starts] * 3_600_000_000_000, unit="ns", utc=True)).as_unit(
        "ns"
    )
    local = stamps.tz_convert(tz).tz_localize(None).as_unit("ns").asi8
    offset_ns = local - stamps.asi8
    counts = np.diff(np.concatenate((starts, [len(time_ns)])))
    return (time_ns + np.repeat(offset_ns, counts)) // 1_000_000_000


def resample(
    time_ns: np.ndarray, o: np.ndarray, h: np.ndarray, low: np.ndarray, c: np.ndarray, period: int, tz: str
) -> tuple[np.ndarray, ...]:
    """OHLC buckets of ``period`` seconds on the server clock (D1 at server midnight, W1 from Monday);
    each labelled with its first M1 bar's UTC time."""
    secs = _server_seconds(time_ns, tz)
    if period == 7 * 86400:
        secs = secs + 3 * 86400  # the epoch is a Thursday: shift so weeks start on Monday
    bucket = secs // period
    starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    return (
        time_ns[starts],
        o[starts],
        np.maximum.reduceat(h, starts),
        np.minimum.reduceat(low, starts),
        c[np.concatenate((starts[1:] - 1, [len(c) - 1]))],
    )


def _read_m1(folder: Path, symbol: str) -> tuple[np.ndarray, ...] | None:
    """time (UTC ns), open, high, low, close of the symbol's M1 file; None when there is none or it does not
    read (the run validated it; a report only shows it)."""
    try:
        table = pq.read_table(find_m1_file(folder, symbol), columns=["time", "open", "high", "low", "close"])
    except (DataError, OSError, pa.ArrowException):
        return None
    t = table.column("time").cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_numpy()
    cols = [table.column(c).cast(pa.float64()).to_numpy() for c in ("open", "high", "low", "close")]
    return (np.asarray(t, dtype=np.int64), *(np.asarray(c, dtype=float) for c in cols))


def load_candles(rep: RunReport, symbols: list[str]) -> tuple[dict[str, Candles], str]:
    """Candles per symbol, and a note ('' when every symbol has candles)."""
    cfg = rep.run.get("config") or {}
    data = cfg.get("data", {}) if isinstance(cfg, dict) else {}
    if data.get("source", "files") != "files" or not data.get("path"):
        return {}, "price charts need the run's M1 files (data.source: files); this run read the catalog"
    folder = Path(str(data["path"]))
    start, end = _window(rep)
    out: dict[str, Candles] = {}
    missing: list[str] = []
    for sym in symbols:
        m1 = _read_m1(folder, sym)
        if m1 is None:
            missing.append(sym)
            continue
        t, o, h, low, c = m1
        keep = (t >= start.value) & (t < end.value)
        if not keep.any():
            missing.append(sym)
            continue
        t = t[keep]
        name, period = pick_timeframe((t[-1] - t[0]) / 1e9)
        ct, co, ch, cl, cc = resample(t, o[keep], h[keep], low[keep], c[keep], period, rep.server_timezone)
        out[sym] = Candles(sym, name, pd.Series(pd.to_datetime(ct, unit="ns", utc=True)), co, ch, cl, cc)
    note = f"no M1 data found in {folder} for {', '.join(missing)}" if missing else ""
    return out, note
