"""Cost of each tester mode per M1 bar on one symbol-year of real data, and the real portfolio's loop time.

    python bench/modes.py [--data DIR] [--modes LIST] [--year 2019] [--portfolio] [--profile N] [--json]

Modes: the same SL/TP moving-average cross (8/21 on H1, SL 60 / TP 90 points, spread 8 points) on EURUSD
M1 of one year (``<data>/m1``) in ``open_prices``, ``ohlc_m1`` and ``every_tick``; ``real_ticks`` on the
only recorded ticks there are (``<data>/ticks``: EURUSD, 2014-05-01 .. 05-15, M1 built from the ticks),
so its figure is per M1 bar of those two weeks. Each run goes through ``mt5tester.run()`` into a
temporary SQLite database, the full path, after an untimed 4-day run of the same mode (the compiled
kernels' cache loaded). Reported per mode: the loop's seconds (``RunResult.loop_seconds``:
decision points, replay, strategies, orders, records; not the build nor the metrics), the M1 bars
simulated, µs per M1 bar, decision points, deals, and the whole run's seconds (build and data included).

``--portfolio`` runs configs/portfolio_shared.yaml (7 symbols, 22 months, 7 strategies) the same way and
reports its loop time, the process's CPU seconds (after the build and in all: the machine is shared,
wall time measures its load) and ``records_sha256``, a digest of the stored deals, orders, positions and
signals (equal digests: the same records); with ``--profile N`` it runs under cProfile (CPU time) and
prints the N costliest functions (by own time and by cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import mt5tester  # noqa: E402
from mt5tester.config import load_config, parse_config  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data"
MODES = ("open_prices", "ohlc_m1", "every_tick", "real_ticks")


def mode_config(mode: str, data: Path, tmp: Path, year: int) -> dict[str, Any]:
    folder = tmp / f"data_{mode}"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    if mode == "real_ticks":
        src = data / "ticks" / "EURUSD_ticks_2014-05-01_2014-05-15_oanda.parquet"
        (folder / "EURUSD_ticks_oanda.parquet").symlink_to(src)
        start, end, warmup = "2014-05-05", "2014-05-16", 30
    else:
        (folder / "EURUSD_M1_real.parquet").symlink_to(data / "m1" / "EURUSD_M1_2018-2019.parquet")
        start, end, warmup = f"{year}-01-01", f"{year}-12-31", 60
    return {
        "backtest": {
            "start": start,
            "end": end,
            "symbols": ["EURUSD"],
            "primary_timeframe": "H1",
            "warmup_bars": warmup,
            "tester_mode": mode,
        },
        "data": {"path": str(folder)},
        "execution": {"spread": {"source": "fixed", "points": 8}},
        "strategies": [
            {"class": "ma_cross", "params": {"fast": 8, "slow": 21, "sl_points": 60, "tp_points": 90}}
        ],
        "results": {"database_url": f"sqlite:///{tmp / (mode + '.sqlite')}", "out_dir": str(tmp / "out")},
        "report": {"html": False},
    }


def _days_after(day: str, n: int) -> str:
    import datetime as dt

    return (dt.date.fromisoformat(day) + dt.timedelta(days=n)).isoformat()


def figures(result: Any, whole: float) -> dict[str, Any]:
    bars = result.m1_bars
    return {
        "loop_seconds": result.loop_seconds,
        "m1_bars": bars,
        "us_per_m1_bar": round(result.loop_seconds / bars * 1e6, 3) if bars else None,
        "m1_bars_per_s": round(bars / result.loop_seconds) if result.loop_seconds else None,
        "decision_points": result.funnel["decision_points"],
        "deals": result.deal_count,
        "whole_run_seconds": round(whole, 2),
    }


def run_modes(modes: list[str], data: Path, year: int) -> dict[str, Any]:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            raw = mode_config(mode, data, Path(tmp), year)
            # warm-up, untimed: the compiled kernels' cache is loaded (or compiled) once per process
            short = {**raw["backtest"], "end": _days_after(raw["backtest"]["start"], 4)}
            warm = raw | {
                "backtest": short,
                "results": raw["results"]
                | {"database_url": f"sqlite:///{Path(tmp) / (mode + '_warm.sqlite')}"},
            }
            mt5tester.run(parse_config(warm), base_dir=Path(tmp))
            cfg = parse_config(raw)
            t0 = time.perf_counter()
            result = mt5tester.run(cfg, base_dir=Path(tmp))
            out[mode] = figures(result, time.perf_counter() - t0)
            print(f"{mode:12} {out[mode]}", file=sys.stderr)
    return out


def top(profile: cProfile.Profile, key: str, n: int) -> list[dict[str, Any]]:
    stats = pstats.Stats(profile, stream=io.StringIO())
    rows = []
    for (file, line, func), (_cc, calls, own, cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = file.replace(str(ROOT) + "/", "").replace(sys.prefix, "<venv>")
        rows.append({"function": f"{where}:{line}({func})", "calls": calls, "own_s": own, "cum_s": cum})
    rows.sort(key=lambda r: r[key], reverse=True)
    return [{**r, "own_s": round(r["own_s"], 3), "cum_s": round(r["cum_s"], 3)} for r in rows[:n]]


def records_digest(result: Any) -> str:
    """SHA-256 (16 hex) of the run's deals, orders, positions and signals as stored (the run id and the
    stored row ids left out): two runs with the same digest recorded the same trades and decisions."""
    import hashlib

    h = hashlib.sha256()
    for frame in (result.deals, result.orders, result.positions, result.signals):
        frame = frame.drop(columns=[c for c in ("run_id", "id") if c in frame.columns])
        h.update(frame.to_csv(index=False).encode())
    return h.hexdigest()[:16]


def run_portfolio(
    profile_top: int, end: str | None = None, profile_out: Path | None = None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        overrides = {
            "results.database_url": f"sqlite:///{Path(tmp) / 'portfolio.sqlite'}",
            "results.out_dir": str(Path(tmp) / "out"),
            "report.html": False,
            "backtest.end": end,
        }
        path = ROOT / "configs" / "portfolio_shared.yaml"
        cfg = load_config(path, overrides)
        profile = cProfile.Profile(time.process_time) if profile_top else None  # CPU: the machine is shared
        built: list[float] = []  # CPU time when the build ends (the machine is shared: CPU beside wall)
        t0, c0 = time.perf_counter(), time.process_time()
        if profile is not None:
            profile.enable()
        result = mt5tester.run(
            cfg, base_dir=path.parent, on_start=lambda c, _: built.append(time.process_time())
        )
        if profile is not None:
            profile.disable()
        c2 = time.process_time()
        out = figures(result, time.perf_counter() - t0)
        out["whole_run_cpu_seconds"] = round(c2 - c0, 2)
        out["run_cpu_seconds"] = round(c2 - built[0], 2)  # loop, last records, funnel (build excluded)
        out["trades"] = int(result.metrics.total_trades)
        out["records_sha256"] = records_digest(result)
        out["symbols"] = len(cfg.backtest.symbols)
        out["strategies"] = len(cfg.strategies)
        if profile is not None and profile_out is not None:
            profile.dump_stats(profile_out)  # for pstats: callers, callees
        if profile is not None:
            out["profiled"] = True  # the figures above include cProfile's overhead
            out["top_own"] = top(profile, "own_s", profile_top)
            out["top_cumulative"] = top(profile, "cum_s", profile_top)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder (m1/, ticks/)")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated; '' for none")
    ap.add_argument("--year", type=int, default=2019, help="the symbol-year of the bar modes (2018 or 2019)")
    ap.add_argument("--portfolio", action="store_true", help="also run configs/portfolio_shared.yaml")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="profile the portfolio: top N")
    ap.add_argument("--portfolio-end", help="YYYY-MM-DD: end the portfolio run earlier (a shorter profile)")
    ap.add_argument("--profile-out", type=Path, help="also write the raw cProfile stats there")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        ap.error(f"unknown modes {unknown}; choose from {', '.join(MODES)}")
    doc: dict[str, Any] = {
        "bench": "modes",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}",
        "modes": run_modes(modes, args.data, args.year),
    }
    if args.portfolio or args.profile:
        doc["portfolio"] = run_portfolio(args.profile, args.portfolio_end, args.profile_out)
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    for mode, f in doc["modes"].items():
        print(
            f"{mode:12} {f['us_per_m1_bar']:>8} µs/M1 bar ({f['m1_bars']:,} bars, loop {f['loop_seconds']} s, "
            f"{f['decision_points']:,} points, {f['deals']} deals; whole run {f['whole_run_seconds']} s)"
        )
    if "portfolio" in doc:
        p = doc["portfolio"]
        print(
            f"portfolio: loop {p['loop_seconds']} s ({p['m1_bars']:,} M1 bars, {p['trades']} trades); "
            f"whole run {p['whole_run_seconds']} s{' under cProfile' if p.get('profiled') else ''}; "
            f"CPU {p['run_cpu_seconds']} s after the build, {p['whole_run_cpu_seconds']} s in all; "
            f"records {p['records_sha256']}"
        )
        for r in p.get("top_own", []):
            print(f"  {r['own_s']:8.2f} s own {r['cum_s']:8.2f} s cum {r['calls']:>9} calls  {r['function']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
