"""`mt5tester demo` through the installed console script, as README line 1 runs it."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_console_script_runs_end_to_end_and_prints_funnel_and_report(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "mt5tester"
    env = {k: v for k, v in os.environ.items() if k != "MT5TESTER_DB_URL"}
    proc = subprocess.run(
        [str(exe), "demo", "--out", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Lifecycle funnel" in out
    for stage in (
        "signals generated",
        "approved",
        "executed",
        "closed by sl",
        "closed by tp",
        "closed by end of run",
    ):
        assert stage in out
    report = Path(re.search(r"report: (\S+\.html)", out).group(1))  # type: ignore[union-attr]
    assert report.is_file()
    # the demo's run is in the default database (runs/ of the current folder), where `runs list` looks
    db_file = tmp_path / "runs" / "mt5tester.sqlite"
    run_id = re.search(r"^run (\w+):", out, re.M).group(1)  # type: ignore[union-attr]
    assert f"results database: sqlite:///{db_file} (mt5tester runs show {run_id})" in out
    listed = subprocess.run(
        [str(exe), "runs", "list", "--json"], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert listed.returncode == 0, listed.stderr
    paper_id = re.search(r"^paper session (\w+) completed: paper.yaml replayed", out, re.M).group(1)  # type: ignore[union-attr]
    assert sorted(r["run_id"] for r in json.loads(listed.stdout)) == sorted([run_id, paper_id])
    # the same bars_only per-bar strategy on the Python loop and on the signal pass + kernel: the same records
    flat = " ".join(out.split())
    assert re.search(
        r"drivers: drivers\.yaml, a bars_only per-bar Python strategy on 3 symbols M15 \([\d,]+ points, "
        r"\d+ deals\): Python loop [\d.]+ s, signal pass \+ compiled kernel [\d.]+ s, identical records",
        flat,
    ), flat[flat.find("drivers") :]
    # then a small optimization (grid, forward quarter) and a walk-forward, stored in the same database
    study = re.search(r"^optimize: study (\w+), 8 passes, best \{'fast': \d+, 'slow': \d+\}", out, re.M)
    walk = re.search(r"^walk_forward: study (\w+), 10 passes, .* WFE per fold ", out, re.M)
    assert study and walk, out[out.find("results database") :]
    studies = subprocess.run(
        [str(exe), "optimize", "list", "--json"], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert sorted(s["study_id"] for s in json.loads(studies.stdout)) == sorted(
        [study.group(1), walk.group(1)]
    )
    with sqlite3.connect(db_file) as conn:
        status, funnel = conn.execute(
            "SELECT status, funnel FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        deals = conn.execute("SELECT count(*) FROM deals WHERE run_id = ?", (run_id,)).fetchone()[0]
        sessions = conn.execute("SELECT run_id, mode FROM live_sessions").fetchall()
    assert sessions == [(paper_id, "paper")]
    assert status == "completed" and deals > 100
    assert '"executed"' in funnel
    html = report.read_text()
    assert "<h2>Lifecycle</h2>" in html and "Lifecycle funnel (recorded by the run)" in html
    assert 'id="chart-1"' in html and "<h2>MT5 report metrics</h2>" in html
