"""The whole-run kernel's inputs (engine/kernel.py, driver b): the signals it trades, from prepared columns
or a signal pass (engine/signal_pass.py), the quotes at the points it visits, the symbol table, the swap
rollovers, the M1 bars for SL/TP, and what the rules read before the loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mt5tester.engine import signal_pass
from mt5tester.engine.preflight import ts
from mt5tester.model.symbol import CalcMode
from mt5tester.risk import breaker
from mt5tester.risk.rules import (
    CurrencyExposureRule,
)
from mt5tester.terminal import money
from mt5tester.terminal import replay as replay_mod
from mt5tester.terminal.core import book as B
from mt5tester.terminal.records import MARKET_CLOSED_AFTER_NS

if TYPE_CHECKING:
    from mt5tester.engine.loop import Runner
    from mt5tester.engine.timeline import Timeline
    from mt5tester.model.signal import Signal
from mt5tester.engine.kernel_codes import B_DAILY_PCT, B_DAY_START, B_MAX_DD_PCT, B_PEAK


def symbol_reason(spec: Any, dep: str) -> str | None:
    """Conversions the kernel compiles: none or the symbol's own price (no other pair's rate)."""
    if dep not in (spec.currency_profit, spec.currency_base):
        return f"profit in {spec.currency_profit} converts through another pair"
    if margin_kind(spec, dep) is None:
        return f"margin in {spec.currency_margin} converts through another pair"
    if spec.commission and spec.commission_mode != "per_lot" and spec.currency_profit != dep:
        return "a percent commission converts through another pair"
    return None


def margin_kind(spec: Any, dep: str) -> int | None:
    """``money.margin_factor`` as a kind: the position's price, or 1 (already deposit currency)."""
    if spec.trade_calc_mode in (CalcMode.FOREX, CalcMode.FOREX_NO_LEVERAGE):
        if spec.currency_margin != dep and spec.currency_profit == dep:
            return B.MFAC_PRICE
        return B.MFAC_ONE if spec.currency_margin == dep else None
    return B.MFAC_ONE if spec.currency_profit == dep else None


# ------------------------------------------------------------------------------------ inputs
@dataclass
class Inputs:
    symbols: list[str]
    times: np.ndarray
    starts: np.ndarray
    ev_si: np.ndarray
    ev_sym: np.ndarray
    ev_dir: np.ndarray
    ev_vol: np.ndarray
    sample: np.ndarray
    bid: np.ndarray  # (points, symbols): the quote at each point (quote_at)
    ask: np.ndarray
    has: np.ndarray  # a quote exists
    fresh: np.ndarray  # the server trades on it (not older than MARKET_CLOSED_AFTER_NS)
    si: np.ndarray
    sf: np.ndarray
    r_times: np.ndarray
    r_days: np.ndarray
    r_rate: np.ndarray  # (symbols, rollovers): deposit units per unit of the swap's currency
    r_bid: np.ndarray  # (symbols, rollovers): the bid before the rollover (INTEREST_CURRENT)
    lo_all: np.ndarray
    hi_all: np.ndarray
    ev_sl: np.ndarray  # SL / TP distance in points of each signal (0: none)
    ev_tp: np.ndarray
    stops_level: np.ndarray  # per symbol: trade_stops_level as a price distance
    b_off: np.ndarray  # M1 bars of symbol k: rows b_off[k]:b_off[k + 1] of the b_* columns
    b_time: np.ndarray
    b_open: np.ndarray
    b_high: np.ndarray
    b_low: np.ndarray
    b_spread: np.ndarray
    signals: list[Signal] | None = None  # a signal pass's signals, one per event (the rows' own fields)
    points: int = 0  # the timeline's points (``times`` may keep only those with a signal or a record)


