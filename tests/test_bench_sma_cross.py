"""The benchmark's engines against its independent numpy reference: exact entries, prices and PnL.

Timing is not asserted (bench/ reports it); this proves each of our strategy forms, and vectorbt when it
is installed (the bench extra; not in CI), trades exactly the reference SMA cross, so the bench's
figures are about the same work.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "sma_cross.py"
OURS = "mt5tester,mt5tester_numpy,mt5tester_indicators,mt5tester_indicators_loop,mt5tester_prepared"


def _bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("sma_cross_bench", BENCH)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


CASES = [([], 738), (["--fast", "50", "--slow", "200"], 139), (["--tie", "1e9"], 0)]


@pytest.mark.parametrize(("extra", "trades"), CASES)
def test_every_form_matches_the_reference_exactly(
    extra: list[str], trades: int, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _bench()
    code = bench.main(["--bars", "20000", "--engines", OURS, "--no-process", "--json", *extra])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["bars"] == 20000 and doc["reference"]["trades"] == trades
    for name in OURS.split(","):
        e = doc["engines"][name]
        assert e["matches_reference"] is True, (name, e.get("mismatch"), e.get("error"))
        assert (e["trades"], e["pnl"]) == (trades, doc["reference"]["pnl"])
        # The run phase (loop + the strategy's prepare()) is inside the whole run.
        assert 0 < e["run_phase_seconds"] <= e["run_seconds"] and e["run_phase_bars_per_s"] >= e["bars_per_s"]
    micro = doc["mt5tester_micro"]
    # The flat per-bar run decides on every bar after the first warm-up window.
    assert micro["mt5tester_indicators"]["flat_decision_points"] == 20000 - bench.WARMUP
    assert "flat_engine_us_per_decision_point" in micro["mt5tester_indicators"]
    assert ("us_per_reversal" in micro["mt5tester_prepared"]) == (trades > 0)
    # the per-bar forms: a signal pass, then the kernel (driver b); the same strategy forced on the Python
    # loop (driver a), whose reversals go through Python objects
    for name, driver in (("mt5tester_indicators", "kernel"), ("mt5tester_indicators_loop", "loop")):
        assert ("us_per_reversal" in micro[name]) == (trades > 0)
        assert doc["engines"][name]["driver"] == driver
    for name in ("mt5tester", "mt5tester_numpy", "mt5tester_prepared"):
        assert doc["engines"][name]["driver"] == "kernel", doc["engines"][name]["driver_reason"]


@pytest.mark.parametrize(("extra", "trades"), CASES)
def test_vectorbt_matches_the_reference_exactly(
    extra: list[str], trades: int, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("vectorbt")  # the bench extra; CI does not install it
    code = _bench().main(["--bars", "20000", "--engines", "vectorbt", "--no-process", "--json", *extra])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    e = doc["engines"]["vectorbt"]
    assert e["matches_reference"] is True, (e.get("mismatch"), e.get("error"))
    assert doc["reference"]["trades"] == trades
    assert (e["trades"], e["pnl"]) == (trades, doc["reference"]["pnl"])
    assert 0 < e["run_phase_seconds"] <= e["run_seconds"]


def test_a_peer_that_is_not_installed_is_reported_not_failed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _bench()
    monkeypatch.setitem(bench.PEER_MODULES, "vectorbt", "no_such_module_for_the_bench")
    code = bench.main(["--bars", "5000", "--engines", "vectorbt", "--no-process", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["engines"]["vectorbt"]["error"].startswith("not available")


def test_sizes_sweep_reports_each_size_and_skips_slow_engines_above_the_cap(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--sizes", "3000,6000", "--slow-max-bars", "4000", "--engines", "mt5tester,mt5tester_prepared"]
    code = _bench().main([*argv, "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    small, big = doc["sizes"]
    assert (small["bars"], big["bars"]) == (3000, 6000)
    assert set(small["engines"]) == {"mt5tester", "mt5tester_prepared"}
    assert set(big["engines"]) == {"mt5tester_prepared"} and "mt5tester" in big["skipped"]
    for size in (small, big):
        e = size["engines"]["mt5tester_prepared"]
        assert e["matches_reference"] is True
        assert e["run_phase_bars_per_s"] and "bytes_per_bar" in e
        assert "whole_process" not in size  # a sweep has no whole-process runs
