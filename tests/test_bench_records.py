"""bench/records.py runs end to end on a few rows (its figures are not checked: timing lives in bench/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "records.py"


def test_records_bench_compares_rows_then_reports_both_recorders_on_sqlite() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--rows",
            "400",
            "--repeat",
            "1",
            "--backends",
            "sqlite",
            "--baseline",
            "HEAD",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    (result,) = doc["results"]
    assert doc["baseline"] == "HEAD"  # any revision; HEAD exists in every clone
    assert result["backend"] == "sqlite" and result["rows"] == 400
    assert result["baseline_rows_per_s"] > 0 and result["current_rows_per_s"] > 0 and result["ratio"] > 0
    assert len(result["seconds"]["baseline"]) == len(result["seconds"]["current"]) == 1


def test_records_bench_unknown_backend_is_refused() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--rows", "8", "--repeat", "1", "--backends", "oracle"],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert proc.returncode == 1
    assert "unknown backend 'oracle' (sqlite, postgres)" in proc.stderr
