"""The host: calls the strategies. It hands each the window of closed bars it may see, feeds fusion
strategies their members' signals, checks what comes back (invalid signals are a strategy bug), and
applies ``backtest.on_strategy_error`` to exceptions and invalid signals alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from time import perf_counter as _perf_counter
from typing import Any, Protocol

from pydantic import ValidationError

from mt5tester.engine.build import Components
from mt5tester.engine.journal import Journal
from mt5tester.engine.preflight import ts
from mt5tester.errors import StrategyRuntimeError
from mt5tester.model.signal import InvalidSignal, Signal
from mt5tester.model.trade import Deal
from mt5tester.strategy.base import FusionStrategy, StrategyContext

Event = tuple[int, str, int]  # (strategy index, symbol, index of the bar that closed)
# One call in TIMED_EVERY of each strategy is timed (the first included): the funnel's mean µs per call
# is their mean, its seconds per strategy that mean times the calls.
TIMED_EVERY = 8


class CallWatch(Protocol):
    """Sees every strategy call: ``calling(si)`` before it, ``called(si, symbol, t, signals)`` after it
    with the checked signals it gave (none after an error or an invalid signal)."""

    def calling(self, si: int) -> None: ...

    def called(self, si: int, symbol: str, t: int, signals: list[Signal]) -> None: ...


class Host:
    def __init__(self, c: Components, journal: Journal, ctx: StrategyContext) -> None:
        self.c = c
        self.journal = journal
        self.ctx = ctx
        self.disabled: set[int] = set()
        self.active: int | None = None  # index of the strategy being called (owner of its order_send)
        self.trades = [sc.trade for sc in c.cfg.strategies] if c.strategies else []
        # Per strategy index: (strategy, is a fusion, warm-up rows); calls and their seconds are counted
        # here and folded into the funnel by fold_calls (checkpoints, the end of the run).
        self.slots = [
            (ls.strategy, isinstance(ls.strategy, FusionStrategy), ls.strategy.warmup_bars)
            for ls in c.strategies
        ]
        # The feeds by (strategy index, symbol): the dict itself, as a paper session replaces its entries.
        self._feeds = c.feeds
        self._index = {ls.strategy.name: si for si, ls in enumerate(c.strategies)}
        self._calls = [0] * len(c.strategies)
        self._call_seconds = [0.0] * len(c.strategies)  # of the timed calls: one in TIMED_EVERY
        self._timed = [0] * len(c.strategies)
        for ls in c.strategies:
            ls.strategy.ctx = ctx
        self.watch: CallWatch | None = None  # the lookahead checker's (engine/lookahead.py)
        # A signal pass called the strategies at every point already (engine/signal_pass.py): the loop
        # takes each point's signals from it, (events, time) -> signals, instead of calling them again.
        self.recorded: Callable[[Any, int], list[tuple[int, str, Signal]]] | None = None

    def name(self, si: int) -> str:
        return str(self.slots[si][0].name)

    def fold_calls(self) -> None:
        funnel = self.journal.funnel
        for si, (s, _, _) in enumerate(self.slots):
            calls, timed = self._calls[si], self._timed[si]
            funnel.calls[s.name] += calls
            funnel.call_seconds[s.name] += self._call_seconds[si] * calls / timed if timed else 0.0
            funnel.strategy_calls += calls
            self._calls[si], self._call_seconds[si], self._timed[si] = 0, 0.0, 0

    @contextmanager
    def acting(self, si: int | None) -> Iterator[None]:
        """While strategy ``si`` runs, the orders sent through the terminal are its own."""
        caller, self.active = self.active, si
        try:
            yield
        finally:
            self.active = caller

    def each(self, hook: str, record_each: bool) -> None:
        """``on_start`` or ``on_stop`` of every strategy, in order; their deals are recorded after each
        (on_start) or after all of them (on_stop)."""
        for si, (s, _, _) in enumerate(self.slots):
            with self.acting(si):
                getattr(s, hook)(self.ctx)
            if record_each:
                self.journal.deals()
        self.journal.deals()

    def decide(self, events: Sequence[Event], t: int) -> list[tuple[int, str, Signal]]:
        """Call the strategies whose bar closed at this point (fusion strategies come last, in timeline
        order, and get what their `trade: false` members said); return the trading signals.

        Each call gets its window of closed bars, its errors handled per policy and its output checked
        (invalid signals are counted and recorded, never executed). All in this one frame: it runs at
        every decision point, and a flat book's point costs little more than it."""
        batch: list[tuple[int, str, Signal]] = []
        members: dict[str, dict[str, list[Signal]]] | None = None
        disabled, trades, slots, feeds, calls, watch = (
            self.disabled,
            self.trades,
            self.slots,
            self._feeds,
            self._calls,
            self.watch,
        )
        for si, symbol, i in events:
            if disabled and si in disabled:
                continue
            s, fusion, warmup = slots[si]
            lo = i + 1 - warmup
            df: Any = feeds[(si, symbol)].window(lo if lo > 0 else 0, i + 1)
            if watch is not None:
                watch.calling(si)
            self.active = si
            n = calls[si]
            calls[si] = n + 1
            timed = not n % TIMED_EVERY  # the clock costs ~0.1 us a read here: a sample of the calls
            t0 = _perf_counter() if timed else 0.0
            try:
                if fusion:
                    got = members.get(symbol) if members else None
                    out = s.combine(symbol, s.timeframe, df, got or {})  # type: ignore[attr-defined]
                else:
                    out = s.generate_signals(symbol, s.timeframe, df)
            except ValidationError as e:
                self._unvalidated(si, symbol, t, e)
                out = None
            except InvalidSignal as e:  # an adapted strategy's dict (strategy/legacy.py)
                self._invalid(si, symbol, t, e.reason, str(e))
                out = None
            except Exception as e:
                out = self.failed(si, symbol, t, e)
            finally:
                if timed:
                    self._call_seconds[si] += _perf_counter() - t0
                    self._timed[si] += 1
                self.active = None
            sigs = self._checked(si, symbol, i, t, out) if out else []
            if watch is not None:
                watch.called(si, symbol, t, sigs)
            if trades[si]:
                if sigs:
                    batch += [(si, symbol, sig) for sig in sigs]
                continue
            members = members if members is not None else {}
            members.setdefault(symbol, {})[self.name(si)] = sigs
            self.journal.fed(s, symbol, sigs, t)
        return batch

    def _unvalidated(self, si: int, symbol: str, t: int, e: ValidationError) -> None:
        """A Signal the strategy could not build (pydantic refused its fields): an invalid signal; any
        other model's ValidationError is the strategy's error."""
        if e.title != "Signal":
            self.failed(si, symbol, t, e)
            return
        detail = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'signal'}: {x['msg']}" for x in e.errors())
        self._invalid(si, symbol, t, "invalid Signal: " + detail)

    def _checked(self, si: int, symbol: str, i: int, t: int, out: Any) -> list[Signal]:
        """What a call returned (a Signal or a list of them), checked against the bar it saw; the valid
        ones carry the strategy's name."""
        s = self.slots[si][0]
        valid = []
        bars = self.c.tf_bars[(symbol, s.timeframe)]
        seen = (float(bars.close[i]), float(bars.close[i] + bars.spread[i] * self.c.specs[symbol].point))
        for sig in out if isinstance(out, list | tuple) else [out]:
            fault = signal_fault(sig, symbol, seen)
            if fault:
                self._invalid(si, symbol, t, *fault)
                continue
            valid.append(sig if sig.strategy == s.name else sig.model_copy(update={"strategy": s.name}))
        return valid

    def on_trade(self, d: Deal, strategy: str) -> None:
        """on_trade hook of the deal's strategy; its errors follow on_strategy_error like any call."""
        si = self._index.get(strategy)
        if si is None:
            return
        with self.acting(si):
            try:
                self.slots[si][0].on_trade(self.ctx, d)
            except Exception as e:
                self.failed(si, d.symbol, d.time, e)

    def _invalid(self, si: int, symbol: str, t: int, reason: str, message: str | None = None) -> None:
        """A returned signal that cannot be traded is a strategy bug: journaled and handled by
        ``backtest.on_strategy_error`` like an exception."""
        message = message or reason
        self.journal.invalid(self.name(si), symbol, t, reason, message)
        self._apply_policy(si, f"returned an invalid signal ({message})", symbol, t, None)

    def failed(self, si: int, symbol: str, t: int, e: Exception) -> list[Signal]:
        self.journal.error(self.name(si), symbol, t, e)
        self._apply_policy(si, f"raised {type(e).__name__}: {e}", symbol, t, e)
        return []

    def _apply_policy(self, si: int, what: str, symbol: str, t: int, cause: Exception | None) -> None:
        """``backtest.on_strategy_error``: stop (exit 5), disable the strategy, or continue."""
        name = self.name(si)
        policy = self.c.cfg.backtest.on_strategy_error
        if policy == "stop":
            raise StrategyRuntimeError(
                f"strategy {name} {what} on {symbol} at bar close {ts(t)} UTC "
                "(on_strategy_error: stop). Fix the strategy, or set backtest.on_strategy_error to "
                "'disable' or 'continue'."
            ) from cause
        if policy == "disable" and si not in self.disabled:
            self.disabled.add(si)
            self.journal.funnel.disabled.append(name)


def signal_fault(sig: Any, symbol: str, seen: tuple[float, float]) -> tuple[str, str] | None:
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
