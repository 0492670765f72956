"""Rows per second into the results database: the recorder of this checkout against a baseline recorder
(by default the one before the columnar buffers, read from git), in the same run, on SQLite and PostgreSQL.

    python bench/records.py [--rows N] [--backends sqlite,postgres] [--baseline REV] [--repeat K] [--json]

The workload is a run's: per reversal two deals, one signal (with its decision) and one equity row, added
one by one through ``add(table, row)`` as the journal adds them, a checkpoint-style flush every
``--checkpoint-rows`` rows (the recorder's own ``batch_rows`` flushes in between) and ``finish``. Timed
from the first ``add`` to the end of ``finish`` (the producer's dicts are built before the clock starts,
so only the recorder is measured): wall time (medians) and this process's CPU time (all of SQLite's
work; on PostgreSQL only the client's side, the server's work shows in the wall time). Both recorders get identical rows; the rows they wrote are read back
and compared before any figure is printed (exit 1 if they differ). PostgreSQL is used when
``MT5TESTER_PG_URL`` reaches a server; each recorder writes into a fresh database.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import types
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import create_engine, make_url, select, text  # noqa: E402

from mt5tester.results import db  # noqa: E402
from mt5tester.results import recorder as current  # noqa: E402

BASELINE_REV = "f6e5ce9"  # main before issue 14's columnar recorder (dict rows, executemany per batch)


def baseline_module(rev: str) -> types.ModuleType:
    """The recorder module as it was at ``rev`` (git show), imported under another name."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:src/mt5tester/results/recorder.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType(f"recorder_at_{rev}")
    module.__file__ = f"<recorder at {rev}>"
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def workload(reversals: int) -> list[tuple[Any, dict[str, Any]]]:
    """(table, row) in the order a run adds them: per reversal an equity row, a signal, two deals."""
    out: list[tuple[Any, dict[str, Any]]] = []
    t0 = 1_704_067_200_000_000_000
    balance = 10_000.0
    for i in range(reversals):
        t = t0 + i * 60_000_000_000
        out.append(
            (
                db.equity,
                {"time": t, "balance": balance, "equity": balance + 1.5, "margin": 12.3, "open_positions": 1},
            )
        )
        out.append(
            (
                db.signals,
                {
                    "signal_id": i + 1,
                    "time": t,
                    "strategy": "sma_cross",
                    "symbol": "EURUSD",
                    "timeframe": "M1",
                    "direction": "buy" if i % 2 else "sell",
                    "order_type": "market",
                    "price": None,
                    "sl": 1.0812,
                    "tp": None,
                    "confidence": 1.0,
                    "comment": "",
                    "tags": {"leg": i % 3},
                    "status": "approved",
                    "rule": None,
                    "reason": None,
                    "details": {"risk": 0.5, "volume": 0.1},
                    "volume": 0.1,
                    "order_ticket": 2 * i + 2,
                    "retcode": 10009,
                    "position_id": 2 * i + 2,
                },
            )
        )
        for k in (0, 1):
            profit = round((i % 7 - 3) * 1.37, 2) if k == 0 else 0.0
            balance = round(balance + profit, 2)
            out.append(
                (
                    db.deals,
                    {
                        "ticket": 2 * i + k + 2,
                        "order": 2 * i + k + 2,
                        "time": t,
                        "type": (i + k) % 2,
                        "entry": 1 - k,
                        "reason": 3,
                        "position_id": 2 * i + 1 + k,
                        "symbol": "EURUSD",
                        "volume": 0.1,
                        "price": 1.08123 + i * 1e-5,
                        "commission": -0.35,
                        "swap": 0.0,
                        "profit": profit,
                        "balance": balance,
                        "comment": "signal",
                        "strategy": "sma_cross",
                        "signal_id": i + 1,
                    },
                )
            )
    return out


def fresh_pg(admin_url: str) -> tuple[str, Any]:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"mt5tester_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), (admin, name)


def drop_pg(handle: Any) -> None:
    admin, name = handle
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def read_back(engine: Any, run_id: str) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with engine.connect() as conn:
        for name, key in (("deals", "ticket"), ("signals", "signal_id"), ("equity", "time")):
            table = db.metadata.tables[name]
            cols = [c for c in table.columns if c.name != "run_id"]
            out[name] = [
                tuple(r)
                for r in conn.execute(
                    select(*cols).where(table.c.run_id == run_id).order_by(table.c[key])
                ).all()
            ]
    return out


