"""Driver (b): the decision points of a run inside one compiled loop, for strategies whose signals are
prepared as arrays (``column_signals``: the sign of ``signal_column`` is the whole decision) or recorded
by a signal pass over per-bar Python strategies that decide from bars alone (``bars_only``,
engine/signal_pass.py). Its inputs are built in engine/kernel_inputs.py, the rules that read the book
are compiled in engine/kernel_rules.py, its records made in engine/kernel_records.py, its codes in
engine/kernel_codes.py.

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

import time
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from mt5tester.engine import prereview, signal_pass
from mt5tester.engine.journal import magic_of
from mt5tester.engine.preflight import ts
from mt5tester.errors import ConfigError
from mt5tester.risk import breaker
from mt5tester.strategy.base import FusionStrategy, Strategy
from mt5tester.terminal import kernels
from mt5tester.terminal.core import book as B
from mt5tester.terminal.core import rules

if TYPE_CHECKING:
    from collections.abc import Callable

    from mt5tester.engine.loop import Runner
    from mt5tester.engine.timeline import Timeline

from mt5tester.engine import kernel_rules as KR
from mt5tester.engine.kernel_codes import (
    B_DAILY_PCT,
    B_DAY_START,
    B_LATCH,
    B_MAX_DD_PCT,
    B_PEAK,
    BAD_STOPS,
    BAD_VOLUME,
    CONFLICT,
    CONFLICT_RESIZED,
    DAILY_LOSS,
    DONE,
    FREE_MARGIN,
    INSIDE_BAR,
    MAX_DRAWDOWN,
    MINUTE,
    NO_MONEY,
    NO_PRICE,
    NO_QUOTE,
    PRE_REJECTED,
    SIZING,
    STOP_OUT,
    STOPPED,
)
from mt5tester.engine.kernel_inputs import (
    breaker_state,
    build_inputs,
    currencies,
    inexpressible,
    no_stops,
    symbol_reason,
)  # fmt: skip
from mt5tester.engine.kernel_records import column_major, journal_run, materialize

# Every coordinator rule runs here. Sessions, blocked windows, weekends, the regime gate, fixed sizing,
# the risk multiplier, regime_risk, the conflicts and the correlations are taken per signal before the
# run (engine/prereview.py); the count rules, the circuit breakers (risk/breaker.py), risk-% sizing,
# max_total_risk and max_currency_exposure (risk/lots.py), the pick of max_correlation's symbol and
# min_free_margin are compiled. Volatility sizing, and conflicts between risk-% sized entries, are not
# (prereview.uncompiled).
_HOOKS = ("generate_signals", "on_start", "on_trade", "on_stop")


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
        reason = no_stops(runner)
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
        reason = symbol_reason(c.specs[sym], st.currency)
        if reason:
            return f"{sym}: {reason}"
    if c.server.positions or c.server.orders:
        return "positions or orders were opened before the first point (on_start traded)"
    return None


def _passes(runner: Runner) -> bool:
    """The strategies are called by a signal pass first (some decide in Python, bars_only)."""
    return any(not (ls.strategy.column_signals and ls.strategy.signal_column) for ls in runner.c.strategies)


# ------------------------------------------------------------------------------ the compiled loop
@njit(cache=True)
def _stop_out_safe(
    pi: np.ndarray, pf: np.ndarray, n: int, si: np.ndarray, sf: np.ndarray, balance: float, leverage: float,
    hedging: bool, stop_out: float, percent: bool, lo_all: np.ndarray, hi_all: np.ndarray,
    work_f: np.ndarray, work_i: np.ndarray,
) -> bool:  # fmt: skip
    """``replay._stop_out_time``'s first bound: every position at the worst price of its history
    stays above the stop-out floor (spec 5.11). False: a stop-out may come (not compiled)."""
    if n == 0:
        return True
    mg = B.margins(pi, pf, n, si, sf, leverage, hedging, -1, 0, 0.0, 0.0, work_f, work_i)[0]
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
    percent: bool, lo_all: np.ndarray, hi_all: np.ndarray, work_f: np.ndarray, work_i: np.ndarray,
) -> int:  # fmt: skip
    """``replay._replay`` for positions with SL/TP in bar modes on M1 (spec 5.4, 6.1): each position's
    first hit on the M1 bars closed by t (``kernels.first_trigger``, the pessimistic rule for a bar
    holding both), then the hits in time order (ties: lower ticket), each after the stop-out bound."""
    npos = cnt[B.C_POS]
    stops = 0
    for j in range(npos):
        stops += pf[j, B.P_SL] != 0.0 or pf[j, B.P_TP] != 0.0
    if stops == 0:
        return DONE  # nothing to replay (and nothing allocated: most points of most runs)
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
            pi, pf, cnt[B.C_POS], si, sf, balance[0], leverage, hedging, stop_out, percent, lo_all, hi_all,
            work_f, work_i,
        ):  # fmt: skip
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
                hi_all, work_f, work_i,
            )  # fmt: skip
            if code != DONE:
                return code, n, ri
            if not _stop_out_safe(
                pi, pf, cnt[B.C_POS], si, sf, balance[0], leverage, hedging, stop_out, percent, lo_all,
                hi_all, work_f, work_i,
            ):  # fmt: skip
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
            b_low, b_spread, ambiguous, leverage, hedging, stop_out, percent, lo_all, hi_all, work_f, work_i,
        )  # fmt: skip
        if code != DONE:
            return code, n, ri
        if not _stop_out_safe(
            pi, pf, cnt[B.C_POS], si, sf, balance[0], leverage, hedging, stop_out, percent, lo_all, hi_all,
            work_f, work_i,
        ):  # fmt: skip
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
                refused = KR.risk_size(
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
                    cut = KR.total_risk(
                        k, n, e0, equity, total_risk_pct, risk_resize, approved, pi, pf, cnt, ev_sym, ev_dir,
                        ev_sl, ev_vol, si, sf, qbid, qask, e_risk,
                    )  # fmt: skip
                    code = cut if cut else code
                if KR.passed(code) and len(ccy_limit):  # CurrencyExposureRule
                    cut = KR.currency(
                        k, n, e0, ccy_resize, approved, pi, pf, cnt, ev_sym, ev_dir, ev_vol, si, sf, qbid,
                        qask, ccy_of, ccy_limit, e_ccy,
                    )  # fmt: skip
                    code = cut if cut else code
                if KR.passed(code) and rho.shape[1]:  # CorrelationRule
                    cut = KR.correlation(
                        k, e0, corr_limit, corr_resize, approved, pi, pf, cnt, ev_sym, ev_dir, ev_vol, rho,
                        sf, e_corr,
                    )  # fmt: skip
                    code = cut if cut else code
                if KR.passed(code) and free_floor[0] != breaker.OFF:  # FreeMarginRule (order_check)
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
                approved[k] = KR.passed(code)
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
            sl, tp, _ = KR.stops(k, n, sym, is_buy, ev_sl, ev_tp, si, sf, qbid, qask)
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
    book = column_major(
        B.new_book(
            cc.max_positions + n_ev + 2, 2 * n_ev + 2, state.balance, state.next_ticket, state.next_deal
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
    server_s, bk_i, bk_f = breaker_state(runner, x.times)
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
    ccy_names, ccy_of, ccy_limit = currencies(runner, x.symbols)
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
        raise KernelDeclined(f"{STOPPED[code]} at {ts(int(x.times[done]))} UTC")
    first_deal = len(state.deals)
    deal_fields = materialize(runner, x, book, rollover)
    if len(server_s):  # the coordinator's breaker goes on from the kernel's (a checkpoint keeps it)
        brk = c.coordinator.breaker
        brk.day, brk.day_start_equity, brk.peak = int(bk_i[0]), float(bk_f[B_DAY_START]), float(bk_f[B_PEAK])
        if bk_i[1] and brk.latched is None:
            brk.latch(*bk_f[B_LATCH : B_LATCH + 3].tolist())
    state.ambiguous_bars += int(ambiguous[0])
    journal_run(
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
