"""The trade state as arrays, and market orders on it, compiled: what the whole-run kernel (driver b)
trades with. The same rules as the Python server (``ledger.execute``/``close_part``, ``money.margin``,
``money.floating``), called from ``rules`` so each number is computed by the one implementation, in the
same order of operations (so the two drivers agree to the bit).

Layout (one ``ArrayBook``): open positions in list order (``pi``/``pf`` rows 0..n-1, the order the
Python book keeps: appended at open, removed in place), the deals and history orders made so far, and
the counters. Symbols are indices into the run's symbol table ``SymbolTable``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from mt5tester.terminal.core import rules

# pi columns (int64) of an open position
P_TICKET, P_SYM, P_TYPE, P_TIME, P_UPDATE, P_STRAT, P_SID, P_MAGIC, P_CSID, P_CURSOR = range(10)
# pf columns (float64)
P_VOLUME, P_OPEN, P_SWAP, P_SL, P_TP = range(5)
# di columns (int64) of a deal; CSID: the signal id in its comment ("signal N"); REASON: DEAL_REASON_*
D_TICKET, D_ORDER, D_TIME, D_TYPE, D_ENTRY, D_POSITION, D_SYM, D_STRAT, D_SID, D_MAGIC, D_CSID, D_REASON = (
    range(12)
)
# df columns (float64)
D_VOLUME, D_PRICE, D_COMMISSION, D_SWAP, D_PROFIT, D_BALANCE, D_LEVEL = range(7)  # LEVEL: the SL/TP hit
# oi columns (int64) of a filled market order in the history
O_TICKET, O_SYM, O_TYPE, O_TIME, O_MAGIC, O_POSITION, O_STRAT, O_SID, O_REASON = range(9)
O_VOLUME, O_PRICE, O_LEVEL = range(3)
# counters
C_POS, C_DEALS, C_ORDERS, C_TICKET, C_DEAL = range(5)
# symbol table: si (int64) and sf (float64) columns
S_DIGITS, S_CALC, S_CONV, S_MFAC, S_PER_LOT, S_SWAP_MODE, S_ROLL3 = range(7)
F_CONTRACT, F_POINT, F_VMIN, F_VMAX, F_VSTEP, F_MRATE, F_COMMISSION, F_SWAP_LONG, F_SWAP_SHORT = range(9)
MFAC_PRICE, MFAC_ONE = 0, 1  # margin currency valued at the position's price, or already the deposit's

ENTRY_IN, ENTRY_OUT, ENTRY_INOUT = 0, 1, 2  # DEAL_ENTRY_* (spec 4.8)
DEAL_BUY, DEAL_SELL = 0, 1  # DEAL_TYPE_*
REASON_EXPERT, REASON_SL, REASON_TP = 3, 4, 5  # DEAL_REASON_* = ORDER_REASON_* here (spec 4.8)


@dataclass
class ArrayBook:
    pi: np.ndarray
    pf: np.ndarray
    di: np.ndarray
    df: np.ndarray
    oi: np.ndarray
    of: np.ndarray
    cnt: np.ndarray  # C_* counters
    balance: np.ndarray  # one element


def new_book(positions: int, deals: int, balance: float, next_ticket: int, next_deal: int) -> ArrayBook:
    cnt = np.zeros(5, np.int64)
    cnt[C_TICKET], cnt[C_DEAL] = next_ticket, next_deal
    return ArrayBook(
        np.zeros((positions, 10), np.int64),
        np.zeros((positions, 5)),
        np.zeros((deals, 12), np.int64),
        np.zeros((deals, 7)),
        np.zeros((deals, 9), np.int64),
        np.zeros((deals, 3)),
        cnt,
        np.array([balance]),
    )


@njit(cache=True)
def profit_of(
    si: np.ndarray, sf: np.ndarray, sym: int, is_buy: bool, vol: float, open_: float, close: float
) -> float:
    return rules.profit(is_buy, vol, open_, close, sf[sym, F_CONTRACT], si[sym, S_CONV], 1.0)


@njit(cache=True)
def commission_of(si: np.ndarray, sf: np.ndarray, enabled: bool, sym: int, vol: float, price: float) -> float:
    c = sf[sym, F_COMMISSION]
    if not enabled or c == 0.0:
        return 0.0
    return rules.commission(True, c, si[sym, S_PER_LOT] == 1, vol, sf[sym, F_CONTRACT], price, 1.0)


@njit(cache=True)
def margin_one(si: np.ndarray, sf: np.ndarray, leverage: float, sym: int, vol: float, price: float) -> float:
    factor = price if si[sym, S_MFAC] == MFAC_PRICE else 1.0
    return rules.margin(si[sym, S_CALC], vol, sf[sym, F_CONTRACT], sf[sym, F_MRATE], leverage, price, factor)


@njit(cache=True)
def margins(
    pi: np.ndarray, pf: np.ndarray, n: int, si: np.ndarray, sf: np.ndarray, leverage: float, hedging: bool,
    x_sym: int, x_type: int, x_vol: float, x_price: float, work_f: np.ndarray, work_i: np.ndarray,
) -> tuple[float, float]:  # fmt: skip
    """``money.margin_of`` of the open positions, and of them plus one more when ``x_sym`` >= 0 (else the
    same): per symbol in order of first appearance, the legs summed in list order (the extra one last,
    as ``money.margin_with`` adds it); hedged symbols margined on the larger leg (spec 5.7); rounded to
    cents. ``work_f``/``work_i`` (2 x symbols) are the caller's, so that a loop allocates nothing."""
    long_, short, seen, order = work_f[0], work_f[1], work_i[0], work_i[1]
    long_[:] = 0.0
    short[:] = 0.0
    seen[:] = -1
    k = 0
    for j in range(n):
        sym, typ = pi[j, P_SYM], pi[j, P_TYPE]
        if seen[sym] < 0:
            seen[sym] = k
            order[k] = sym
            k += 1
        mg = margin_one(si, sf, leverage, sym, pf[j, P_VOLUME], pf[j, P_OPEN])
        if typ == 0:
            long_[sym] += mg
        else:
            short[sym] += mg
    total = 0.0
    for j in range(k):
        sym = order[j]
        total += max(long_[sym], short[sym]) if hedging else long_[sym] + short[sym]
    now = rules.round_to(total, 2)
    if x_sym < 0:
        return now, now
    mg = margin_one(si, sf, leverage, x_sym, x_vol, x_price)
    if x_type == 0:
        long_[x_sym] += mg
    else:
        short[x_sym] += mg
    if seen[x_sym] < 0:
        seen[x_sym] = k
        order[k] = x_sym
        k += 1
    total = 0.0
    for j in range(k):
        sym = order[j]
        total += max(long_[sym], short[sym]) if hedging else long_[sym] + short[sym]
    return now, rules.round_to(total, 2)


