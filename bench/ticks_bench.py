"""Benchmark: MT5 "Every tick" generation from M1 bars (terminal.ticks), print JSON.

    .venv/bin/python bench/ticks_bench.py [--bars 1000000] [--volume 10] [--repeat 3]

Synthetic EURUSD-like M1 bars (5 digits, seeded random walk, every bar ``--volume`` ticks) are
generated once; ``generate_ticks`` (count pass + fill pass + Ticks assembly) is timed ``--repeat``
times after one warm-up call (which also compiles or loads the numba cache) and the minimum kept.
The kernels alone (count + fill into preallocated arrays) are timed the same way. Before reporting,
the result is verified: tick count, first tick = Open, last = Close, every bar's tick min/max equal
its Low/High, times inside the minute. There is no peer: no other backtester publishes MT5's
generation rules, so the figure is absolute (ticks/s on this machine).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from collections.abc import Callable

import numpy as np

from mt5tester.model.bars import Bars
from mt5tester.model.timeframe import Timeframe
from mt5tester.terminal.ticks import bar_directions, count_ticks, fill_ticks, generate_ticks

POINT = 1e-5
MINUTE_NS = 60_000_000_000


def make_bars(n: int, volume: int, seed: int) -> Bars:
    """Random-walk M1 bars on the 1e-5 grid: open = previous close, 0..12-point shadows."""
    rng = np.random.default_rng(seed)
    close_pts = 110_000 + np.cumsum(rng.integers(-8, 9, n))
    open_pts = np.concatenate(([110_000], close_pts[:-1]))
    high_pts = np.maximum(open_pts, close_pts) + rng.integers(0, 13, n)
    low_pts = np.minimum(open_pts, close_pts) - rng.integers(0, 13, n)
    t0 = 1_514_844_000 * 1_000_000_000  # 2018-01-01 22:00 UTC
    return Bars(
        "EURUSD",
        Timeframe.M1,
        t0 + np.arange(n, dtype=np.int64) * MINUTE_NS,
        open_pts / 100_000.0,
        high_pts / 100_000.0,
        low_pts / 100_000.0,
        close_pts / 100_000.0,
        np.full(n, volume, dtype=np.int64),
        rng.integers(0, 20, n).astype(np.int32),
    )


def verify(m1: Bars, time_ns: np.ndarray, bid: np.ndarray, volume: int) -> None:
    n = len(m1)
    if len(bid) != n * volume:
        raise SystemExit(f"verification failed: {len(bid)} ticks, expected {n * volume}")
    starts = np.arange(n) * volume
    ends = starts + volume - 1
    checks = {
        "first tick is Open": np.array_equal(bid[starts], m1.open),
        "last tick is Close": np.array_equal(bid[ends], m1.close),
        "max is High": np.array_equal(np.maximum.reduceat(bid, starts), m1.high),
        "min is Low": np.array_equal(np.minimum.reduceat(bid, starts), m1.low),
        "times in minute": bool(np.all((time_ns - np.repeat(m1.time, volume)) // MINUTE_NS == 0)),
        "times non-decreasing": bool(np.all(np.diff(time_ns) >= 0)),
    }
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        raise SystemExit(f"verification failed: {', '.join(failed)}")


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bars", type=int, default=1_000_000, help="number of M1 bars")
    parser.add_argument("--volume", type=int, default=10, help="tick_volume of every bar")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (minimum kept)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the bars and of the ticks")
    args = parser.parse_args(argv)

    process_t0 = time.perf_counter()
    m1 = make_bars(args.bars, args.volume, args.seed)
    t0 = time.perf_counter()
    ticks = generate_ticks(m1, POINT, args.seed)  # warm-up: compiles or loads the cache
    first_call_s = time.perf_counter() - t0
    verify(m1, ticks.time, ticks.bid, args.volume)
    total = len(ticks)
    del ticks

    api_s = _best(lambda: generate_ticks(m1, POINT, args.seed), args.repeat)

    n = len(m1)
    direction = bar_directions(m1.open, m1.close, 1)
    out_time = np.empty(total, dtype=np.int64)
    out_bid = np.empty(total, dtype=np.float64)
    out_ask = np.empty(total, dtype=np.float64)
    seed = np.uint64(args.seed)

    def kernels_only() -> None:
        counts = count_ticks(m1.open, m1.high, m1.low, m1.close, m1.tick_volume, direction, POINT, 0, n)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        fill_ticks(
            m1.time, m1.open, m1.high, m1.low, m1.close, m1.tick_volume, m1.spread, direction,
            POINT, seed, 0, n, offsets, out_time, out_bid, out_ask,
        )  # fmt: skip

    kernel_s = _best(kernels_only, args.repeat)
    verify(m1, out_time, out_bid, args.volume)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    report = {
        "bench": "ticks",
        "bars": n,
        "tick_volume": args.volume,
        "ticks": total,
        "generate_ticks_seconds": round(api_s, 4),
        "generate_ticks_ticks_per_s": round(total / api_s),
        "kernels_seconds": round(kernel_s, 4),
        "kernels_ticks_per_s": round(total / kernel_s),
        "kernels_bars_per_s": round(n / kernel_s),
        "first_call_seconds": round(first_call_s, 3),
        "process_seconds": round(time.perf_counter() - process_t0, 3),
        "peak_rss_mb": round(peak_mb, 1),
        "verified": True,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
