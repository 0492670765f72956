"""The benchmark's engines against its independent numpy reference: exact entries, prices and PnL.

Timing is not asserted (bench/ reports it); this proves each of our strategy forms trades exactly the
reference SMA cross, so the bench's figures are about the same work.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "sma_cross.py"
OURS = "mt5tester,mt5tester_numpy,mt5tester_indicators,mt5tester_prepared"


def _bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("sma_cross_bench", BENCH)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(
    ("extra", "trades"),
    [([], 738), (["--fast", "50", "--slow", "200"], 139), (["--tie", "1e9"], 0)],
)
def test_every_form_matches_the_reference_exactly(
    extra: list[str], trades: int, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _bench().main(["--bars", "20000", "--engines", OURS, "--no-process", "--json", *extra])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["bars"] == 20000 and doc["reference"]["trades"] == trades
    for name in OURS.split(","):
        e = doc["engines"][name]
        assert e["matches_reference"] is True, (name, e.get("mismatch"), e.get("error"))
        assert (e["trades"], e["pnl"]) == (trades, doc["reference"]["pnl"])
