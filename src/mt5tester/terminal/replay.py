"""Time between decision points: SL/TP hits, pending activations and expiries, swap rollovers and
stop-outs, replayed in time order on the finest data the tester mode allows (spec 5.5, 5.10, 5.11, 6).
``advance(m, s, t)`` is the entry; numba kernels (``kernels``) and tick generation (``ticks``) do the
scans. Scans read the ``Market`` only (and move a position's or order's cursor); fills go through
``ledger``.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from mt5tester.model import constants as C
from mt5tester.model.bars import Bars
from mt5tester.model.time import NEVER_NS
from mt5tester.model.trade import BUY_TYPES, Deal, Order, Position
from mt5tester.terminal import kernels, ledger, money
from mt5tester.terminal import ticks as tickgen
from mt5tester.terminal.core import rules
from mt5tester.terminal.records import MINUTE_NS, TickStream
from mt5tester.terminal.state import Market, TradeState


def _extremes(m: Market, symbol: str) -> tuple[float, float]:
    """(lowest Bid, highest Ask) over all trigger bars of a symbol, computed once."""
    if symbol not in m.memo.extremes:
        bars = m.trigger_bars[symbol]
        sp = _trigger_spread(m, symbol) * m.specs[symbol].point
        m.memo.extremes[symbol] = (float(bars.low.min()), float((bars.high + sp).max()))
    return m.memo.extremes[symbol]


def _trigger_spread(m: Market, symbol: str) -> np.ndarray:
    """Spread in points of each trigger bar (the market's for M1, else the bars' own), cached."""
    cached = m.memo.spread.get(symbol)
    if cached is None:
        bars = m.trigger_bars[symbol]
        if bars is m.prices.m1[symbol]:
            cached = m.prices.spread[symbol]
        elif bars.spread.any():
            cached = np.maximum(bars.spread, 0).astype(np.int32)
        else:
            cached = np.full(len(bars), m.specs[symbol].spread, np.int32)
        m.memo.spread[symbol] = cached
    return cached


def _direction(m: Market, symbol: str) -> np.ndarray:
    """Up/down direction of every trigger bar (MT5's doji rule), computed once per symbol."""
    if symbol not in m.memo.directions:
        b = m.trigger_bars[symbol]
        m.memo.directions[symbol] = tickgen.bar_directions(b.open, b.close, tickgen.BULLISH)
    return m.memo.directions[symbol]


def _ticks(m: Market, symbol: str, t_from: int, t_to: int) -> TickStream:
    """Ticks with t_from <= time < t_to: recorded (real_ticks) or generated from M1 (every_tick)."""
    if m.settings.tick_mode == "real_ticks":
        st = m.real_ticks[symbol]
        i, j = np.searchsorted(st.time, t_from, "left"), np.searchsorted(st.time, t_to, "left")
        return TickStream(st.time[i:j], st.bid[i:j], st.ask[i:j])
    m1 = m.prices.m1[symbol]
    a = max(int(m1.time.searchsorted(t_from, "right")) - 1, 0)
    b = int(m1.time.searchsorted(t_to, "left"))
    cached = m.memo.ticks.get(symbol)
    if cached is None or not (cached[0] <= a and b <= cached[1]):
        eff = Bars(
            symbol,
            m1.timeframe,
            m1.time,
            m1.open,
            m1.high,
            m1.low,
            m1.close,
            m1.tick_volume,
            m.prices.spread[symbol],
        )
        gen = tickgen.generate_ticks(
            eff,
            m.specs[symbol].point,
            m.settings.seed,
            a,
            b,
            _direction(m, symbol) if m.trigger_bars is m.prices.m1 else None,
        )
        cached = (a, b, TickStream(gen.time, gen.bid, gen.ask))
        m.memo.ticks[symbol] = cached
    st = cached[2]
    i, j = np.searchsorted(st.time, t_from, "left"), np.searchsorted(st.time, t_to, "left")
    return TickStream(st.time[i:j], st.bid[i:j], st.ask[i:j])


def _scan_position_ticks(m: Market, p: Position, t_to: int) -> tuple[int, int, float, bool, int] | None:
    st = _ticks(m, p.symbol, max(p.tick_from, p.time + 1), t_to)
    i, kind, price = tickgen.first_touch_ticks(
        st.bid, st.ask, 0, len(st.time), p.type == C.POSITION_TYPE_BUY, p.sl, p.tp
    )
    if kind == kernels.NONE:
        p.tick_from = t_to
        return None
    when = int(st.time[i])
    return when, int(kind), float(price), False, m.trigger_index(p.symbol, when)


@dataclass(frozen=True, slots=True)
class _Reach:
    """What the scans of one symbol's positions and orders up to t share: computed once per replay,
    not once per position (a portfolio scans ~25 positions at each of ~12k points)."""

    stop: int  # trigger bars closed by t (``Market.complete_index``)
    bars: Bars  # the trigger bars
    spread: np.ndarray  # their spreads in points (``_trigger_spread``)
    point: float
    on_m1: bool  # the trigger bars are M1 (``Market.on_m1``)
    forming: bool  # on M1: the bar at ``stop`` opened before t and is still forming at t


def _reach(m: Market, symbol: str, t: int) -> _Reach:
    stop = m.complete_index(symbol, t)
    bars = m.trigger_bars[symbol]
    on_m1 = m.on_m1(symbol)
    forming = on_m1 and stop < len(bars) and int(bars.time[stop]) < t
    return _Reach(stop, bars, _trigger_spread(m, symbol), m.specs[symbol].point, on_m1, forming)


AHEAD = 1440  # trigger bars scanned past t when none hits before it (a day of M1 bars)
Clear = dict[int, tuple[tuple[int, float, float, int], int, bool, int]]


def _scan_position(
    m: Market, p: Position, t: int, r: _Reach, clear: Clear
) -> tuple[int, int, float, bool, int] | None:
    """(time, kind, price, ambiguous, index) of p's first SL/TP hit before t, else None: on the
    trigger bars closed by t, then on the ticks so far of the M1 bar forming at t.

    A scan that finds no hit before t goes on up to ``AHEAD`` bars further (the market's own bars,
    never shown to a strategy) and keeps, per ticket, how far p's levels are known untouched
    (``clear``: levels, first bar, its no-gap flag, first bar not known clean): the following points
    skip the scan while they end inside that stretch. The first hit is the first hit however far a
    scan reaches, so the hits, and their order, are the same."""
    stop, bars = r.stop, r.bars
    if _placed_inside(r, p):  # that bar is closed now: its ticks after p opened first
        hit = _scan_inside(m, p, p.cursor, t)
        if hit is not None:
            return hit
        p.cursor, p.no_gap_at_cursor = p.cursor + 1, False
    is_buy = p.type == C.POSITION_TYPE_BUY
    levels = (p.type, p.sl, p.tp, p.time_update)
    known = clear.get(p.ticket)
    if (
        known is not None
        and known[0] == levels
        and stop <= known[3]
        and (p.cursor > known[1] or (p.cursor == known[1] and p.no_gap_at_cursor == known[2]))
    ):  # bars [cursor, stop) lie in a stretch scanned clean (a later first bar only drops gap checks)
        i, kind, price, ambiguous = -1, kernels.NONE, 0.0, False
    else:
        end = min(len(bars), max(stop, p.cursor) + AHEAD)
        i, kind, price, ambiguous = kernels.first_trigger(
            bars.open, bars.high, bars.low, r.spread, r.point, p.cursor, end, is_buy, p.sl, p.tp,
            p.no_gap_at_cursor,
        )  # fmt: skip
        if kind == kernels.NONE or i >= stop:
            if len(clear) > 65_536:
                clear.clear()
            clear[p.ticket] = (levels, p.cursor, p.no_gap_at_cursor, end if kind == kernels.NONE else i)
            i, kind, price, ambiguous = -1, kernels.NONE, 0.0, False
    if kind == kernels.NONE:
        p.cursor, p.no_gap_at_cursor = max(p.cursor, stop), p.no_gap_at_cursor and stop <= p.cursor
        return _scan_inside(m, p, stop, t) if _forming(r, p) else None
    if ambiguous and m.settings.intrabar == "ohlc_path":
        # MT5's 1-minute OHLC path (Open, then Low/High by the bar's direction, Close) decides.
        _, kind, price = tickgen.first_touch_ohlc(
            bars.open, bars.high, bars.low, bars.close, _direction(m, p.symbol), r.spread, r.point,
            i, i + 1, is_buy, p.sl, p.tp,
        )  # fmt: skip
    return int(bars.time[i]), int(kind), float(price), bool(ambiguous), i


def _placed_inside(r: _Reach, x: Position | Order) -> bool:
    """x was placed inside its cursor's M1 bar (after its opening tick) and that bar is closed."""
    return r.on_m1 and x.cursor < r.stop and int(r.bars.time[x.cursor]) < _placed(x)


def _forming(r: _Reach, x: Position | Order) -> bool:
    """The M1 bar at x's cursor is the one forming at t (opened before t, not closed)."""
    return r.forming and x.cursor == r.stop


def _scan_inside(m: Market, x: Position | Order, k: int, t: int) -> tuple[int, int, float, bool, int] | None:
    """First touch of x's levels on the 1-minute OHLC ticks of M1 bar k after x was placed and
    before t (a bar still forming at t, or the one x was placed inside of): (tick time, kind, fill,
    False, k). Spec 5.4 on the tester's path: a level met at the bar's opening tick fills there
    (a gap), one passed between two ticks at the level, as on whole bars."""
    placed = _placed(x)
    bar_open = int(m.prices.m1[x.symbol].time[k])
    times, bids, asks = m.prices.tick_path(x.symbol, k)
    # Placed at or after the bar's opening tick: only the later ticks count (the opening one was
    # the fill itself, or came before).
    keep = np.flatnonzero((times > (placed if placed >= bar_open else -1)) & (times < t))
    if not len(keep):
        return None
    if isinstance(x, Position):
        is_buy, levels = x.type == C.POSITION_TYPE_BUY, (x.sl, x.tp, 0.0, 0.0)
    else:
        limit = x.type in (C.ORDER_TYPE_BUY_LIMIT, C.ORDER_TYPE_SELL_LIMIT)
        is_buy = x.type in BUY_TYPES
        levels = (0.0, 0.0, x.price_open, 0.0) if limit else (0.0, 0.0, 0.0, x.price_open)
    i, kind, price = tickgen.first_touch_ticks(bids[keep], asks[keep], 0, len(keep), is_buy, *levels)
    if kind == kernels.NONE:
        return None
    when = int(times[keep[i]])
    return when, int(kind), float(price if when == bar_open else levels[int(kind) - 1]), False, k


def _scan_order_ticks(m: Market, o: Order, t_to: int) -> tuple[int, int, float, int] | None:
    is_buy = o.type in BUY_TYPES
    limit = o.type in (C.ORDER_TYPE_BUY_LIMIT, C.ORDER_TYPE_SELL_LIMIT)
    st = _ticks(m, o.symbol, max(o.tick_from, o.time_setup + 1), t_to)
    i, kind, price = tickgen.first_touch_ticks(
        st.bid,
        st.ask,
        0,
        len(st.time),
        is_buy,
        0.0,
        0.0,
        o.price_open if limit else 0.0,
        0.0 if limit else o.price_open,
    )
    when = int(st.time[i]) if kind != kernels.NONE else t_to
    if o.time_expiration and o.time_expiration <= when and o.time_expiration < t_to:
        return o.time_expiration, 2, 0.0, m.trigger_index(o.symbol, o.time_expiration)
    if kind == kernels.NONE:
        o.tick_from = t_to
        return None
    return when, 1, float(price), m.trigger_index(o.symbol, when)


def _scan_order(m: Market, o: Order, t: int, r: _Reach) -> tuple[int, int, float, int] | None:
    """(time, what, price, index): activation (what 1) or expiry (what 2) before t, on the trigger
    bars closed by t, then on the ticks so far of the M1 bar forming at t."""
    stop, bars = r.stop, r.bars
    if _placed_inside(r, o):  # that bar is closed now: its ticks after the placement first
        hit = _scan_inside(m, o, o.cursor, t)
        if hit is not None:
            return _unless_expired(o, hit)
        o.cursor, o.no_gap_at_cursor = o.cursor + 1, False
    trigger_type = {
        C.ORDER_TYPE_BUY_STOP_LIMIT: C.ORDER_TYPE_BUY_STOP,
        C.ORDER_TYPE_SELL_STOP_LIMIT: C.ORDER_TYPE_SELL_STOP,
    }.get(o.type, o.type)
    i, price = kernels.first_activation(
        bars.open,
        bars.high,
        bars.low,
        r.spread,
        r.point,
        o.cursor,
        stop,
        trigger_type,
        o.price_open,
        o.no_gap_at_cursor,
    )
    if o.time_expiration:
        j = int(bars.time.searchsorted(o.time_expiration, "left"))
        if j < stop and (i < 0 or j <= i):
            return o.time_expiration, 2, 0.0, j
    if i < 0:
        o.cursor, o.no_gap_at_cursor = max(o.cursor, stop), o.no_gap_at_cursor and stop <= o.cursor
        hit = _scan_inside(m, o, stop, t) if _forming(r, o) else None
        if hit is not None:
            return _unless_expired(o, hit)
        return (o.time_expiration, 2, 0.0, stop) if o.time_expiration and o.time_expiration < t else None
    return int(bars.time[i]), 1, float(price), i


def _unless_expired(o: Order, hit: tuple[int, int, float, bool, int]) -> tuple[int, int, float, int]:
    """An activation found on ticks, or the order's expiry when that came first."""
    if o.time_expiration and o.time_expiration <= hit[0]:
        return o.time_expiration, 2, 0.0, hit[4]
    return hit[0], 1, hit[2], hit[4]


def _activate(m: Market, s: TradeState, o: Order, t: int, price: float, index: int) -> Deal | None:
    spec = m.specs[o.symbol]
    price = float(rules.round_to(price, spec.digits))
    if o.type in (C.ORDER_TYPE_BUY_STOP_LIMIT, C.ORDER_TYPE_SELL_STOP_LIMIT):
        # The stop price was reached: a limit order at `stoplimit` replaces it (spec 5.3).
        ledger.finish_order(s, o, C.ORDER_STATE_FILLED, t)
        limit_type = (
            C.ORDER_TYPE_BUY_LIMIT if o.type == C.ORDER_TYPE_BUY_STOP_LIMIT else C.ORDER_TYPE_SELL_LIMIT
        )
        lim = Order(
            ledger.new_ticket(s),
            o.symbol,
            limit_type,
            o.volume_current,
            o.volume_current,
            o.price_stoplimit,
            o.sl,
            o.tp,
            0.0,
            t,
            o.type_time,
            C.ORDER_FILLING_RETURN,
            o.time_expiration,
            magic=o.magic,
            comment=o.comment,
            origin=o.ticket,
            cursor=index,
            no_gap_at_cursor=True,
        )
        s.orders.append(lim)
        return None
    is_buy = o.type in BUY_TYPES
    target = None
    if not m.settings.hedging:
        target = next((p for p in s.positions if p.symbol == o.symbol), None)
    after = [
        *s.positions,
        Position(0, 0, o.symbol, 0 if is_buy else 1, o.volume_current, price, 0, 0, t, t),
    ]
    adds = target is None or (target.type == 0) == is_buy
    if adds and money.equity(m, s, t) - money.margin(m, s, t, after) < 0:
        ledger.finish_order(s, o, C.ORDER_STATE_REJECTED, t)  # no money at activation: the order is rejected
        return None
    ledger.finish_order(s, o, C.ORDER_STATE_FILLED, t)
    o.price_done = price
    return ledger.execute(
        m,
        s,
        o,
        is_buy,
        o.volume_current,
        price,
        t,
        o.sl,
        o.tp,
        target,
        C.DEAL_REASON_EXPERT,
        no_gap_index=index,
    )


def quiet_until(m: Market, s: TradeState) -> int:
    """The time before which ``advance`` has nothing to replay in the state as it is (only the clock
    moves): the next swap rollover when no order is pending and nothing is open or the book is quiet
    (no SL/TP, stop-out out of reach at any price of the history); else -1 (replay at every point).
    Valid until the state changes (a request, a replay)."""
    positions = s.positions
    if not s.orders and (
        not positions
        or (s.memo.quiet == (len(s.deals), s.next_rollover) and not any(p.sl or p.tp for p in positions))
    ):
        return _rollover_due(m, s)
    return -1


def advance(m: Market, s: TradeState, t: int) -> list[Deal]:
    """Replay everything between the previous point and t, in time order; return the deals made."""
    if t < quiet_until(m, s):  # nothing can happen before t
        if t > s.now:
            s.now = t
        return []
    out: list[Deal] = []
    while (r := _rollover_due(m, s)) <= t:
        weekday = int(m.rollover_days[s.next_rollover])
        s.next_rollover += 1
        out += _replay(m, s, r)
        for p in s.positions:
            spec = m.specs[p.symbol]
            days = 3 if weekday == spec.swap_rollover3days else (0 if weekday in (0, 6) else 1)
            if days:
                p.swap = float(rules.round_to(p.swap + days * money.swap_charge(m, p, r), 2))
        s.memo.floating = None  # swaps changed with no deal
    out += _replay(m, s, t)
    s.now = max(s.now, t)
    key = (len(s.deals), s.next_rollover)
    safe = s.memo.safe_key is not None and s.memo.safe_key[:2] == key
    s.memo.quiet = key if safe and not s.orders else None
    return out


def _rollover_due(m: Market, s: TradeState) -> int:
    """Time of the next swap rollover (NEVER_NS after the last), cached per rollover index."""
    k = s.next_rollover
    if s.memo.rollover_at[0] != k:
        s.memo.rollover_at = (k, int(m.rollovers[k]) if k < len(m.rollovers) else NEVER_NS)
    return s.memo.rollover_at[1]


def _replay(m: Market, s: TradeState, t: int) -> list[Deal]:
    """SL/TP hits, pending activations and expiries, and stop-outs before t, earliest first."""
    out: list[Deal] = []
    heap: list[tuple[int, int, int, int]] = []  # (time, priority, ticket, generation)
    found: dict[int, tuple] = {}

    ticks_mode = m.settings.tick_mode != "bars"
    reaches: dict[str, _Reach] = {}  # per symbol, for t
    clear = s.memo.clear

    def reach(symbol: str) -> _Reach:
        r = reaches.get(symbol)
        if r is None:
            r = reaches[symbol] = _reach(m, symbol, t)
        return r

    def push_position(p: Position) -> None:
        r = _scan_position_ticks(m, p, t) if ticks_mode else _scan_position(m, p, t, reach(p.symbol), clear)
        if r is not None:
            found[p.ticket] = ("p", p, r)
            heapq.heappush(heap, (r[0], 0, p.ticket, 0))

    def push_order(o: Order) -> None:
        r = _scan_order_ticks(m, o, t) if ticks_mode else _scan_order(m, o, t, reach(o.symbol))
        if r is not None:
            found[o.ticket] = ("o", o, r)
            heapq.heappush(heap, (r[0], 1, o.ticket, 0))

    for p in s.positions:
        if p.sl or p.tp:
            push_position(p)
    for o in s.orders:
        push_order(o)
    while True:
        so = _stop_out_time(m, s, heap[0][0] if heap else t)
        if so is not None:
            when, victim, price = so
            s.stop_outs += 1
            found.pop(victim.ticket, None)
            out.append(
                ledger.close_position(
                    m, s, victim, when, price, C.DEAL_REASON_SO, f"[so {money.margin_level(m, s, when):.2f}%]"
                )
            )
            continue
        if not heap:
            break
        when, _, ticket, _ = heapq.heappop(heap)
        item = found.pop(ticket, None)
        if item is None:
            continue
        kind, obj, r = item
        if kind == "p":
            p = obj
            if not any(q is p for q in s.positions):
                continue
            _, hit, price, ambiguous, _ = r
            s.ambiguous_bars += int(ambiguous)
            spec = m.specs[p.symbol]
            price = float(rules.round_to(price, spec.digits))
            if hit == kernels.SL:
                out.append(
                    ledger.close_position(
                        m, s, p, when, price, C.DEAL_REASON_SL, f"[sl {p.sl:.{spec.digits}f}]"
                    )
                )
            else:
                out.append(
                    ledger.close_position(
                        m, s, p, when, price, C.DEAL_REASON_TP, f"[tp {p.tp:.{spec.digits}f}]"
                    )
                )
        else:
            o = obj
            if not any(x is o for x in s.orders):
                continue
            _, what, price, index = r
            if what == 2:
                ledger.finish_order(s, o, C.ORDER_STATE_EXPIRED, when)
                continue
            d = _activate(m, s, o, when, price, index)
            if d is not None:
                out.append(d)
                for p in s.positions:
                    if (
                        p.ticket not in found
                        and (p.sl or p.tp)
                        and p.cursor == index
                        and p.symbol == o.symbol
                    ):
                        push_position(p)
            else:
                for x in s.orders:
                    if x.ticket not in found:
                        push_order(x)
    return out


# ------------------------------------------------------------------------------- stop-out
def _stop_out_time(m: Market, s: TradeState, before: int) -> tuple[int, Position, float] | None:
    """First trigger-bar time before ``before`` at which the margin level falls to the stop-out
    level, the position to close (the largest loss, spec 5.11) and its close price.

    Floating profit is evaluated at each bar's worst price for each position (a buy at the bar's
    low Bid, a sell at its high Ask) and margin is held at its value at the interval start [U].
    """
    if not s.positions:
        return None
    mg = money.margin(m, s, s.now)
    if mg <= 0:
        return None
    cfg = m.settings
    floor = cfg.stop_out / 100.0 * mg if cfg.stop_out_mode == "percent" else cfg.stop_out
    # Cheapest bound: every position at the worst price of its whole history cannot reach the floor.
    # It changes only with a deal, a swap charge (rollover) or, for positions converted through
    # another pair, the rate: cached on (deals, rollovers, margin) when no conversion is involved.
    key = (len(s.deals), s.next_rollover, mg)
    if s.memo.safe_key == key:
        return None
    bound = s.balance + sum(p.swap for p in s.positions)
    converted = False
    kept = m.memo.worst_profit
    for p in s.positions:
        pos_key = (p.symbol, p.type, p.volume, p.price_open)
        worst_profit = kept.get(pos_key)
        if worst_profit is None:
            spec = m.specs[p.symbol]
            lo_all, hi_all = _extremes(m, p.symbol)
            worst = lo_all if p.type == 0 else hi_all
            worst_profit = money.profit_raw(m, spec, p.type == 0, p.volume, p.price_open, worst, s.now)
            if money.conversion_kind(m, spec) == rules.CONV_RATE:  # read a rate at now: not kept
                converted = True
            else:
                if len(kept) > 65_536:
                    kept.clear()
                kept[pos_key] = worst_profit
        bound += worst_profit
    if bound > floor:
        if not converted:
            s.memo.safe_key = key
        return None
    # A cheap bound first: the worst price of each position over the whole interval.
    per_pos = []
    worst_total = s.balance + sum(p.swap for p in s.positions)
    for p in s.positions:
        bars = m.trigger_bars[p.symbol]
        # bars closed by `before` and not yet checked (a bar forming at `now` is checked once closed)
        lo, hi = m.complete_index(p.symbol, s.now), m.complete_index(p.symbol, before)
        if hi <= lo:
            worst_total += money.position_profit(m, p, s.now)[0]
            per_pos.append((p, lo, hi))
            continue
        spec = m.specs[p.symbol]
        sp = _trigger_spread(m, p.symbol)[lo:hi] * spec.point
        worst = float(bars.low[lo:hi].min()) if p.type == 0 else float((bars.high[lo:hi] + sp).max())
        worst_total += money.profit(m, spec, p.type == 0, p.volume, p.price_open, worst, s.now)
        per_pos.append((p, lo, hi))
    if worst_total > floor:
        return None
    # Precise: equity on the union of bar times.
    times = np.unique(np.concatenate([m.trigger_bars[p.symbol].time[lo:hi] for p, lo, hi in per_pos]))
    if not len(times):
        return None
    equity = np.full(len(times), s.balance + sum(p.swap for p in s.positions))
    profits = []
    for p, _, _ in per_pos:
        bars = m.trigger_bars[p.symbol]
        spec = m.specs[p.symbol]
        idx = np.searchsorted(bars.time, times, "right") - 1
        idx = np.clip(idx, 0, len(bars) - 1)
        sp = _trigger_spread(m, p.symbol)[idx] * spec.point
        price = bars.low[idx] if p.type == 0 else bars.high[idx] + sp
        sign = 1 if p.type == 0 else -1
        unit = money.profit_raw(
            m, spec, p.type == 0, p.volume, p.price_open, p.price_open + sign * spec.point, s.now
        )
        prof = (price - p.price_open) / spec.point * sign * unit
        profits.append((p, prof, price))
        equity += prof
    below = np.flatnonzero(equity <= floor)
    if not len(below):
        return None
    k = int(below[0])
    victim, _, price = min(profits, key=lambda x: x[1][k])
    spec = m.specs[victim.symbol]
    return int(times[k]), victim, float(rules.round_to(float(price[k]), spec.digits))


def _placed(x: Position | Order) -> int:
    """When x got its current levels: a position's last change (open, SL/TP, add, reversal), an order's
    placement. Ticks before it were checked against the levels it had then."""
    return x.time_update if isinstance(x, Position) else x.time_setup


def rollover_schedule(start_ns: int, end_ns: int, server_tz: str) -> tuple[np.ndarray, np.ndarray]:
    """Server midnights in (start, end] as UTC ns, with the DAY_OF_WEEK_* (Sunday 0) of the day each ends."""
    import pandas as pd

    from mt5tester.model.time import parse_server_tz

    tz = parse_server_tz(server_tz)
    lo = pd.Timestamp(start_ns, tz="UTC").tz_convert(tz).normalize()
    hi = pd.Timestamp(end_ns, tz="UTC").tz_convert(tz).normalize() + pd.Timedelta(days=1)
    days = pd.date_range(lo.tz_localize(None), hi.tz_localize(None), freq="D")
    midnights = days.tz_localize(tz, nonexistent="shift_forward", ambiguous=True)
    utc = midnights.tz_convert("UTC").as_unit("ns").asi8
    ended = (days - pd.Timedelta(days=1)).day_of_week  # Monday 0 .. Sunday 6
    dow = ((np.asarray(ended) + 1) % 7).astype(np.int64)  # MT5 DAY_OF_WEEK_*: Sunday 0 .. Saturday 6
    keep = (utc > start_ns) & (utc <= end_ns)
    return utc[keep].astype(np.int64), dow[keep]


def real_tick_stream(
    m1: Bars,
    spread: np.ndarray,
    real_time: np.ndarray,
    real_bid: np.ndarray,
    real_ask: np.ndarray,
    point: float,
    seed: int,
) -> TickStream:
    """MT5 "every tick based on real ticks" (spec 6.1, model 4): the recorded ticks inside minutes that
    have an M1 bar; a minute with a bar but no recorded tick gets generated ticks; recorded ticks
    outside every M1 bar are dropped (M1 is taken as the more reliable history)."""
    minute = real_time - real_time % MINUTE_NS
    bar_of_tick = np.searchsorted(m1.time, minute, "left")
    inside = (bar_of_tick < len(m1)) & (m1.time[np.minimum(bar_of_tick, len(m1) - 1)] == minute)
    has_ticks = np.zeros(len(m1), bool)
    has_ticks[bar_of_tick[inside]] = True
    eff = Bars(m1.symbol, m1.timeframe, m1.time, m1.open, m1.high, m1.low, m1.close, m1.tick_volume, spread)
    gen = tickgen.generate_ticks(eff, point, seed)
    gen_bar = np.searchsorted(m1.time, gen.time - gen.time % MINUTE_NS, "left")
    keep_gen = ~has_ticks[np.minimum(gen_bar, len(m1) - 1)]
    time = np.concatenate([real_time[inside], gen.time[keep_gen]])
    order = np.argsort(time, kind="stable")
    bid = np.concatenate([real_bid[inside], gen.bid[keep_gen]])[order]
    ask = np.concatenate([real_ask[inside], gen.ask[keep_gen]])[order]
    return TickStream(time[order], bid, ask)
