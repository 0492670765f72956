"""Driver (b): the decision points of a run inside one compiled loop, for strategies whose signals are
prepared as arrays (``column_signals``: the sign of ``signal_column`` is the whole decision).

Per point the loop does what the Python loop does (engine/loop.py) with the same compiled rules
(terminal/core): swap rollovers and the stop-out bound (``replay.advance``), the strategies' exits
(``Router._close_strategy_positions``), one coordinator review of the entries (the gates, sizing,
conflicts and correlations taken per signal before the run, engine/prereview.py, then the breakers and
the rules that read the book: max_positions, per symbol, per strategy, max_total_risk,
max_currency_exposure, max_correlation, min_free_margin), market fills at the quote with fixed
slippage and costs (``trading.send``/``ledger.execute``, hedging and netting) and the equity samples.
Afterwards the Python trade state and the journal are filled from the arrays (structures are built
once, at the end) and the run ends as any run does (``Runner.run``: replay to the end, close what is
open, on_stop).

``why_not(runner)`` names the first thing that keeps a run on driver (a). A case the loop meets but
does not compile (a stop-out within reach, a closed market, no money, a volume the server refuses)
stops it: the run then starts over on driver (a) and says why (``KernelDeclined``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numba import njit

from mt5tester.engine import prereview, signal_pass
from mt5tester.engine.journal import magic_of
from mt5tester.engine.preflight import ts
from mt5tester.errors import ConfigError
from mt5tester.model import constants as C
from mt5tester.model.columns import Coded, Const, Labels, Masked, narrow
from mt5tester.model.symbol import CalcMode
from mt5tester.model.trade import Deal, Order, Position
from mt5tester.risk import breaker, lots, sizing
from mt5tester.risk.decision import reject
from mt5tester.risk.rules import (
    CorrelationRule,
    CurrencyExposureRule,
    FreeMarginRule,
    TotalRiskRule,
    fitted,
)
from mt5tester.strategy.base import FusionStrategy, Strategy
from mt5tester.terminal import kernels, money
from mt5tester.terminal import replay as replay_mod
from mt5tester.terminal.core import book as B
from mt5tester.terminal.core import rules
from mt5tester.terminal.history import Block, History
from mt5tester.terminal.records import MARKET_CLOSED_AFTER_NS

if TYPE_CHECKING:
    from collections.abc import Callable

    from mt5tester.engine.loop import Runner
    from mt5tester.engine.timeline import Timeline
    from mt5tester.model.signal import Signal

# Every coordinator rule runs here. Sessions, blocked windows, weekends, the regime gate, fixed sizing,
# the risk multiplier, regime_risk, the conflicts and the correlations are taken per signal before the
# run (engine/prereview.py); the count rules, the circuit breakers (risk/breaker.py), risk-% sizing,
# max_total_risk and max_currency_exposure (risk/lots.py), the pick of max_correlation's symbol and
# min_free_margin are compiled. Volatility sizing, and conflicts between risk-% sized entries, are not
# (prereview.uncompiled).
_HOOKS = ("generate_signals", "on_start", "on_trade", "on_stop")

# Why the compiled loop stopped (0: it finished).
DONE, STOP_OUT, NO_QUOTE, NO_MONEY, BAD_VOLUME, NO_PRICE, BAD_STOPS, INSIDE_BAR = 0, 1, 2, 3, 4, 5, 6, 7
PRE_REJECTED = 4  # review outcome: a gate or sizing rejected the signal before the run (engine/prereview.py)
DAILY_LOSS, MAX_DRAWDOWN = 5, 6  # review outcomes: the circuit breaker (risk/breaker.py)
SIZING = 7  # review outcome: risk-% sizing refused the entry (e_value: an index of _SIZING)
# max_total_risk: rejected, no volume fits, resized, no stop loss
TOTAL_RISK, TOTAL_RISK_SMALL, RESIZED, NO_STOP_RISK = 8, 9, 10, 11
FREE_MARGIN = 12  # min_free_margin: e_free holds (floor, free margin after the entry, order_check's margin)
CONFLICT, CONFLICT_RESIZED = 13, 14  # conflict_policy (prereview): rejected; resized and approved as that
# max_currency_exposure and max_correlation: rejected, no volume fits, resized (e_ccy / e_corr: the numbers)
CURRENCY, CURRENCY_SMALL, CURRENCY_RESIZED = 15, 16, 17
CORRELATION, CORRELATION_SMALL, CORRELATION_RESIZED = 18, 19, 20
# review outcomes of an approved entry: as sent, or cut by the rule named (its last cut)
_APPROVED = (0, RESIZED, CONFLICT_RESIZED, CURRENCY_RESIZED, CORRELATION_RESIZED)
_REACHED_RULES = (
    0, 1, 2, 3, TOTAL_RISK, TOTAL_RISK_SMALL, RESIZED, NO_STOP_RISK, FREE_MARGIN, CONFLICT_RESIZED,
    CURRENCY, CURRENCY_SMALL, CURRENCY_RESIZED, CORRELATION, CORRELATION_SMALL, CORRELATION_RESIZED,
)  # fmt: skip
# e_ccy columns: CurrencyExposureRule's numbers (currency code, exposure after, before, fit, volume before)
X_CCY, X_AFTER, X_BEFORE, X_FIT, X_VOLUME = range(5)
# e_corr columns: CorrelationRule's numbers (symbol, sign-adjusted correlation, correlation, fit, volume)
K_SYM, K_ADJ, K_RHO, K_FIT, K_VOLUME = range(5)
# e_risk columns: TotalRiskRule's numbers (limit, value, open risk, new risk, unprotected, fit, volume before)
R_LIMIT, R_VALUE, R_HELD, R_NEW, R_UNPROTECTED, R_FIT, R_BEFORE = range(7)
_SIZING = {1: "no_stop_loss", 2: "no_tick_value", 3: "size_below_min"}
# e_size columns: the numbers behind a risk-% size (risk/sizing.py's details)
Z_MONEY, Z_DISTANCE, Z_TICK_VALUE, Z_PER_LOT, Z_RAW = 0, 1, 2, 3, 4
# The breaker's float state (bk_f): the day's starting equity, the peak, the latch (drawdown, peak, equity),
# the daily loss and max drawdown limits (breaker.OFF: not set).
B_DAY_START, B_PEAK, B_LATCH, B_DAILY_PCT, B_MAX_DD_PCT = 0, 1, 2, 5, 6
MINUTE = 60_000_000_000
_STOPPED = {
    STOP_OUT: "a stop-out came within reach",
    NO_QUOTE: "a signal met a closed market",
    NO_MONEY: "an entry lacked free margin (TRADE_RETCODE_NO_MONEY)",
    BAD_VOLUME: "an entry's volume was refused (TRADE_RETCODE_INVALID_VOLUME)",
    NO_PRICE: "an open position had no price yet",
    BAD_STOPS: "an entry's SL/TP was refused (TRADE_RETCODE_INVALID_STOPS)",
    INSIDE_BAR: "an SL/TP position was opened or scanned inside an M1 bar",
}
# Review outcome per signal: approved, or the count rule that rejected it.
_RULES = {1: "max_positions", 2: "max_positions_per_symbol", 3: "max_positions_per_strategy"}


class KernelDeclined(Exception):
    """The compiled loop met a case it does not compile; the run goes to driver (a)."""


def why_not(runner: Runner) -> str | None:
    """The first reason this run cannot run whole in the kernel (driver b), or None when it can."""
    c = runner.c
    if runner.stop_ns is not None or runner.capture is not None:
        return "the lookahead checker drives the loop"
    if not c.strategies:
        return "no strategies"
    for si, ls in enumerate(c.strategies):
        s = ls.strategy
        if isinstance(s, FusionStrategy) or not runner.host.trades[si]:
            return f"strategy {s.name} is a fusion strategy or a member (trade: false)"
        columns = s.column_signals and s.signal_column
        if not (columns or s.bars_only):
            return f"strategy {s.name} decides in Python (neither column_signals nor bars_only)"
        hooks = _HOOKS if columns else ("on_trade",)  # bars_only: called by a signal pass
        hook = next((h for h in hooks if getattr(type(s), h) is not getattr(Strategy, h)), None)
        if hook is not None:
            return f"strategy {s.name} overrides {hook}()"
    st = c.server.settings
    if st.tick_mode != "bars":
        return f"backtest.tester_mode {c.cfg.backtest.tester_mode} (the kernel runs open_prices and ohlc_m1)"
    if st.slippage_model == "random":
        return "random slippage"
    if any(ls.strategy.column_sl_points or ls.strategy.column_tp_points for ls in c.strategies):
        reason = _no_stops(runner)
        if reason is not None:
            return reason
    if c.modes is not None:
        return "trading_mode_switch is set (the mode in force is decided per signal in Python)"
    cc = c.cfg.coordinator
    sizing = prereview.uncompiled(cc)
    if sizing is not None:
        return sizing
    if cc.close_all_on_breach and (cc.daily_loss_limit_pct or cc.max_drawdown_pct):
        return "coordinator.close_all_on_breach is set (the breaker's closes are sent in Python)"
    for sym in sorted({s for ls in c.strategies for s in ls.strategy.symbols}):
        reason = _symbol_reason(c.specs[sym], st.currency)
        if reason:
            return f"{sym}: {reason}"
    if c.server.positions or c.server.orders:
        return "positions or orders were opened before the first point (on_start traded)"
    return None


def _no_stops(runner: Runner) -> str | None:
    """Why the kernel cannot resolve SL/TP in this run, or None."""
    if runner.c.cfg.backtest.tester_mode != "ohlc_m1":
        return "SL/TP in open_prices mode (the kernel resolves SL/TP on M1 bars: ohlc_m1)"
    if runner.c.server.settings.intrabar != "pessimistic":
        return "execution.intrabar_policy ohlc_path with SL/TP"
    return None


def _passes(runner: Runner) -> bool:
    """The strategies are called by a signal pass first (some decide in Python, bars_only)."""
    return any(not (ls.strategy.column_signals and ls.strategy.signal_column) for ls in runner.c.strategies)


def _symbol_reason(spec: Any, dep: str) -> str | None:
    """Conversions the kernel compiles: none or the symbol's own price (no other pair's rate)."""
    if dep not in (spec.currency_profit, spec.currency_base):
        return f"profit in {spec.currency_profit} converts through another pair"
    if _margin_kind(spec, dep) is None:
        return f"margin in {spec.currency_margin} converts through another pair"
    if spec.commission and spec.commission_mode != "per_lot" and spec.currency_profit != dep:
        return "a percent commission converts through another pair"
    return None


def _margin_kind(spec: Any, dep: str) -> int | None:
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
    slots = runner.host.slots
    counts = np.zeros(passed.points, np.int64)  # the points the pass called (all, or up to its limit)
    si_, sym_, dir_, vol_, sl_, tp_, sigs = [], [], [], [], [], [], []
    for n in sorted(passed.batches):
        batch = passed.batches[n]
        counts[n] = len(batch)
        for si, symbol, sig in batch:
            si_.append(si)
            sym_.append(index[symbol])
            dir_.append(1 if sig.direction == "buy" else -1)
            vol_.append(sig.volume or slots[si][0].volume)
            sl_.append(sig.sl_points or 0.0)
            tp_.append(sig.tp_points or 0.0)
            sigs.append(sig)
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


def inexpressible(runner: Runner, tl: Timeline, passed: signal_pass.Pass) -> str | None:
    """Why the kernel cannot trade a signal pass's signals (the loop then trades them), or None: it sends
    market entries that close the strategy's opposite positions first, with SL/TP in points."""
    if passed.error is not None:
        return f"a strategy error stops the run at {ts(int(tl.times[passed.failed_at or 0]))} UTC"
    stops = _no_stops(runner)
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
            spec.digits, int(spec.trade_calc_mode), conv, _margin_kind(spec, dep) or 0,
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


