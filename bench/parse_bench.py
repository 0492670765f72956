"""Benchmark the MT5 CSV importer: rows/s on a generated 1M-row M1 export and on the real files.

Usage: .venv/bin/python bench/parse_bench.py [--rows N] [--repeat K] [--shared-data DIR]
Prints one JSON object. The generated file is verified after parsing (row count, first/last time, price
sums) before any figure is reported; pandas.read_csv + to_datetime on the same file is the peer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from mt5tester.data.importers import read_mt5_bars_csv, write_mt5_bars_csv
from mt5tester.model.bars import Bars
from mt5tester.model.timeframe import Timeframe

ROOT = Path(__file__).resolve().parents[1]
REAL_FILES = {
    "EURUSD_H1.csv": "Europe/Athens",
    "US30m_Daily_202401010000_202509080000.csv": "Europe/Athens",
    "EURUSD_M1_201806_renamed_header.csv": "+03:00",
}


def synthetic_bars(n: int, seed: int = 7) -> Bars:
    """``n`` M1 bars on weekdays from 2020-01-06, a 5-digit random walk (values exact to 1e-5)."""
    rng = np.random.default_rng(seed)
    minutes = np.arange(n, dtype=np.int64)
    # 5 trading days of 1440 minutes, then skip the weekend (2 days)
    week, rest = np.divmod(minutes, 5 * 1440)
    start = np.datetime64("2020-01-06T00:00", "ns").astype(np.int64)
    time_ns = start + (week * 7 * 1440 + rest) * 60_000_000_000
    steps = rng.integers(-20, 21, size=n)
    close_pts = 110_000 + np.cumsum(steps)
    open_pts = np.concatenate([[110_000], close_pts[:-1]])
    high_pts = np.maximum(open_pts, close_pts) + rng.integers(0, 15, size=n)
    low_pts = np.minimum(open_pts, close_pts) - rng.integers(0, 15, size=n)
    return Bars(
        "EURUSD",
        Timeframe.M1,
        time_ns,
        np.round(open_pts / 1e5, 5),
        np.round(high_pts / 1e5, 5),
        np.round(low_pts / 1e5, 5),
        np.round(close_pts / 1e5, 5),
        rng.integers(1, 400, size=n).astype(np.int64),
        rng.integers(0, 30, size=n).astype(np.int32),
    )


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best = float("inf")
    result: Any = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


_PEER = """
import sys, time
import pandas as pd
path, repeat = sys.argv[1], int(sys.argv[2])
best = float("inf")
for _ in range(repeat):
    t0 = time.perf_counter()
    df = pd.read_csv(path, sep="\\t", dtype={"<DATE>": str, "<TIME>": str})
    t = pd.to_datetime(df["<DATE>"] + " " + df["<TIME>"], format="%Y.%m.%d %H:%M:%S")
    best = min(best, time.perf_counter() - t0)
print(len(t), best)
"""


def pandas_peer(path: Path, repeat: int) -> tuple[int, float]:
    """pandas.read_csv + to_datetime, in a child process (pandas and pyarrow thread pools in one process
    have aborted at interpreter exit with 'terminate called without an active exception')."""
    done = subprocess.run(
        [sys.executable, "-c", _PEER, str(path), str(repeat)], capture_output=True, text=True, check=True
    )
    rows, secs = done.stdout.split()
    return int(rows), float(secs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--shared-data",
        type=Path,
        default=Path(os.environ.get("MT5TESTER_SHARED_DATA", ROOT.parent / "shared" / "data")),
    )
    args = ap.parse_args(argv)

    out: dict[str, Any] = {"rows": args.rows, "repeat": args.repeat, "cpus": os.cpu_count()}
    bars = synthetic_bars(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "EURUSD_M1_synthetic.csv"
        t0 = time.perf_counter()
        write_mt5_bars_csv(bars, path, tz="Europe/Athens", digits=5)
        out["write_s"] = round(time.perf_counter() - t0, 3)
        out["file_mb"] = round(path.stat().st_size / 1e6, 1)
        for tz in ("UTC", "Europe/Athens"):
            # UTC: the file's wall times read as UTC, so compare against the shifted times.
            secs, got = best_of(args.repeat, partial(read_mt5_bars_csv, path, "EURUSD", None, tz))
            if tz == "Europe/Athens":
                ok = bool(np.array_equal(got.time, bars.time))
            else:
                ok = len(got) == len(bars) and bool(np.all(np.diff(got.time) > 0))
            ok = ok and got.timeframe is Timeframe.M1
            for name in ("open", "high", "low", "close", "tick_volume", "spread"):
                ok = ok and bool(np.array_equal(getattr(got, name), getattr(bars, name)))
            if not ok:
                print(json.dumps({"error": f"verification failed for tz={tz}"}))
                return 1
            out[f"mt5_bars_csv_tz_{tz}"] = {"seconds": round(secs, 4), "rows_per_s": round(args.rows / secs)}
        n, secs = pandas_peer(path, args.repeat)
        assert n == args.rows
        out["peer_pandas_read_csv"] = {"seconds": round(secs, 4), "rows_per_s": round(args.rows / secs)}
        ours = out["mt5_bars_csv_tz_UTC"]["seconds"]
        out["speedup_vs_pandas"] = round(secs / ours, 2)

    real: dict[str, Any] = {}
    export_dir = args.shared_data / "mt5_export"
    if export_dir.is_dir():
        for name, tz in REAL_FILES.items():
            secs, got = best_of(args.repeat, partial(read_mt5_bars_csv, export_dir / name, "X", None, tz))
            real[name] = {
                "rows": len(got),
                "timeframe": got.timeframe.name,
                "tz": tz,
                "seconds": round(secs, 5),
                "rows_per_s": round(len(got) / secs),
            }
    else:
        real["skipped"] = f"no shared data at {export_dir}"
    out["real_files"] = real
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
