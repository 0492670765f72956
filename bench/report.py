"""Report timing: load (read + trades + metrics, once), HTML, PDF of one stored run, per phase.

    mt5tester backtest --config configs/portfolio_shared.yaml --db sqlite:////tmp/portfolio.db   # ~83 s, once
    python bench/report.py --db sqlite:////tmp/portfolio.db [--run RUN_ID] [--repeat 3] [--no-pdf] [--json]

Prints seconds per phase (best of --repeat), the file sizes, and CPU seconds next to wall seconds: on a
shared machine the wall clock says more about the neighbours than about the report. ``--json`` prints one
JSON document instead.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from mt5tester.reports.content import RunReport, load_run, open_results_db
from mt5tester.reports.html import write_run_html
from mt5tester.reports.pdf import write_run_pdf
from mt5tester.results import db


class Phases:
    """Wall and CPU seconds between phase callbacks."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._name = ""
        self._t = (time.perf_counter(), time.process_time())

    def __call__(self, name: str) -> None:
        self.close()
        self._name = name

    def close(self) -> None:
        now = (time.perf_counter(), time.process_time())
        if self._name:
            self.wall[self._name] = self.wall.get(self._name, 0.0) + now[0] - self._t[0]
            self.cpu[self._name] = self.cpu.get(self._name, 0.0) + now[1] - self._t[1]
        self._t = now


def timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float, float]:
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - w, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True, help="results database URL")
    ap.add_argument("--run", help="run id (default: the run with the most deals)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-pdf", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    engine = open_results_db(args.db)
    run_id = args.run
    if run_id is None:
        n = func.count()
        with engine.connect() as conn:
            q = select(db.deals.c.run_id, n).group_by(db.deals.c.run_id).order_by(n.desc()).limit(1)
            run_id = str(conn.execute(q).one()[0])
    results: dict[str, Any] = {"run_id": run_id, "repeat": args.repeat}
    best: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            rep: RunReport
            rep, w, c = timed(load_run, engine, run_id)
            best["load"] = min(best.get("load", (w, c)), (w, c))
            phases = Phases()
            html, w, c = timed(write_run_html, rep, Path(tmp), None, phases)
            phases.close()
            best["html"] = min(best.get("html", (w, c)), (w, c))
            results["html_phases_s"] = {k: round(v, 3) for k, v in phases.wall.items()}
            results["html_mb"] = round(html.stat().st_size / 1e6, 2)
            if not args.no_pdf:
                pdf, w, c = timed(write_run_pdf, rep, Path(tmp))
                best["pdf"] = min(best.get("pdf", (w, c)), (w, c))
                results["pdf_mb"] = round(pdf.stat().st_size / 1e6, 2)
        results["trades"] = len(rep.trades)
    results["wall_s"] = {k: round(v[0], 3) for k, v in best.items()}
    results["cpu_s"] = {k: round(v[1], 3) for k, v in best.items()}
    results["html_total_s"] = round(best["load"][0] + best["html"][0], 3)
    if "pdf" in best:
        results["pdf_total_s"] = round(best["load"][0] + best["pdf"][0], 3)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"run {run_id}: {results['trades']} trades, best of {args.repeat}")
    for k in best:
        print(f"  {k:5s} {best[k][0]:7.2f} s wall  {best[k][1]:7.2f} s cpu")
    print(f"  html phases: {results['html_phases_s']}")
    print(f"  report html (load + page): {results['html_total_s']:.2f} s, {results['html_mb']} MB")
    if "pdf" in best:
        print(f"  report pdf  (load + print): {results['pdf_total_s']:.2f} s, {results['pdf_mb']} MB")


if __name__ == "__main__":
    main()