@njit(cache=True)
def floating(
    pi: np.ndarray, pf: np.ndarray, n: int, si: np.ndarray, sf: np.ndarray, bid: np.ndarray, ask: np.ndarray
) -> float:
    """``money.floating``: Σ (profit at the closing side + swap) in list order, rounded to cents."""
    total = 0.0
    for j in range(n):
        sym = pi[j, P_SYM]
        is_buy = pi[j, P_TYPE] == 0
        price = bid[sym] if is_buy else ask[sym]
        total += profit_of(si, sf, sym, is_buy, pf[j, P_VOLUME], pf[j, P_OPEN], price) + pf[j, P_SWAP]
    return rules.round_to(total, 2)


@njit(cache=True)
def add_order(
    oi: np.ndarray, of: np.ndarray, cnt: np.ndarray, sym: int, typ: int, vol: float, price: float, t: int,
    magic: int, strat: int, sid: int, reason: int = REASON_EXPERT, level: float = 0.0,
) -> int:  # fmt: skip
    """A market order filled at once (``ledger.history_order``); returns its row."""
    r = cnt[C_ORDERS]
    cnt[C_ORDERS] += 1
    ticket = cnt[C_TICKET]
    cnt[C_TICKET] += 1
    oi[r, O_TICKET], oi[r, O_SYM], oi[r, O_TYPE], oi[r, O_TIME] = ticket, sym, typ, t
    oi[r, O_MAGIC], oi[r, O_POSITION], oi[r, O_STRAT], oi[r, O_SID] = magic, 0, strat, sid
    of[r, O_VOLUME], of[r, O_PRICE], of[r, O_LEVEL] = vol, price, level
    oi[r, O_REASON] = reason
    return r