@dataclass
class _Events:
    """The signals the kernel trades, per decision point: rows ``starts[n]:starts[n + 1]`` are point n's;
    ``keep``: the points the kernel visits (None: all)."""

    starts: np.ndarray
    si: np.ndarray
    sym: np.ndarray
    dir: np.ndarray
    vol: np.ndarray
    sl: np.ndarray  # SL / TP distance in points (0: none)
    tp: np.ndarray
    signals: list[Signal] | None = None
    keep: np.ndarray | None = None


def _column_events(runner: Runner, tl: Timeline, index: dict[str, int]) -> _Events:
    """Every event of ``tl`` is a signal: the sign of the strategy's ``signal_column`` at its bar."""
    c = runner.c
    symbols = list(tl.symbols)
    # the timeline's symbol numbers to the index's (one lookup per symbol, not per signal)
    ev_sym = np.array([index[s] for s in symbols], np.int64)[tl.sym] if len(tl.sym) else tl.sym
    ev_dir = np.zeros(len(tl.si), np.int64)
    ev_vol = np.zeros(len(tl.si))
    ev_sl, ev_tp = np.zeros(len(tl.si)), np.zeros(len(tl.si))
    for si, ls in enumerate(c.strategies):
        col = ls.strategy.signal_column
        assert col is not None
        for sym in ls.strategy.symbols:
            mask = (tl.si == si) & (ev_sym == index[sym])
            values = np.asarray(c.feeds[(si, sym)].extra[col])[tl.idx[mask]].astype(np.float64)
            ev_dir[mask] = np.where(values > 0, 1, -1)
        ev_vol[tl.si == si] = float(ls.strategy.volume)
        ev_sl[tl.si == si] = float(ls.strategy.column_sl_points or 0.0)
        ev_tp[tl.si == si] = float(ls.strategy.column_tp_points or 0.0)
    return _Events(tl.starts, tl.si.astype(np.int64), ev_sym, ev_dir, ev_vol, ev_sl, ev_tp)


def _pass_events(runner: Runner, tl: Timeline, passed: signal_pass.Pass, index: dict[str, int]) -> _Events:
    """The signals a signal pass recorded, in point order and, within a point, in the loop's order."""
    volumes = [slot[0].volume for slot in runner.host.slots]
    counts = np.zeros(passed.points, np.int64)  # the points the pass called (all, or up to its limit)
    at = sorted(passed.batches)  # the batches were recorded in point order: this keeps it
    counts[at] = [len(passed.batches[n]) for n in at]
    items = [item for n in at for item in passed.batches[n]]
    sigs = [sig for _, _, sig in items]
    si_ = [si for si, _, _ in items]
    sym_ = [index[symbol] for _, symbol, _ in items]
    dir_ = [1 if sig.direction == "buy" else -1 for sig in sigs]
    vol_ = [sig.volume or volumes[si] for si, _, sig in items]
    sl_ = [sig.sl_points or 0.0 for sig in sigs]
    tp_ = [sig.tp_points or 0.0 for sig in sigs]
    keep = np.ones(passed.points, np.bool_)
    cc = runner.c.cfg.coordinator
    if not (cc.daily_loss_limit_pct or cc.max_drawdown_pct):  # the breakers sample every point
        # Only the points with a signal or an equity row (and the last): between two of them the kernel's
        # next point replays SL/TP, swaps and the stop-out bound up to its time, as the loop's advance does.
        keep = (counts > 0) | tl.sample[: passed.points].astype(np.bool_)
        if len(keep):
            keep[-1] = True
        counts = counts[keep]
    starts = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=starts[1:])
    return _Events(
        starts, np.array(si_, np.int64), np.array(sym_, np.int64), np.array(dir_, np.int64),
        np.array(vol_, np.float64), np.array(sl_, np.float64), np.array(tp_, np.float64), sigs, keep,
    )  # fmt: skip


def no_stops(runner: Runner) -> str | None:
    """Why the kernel cannot resolve SL/TP in this run, or None."""
    if runner.c.cfg.backtest.tester_mode != "ohlc_m1":
        return "SL/TP in open_prices mode (the kernel resolves SL/TP on M1 bars: ohlc_m1)"
    if runner.c.server.settings.intrabar != "pessimistic":
        return "execution.intrabar_policy ohlc_path with SL/TP"
    return None


