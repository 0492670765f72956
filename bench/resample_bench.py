"""Benchmark: build all 20 higher MT5 timeframes from M1 bars, print JSON.

    .venv/bin/python bench/resample_bench.py [--data PATH] [--tz UTC,Europe/Athens] [--repeat 5]

Each timeframe is timed ``--repeat`` times after one warm-up pass; the minimum is reported (the least
noisy figure on a shared machine). Target: total < 0.5 s for 745k EURUSD M1 rows. Before reporting, the
result is checked: bar counts equal an independent count of distinct bucket opens, and high >= low.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mt5tester.data.resample import bucket_start, resample
from mt5tester.model.bars import Bars
from mt5tester.model.timeframe import Timeframe

DEFAULT_DATA = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "m1" / "EURUSD_M1_2018-2019.parquet"
)


def _load_m1(path: Path) -> Bars:
    """Parquet M1 (time tz-aware UTC, open/high/low/close) -> Bars; tick_volume/spread absent -> zeros."""
    df = pd.read_parquet(path, columns=["time", "open", "high", "low", "close"])
    time_ns = df["time"].dt.tz_convert("UTC").to_numpy(dtype="datetime64[ns]").view(np.int64)
    n = len(df)
    symbol = path.name.split("_")[0]
    return Bars(
        symbol,
        Timeframe.M1,
        np.ascontiguousarray(time_ns),
        df["open"].to_numpy(np.float64),
        df["high"].to_numpy(np.float64),
        df["low"].to_numpy(np.float64),
        df["close"].to_numpy(np.float64),
        np.zeros(n, np.int64),
        np.zeros(n, np.int32),
    )


def _run(m1: Bars, server_tz: str, repeat: int) -> dict[str, object]:
    seconds: dict[str, float] = {}
    bars: dict[str, int] = {}
    for tf in Timeframe:
        if tf is Timeframe.M1:
            continue
        out = resample(m1, tf, server_tz)  # warm-up
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = resample(m1, tf, server_tz)
            best = min(best, time.perf_counter() - t0)
        expected = len(np.unique(bucket_start(m1.time, tf, server_tz)))
        if len(out) != expected or bool(np.any(out.high < out.low)):
            raise SystemExit(f"verification failed for {tf.name} {server_tz}: {len(out)} bars vs {expected}")
        seconds[tf.name] = round(best, 6)
        bars[tf.name] = len(out)
    return {"seconds": seconds, "total_seconds": round(sum(seconds.values()), 6), "bars": bars}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="M1 Parquet file")
    parser.add_argument("--tz", default="UTC,Europe/Athens", help="comma-separated server time zones")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per timeframe (minimum kept)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    m1 = _load_m1(args.data)
    load_s = time.perf_counter() - t0
    report: dict[str, object] = {
        "bench": "resample",
        "data": str(args.data),
        "symbol": m1.symbol,
        "m1_rows": len(m1),
        "load_seconds": round(load_s, 4),
        "repeat": args.repeat,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "target_total_seconds": 0.5,
        "server_tz": {tz: _run(m1, tz, args.repeat) for tz in args.tz.split(",")},
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