@njit(cache=True)
def add_deal(
    di: np.ndarray, df: np.ndarray, cnt: np.ndarray, balance: np.ndarray, order: int, t: int, typ: int,
    entry: int, position: int, sym: int, vol: float, price: float, commission: float, swap: float,
    profit: float, strat: int, sid: int, magic: int, csid: int, reason: int = REASON_EXPERT,
    level: float = 0.0,
) -> None:  # fmt: skip
    """``ledger.add_deal``: the balance moves by profit + commission + swap, rounded to cents."""
    balance[0] = rules.round_to(balance[0] + profit + commission + swap, 2)
    r = cnt[C_DEALS]
    cnt[C_DEALS] += 1
    di[r, D_TICKET] = cnt[C_DEAL]
    cnt[C_DEAL] += 1
    di[r, D_ORDER], di[r, D_TIME], di[r, D_TYPE], di[r, D_ENTRY] = order, t, typ, entry
    di[r, D_POSITION], di[r, D_SYM], di[r, D_STRAT], di[r, D_SID] = position, sym, strat, sid
    di[r, D_MAGIC], di[r, D_CSID] = magic, csid
    df[r, D_VOLUME], df[r, D_PRICE], df[r, D_COMMISSION] = vol, price, commission
    df[r, D_SWAP], df[r, D_PROFIT], df[r, D_BALANCE] = swap, profit, balance[0]
    di[r, D_REASON], df[r, D_LEVEL] = reason, level


@njit(cache=True)
def remove_position(pi: np.ndarray, pf: np.ndarray, cnt: np.ndarray, j: int) -> None:
    n = cnt[C_POS]
    for k in range(j, n - 1):
        pi[k, :] = pi[k + 1, :]
        pf[k, :] = pf[k + 1, :]
    cnt[C_POS] = n - 1


@njit(cache=True)
def close_part(
    pi: np.ndarray, pf: np.ndarray, di: np.ndarray, df: np.ndarray, cnt: np.ndarray, balance: np.ndarray,
    si: np.ndarray, sf: np.ndarray, commission_on: bool, j: int, vol: float, price: float, t: int,
    order: int, csid: int, reason: int = REASON_EXPERT, level: float = 0.0,
) -> None:  # fmt: skip
    """``ledger.close_part``: close ``vol`` of position j at ``price``; one OUT deal with its profit and
    its share of the swap."""
    sym = pi[j, P_SYM]
    is_buy = pi[j, P_TYPE] == 0
    profit = profit_of(si, sf, sym, is_buy, vol, pf[j, P_OPEN], price)
    share = vol / pf[j, P_VOLUME]
    swap = rules.round_to(pf[j, P_SWAP] * share, 2)
    pf[j, P_SWAP] = rules.round_to(pf[j, P_SWAP] - swap, 2)
    commission = commission_of(si, sf, commission_on, sym, vol, price)
    add_deal(
        di, df, cnt, balance, order, t, DEAL_SELL if is_buy else DEAL_BUY, ENTRY_OUT, pi[j, P_TICKET], sym,
        vol, price, commission, swap, profit, pi[j, P_STRAT], pi[j, P_SID], pi[j, P_MAGIC], csid, reason,
        level,
    )  # fmt: skip
    pf[j, P_VOLUME] = rules.round_to(pf[j, P_VOLUME] - vol, 8)
    pi[j, P_UPDATE] = t
    if pf[j, P_VOLUME] <= 1e-9:
        remove_position(pi, pf, cnt, j)