# ------------------------------------------------------------------------------ the compiled loop
@njit(cache=True)
def _stop_out_safe(
    pi: np.ndarray, pf: np.ndarray, n: int, si: np.ndarray, sf: np.ndarray, balance: float, leverage: float,
    hedging: bool, stop_out: float, percent: bool, lo_all: np.ndarray, hi_all: np.ndarray,
) -> bool:  # fmt: skip
    """``replay._stop_out_time``'s first bound: every position at the worst price of its history
    stays above the stop-out floor (spec 5.11). False: a stop-out may come (not compiled)."""
    if n == 0:
        return True
    mg = B.margin_total(pi, pf, n, si, sf, leverage, hedging, -1, 0, 0.0, 0.0)
    if mg <= 0.0:
        return True
    floor = stop_out / 100.0 * mg if percent else stop_out
    swaps = 0.0
    for j in range(n):
        swaps += pf[j, B.P_SWAP]
    bound = balance + swaps
    for j in range(n):
        sym = pi[j, B.P_SYM]
        is_buy = pi[j, B.P_TYPE] == 0
        worst = lo_all[sym] if is_buy else hi_all[sym]
        bound += rules.profit_raw(
            is_buy, pf[j, B.P_VOLUME], pf[j, B.P_OPEN], worst, sf[sym, B.F_CONTRACT], si[sym, B.S_CONV], 1.0
        )
    return bound > floor


@njit(cache=True)
def _swap_days(weekday: int, roll3: int) -> int:
    if weekday == roll3:
        return 3
    return 0 if weekday == 0 or weekday == 6 else 1


@njit(cache=True)
def _fill(si: np.ndarray, sf: np.ndarray, sym: int, is_buy: bool, bid: float, ask: float, slip: int) -> float:
    """``trading._slip``: the quote's side, moved ``slip`` points against the trader."""
    price = ask if is_buy else bid
    if slip == 0:
        return price
    return rules.slipped(price, slip, is_buy, sf[sym, B.F_POINT], si[sym, B.S_DIGITS])


@njit(cache=True)
def _replay_stops(
    t: int, pi: np.ndarray, pf: np.ndarray, di: np.ndarray, df: np.ndarray, oi: np.ndarray, of: np.ndarray,
    cnt: np.ndarray, balance: np.ndarray, si: np.ndarray, sf: np.ndarray, commission_on: bool,
    b_off: np.ndarray, b_time: np.ndarray, b_open: np.ndarray, b_high: np.ndarray, b_low: np.ndarray,
    b_spread: np.ndarray, ambiguous: np.ndarray, leverage: float, hedging: bool, stop_out: float,
    percent: bool, lo_all: np.ndarray, hi_all: np.ndarray,
) -> int:  # fmt: skip
    """``replay._replay`` for positions with SL/TP in bar modes on M1 (spec 5.4, 6.1): each position's
    first hit on the M1 bars closed by t (``kernels.first_trigger``, the pessimistic rule for a bar
    holding both), then the hits in time order (ties: lower ticket), each after the stop-out bound."""
    npos = cnt[B.C_POS]
    h_time, h_ticket = np.empty(npos, np.int64), np.empty(npos, np.int64)
    h_kind, h_amb, h_price = np.empty(npos, np.int64), np.empty(npos, np.bool_), np.empty(npos)
    nh = 0
    for j in range(npos):
        if pf[j, B.P_SL] == 0.0 and pf[j, B.P_TP] == 0.0:
            continue
        sym = pi[j, B.P_SYM]
        o0, o1 = b_off[sym], b_off[sym + 1]
        bt = b_time[o0:o1]
        stop = int(np.searchsorted(bt, t - MINUTE, side="right"))  # Market.complete_index
        cur = pi[j, B.P_CURSOR]
        if cur < stop and bt[cur] < pi[j, B.P_UPDATE]:
            return INSIDE_BAR  # placed inside its cursor's bar: its ticks after the fill come first
        i, kind, price, amb = kernels.first_trigger(
            b_open[o0:o1], b_high[o0:o1], b_low[o0:o1], b_spread[o0:o1], sf[sym, B.F_POINT], cur, stop,
            pi[j, B.P_TYPE] == 0, pf[j, B.P_SL], pf[j, B.P_TP], False,
        )  # fmt: skip
        if kind == kernels.NONE:
            pi[j, B.P_CURSOR] = max(cur, stop)
            if pi[j, B.P_CURSOR] == stop and stop < o1 - o0 and bt[stop] < t:
                return INSIDE_BAR  # the M1 bar forming at t: its ticks so far are not compiled
            continue
        h_time[nh], h_ticket[nh], h_kind[nh] = bt[i], pi[j, B.P_TICKET], kind
        h_amb[nh], h_price[nh] = amb, price
        nh += 1
    done = np.zeros(nh, np.bool_)
    for _ in range(nh):
        best = -1
        for q in range(nh):  # the earliest hit, then the lowest ticket (the replay's heap order)
            if done[q]:
                continue
            if (
                best < 0
                or h_time[q] < h_time[best]
                or (h_time[q] == h_time[best] and h_ticket[q] < h_ticket[best])
            ):
                best = q
        done[best] = True
        if not _stop_out_safe(
            pi, pf, cnt[B.C_POS], si, sf, balance[0], leverage, hedging, stop_out, percent, lo_all, hi_all
        ):
            return STOP_OUT
        j = 0
        while pi[j, B.P_TICKET] != h_ticket[best]:
            j += 1
        sym = pi[j, B.P_SYM]
        ambiguous[0] += h_amb[best]
        price = rules.round_to(h_price[best], si[sym, B.S_DIGITS])
        is_sl = h_kind[best] == kernels.SL
        reason = B.REASON_SL if is_sl else B.REASON_TP
        level = pf[j, B.P_SL] if is_sl else pf[j, B.P_TP]
        when = h_time[best]
        vol = pf[j, B.P_VOLUME]
        o = B.add_order(
            oi, of, cnt, sym, 1 if pi[j, B.P_TYPE] == 0 else 0, vol, price, when, pi[j, B.P_MAGIC],
            pi[j, B.P_STRAT], pi[j, B.P_SID], reason, level,
        )  # fmt: skip
        oi[o, B.O_POSITION] = pi[j, B.P_TICKET]
        B.close_part(
            pi, pf, di, df, cnt, balance, si, sf, commission_on, j, vol, price, when, oi[o, B.O_TICKET], 0,
            reason, level,
        )  # fmt: skip
    return DONE


@njit(cache=True)
def _equity(
    n: int, pi: np.ndarray, pf: np.ndarray, cnt: np.ndarray, si: np.ndarray, sf: np.ndarray,
    balance: np.ndarray, qbid: np.ndarray, qask: np.ndarray, qhas: np.ndarray,
) -> float:  # fmt: skip
    """The account's equity at point ``n`` (``money.equity``); NaN when an open position has no price."""
    npos = cnt[B.C_POS]
    if npos == 0:
        return float(balance[0])
    for j in range(npos):
        if not qhas[n, pi[j, B.P_SYM]]:
            return np.nan
    return float(rules.round_to(balance[0] + B.floating(pi, pf, npos, si, sf, qbid[n], qask[n]), 2))


@njit(cache=True)
def _observe(bk_i: np.ndarray, bk_f: np.ndarray, equity: float, server_time: int) -> None:
    """``CircuitBreakerRule.observe`` on the breaker's state arrays (day, latched / day start, peak,
    the latch's drawdown, peak and equity, the two limits)."""
    day, start, peak, dd = breaker.observe(
        bk_i[0], bk_f[B_DAY_START], bk_f[B_PEAK], bk_i[1] != 0, equity, server_time, bk_f[B_MAX_DD_PCT]
    )
    bk_i[0], bk_f[B_DAY_START], bk_f[B_PEAK] = day, start, peak
    if dd != breaker.OFF:
        bk_i[1] = 1
        bk_f[B_LATCH], bk_f[B_LATCH + 1], bk_f[B_LATCH + 2] = dd, peak, equity