def one(module: types.ModuleType, url: str, rows: list[tuple[Any, dict[str, Any]]], every: int) -> tuple:
    engine = db.connect(url, use_env=False)
    run_id = uuid.uuid4().hex[:12]
    rec = module.Recorder(engine, run_id)
    rec.start_run({"bench": True}, "h", 1, 10_000.0, "USD", [])
    batch = [(table, dict(row)) for table, row in rows]  # fresh dicts: a recorder may keep or change them
    t0, c0 = time.perf_counter(), time.process_time()
    for n, (table, row) in enumerate(batch, 1):
        rec.add(table, row)
        if n % every == 0:
            rec.flush()
    rec.finish("completed", {"decision_points": len(rows)}, None)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    stored = read_back(engine, run_id)
    engine.dispose()
    return seconds, cpu, stored


def bench_backend(
    name: str, url_of: Any, base: types.ModuleType, rows: list, every: int, repeat: int
) -> dict:
    times: dict[str, list[float]] = {"baseline": [], "current": []}
    cpus: dict[str, list[float]] = {"baseline": [], "current": []}
    stored: dict[str, Any] = {}
    for _ in range(repeat):
        for label, module in (("baseline", base), ("current", current)):
            url, handle = url_of()
            try:
                seconds, cpu, stored[label] = one(module, url, rows, every)
            finally:
                if handle is not None:
                    drop_pg(handle)
            times[label].append(seconds)
            cpus[label].append(cpu)
    if stored["baseline"] != stored["current"]:
        for table in stored["baseline"]:
            a, b = stored["baseline"][table], stored["current"][table]
            first = next(
                (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
            )
            if a != b:
                print(
                    f"{name}: {table} differs at row {first}: {a[first : first + 1]} vs {b[first : first + 1]}"
                )
        raise SystemExit(1)
    med = {k: statistics.median(v) for k, v in times.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpus.items()}
    n = len(rows)
    return {
        "backend": name,
        "rows": n,
        "baseline_rows_per_s": round(n / med["baseline"]),
        "current_rows_per_s": round(n / med["current"]),
        "ratio": round(med["baseline"] / med["current"], 2),
        "baseline_us_per_row": round(med["baseline"] / n * 1e6, 2),
        "current_us_per_row": round(med["current"] / n * 1e6, 2),
        # this process's CPU: all of SQLite's work, only the client's side of PostgreSQL's
        "baseline_cpu_us_per_row": round(cpu_med["baseline"] / n * 1e6, 2),
        "current_cpu_us_per_row": round(cpu_med["current"] / n * 1e6, 2),
        "cpu_ratio": round(cpu_med["baseline"] / cpu_med["current"], 2),
        "seconds": {k: [round(s, 3) for s in v] for k, v in times.items()},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000, help="rows in all (4 per reversal)")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--baseline", default=BASELINE_REV, help="git revision of the baseline recorder")
    ap.add_argument("--checkpoint-rows", type=int, default=50_000, help="a flush every N rows (a checkpoint)")
    ap.add_argument("--repeat", type=int, default=3, help="medians of K runs")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    base = baseline_module(args.baseline)
    rows = workload(args.rows // 4)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(10**6))
        for backend in args.backends.split(","):
            if backend == "sqlite":

                def url_of() -> tuple[str, None]:
                    return f"sqlite:///{Path(tmp) / f'r{next(counter)}.sqlite'}", None
            elif backend == "postgres":
                pg = os.environ.get("MT5TESTER_PG_URL")
                if not pg:
                    print("postgres: MT5TESTER_PG_URL not set, skipped", file=sys.stderr)
                    continue

                def url_of(pg: str = pg) -> tuple[str, Any]:
                    return fresh_pg(pg)
            else:
                raise SystemExit(f"unknown backend {backend!r} (sqlite, postgres)")
            results.append(bench_backend(backend, url_of, base, rows, args.checkpoint_rows, args.repeat))
    doc = {
        "bench": "records",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}",
        "baseline": args.baseline,
        "results": results,
    }
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        for r in results:
            print(
                f"{r['backend']:9} {r['rows']:>9,} rows: baseline {r['baseline_rows_per_s']:>9,} rows/s "
                f"({r['baseline_us_per_row']} µs/row), now {r['current_rows_per_s']:>9,} rows/s "
                f"({r['current_us_per_row']} µs/row): {r['ratio']}x; process CPU µs/row "
                f"{r['baseline_cpu_us_per_row']} -> {r['current_cpu_us_per_row']} ({r['cpu_ratio']}x)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
