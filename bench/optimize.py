"""The optimizer on the SMA cross over M1 bars: passes per second on 1 and 2 workers, Dask's overhead
against the local pool, and a 1,000-pass grid's wall time. Verified before it reports: every executor must
give the same pass table (params and metrics).

    python bench/optimize.py                          # 1M synthetic M1 bars, 60 passes per executor
    python bench/optimize.py --bars 100000 --passes 16 --grid      # and run the 1,000-pass grid for real
    python bench/optimize.py --profile                # and where one pass's CPU goes (cProfile, top 25)
    python bench/optimize.py --json

Figures per executor: wall seconds, passes/s, the mean pass (wall, as the worker timed it), CPU seconds
per pass (this process and its finished children: the pool's and the cluster's workers, their start
included) and the workers' utilisation (the passes' summed time / (wall x workers): below 1 is time a
worker spent starting, loading data or waiting for a task, or the study's serial part). The wall time is
split into the passes' phase (workers' start included) and the serial part in this process (checking the
study before, the robustness summary after; the same on every executor). Then the speed-up on 2 workers
and Dask's overhead against the local pool, both over the passes' phase, the parallel fraction the
speed-up implies (Amdahl: p = (1 - 1/S) / (1 - 1/2)) and the 1,000-pass grid's wall time (projected:
1,000 passes at the pool's rate plus the serial part). On a loaded machine the CPU and
utilisation figures hold better than the wall times.

The strategy is bench/sma_cross.py's prepared-signal form (``SmaCrossPrepared``: the cross column is
computed in ``prepare()``, the engine calls the strategy on cross bars only) over the same synthetic data
(seeded random walk). Passes are drawn at random (seed 1) from a fast 2..21 x slow 25..74 grid (1,000
points); without --grid the grid's wall time is projected from the 2-worker rate.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import sma_cross  # noqa: E402

from mt5tester.config import parse_config  # noqa: E402
from mt5tester.optimize.driver import StudyProgress, optimize  # noqa: E402
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


def cpu_seconds() -> float:
    """CPU of this process and of its children that have ended (the executors' workers, once closed)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed_study(p: Any, tmp: Path, section: dict[str, Any], name: str, **kw: Any) -> dict[str, Any]:
    cfg = parse_config(study_config(p, tmp, section, name), f"bench/optimize.py:{name}")
    ticks: list[tuple[int, float]] = []  # (passes done, time): the first once the study is checked

    def progress(sp: StudyProgress) -> None:
        ticks.append((sp.done, time.perf_counter()))

    c0, t0 = cpu_seconds(), time.perf_counter()
    result = optimize(cfg, base_dir=HERE, progress=progress, **kw)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    # the passes' phase: from the study checked (data loaded, values tried) to the last pass stored, the
    # workers' start included; before it the check, after it the summary (robustness): both serial
    passes_wall = ticks[-1][1] - ticks[0][1]
    engine = db.connect(f"sqlite:///{tmp / f'{name}.sqlite'}", use_env=False)
    rows = store.trials(engine, result.study_id)
    engine.dispose()
    busy = sum(r["duration"] for r in rows)
    workers = kw.get("workers", 1)
    return {
        "executor": name,
        "workers": workers,
        "passes": len(rows),
        "wall_seconds": round(wall, 3),
        "passes_per_s": round(len(rows) / wall, 4),
        "passes_phase_seconds": round(passes_wall, 3),
        "passes_phase_per_s": round(len(rows) / passes_wall, 4),
        "serial_seconds": round(wall - passes_wall, 3),
        "mean_pass_seconds": round(busy / len(rows), 3),
        "cpu_seconds_per_pass": round(cpu / len(rows), 3),
        "utilisation": round(busy / (wall * workers), 3),
        "table": [(r["number"], r["params"], r["metrics"]) for r in rows],
    }


def profile_pass(p: Any, tmp: Path, top: int) -> dict[str, Any]:
    """One pass (fast 10, slow 30) in this process, after a first one (imports, numba cache, data load):
    its CPU seconds and the cProfile top ``top`` by cumulative time."""
    from mt5tester.optimize.trial import TrialTask, run_trial

    cfg = parse_config(study_config(p, tmp, {"parameters": GRID}, "profile"), "bench/optimize.py:profile")
    params = {"strategies.sma_cross.params.fast": 10, "strategies.sma_cross.params.slow": 30}
    task = TrialTask(0, "is", 0, params, cfg, cfg, str(HERE))
    run_trial(task)
    c0 = time.process_time()
    run_trial(task)
    cpu = time.process_time() - c0
    prof = cProfile.Profile()
    prof.runcall(run_trial, task)
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(top)
    return {"cpu_seconds": round(cpu, 3), "profile": text.getvalue()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--passes", type=int, default=60, help="passes per executor measurement")
    ap.add_argument("--grid", action="store_true", help="run the 1,000-pass grid on 2 workers (long)")
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--profile", action="store_true", help="also profile one pass in this process")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    load = os.getloadavg()

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
        # speed-up and Dask's overhead over the passes' phase (the check before and the summary after it
        # run in this process whatever the executor); the whole study's wall times are in the results
        speedup = by["local_pool_2"]["passes_phase_per_s"] / by["one_worker"]["passes_phase_per_s"]
        out: dict[str, Any] = {
            "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
            "load_average": [round(x, 2) for x in (*load, *os.getloadavg())],  # 1/5/15 min, before, after
            "data": p.source,
            "passes": args.passes,
            "results": [{k: v for k, v in r.items() if k != "table"} for r in runs],
            "speedup_2_workers": round(speedup, 3),
            "parallel_fraction": round((1.0 - 1.0 / speedup) / 0.5, 3),
        }
        if "dask_local_2" in by:
            out["dask_overhead_vs_local_pool"] = round(
                by["dask_local_2"]["passes_phase_seconds"] / by["local_pool_2"]["passes_phase_seconds"] - 1.0,
                3,
            )
        pool = by["local_pool_2"]
        out["grid_1000_projected_seconds"] = round(
            1000 / pool["passes_phase_per_s"] + pool["serial_seconds"], 1
        )
        if args.grid:
            grid = timed_study(p, tmp, {"parameters": GRID, "method": "grid"}, "grid_1000", workers=2)
            out["grid_1000_seconds"] = grid["wall_seconds"]
        if args.profile:
            out["one_pass"] = profile_pass(p, tmp, 25)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{out['machine']}; {out['data']}; {args.passes} passes per executor, identical tables")
    print(f"  load average before {out['load_average'][:3]}, after {out['load_average'][3:]}")
    for r in out["results"]:
        print(
            f"  {r['executor']:<14} {r['wall_seconds']:>8.2f} s (passes {r['passes_phase_seconds']:.2f} s, "
            f"{r['passes_phase_per_s']:.3f}/s; serial {r['serial_seconds']:.2f} s)  "
            f"mean pass {r['mean_pass_seconds']:.3f} s  CPU/pass {r['cpu_seconds_per_pass']:.3f} s  "
            f"utilisation {r['utilisation']:.0%}"
        )
    print(
        f"  speed-up on 2 workers: {out['speedup_2_workers']:.2f}x "
        f"(parallel fraction {out['parallel_fraction']:.0%})"
    )
    if "dask_overhead_vs_local_pool" in out:
        print(f"  Dask LocalCluster overhead vs the local pool: {out['dask_overhead_vs_local_pool']:+.1%}")
    print(f"  1,000-pass grid on 2 workers: projected {out['grid_1000_projected_seconds']:.0f} s", end="")
    print(f", measured {out['grid_1000_seconds']:.0f} s" if "grid_1000_seconds" in out else "")
    if "one_pass" in out:
        print(f"one pass in this process: {out['one_pass']['cpu_seconds']:.3f} CPU s")
        print(out["one_pass"]["profile"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
