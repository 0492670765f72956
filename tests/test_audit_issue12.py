"""Audit of issue 12's landed points with inputs other than their own tests use."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from mt5tester.results.funnel import funnel_from_db

from conftest import FIXTURES, base_config, write_yaml


def test_run_script_name_too_long_for_the_database_names_the_script_file(
    demo_data: Path, tmp_path: Path, run_cli
) -> None:
    # Point 20: a name longer than its column is refused before the run on every backend. A script's
    # runs are named "script:<file name>", so the fix is renaming the file, not editing the config.
    script = tmp_path / ("s" * 125 + ".py")
    shutil.copy(FIXTURES / "scripts" / "open_close.py", script)
    cfg = write_yaml(
        tmp_path / "c.yaml", base_config(demo_data, tmp_path, start="2024-01-03", end="2024-01-05")
    )
    code, _out, err = run_cli("run-script", str(script), "--config", str(cfg))
    assert code == 2
    assert f"script file name {script.name!r} has 128 characters" in err
    assert "at most 121 (strategy names hold 128, with 'script:')" in err
    assert "Rename the script" in err
    assert "Traceback" not in err


HEAVY_BUYER = '''
from mt5tester.model.signal import Signal
from mt5tester.strategy.base import Strategy


class HeavyBuyer(Strategy):
    """Adds 5 lots per bar up to 8 positions: on a small account that ends in stop-outs."""

    category = "technical"

    def generate_signals(self, symbol, timeframe, df):
        if len(self.ctx.mt5.positions_get() or ()) < 8:
            return [Signal(symbol=symbol, direction="buy", volume=5.0)]
        return []
'''


@pytest.mark.parametrize(
    ("deposit", "coordinator", "closed_by"),
    [
        (3000, {}, "stop_out"),
        (30000, {"daily_loss_limit_pct": 0.5, "close_all_on_breach": True}, "circuit_breaker"),
    ],
)
def test_stored_funnel_counts_stop_out_and_circuit_breaker_closes_as_the_printed_one(
    demo_data: Path, tmp_path: Path, run_cli, deposit: int, coordinator: dict, closed_by: str
) -> None:
    # Point 3/11: `runs show` and the HTML report read the funnel stored with the run; it must count the
    # closes the printed funnel (computed from the stored deals) counts: stop-outs and circuit-breaker
    # closes were missing from it or counted as closes by signal.
    (tmp_path / "heavy.py").write_text(HEAVY_BUYER)
    conf = base_config(demo_data, tmp_path, start="2024-01-03", end="2024-02-20", primary_timeframe="H4")
    conf["backtest"] |= {"symbols": ["EURUSD", "USDJPY"], "warmup_bars": 5, "initial_deposit": deposit}
    conf["backtest"]["leverage"] = 500
    conf["strategies"] = [{"class": "heavy.py:HeavyBuyer", "name": "heavy"}]
    conf["coordinator"] = coordinator
    code, _out, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", conf)))
    assert code == 0, err
    engine = create_engine(f"sqlite:///{tmp_path / 'results.sqlite'}")
    with engine.connect() as conn:
        run_id, stored = conn.execute(text("SELECT run_id, funnel FROM runs")).one()
    stored_closed = json.loads(stored)["closed"] if isinstance(stored, str) else stored["closed"]
    from_deals = funnel_from_db(engine, run_id)["closed"]
    assert from_deals[closed_by] > 0
    assert stored_closed == from_deals
