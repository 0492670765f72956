"""Time between decision points: SL/TP hits, pending activations and expiries, swap rollovers and
stop-outs, replayed in time order on the finest data the tester mode allows (spec 5.5, 5.10, 5.11, 6).
A mixin of ``TradeServer``; numba kernels (``kernels``) and tick generation (``ticks``) do the scans.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import numpy as np

from mt5tester.model.bars import Bars
from mt5tester.terminal import constants as C
from mt5tester.terminal import kernels
from mt5tester.terminal import ticks as tickgen
from mt5tester.terminal.account import Account
from mt5tester.terminal.records import (
    BUY_TYPES,
    MINUTE_NS,
    NEVER_NS,
    Deal,
    Order,
    Position,
    TickStream,
)


class Replay(Account):
    # State and order handling of TradeServer used here (declared for the type checker).
    trigger_bars: dict[str, Bars] | None
    orders: list[Order]
    history_orders: list[Order]
    ambiguous_bars: int
    stop_outs: int
    rollovers: np.ndarray
    rollover_days: np.ndarray
    _next_rollover: int
    _rollover_at: tuple[int, int]
    _quiet: tuple[int, int] | None
    _safe_key: tuple[int, int, float] | None
    _directions: dict[str, np.ndarray]
    _tick_cache: dict[str, tuple[int, int, TickStream]]
    _extreme_cache: dict[str, tuple[float, float]]
    _spread_cache: dict[str, np.ndarray]
    _close_cache: dict[str, np.ndarray]
    close_position: Callable[[Position, int, float, int, str], Deal]
    _execute: Callable[..., Deal]
    _ticket: Callable[[], int]

    # ------------------------------------------------------------------------------ the replay
    def _trigger_index(self, symbol: str, t: int) -> int:
        """Index of the first trigger bar at or after t."""
        assert self.trigger_bars is not None
        return int(self.trigger_bars[symbol].time.searchsorted(t, "left"))

    def _complete_index(self, symbol: str, t: int) -> int:
        """Number of trigger bars closed by t. Only those are replayed whole: at a time inside a bar
        (a script's sleep) its later ticks are not known yet (ARCHITECTURE 2, one quote at t)."""
        assert self.trigger_bars is not None
        bars = self.trigger_bars[symbol]
        if bars is self.market.m1[symbol]:
            return int(bars.time.searchsorted(t - MINUTE_NS, "right"))
        closes = self._close_cache.get(symbol)
        if closes is None:
            # A bar is over at its period's end or at the next bar's open, whichever comes first
            # (a server day shortened by DST ends at the next day's open).
            nxt = np.append(np.asarray(bars.time[1:], np.int64), NEVER_NS)
            closes = self._close_cache[symbol] = np.minimum(bars.close_time, nxt)
        return int(closes.searchsorted(t, "right"))

    def _entry_index(self, symbol: str, t: int) -> int:
        """First trigger bar to watch for an order or position placed at t: on M1, the bar t falls
        inside of (only its ticks after t count, ``_scan_inside``); else the first bar opening at or
        after t."""
        assert self.trigger_bars is not None
        bars = self.trigger_bars[symbol]
        k = self._trigger_index(symbol, t)
        inside = k > 0 and (k == len(bars) or int(bars.time[k]) > t) and t - int(bars.time[k - 1]) < MINUTE_NS
        return k - 1 if inside and bars is self.market.m1[symbol] else k

    def _extremes(self, symbol: str) -> tuple[float, float]:
        """(lowest Bid, highest Ask) over all trigger bars of a symbol, computed once."""
        if symbol not in self._extreme_cache:
            assert self.trigger_bars is not None
            bars = self.trigger_bars[symbol]
            sp = self._trigger_spread(symbol) * self.specs[symbol].point
            self._extreme_cache[symbol] = (float(bars.low.min()), float((bars.high + sp).max()))
        return self._extreme_cache[symbol]

    def _trigger_spread(self, symbol: str) -> np.ndarray:
        """Spread in points of each trigger bar (the market's for M1, else the bars' own), cached."""
        cached = self._spread_cache.get(symbol)
        if cached is None:
            assert self.trigger_bars is not None
            bars = self.trigger_bars[symbol]
            if bars is self.market.m1[symbol]:
                cached = self.market.spread[symbol]
            elif bars.spread.any():
                cached = np.maximum(bars.spread, 0).astype(np.int32)
            else:
                cached = np.full(len(bars), self.specs[symbol].spread, np.int32)
            self._spread_cache[symbol] = cached
        return cached

    def _direction(self, symbol: str) -> np.ndarray:
        """Up/down direction of every trigger bar (MT5's doji rule), computed once per symbol."""
        if symbol not in self._directions:
            assert self.trigger_bars is not None
            b = self.trigger_bars[symbol]
            self._directions[symbol] = tickgen.bar_directions(b.open, b.close, tickgen.BULLISH)
        return self._directions[symbol]

    def _ticks(self, symbol: str, t_from: int, t_to: int) -> TickStream:
        """Ticks with t_from <= time < t_to: recorded (real_ticks) or generated from M1 (every_tick)."""
        if self.settings.tick_mode == "real_ticks":
            st = self.real_ticks[symbol]
            i, j = np.searchsorted(st.time, t_from, "left"), np.searchsorted(st.time, t_to, "left")
            return TickStream(st.time[i:j], st.bid[i:j], st.ask[i:j])
        m1 = self.market.m1[symbol]
        a = max(int(m1.time.searchsorted(t_from, "right")) - 1, 0)
        b = int(m1.time.searchsorted(t_to, "left"))
        cached = self._tick_cache.get(symbol)
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
                self.market.spread[symbol],
            )
            gen = tickgen.generate_ticks(
                eff,
                self.specs[symbol].point,
                self.settings.seed,
                a,
                b,
                self._direction(symbol) if self.trigger_bars is self.market.m1 else None,
            )
            cached = (a, b, TickStream(gen.time, gen.bid, gen.ask))
            self._tick_cache[symbol] = cached
        st = cached[2]
        i, j = np.searchsorted(st.time, t_from, "left"), np.searchsorted(st.time, t_to, "left")
        return TickStream(st.time[i:j], st.bid[i:j], st.ask[i:j])

    def _scan_position_ticks(self, p: Position, t_to: int) -> tuple[int, int, float, bool, int] | None:
        st = self._ticks(p.symbol, max(p.tick_from, p.time + 1), t_to)
        i, kind, price = tickgen.first_touch_ticks(
            st.bid, st.ask, 0, len(st.time), p.type == C.POSITION_TYPE_BUY, p.sl, p.tp
        )
        if kind == kernels.NONE:
            p.tick_from = t_to
            return None
        when = int(st.time[i])
        return when, int(kind), float(price), False, self._trigger_index(p.symbol, when)

    def _scan_position(self, p: Position, t: int) -> tuple[int, int, float, bool, int] | None:
        """(time, kind, price, ambiguous, index) of p's first SL/TP hit before t, else None: on the
        trigger bars closed by t, then on the ticks so far of the M1 bar forming at t."""
        assert self.trigger_bars is not None
        stop = self._complete_index(p.symbol, t)
        bars = self.trigger_bars[p.symbol]
        spec = self.specs[p.symbol]
        if self._placed_inside(p, stop):  # that bar is closed now: its ticks after p opened first
            hit = self._scan_inside(p, p.cursor, t)
            if hit is not None:
                return hit
            p.cursor, p.no_gap_at_cursor = p.cursor + 1, False
        i, kind, price, ambiguous = kernels.first_trigger(
            bars.open,
            bars.high,
            bars.low,
            self._trigger_spread(p.symbol),
            spec.point,
            p.cursor,
            stop,
            p.type == C.POSITION_TYPE_BUY,
            p.sl,
            p.tp,
            p.no_gap_at_cursor,
        )
        if kind == kernels.NONE:
            p.cursor, p.no_gap_at_cursor = max(p.cursor, stop), p.no_gap_at_cursor and stop <= p.cursor
            return self._scan_inside(p, stop, t) if self._forming(p, stop, t) else None
        if ambiguous and self.settings.intrabar == "ohlc_path":
            # MT5's 1-minute OHLC path (Open, then Low/High by the bar's direction, Close) decides.
            _, kind, price = tickgen.first_touch_ohlc(
                bars.open,
                bars.high,
                bars.low,
                bars.close,
                self._direction(p.symbol),
                self._trigger_spread(p.symbol),
                spec.point,
                i,
                i + 1,
                p.type == C.POSITION_TYPE_BUY,
                p.sl,
                p.tp,
            )
        return int(bars.time[i]), int(kind), float(price), bool(ambiguous), i

    def _placed_inside(self, x: Position | Order, stop: int) -> bool:
        """x was placed inside its cursor's M1 bar (after its opening tick) and that bar is closed."""
        bars = self.market.m1[x.symbol]
        placed = _placed(x)
        return self.trigger_bars is not None and self.trigger_bars[x.symbol] is bars and (
            x.cursor < stop and int(bars.time[x.cursor]) < placed
        )

    def _forming(self, x: Position | Order, stop: int, t: int) -> bool:
        """The M1 bar at x's cursor is the one forming at t (opened before t, not closed)."""
        bars = self.market.m1[x.symbol]
        return (
            self.trigger_bars is not None
            and self.trigger_bars[x.symbol] is bars
            and x.cursor == stop < len(bars)
            and int(bars.time[stop]) < t
        )

    def _scan_inside(self, x: Position | Order, k: int, t: int) -> tuple[int, int, float, bool, int] | None:
        """First touch of x's levels on the 1-minute OHLC ticks of M1 bar k after x was placed and
        before t (a bar still forming at t, or the one x was placed inside of): (tick time, kind, fill,
        False, k). Spec 5.4 on the tester's path: a level met at the bar's opening tick fills there
        (a gap), one passed between two ticks at the level, as on whole bars."""
        placed = _placed(x)
        bar_open = int(self.market.m1[x.symbol].time[k])
        times, bids, asks = self.market.tick_path(x.symbol, k)
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

    def _scan_order_ticks(self, o: Order, t_to: int) -> tuple[int, int, float, int] | None:
        is_buy = o.type in BUY_TYPES
        limit = o.type in (C.ORDER_TYPE_BUY_LIMIT, C.ORDER_TYPE_SELL_LIMIT)
        st = self._ticks(o.symbol, max(o.tick_from, o.time_setup + 1), t_to)
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
            return o.time_expiration, 2, 0.0, self._trigger_index(o.symbol, o.time_expiration)
        if kind == kernels.NONE:
            o.tick_from = t_to
            return None
        return when, 1, float(price), self._trigger_index(o.symbol, when)

    def _scan_order(self, o: Order, t: int) -> tuple[int, int, float, int] | None:
        """(time, what, price, index): activation (what 1) or expiry (what 2) before t, on the trigger
        bars closed by t, then on the ticks so far of the M1 bar forming at t."""
        assert self.trigger_bars is not None
        stop = self._complete_index(o.symbol, t)
        bars = self.trigger_bars[o.symbol]
        spec = self.specs[o.symbol]
        if self._placed_inside(o, stop):  # that bar is closed now: its ticks after the placement first
            hit = self._scan_inside(o, o.cursor, t)
            if hit is not None:
                return self._unless_expired(o, hit)
            o.cursor, o.no_gap_at_cursor = o.cursor + 1, False
        trigger_type = {
            C.ORDER_TYPE_BUY_STOP_LIMIT: C.ORDER_TYPE_BUY_STOP,
            C.ORDER_TYPE_SELL_STOP_LIMIT: C.ORDER_TYPE_SELL_STOP,
        }.get(o.type, o.type)
        i, price = kernels.first_activation(
            bars.open,
            bars.high,
            bars.low,
            self._trigger_spread(o.symbol),
            spec.point,
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
            hit = self._scan_inside(o, stop, t) if self._forming(o, stop, t) else None
            if hit is not None:
                return self._unless_expired(o, hit)
            return (o.time_expiration, 2, 0.0, stop) if o.time_expiration and o.time_expiration < t else None
        return int(bars.time[i]), 1, float(price), i

    @staticmethod
    def _unless_expired(o: Order, hit: tuple[int, int, float, bool, int]) -> tuple[int, int, float, int]:
        """An activation found on ticks, or the order's expiry when that came first."""
        if o.time_expiration and o.time_expiration <= hit[0]:
            return o.time_expiration, 2, 0.0, hit[4]
        return hit[0], 1, hit[2], hit[4]

    def _finish_order(self, o: Order, state: int, t: int) -> None:
        o.state, o.time_done = state, t
        self.orders = [x for x in self.orders if x is not o]
        self.history_orders.append(o)

    def _activate(self, o: Order, t: int, price: float, index: int) -> Deal | None:
        spec = self.specs[o.symbol]
        price = round(price, spec.digits)
        if o.type in (C.ORDER_TYPE_BUY_STOP_LIMIT, C.ORDER_TYPE_SELL_STOP_LIMIT):
            # The stop price was reached: a limit order at `stoplimit` replaces it (spec 5.3).
            self._finish_order(o, C.ORDER_STATE_FILLED, t)
            limit_type = (
                C.ORDER_TYPE_BUY_LIMIT if o.type == C.ORDER_TYPE_BUY_STOP_LIMIT else C.ORDER_TYPE_SELL_LIMIT
            )
            lim = Order(
                self._ticket(),
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
                strategy=o.strategy,
                signal_id=o.signal_id,
                cursor=index,
                no_gap_at_cursor=True,
            )
            self.orders.append(lim)
            return None
        is_buy = o.type in BUY_TYPES
        target = None
        if not self.settings.hedging:
            target = next((p for p in self.positions if p.symbol == o.symbol), None)
        after = [
            *self.positions,
            Position(0, 0, o.symbol, 0 if is_buy else 1, o.volume_current, price, 0, 0, t, t),
        ]
        if (target is None or (target.type == 0) == is_buy) and self.equity(t) - self.margin(t, after) < 0:
            self._finish_order(o, C.ORDER_STATE_REJECTED, t)  # no money at activation: the order is rejected
            return None
        self._finish_order(o, C.ORDER_STATE_FILLED, t)
        o.price_done = price
        return self._execute(
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

    def advance(self, t: int) -> list[Deal]:
        """Replay everything between the previous point and t, in time order; return the deals made."""
        positions = self.positions
        if (
            t < self._rollover_due()
            and not self.orders
            and (
                not positions
                or (
                    self._quiet == (len(self.deals), self._next_rollover)
                    and not any(p.sl or p.tp for p in positions)
                )
            )
        ):
            # No rollover before t, and nothing open or a quiet book (no SL/TP, no orders, stop-out out
            # of reach at any price of the history): nothing can happen before t.
            if t > self.now:
                self.now = t
            return []
        out: list[Deal] = []
        while (r := self._rollover_due()) <= t:
            weekday = int(self.rollover_days[self._next_rollover])
            self._next_rollover += 1
            out += self._replay(r)
            for p in self.positions:
                spec = self.specs[p.symbol]
                days = 3 if weekday == spec.swap_rollover3days else (0 if weekday in (0, 6) else 1)
                if days:
                    p.swap = round(p.swap + days * self.swap_charge(p, r), 2)
        out += self._replay(t)
        self.now = max(self.now, t)
        key = (len(self.deals), self._next_rollover)
        safe = self._safe_key is not None and self._safe_key[:2] == key
        self._quiet = key if safe and not self.orders else None
        return out

    def _rollover_due(self) -> int:
        """Time of the next swap rollover (NEVER_NS after the last), cached per rollover index."""
        k = self._next_rollover
        if self._rollover_at[0] != k:
            self._rollover_at = (k, int(self.rollovers[k]) if k < len(self.rollovers) else NEVER_NS)
        return self._rollover_at[1]

    def _replay(self, t: int) -> list[Deal]:
        """SL/TP hits, pending activations and expiries, and stop-outs before t, earliest first."""
        out: list[Deal] = []
        heap: list[tuple[int, int, int, int]] = []  # (time, priority, ticket, generation)
        found: dict[int, tuple] = {}

        ticks_mode = self.settings.tick_mode != "bars"

        def push_position(p: Position) -> None:
            r = (
                self._scan_position_ticks(p, t)
                if ticks_mode
                else self._scan_position(p, t)
            )
            if r is not None:
                found[p.ticket] = ("p", p, r)
                heapq.heappush(heap, (r[0], 0, p.ticket, 0))

        def push_order(o: Order) -> None:
            r = (
                self._scan_order_ticks(o, t)
                if ticks_mode
                else self._scan_order(o, t)
            )
            if r is not None:
                found[o.ticket] = ("o", o, r)
                heapq.heappush(heap, (r[0], 1, o.ticket, 0))

        for p in self.positions:
            if p.sl or p.tp:
                push_position(p)
        for o in self.orders:
            push_order(o)
        while True:
            so = self._stop_out_time(heap[0][0] if heap else t)
            if so is not None:
                when, victim, price = so
                self.stop_outs += 1
                found.pop(victim.ticket, None)
                out.append(
                    self.close_position(
                        victim, when, price, C.DEAL_REASON_SO, f"[so {self.margin_level(when):.2f}%]"
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
                if not any(q is p for q in self.positions):
                    continue
                _, hit, price, ambiguous, _ = r
                self.ambiguous_bars += int(ambiguous)
                spec = self.specs[p.symbol]
                price = round(price, spec.digits)
                if hit == kernels.SL:
                    out.append(
                        self.close_position(p, when, price, C.DEAL_REASON_SL, f"[sl {p.sl:.{spec.digits}f}]")
                    )
                else:
                    out.append(
                        self.close_position(p, when, price, C.DEAL_REASON_TP, f"[tp {p.tp:.{spec.digits}f}]")
                    )
            else:
                o = obj
                if not any(x is o for x in self.orders):
                    continue
                _, what, price, index = r
                if what == 2:
                    self._finish_order(o, C.ORDER_STATE_EXPIRED, when)
                    continue
                d = self._activate(o, when, price, index)
                if d is not None:
                    out.append(d)
                    for p in self.positions:
                        if (
                            p.ticket not in found
                            and (p.sl or p.tp)
                            and p.cursor == index
                            and p.symbol == o.symbol
                        ):
                            push_position(p)
                else:
                    for x in self.orders:
                        if x.ticket not in found:
                            push_order(x)
        return out

    # ------------------------------------------------------------------------------- stop-out
    def _stop_out_time(self, before: int) -> tuple[int, Position, float] | None:
        """First trigger-bar time before ``before`` at which the margin level falls to the stop-out
        level, the position to close (the largest loss, spec 5.11) and its close price.

        Floating profit is evaluated at each bar's worst price for each position (a buy at the bar's
        low Bid, a sell at its high Ask) and margin is held at its value at the interval start [U].
        """
        if not self.positions:
            return None
        m = self.margin(self.now)
        if m <= 0:
            return None
        s = self.settings
        floor = s.stop_out / 100.0 * m if s.stop_out_mode == "percent" else s.stop_out
        assert self.trigger_bars is not None
        # Cheapest bound: every position at the worst price of its whole history cannot reach the floor.
        # It changes only with a deal, a swap charge (rollover) or, for positions converted through
        # another pair, the rate: cached on (deals, rollovers, margin) when no conversion is involved.
        key = (len(self.deals), self._next_rollover, m)
        if self._safe_key == key:
            return None
        bound = self.balance + sum(p.swap for p in self.positions)
        converted = False
        for p in self.positions:
            spec = self.specs[p.symbol]
            lo_all, hi_all = self._extremes(p.symbol)
            worst = lo_all if p.type == 0 else hi_all
            bound += self.profit_raw(spec, p.type == 0, p.volume, p.price_open, worst, self.now)
            dep = self.settings.currency
            converted = converted or dep not in (spec.currency_profit, spec.currency_base)
        if bound > floor:
            if not converted:
                self._safe_key = key
            return None
        # A cheap bound first: the worst price of each position over the whole interval.
        per_pos = []
        worst_total = self.balance + sum(p.swap for p in self.positions)
        for p in self.positions:
            bars = self.trigger_bars[p.symbol]
            # bars closed by `before` and not yet checked (a bar forming at `now` is checked once closed)
            lo, hi = self._complete_index(p.symbol, self.now), self._complete_index(p.symbol, before)
            if hi <= lo:
                worst_total += self.position_profit(p, self.now)[0]
                per_pos.append((p, lo, hi))
                continue
            spec = self.specs[p.symbol]
            sp = self._trigger_spread(p.symbol)[lo:hi] * spec.point
            worst = float(bars.low[lo:hi].min()) if p.type == 0 else float((bars.high[lo:hi] + sp).max())
            worst_total += self.profit(spec, p.type == 0, p.volume, p.price_open, worst, self.now)
            per_pos.append((p, lo, hi))
        if worst_total > floor:
            return None
        # Precise: equity on the union of bar times.
        times = np.unique(np.concatenate([self.trigger_bars[p.symbol].time[lo:hi] for p, lo, hi in per_pos]))
        if not len(times):
            return None
        equity = np.full(len(times), self.balance + sum(p.swap for p in self.positions))
        profits = []
        for p, _, _ in per_pos:
            bars = self.trigger_bars[p.symbol]
            spec = self.specs[p.symbol]
            idx = np.searchsorted(bars.time, times, "right") - 1
            idx = np.clip(idx, 0, len(bars) - 1)
            sp = self._trigger_spread(p.symbol)[idx] * spec.point
            price = bars.low[idx] if p.type == 0 else bars.high[idx] + sp
            sign = 1 if p.type == 0 else -1
            unit = self.profit_raw(
                spec, p.type == 0, p.volume, p.price_open, p.price_open + sign * spec.point, self.now
            )
            prof = (price - p.price_open) / spec.point * sign * unit
            profits.append((p, prof, price))
            equity += prof
        below = np.flatnonzero(equity <= floor)
        if not len(below):
            return None
        k = int(below[0])
        victim, _, price = min(profits, key=lambda x: x[1][k])
        spec = self.specs[victim.symbol]
        return int(times[k]), victim, round(float(price[k]), spec.digits)


def _placed(x: Position | Order) -> int:
    """When x got its current levels: a position's last change (open, SL/TP, add, reversal), an order's
    placement. Ticks before it were checked against the levels it had then."""
    return x.time_update if isinstance(x, Position) else x.time_setup


def rollover_schedule(start_ns: int, end_ns: int, server_tz: str) -> tuple[np.ndarray, np.ndarray]:
    """Server midnights in (start, end] as UTC ns, with the DAY_OF_WEEK_* (Sunday 0) of the day each ends."""
    import pandas as pd

    from mt5tester.data.resample import parse_server_tz

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
