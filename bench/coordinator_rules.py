"""The coordinator's book-reading rules on both drivers: the Python loop (driver a) against the whole run in
the kernel (driver b) on the same config in the same process, for each of max_correlation,
max_currency_exposure and conflict_policy (and none, the baseline). Verified before it reports: both
drivers give the same deals, signals and equity, and driver (b) ran.

    python bench/coordinator_rules.py                 # 3 symbols, M5, 3 seeded strategies, 3 months
    python bench/coordinator_rules.py --repeat 5 --json

Data: the demo generator's synthetic M1 bars (seed 7), written to a temporary folder. Strategies: the
differential tests' seeded random column streams (tests/fixtures/column_strategies.py), 30% of the bars.
Figures per case: signals, deals, each driver's median wall seconds (build and records included), their
ratio, and the kernel's own split (inputs, loop = pre-review + compiled loop, records) of its last run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ROOT / "tests" / "fixtures" / "column_strategies.py"
SYMBOLS = ["EURUSD", "USDJPY", "GBPUSD"]
CASES: dict[str, dict[str, Any]] = {
    "none": {},
    "max_correlation M15/20": {
        "max_correlation": 0.3,
        "correlation_timeframe": "M15",
        "correlation_window": 20,
    },
    "max_correlation H1/50": {"max_correlation": 0.3},
    "max_currency_exposure resize": {"max_currency_exposure": {"USD": 150_000}, "exposure_policy": "resize"},
    "conflict_policy net": {"conflict_policy": "net"},
}


def _config(data: Path, out: Path, coordinator: dict[str, Any]) -> Any:
    from mt5tester.config import Config

    return Config.model_validate(
        {
            "backtest": {
                "start": "2023-12-01", "end": "2024-02-28", "symbols": SYMBOLS, "primary_timeframe": "M5",
                "warmup_bars": 30, "tester_mode": "ohlc_m1", "initial_deposit": 1e6,
            },
            "data": {"path": str(data)},
            "strategies": [
                {
                    "class": f"{COLUMNS}:RandomColumn", "name": f"rnd{i}", "params": {"seed": i + 1, "density": 0.3},
                    "symbols": SYMBOLS, "timeframe": "M5", "volume": round(0.1 * (i + 1), 2),
                }
                for i in range(3)
            ],
            "coordinator": coordinator,
            "results": {"database_url": f"sqlite:///{out / 'r.sqlite'}", "out_dir": str(out)},
        }
    )  # fmt: skip


def _same(a: Any, b: Any) -> None:
    import pandas as pd

    for name in ("deals", "signals", "equity"):
        x, y = getattr(a, name).reset_index(drop=True), getattr(b, name).reset_index(drop=True)
        pd.testing.assert_frame_equal(x, y, check_exact=True, obj=name)
    assert b.funnel["driver"] == "kernel", b.funnel["driver_reason"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from mt5tester.data.demo import write_demo_data
    from mt5tester.engine.run import run
    from mt5tester.results.memory import MemorySink

    tmp = Path(tempfile.mkdtemp())
    write_demo_data(tmp / "data", SYMBOLS, "2023-11-01", "2024-03-01", seed=7)
    rows = []
    for name, coordinator in CASES.items():
        cfg = _config(tmp / "data", tmp, coordinator)
        run(cfg, sink=MemorySink())  # the JIT cache and the data's first read out of the figures
        loop, kernel = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            a = run(cfg, sink=MemorySink(), driver="loop")
            loop.append(time.perf_counter() - t)
            t = time.perf_counter()
            b = run(cfg, sink=MemorySink())
            kernel.append(time.perf_counter() - t)
        _same(a, b)
        la, lb = statistics.median(loop), statistics.median(kernel)
        rows.append(
            {
                "case": name, "signals": b.funnel["signals_generated"], "deals": b.deal_count,
                "loop_s": round(la, 3), "kernel_s": round(lb, 3), "ratio": round(la / lb, 2),
                "kernel_split_s": b.funnel["kernel_seconds"],
            }
        )  # fmt: skip
    info = {"load_average": [round(v, 2) for v in os.getloadavg()], "python": sys.version.split()[0]}
    if args.json:
        print(json.dumps({"cases": rows, **info}, indent=2))
        return
    for r in rows:
        print(
            f"{r['case']:30s} signals {r['signals']:6d} deals {r['deals']:6d}  loop {r['loop_s']:6.2f} s"
            f"  kernel {r['kernel_s']:5.2f} s  {r['ratio']:5.1f}x  split {r['kernel_split_s']}"
        )
    print(info)


if __name__ == "__main__":
    main()
