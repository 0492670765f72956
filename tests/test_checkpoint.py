"""Checkpoint and resume: a run SIGKILLed mid-way and resumed ends with exactly the deals and equity
of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import base_config, write_yaml

EXE = Path(sys.executable).parent / "mt5tester"


def _config(demo_data: Path, folder: Path, checkpoint_seconds: float | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    raw = base_config(
        demo_data,
        folder,
        symbols=["EURUSD", "USDJPY"],
        primary_timeframe="M5",
        start="2024-01-02",
        end="2024-02-20",
        warmup_bars=40,
    )
    raw["strategies"] = [
        {
            "class": "ma_cross",
            "name": "fast",
            "params": {"fast": 5, "slow": 20, "sl_points": 150, "tp_points": 250},
        },
        {"class": "rsi_reversion", "name": "rsi"},
    ]
    raw["results"]["checkpoint_seconds"] = checkpoint_seconds
    raw["report"] = {"html": False}
    return write_yaml(folder / "c.yaml", raw)


def _rows(db: Path, run_id: str) -> tuple[list, list, list, list]:
    with sqlite3.connect(db) as conn:
        deals = conn.execute(
            'SELECT ticket, "order", time, type, entry, reason, position_id, symbol, volume, price, commission, '
            "swap, profit, balance, comment, strategy, signal_id FROM deals WHERE run_id = ? ORDER BY ticket",
            (run_id,),
        ).fetchall()
        equity = conn.execute(
            "SELECT time, balance, equity, margin, open_positions FROM equity WHERE run_id = ? ORDER BY time",
            (run_id,),
        ).fetchall()
        signals = conn.execute(
            "SELECT signal_id, time, strategy, symbol, direction, status, reason, volume, retcode FROM signals "
            "WHERE run_id = ? ORDER BY signal_id",
            (run_id,),
        ).fetchall()
        daily = conn.execute(
            "SELECT day, time, balance, equity, equity_min FROM daily_equity WHERE run_id = ? ORDER BY day",
            (run_id,),
        ).fetchall()
    return deals, equity, signals, daily


@pytest.mark.slow
def test_sigkill_then_resume_gives_identical_deals_and_equity(demo_data: Path, tmp_path: Path) -> None:
    ref_cfg = _config(demo_data, tmp_path / "ref", None)
    ref = subprocess.run(
        [str(EXE), "backtest", "--config", str(ref_cfg)], capture_output=True, text=True, timeout=600
    )
    assert ref.returncode == 0, ref.stderr
    with sqlite3.connect(tmp_path / "ref" / "results.sqlite") as conn:
        (ref_id,) = conn.execute("SELECT run_id FROM runs").fetchone()

    cfg = _config(demo_data, tmp_path / "killed", 0.1)
    db = tmp_path / "killed" / "results.sqlite"
    proc = subprocess.Popen(
        [str(EXE), "backtest", "--config", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    run_id = None
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
        if not db.exists():
            continue
        try:
            with sqlite3.connect(db) as conn:
                row = conn.execute("SELECT run_id, count(*) FROM checkpoints GROUP BY run_id").fetchone()
        except sqlite3.OperationalError:
            continue
        if row and row[1] >= 2:
            run_id = row[0]
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert run_id is not None, f"the run finished before two checkpoints were written: {proc.stderr}"
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM runs").fetchone()[0] == "running"  # killed: never finished

    resumed = subprocess.run(
        [str(EXE), "backtest", "--resume", run_id, "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming run {run_id}" in resumed.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM runs").fetchone()[0] == "completed"
    deals, equity, signals, daily = _rows(db, run_id)
    ref_deals, ref_equity, ref_signals, ref_daily = _rows(tmp_path / "ref" / "results.sqlite", ref_id)
    assert len(deals) > 20
    assert deals == ref_deals
    assert equity == ref_equity
    assert signals == ref_signals
    assert len(daily) > 20 and daily == ref_daily  # folded across the kill from the checkpointed days


def test_resume_errors_name_the_cause(demo_data: Path, tmp_path: Path, run_cli) -> None:
    cfg = _config(demo_data, tmp_path, None)
    code, _, err = run_cli("backtest", "--resume", "nope", "--config", str(cfg))
    assert code == 6 and "no run nope" in err
    code, _, _ = run_cli("backtest", "--config", str(cfg), "--end", "2024-01-05")
    assert code == 0
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        (rid,) = conn.execute("SELECT run_id FROM runs").fetchone()
    code, _, err = run_cli("backtest", "--resume", rid, "--config", str(cfg))
    assert code == 6 and f"run {rid} is completed; nothing to resume" in err


def test_a_checkpoint_naming_the_old_modules_of_the_value_types_still_loads(monkeypatch) -> None:
    """Deals, orders, positions, structs and Ticks moved to model/ (issue 13); a checkpoint pickled before
    names their old modules and is still read."""
    import pickle

    import numpy as np

    from mt5tester.data import importers
    from mt5tester.engine.checkpoint import loads
    from mt5tester.model import structs
    from mt5tester.model.ticks import Ticks
    from mt5tester.model.trade import Deal
    from mt5tester.terminal import records

    deal = Deal(7, 3, 60, 0, 0, 3, 5, "EURUSD", 0.1, 1.1, -0.7, 0.0, 0.0, 9_999.3, "c", "s", 11)
    ticks = Ticks(
        *(["EURUSD"] + [np.zeros(1, t) for t in (np.int64, float, float, float, np.int64, np.int32)])
    )
    request = structs.TradeRequest(action=1, symbol="EURUSD", volume=0.1)
    old_structs = type(importers)("mt5tester.terminal.structs")
    old_structs.TradeRequest = structs.TradeRequest
    monkeypatch.setitem(__import__("sys").modules, "mt5tester.terminal.structs", old_structs)
    for module, cls in ((records, Deal), (importers, Ticks), (old_structs, structs.TradeRequest)):
        monkeypatch.setattr(module, cls.__name__, cls, raising=False)
        monkeypatch.setattr(cls, "__module__", module.__name__)
    blob = pickle.dumps({"deals": [deal], "ticks": ticks, "request": request})
    assert b"mt5tester.terminal.records" in blob and b"mt5tester.data.importers" in blob
    assert b"mt5tester.terminal.structs" in blob
    monkeypatch.undo()

    state = loads(blob)

    assert state["deals"] == [deal] and type(state["deals"][0]) is Deal
    assert type(state["ticks"]) is Ticks and state["ticks"].symbol == "EURUSD"
    assert state["request"] == request and type(state["request"]) is structs.TradeRequest
