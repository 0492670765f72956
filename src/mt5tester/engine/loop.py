"""The one loop: decision points are the bar closes of the strategies' timeframes, merged across symbols.

A bar that closes at c is seen, as in MT5's tester, on the first tick of the next bar (``timeline``).
Per point t: server.advance(t) replays SL/TP, pending orders, swaps and stop-outs before t; the host
calls each strategy whose bar closed; the router has the coordinator review the signals and sends the
approved ones as MT5 requests (TradeRequest -> order_send), filled at the tick at t; the journal
records everything into the sink. Driver (b), the whole run in the compiled kernel: engine/kernel.py."""

from __future__ import annotations

import time as _time
import uuid
from collections.abc import Callable
from typing import Any

from mt5tester.engine import checkpoint, kernel
from mt5tester.engine.build import Components
from mt5tester.engine.host import Host
from mt5tester.engine.journal import Journal, RunResult, sql_recorder
from mt5tester.engine.preflight import day_ns
from mt5tester.engine.router import Router
from mt5tester.engine.timeline import Point, frozen_gc, m1_bars, points, timeline
from mt5tester.errors import StorageError
from mt5tester.results.recorder import Recorder
from mt5tester.strategy.base import StrategyContext
from mt5tester.terminal.shim import build_module

__all__ = ["RunResult", "Runner", "timeline"]


class Runner:
    """The composition root of a run: a journal (records), a host (strategy calls), a router (orders)."""

    driver = "auto"  # the kernel (driver b) when the run allows it; "loop"; "kernel" (engine/kernel.py)

    def __init__(self, c: Components, run_id: str | None = None, sink: Recorder | None = None) -> None:
        self.c = c
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.rec = sink or sql_recorder(c, self.run_id)
        self.journal = Journal(c, self.rec)
        self.ctx = StrategyContext(self.run_id, build_module(c.terminal))
        self.ctx.regime = lambda symbol: self.router.regime(symbol, self.ctx.now)  # type: ignore[method-assign]
        self.host = Host(c, self.journal, self.ctx)
        self.router = Router(c, self.host, self.journal)
        self.journal.on_trade = self.host.on_trade
        c.terminal.connected = True
        self.stop_ns: int | None = None  # the lookahead checker: no decision point after this time

    funnel = property(lambda self: self.journal.funnel)
    capture = property(lambda self: self.router.capture, lambda self, v: setattr(self.router, "capture", v))

    def run(
        self, progress: Callable[[int, int], None] | None = None, resume: dict[str, Any] | None = None
    ) -> RunResult:
        """Run the loop; with ``resume`` (a checkpoint state) continue a recorded run after its point."""
        first = 0
        if resume is not None and not resume.get("fresh"):  # "fresh": the checkpoint before bar 1
            first = checkpoint.restore(self, resume)
        else:
            if resume is None:
                self.journal.start(self.run_id)
            self.journal.deals()  # the deposit
            self.host.each("on_start", record_each=True)
        with frozen_gc():
            return self._run_points(progress, first)

    def _run_points(self, progress: Callable[[int, int], None] | None, first: int) -> RunResult:
        c, t_start = self.c, _time.perf_counter()
        timer = checkpoint.Timer(self)
        try:
            tl = timeline(c)
            first = kernel.drive(self, tl) if first == 0 and self.driver != "loop" else first  # driver (b)?
            for point in points(tl, first, self.stop_ns):
                self._step(point)
                if progress and point[0] % 256 == 0:
                    progress(point[0], len(tl))
                timer.tick(point[0], point[1])
            self._wind_down(day_ns(c.cfg.backtest.end))
        except BaseException as e:
            self.host.fold_calls()
            self.journal.failed(e)
            raise
        return self._complete(_time.perf_counter() - t_start)

    def _step(self, point: Point) -> None:
        """One decision point: the market moves to t, strategies decide, approved orders go out."""
        _, t, events, sample = point
        self.ctx.now = t
        self.c.server.advance(t)
        self.journal.deals()
        self.c.terminal.set_time(t)
        self.router.observe(t)  # the circuit breakers watch equity
        batch = self.host.decide(events, t)
        if batch:  # most points trade nothing
            self.router.process(batch, t)
        if sample:
            self.journal.equity(t)
        self.journal.funnel.decision_points += 1

    def _wind_down(self, end: int) -> None:
        """After the last point: replay to the end, close what is open (``close_at_end``), on_stop."""
        self.c.server.advance(end)
        self.journal.deals()
        if self.c.cfg.backtest.close_at_end:
            self.router.close_all_at_end(end)
        self.journal.equity(end)
        self.host.each("on_stop", record_each=False)

    def _complete(self, seconds: float) -> RunResult:
        self.host.fold_calls()
        try:
            self.journal.complete()
        except StorageError as e:  # marked failed with the error; resumable from its last checkpoint
            self.journal.finish("failed", f"{type(e).__name__}: {e}")
            raise
        funnel = self.journal.finish("completed", None, {"loop_seconds": round(seconds, 3)})
        balance, deals = self.c.server.balance, len(self.c.server.deals)
        return RunResult(self.run_id, "completed", funnel, balance, deals, round(seconds, 3), m1_bars(self.c))