@njit(cache=True)
def _stops(
    k: int, n: int, sym: int, is_buy: bool, ev_sl: np.ndarray, ev_tp: np.ndarray, si: np.ndarray,
    sf: np.ndarray, qbid: np.ndarray, qask: np.ndarray,
) -> tuple[float, float, float]:  # fmt: skip
    """``Router._stops``: (SL, TP, the quote they are measured from) of signal ``k``; 0.0 = none."""
    ref = qask[n, sym] if is_buy else qbid[n, sym]
    sl, tp = 0.0, 0.0
    sign = 1.0 if is_buy else -1.0
    point, digits = sf[sym, B.F_POINT], si[sym, B.S_DIGITS]
    if ev_sl[k] != 0.0:
        sl = rules.round_to(ref - sign * ev_sl[k] * point, digits)
    if ev_tp[k] != 0.0:
        tp = rules.round_to(ref + sign * ev_tp[k] * point, digits)
    return sl, tp, ref


@njit(cache=True)
def _sl_distance(
    k: int, n: int, sym: int, ev_dir: np.ndarray, ev_sl: np.ndarray, si: np.ndarray, sf: np.ndarray,
    qbid: np.ndarray, qask: np.ndarray,
) -> tuple[float, float]:  # fmt: skip
    """(|entry - SL| of signal ``k``, its entry quote): ``Router.process``'s ``sl_distance`` (0.0 without
    an SL), what the sizing and the total risk read."""
    sl, _, ref = _stops(k, n, sym, ev_dir[k] > 0, ev_sl, ev_sl, si, sf, qbid, qask)
    return (abs(ref - sl) if sl != 0.0 and ref != 0.0 else 0.0), ref


@njit(cache=True)
def _risk_size(
    k: int, n: int, sym: int, equity: float, risk_pct: float, ev_dir: np.ndarray, ev_sl: np.ndarray,
    ev_vol: np.ndarray, ev_mult: np.ndarray, si: np.ndarray, sf: np.ndarray, qbid: np.ndarray,
    qask: np.ndarray, e_size: np.ndarray,
) -> int:  # fmt: skip
    """``risk.sizing.size`` in mode risk for entry ``k`` at ``equity``: sets ``ev_vol[k]`` and the numbers
    behind it (``e_size[k]``); returns 0, or why it refused the entry (a key of _SIZING)."""
    distance, _ = _sl_distance(k, n, sym, ev_dir, ev_sl, si, sf, qbid, qask)
    if distance <= 0.0:
        return 1
    point = sf[sym, B.F_POINT]  # trade_tick_size
    value = rules.tick_value(qbid[n, sym], point, sf[sym, B.F_CONTRACT], si[sym, B.S_CONV], 1.0)
    per_lot = lots.money_per_lot(distance, point, value)
    money = lots.risk_money(equity, risk_pct)
    e_size[k, Z_MONEY], e_size[k, Z_DISTANCE] = money, distance
    e_size[k, Z_TICK_VALUE], e_size[k, Z_PER_LOT] = value, per_lot
    if per_lot <= 0.0:
        return 2
    raw, volume = lots.sized(
        money / per_lot, ev_mult[k], sf[sym, B.F_VMIN], sf[sym, B.F_VMAX], sf[sym, B.F_VSTEP]
    )
    e_size[k, Z_RAW] = raw
    if volume <= 0.0:
        return 3
    ev_vol[k] = volume
    return 0


@njit(cache=True)
def _loss_per_lot(
    n: int, sym: int, distance: float, sf: np.ndarray, si: np.ndarray, qbid: np.ndarray
) -> float:
    """``Mt5View.money_per_lot`` at point ``n``: the tick value at the symbol's bid."""
    point = sf[sym, B.F_POINT]
    value = rules.tick_value(qbid[n, sym], point, sf[sym, B.F_CONTRACT], si[sym, B.S_CONV], 1.0)
    return lots.money_per_lot(distance, point, value)


@njit(cache=True)
def _total_risk(
    k: int, n: int, e0: int, equity: float, pct: float, resize: bool, approved: np.ndarray, pi: np.ndarray,
    pf: np.ndarray, cnt: np.ndarray, ev_sym: np.ndarray, ev_dir: np.ndarray, ev_sl: np.ndarray,
    ev_vol: np.ndarray, si: np.ndarray, sf: np.ndarray, qbid: np.ndarray, qask: np.ndarray,
    e_risk: np.ndarray,
) -> int:  # fmt: skip
    """``TotalRiskRule.check`` of entry ``k`` (``risk.rules.open_risk`` over the book in its order, then
    the entries approved before it in this review at their entry price and SL): 0, RESIZED (``ev_vol[k]``
    lowered), TOTAL_RISK or TOTAL_RISK_SMALL; the numbers in ``e_risk[k]``; 11: no stop loss."""
    sym = ev_sym[k]
    distance, _ = _sl_distance(k, n, sym, ev_dir, ev_sl, si, sf, qbid, qask)
    if distance <= 0.0:
        return NO_STOP_RISK
    held, unprotected = 0.0, 0
    for j in range(cnt[B.C_POS]):
        if pf[j, B.P_SL] <= 0:
            unprotected += 1
            continue
        s, buy = pi[j, B.P_SYM], pi[j, B.P_TYPE] == 0
        current = qbid[n, s] if buy else qask[n, s]
        d = 1.0 if buy else -1.0
        held += pf[j, B.P_VOLUME] * _loss_per_lot(n, s, max(0.0, d * (current - pf[j, B.P_SL])), sf, si, qbid)
    for q in range(e0, k):
        if approved[q]:
            s, d = ev_sym[q], 1.0 if ev_dir[q] > 0 else -1.0
            dq, price = _sl_distance(q, n, s, ev_dir, ev_sl, si, sf, qbid, qask)
            stop = price - d * dq if dq else 0.0
            if stop <= 0:
                unprotected += 1
                continue
            held += ev_vol[q] * _loss_per_lot(n, s, max(0.0, d * (price - stop)), sf, si, qbid)
    per_lot = _loss_per_lot(n, sym, distance, sf, si, qbid)
    limit = equity * pct / 100
    value = held + ev_vol[k] * per_lot
    e_risk[k, R_LIMIT], e_risk[k, R_VALUE], e_risk[k, R_HELD] = limit, value, held
    e_risk[k, R_NEW], e_risk[k, R_UNPROTECTED] = ev_vol[k] * per_lot, unprotected
    if value <= limit + 1e-9:
        return 0
    if not resize:
        return TOTAL_RISK
    fit = (limit - held) / per_lot
    e_risk[k, R_FIT], e_risk[k, R_BEFORE] = fit, ev_vol[k]
    v = 0.0
    if fit > 0:
        v = lots.round_volume(min(fit, ev_vol[k]), sf[sym, B.F_VMIN], sf[sym, B.F_VMAX], sf[sym, B.F_VSTEP])
    if v <= 0:
        return TOTAL_RISK_SMALL
    ev_vol[k] = v
    return RESIZED


@njit(cache=True)
def _passed(code: int) -> bool:
    """The entry is approved so far (as sent, or cut by a rule: a code of _APPROVED)."""
    return code == 0 or code in (RESIZED, CONFLICT_RESIZED, CURRENCY_RESIZED, CORRELATION_RESIZED)


@njit(cache=True)
def _fitted(fit: float, volume: float, resize: bool, sym: int, sf: np.ndarray) -> float:
    """``risk.rules._fit``'s volume: -1.0 under the reject policy, else the largest valid volume <= ``fit``
    (0.0: none)."""
    if not resize:
        return -1.0
    if fit <= 0:
        return 0.0
    return lots.round_volume(min(fit, volume), sf[sym, B.F_VMIN], sf[sym, B.F_VMAX], sf[sym, B.F_VSTEP])


@njit(cache=True)
def _notional(n: int, sym: int, price: float, sf: np.ndarray, si: np.ndarray, qbid: np.ndarray) -> float:
    """``rules._notional_per_lot`` at point ``n``: the tick value at the symbol's bid (Mt5View's)."""
    point = sf[sym, B.F_POINT]
    value = rules.tick_value(qbid[n, sym], point, sf[sym, B.F_CONTRACT], si[sym, B.S_CONV], 1.0)
    return lots.notional_per_lot(price, point, value)