def inexpressible(runner: Runner, tl: Timeline, passed: signal_pass.Pass) -> str | None:
    """Why the kernel cannot trade a signal pass's signals (the loop then trades them), or None: it sends
    market entries that close the strategy's opposite positions first, with SL/TP in points."""
    if passed.error is not None:
        return f"a strategy error stops the run at {ts(int(tl.times[passed.failed_at or 0]))} UTC"
    stops = no_stops(runner)
    for n in sorted(passed.batches):
        for si, _, sig in passed.batches[n]:
            if stops is not None and (sig.sl_points or sig.tp_points):
                return stops
            what = (
                f"a {sig.order_type} order" if sig.order_type != "market"
                else "a flat signal" if sig.direction == "flat"
                else "SL/TP as prices" if sig.sl is not None or sig.tp is not None
                else "exit_opposite false" if not sig.exit_opposite
                else None
            )  # fmt: skip
            if what is not None:
                who, at = runner.host.name(si), ts(int(tl.times[n]))
                return f"strategy {who} signals {what} at {at} UTC (the kernel sends market entries)"
    return None


def build_inputs(runner: Runner, tl: Timeline, passed: signal_pass.Pass | None = None) -> Inputs:
    c = runner.c
    m = c.server.inputs
    st = m.settings
    names = sorted(set(tl.symbols))
    index = {s: k for k, s in enumerate(names)}
    ev = _column_events(runner, tl, index) if passed is None else _pass_events(runner, tl, passed, index)
    points = len(tl.times) if passed is None else passed.points
    times = tl.times if ev.keep is None else tl.times[:points][ev.keep]
    n, ns = len(times), len(names)
    bid, ask = np.zeros((n, ns)), np.zeros((n, ns))
    has, fresh = np.zeros((n, ns), np.bool_), np.zeros((n, ns), np.bool_)
    for k, sym in enumerate(names):
        b, a, row, when, ok = m.prices.quotes_at(sym, times)
        bid[:, k], ask[:, k], has[:, k] = b, a, ok
        last = when if st.tick_mode == "real_ticks" else m.prices.m1[sym].time[np.maximum(row, 0)]
        fresh[:, k] = ok & (times - last <= MARKET_CLOSED_AFTER_NS)
    tab_i = np.zeros((ns, 7), np.int64)
    tab_f = np.zeros((ns, 9))
    dep = st.currency
    for k, sym in enumerate(names):
        spec = m.specs[sym]
        conv = money.conversion(m, spec, 0)[0]
        tab_i[k] = (
            spec.digits, int(spec.trade_calc_mode), conv, margin_kind(spec, dep) or 0,
            int(spec.commission_mode == "per_lot"), int(spec.swap_mode), spec.swap_rollover3days,
        )  # fmt: skip
        tab_f[k] = (
            spec.trade_contract_size, spec.point, spec.volume_min, spec.volume_max, spec.volume_step,
            spec.margin_rate, spec.commission, spec.swap_long, spec.swap_short,
        )  # fmt: skip
    r_times = np.asarray(m.rollovers, np.int64)
    r_rate, r_bid = np.zeros((ns, len(r_times))), np.zeros((ns, len(r_times)))
    for k, sym in enumerate(names):
        spec = m.specs[sym]
        if int(spec.swap_mode) == 0 or (spec.swap_long == 0 and spec.swap_short == 0):
            continue
        ccy = {2: spec.currency_base, 3: spec.currency_margin, 4: dep}.get(
            int(spec.swap_mode), spec.currency_profit
        )
        for j, r in enumerate(r_times.tolist()):
            r_rate[k, j] = money.rate(m, ccy, r)
            if int(spec.swap_mode) == 5:
                r_bid[k, j] = m.prices.bid_before(sym, r)
    ext = [replay_mod._extremes(m, sym) for sym in names]
    sample = tl.sample.astype(np.bool_) if ev.keep is None else tl.sample[:points].astype(np.bool_)[ev.keep]
    m1 = [m.prices.m1[sym] for sym in names]
    b_off = np.concatenate([[0], np.cumsum([len(b) for b in m1])]).astype(np.int64)
    flat = {f: _joined([getattr(b, f) for b in m1], np.float64) for f in ("open", "high", "low")}
    flat["time"] = _joined([b.time for b in m1], np.int64)
    spreads = [np.asarray(m.prices.spread[sym]) for sym in names]  # int32 as stored: no int64 copy
    b_spread = _joined(spreads, np.result_type(*spreads) if spreads else np.int64)
    stops_level = np.array([m.specs[sym].trade_stops_level * m.specs[sym].point for sym in names])
    return Inputs(
        names, times, ev.starts, ev.si, ev.sym, ev.dir, ev.vol, sample,
        bid, ask, has, fresh, tab_i, tab_f, r_times, np.asarray(m.rollover_days, np.int64), r_rate, r_bid,
        np.array([e[0] for e in ext]), np.array([e[1] for e in ext]), ev.sl, ev.tp, stops_level, b_off,
        flat["time"], flat["open"], flat["high"], flat["low"], b_spread, ev.signals, points,
    )  # fmt: skip


