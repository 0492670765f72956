"""The one loop: decision points are the bar closes of the strategies' timeframes, merged across symbols.

A bar that closes at c is seen, as in MT5's tester, on the first tick of the next bar: the decision
point of a symbol's bar is t = the open time of its first M1 bar at or after c. Per point t:
server.advance(t) replays SL/TP, pending orders, swaps and stop-outs before t; each strategy whose
bar closed gets the last ``warmup_bars`` closed bars; the coordinator decides; approved signals are
sent through the MT5 request path (TradeRequest -> order_send) and filled at the tick at t;
everything is recorded.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import time as _time
import traceback
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import ValidationError

from mt5tester.data.health import history_quality
from mt5tester.data.resample import bucket_start
from mt5tester.engine import checkpoint
from mt5tester.engine.build import Components
from mt5tester.engine.preflight import day_ns, ts
from mt5tester.errors import StorageError, StrategyRuntimeError
from mt5tester.model.signal import OrderKind, Signal
from mt5tester.model.timeframe import Timeframe
from mt5tester.results import db
from mt5tester.results.book import daily_rows, deal_row, order_rows, position_rows, signal_row
from mt5tester.results.recorder import Recorder
from mt5tester.risk.coordinator import ReviewContext, SignalContext
from mt5tester.strategy.base import FusionStrategy, StrategyContext
from mt5tester.terminal import constants as C
from mt5tester.terminal.server import Deal
from mt5tester.terminal.shim import build_module
from mt5tester.terminal.structs import OrderSendResult, TradeRequest

log = logging.getLogger(__name__)


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision_points": self.decision_points,
            "strategy_calls": self.strategy_calls,
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


@dataclass
class Timeline:
    """Decision points in time order and their events, as flat numpy arrays (no object per point).

    Point n is at ``times[n]``; its events are ``si[k], symbols[sym[k]], idx[k]`` for k in
    ``range(starts[n], starts[n + 1])``: (strategy index, symbol, index of the bar that closed).
    ``sample[n]``: whether an equity row is recorded at point n (``results.equity_sampling``).
    The loop turns them into Python lists a chunk at a time (``chunk``).
    """

    times: np.ndarray
    starts: np.ndarray
    si: np.ndarray
    sym: np.ndarray
    idx: np.ndarray
    sample: np.ndarray
    symbols: list[str]

    def __len__(self) -> int:
        return len(self.times)

    def chunk(
        self, lo: int, hi: int
    ) -> tuple[list[int], list[int], list[int], list[str], list[int], list[bool]]:
        """Points [lo, hi) as lists; their event positions are relative to the chunk."""
        e0, e1 = int(self.starts[lo]), int(self.starts[hi])
        names = self.symbols
        return (
            self.times[lo:hi].tolist(),
            (self.starts[lo : hi + 1] - e0).tolist(),
            self.si[e0:e1].tolist(),
            [names[k] for k in self.sym[e0:e1].tolist()],
            self.idx[e0:e1].tolist(),
            self.sample[lo:hi].tolist(),
        )


def equity_samples(c: Components, times: np.ndarray) -> np.ndarray:
    """Which decision points get an equity row: all of them (``point``), or the first point of each
    period of the sampling timeframe on the server clock; the last point always."""
    every = c.cfg.results.equity_sampling
    keep = np.ones(len(times), dtype=bool)
    if every == "point" or not len(times):
        return keep
    period = bucket_start(times, Timeframe.parse(every), c.cfg.backtest.server_timezone)
    keep[1:] = period[1:] != period[:-1]
    keep[-1] = True
    return keep


def timeline(c: Components) -> Timeline:
    """Decision points in [start, end) and the strategy calls at each.

    t is the first M1 tick at or after the bar's close (the bar is known closed only then); bars
    whose close is followed by no tick before ``end`` are never seen, as in MT5. A strategy with a
    ``signal_column`` is called only on the bars where that prepared column is non-zero. Built with
    numpy: one sort over every (strategy, symbol) close; fusion strategies last within a point.
    """
    start, end = day_ns(c.cfg.backtest.start), day_ns(c.cfg.backtest.end)
    parts_t, parts_fusion, parts_si, parts_sym, parts_i = [], [], [], [], []
    symbols: list[str] = []
    for si, ls in enumerate(c.strategies):
        fusion = isinstance(ls.strategy, FusionStrategy)
        column = ls.strategy.signal_column
        for sym in ls.strategy.symbols:
            bars = c.tf_bars[(sym, ls.strategy.timeframe)]
            # The bar is seen on the next tick: a recorded one in real_ticks mode, else an M1 open.
            real = c.server.real_ticks.get(sym) if c.server.settings.tick_mode == "real_ticks" else None
            m1_time = real.time if real is not None else c.m1[sym].time
            close = bars.close_time
            first = int(np.searchsorted(close, start, "left"))
            seen = np.searchsorted(m1_time, close[first:], "left")
            ok = seen < len(m1_time)
            when = np.where(ok, m1_time[np.minimum(seen, len(m1_time) - 1)], end)
            keep = ok & (when >= start) & (when < end)
            if column is not None:
                values = np.asarray(c.feeds[(si, sym)].extra[column][first:], dtype=np.float64)
                keep &= np.nan_to_num(values) != 0
            idx = np.flatnonzero(keep)
            parts_t.append(when[idx].astype(np.int64))
            parts_fusion.append(np.full(len(idx), fusion))
            parts_si.append(np.full(len(idx), si))
            symbols.append(sym)
            parts_sym.append(np.full(len(idx), len(symbols) - 1))
            parts_i.append(first + idx)
    if not parts_t or not sum(len(x) for x in parts_t):
        empty = np.zeros(0, np.int64)
        return Timeline(empty, np.zeros(1, np.int64), empty, empty, empty, np.zeros(0, bool), symbols)
    t_all = np.concatenate(parts_t)
    order = np.lexsort((np.concatenate(parts_si), np.concatenate(parts_fusion), t_all))
    t_all = t_all[order]
    bounds = np.flatnonzero(np.diff(t_all)) + 1
    starts = np.concatenate([[0], bounds, [len(t_all)]]).astype(np.int64)
    times = t_all[starts[:-1]]
    return Timeline(
        times,
        starts,
        np.concatenate(parts_si)[order],
        np.concatenate(parts_sym)[order],
        np.concatenate(parts_i)[order],
        equity_samples(c, times),
        symbols,
    )


def _digest(bars: Any) -> str:
    h = hashlib.sha256()
    for arr in (bars.time, bars.open, bars.high, bars.low, bars.close, bars.tick_volume, bars.spread):
        h.update(np.ascontiguousarray(arr).data)  # the buffer itself: no copy
    return h.hexdigest()[:16]


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


BUY_PENDING = (C.ORDER_TYPE_BUY_LIMIT, C.ORDER_TYPE_BUY_STOP, C.ORDER_TYPE_BUY_STOP_LIMIT)
LIMITS = (C.ORDER_TYPE_BUY_LIMIT, C.ORDER_TYPE_SELL_LIMIT)


def _describe(req: TradeRequest) -> str:
    """A trading request in a few words, for messages: 'TRADE_ACTION_DEAL ORDER_TYPE_BUY 0.1 EURUSD'."""
    action = next((k for k in dir(C) if k.startswith("TRADE_ACTION_") and getattr(C, k) == req.action), "")
    kind = next((k for k in dir(C) if k.startswith("ORDER_TYPE_") and getattr(C, k) == req.type), "")
    return " ".join(x for x in (action or str(req.action), kind, f"{req.volume:g}", req.symbol) if x)


class Runner:
    def __init__(self, c: Components, run_id: str | None = None, sink: Recorder | None = None) -> None:
        self.c = c
        self.run_id = run_id or uuid.uuid4().hex[:12]
        # The records' destination: the SQL recorder by default; a caller may hand another sink.
        resumable = c.cfg.results.checkpoint_seconds is not None
        self.rec = sink or Recorder(c.engine, self.run_id, resumable=resumable)
        self.funnel = Funnel()
        self.disabled: set[int] = set()
        self._signal_seq = 0
        self._error_seq = 0
        self._logged_tb: set[str] = set()
        self._logged_invalid: set[str] = set()
        self._recorded = 0  # deals of the server already recorded (a cursor: every deal is stored once)
        self._active: int | None = None  # index of the strategy being called (owner of its order_send)
        self.capture: list[tuple[int, str, str, Signal]] | None = None  # (t, strategy, symbol, signal)
        self.stop_ns: int | None = None  # the lookahead checker: no decision point after this time
        self.trades = [sc.trade for sc in c.cfg.strategies] if c.strategies else []
        self._by_name = {ls.strategy.name: ls.strategy for ls in c.strategies}
        self.ctx = StrategyContext(self.run_id, build_module(c.terminal))
        self.ctx.regime = lambda symbol: self._regime(symbol, self.ctx.now)  # type: ignore[method-assign]
        c.terminal.connected = True
        c.terminal.router = self._route
        for ls in c.strategies:
            ls.strategy.ctx = self.ctx
        # Per strategy index: (strategy, is a fusion, warm-up rows); calls and their seconds are counted
        # here and folded into the funnel by _fold_calls (checkpoints, the end of the run).
        self._slots = [
            (ls.strategy, isinstance(ls.strategy, FusionStrategy), ls.strategy.warmup_bars)
            for ls in c.strategies
        ]
        self._calls = [0] * len(c.strategies)
        self._call_seconds = [0.0] * len(c.strategies)

    def _fold_calls(self) -> None:
        for si, (s, _, _) in enumerate(self._slots):
            self.funnel.calls[s.name] += self._calls[si]
            self.funnel.call_seconds[s.name] += self._call_seconds[si]
            self.funnel.strategy_calls += self._calls[si]
            self._calls[si], self._call_seconds[si] = 0, 0.0

    # --------------------------------------------------------------------------------- recording
    def _record_deals(self, notify: bool = True) -> None:
        """Record every deal the server made since the last call, whatever made it (a signal, a strategy's
        own order_send, SL/TP, a pending fill, a stop-out, the end of the run): the stored deals are the
        terminal's deals, one row each. A cursor, so a deal made by an on_trade hook is recorded too."""
        deals = self.c.server.deals
        while self._recorded < len(deals):
            d = deals[self._recorded]
            self._recorded += 1
            if d.entry != C.DEAL_ENTRY_IN:
                key = {C.DEAL_REASON_SL: "sl", C.DEAL_REASON_TP: "tp", C.DEAL_REASON_SO: "stop_out"}.get(
                    d.reason
                )
                # the same keys as results.funnel, which rebuilds them from the stored deals
                key = key or {"end of run": "end_of_run", "circuit breaker": "circuit_breaker"}.get(
                    d.comment, "signal"
                )
                self.funnel.closed[key] += 1
            self.rec.add(db.deals, deal_row(d))
            if notify and d.type in (C.DEAL_TYPE_BUY, C.DEAL_TYPE_SELL):
                self._notify(d)

    def _record_fed(self, si: int, symbol: str, sigs: list[Signal], t: int) -> None:
        """Signals of a `trade: false` member: recorded as generated and fed to fusion, not traded."""
        s = self.c.strategies[si].strategy
        for sig in sigs:
            self._signal_seq += 1
            self.funnel.signals += 1
            self.funnel.fed_to_fusion += 1
            self.rec.add(db.signals, signal_row(self._signal_seq, t, s, symbol, sig, status="to_fusion"))

    def _notify(self, d: Deal) -> None:
        """on_trade hook of the deal's strategy; its errors follow on_strategy_error like any call."""
        s = self._by_name.get(d.strategy)
        if s is None:
            return
        si = next(k for k, ls in enumerate(self.c.strategies) if ls.strategy is s)
        caller, self._active = self._active, si
        try:
            s.on_trade(self.ctx, d)
        except Exception as e:
            self._strategy_failed(si, d.symbol, d.time, e)
        finally:
            self._active = caller

    def _record_book(self) -> None:
        """Orders and positions (with MFE/MAE), written once at the end of the run (also a failed one)."""
        for row in order_rows(self.c.server):
            self.rec.add(db.orders, row)
        for row in position_rows(self.c.server):
            self.rec.add(db.positions, row)

    def _record_equity(self, t: int) -> None:
        acc = self.c.server
        if acc.positions:
            equity, margin = acc.equity(t), acc.margin(t)
        else:  # flat: equity is the balance and no margin is used
            equity, margin = acc.balance, 0.0
        if margin > 0:
            level = round(equity / margin * 100, 2)
            low = self.funnel.margin_level_min
            self.funnel.margin_level_min = level if low is None else min(low, level)
        self.rec.add(
            db.equity,
            {
                "time": t,
                "balance": acc.balance,
                "equity": equity,
                "margin": margin,
                "open_positions": len(acc.positions),
            },
        )

    def _record_error(self, si: int, symbol: str, t: int, e: Exception) -> None:
        name = self.c.strategies[si].strategy.name
        self.funnel.errors[name] += 1
        tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        first = name not in self._logged_tb
        if first:
            self._logged_tb.add(name)
            log.warning(
                "strategy %s raised on %s at bar close %s: %s: %s\n%s",
                name,
                symbol,
                ts(t),
                type(e).__name__,
                e,
                tb,
            )
        self._error_row(name, symbol, t, type(e).__name__, str(e), tb if first else None)

    def _error_row(
        self, name: str, symbol: str, t: int, error_type: str, message: str, tb: str | None
    ) -> None:
        """One strategy_errors row: a strategy's exception, or a signal it returned that is invalid."""
        self._error_seq += 1
        self.rec.add(
            db.strategy_errors,
            {
                "seq": self._error_seq,
                "strategy": name,
                "symbol": symbol,
                "time": t,
                "error_type": error_type,
                "message": message,
                "traceback": tb,
            },
        )

    # --------------------------------------------------------------------------------- one call
    def _call(
        self, si: int, symbol: str, i: int, t: int, members: dict[str, list[Signal]] | None = None
    ) -> list[Signal]:
        """One strategy call (or a fusion's combine) with its errors handled per policy and its
        output checked; invalid signals are counted and recorded, never executed."""
        s, fusion, warmup = self._slots[si]
        df: Any = self.c.feeds[(si, symbol)].window(max(0, i + 1 - warmup), i + 1)
        self._active = si
        t0 = _time.perf_counter()
        try:
            if fusion:
                out = s.combine(symbol, s.timeframe, df, members or {})  # type: ignore[attr-defined]
            else:
                out = s.generate_signals(symbol, s.timeframe, df)
        except ValidationError as e:
            if e.title != "Signal":
                return self._strategy_failed(si, symbol, t, e)
            detail = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'signal'}: {x['msg']}" for x in e.errors())
            self._invalid(si, symbol, t, "invalid Signal: " + detail)
            return []
        except Exception as e:
            return self._strategy_failed(si, symbol, t, e)
        finally:
            self._call_seconds[si] += _time.perf_counter() - t0
            self._calls[si] += 1
            self._active = None
        if not out:
            return []
        valid = []
        bars = self.c.tf_bars[(symbol, s.timeframe)]
        seen = (float(bars.close[i]), float(bars.close[i] + bars.spread[i] * self.c.specs[symbol].point))
        for sig in out if isinstance(out, list | tuple) else [out]:
            fault = self._signal_fault(sig, symbol, seen)
            if fault:
                self._invalid(si, symbol, t, *fault)
                continue
            valid.append(sig if sig.strategy == s.name else sig.model_copy(update={"strategy": s.name}))
        return valid

    def _signal_fault(self, sig: Any, symbol: str, seen: tuple[float, float]) -> tuple[str, str] | None:
        """Why a returned object cannot be traded (a strategy bug, not a market event), or None: the
        reason counted in the funnel (stable across calls) and the full message with the values.

        Stops are a bug when they are on the wrong side of the price (the pending price, or for a market
        order the bid / ask of the closed bar the strategy saw, ``seen``). Right for that bar but wrong
        for the quote now (a gap since the close) is a market event: the server refuses the order with
        MT5's TRADE_RETCODE_INVALID_STOPS, counted under "order failed" (spec 5.5)."""
        if not isinstance(sig, Signal):
            return f"not a Signal: {type(sig).__name__}", f"not a Signal: {type(sig).__name__} {sig!r:.120}"
        if sig.symbol != symbol:
            reason = f"wrong symbol: signal for {sig.symbol} returned from a call for {symbol}"
            return reason, reason
        if sig.direction == "flat" or (sig.sl is None and sig.tp is None):
            return None
        buy = sig.direction == "buy"
        # A market buy closes at Bid, a sell at Ask: its stops are measured from there.
        ref = sig.price if sig.order_type != "market" and sig.price else seen[0 if buy else 1]
        wrong_sl = bool(sig.sl) and (sig.sl >= ref if buy else sig.sl <= ref)  # type: ignore[operator]
        wrong_tp = bool(sig.tp) and (sig.tp <= ref if buy else sig.tp >= ref)  # type: ignore[operator]
        if not (wrong_sl or wrong_tp):
            return None
        which = " and ".join(k for k, bad in (("SL", wrong_sl), ("TP", wrong_tp)) if bad)
        reason = f"stops on the wrong side: {sig.direction} with its {which} on the wrong side of the price"
        return reason, f"stops on the wrong side: {sig.direction} with SL {sig.sl} / TP {sig.tp} around {ref}"

    def _invalid(self, si: int, symbol: str, t: int, reason: str, message: str | None = None) -> None:
        """A returned signal that cannot be traded is a strategy bug: counted per strategy and reason
        (shown in the funnel), stored, the first of each strategy logged at WARNING, and handled by
        ``backtest.on_strategy_error`` like an exception."""
        name = self.c.strategies[si].strategy.name
        message = message or reason
        self.funnel.invalid_signals += 1
        self.funnel.invalid[name][reason] += 1
        self._error_row(name, symbol, t, "InvalidSignal", message, None)
        if name not in self._logged_invalid:
            self._logged_invalid.add(name)
            log.warning(
                "strategy %s returned an invalid signal on %s at %s UTC: %s", name, symbol, ts(t), message
            )
        self._apply_policy(si, f"returned an invalid signal ({message})", symbol, t, None)

    def _apply_policy(self, si: int, what: str, symbol: str, t: int, cause: Exception | None) -> None:
        """``backtest.on_strategy_error``: stop (exit 5), disable the strategy, or continue."""
        s = self.c.strategies[si].strategy
        policy = self.c.cfg.backtest.on_strategy_error
        if policy == "stop":
            raise StrategyRuntimeError(
                f"strategy {s.name} {what} on {symbol} at bar close {ts(t)} UTC "
                "(on_strategy_error: stop). Fix the strategy, or set backtest.on_strategy_error to "
                "'disable' or 'continue'."
            ) from cause
        if policy == "disable" and si not in self.disabled:
            self.disabled.add(si)
            self.funnel.disabled.append(s.name)

    def _strategy_failed(self, si: int, symbol: str, t: int, e: Exception) -> list[Signal]:
        self._record_error(si, symbol, t, e)
        self._apply_policy(si, f"raised {type(e).__name__}: {e}", symbol, t, e)
        return []

    def _process(self, batch: list[tuple[int, str, Signal]], t: int) -> None:
        """All trading signals of one decision point: exits first (a reversal frees its slot), then one
        coordinator review of every entry together (conflicts, limits and risk see the whole bar),
        then execution of what was approved or resized."""
        if not batch:
            return
        server = self.c.server
        items = []
        for si, symbol, sig in batch:
            if self.capture is not None:
                self.capture.append((t, sig.strategy, symbol, sig))
            self._signal_seq += 1
            self.funnel.signals += 1
            regime = self._regime(symbol, t)
            if regime is not None:
                sig = sig.model_copy(update={"tags": {**sig.tags, "regime": regime}})
            items.append((si, symbol, sig, self._signal_seq, regime))
            if sig.direction == "flat" or sig.exit_opposite:
                self._close_strategy_positions(si, symbol, sig, self._signal_seq)
        contexts = []
        for si, symbol, sig, _, regime in items:
            s = self.c.strategies[si].strategy
            sl, _tp, ref = self._stops(sig, symbol)
            contexts.append(
                SignalContext(s.name, sig.volume or s.volume, abs(ref - sl) if sl and ref else None, regime)
            )
        owners = {p.ticket: p.strategy for p in server.positions}
        ctx = ReviewContext(
            now=t,
            bar_time=t,
            signals=contexts,
            owners=owners,
            server_time=self.c.terminal.market.to_server_s(t),
        )
        decisions = self.c.coordinator.review([it[2] for it in items], ctx)
        close_all = False
        for (si, symbol, sig, sid, _), decision in zip(items, decisions, strict=True):
            s = self.c.strategies[si].strategy
            row = signal_row(
                sid,
                t,
                s,
                symbol,
                sig,
                status=decision.status,
                rule=decision.rule,
                reason=decision.reason,
                details=decision.details,
                volume=decision.volume,
            )
            close_all = close_all or bool(decision.details.get("close_all"))
            if decision.status in ("approved", "resized"):
                self.funnel.approved += 1
                if decision.status == "resized":
                    self.funnel.resized += 1
                if sig.direction != "flat":
                    row.update(self._execute(sig, symbol, t, decision.volume, sid, s.name))
            else:
                self.funnel.rejected[decision.reason or "unknown"] += 1
            self.rec.add(db.signals, row)
        if close_all:
            self._close_all_breaker(t)

    def _close_all_breaker(self, t: int) -> None:
        server = self.c.server
        self.funnel.circuit_breaker_closes += len(server.positions)
        for p in sorted(server.positions, key=lambda p: p.ticket):
            _, price = server.position_profit(p, t)
            server.close_position(p, t, price, C.DEAL_REASON_EXPERT, "circuit breaker")
            self._record_deals()

    def _regime(self, symbol: str, t: int) -> str | None:
        tracker = self.c.regimes
        return None if tracker is None else tracker.label_at(symbol, t)

    def _close_strategy_positions(self, si: int, symbol: str, sig: Signal, sid: int) -> None:
        server = self.c.server
        name = self.c.strategies[si].strategy.name
        opposite = {"buy": 1, "sell": 0, "flat": -1}[sig.direction]
        for p in list(server.positions):
            if p.symbol == symbol and p.strategy == name and opposite in (-1, p.type):
                close = TradeRequest(
                    action=C.TRADE_ACTION_DEAL,
                    symbol=symbol,
                    volume=p.volume,
                    position=p.ticket,
                    type=C.ORDER_TYPE_SELL if p.type == C.POSITION_TYPE_BUY else C.ORDER_TYPE_BUY,
                    comment=f"signal {sid}",
                    magic=p.magic,
                )
                res = server.send(close, name, sid)
                self._record_deals()
                if res.retcode != C.TRADE_RETCODE_DONE:
                    self.funnel.order_failed[f"close: {res.comment}"] += 1

    def _stops(self, sig: Signal, symbol: str) -> tuple[float, float, float]:
        """(SL price, TP price, reference price) of a signal at the current quote; 0 = none."""
        spec = self.c.specs[symbol]
        quote = self.c.server.quote(symbol)
        if quote is None:
            return 0.0, 0.0, 0.0
        bid, ask, _ = quote
        is_buy = sig.direction == "buy"
        ref = sig.price if sig.order_type != "market" and sig.price else (ask if is_buy else bid)
        sign = 1 if is_buy else -1
        sl = sig.sl or (round(ref - sign * sig.sl_points * spec.point, spec.digits) if sig.sl_points else 0.0)
        tp = sig.tp or (round(ref + sign * sig.tp_points * spec.point, spec.digits) if sig.tp_points else 0.0)
        return float(sl), float(tp), float(ref)

    def _execute(
        self, sig: Signal, symbol: str, t: int, volume: float, sid: int, strategy: str
    ) -> dict[str, Any]:
        """Send the approved signal as an MT5 request; return the execution columns of its row."""
        server = self.c.server
        is_buy = sig.direction == "buy"
        if server.quote(symbol) is None:
            self.funnel.order_failed["Market closed"] += 1
            return {"retcode": C.TRADE_RETCODE_MARKET_CLOSED}
        if sig.order_type == "market":
            action, type_ = C.TRADE_ACTION_DEAL, (C.ORDER_TYPE_BUY if is_buy else C.ORDER_TYPE_SELL)
        else:
            kinds = {
                ("limit", True): C.ORDER_TYPE_BUY_LIMIT,
                ("limit", False): C.ORDER_TYPE_SELL_LIMIT,
                ("stop", True): C.ORDER_TYPE_BUY_STOP,
                ("stop", False): C.ORDER_TYPE_SELL_STOP,
            }
            action, type_ = C.TRADE_ACTION_PENDING, kinds[(sig.order_type, is_buy)]
        sl, tp, _ = self._stops(sig, symbol)
        req = TradeRequest(
            action=action,
            symbol=symbol,
            volume=float(volume),
            type=type_,
            price=float(sig.price or 0.0),
            sl=float(sl),
            tp=float(tp),
            comment=sig.comment[:31],
        )
        res = server.send(req, strategy, sid)
        self._record_deals()
        if res.retcode in (C.TRADE_RETCODE_DONE, C.TRADE_RETCODE_PLACED):
            self.funnel.executed += 1
        else:
            self.funnel.order_failed[res.comment] += 1
        return {
            "order_ticket": res.order or None,
            "retcode": res.retcode,
            "sl": sl or None,
            "tp": tp or None,
            "position_id": res.order or None,
        }

    # ------------------------------------------------------------------ orders a strategy sends itself
    def _route(self, req: TradeRequest) -> OrderSendResult:
        """``order_send`` of a strategy through ``self.ctx.mt5`` (also ``Buy``, ``Sell``, ``Close``).

        Never around the coordinator or the records: the request is attributed to the strategy being
        called; with ``backtest.strategy_orders: review`` an entry is reviewed and recorded like a
        signal (a rejection returns TRADE_RETCODE_REJECT) while exits and order changes pass, as a
        signal's exits do; with ``refuse`` any request is a strategy error. Every deal is recorded.
        """
        server = self.c.server
        si = self._active
        name = self._slots[si][0].name if si is not None else ""
        self.funnel.order_sends += 1
        if self.c.cfg.backtest.strategy_orders == "refuse":
            raise StrategyRuntimeError(
                f"strategy {name or '?'} sent an order through self.ctx.mt5 ({_describe(req)}) and "
                "backtest.strategy_orders is 'refuse'. Return Signals instead, or set "
                "backtest.strategy_orders: review to have such orders reviewed like signals."
            )
        entry = self._entry_volume(req)
        if entry is None:
            res = server.send(req, name)
            self._record_deals()
            return res
        if si is None:  # no strategy is being called: nobody the coordinator could review it for
            raise StrategyRuntimeError(
                f"an order was sent through the terminal outside any strategy call ({_describe(req)}); "
                "send orders from generate_signals, on_start, on_trade or on_stop"
            )
        return self._review_request(req, entry, si)

    def _entry_volume(self, req: TradeRequest) -> float | None:
        """The volume of ``req`` that opens or adds exposure (what the coordinator gates), or None for an
        exit, a change of SL/TP or orders, or a request the server refuses anyway."""
        server = self.c.server
        if req.action == C.TRADE_ACTION_PENDING:
            return req.volume if req.volume > 0 else None
        buy = req.type == C.ORDER_TYPE_BUY
        if req.action != C.TRADE_ACTION_DEAL or req.type not in (C.ORDER_TYPE_BUY, C.ORDER_TYPE_SELL):
            return None
        if req.position or not req.volume > 0:
            return None
        if server.settings.hedging:
            return req.volume
        held = next((p for p in server.positions if p.symbol == req.symbol), None)
        if held is None or (held.type == C.POSITION_TYPE_BUY) == buy:
            return req.volume
        rest = round(req.volume - held.volume, 8)  # netting: only a reversal's new part is an entry
        return rest if rest > 1e-9 else None

    def _review_request(self, req: TradeRequest, volume: float, si: int) -> OrderSendResult:
        """One coordinator review of a strategy's own entry, stored as a signal row with its decision and
        execution; approved (maybe resized) it is sent as the strategy wrote it."""
        server, s = self.c.server, self._slots[si][0]
        t = server.now
        buy = req.type in (C.ORDER_TYPE_BUY, *BUY_PENDING)
        kind: OrderKind = (
            "market" if req.action == C.TRADE_ACTION_DEAL else ("limit" if req.type in LIMITS else "stop")
        )
        sig = Signal.model_construct(  # the request as the signal it is (sent, so not validated again)
            symbol=req.symbol,
            direction="buy" if buy else "sell",
            order_type=kind,
            price=(req.price or None) if kind != "market" else None,
            sl=req.sl or None,
            tp=req.tp or None,
            volume=volume,
            strategy=s.name,
            exit_opposite=False,
            comment=req.comment,
            tags={"source": "order_send"},
        )
        if self.capture is not None:
            self.capture.append((t, s.name, req.symbol, sig))
        self._signal_seq += 1
        sid = self._signal_seq
        self.funnel.signals += 1
        regime = self._regime(req.symbol, t)
        if regime is not None:
            sig = sig.model_copy(update={"tags": {**sig.tags, "regime": regime}})
        quote = server.quote(req.symbol)
        bid, ask = (quote[0], quote[1]) if quote else (0.0, 0.0)
        ref = req.price if kind != "market" else (ask if buy else bid)
        context = ReviewContext(
            now=t,
            bar_time=t,
            signals=[SignalContext(s.name, volume, abs(ref - req.sl) if req.sl and ref else None, regime)],
            owners={p.ticket: p.strategy for p in server.positions},
            server_time=self.c.terminal.market.to_server_s(t),
        )
        decision = self.c.coordinator.review([sig], context)[0]
        row = signal_row(
            sid,
            t,
            s,
            req.symbol,
            sig,
            status=decision.status,
            rule=decision.rule,
            reason=decision.reason,
            details=decision.details,
            volume=decision.volume,
        )
        if decision.status in ("approved", "resized"):
            self.funnel.approved += 1
            self.funnel.resized += decision.status == "resized"
            sent = req._replace(volume=round(req.volume - volume + decision.volume, 8))
            res = server.send(sent, s.name, sid)
            self._record_deals()
            if res.retcode in (C.TRADE_RETCODE_DONE, C.TRADE_RETCODE_PLACED):
                self.funnel.executed += 1
            else:
                self.funnel.order_failed[res.comment] += 1
            row.update(order_ticket=res.order or None, retcode=res.retcode, position_id=res.order or None)
        else:
            self.funnel.rejected[decision.reason or "unknown"] += 1
            comment = f"Request rejected by the risk coordinator: {decision.reason}"
            res = OrderSendResult(C.TRADE_RETCODE_REJECT, 0, 0, 0.0, 0.0, bid, ask, comment, 0, 0, req)
            row.update(retcode=C.TRADE_RETCODE_REJECT)
        self.rec.add(db.signals, row)
        if decision.details.get("close_all"):
            self._close_all_breaker(t)
        return res

    def _close_all_at_end(self, end: int) -> None:
        """Close what is open at the last quote before ``end`` (the tester's last tick)."""
        server = self.c.server
        for p in sorted(server.positions, key=lambda p: p.ticket):
            bars = self.c.m1[p.symbol]
            last = int(np.searchsorted(bars.time, end, "left")) - 1
            when = min(end, int(bars.time[max(last, 0)]) + 59_000_000_000)
            price = server.position_profit(p, when)[1]
            server.close_position(p, when, price, C.DEAL_REASON_EXPERT, "end of run")
            self._record_deals()

    def open_positions(self) -> list[tuple[str, str]]:
        return [(p.symbol, p.strategy) for p in self.c.server.positions]

    # --------------------------------------------------------------------------------- the loop
    def run(
        self, progress: Callable[[int, int], None] | None = None, resume: dict[str, Any] | None = None
    ) -> RunResult:
        """Run the loop; with ``resume`` (a checkpoint state) continue a recorded run after its point."""
        c = self.c
        if resume is not None and not resume.get("fresh"):  # "fresh": the checkpoint before bar 1
            first_point = checkpoint.restore(self, resume)
            self._recorded = len(c.server.deals)  # the checkpoint is taken with every deal recorded
            return self._loop(progress, first_point)
        if resume is None:
            self._start_run()
        self._record_deals()  # the deposit
        for si, ls in enumerate(c.strategies):
            self._active = si
            ls.strategy.on_start(self.ctx)
            self._record_deals()
        self._active = None
        return self._loop(progress, 0)

    def _start_run(self) -> None:
        c = self.c
        cfg = c.cfg
        start_marker = (
            None
            if cfg.results.checkpoint_seconds is None
            else checkpoint.start_marker(self.run_id, str(c.base_dir), day_ns(cfg.backtest.start))
        )
        self.rec.start_run(
            cfg.effective()
            | {"results": cfg.effective()["results"] | {"database_url": db.redact(cfg.results.database_url)}},
            cfg.config_hash(),
            cfg.backtest.seed,
            cfg.backtest.initial_deposit,
            cfg.backtest.deposit_currency,
            [
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
                for ls in c.strategies
            ],
            [
                {
                    "symbol": h.symbol,
                    "timeframe": h.timeframe.name,
                    "score": h.score,
                    "bars": h.bars,
                    "report": h.to_dict()
                    | {
                        "fingerprints": fingerprints(c, h.symbol),
                        "history_quality_pct": history_quality(c.m1[h.symbol], h),
                    },
                }
                for h in c.health
            ],
            then=start_marker,
        )

    def _loop(self, progress: Callable[[int, int], None] | None, first_point: int) -> RunResult:
        # What the build made (data, frames, strategies) lives through the whole run: frozen, the cyclic
        # garbage collector does not scan it again at each collection. Released at the end.
        freeze = gc.get_freeze_count() == 0
        if freeze:
            gc.freeze()
        try:
            return self._points(progress, first_point)
        finally:
            if freeze:
                gc.unfreeze()

    def _points(self, progress: Callable[[int, int], None] | None, first_point: int) -> RunResult:
        c = self.c
        cfg = c.cfg
        t_start = _time.perf_counter()
        every = cfg.results.checkpoint_seconds
        last_checkpoint = _time.monotonic()
        try:
            tl = timeline(c)
            total = len(tl) if self.stop_ns is None else int(np.searchsorted(tl.times, self.stop_ns, "right"))
            watch_equity = bool(cfg.coordinator.daily_loss_limit_pct or cfg.coordinator.max_drawdown_pct)
            server, terminal, counts, disabled = c.server, c.terminal, self.funnel, self.disabled
            slots, trades, call = self._slots, self.trades, self._call
            chunk_end = first_point
            for n in range(first_point, total):
                if n == chunk_end:  # the next points as Python lists, 65,536 at a time (memory)
                    chunk_start, chunk_end = n, min(n + 65_536, total)
                    times, starts, ev_si, ev_sym, ev_i, sample = tl.chunk(chunk_start, chunk_end)
                j = n - chunk_start
                t = times[j]
                self.ctx.now = t
                server.advance(t)
                if self._recorded != len(server.deals):
                    self._record_deals()
                terminal.set_time(t)
                if watch_equity:
                    c.coordinator.observe(terminal.market.to_server_s(t))
                batch: list[tuple[int, str, Signal]] = []
                members: dict[str, dict[str, list[Signal]]] | None = None
                for k in range(starts[j], starts[j + 1]):  # fusion strategies come last (timeline order)
                    si = ev_si[k]
                    if si in disabled:
                        continue
                    symbol = ev_sym[k]
                    sigs = call(si, symbol, ev_i[k], t, members.get(symbol) if members else None)
                    if not trades[si]:
                        members = members if members is not None else {}
                        members.setdefault(symbol, {})[slots[si][0].name] = sigs
                        self._record_fed(si, symbol, sigs, t)
                    elif sigs:
                        batch += [(si, symbol, sig) for sig in sigs]
                if batch:
                    self._process(batch, t)
                if sample[j]:
                    self._record_equity(t)
                counts.decision_points += 1
                if progress and n % 256 == 0:
                    progress(n, total)
                if every is not None and _time.monotonic() - last_checkpoint >= every:
                    self._fold_calls()
                    checkpoint.save(self, n, t)
                    last_checkpoint = _time.monotonic()
            end = day_ns(cfg.backtest.end)
            c.server.advance(end)
            self._record_deals()
            if cfg.backtest.close_at_end:
                self._close_all_at_end(end)
            self._record_equity(end)
            for si, ls in enumerate(c.strategies):
                self._active = si
                ls.strategy.on_stop(self.ctx)
            self._active = None
            self._record_deals()
        except BaseException as e:
            self._fold_calls()
            self.funnel.ambiguous_bars, self.funnel.stop_outs = c.server.ambiguous_bars, c.server.stop_outs
            with contextlib.suppress(StorageError):  # a failed write: finish() marks the run failed with it
                self._record_deals(notify=False)  # a failed run keeps every deal the terminal made
                self._record_book()
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            self.rec.finish(status, self.funnel.as_dict(), f"{type(e).__name__}: {e}")
            raise
        self._fold_calls()
        self.funnel.ambiguous_bars, self.funnel.stop_outs = c.server.ambiguous_bars, c.server.stop_outs
        try:
            self._record_book()
            self.rec.flush()
            with db.storage_errors(c.engine, f"reading the equity of run {self.run_id}", "Fix the database"):
                daily = daily_rows(c.engine, self.run_id, cfg.backtest.server_timezone)
            for row in daily:
                self.rec.add(db.daily_equity, row)
        except StorageError as e:  # marked failed with the error; resumable from its last checkpoint
            self.rec.finish("failed", self.funnel.as_dict(), f"{type(e).__name__}: {e}")
            raise
        funnel = self.funnel.as_dict()
        seconds = round(_time.perf_counter() - t_start, 3)
        self.rec.finish("completed", funnel, None, {"loop_seconds": seconds})
        start, end = day_ns(cfg.backtest.start), day_ns(cfg.backtest.end)
        m1_bars = sum(
            int(np.searchsorted(c.m1[s].time, end) - np.searchsorted(c.m1[s].time, start))
            for s in cfg.backtest.symbols
        )
        return RunResult(
            self.run_id, "completed", funnel, c.server.balance, len(c.server.deals), seconds, m1_bars
        )
