"""`mt5tester run-script`: an unmodified script written for the MetaTrader5 package, run in the tester.

The script's ``import MetaTrader5 as mt5`` gets the simulated terminal (terminal.shim). The clock
starts at the first tick at or after ``backtest.start``; ``time.sleep(s)`` in the script moves the
simulated clock forward by s seconds (replaying SL/TP, pending orders, swaps and stop-outs on the way)
instead of waiting, so polling loops run through history. When the clock reaches ``backtest.end``
the script is stopped there. Everything the account did is recorded as a run.
"""

from __future__ import annotations

import hashlib
import logging
import runpy
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mt5tester.data.resample import bucket_start
from mt5tester.engine.build import Components
from mt5tester.engine.journal import RunResult
from mt5tester.engine.loop import Runner
from mt5tester.engine.preflight import day_ns
from mt5tester.engine.timeline import m1_bars
from mt5tester.errors import ConfigError, StorageError, StrategyRuntimeError
from mt5tester.model import limits
from mt5tester.model.time import SECOND_NS
from mt5tester.model.timeframe import Timeframe
from mt5tester.results import db
from mt5tester.terminal import shim


class EndOfTest(BaseException):
    """Raised inside the script's time.sleep when the simulated clock reaches the end of the test."""


@dataclass(frozen=True)
class Script:
    """An unmodified MetaTrader5-package script, run in the tester instead of strategies:
    ``mt5tester.run(config, script=Script(path, args))`` (``mt5tester run-script``)."""

    path: Path
    args: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The name its orders, deals and positions are recorded under."""
        return f"script:{self.path.name}"

    def check(self) -> None:
        """Refuse, before anything is built, a name the results database cannot store (as config names
        are refused on every backend)."""
        if len(self.name) > limits.STRATEGY_NAME:
            most = limits.STRATEGY_NAME - len("script:")
            raise ConfigError(
                f"script file name {self.path.name!r} has {len(self.path.name)} characters; the results "
                f"database stores at most {most} (strategy names hold {limits.STRATEGY_NAME}, with "
                "'script:'). Rename the script."
            )


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


def run_script(runner: Runner, job: Script, progress: Callable[[int, int], None] | None = None) -> RunResult:
    """Run the script as ``__main__`` in the tester and record it like a backtest, through ``runner``
    (built by ``run()`` without strategies: its journal, sink and end-of-run closing): every deal, the
    equity at each clock step, the book, the funnel; positions still open at the end are closed per
    ``backtest.close_at_end``. ``progress(done, total)`` gets simulated seconds. A KeyboardInterrupt
    marks the run ``interrupted``, an error ``failed`` (then it is raised again)."""
    c, script, args, name = runner.c, job.path, job.args, job.name
    cfg = c.cfg
    job.check()
    rec, server, terminal = runner.rec, c.server, c.terminal
    rec.resumable = False  # no checkpoints: a script cannot be resumed, a failed write says "run it again"
    terminal.connected = False  # the script connects itself with initialize()
    # The script is the only trader: its orders go to the trade server as sent (no coordinator, which
    # reviews strategies' signals); every deal is recorded by the runner's cursor.
    terminal.router = None
    runner.journal.owners.default = name  # its orders, deals and positions carry its name
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
                "name": name,
                "category": "script",
                "spec": str(script),
                "source_file": str(script.resolve()),
                "source_hash": hashlib.sha256(script.read_bytes()).hexdigest()[:16],
                "params": {"argv": list(args or [])},
                "timeframe": "",
                "symbols": list(cfg.backtest.symbols),
            }
        ],
    )
    first, end = _first_tick(c, day_ns(cfg.backtest.start)), day_ns(cfg.backtest.end)
    shown: int | None = None  # the clock step whose equity row waits for what the script does there
    # results.equity_sampling: every step ("point") or the first step of each period of a timeframe
    every = None if cfg.results.equity_sampling == "point" else Timeframe.parse(cfg.results.equity_sampling)
    last_period: int | None = None

    def move_to(t: int) -> None:
        nonlocal shown, last_period
        if shown is not None and t > shown:
            tz = cfg.backtest.server_timezone
            period = shown if every is None else int(bucket_start(np.array([shown]), every, tz)[0])
            if period != last_period:
                runner.journal.equity(shown)  # the account after what the script did at that step
                last_period = period
        server.advance(t)
        terminal.set_time(t)
        runner.journal.deals()
        shown = t
        runner.funnel.decision_points += 1  # each clock step is a point where the script sees the market
        if progress is not None and (runner.funnel.decision_points % 256 == 1 or t >= end):
            progress((t - first) // SECOND_NS, (end - first) // SECOND_NS)

    def sim_sleep(seconds: float) -> None:
        target = terminal.market.now + int(float(seconds) * SECOND_NS)
        if target >= end:
            move_to(end)
            raise EndOfTest
        move_to(target)

    t_start = time.perf_counter()
    real_sleep = time.sleep
    old_argv, old_path = sys.argv, list(sys.path)
    stopped = False
    try:
        move_to(first)
        shim.install(terminal)
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
                raise StrategyRuntimeError(f"script {script} raised {type(e).__name__}: {e}") from e
        time.sleep = real_sleep
        runner.journal.deals()
        now = terminal.market.now
        if cfg.backtest.close_at_end and stopped:
            runner.router.close_all_at_end(end)  # as a backtest: at the last tick before backtest.end
        elif cfg.backtest.close_at_end:  # the script returned: its run ends now, at the current quote
            runner.router.close_all_at_end(now, inclusive=True)
        runner.journal.equity(now)
    except BaseException as e:
        _finish(runner, "interrupted" if isinstance(e, KeyboardInterrupt) else "failed", e)
        raise
    finally:
        time.sleep = real_sleep
        sys.argv = old_argv
        sys.path[:] = old_path
        shim.uninstall()
    seconds = round(time.perf_counter() - t_start, 3)
    funnel = _finish(runner, "completed", None, {"script": str(script), "stopped_at_end": stopped}, seconds)
    return RunResult(
        runner.run_id, "completed", funnel, server.balance, len(server.deals), seconds, m1_bars(c)
    )


def _finish(
    runner: Runner,
    status: str,
    error: BaseException | None,
    extra: dict[str, Any] | None = None,
    seconds: float | None = None,
) -> dict[str, Any]:
    """Book, daily equity and funnel of a script run, and its final status (a failed write: failed)."""
    c = runner.c
    runner.funnel.ambiguous_bars, runner.funnel.stop_outs = c.server.ambiguous_bars, c.server.stop_outs
    funnel: dict[str, Any] = runner.funnel.as_dict() | (extra or {})
    try:
        runner.journal.deals(notify=False)  # also those the script made after its last clock step
        runner.journal.book()
        for row in runner.journal.daily.rows():
            runner.rec.add(db.daily_equity, row)
        runner.rec.flush()
    except StorageError as e:
        if error is None:  # the script went well: the failed write fails the run
            runner.rec.finish("failed", funnel, f"{type(e).__name__}: {e}")
            raise
    message = None if error is None else f"{type(error).__name__}: {error}"
    runner.rec.finish(status, funnel, message, None if seconds is None else {"loop_seconds": seconds})
    return funnel