def _joined(arrays: list[Any], dtype: Any) -> np.ndarray:
    """The symbols' columns end to end; one symbol's column as it is (no copy of a million bars)."""
    if len(arrays) == 1:
        return np.ascontiguousarray(arrays[0], dtype)
    return np.concatenate([np.asarray(a, dtype) for a in arrays]) if arrays else np.zeros(0, dtype)


def currencies(runner: Runner, symbols: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """max_currency_exposure's inputs: the currencies of the run's symbols, each symbol's (base, profit)
    codes, each currency's limit (``CurrencyExposureRule._limit``; NaN: none). No rule: no currencies."""
    rule = next((r for r in runner.c.coordinator.rules if isinstance(r, CurrencyExposureRule)), None)
    if rule is None:
        return [], np.zeros((len(symbols), 2), np.int64), np.zeros(0)
    specs, dep = runner.c.specs, runner.c.server.settings.currency
    pairs = [(specs[s].currency_base, specs[s].currency_profit) for s in symbols]
    names = sorted({ccy for pair in pairs for ccy in pair})
    code = {ccy: j for j, ccy in enumerate(names)}
    of = np.array([[code[a], code[b]] for a, b in pairs], np.int64).reshape(len(symbols), 2)
    limits = [rule.limit_of(ccy, dep) for ccy in names]
    return names, of, np.array([np.nan if v is None else v for v in limits], np.float64)


def breaker_state(runner: Runner, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The circuit breaker's inputs: the server-clock seconds of every point (none: no breaker), its state
    as arrays (day, latched / day start, peak, latch, limits), from the coordinator's own breaker."""
    c = runner.c
    cc, brk = c.cfg.coordinator, c.coordinator.breaker
    bk_i = np.array([breaker.NO_DAY if brk.day is None else brk.day, brk.latched is not None], np.int64)
    bk_f = np.zeros(7)
    bk_f[B_DAY_START], bk_f[B_PEAK] = brk.day_start_equity, brk.peak
    bk_f[B_DAILY_PCT] = breaker.OFF if cc.daily_loss_limit_pct is None else cc.daily_loss_limit_pct
    bk_f[B_MAX_DD_PCT] = breaker.OFF if cc.max_drawdown_pct is None else cc.max_drawdown_pct
    if cc.daily_loss_limit_pct is None and cc.max_drawdown_pct is None:
        return np.zeros(0, np.int64), bk_i, bk_f
    to_server = c.terminal.market.to_server_s
    return np.fromiter((to_server(t) for t in times.tolist()), np.int64, len(times)), bk_i, bk_f