@njit(cache=True)
def _currency(
    k: int, n: int, e0: int, resize: bool, approved: np.ndarray, pi: np.ndarray, pf: np.ndarray,
    cnt: np.ndarray, ev_sym: np.ndarray, ev_dir: np.ndarray, ev_vol: np.ndarray, si: np.ndarray,
    sf: np.ndarray, qbid: np.ndarray, qask: np.ndarray, ccy_of: np.ndarray, ccy_limit: np.ndarray,
    e_ccy: np.ndarray,
) -> int:  # fmt: skip
    """``CurrencyExposureRule.check`` of entry ``k`` (``risk.rules.currency_exposure`` over the book in its
    order at the positions' current prices, then the entries approved before it in this review at their
    entry price): 0, CURRENCY, CURRENCY_SMALL or CURRENCY_RESIZED (``ev_vol[k]`` lowered); the numbers in
    ``e_ccy[k]``. ``ccy_of``: each symbol's (base, profit) currency codes; ``ccy_limit``: each currency's
    limit (NaN: none)."""
    held = np.zeros(len(ccy_limit))
    for j in range(cnt[B.C_POS]):
        s, buy = pi[j, B.P_SYM], pi[j, B.P_TYPE] == 0
        d = 1.0 if buy else -1.0
        v = d * pf[j, B.P_VOLUME] * _notional(n, s, qbid[n, s] if buy else qask[n, s], sf, si, qbid)
        held[ccy_of[s, 0]] += v
        held[ccy_of[s, 1]] -= v
    for q in range(e0, k):
        if approved[q]:
            s, buy = ev_sym[q], ev_dir[q] > 0
            d = 1.0 if buy else -1.0
            v = d * ev_vol[q] * _notional(n, s, qask[n, s] if buy else qbid[n, s], sf, si, qbid)
            held[ccy_of[s, 0]] += v
            held[ccy_of[s, 1]] -= v
    sym, buy = ev_sym[k], ev_dir[k] > 0
    per_lot = (1.0 if buy else -1.0) * _notional(n, sym, qask[n, sym] if buy else qbid[n, sym], sf, si, qbid)
    volume = ev_vol[k]
    worst, w_fit, w_after = -1, 0.0, 0.0
    for side in range(2):
        ccy = ccy_of[sym, side]
        delta = per_lot if side == 0 else -per_lot
        limit = ccy_limit[ccy]
        if np.isnan(limit) or delta == 0:
            continue
        after, fit = lots.exposure_fit(held[ccy], delta, volume, limit)
        if np.isnan(fit):
            continue
        if worst < 0 or fit < w_fit:
            worst, w_fit, w_after = side, fit, after
    if worst < 0:
        return 0
    ccy = ccy_of[sym, worst]
    e_ccy[k, X_CCY], e_ccy[k, X_BEFORE], e_ccy[k, X_FIT] = ccy, held[ccy], w_fit
    e_ccy[k, X_AFTER], e_ccy[k, X_VOLUME] = w_after, volume
    v = _fitted(w_fit, volume, resize, sym, sf)
    if v < 0:
        return CURRENCY
    if v == 0:
        return CURRENCY_SMALL
    ev_vol[k] = v
    return CURRENCY_RESIZED


@njit(cache=True)
def _correlation(
    k: int, e0: int, limit: float, resize: bool, approved: np.ndarray, pi: np.ndarray, pf: np.ndarray,
    cnt: np.ndarray, ev_sym: np.ndarray, ev_dir: np.ndarray, ev_vol: np.ndarray, rho: np.ndarray,
    sf: np.ndarray, e_corr: np.ndarray,
) -> int:  # fmt: skip
    """``CorrelationRule.check`` of entry ``k``: the net volume per symbol of the book and the entries
    approved before it, the highest sign-adjusted correlation with a symbol held (``rho[k]``: the rule's
    own correlations at the review, engine/prereview.py; symbols in name order, as the rule sorts them):
    0, CORRELATION, CORRELATION_SMALL or CORRELATION_RESIZED; the numbers in ``e_corr[k]``."""
    ns = rho.shape[1]
    net = np.zeros(ns)
    for j in range(cnt[B.C_POS]):
        net[pi[j, B.P_SYM]] += (1.0 if pi[j, B.P_TYPE] == 0 else -1.0) * pf[j, B.P_VOLUME]
    for q in range(e0, k):
        if approved[q]:
            net[ev_sym[q]] += (1.0 if ev_dir[q] > 0 else -1.0) * ev_vol[q]
    d = 1.0 if ev_dir[k] > 0 else -1.0
    worst, w_adj = -1, 0.0
    for s in range(ns):
        if abs(net[s]) < 1e-12 or np.isnan(rho[k, s]):
            continue
        adj = rho[k, s] * d * (1.0 if net[s] > 0 else -1.0)
        if worst < 0 or adj > w_adj:
            worst, w_adj = s, adj
    if worst < 0 or w_adj <= limit:
        return 0
    sym, volume = ev_sym[k], ev_vol[k]
    fit = lots.correlation_fit(volume, w_adj, limit)
    e_corr[k, K_SYM], e_corr[k, K_ADJ], e_corr[k, K_RHO] = worst, w_adj, rho[k, worst]
    e_corr[k, K_FIT], e_corr[k, K_VOLUME] = fit, volume
    v = _fitted(fit, volume, resize, sym, sf)
    if v < 0:
        return CORRELATION
    if v == 0:
        return CORRELATION_SMALL
    ev_vol[k] = v
    return CORRELATION_RESIZED


