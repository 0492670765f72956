"""Locate and preload M1 bars for a run: everything is in memory before bar 1.

Files: ``{data.path}/{SYMBOL}_M1*.parquet`` with columns time (tz-aware UTC), open, high, low, close
and optionally tick_volume and spread (points).
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mt5tester.errors import DataError
from mt5tester.model.bars import Bars
from mt5tester.model.timeframe import Timeframe


def m1_table(bars: Bars) -> pa.Table:
    """Bars as the Arrow table of an M1 file, the layout ``read_m1_parquet`` reads."""
    return pa.table(
        {
            "time": pa.array(bars.time, pa.int64()).view(pa.timestamp("ns", tz="UTC")),
            "open": pa.array(bars.open, pa.float64()),
            "high": pa.array(bars.high, pa.float64()),
            "low": pa.array(bars.low, pa.float64()),
            "close": pa.array(bars.close, pa.float64()),
            "tick_volume": pa.array(bars.tick_volume, pa.int64()),
            "spread": pa.array(bars.spread, pa.int32()),
        }
    )


def find_m1_file(folder: Path, symbol: str) -> Path:
    if not folder.is_dir():
        raise DataError(f"data.path {folder} is not a folder: set data.path to the folder with the M1 files")
    # glob.escape: broker names may hold characters glob reads as patterns ("EURUSD[x]").
    matches = sorted(folder.glob(f"{glob.escape(symbol)}_M1*.parquet"))
    if not matches:
        present = sorted({p.name[: p.name.rfind("_M1")] for p in folder.glob("*_M1*.parquet")})
        raise DataError(
            f"no M1 data for symbol {symbol} in {folder} (expected a file {symbol}_M1*.parquet); "
            f"symbols with data there: {', '.join(present) or 'none'}"
        )
    if len(matches) > 1:
        raise DataError(f"several M1 files for {symbol} in {folder}: {[m.name for m in matches]}; keep one")
    return matches[0]


# The Arrow type each column is read as and its numpy dtype (prices: float64). Arrow stores tz-aware
# timestamps as UTC instants, whatever the zone label.
_TYPES: dict[str, tuple[pa.DataType, type[np.generic]]] = {
    "time": (pa.timestamp("ns", tz="UTC"), np.int64),
    "tick_volume": (pa.int64(), np.int64),
    "spread": (pa.int32(), np.int32),
}


def read_m1_parquet(path: Path, symbol: str) -> Bars:
    """Read M1 bars from Parquet: ``time`` (tz-aware timestamp), open/high/low/close required;
    ``tick_volume`` and ``spread`` optional (0 when absent). Naive times are rejected."""
    path = Path(path)
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"{path}: cannot read Parquet schema: {exc}") from exc
    required = ("time", "open", "high", "low", "close")
    missing = [c for c in required if c not in schema.names]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    time_type = schema.field("time").type
    if not pa.types.is_timestamp(time_type):
        raise DataError(f"{path}: column time is {time_type}, expected a UTC timestamp")
    if time_type.tz is None:
        raise DataError(f"{path}: column time is naive ({time_type}); times must be tz-aware UTC")
    optional = [c for c in ("tick_volume", "spread") if c in schema.names]
    # memory-mapped: a worker process reads the file pages from the OS cache, shared by every worker.
    # Column by column: a file of several row groups decodes into chunks that numpy joins into a copy,
    # so reading the whole table first held every column twice (Arrow's and numpy's: ~2x the bars).
    file = pq.ParquetFile(path, memory_map=True)
    arrays: dict[str, np.ndarray] = {}
    for name in [*required, *optional]:
        column = file.read(columns=[name]).column(0)
        if column.null_count:
            raise DataError(f"{path}: column {name} has {column.null_count} null(s)")
        arrow_type, dtype = _TYPES.get(name, (pa.float64(), np.float64))
        column = pc.cast(column, arrow_type)
        arrays[name] = _np(column.cast(pa.int64()) if name == "time" else column, dtype)
        del column
    time = arrays["time"]
    if len(time) > 1:
        bad = np.flatnonzero(time[1:] <= time[:-1])
        if len(bad):
            at = pd.Timestamp(int(time[bad[0] + 1]), tz="UTC")
            raise DataError(f"{path}: time not strictly increasing at row {bad[0] + 1} ({at})")
    n = len(time)
    tick_volume = arrays["tick_volume"] if "tick_volume" in arrays else np.zeros(n, np.int64)
    spread = arrays["spread"] if "spread" in arrays else np.zeros(n, np.int32)
    open_, high, low, close = (arrays[c] for c in required[1:])
    bars = Bars(symbol, Timeframe.M1, time, open_, high, low, close, tick_volume, spread)
    # Arrow's allocator keeps the pages of the decoded file's freed buffers (~50 bytes per bar): hand
    # them back, so a run holds its bars and not the read's leftovers.
    pa.default_memory_pool().release_unused()
    return bars


def _np(column: pa.ChunkedArray, dtype: type[np.generic]) -> np.ndarray:
    return np.ascontiguousarray(column.to_numpy(), dtype=dtype)


def find_ticks_file(folder: Path, symbol: str) -> Path | None:
    """``{SYMBOL}_ticks*.parquet`` in the data folder (bid/ask ticks), or None."""
    matches = sorted(folder.glob(f"{symbol}_ticks*.parquet")) if folder.is_dir() else []
    if len(matches) > 1:
        raise DataError(f"several tick files for {symbol} in {folder}: {[m.name for m in matches]}; keep one")
    return matches[0] if matches else None


def m1_from_ticks(symbol: str, time: np.ndarray, bid: np.ndarray, ask: np.ndarray, point: float) -> Bars:
    """M1 bid bars from ticks: open/high/low/close of the minute's bids, tick_volume = ticks, spread =
    the minute's smallest (ask - bid) in points (the same rule as higher timeframes, [U])."""
    if len(time) == 0:
        raise DataError(f"{symbol}: no ticks to build M1 bars from")
    if not bool(np.all(np.diff(time) >= 0)):
        raise DataError(f"{symbol}: tick times are not in order")
    minute = time - time % 60_000_000_000
    starts = np.flatnonzero(np.r_[True, minute[1:] != minute[:-1]])
    ends = np.r_[starts[1:], len(time)]
    spread = np.rint((ask - bid) / point).astype(np.int64)
    return Bars(
        symbol,
        Timeframe.M1,
        minute[starts].astype(np.int64),
        bid[starts].astype(np.float64),
        np.maximum.reduceat(bid, starts).astype(np.float64),
        np.minimum.reduceat(bid, starts).astype(np.float64),
        bid[ends - 1].astype(np.float64),
        (ends - starts).astype(np.int64),
        np.minimum.reduceat(spread, starts).astype(np.int32),
    )
