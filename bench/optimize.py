"""The optimizer on the SMA cross over M1 bars: passes per second on 1 and 2 workers, Dask's overhead
against the local pool, and a 1,000-pass grid's wall time. Verified before it reports: every executor must
give the same pass table (params and metrics).

    python bench/optimize.py                          # 1M synthetic M1 bars, 8 passes per executor
    python bench/optimize.py --bars 100000 --passes 16 --grid      # and run the 1,000-pass grid for real
    python bench/optimize.py --json

The strategy is bench/sma_cross.py's prepared-signal form (``SmaCrossPrepared``: the cross column is
computed in ``prepare()``, the engine calls the strategy on cross bars only) over the same synthetic data
(seeded random walk). Passes are drawn at random (seed 1) from a fast 2..21 x slow 25..74 grid (1,000
points); without --grid the grid's wall time is projected from the 2-worker rate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import sma_cross  # noqa: E402

from mt5tester.config import parse_config  # noqa: E402
from mt5tester.optimize.driver import optimize  # noqa: E402
from mt5tester.results import db  # noqa: E402
from mt5tester.results import studies as store  # noqa: E402

GRID = {
    "strategies.sma_cross.params.fast": {"start": 2, "step": 1, "stop": 21},
    "strategies.sma_cross.params.slow": {"start": 25, "step": 1, "stop": 74},
}


def study_config(p: Any, tmp: Path, section: dict[str, Any], name: str) -> dict[str, Any]:
    raw = sma_cross.mt5tester_config(p, tmp, "SmaCrossPrepared")
    raw["results"] = {
        "database_url": f"sqlite:///{tmp / f'{name}.sqlite'}",
        "out_dir": str(tmp / "runs"),
        "checkpoint_seconds": None,
    }
    raw["optimize"] = section
    return raw


def timed_study(p: Any, tmp: Path, section: dict[str, Any], name: str, **kw: Any) -> dict[str, Any]:
    cfg = parse_config(study_config(p, tmp, section, name), f"bench/optimize.py:{name}")
    t0 = time.perf_counter()
    result = optimize(cfg, base_dir=HERE, **kw)
    wall = time.perf_counter() - t0
    engine = db.connect(f"sqlite:///{tmp / f'{name}.sqlite'}", use_env=False)
    rows = store.trials(engine, result.study_id)
    engine.dispose()
    return {
        "executor": name,
        "passes": len(rows),
        "wall_seconds": round(wall, 3),
        "passes_per_s": round(len(rows) / wall, 4),
        "mean_pass_seconds": round(sum(r["duration"] for r in rows) / len(rows), 3),
        "table": [(r["number"], r["params"], r["metrics"]) for r in rows],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--passes", type=int, default=8, help="passes per executor measurement")
    ap.add_argument("--grid", action="store_true", help="run the 1,000-pass grid on 2 workers (long)")
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="mt5tester-bench-opt-") as d:
        tmp = Path(d)
        p = sma_cross.prepare(None, args.bars, tmp)
        sample = {"parameters": GRID, "method": "random", "budget": args.passes, "seed": 1}
        runs = [
            timed_study(p, tmp, sample, "one_worker", workers=1),
            timed_study(p, tmp, sample, "local_pool_2", workers=2),
        ]
        if not args.no_dask:
            runs.append(timed_study(p, tmp, sample, "dask_local_2", workers=2, scheduler="local"))
        reference = runs[0]["table"]
        for r in runs[1:]:
            if r["table"] != reference:
                diff = [
                    (a[0], k, a[2][k], b[2].get(k))
                    for a, b in zip(reference, r["table"], strict=False)
                    for k in a[2]
                    if a[2][k] != b[2].get(k)
                ]
                print(f"MISMATCH: {r['executor']} differs from one_worker: {diff[:5]}", file=sys.stderr)
                return 1
        by = {r["executor"]: r for r in runs}
        out: dict[str, Any] = {
            "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
            "data": p.source,
            "passes": args.passes,
            "results": [{k: v for k, v in r.items() if k != "table"} for r in runs],
            "speedup_2_workers": round(
                by["local_pool_2"]["passes_per_s"] / by["one_worker"]["passes_per_s"], 3
            ),
        }
        if "dask_local_2" in by:
            out["dask_overhead_vs_local_pool"] = round(
                by["dask_local_2"]["wall_seconds"] / by["local_pool_2"]["wall_seconds"] - 1.0, 3
            )
        out["grid_1000_projected_seconds"] = round(1000 / by["local_pool_2"]["passes_per_s"], 1)
        if args.grid:
            grid = timed_study(p, tmp, {"parameters": GRID, "method": "grid"}, "grid_1000", workers=2)
            out["grid_1000_seconds"] = grid["wall_seconds"]
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{out['machine']}; {out['data']}; {args.passes} passes per executor, identical tables")
    for r in out["results"]:
        print(
            f"  {r['executor']:<14} {r['wall_seconds']:>9.2f} s  {r['passes_per_s']:>8.3f} passes/s  "
            f"(mean pass {r['mean_pass_seconds']:.2f} s)"
        )
    print(f"  speed-up on 2 workers: {out['speedup_2_workers']:.2f}x")
    if "dask_overhead_vs_local_pool" in out:
        print(f"  Dask LocalCluster overhead vs the local pool: {out['dask_overhead_vs_local_pool']:+.1%}")
    print(f"  1,000-pass grid on 2 workers: projected {out['grid_1000_projected_seconds']:.0f} s", end="")
    print(f", measured {out['grid_1000_seconds']:.0f} s" if "grid_1000_seconds" in out else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