@njit(cache=True)
def run_points(
    times: np.ndarray, starts: np.ndarray, ev_si: np.ndarray, ev_sym: np.ndarray, ev_dir: np.ndarray,
    ev_vol: np.ndarray, sample: np.ndarray, qbid: np.ndarray, qask: np.ndarray, qhas: np.ndarray,
    qfresh: np.ndarray, si: np.ndarray, sf: np.ndarray, r_times: np.ndarray, r_days: np.ndarray,
    r_rate: np.ndarray, r_bid: np.ndarray, lo_all: np.ndarray, hi_all: np.ndarray, first_rollover: int,
    sid_base: int, leverage: float, hedging: bool, commission_on: bool, slip: int, stop_out: float,
    percent: bool,
    max_pos: int, max_sym: int, max_strat: int, magic_base: int,
    pi: np.ndarray, pf: np.ndarray, di: np.ndarray, df: np.ndarray, oi: np.ndarray, of: np.ndarray,
    cnt: np.ndarray, balance: np.ndarray,
    e_status: np.ndarray, e_value: np.ndarray, e_order: np.ndarray, e_position: np.ndarray,
    q_equity: np.ndarray, q_margin: np.ndarray, q_balance: np.ndarray, q_open: np.ndarray,
    ev_sl: np.ndarray, ev_tp: np.ndarray, stops_level: np.ndarray, b_off: np.ndarray, b_time: np.ndarray,
    b_open: np.ndarray, b_high: np.ndarray, b_low: np.ndarray, b_spread: np.ndarray,
    e_sl: np.ndarray, e_tp: np.ndarray, ambiguous: np.ndarray, ev_pre: np.ndarray, server_s: np.ndarray,
    bk_i: np.ndarray, bk_f: np.ndarray, e_brk: np.ndarray, risk_pct: float, ev_mult: np.ndarray,
    e_size: np.ndarray, total_risk_pct: float, risk_resize: bool, e_risk: np.ndarray, free_floor: np.ndarray,
    e_free: np.ndarray, ev_conflict: np.ndarray, ccy_resize: bool, ccy_of: np.ndarray, ccy_limit: np.ndarray,
    e_ccy: np.ndarray, corr_limit: float, corr_resize: bool, rho: np.ndarray, e_corr: np.ndarray,
) -> tuple[int, int, int]:  # fmt: skip
    """Every decision point; returns (DONE or why it stopped, points done, next rollover index)."""
    nsym = si.shape[0]
    ri = first_rollover
    n_r = len(r_times)
    approved = np.zeros(len(ev_si), np.bool_)
    watch = len(server_s) > 0  # the circuit breakers sample equity at every point
    work_f, work_i = np.empty((2, nsym)), np.empty((2, nsym), np.int64)  # B.margins' (allocated once)
    for n in range(len(times)):
        if starts[n] == starts[n + 1] and not sample[n] and not watch:
            # no signal, no record: the next point replays (SL/TP, swaps, the stop-out bound) up to its time
            continue
        t = times[n]
        # advance(t): swap rollovers up to t, each after the SL/TP hits and stop-out check before it
        while ri < n_r and r_times[ri] <= t:
            code = _replay_stops(
                r_times[ri], pi, pf, di, df, oi, of, cnt, balance, si, sf, commission_on, b_off, b_time,
                b_open, b_high, b_low, b_spread, ambiguous, leverage, hedging, stop_out, percent, lo_all,
                hi_all,
            )  # fmt: skip
            if code != DONE:
                return code, n, ri
            if not _stop_out_safe(
                pi, pf, cnt[B.C_POS], si, sf, balance[0], leverage, hedging, stop_out, percent, lo_all, hi_all
            ):
                return STOP_OUT, n, ri
            weekday = r_days[ri]
            for j in range(cnt[B.C_POS]):
                sym = pi[j, B.P_SYM]
                days = _swap_days(weekday, si[sym, B.S_ROLL3])
                if days == 0:
                    continue
                is_buy = pi[j, B.P_TYPE] == 0
                rate_ = sf[sym, B.F_SWAP_LONG] if is_buy else sf[sym, B.F_SWAP_SHORT]
                mode = si[sym, B.S_SWAP_MODE]
                charge = 0.0
                if mode != rules.SWAP_DISABLED and rate_ != 0.0:
                    price = r_bid[sym, ri] if mode == rules.SWAP_INTEREST_CURRENT else pf[j, B.P_OPEN]
                    amount = rules.swap_amount(
                        mode, rate_, sf[sym, B.F_POINT], sf[sym, B.F_CONTRACT], pf[j, B.P_VOLUME], price
                    )
                    charge = rules.round_to(amount * r_rate[sym, ri], 2)
                pf[j, B.P_SWAP] = rules.round_to(pf[j, B.P_SWAP] + days * charge, 2)
            ri += 1
        code = _replay_stops(
            t, pi, pf, di, df, oi, of, cnt, balance, si, sf, commission_on, b_off, b_time, b_open, b_high,
            b_low, b_spread, ambiguous, leverage, hedging, stop_out, percent, lo_all, hi_all,
        )  # fmt: skip
        if code != DONE:
            return code, n, ri
        if not _stop_out_safe(
            pi, pf, cnt[B.C_POS], si, sf, balance[0], leverage, hedging, stop_out, percent, lo_all, hi_all
        ):
            return STOP_OUT, n, ri
        if len(server_s):  # the circuit breakers' equity sample of the point (Router.observe)
            equity = _equity(n, pi, pf, cnt, si, sf, balance, qbid, qask, qhas)
            if np.isnan(equity):
                return NO_PRICE, n, ri
            _observe(bk_i, bk_f, equity, server_s[n])
        e0, e1 = starts[n], starts[n + 1]
        # exits first: each signal closes its strategy's opposite positions on its symbol
        for k in range(e0, e1):
            sym, strat, sid = ev_sym[k], ev_si[k], sid_base + k + 1
            opposite = 1 if ev_dir[k] > 0 else 0
            j = 0
            while j < cnt[B.C_POS]:
                if pi[j, B.P_SYM] != sym or pi[j, B.P_STRAT] != strat or pi[j, B.P_TYPE] != opposite:
                    j += 1
                    continue
                if not qfresh[n, sym]:
                    return NO_QUOTE, n, ri
                vol = pf[j, B.P_VOLUME]
                if not rules.volume_ok(vol, sf[sym, B.F_VMIN], sf[sym, B.F_VMAX], sf[sym, B.F_VSTEP]):
                    return BAD_VOLUME, n, ri
                is_buy = opposite == 1  # closing a sell buys
                price = _fill(si, sf, sym, is_buy, qbid[n, sym], qask[n, sym], slip)
                o = B.add_order(
                    oi, of, cnt, sym, 0 if is_buy else 1, vol, price, t, magic_base + strat, strat, sid
                )
                B.execute(
                    pi, pf, di, df, oi, cnt, balance, si, sf, commission_on, o, is_buy, vol, price, t, j
                )
        # one review of the entries: the count rules against the book plus the entries approved before
        n_pos = cnt[B.C_POS]
        breakers = len(server_s) > 0 and e1 > e0
        equity = 0.0
        if e1 > e0 and (
            breakers
            or risk_pct != breaker.OFF
            or total_risk_pct != breaker.OFF
            or free_floor[0] != breaker.OFF
        ):
            # the review's equity, after the exits
            equity = _equity(n, pi, pf, cnt, si, sf, balance, qbid, qask, qhas)
            if np.isnan(equity):
                return NO_PRICE, n, ri
        if breakers:  # Coordinator.review samples it for the breakers
            _observe(bk_i, bk_f, equity, server_s[n])
        batch_margin = 0.0  # Portfolio.batch_margin: the margin of the entries approved before in the review
        for k in range(e0, e1):
            sym, strat = ev_sym[k], ev_si[k]
            if not qhas[n, sym]:  # the review's no_quote (a market without a quote yet)
                return NO_QUOTE, n, ri
            if ev_pre[k]:
                e_status[k] = PRE_REJECTED
                continue
            if breakers:  # the gates' last: CircuitBreakerRule.at
                loss = breaker.daily_loss(bk_f[B_DAY_START], equity, bk_f[B_DAILY_PCT])
                if loss != breaker.OFF:
                    e_status[k] = DAILY_LOSS
                    e_brk[k, 0], e_brk[k, 1], e_brk[k, 2] = loss, bk_f[B_DAY_START], equity
                    continue
                if bk_i[1]:
                    e_status[k] = MAX_DRAWDOWN
                    continue
            if ev_conflict[k] == prereview.CONFLICT_REJECTED:  # after the gates and sizing (prereview)
                e_status[k] = CONFLICT
                continue
            if risk_pct != breaker.OFF:  # risk-% sizing (risk/sizing.py's size, mode risk)
                refused = _risk_size(
                    k, n, sym, equity, risk_pct, ev_dir, ev_sl, ev_vol, ev_mult, si, sf, qbid, qask, e_size
                )
                if refused:
                    e_status[k], e_value[k] = SIZING, refused
                    continue
            total, on_sym, of_strat = n_pos, 0, 0
            for j in range(n_pos):
                on_sym += pi[j, B.P_SYM] == sym
                of_strat += pi[j, B.P_STRAT] == strat
            for q in range(e0, k):
                if approved[q]:
                    total += 1
                    on_sym += ev_sym[q] == sym
                    of_strat += ev_si[q] == strat
            if total >= max_pos:
                e_status[k], e_value[k] = 1, total
            elif on_sym >= max_sym:
                e_status[k], e_value[k] = 2, on_sym
            elif max_strat > 0 and of_strat >= max_strat:
                e_status[k], e_value[k] = 3, of_strat
            else:
                # the money rules in the coordinator's order; code: the last cut, or the rejection
                code = CONFLICT_RESIZED if ev_conflict[k] == prereview.CONFLICT_RESIZED else 0
                if total_risk_pct != breaker.OFF:  # TotalRiskRule: every open SL and this one hit
                    cut = _total_risk(
                        k, n, e0, equity, total_risk_pct, risk_resize, approved, pi, pf, cnt, ev_sym, ev_dir,
                        ev_sl, ev_vol, si, sf, qbid, qask, e_risk,
                    )  # fmt: skip
                    code = cut if cut else code
                if _passed(code) and len(ccy_limit):  # CurrencyExposureRule
                    cut = _currency(
                        k, n, e0, ccy_resize, approved, pi, pf, cnt, ev_sym, ev_dir, ev_vol, si, sf, qbid,
                        qask, ccy_of, ccy_limit, e_ccy,
                    )  # fmt: skip
                    code = cut if cut else code
                if _passed(code) and rho.shape[1]:  # CorrelationRule
                    cut = _correlation(
                        k, e0, corr_limit, corr_resize, approved, pi, pf, cnt, ev_sym, ev_dir, ev_vol, rho,
                        sf, e_corr,
                    )  # fmt: skip
                    code = cut if cut else code
                if _passed(code) and free_floor[0] != breaker.OFF:  # FreeMarginRule (order_check)
                    is_buy = ev_dir[k] > 0
                    price = qask[n, sym] if is_buy else qbid[n, sym]
                    if not rules.volume_ok(
                        ev_vol[k], sf[sym, B.F_VMIN], sf[sym, B.F_VMAX], sf[sym, B.F_VSTEP]
                    ):
                        return BAD_VOLUME, n, ri  # order_check's "Invalid volume"
                    floor = max(free_floor[1], equity * free_floor[0] / 100)
                    after = B.margins(
                        pi, pf, cnt[B.C_POS], si, sf, leverage, hedging, sym, 0 if is_buy else 1, ev_vol[k],
                        price, work_f, work_i,
                    )[1]  # fmt: skip
                    free = rules.round_to(equity - after, 2) - batch_margin
                    if free < floor - 1e-9:
                        e_free[k, 0], e_free[k, 1], e_free[k, 2] = floor, free, after
                        code = FREE_MARGIN
                    else:
                        batch_margin += rules.round_to(
                            B.margin_one(si, sf, leverage, sym, ev_vol[k], price), 2
                        )
                e_status[k] = code
                approved[k] = _passed(code)
        # execution of the approved entries, in order
        for k in range(e0, e1):
            if not approved[k]:
                continue
            sym, strat, sid, vol = ev_sym[k], ev_si[k], sid_base + k + 1, ev_vol[k]
            is_buy = ev_dir[k] > 0
            if not qfresh[n, sym]:
                return NO_QUOTE, n, ri
            if not rules.volume_ok(vol, sf[sym, B.F_VMIN], sf[sym, B.F_VMAX], sf[sym, B.F_VSTEP]):
                return BAD_VOLUME, n, ri
            price = _fill(si, sf, sym, is_buy, qbid[n, sym], qask[n, sym], slip)
            sl, tp, _ = _stops(k, n, sym, is_buy, ev_sl, ev_tp, si, sf, qbid, qask)
            o0, o1 = b_off[sym], b_off[sym + 1]
            cursor = np.searchsorted(b_time[o0:o1], t)  # Market.entry_index
            inside = cursor > 0 and (cursor == o1 - o0 or b_time[o0 + cursor] > t)
            if inside and t - b_time[o0 + cursor - 1] < MINUTE:
                if sl != 0.0 or tp != 0.0:
                    return INSIDE_BAR, n, ri
                cursor -= 1
            target = -1
            if not hedging:
                for j in range(cnt[B.C_POS]):
                    if pi[j, B.P_SYM] == sym:
                        target = j
                        break
            closing = target >= 0 and (pi[target, B.P_TYPE] == 0) != is_buy
            ref = qbid[n, sym] if is_buy else qask[n, sym]
            if not closing and not rules.stops_ok(is_buy, ref, sl, tp, stops_level[sym]):
                return BAD_STOPS, n, ri
            if not closing or vol > pf[target, B.P_VOLUME] + 1e-9:
                # spec 5.9 / 3.11: refused when the trade raises the margin beyond the equity
                npos = cnt[B.C_POS]
                now, after = B.margins(
                    pi,
                    pf,
                    npos,
                    si,
                    sf,
                    leverage,
                    hedging,
                    sym,
                    0 if is_buy else 1,
                    vol,
                    price,
                    work_f,
                    work_i,
                )
                if after > now:
                    for j in range(npos):
                        if not qhas[n, pi[j, B.P_SYM]]:
                            return NO_PRICE, n, ri
                    fl = B.floating(pi, pf, npos, si, sf, qbid[n], qask[n])
                    if rules.round_to(balance[0] + fl, 2) - after < 0.0:
                        return NO_MONEY, n, ri
            o = B.add_order(
                oi, of, cnt, sym, 0 if is_buy else 1, vol, price, t, magic_base + strat, strat, sid
            )
            B.execute(
                pi, pf, di, df, oi, cnt, balance, si, sf, commission_on, o, is_buy, vol, price, t, target,
                sl, tp, cursor,
            )  # fmt: skip
            e_order[k], e_sl[k], e_tp[k] = oi[o, B.O_TICKET], sl, tp
            e_position[k] = di[cnt[B.C_DEALS] - 1, B.D_POSITION]
        if sample[n]:
            npos = cnt[B.C_POS]
            q_balance[n], q_open[n] = balance[0], npos
            q_equity[n] = _equity(n, pi, pf, cnt, si, sf, balance, qbid, qask, qhas)
            if np.isnan(q_equity[n]):
                return NO_PRICE, n, ri
            q_margin[n] = (
                B.margins(pi, pf, npos, si, sf, leverage, hedging, -1, 0, 0.0, 0.0, work_f, work_i)[0]
                if npos
                else 0.0
            )
    _ = nsym
    return DONE, len(times), ri


