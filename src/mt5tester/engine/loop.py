"""The one loop: decision points are the bar closes of the strategies' timeframes, merged across symbols.

A bar that closes at c is seen, as in MT5's tester, on the first tick of the next bar (``timeline``).
Per point t: server.advance(t) replays SL/TP, pending orders, swaps and stop-outs before t; the host
calls each strategy whose bar closed; the router has the coordinator review the signals and sends the
approved ones as MT5 requests (order_send), filled at the tick at t; the journal records everything.
Driver (b), the whole run in the compiled kernel: engine/kernel.py (and engine/signal_pass.py)."""

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
from mt5tester.engine.timeline import Timeline, frozen_gc, m1_bars, points, timeline
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
        first, c = 0, self.c
        if resume is not None and not resume.get("fresh"):  # "fresh": the checkpoint before bar 1
            first = checkpoint.restore(self, resume)
        else:
            if resume is None:
                self.journal.start(self.run_id)
            self.journal.deals()  # the deposit
            self.host.each("on_start", record_each=True)
        with frozen_gc():
            try:
                t_start, tl = _time.perf_counter(), timeline(c)
                first = kernel.drive(self, tl) if first == 0 and self.driver != "loop" else first  # (b)?
                self._steps(tl, first, progress)
                end = day_ns(c.cfg.backtest.end)  # replay to the end, close what is open, on_stop
                c.server.advance(end)
                self.journal.deals()
                if c.cfg.backtest.close_at_end:
                    self.router.close_all_at_end(end)
                self.journal.equity(end)
                self.host.each("on_stop", record_each=False)
            except BaseException as e:
                self.host.fold_calls()
                self.journal.failed(e)
                raise
            return self._complete(_time.perf_counter() - t_start)

    def _steps(self, tl: Timeline, first: int, progress: Callable[[int, int], None] | None) -> None:
        """Every point from ``first``; the server replays only past its quiet horizon (before it, only the
        clock moves), asked again after what may change the book: a replay, any order sent."""
        server, journal, ctx, funnel, router = self.c.server, self.journal, self.ctx, self.funnel, self.router
        set_time, decide = self.c.terminal.set_time, self.host.recorded or self.host.decide
        observe = router.observe if router.watches_equity() else None  # the circuit breakers watch equity
        base, done, quiet, sends = funnel.decision_points - first, first, -1, -1
        tick, every = checkpoint.ticker(self, base, progress, len(tl), not self.host.recorded)  # n & every
        try:
            for n, t, events, sample in points(tl, first, self.stop_ns):
                ctx.now = t
                if t >= quiet:
                    server.advance(t)
                    journal.deals()
                set_time(t)
                if observe is not None:
                    observe(t)
                if batch := decide(events, t):  # most points trade nothing
                    router.process(batch, t)
                if sample:
                    journal.equity(t)
                if t >= quiet or batch or sends != funnel.order_sends:  # the book may have changed
                    quiet, sends = server.quiet_until(), funnel.order_sends
                done = n + 1
                if tick is not None and not n & every:
                    tick(n, t)
        finally:
            funnel.decision_points = base + done

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
