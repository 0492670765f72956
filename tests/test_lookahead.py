"""The lookahead checker through the CLI: built-ins clean, leaky strategies caught (exit 7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import FIXTURES, base_config, write_yaml

LEAKY = FIXTURES / "leaky.py"


def _config(demo_data: Path, tmp_path: Path, spec: str) -> Path:
    raw = base_config(demo_data, tmp_path, warmup_bars=40, end="2024-02-01")
    raw["strategies"] = [{"class": spec, "name": "s"}]
    return write_yaml(tmp_path / "c.yaml", raw)


@pytest.mark.parametrize(
    ("cls", "kind"),
    [
        ("CentredWindow", "prepare"),
        ("UnclosedHigherTimeframe", "prepare"),
        ("WholeSeriesNormalised", "prepare"),
    ],
)
def test_check_lookahead_catches_leaky_strategy(
    demo_data: Path, tmp_path: Path, run_cli, cls: str, kind: str
) -> None:
    cfg = _config(demo_data, tmp_path, f"{LEAKY}:{cls}")
    code, out, err = run_cli("check-lookahead", "s", "--config", str(cfg), "--points", "3", "--json")
    assert code == 7, err
    report = json.loads(out)
    assert report["clean"] is False
    assert any(d["kind"] == kind for d in report["differences"])
    assert "LookaheadFound" in err and "differences between full and truncated runs" in err


def test_check_lookahead_terminal_cannot_leak(demo_data: Path, tmp_path: Path, run_cli) -> None:
    cfg = _config(demo_data, tmp_path, f"{LEAKY}:TerminalPeek")
    code, out, err = run_cli("check-lookahead", "s", "--config", str(cfg), "--points", "2")
    assert code == 0, err
    assert "clean: no lookahead found" in out
    import sys

    mod = next(m for m in sys.modules.values() if getattr(m, "__file__", None) == str(LEAKY))
    assert mod.PEEKS and all(newest <= now for now, newest in mod.PEEKS)


def test_check_lookahead_builtin_ma_cross_clean(demo_data: Path, tmp_path: Path, run_cli) -> None:
    cfg = _config(demo_data, tmp_path, "ma_cross")
    code, out, _ = run_cli("check-lookahead", "s", "--config", str(cfg), "--points", "4", "--json")
    report = json.loads(out)
    assert code == 0 and report["clean"] is True and report["signals_checked"] > 10