# ------------------------------------------------------------------------------ the run, and after
def drive(runner: Runner, tl: Timeline, progress: Callable[[int, int], None] | None = None) -> int:
    """Driver (b) when every strategy and rule allows it: the points of ``tl`` run inside the kernel.
    Returns the points done (0: the Python loop runs them; the funnel says why)."""
    reason = why_not(runner)
    if reason is None:
        try:
            done = run(runner, tl, progress)
        except KernelDeclined as e:
            reason = str(e)
        else:
            runner.funnel.driver = "kernel"
            return done
    if runner.driver == "kernel":
        raise ConfigError(f"driver 'kernel' asked for, but the run cannot use it: {reason}")
    runner.funnel.driver_reason = reason
    return 0


def run(runner: Runner, tl: Timeline, progress: Callable[[int, int], None] | None = None) -> int:
    """Run every point of ``tl`` in the kernel, then hand its book and rows to the Python side.
    Returns the number of points run; raises KernelDeclined (nothing changed) on a case not compiled."""
    c = runner.c
    st = c.server.settings
    state = c.server.state
    t0 = time.perf_counter()
    passed = signal_pass.run(runner, tl, progress) if _passes(runner) else None  # (its progress shown)
    tp = time.perf_counter()
    if passed is not None:
        why = inexpressible(runner, tl, passed)
        if why is not None:
            runner.host.recorded = passed.replay(tl, runner.host.decide)  # the loop trades its signals
            raise KernelDeclined(why)
        if passed.points < len(tl):  # the pass stopped at its limit: the loop goes on from that point
            at = ts(int(tl.times[passed.points]))
            held = f"{signal_pass.LIMIT:,}"
            runner.funnel.driver_reason = (
                f"the signal pass holds {held} signals at most: the loop ran from {at} UTC"
            )
    x = build_inputs(runner, tl, passed)
    t1 = time.perf_counter()
    n_ev, n_pts = len(x.ev_si), len(x.times)
    cc = c.cfg.coordinator
    book = _column_major(
        B.new_book(
            cc.max_positions + n_ev + 1, 2 * n_ev + 1, state.balance, state.next_ticket, state.next_deal
        )
    )
    e_status, e_value = np.zeros(n_ev, np.int64), np.zeros(n_ev, np.int64)
    e_order, e_position = np.zeros(n_ev, np.int64), np.zeros(n_ev, np.int64)
    q_equity, q_margin, q_balance = np.zeros(n_pts), np.zeros(n_pts), np.zeros(n_pts)
    q_open = np.zeros(n_pts, np.int64)
    e_sl, e_tp, ambiguous = np.zeros(n_ev), np.zeros(n_ev), np.zeros(1, np.int64)
    slip = st.slippage_points if st.slippage_model == "fixed" else 0
    sid_base = runner.journal.signal_seq
    point_of = np.repeat(np.arange(n_pts), np.diff(x.starts))
    pre = prereview.prereview(
        runner, x.times[point_of], x.ev_si, x.ev_sym, x.symbols, x.ev_vol, x.ev_dir, x.signals
    )
    x.ev_vol = pre.volume
    server_s, bk_i, bk_f = _breaker_state(runner, x.times)
    e_brk = np.zeros((n_ev if len(server_s) else 0, 3))
    risky = cc.sizing is not None and cc.sizing.mode == "risk"
    risk_pct = cc.sizing.risk_pct if cc.sizing is not None and risky else breaker.OFF
    e_size = np.zeros((n_ev if risky else 0, 5))
    total_risk = breaker.OFF if cc.max_total_risk_pct is None else cc.max_total_risk_pct
    e_risk = np.zeros((n_ev if cc.max_total_risk_pct is not None else 0, 7))
    free_on = cc.min_free_margin_pct is not None or cc.min_free_margin is not None
    # FreeMarginRule's floor: max(min_free_margin, equity x min_free_margin_pct / 100); OFF: no rule
    free_floor = (
        np.array([cc.min_free_margin_pct or 0.0, cc.min_free_margin or 0.0])
        if free_on
        else np.array([breaker.OFF, 0.0])
    )
    e_free = np.zeros((n_ev if free_on else 0, 3))
    ccy_names, ccy_of, ccy_limit = _currencies(runner, x.symbols)
    e_ccy = np.zeros((n_ev if len(ccy_limit) else 0, 5))
    e_corr = np.zeros((len(pre.rho), 5))
    code, done, rollover = run_points(
        x.times, x.starts, x.ev_si, x.ev_sym, x.ev_dir, x.ev_vol, x.sample, x.bid, x.ask, x.has, x.fresh,
        x.si, x.sf, x.r_times, x.r_days, x.r_rate, x.r_bid, x.lo_all, x.hi_all, state.next_rollover, sid_base,
        float(st.leverage), st.hedging, st.commission_enabled, slip, float(st.stop_out),
        st.stop_out_mode == "percent", cc.max_positions, cc.max_positions_per_symbol,
        cc.max_positions_per_strategy or 0, magic_of(0), book.pi, book.pf, book.di, book.df, book.oi, book.of,
        book.cnt, book.balance, e_status, e_value, e_order, e_position, q_equity, q_margin, q_balance, q_open,
        x.ev_sl, x.ev_tp, x.stops_level, x.b_off, x.b_time, x.b_open, x.b_high, x.b_low, x.b_spread,
        e_sl, e_tp, ambiguous, pre.rejected, server_s, bk_i, bk_f, e_brk, risk_pct, pre.multiplier, e_size,
        total_risk, cc.total_risk_policy == "resize", e_risk, free_floor, e_free, pre.conflict,
        cc.exposure_policy == "resize", ccy_of, ccy_limit, e_ccy, cc.max_correlation or 0.0,
        cc.correlation_policy == "resize", pre.rho, e_corr,
    )  # fmt: skip
    t2 = time.perf_counter()
    if code != DONE:
        if passed is not None:
            runner.host.recorded = passed.replay(tl, runner.host.decide)  # from the first point
        raise KernelDeclined(f"{_STOPPED[code]} at {ts(int(x.times[done]))} UTC")
    first_deal = len(state.deals)
    deal_fields = _materialize(runner, x, book, rollover)
    if len(server_s):  # the coordinator's breaker goes on from the kernel's (a checkpoint keeps it)
        brk = c.coordinator.breaker
        brk.day, brk.day_start_equity, brk.peak = int(bk_i[0]), float(bk_f[B_DAY_START]), float(bk_f[B_PEAK])
        if bk_i[1] and brk.latched is None:
            brk.latch(*bk_f[B_LATCH : B_LATCH + 3].tolist())
    state.ambiguous_bars += int(ambiguous[0])
    _journal(
        runner,
        x,
        e_status,
        e_value,
        e_order,
        e_position,
        (q_balance, q_equity, q_margin, q_open),
        (e_sl, e_tp),
        (book, first_deal, deal_fields),
        pre,
        e_brk,
        e_size,
        e_risk,
        e_free,
        (ccy_names, e_ccy, e_corr),
    )
    # Where the time went (bench/sma_cross.py reports it): inputs, the compiled loop, records and structures.
    spent = {"inputs": t1 - tp, "loop": t2 - t1, "records": time.perf_counter() - t2}
    if passed is not None:
        spent["signal_pass"] = tp - t0
    runner.funnel.kernel_seconds = {k: round(v, 4) for k, v in spent.items()}
    if n_pts:
        t = int(x.times[-1])  # the timeline's last point (always kept)
        state.now = max(state.now, t)
        runner.ctx.now = t
        c.terminal.set_time(t)
    return x.points


def _column_major(book: B.ArrayBook) -> B.ArrayBook:
    """The book with its deals and orders column-major: each field of the records is one contiguous
    column, which the history's blocks and the records take as it is (a view, not a copy per field:
    at 5M bars the copies were ~100 MB above the book)."""
    major = {k: np.zeros(v.shape, v.dtype, order="F") for k, v in vars(book).items() if k in _RECORDS}
    return dataclasses.replace(book, **major)


_RECORDS = ("di", "df", "oi", "of")


