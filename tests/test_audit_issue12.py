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


CREDIT_DEALS = """Time,Deal,Symbol,Type,Direction,Volume,Price,Order,Commission,Swap,Profit,Balance,Comment
2024.01.02 00:00:00,1,,balance,,,,,0.00,0.00,10000.00,10000.00,deposit
2024.01.02 01:00:00,2,EURUSD,buy,in,0.1,1.1,2,0.00,0.00,0.00,10000.00,
2024.01.02 02:00:00,3,EURUSD,sell,out,0.1,1.1,3,0.00,0.00,100.00,10100.00,
2024.01.02 03:00:00,4,EURUSD,buy,in,0.1,1.1,4,0.00,0.00,0.00,10100.00,
2024.01.02 04:00:00,5,EURUSD,sell,out,0.1,1.1,5,0.00,0.00,-50.00,10050.00,
2024.01.02 04:30:00,6,,credit,,,,,0.00,0.00,500.00,10050.00,credit
2024.01.03 05:00:00,7,EURUSD,buy,in,0.1,1.1,6,0.00,0.00,0.00,10050.00,
2024.01.03 06:00:00,8,EURUSD,sell,out,0.1,1.1,7,0.00,0.00,-80.00,9970.00,
"""


@pytest.mark.parametrize("with_balance_column", [True, False])
def test_metrics_credit_deal_is_not_balance(tmp_path: Path, with_balance_column: bool) -> None:
    # Point 4 (hand-made deal lists with balance and credit deals): a credit operation (DEAL_TYPE_CREDIT)
    # is credit, not balance (spec 7: equity = balance + credit + floating), so MT5's Balance column does
    # not move on it. Whether or not the file carries that column, the balance curve, the drawdowns and
    # the HPRs are the trades' only, and the credit is no deposit/withdrawal restarting the drawdowns.
    from mt5tester.results.metrics import compute_metrics, read_deals_csv

    text_ = CREDIT_DEALS
    if not with_balance_column:
        text_ = "\n".join(",".join(r.split(",")[:11] + r.split(",")[12:]) for r in text_.splitlines())
    path = tmp_path / "deals.csv"
    path.write_text(text_)
    m = compute_metrics(read_deals_csv(path))
    assert m.final_balance == pytest.approx(9970.0)
    assert (m.total_deals, m.total_trades) == (6, 3)
    assert m.balance_dd_maximal == pytest.approx(130.0)  # 10100 -> 9970 across the credit
    assert m.balance_dd_relative_pct == pytest.approx(130.0 / 10100 * 100)
    assert m.balance_dd_absolute == pytest.approx(30.0)
    assert m.ahpr == pytest.approx((10100 / 10000 + 10050 / 10100 + 9970 / 10050) / 3)
