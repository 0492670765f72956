"""bench/modes.py runs end to end on the real ticks of ../shared/data (figures not checked: bench/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "modes.py"


@pytest.mark.shared_data
def test_modes_bench_reports_cost_per_m1_bar_of_a_mode(shared_data: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--data", str(shared_data), "--modes", "real_ticks", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert list(doc["modes"]) == ["real_ticks"] and "portfolio" not in doc
    f = doc["modes"]["real_ticks"]
    assert f["m1_bars"] > 10_000 and f["decision_points"] > 100 and f["deals"] > 0
    assert f["us_per_m1_bar"] == pytest.approx(f["loop_seconds"] / f["m1_bars"] * 1e6, rel=0.01)


def test_modes_bench_refuses_an_unknown_mode() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--modes", "ohlc_m2"], capture_output=True, text=True, timeout=300
    )

    assert proc.returncode == 2
    assert "unknown modes ['ohlc_m2']" in proc.stderr
