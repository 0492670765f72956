"""The coordinator's rules that read the book, compiled for the whole-run kernel (engine/kernel.py, driver b):
SL/TP of an entry, risk-% sizing, max_total_risk, max_currency_exposure and max_correlation's pick over
the open positions. Their arithmetic is the shared compiled code the Python rules call (risk/lots.py,
terminal/core); these functions restate only the loops over the kernel's arrays (the differential tests
guard them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from mt5tester.risk import lots
from mt5tester.terminal.core import book as B
from mt5tester.terminal.core import rules

if TYPE_CHECKING:
    pass

from mt5tester.engine.kernel_codes import (
    CONFLICT_RESIZED,
    CORRELATION,
    CORRELATION_RESIZED,
    CORRELATION_SMALL,
    CURRENCY,
    CURRENCY_RESIZED,
    CURRENCY_SMALL,
    K_ADJ,
    K_FIT,
    K_RHO,
    K_SYM,
    K_VOLUME,
    NO_STOP_RISK,
    R_BEFORE,
    R_FIT,
    R_HELD,
    R_LIMIT,
    R_NEW,
    R_UNPROTECTED,
    R_VALUE,
    RESIZED,
    TOTAL_RISK,
    TOTAL_RISK_SMALL,
    X_AFTER,
    X_BEFORE,
    X_CCY,
    X_FIT,
    X_VOLUME,
    Z_DISTANCE,
    Z_MONEY,
    Z_PER_LOT,
    Z_RAW,
    Z_TICK_VALUE,
)


@njit(cache=True)
def stops(
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
def sl_distance(
    k: int, n: int, sym: int, ev_dir: np.ndarray, ev_sl: np.ndarray, si: np.ndarray, sf: np.ndarray,
    qbid: np.ndarray, qask: np.ndarray,
) -> tuple[float, float]:  # fmt: skip
    """(|entry - SL| of signal ``k``, its entry quote): ``Router.process``'s ``sl_distance`` (0.0 without
    an SL), what the sizing and the total risk read."""
    sl, _, ref = stops(k, n, sym, ev_dir[k] > 0, ev_sl, ev_sl, si, sf, qbid, qask)
    return (abs(ref - sl) if sl != 0.0 and ref != 0.0 else 0.0), ref


@njit(cache=True)
def risk_size(
    k: int, n: int, sym: int, equity: float, risk_pct: float, ev_dir: np.ndarray, ev_sl: np.ndarray,
    ev_vol: np.ndarray, ev_mult: np.ndarray, si: np.ndarray, sf: np.ndarray, qbid: np.ndarray,
    qask: np.ndarray, e_size: np.ndarray,
) -> int:  # fmt: skip
    """``risk.sizing.size`` in mode risk for entry ``k`` at ``equity``: sets ``ev_vol[k]`` and the numbers
    behind it (``e_size[k]``); returns 0, or why it refused the entry (a key of SIZING_REASONS)."""
    distance, _ = sl_distance(k, n, sym, ev_dir, ev_sl, si, sf, qbid, qask)
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
def loss_per_lot(
    n: int, sym: int, distance: float, sf: np.ndarray, si: np.ndarray, qbid: np.ndarray
) -> float:
    """``Mt5View.money_per_lot`` at point ``n``: the tick value at the symbol's bid."""
    point = sf[sym, B.F_POINT]
    value = rules.tick_value(qbid[n, sym], point, sf[sym, B.F_CONTRACT], si[sym, B.S_CONV], 1.0)
    return lots.money_per_lot(distance, point, value)