def _currencies(runner: Runner, symbols: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
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


def _breaker_state(runner: Runner, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _materialize(runner: Runner, x: Inputs, book: B.ArrayBook, rollover: int) -> dict[str, Any]:
    """The Python trade state from the arrays: the history (deals, history orders) as blocks of the
    book's arrays (``terminal.history``: objects only when read), the open positions, the counters.
    Returns the deals' fields (the deals table takes the same arrays as its columns)."""
    c = runner.c
    state = c.server.state
    m = c.server.inputs
    cnt = book.cnt
    no, nd = int(cnt[B.C_ORDERS]), int(cnt[B.C_DEALS])
    names = x.symbols
    digits = [m.specs[sym].digits for sym in names]
    # the book is column-major (_column_major): every column below is a view of it, not a copy
    oi, of = book.oi[:no], book.of[:no]
    o_ticket, o_why, o_sid = oi[:, B.O_TICKET], oi[:, B.O_REASON], oi[:, B.O_SID]
    o_text = _comments(o_why, o_sid, of[:, B.O_LEVEL], oi[:, B.O_SYM], digits)
    o_price, o_time = of[:, B.O_PRICE], oi[:, B.O_TIME]
    o_symbols = Coded(oi[:, B.O_SYM], names)
    # Order(ticket, symbol, type, volume_initial, volume_current, price_open, sl, tp, price_stoplimit,
    # time_setup, type_time, type_filling, time_expiration, state, time_done, magic, position_id,
    # position_by_id, reason, comment, price_done)
    first_order = len(state.history_orders)
    _history(state.history_orders).add_block(
        Block(
            Order,
            {
                "ticket": o_ticket, "symbol": o_symbols, "type": oi[:, B.O_TYPE],
                "volume_initial": of[:, B.O_VOLUME], "volume_current": 0.0, "price_open": o_price,
                "sl": 0.0, "tp": 0.0, "price_stoplimit": 0.0, "time_setup": o_time,
                "type_time": C.ORDER_TIME_GTC, "type_filling": C.ORDER_FILLING_FOK, "time_expiration": 0,
                "state": C.ORDER_STATE_FILLED, "time_done": o_time, "magic": oi[:, B.O_MAGIC],
                "position_id": oi[:, B.O_POSITION], "position_by_id": 0, "reason": o_why,
                "comment": o_text, "price_done": o_price,
            },
            no,
        )
    )  # fmt: skip
    di, dfl = book.di[:nd], book.df[:nd]
    d_text = _comments(di[:, B.D_REASON], di[:, B.D_CSID], dfl[:, B.D_LEVEL], di[:, B.D_SYM], digits)
    # Deal(ticket, order, time, type, entry, reason, position_id, symbol, volume, price, commission,
    # swap, profit, balance, comment, magic)
    fields: dict[str, Any] = {
        k: di[:, col]
        for k, col in (
            ("ticket", B.D_TICKET), ("order", B.D_ORDER), ("time", B.D_TIME), ("type", B.D_TYPE),
            ("entry", B.D_ENTRY), ("reason", B.D_REASON), ("position_id", B.D_POSITION),
        )
    }  # fmt: skip
    fields["symbol"] = Coded(di[:, B.D_SYM], names)
    for k, col in (
        ("volume", B.D_VOLUME), ("price", B.D_PRICE), ("commission", B.D_COMMISSION), ("swap", B.D_SWAP),
        ("profit", B.D_PROFIT), ("balance", B.D_BALANCE),
    ):  # fmt: skip
        fields[k] = dfl[:, col]
    fields["comment"], fields["magic"] = d_text, di[:, B.D_MAGIC]
    _history(state.deals).add_block(Block(Deal, fields, nd))
    positions = []
    n = int(cnt[B.C_POS])
    for (ticket, sym, typ, t, upd, _strat, _sid, magic, csid, cursor), (vol, open_, swap, sl, tp) in zip(
        book.pi[:n].tolist(), book.pf[:n].tolist(), strict=True
    ):
        positions.append(
            Position(
                ticket, ticket, x.symbols[sym], typ, vol, open_, sl, tp, t, upd, magic, f"signal {csid}",
                C.POSITION_REASON_EXPERT, swap, cursor, False, upd + 1,
            )
        )  # fmt: skip
    state.positions = positions
    state.balance = float(book.balance[0])
    state.next_ticket, state.next_deal = int(cnt[B.C_TICKET]), int(cnt[B.C_DEAL])
    state.next_rollover = rollover
    owners = runner.journal.owners
    if not owners.sent:  # orders a strategy sent itself are resolved by the attribution
        tickets, who_names, who, sids = _owners(oi, owners.magic)
        whole = (first_order, first_order + no) if len(tickets) == no else None
        owners.learn(tickets, who_names, who, sids, whole)
    return fields


def _history(h: Any) -> History[Any]:
    """The state's history as a ``History`` (a state restored from an older checkpoint holds lists)."""
    return h if isinstance(h, History) else History(h)


def _comments(
    why: np.ndarray, sid: np.ndarray, level: np.ndarray, sym: np.ndarray, digits: list[int]
) -> Labels:
    """The comments of the kernel's orders or deals: "signal N" of an expert order, "[sl 1.09950]" of an
    SL/TP close (as the Python replay writes them). The texts are built when the column is read (a
    DataFrame, a SQL insert), not one string per row up front."""
    given = {
        k: _level_comment(int(why[k]), float(level[k]), digits[int(sym[k])])
        for k in np.flatnonzero(why != B.REASON_EXPERT).tolist()
    }
    return Labels("signal ", sid, given)


def _owners(
    oi: np.ndarray, strategy_of: dict[int, str]
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """Owners of the kernel's orders as engine/attribution.py resolves them: an expert order is its
    magic's strategy's, for the signal in its "signal N" comment; an SL/TP close is its position's (the
    opening order's, an earlier expert order of the kernel) owner. As arrays: (tickets, strategy
    names, index of each ticket's name, signal ids); orders with no owner here are left out."""
    ticket, why, magic = oi[:, B.O_TICKET], oi[:, B.O_REASON], oi[:, B.O_MAGIC]
    sid, pos = oi[:, B.O_SID], oi[:, B.O_POSITION]
    expert = why == B.REASON_EXPERT
    mags = [mg for mg in np.unique(magic).tolist() if mg in strategy_of]
    known = np.isin(magic, mags)
    names = [strategy_of[mg] for mg in mags]
    close = np.flatnonzero(~expert)
    if not len(close) and known.all():  # every order a strategy's own expert order: the book's columns
        return ticket, names, narrow(np.searchsorted(np.array(mags, np.int64), magic), len(names)), sid
    src = np.arange(len(ticket))
    if len(close):  # tickets ascend: the opening order of each close by a search
        at = np.searchsorted(ticket, pos[close])
        ok = (at < len(ticket)) & (ticket[np.minimum(at, len(ticket) - 1)] == pos[close])
        src[close] = np.where(ok, at, -1)
    keep = np.flatnonzero((src >= 0) & expert[np.maximum(src, 0)] & known[np.maximum(src, 0)])
    origin = src[keep]
    who = np.searchsorted(np.array(mags, np.int64), magic[origin]) if mags else np.zeros(0, np.int64)
    return ticket[keep].copy(), names, narrow(who, len(names)), sid[origin].copy()


def _level_comment(reason: int, level: float, digits: int) -> str:
    """The comment of an SL/TP close, as the Python replay writes it: "[sl 1.09950]"."""
    return f"[{'sl' if reason == B.REASON_SL else 'tp'} {level:.{digits}f}]"


def _journal(
    runner: Runner, x: Inputs, e_status: np.ndarray, e_value: np.ndarray, e_order: np.ndarray,
    e_position: np.ndarray, equity: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    stops: tuple[np.ndarray, np.ndarray], deals: tuple[B.ArrayBook, int, dict[str, Any]],
    pre: prereview.PreReview, e_brk: np.ndarray, e_size: np.ndarray, e_risk: np.ndarray, e_free: np.ndarray,
    money: tuple[list[str], np.ndarray, np.ndarray],
) -> None:  # fmt: skip
    """Signals, deals and equity rows and the funnel, as the Python loop records them, handed to the
    sink as columns."""
    from mt5tester.results import db
    from mt5tester.results.rows import DictColumn

    journal, host, cc = runner.journal, runner.host, runner.c.cfg.coordinator
    breaker_rule = runner.c.coordinator.breaker
    funnel, rec = journal.funnel, journal.rec
    slots = host.slots
    n_ev = len(x.ev_si)
    point_of = np.repeat(np.arange(len(x.times)), np.diff(x.starts))
    base = journal.signal_seq
    limits = {1: cc.max_positions, 2: cc.max_positions_per_symbol, 3: cc.max_positions_per_strategy}
    if x.signals is None:  # the column strategies were not called (a signal pass counted its calls)
        for si, k in enumerate(np.bincount(x.ev_si, minlength=len(slots)).tolist()):
            host._calls[si] += k
    ok = np.isin(e_status, _APPROVED)
    cut = ok & (e_status != 0)
    # the columns as codes, masks and numbers (model/columns.py): Python values only when read. The rule
    # and reason of a count rule by its code; a gate's, sizing's, breaker's or risk rule's decision names
    # its own
    index: dict[str | None, int] = {None: 0, **{_RULES[k]: k for k in sorted(_RULES)}}
    rule_codes = np.where(np.isin(e_status, list(_RULES)), e_status, 0)
    reason_codes = rule_codes.copy()
    given: dict[int, dict[str, Any]] = {}  # the details of rejected or sized signals; the others' are {}
    for k in np.flatnonzero(e_status).tolist():
        code, si, sym = int(e_status[k]), int(x.ev_si[k]), int(x.ev_sym[k])
        if code >= PRE_REJECTED:
            if code == PRE_REJECTED:
                d = pre.decisions[k]
            elif code == DAILY_LOSS:
                d = breaker_rule.daily_loss_decision(*e_brk[k].tolist())
            elif code == MAX_DRAWDOWN:
                d = breaker_rule.max_drawdown_decision()
            elif code == SIZING:
                why = _SIZING[int(e_value[k])]
                d = reject("sizing", why, **_risk_details(x, pre, e_size, k, why))
            elif code == FREE_MARGIN:
                d = FreeMarginRule.short(*e_free[k].tolist())
            elif code in (CONFLICT, CONFLICT_RESIZED):
                d = pre.conflicts[k]
            elif code >= CURRENCY:
                d = _money_decision(runner, x, money, code, k)
            else:
                d = _total_risk_decision(code, x.symbols[sym], e_risk[k], float(x.ev_vol[k]))
            rule_codes[k] = index.setdefault(d.rule, len(index))
            reason_codes[k] = index.setdefault(d.reason, len(index))
            given[k] = d.details
            if code not in _APPROVED:
                funnel.rejected[d.reason or "unknown"] += 1
            continue
        extra = {2: {"symbol": x.symbols[sym]}, 3: {"strategy": slots[si][0].name}}.get(code, {})
        given[k] = {"limit": limits[code], "value": int(e_value[k]), **extra}
    # Coordinator._pipeline: the sizing details on every signal that reached the rules
    reached = np.isin(e_status, _REACHED_RULES)
    # risk-% sizing sized every signal that reached the rules; otherwise only the pre-review's sized ones
    # have details (none at all without sizing: no Python step per signal)
    sized_at = np.flatnonzero(reached).tolist() if len(e_size) else [k for k in pre.sizing if reached[k]]
    for k in sized_at:
        sized = _risk_details(x, pre, e_size, k, None) if len(e_size) else pre.sizing[k]
        if sized is not None:
            given[k] = given.get(k, {}) | {"sizing": sized}
    for code, k in enumerate(np.bincount(e_status, minlength=len(_RULES) + 1).tolist()):
        if code in _RULES and k:
            funnel.rejected[_RULES[code]] += k
    status = Coded(ok.astype(np.int8) + cut, ["rejected", "approved", "resized"])
    funnel.resized += int(cut.sum())
    volume = np.where(ok, x.ev_vol, 0.0)
    order_ticket, position = _or_none(e_order, ok), _or_none(e_position, ok)
    all_ok = bool(ok.all())  # every signal traded: one retcode for all (a value, not a column)
    retcode = Const(C.TRADE_RETCODE_DONE, n_ev) if all_ok else Masked(np.full(n_ev, C.TRADE_RETCODE_DONE), ok)
    approved = int(ok.sum())
    funnel.approved += approved
    funnel.executed += approved
    strategy_codes = narrow(x.ev_si, len(slots))  # the signals' strategy and timeframe, a byte each
    signals: dict[str, Any] = {
        "signal_id": np.arange(base + 1, base + n_ev + 1, dtype=np.int64),
        "time": x.times[point_of],
        "strategy": Coded(strategy_codes, [slot[0].name for slot in slots]),
        "symbol": Coded(narrow(x.ev_sym, len(x.symbols)), x.symbols),
        "timeframe": Coded(strategy_codes, [slot[0].timeframe.name for slot in slots]),
        "direction": Coded((x.ev_dir > 0).astype(np.int8), ["sell", "buy"]),
        "order_type": Const("market", n_ev),
        "price": Const(None, n_ev),
        "sl": Masked(stops[0], stops[0] != 0),  # a signal without SL: None (0.0 in the arrays)
        "tp": Masked(stops[1], stops[1] != 0),
        **_signal_fields(x.signals, pre.tags, n_ev),
        "status": status,
        "rule": Coded(narrow(rule_codes, len(index)), list(index)),
        "reason": Coded(narrow(reason_codes, len(index)), list(index)),
        "details": DictColumn(n_ev, given),
        "volume": volume,
        "order_ticket": order_ticket,
        "retcode": retcode,
        "position_id": position,
        "trading_mode": Const(runner.c.cfg.trading_mode, n_ev),  # one profile in force (no switch: why_not)
    }
    rec.add_columns(db.signals, signals)
    journal.signal_seq = base + n_ev
    funnel.signals += n_ev
    funnel.decision_points += x.points
    _journal_deals(runner, x, *deals)
    q_balance, q_equity, q_margin, q_open = (a[x.sample] for a in equity)
    held = q_margin > 0
    if held.any():  # the lowest margin level: rounding is monotone, so the rounded minimum
        level = rules.round_to(float((q_equity[held] / q_margin[held] * 100).min()), 2)
        low = funnel.margin_level_min
        funnel.margin_level_min = level if low is None else min(low, level)
    equity_rows: dict[str, Any] = {
        "time": x.times[x.sample],
        "balance": q_balance,
        "equity": q_equity,
        "margin": q_margin,
        "open_positions": q_open,
    }
    rec.add_columns(db.equity, equity_rows)


def _signal_fields(
    signals: list[Signal] | None, regimes: dict[int, dict[str, Any]], n: int
) -> dict[str, Any]:
    """The signals' own columns: a column strategy's defaults, or a signal pass's Signal fields; the
    tags with the regime label last, as the router adds it (``{**sig.tags, "regime": label}``)."""
    from mt5tester.results.rows import DictColumn

    if signals is None:
        return {"confidence": Const(1.0, n), "comment": Const("", n), "tags": DictColumn(n, regimes)}
    tags = {
        k: {**sig.tags, **regimes.get(k, {})} for k, sig in enumerate(signals) if sig.tags or k in regimes
    }
    return {
        "confidence": np.array([sig.confidence for sig in signals], np.float64),
        "comment": [sig.comment for sig in signals],
        "tags": DictColumn(n, tags),
    }


def _risk_details(
    x: Inputs, pre: prereview.PreReview, e_size: np.ndarray, k: int, why: str | None
) -> dict[str, Any]:
    """``risk.sizing.size``'s details of signal ``k``, sized in the kernel (refused: ``why``)."""
    sym = int(x.ev_sym[k])
    d: dict[str, Any] = {"mode": "risk", "multiplier": float(pre.multiplier[k])}
    if why in ("no_stop_loss", "no_tick_value"):
        return d | {"symbol": x.symbols[sym]}
    money, distance, value, per_lot, raw = e_size[k].tolist()
    vmin, step = float(x.sf[sym, B.F_VMIN]), float(x.sf[sym, B.F_VSTEP])
    d |= sizing.risk_details(money, distance, value, float(x.sf[sym, B.F_POINT]), per_lot)
    return d | {"raw": round(raw, 8), "volume_min": vmin, "volume_step": step}


def _money_decision(
    runner: Runner, x: Inputs, money: tuple[list[str], np.ndarray, np.ndarray], code: int, k: int
) -> Any:
    """``CurrencyExposureRule.check``'s or ``CorrelationRule.check``'s decision on signal ``k`` from the
    kernel's numbers (e_ccy's or e_corr's columns), through the rule's own ``numbers``."""
    rules_ = runner.c.coordinator.rules
    names, e_ccy, e_corr = money
    if code in (CURRENCY, CURRENCY_SMALL, CURRENCY_RESIZED):
        rule: Any = next(r for r in rules_ if isinstance(r, CurrencyExposureRule))
        ccy, after, before, fit, volume = e_ccy[k].tolist()
        name = names[int(ccy)]
        numbers = rule.numbers(name, rule.limit_of(name, runner.c.server.settings.currency), after, before)
        policy, first = rule.policy, CURRENCY
    else:
        rule = next(r for r in rules_ if isinstance(r, CorrelationRule))
        sym, adj, rho, fit, volume = e_corr[k].tolist()
        numbers = rule.numbers(x.symbols[int(sym)], adj, rho)
        policy, first = rule.policy, CORRELATION
    if policy == "reject":
        return reject(rule.name, rule.name, **numbers)
    v = float(x.ev_vol[k]) if code == first + 2 else 0.0  # resized; else no volume fits
    return fitted(rule.name, rule.name, v, fit, volume, numbers)


def _total_risk_decision(code: int, symbol: str, numbers: np.ndarray, volume: float) -> Any:
    """``TotalRiskRule.check``'s decision from the kernel's numbers (e_risk's columns)."""
    name = "max_total_risk"
    if code == NO_STOP_RISK:
        return reject(name, "no_stop_loss", symbol=symbol)
    limit, value, held, new, unprotected, fit, before = numbers.tolist()
    given = TotalRiskRule.numbers(limit, value, held, new, int(unprotected))
    if code == TOTAL_RISK:
        return reject(name, name, **given)
    return fitted(name, name, volume if code == RESIZED else 0.0, fit, before, given)


def _or_none(values: np.ndarray, ok: np.ndarray) -> Any:
    """A column that is None where not ``ok`` (``Masked``): the array itself when every row is."""
    return values if ok.all() else Masked(values, ok)


def _journal_deals(runner: Runner, x: Inputs, book: B.ArrayBook, first: int, fields: dict[str, Any]) -> None:
    """The deals the kernel made, recorded and attributed as the Python loop records them (no strategy
    here has an on_trade hook, see why_not), as columns straight from the book's arrays.

    Attribution as engine/attribution.py resolves it for these deals: every kernel order carries its
    strategy's magic and a "signal N" comment, SL/TP closes are server-reason orders, so a deal of any
    entry belongs to the strategy and signal that opened its position (D_STRAT, D_SID). A netting
    reversal (entry INOUT) belongs to its own order instead: that rare case takes the per-deal path."""
    from mt5tester.results import db

    journal = runner.journal
    nd = int(book.cnt[B.C_DEALS])
    di = book.di[:nd]
    state = runner.c.server.state
    inout = bool((di[:, B.D_ENTRY] == C.DEAL_ENTRY_INOUT).any())
    if journal.recorded != first or len(state.deals) != first + nd or inout or journal.owners.sent:
        journal.deals(notify=False)
        return
    journal.recorded = first + nd
    reason, entry = di[:, B.D_REASON], di[:, B.D_ENTRY]
    out = entry != C.DEAL_ENTRY_IN
    closed = journal.funnel.closed
    # the keys of Journal.deals: SL/TP by reason, any other close of a kernel deal is a signal's
    for key, hits in (("sl", reason == B.REASON_SL), ("tp", reason == B.REASON_TP)):
        k = int((out & hits).sum())
        if k:
            closed[key] += k
    k = int((out & (reason != B.REASON_SL) & (reason != B.REASON_TP)).sum())
    if k:
        closed["signal"] += k
    owner_of = journal.owners.magic  # magic -> strategy, as the attribution reads an order's magic
    magic = fields["magic"]
    mags = np.unique(magic)
    who = Coded(narrow(np.searchsorted(mags, magic), len(mags)), [owner_of[k] for k in mags.tolist()])
    # the deals table's columns are the history's own arrays (terminal/history.py): stored once
    columns = {k: fields[k] for k in db.deals.columns.keys() if k in fields and k != "magic"}  # noqa: SIM118
    columns |= {"strategy": who, "signal_id": di[:, B.D_SID]}
    journal.rec.add_columns(db.deals, columns)
