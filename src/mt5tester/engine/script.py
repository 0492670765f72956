"""`mt5tester run-script`: an unmodified script written for the MetaTrader5 package, run in the tester.

The script's ``import MetaTrader5 as mt5`` gets the simulated terminal (terminal.shim). The clock
starts at the first tick at or after ``backtest.start``; ``time.sleep(s)`` in the script moves the
simulated clock forward by s seconds (replaying SL/TP, pending orders, swaps and stop-outs on the way)
instead of waiting, so polling loops run through history. When the clock reaches ``backtest.end``
the script is stopped there. Everything the account did is recorded as a run.
"""

from __future__ import annotations

import logging
import runpy
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mt5tester.engine.build import Components
from mt5tester.engine.preflight import day_ns
from mt5tester.errors import StrategyRuntimeError
from mt5tester.results import db
from mt5tester.results.book import deal_row
from mt5tester.results.recorder import Recorder
from mt5tester.terminal import shim

SECOND_NS = 1_000_000_000


class EndOfTest(BaseException):
    """Raised inside the script's time.sleep when the simulated clock reaches the end of the test."""


@dataclass
class ScriptResult:
    run_id: str
    status: str
    deals: int
    balance: float
    equity: float
    stopped_at_end: bool


@contextmanager
def _script_owns_root_logger() -> Iterator[None]:
    """Hand the script an unconfigured root logger, so its own ``logging.basicConfig`` takes effect
    as under plain ``python``; mt5tester's messages keep the CLI's handlers meanwhile."""
    root, ours = logging.getLogger(), logging.getLogger("mt5tester")
    saved_root = (list(root.handlers), root.level)
    saved_ours = (list(ours.handlers), ours.level, ours.propagate)
    for h in saved_root[0]:
        root.removeHandler(h)
        ours.addHandler(h)
    if saved_root[0]:
        ours.setLevel(ours.getEffectiveLevel())
        ours.propagate = False
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved_root[0]:
            root.addHandler(h)
        root.setLevel(saved_root[1])
        ours.handlers[:] = saved_ours[0]
        ours.setLevel(saved_ours[1])
        ours.propagate = saved_ours[2]


def _first_tick(c: Components, start: int) -> int:
    firsts = []
    for bars in c.m1.values():
        i = int(np.searchsorted(bars.time, start, "left"))
        if i < len(bars):
            firsts.append(int(bars.time[i]))
    return min(firsts) if firsts else start


def run_script(c: Components, script: Path, args: list[str] | None = None) -> ScriptResult:
    cfg = c.cfg
    run_id = uuid.uuid4().hex[:12]
    rec = Recorder(c.engine, run_id)
    effective = cfg.effective()
    effective["results"]["database_url"] = db.redact(cfg.results.database_url)
    rec.start_run(
        effective,
        cfg.config_hash(),
        cfg.backtest.seed,
        cfg.backtest.initial_deposit,
        cfg.backtest.deposit_currency,
        [
            {
                "name": f"script:{script.name}",
                "category": "script",
                "spec": str(script),
                "source_file": str(script.resolve()),
                "source_hash": "",
                "params": {},
                "timeframe": "",
                "symbols": list(cfg.backtest.symbols),
            }
        ],
    )
    end = day_ns(cfg.backtest.end)
    server, terminal = c.server, c.terminal
    recorded = 0

    def record() -> None:
        nonlocal recorded
        for d in server.deals[recorded:]:
            rec.add(db.deals, deal_row(d, f"script:{script.name}"))
        recorded = len(server.deals)

    def move_to(t: int) -> None:
        server.advance(t)
        terminal.set_time(t)
        record()
        rec.add(
            db.equity,
            {
                "time": t,
                "balance": server.balance,
                "equity": server.equity(t),
                "margin": server.margin(t),
                "open_positions": len(server.positions),
            },
        )

    def sim_sleep(seconds: float) -> None:
        target = terminal.market.now + int(float(seconds) * SECOND_NS)
        if target >= end:
            move_to(end)
            raise EndOfTest
        move_to(target)

    move_to(_first_tick(c, day_ns(cfg.backtest.start)))
    real_sleep = time.sleep
    old_argv, old_path = sys.argv, list(sys.path)
    shim.install(terminal)
    stopped = False
    try:
        time.sleep = sim_sleep  # type: ignore[assignment]
        sys.argv = [str(script), *(args or [])]
        # As under `python script.py`: the script's folder comes first on sys.path (its own modules
        # import), and the root logger is the script's to configure.
        sys.path.insert(0, str(script.resolve().parent))
        with _script_owns_root_logger():
            try:
                runpy.run_path(str(script), run_name="__main__")
            except EndOfTest:
                stopped = True
            except SystemExit as e:
                if e.code not in (None, 0):
                    raise StrategyRuntimeError(f"script {script} exited with {e.code!r}") from None
            except Exception as e:
                rec.finish("failed", None, f"{type(e).__name__}: {e}")
                raise StrategyRuntimeError(f"script {script} raised {type(e).__name__}: {e}") from e
    finally:
        time.sleep = real_sleep
        sys.argv = old_argv
        sys.path[:] = old_path
        shim.uninstall()
    record()
    rec.finish(
        "completed", {"script": str(script), "stopped_at_end": stopped, "deals": len(server.deals)}, None
    )
    return ScriptResult(run_id, "completed", len(server.deals), server.balance, server.equity(), stopped)
