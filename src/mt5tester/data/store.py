"""Locate and preload M1 bars for a run: everything is in memory before bar 1.

Files: ``{data.path}/{SYMBOL}_M1*.parquet`` with columns time (tz-aware UTC), open, high, low, close
and optionally tick_volume and spread (points).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mt5tester.errors import DataError
from mt5tester.model.bars import Bars
from mt5tester.model.timeframe import Timeframe


def find_m1_file(folder: Path, symbol: str) -> Path:
    if not folder.is_dir():
        raise DataError(f"data.path {folder} is not a folder: set data.path to the folder with the M1 files")
    matches = sorted(folder.glob(f"{symbol}_M1*.parquet"))
    if not matches:
        present = sorted({p.name.split("_")[0] for p in folder.glob("*_M1*.parquet")})
        raise DataError(
            f"no M1 data for symbol {symbol} in {folder} (expected a file {symbol}_M1*.parquet); "
            f"symbols with data there: {', '.join(present) or 'none'}"
        )
    if len(matches) > 1:
        raise DataError(f"several M1 files for {symbol} in {folder}: {[m.name for m in matches]}; keep one")
    return matches[0]


def read_m1_parquet(path: Path, symbol: str) -> Bars:
    """Read M1 bars into contiguous arrays. A naive (no timezone) time column is an error."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as e:
        raise DataError(f"{path}: cannot read Parquet: {e}") from None
    names = set(table.column_names)
    missing = [c for c in ("time", "open", "high", "low", "close") if c not in names]
    if missing:
        raise DataError(f"{path}: missing columns {missing}; found {sorted(names)}")
    ttype = table.schema.field("time").type
    if not pa.types.is_timestamp(ttype) or ttype.tz is None:
        raise DataError(f"{path}: column 'time' must be a timezone-aware timestamp (UTC), got {ttype}")
    time = (
        table.column("time")
        .cast(pa.timestamp("ns", "UTC"))
        .to_numpy()
        .astype("datetime64[ns]")
        .view(np.int64)
    )

    def f64(name: str) -> np.ndarray:
        return np.ascontiguousarray(table.column(name).to_numpy(), dtype=np.float64)

    n = len(time)
    tick_volume = (
        np.ascontiguousarray(table.column("tick_volume").to_numpy(), dtype=np.int64)
        if "tick_volume" in names
        else np.zeros(n, np.int64)
    )
    spread = (
        np.ascontiguousarray(table.column("spread").to_numpy(), dtype=np.int32)
        if "spread" in names
        else np.zeros(n, np.int32)
    )
    return Bars(
        symbol,
        Timeframe.M1,
        np.ascontiguousarray(time),
        f64("open"),
        f64("high"),
        f64("low"),
        f64("close"),
        tick_volume,
        spread,
    )
