"""Report timing of one stored run, as `mt5tester report RUN_ID [--pdf]` makes it, per phase.

    mt5tester backtest --config configs/portfolio_shared.yaml     # MT5TESTER_DB_URL=sqlite:////tmp/p.db, once
    python bench/report.py --db sqlite:////tmp/p.db [--run RUN_ID] [--repeat 3] [--no-pdf] [--json]

HTML: read the run (load) then write the page (html), with the page's phases. PDF: the browser is started
first (it loads the printed page's shell, plotly.js, while Python reads the run), then load, the printed
page's parts (render) and the printer's steps: waiting for the browser (ready), drawing the charts in it
(draw), printing (print). Each figure is the best of --repeat, wall seconds and Python's CPU seconds, and
Chromium's CPU seconds for the whole PDF (its processes' user + system time from /proc just before it is
closed).
On a shared machine the wall clock says more about the neighbours than about the report; the load average
is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from mt5tester.reports.content import load_run, open_results_db
from mt5tester.reports.html import run_page_parts, write_run_html
from mt5tester.reports.pdf import PdfPrinter
from mt5tester.results import db


class Clock:
    """Wall and CPU seconds of this process between ``lap`` calls."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.chromium = 0.0
        self._t = (time.perf_counter(), time.process_time())

    def lap(self, name: str) -> None:
        now = (time.perf_counter(), time.process_time())
        self.wall[name] = now[0] - self._t[0]
        self.cpu[name] = now[1] - self._t[1]
        self._t = now


def group_cpu(pgid: int) -> float:
    """User + system seconds of the live processes of process group ``pgid`` (Linux /proc)."""
    ticks = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class MeasuredPrinter(PdfPrinter):
    """A PdfPrinter that reads its browser's CPU seconds just before closing it."""

    cpu = 0.0

    def close(self) -> None:
        if not self.chromium.closed:
            self.cpu = group_cpu(self.chromium.pid)
        super().close()


def html_once(engine: Any, run_id: str, out: Path) -> tuple[Clock, dict[str, float], Path]:
    clock = Clock()
    rep = load_run(engine, run_id)
    clock.lap("load")
    phases: dict[str, float] = {}
    last = [time.perf_counter(), ""]

    def phase(name: str) -> None:
        now = time.perf_counter()
        if last[1]:
            phases[str(last[1])] = now - float(last[0])
        last[:] = [now, name]

    path = write_run_html(rep, out, "inline", phase)
    phase("")
    clock.lap("html")
    return clock, phases, path


def pdf_once(engine: Any, run_id: str, out: Path) -> tuple[Clock, dict[str, float], Path, int]:
    clock = Clock()
    printer = MeasuredPrinter()
    clock.lap("start browser")
    with printer:
        rep = load_run(engine, run_id)
        clock.lap("load")
        parts = run_page_parts(rep, static=True)
        clock.lap("render")
        path = printer.print(parts, out / "report.pdf")
    clock.lap("print")
    clock.chromium = printer.cpu
    return clock, printer.timings, path, len(rep.trades)


def best(runs: list[Clock]) -> dict[str, dict[str, float]]:
    """Per phase, the run with the least wall time of the whole."""
    top = min(runs, key=lambda c: sum(c.wall.values()))
    out = {k: {"wall": round(top.wall[k], 3), "cpu": round(top.cpu[k], 3)} for k in top.wall}
    if top.chromium:
        out["chromium"] = {"wall": 0.0, "cpu": round(top.chromium, 3)}
    return out


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
    results: dict[str, Any] = {"run_id": run_id, "repeat": args.repeat, "load_average": os.getloadavg()}
    html_runs: list[Clock] = []
    pdf_runs: list[Clock] = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            clock, phases, html = html_once(engine, run_id, Path(tmp))
            html_runs.append(clock)
            if sum(clock.wall.values()) <= min(sum(c.wall.values()) for c in html_runs):
                results["html_phases_s"] = {k: round(v, 3) for k, v in phases.items()}
            results["html_mb"] = round(html.stat().st_size / 1e6, 2)
            if not args.no_pdf:
                clock, steps, pdf, trades = pdf_once(engine, run_id, Path(tmp))
                pdf_runs.append(clock)
                if sum(clock.wall.values()) <= min(sum(c.wall.values()) for c in pdf_runs):
                    results["pdf_printer_s"] = {k: round(v, 3) for k, v in steps.items()}
                results["pdf_mb"] = round(pdf.stat().st_size / 1e6, 2)
                results["trades"] = trades
    results["load_average"] = [round(a, 2) for a in (*results["load_average"], *os.getloadavg())]
    results["html"] = best(html_runs)
    results["html_total_s"] = round(sum(v["wall"] for v in results["html"].values()), 3)  # no chromium
    if pdf_runs:
        results["pdf"] = best(pdf_runs)
        results["pdf_total_s"] = round(sum(v["wall"] for v in results["pdf"].values()), 3)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"run {run_id}: best of {args.repeat}; load average before / after {results['load_average']}")
    for kind in ("html", "pdf"):
        if kind not in results:
            continue
        print(f"  {kind}: {results[f'{kind}_total_s']:.2f} s wall, {results[f'{kind}_mb']} MB")
        for k, v in results[kind].items():
            print(f"    {k:14s} {v['wall']:6.2f} s wall {v['cpu']:6.2f} s cpu")
    print(f"  html phases: {results['html_phases_s']}")
    if "pdf_printer_s" in results:
        print(f"  printer steps: {results['pdf_printer_s']}")


if __name__ == "__main__":
    main()
