"""The journal: what a run records, and its funnel. Every row goes into the sink (the SQL recorder by
default): signals, the terminal's deals (through a cursor, so each deal is stored once whatever made
it), equity samples, strategy errors, and the book (orders, positions) at the end."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import traceback
import weakref
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mt5tester.data.health import history_quality
from mt5tester.engine import checkpoint
from mt5tester.engine.attribution import MAGIC_BASE, Attribution, Owner, magic_of, signal_of
from mt5tester.engine.build import Components
from mt5tester.engine.preflight import day_ns, ts
from mt5tester.errors import StorageError
from mt5tester.model import constants as C
from mt5tester.model.trade import Deal
from mt5tester.results import db
from mt5tester.results.daily import DailyEquity
from mt5tester.results.recorder import Recorder
from mt5tester.results.rows import deal_row, order_columns, position_columns, signal_row
from mt5tester.results.sink import fingerprints as sink_fingerprints
from mt5tester.results.sink import keeps

# Strategy warnings keep the logger name users filter on (they came from the loop before the split).
log = logging.getLogger("mt5tester.engine.loop")


@dataclass
class Funnel:
    decision_points: int = 0
    strategy_calls: int = 0
    signals: int = 0
    order_sends: int = 0  # order_send requests of strategies themselves (self.ctx.mt5)
    invalid_signals: int = 0
    resized: int = 0
    circuit_breaker_closes: int = 0
    invalid: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    fed_to_fusion: int = 0
    approved: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    executed: int = 0
    order_failed: Counter[str] = field(default_factory=Counter)
    closed: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    disabled: list[str] = field(default_factory=list)
    ambiguous_bars: int = 0
    stop_outs: int = 0
    margin_level_min: float | None = None
    call_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: Counter[str] = field(default_factory=Counter)
    driver: str = "loop"  # "kernel": the whole run in the compiled kernel (driver b, engine/kernel.py)
    driver_reason: str | None = None  # why the Python loop ran (the first reason), when it did
    kernel_seconds: dict[str, float] | None = None  # driver (b): inputs / compiled loop / records

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision_points": self.decision_points,
            "strategy_calls": self.strategy_calls,
            "driver": self.driver,
            "driver_reason": self.driver_reason,
            "kernel_seconds": self.kernel_seconds,
            "signals_generated": self.signals,
            "strategy_order_sends": self.order_sends,
            "invalid_signals": self.invalid_signals,
            "invalid_by_strategy": {k: dict(v) for k, v in sorted(self.invalid.items())},
            "fed_to_fusion": self.fed_to_fusion,
            "approved": self.approved,
            "resized": self.resized,
            "circuit_breaker_closes": self.circuit_breaker_closes,
            "rejected": dict(sorted(self.rejected.items())),
            "executed": self.executed,
            "order_failed": dict(sorted(self.order_failed.items())),
            "closed": {
                k: self.closed.get(k, 0)
                for k in ("sl", "tp", "signal", "end_of_run", "stop_out", "circuit_breaker")
            },
            "strategy_errors": dict(sorted(self.errors.items())),
            "disabled_strategies": self.disabled,
            "ambiguous_bars": self.ambiguous_bars,
            "stop_outs": self.stop_outs,
            "margin_level_min": self.margin_level_min,
            "calls": {k: self.calls[k] for k in sorted(self.calls)},
            "mean_call_us": {
                k: round(self.call_seconds[k] / self.calls[k] * 1e6, 1)
                for k in sorted(self.calls)
                if self.calls[k]
            },
        }


@dataclass
class RunResult:
    run_id: str
    status: str
    funnel: dict[str, Any]
    final_balance: float
    deals: int
    loop_seconds: float = 0.0
    m1_bars: int = 0  # M1 bars of the tested symbols in [start, end): what the run simulated


__all__ = ["MAGIC_BASE", "Funnel", "Journal", "RunResult", "magic_of", "signal_of"]

_CLOSED_BY = {C.DEAL_REASON_SL: "sl", C.DEAL_REASON_TP: "tp", C.DEAL_REASON_SO: "stop_out"}
_CLOSED_AS = {"end of run": "end_of_run", "circuit breaker": "circuit_breaker"}


def sql_recorder(c: Components, run_id: str) -> Recorder:
    """The default sink: the results database the components opened (resumable when checkpoints are on)."""
    if c.engine is None:
        raise StorageError("no results database was opened for this run and no sink was given")
    return Recorder(c.engine, run_id, resumable=c.cfg.results.checkpoint_seconds is not None)


def strategy_rows(strategies: Sequence[Any]) -> list[dict[str, Any]]:
    """The run_strategies rows of the loaded strategies (backtest and live sessions alike)."""
    return [
        {
            "name": ls.strategy.name,
            "category": ls.strategy.category,
            "spec": ls.spec,
            "source_file": ls.source_file,
            "source_hash": ls.source_hash,
            "params": ls.strategy.params.model_dump(mode="json"),
            "timeframe": ls.strategy.timeframe.name,
            "symbols": ls.strategy.symbols,
        }
        for ls in strategies
    ]


class Journal:
    """Rows into the sink and counts into the funnel. Sequence numbers (signals, errors) and the deal
    cursor live here: the checkpoint stores them so a resumed run continues the same numbering."""

    def __init__(self, c: Components, rec: Recorder, default_owner: str = "") -> None:
        self.c = c
        self.rec = rec
        # Each order and deal is attributed from its magic and comment (engine/attribution.py); orders of
        # a magic the run did not hand out belong to ``default_owner`` (run-script: the script).
        magic = {magic_of(si): ls.strategy.name for si, ls in enumerate(c.strategies)}
        self.owners = Attribution(magic, default_owner)
        self.daily = DailyEquity(c.cfg.backtest.server_timezone)  # folded from the equity rows
        self.funnel = Funnel()
        self.signal_seq = 0
        self.error_seq = 0
        self.logged_tb: set[str] = set()
        self.logged_invalid: set[str] = set()
        self.recorded = 0  # deals of the server already recorded (a cursor: every deal is stored once)
        self.on_trade: Callable[[Deal, str], None] = lambda d, strategy: None  # the host's hook
        # the trading mode in force for (symbol, t): the router's, set when it is built
        self.mode_at: Callable[[str, int], str | None] = lambda symbol, t: c.cfg.trading_mode

    # ------------------------------------------------------------------------------ trading
    def deals(self, notify: bool = True) -> None:
        """Record every deal the server made since the last call, whatever made it (a signal, a strategy's
        own order_send, SL/TP, a pending fill, a stop-out, the end of the run): the stored deals are the
        terminal's deals, one row each. A cursor, so a deal made by an on_trade hook is recorded too."""
        state = self.c.server.state
        deals = state.deals
        while self.recorded < len(deals):
            d = deals[self.recorded]
            self.recorded += 1
            if d.entry != C.DEAL_ENTRY_IN:
                # the same keys as results.funnel, which rebuilds them from the stored deals
                key = _CLOSED_BY.get(d.reason) or _CLOSED_AS.get(d.comment, "signal")
                self.funnel.closed[key] += 1
            strategy, signal_id = self.owners.deal(state, d)
            self.rec.add(db.deals, deal_row(d, strategy, signal_id))
            if notify and d.type in (C.DEAL_TYPE_BUY, C.DEAL_TYPE_SELL):
                self.on_trade(d, strategy)

    def owner(self, position_id: int) -> Owner:
        """(strategy, signal id) of a position (by its identifier)."""
        return self.owners.position(self.c.server.state, position_id)

    def next_signal(self) -> int:
        """The id of a new signal (also counted as generated)."""
        self.signal_seq += 1
        self.funnel.signals += 1
        return self.signal_seq

    def signal(self, row: dict[str, Any]) -> None:
        self.rec.add(db.signals, row)

    def fed(self, strategy: Any, symbol: str, sigs: list[Any], t: int) -> None:
        """Signals of a `trade: false` member: recorded as generated and fed to fusion, not traded."""
        for sig in sigs:
            sid = self.next_signal()
            self.funnel.fed_to_fusion += 1
            mode = self.mode_at(symbol, t)
            self.signal(signal_row(sid, t, strategy, symbol, sig, status="to_fusion", trading_mode=mode))

    def equity(self, t: int) -> None:
        acc = self.c.server
        if acc.positions:
            equity, margin = acc.equity(t), acc.margin(t)
        else:  # flat: equity is the balance and no margin is used
            equity, margin = acc.balance, 0.0
        if margin > 0:
            level = round(equity / margin * 100, 2)
            low = self.funnel.margin_level_min
            self.funnel.margin_level_min = level if low is None else min(low, level)
        row = {
            "time": t,
            "balance": acc.balance,
            "equity": equity,
            "margin": margin,
            "open_positions": len(acc.positions),
        }
        self.rec.add(db.equity, row)
        self.daily.add(t, acc.balance, equity)

    # ------------------------------------------------------------------------------- errors
    def error(self, name: str, symbol: str, t: int, e: Exception) -> None:
        """A strategy's exception: counted, stored, and logged with its traceback once per strategy."""
        self.funnel.errors[name] += 1
        tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        first = name not in self.logged_tb
        if first:
            self.logged_tb.add(name)
            log.warning(
                "strategy %s raised on %s at bar close %s: %s: %s\n%s",
                *(name, symbol, ts(t), type(e).__name__, e, tb),
            )
        self._error_row(name, symbol, t, type(e).__name__, str(e), tb if first else None)

    def invalid(self, name: str, symbol: str, t: int, reason: str, message: str) -> None:
        """A returned signal that cannot be traded: counted per strategy and reason, stored, the first
        of each strategy logged at WARNING."""
        self.funnel.invalid_signals += 1
        self.funnel.invalid[name][reason] += 1
        self._error_row(name, symbol, t, "InvalidSignal", message, None)
        if name not in self.logged_invalid:
            self.logged_invalid.add(name)
            log.warning(
                "strategy %s returned an invalid signal on %s at %s UTC: %s", name, symbol, ts(t), message
            )

    def _error_row(
        self, name: str, symbol: str, t: int, error_type: str, message: str, tb: str | None
    ) -> None:
        self.error_seq += 1
        row = {"seq": self.error_seq, "strategy": name, "symbol": symbol, "time": t}
        self.rec.add(
            db.strategy_errors, row | {"error_type": error_type, "message": message, "traceback": tb}
        )

    # ------------------------------------------------------------------------ start and end
    def start(self, run_id: str) -> None:
        """The run's row: its effective config (the database URL redacted), strategies and data health,
        with the checkpoint "before bar 1" of a resumable run."""
        c, cfg = self.c, self.c.cfg
        then = None
        if cfg.results.checkpoint_seconds is not None:
            then = checkpoint.start_marker(run_id, str(c.base_dir), day_ns(cfg.backtest.start))
        effective = cfg.effective()
        results = effective["results"] | {"database_url": db.redact(cfg.results.database_url)}
        strategies = strategy_rows(c.strategies)
        hashed = sink_fingerprints(self.rec)  # a stored run's reports name its data; a run in memory's not
        health = [
            {
                "symbol": h.symbol,
                "timeframe": h.timeframe.name,
                "score": h.score,
                "bars": h.bars,
                "report": h.to_dict()
                | ({"fingerprints": fingerprints(c, h.symbol)} if hashed else {})
                | {"history_quality_pct": history_quality(c.m1[h.symbol], h)},
            }
            for h in c.health
            if keeps(self.rec, "data_health")
        ]
        bt = cfg.backtest
        self.rec.start_run(
            effective | {"results": results},
            cfg.config_hash(),
            *(bt.seed, bt.initial_deposit, bt.deposit_currency, strategies, health),
            then=then,
        )

    def book(self) -> None:
        """Orders and positions (with MFE/MAE), written once at the end of the run (also a failed one)."""
        state = self.c.server.state

        def owner(ticket: int) -> Owner:
            return self.owners.order(state, ticket)

        def owners(tickets: np.ndarray) -> tuple[Sequence[str], Any]:
            return self.owners.orders(state, tickets)

        if keeps(self.rec, "orders"):
            self.rec.add_columns(db.orders, order_columns(self.c.server, owner, owners))
        if keeps(self.rec, "positions"):
            self.rec.add_columns(db.positions, position_columns(self.c.server, owner, owners))

    def complete(self) -> None:
        """The book and the daily equity (folded from the equity rows as they were made) of a completed
        run, then everything is flushed."""
        self.book()
        for row in self.daily.rows():
            self.rec.add(db.daily_equity, row)
        self.rec.flush()

    def failed(self, e: BaseException) -> None:
        """A run that raised: it keeps every deal the terminal made and its book, then is marked failed
        (or interrupted). A failed write here is left to finish(), which marks the run failed with it."""
        with contextlib.suppress(StorageError):
            self.deals(notify=False)
            self.book()
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        self.finish(status, f"{type(e).__name__}: {e}")

    def finish(self, status: str, error: str | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Mark the run finished with its funnel (returned as stored)."""
        self.funnel.ambiguous_bars = self.c.server.ambiguous_bars
        self.funnel.stop_outs = self.c.server.stop_outs
        # The magic number of each strategy's orders, stored with the run (how its deals are told apart).
        magic = {ls.strategy.name: magic_of(si) for si, ls in enumerate(self.c.strategies)}
        funnel = self.funnel.as_dict() | {"magic_numbers": magic}
        if extra is None:
            self.rec.finish(status, funnel, error)
        else:
            self.rec.finish(status, funnel, error, extra)
        return funnel


# The fingerprint of a bars object, computed once (bars are not changed after they are built): a
# preloaded dataset's passes, or runs over the same bars, hash its arrays once.
_DIGESTS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _digest(bars: Any) -> str:
    known = _DIGESTS.get(bars)
    if known is not None:
        return known
    h = hashlib.sha256()
    for arr in (bars.time, bars.open, bars.high, bars.low, bars.close, bars.tick_volume, bars.spread):
        h.update(np.ascontiguousarray(arr).data)  # the buffer itself: no copy
    _DIGESTS[bars] = digest = h.hexdigest()[:16]
    return digest


def fingerprints(c: Components, symbol: str) -> dict[str, str]:
    """SHA-256 (16 hex) of the exact arrays a run used, per timeframe of ``symbol``: two runs with the
    same fingerprints saw the same data."""
    m1 = c.m1[symbol]
    m1_digest = _digest(m1)
    out = {}
    for (sym, tf), bars in sorted(c.tf_bars.items(), key=lambda kv: (kv[0][0], int(kv[0][1]))):
        if sym == symbol:
            out[tf.name] = m1_digest if bars is m1 else _digest(bars)
    out["M1"] = m1_digest
    return out
