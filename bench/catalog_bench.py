"""Benchmark the market-data catalog on the real M1 files: import time, load time, resident memory per bar.

Usage: .venv/bin/python bench/catalog_bench.py [--shared-data DIR] [--repeat K]

1. Imports every ``m1/*.parquet`` of the shared data (7 symbols x 2 years) into a temporary catalog
   (timed: file read + merge + Parquet write), then re-imports one file to time the idempotent path.
2. Loads all symbols from the catalog in a **fresh** process (so the import's memory does not count),
   measuring the resident set size before and after; the arrays stay alive while RSS is read. The loaded
   data is verified (rows and column sums equal to the source files) before any figure is reported.
3. Peer, in another fresh process: ``pandas.read_parquet`` of the same source files.

Prints one JSON object: import_s, reimport_s, load_s (best of --repeat), rows, rss_delta_bytes,
rss_bytes_per_bar, bytes_per_bar_arrays, catalog_bytes, peer figures and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = Path(os.environ.get("MT5TESTER_SHARED_DATA", ROOT.parent / "shared" / "data"))


def rss_bytes() -> int:
    """Current resident set size (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def checksum(arrays: dict[str, Any]) -> dict[str, float]:
    return {k: float(v.sum()) for k, v in arrays.items()}


def do_import(shared: Path, root: Path) -> dict[str, Any]:
    from mt5tester.data.catalog import Catalog
    from mt5tester.data.store import read_m1_parquet

    files = sorted((shared / "m1").glob("*_M1_*.parquet"))
    cat = Catalog(root)
    expected: dict[str, Any] = {}
    t0 = time.perf_counter()
    for f in files:
        symbol = f.name.split("_")[0]
        bars = read_m1_parquet(f, symbol)
        res = cat.import_bars(bars, str(f))
        assert res.rows_new == len(bars), res
        expected[symbol] = {"rows": len(bars), "sums": checksum({"time": bars.time, "close": bars.close})}
    import_s = time.perf_counter() - t0
    f = files[0]
    t0 = time.perf_counter()
    again = cat.import_bars(read_m1_parquet(f, f.name.split("_")[0]), str(f))
    reimport_s = time.perf_counter() - t0
    assert again.rows_new == 0 and again.partitions_written == (), again
    size = sum(p.stat().st_size for p in root.rglob("*.parquet"))
    return {"files": len(files), "import_s": import_s, "reimport_s": reimport_s, "catalog_bytes": size,
            "expected": expected}  # fmt: skip


def do_load(root: Path, symbols: list[str], repeat: int) -> dict[str, Any]:
    """Runs in a fresh process. First load: RSS delta; further loads: time only."""
    import gc

    import numpy as np  # noqa: F401  (imports before the RSS baseline)
    import pyarrow.parquet  # noqa: F401

    from mt5tester.data.catalog import Catalog

    cat = Catalog(root)
    gc.collect()
    base = rss_bytes()
    t0 = time.perf_counter()
    held = {s: cat.load(s, "M1") for s in symbols}
    first_s = time.perf_counter() - t0
    gc.collect()
    after = rss_bytes()
    rows = sum(len(b) for b in held.values())
    array_bytes = sum(sum(getattr(b, f).nbytes for f in ("time", "open", "high", "low", "close",
                                                          "tick_volume", "spread")) for b in held.values())  # fmt: skip
    sums = {
        s: {"rows": len(b), "sums": checksum({"time": b.time, "close": b.close})} for s, b in held.items()
    }
    del held
    times = [first_s]
    for _ in range(repeat - 1):
        t0 = time.perf_counter()
        again = {s: cat.load(s, "M1") for s in symbols}
        times.append(time.perf_counter() - t0)
        del again
    return {"load_s": min(times), "load_first_s": first_s, "rows": rows, "rss_delta_bytes": after - base,
            "array_bytes": array_bytes, "check": sums}  # fmt: skip


def do_peer(shared: Path, repeat: int) -> dict[str, Any]:
    import pandas as pd

    files = sorted((shared / "m1").glob("*_M1_*.parquet"))
    base = rss_bytes()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        frames = [pd.read_parquet(f) for f in files]
        times.append(time.perf_counter() - t0)
        if len(times) == 1:
            rss = rss_bytes() - base
            rows = sum(len(x) for x in frames)
        del frames
    return {"peer_load_s": min(times), "peer_rows": rows, "peer_rss_delta_bytes": rss}


def child(mode: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, *args], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared-data", type=Path, default=DEFAULT_SHARED)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        mode, *rest = a.child
        if mode == "load":
            print(json.dumps(do_load(Path(rest[0]), rest[1].split(","), int(rest[2]))))
        else:
            print(json.dumps(do_peer(Path(rest[0]), int(rest[1]))))
        return
    if not (a.shared_data / "m1").is_dir():
        sys.exit(f"shared data not found at {a.shared_data} (pass --shared-data)")
    with tempfile.TemporaryDirectory(prefix="catalog_bench_") as tmp:
        imp = do_import(a.shared_data, Path(tmp))
        expected = imp.pop("expected")
        load = child("load", tmp, ",".join(sorted(expected)), str(a.repeat))
    check = load.pop("check")
    if check != expected:
        sys.exit(f"verification failed: loaded data differs from the source files: {check} != {expected}")
    peer = child("peer", str(a.shared_data), str(a.repeat))
    rows = load["rows"]
    print(json.dumps({
        "symbols": len(expected),
        "rows": rows,
        "import_s": round(imp["import_s"], 3),
        "import_rows_per_s": round(rows / imp["import_s"]),
        "reimport_one_file_s": round(imp["reimport_s"], 3),
        "load_s": round(load["load_s"], 3),
        "load_first_s": round(load["load_first_s"], 3),
        "load_rows_per_s": round(rows / load["load_s"]),
        "rss_delta_bytes": load["rss_delta_bytes"],
        "rss_bytes_per_bar": round(load["rss_delta_bytes"] / rows, 1),
        "bytes_per_bar_arrays": round(load["array_bytes"] / rows, 1),
        "catalog_bytes": imp["catalog_bytes"],
        "peer": "pandas.read_parquet of the source files",
        "peer_load_s": round(peer["peer_load_s"], 3),
        "peer_rss_bytes_per_bar": round(peer["peer_rss_delta_bytes"] / peer["peer_rows"], 1),
        "load_speed_ratio_vs_peer": round(peer["peer_load_s"] / load["load_s"], 2),
        "verified": True,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