@njit(cache=True)
def execute(
    pi: np.ndarray, pf: np.ndarray, di: np.ndarray, df: np.ndarray, oi: np.ndarray, cnt: np.ndarray,
    balance: np.ndarray, si: np.ndarray, sf: np.ndarray, commission_on: bool, o: int, is_buy: bool,
    vol: float, price: float, t: int, target: int, sl: float = 0.0, tp: float = 0.0, cursor: int = 0,
) -> None:  # fmt: skip
    """``ledger.execute`` for a market order (history row ``o``) on position ``target`` (-1: none):
    open, add to, reduce, close or reverse (netting, spec 5.7) a position."""
    sym, ticket = oi[o, O_SYM], oi[o, O_TICKET]
    strat, sid, magic = oi[o, O_STRAT], oi[o, O_SID], oi[o, O_MAGIC]
    deal_type = DEAL_BUY if is_buy else DEAL_SELL
    if target >= 0 and (pi[target, P_TYPE] == 0) != is_buy:
        oi[o, O_POSITION] = pi[target, P_TICKET]
        if vol <= pf[target, P_VOLUME] + 1e-9:
            close_part(
                pi, pf, di, df, cnt, balance, si, sf, commission_on, target, vol, price, t, ticket, sid
            )
            return
        rest = rules.round_to(vol - pf[target, P_VOLUME], 8)
        closed = pf[target, P_VOLUME]
        profit = profit_of(si, sf, sym, pi[target, P_TYPE] == 0, closed, pf[target, P_OPEN], price)
        commission = commission_of(si, sf, commission_on, sym, vol, price)
        swap = rules.round_to(pf[target, P_SWAP], 2)
        add_deal(
            di, df, cnt, balance, ticket, t, deal_type, ENTRY_INOUT, pi[target, P_TICKET], sym, vol, price,
            commission, swap, profit, strat, sid, magic, sid,
        )  # fmt: skip
        pi[target, P_TYPE] = 0 if is_buy else 1
        pf[target, P_VOLUME], pf[target, P_OPEN], pf[target, P_SWAP] = rest, price, 0.0
        pf[target, P_SL], pf[target, P_TP], pi[target, P_CURSOR] = sl, tp, cursor
        pi[target, P_UPDATE] = t
        return
    commission = commission_of(si, sf, commission_on, sym, vol, price)
    if target >= 0:  # netting: add, volume-weighted open price
        new_volume = rules.round_to(pf[target, P_VOLUME] + vol, 8)
        pf[target, P_OPEN] = rules.netted_open(
            pf[target, P_OPEN], pf[target, P_VOLUME], price, vol, si[sym, S_DIGITS]
        )
        pf[target, P_VOLUME] = new_volume
        pi[target, P_UPDATE] = t
        if sl != 0.0 or tp != 0.0:  # ledger.watch_from: new levels watched from t on
            pf[target, P_SL], pf[target, P_TP], pi[target, P_CURSOR] = sl, tp, cursor
        oi[o, O_POSITION] = pi[target, P_TICKET]
        add_deal(
            di, df, cnt, balance, ticket, t, deal_type, ENTRY_IN, pi[target, P_TICKET], sym, vol, price,
            commission, 0.0, 0.0, strat, sid, magic, sid,
        )  # fmt: skip
        return
    oi[o, O_POSITION] = ticket
    j = cnt[C_POS]
    cnt[C_POS] += 1
    pi[j, P_TICKET], pi[j, P_SYM], pi[j, P_TYPE], pi[j, P_TIME] = ticket, sym, 0 if is_buy else 1, t
    pi[j, P_UPDATE], pi[j, P_STRAT], pi[j, P_SID], pi[j, P_MAGIC], pi[j, P_CSID] = t, strat, sid, magic, sid
    pf[j, P_VOLUME], pf[j, P_OPEN], pf[j, P_SWAP] = vol, price, 0.0
    pf[j, P_SL], pf[j, P_TP], pi[j, P_CURSOR] = sl, tp, cursor
    add_deal(
        di, df, cnt, balance, ticket, t, deal_type, ENTRY_IN, ticket, sym, vol, price, commission, 0.0, 0.0,
        strat, sid, magic, sid,
    )  # fmt: skip