@njit(cache=True)
def total_risk(
    k: int, n: int, e0: int, equity: float, pct: float, resize: bool, approved: np.ndarray, pi: np.ndarray,
    pf: np.ndarray, cnt: np.ndarray, ev_sym: np.ndarray, ev_dir: np.ndarray, ev_sl: np.ndarray,
    ev_vol: np.ndarray, si: np.ndarray, sf: np.ndarray, qbid: np.ndarray, qask: np.ndarray,
    e_risk: np.ndarray,
) -> int:  # fmt: skip
    """``TotalRiskRule.check`` of entry ``k`` (``risk.rules.open_risk`` over the book in its order, then
    the entries approved before it in this review at their entry price and SL): 0, RESIZED (``ev_vol[k]``
    lowered), TOTAL_RISK or TOTAL_RISK_SMALL; the numbers in ``e_risk[k]``; 11: no stop loss."""
    sym = ev_sym[k]
    distance, _ = sl_distance(k, n, sym, ev_dir, ev_sl, si, sf, qbid, qask)
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
        held += pf[j, B.P_VOLUME] * loss_per_lot(n, s, max(0.0, d * (current - pf[j, B.P_SL])), sf, si, qbid)
    for q in range(e0, k):
        if approved[q]:
            s, d = ev_sym[q], 1.0 if ev_dir[q] > 0 else -1.0
            dq, price = sl_distance(q, n, s, ev_dir, ev_sl, si, sf, qbid, qask)
            stop = price - d * dq if dq else 0.0
            if stop <= 0:
                unprotected += 1
                continue
            held += ev_vol[q] * loss_per_lot(n, s, max(0.0, d * (price - stop)), sf, si, qbid)
    per_lot = loss_per_lot(n, sym, distance, sf, si, qbid)
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
def passed(code: int) -> bool:
    """The entry is approved so far (as sent, or cut by a rule: a code of APPROVED)."""
    return code == 0 or code in (RESIZED, CONFLICT_RESIZED, CURRENCY_RESIZED, CORRELATION_RESIZED)


@njit(cache=True)
def fitted(fit: float, volume: float, resize: bool, sym: int, sf: np.ndarray) -> float:
    """``risk.rules._fit``'s volume: -1.0 under the reject policy, else the largest valid volume <= ``fit``
    (0.0: none)."""
    if not resize:
        return -1.0
    if fit <= 0:
        return 0.0
    return lots.round_volume(min(fit, volume), sf[sym, B.F_VMIN], sf[sym, B.F_VMAX], sf[sym, B.F_VSTEP])


@njit(cache=True)
def cut(v: float, k: int, ev_vol: np.ndarray, rejected: int, small: int, resized: int) -> int:
    """A rule's outcome from its fitted volume ``v`` (``fitted``): rejected (< 0), no volume fits (0), or
    entry ``k`` resized to ``v``."""
    if v < 0:
        return rejected
    if v == 0:
        return small
    ev_vol[k] = v
    return resized


@njit(cache=True)
def notional(n: int, sym: int, price: float, sf: np.ndarray, si: np.ndarray, qbid: np.ndarray) -> float:
    """``rules._notional_per_lot`` at point ``n``: the tick value at the symbol's bid (Mt5View's)."""
    point = sf[sym, B.F_POINT]
    value = rules.tick_value(qbid[n, sym], point, sf[sym, B.F_CONTRACT], si[sym, B.S_CONV], 1.0)
    return lots.notional_per_lot(price, point, value)


@njit(cache=True)
def currency(
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
        v = d * pf[j, B.P_VOLUME] * notional(n, s, qbid[n, s] if buy else qask[n, s], sf, si, qbid)
        held[ccy_of[s, 0]] += v
        held[ccy_of[s, 1]] -= v
    for q in range(e0, k):
        if approved[q]:
            s, buy = ev_sym[q], ev_dir[q] > 0
            d = 1.0 if buy else -1.0
            v = d * ev_vol[q] * notional(n, s, qask[n, s] if buy else qbid[n, s], sf, si, qbid)
            held[ccy_of[s, 0]] += v
            held[ccy_of[s, 1]] -= v
    sym, buy = ev_sym[k], ev_dir[k] > 0
    per_lot = (1.0 if buy else -1.0) * notional(n, sym, qask[n, sym] if buy else qbid[n, sym], sf, si, qbid)
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
    return cut(fitted(w_fit, volume, resize, sym, sf), k, ev_vol, CURRENCY, CURRENCY_SMALL, CURRENCY_RESIZED)


@njit(cache=True)
def correlation(
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
    v = fitted(fit, volume, resize, sym, sf)
    return cut(v, k, ev_vol, CORRELATION, CORRELATION_SMALL, CORRELATION_RESIZED)
