"""The simulated trade server: orders, positions and deals, in the deposit currency.

Only TradeServer (this module and its mixins in ``account`` and ``replay``) mutates trading state
(ARCHITECTURE 4). It follows ../shared/spec/mt5_python_api.md:
fills at Bid/Ask (5.4), stops and freeze levels (5.5), volume rules (5.6), hedging and netting (5.7),
profit (5.8), margin (5.9), swaps (5.10), margin call and stop-out (5.11). Between two decision
points ``advance(t)`` replays, in time order, every SL/TP hit, pending-order activation, expiry,
swap rollover and stop-out on the finest data the tester mode allows.

Split in layers: ``records`` (positions, orders, deals, settings), ``account`` (quotes, conversion,
profit, margin, swap, equity), ``replay`` (time between decision points); this module holds the book
and the order handling (``order_send``, ``order_check``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mt5tester.model.bars import Bars
from mt5tester.model.symbol import SymbolSpec
from mt5tester.terminal import constants as C
from mt5tester.terminal.records import (
    BUY_TYPES,
    MARKET_CLOSED_AFTER_NS,
    MINUTE_NS,
    PENDING_TYPES,
    Deal,
    IntrabarPolicy,
    Order,
    Position,
    PriceSource,
    ServerSettings,
    TickMode,
    TickStream,
)
from mt5tester.terminal.replay import Replay, real_tick_stream, rollover_schedule
from mt5tester.terminal.structs import OrderCheckResult, OrderSendResult, TradeRequest

__all__ = [  # the records and schedules are re-exported: callers import them from here
    "BUY_TYPES",
    "MARKET_CLOSED_AFTER_NS",
    "MINUTE_NS",
    "PENDING_TYPES",
    "Deal",
    "IntrabarPolicy",
    "Order",
    "Position",
    "PriceSource",
    "ServerSettings",
    "TickMode",
    "TickStream",
    "TradeServer",
    "real_tick_stream",
    "rollover_schedule",
]


def _round_volume(v: float) -> float:
    return round(v, 8)


def _fail(retcode: int, request: TradeRequest, bid: float = 0.0, ask: float = 0.0) -> OrderSendResult:
    return OrderSendResult(
        retcode, 0, 0, 0.0, 0.0, bid, ask, C.RETCODE_COMMENTS.get(retcode, ""), 0, 0, request
    )


@dataclass
class TradeServer(Replay):
    market: PriceSource
    settings: ServerSettings = field(default_factory=ServerSettings)
    trigger_bars: dict[str, Bars] | None = None  # bars SL/TP/pending are resolved on (M1 or the tested TF)
    real_ticks: dict[str, TickStream] = field(default_factory=dict)  # real_ticks mode: the merged stream
    balance: float = 0.0
    positions: list[Position] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    history_orders: list[Order] = field(default_factory=list)
    deals: list[Deal] = field(default_factory=list)
    ambiguous_bars: int = 0
    stop_outs: int = 0
    rollovers: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rollover_days: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    now: int = 0
    server_offset_ns: int = 0  # server clock minus UTC, for SPECIFIED expirations; set by the terminal
    _next_rollover: int = 0
    _next_ticket: int = 2  # MT5's tester: deal #1 is the deposit, the first order is #2
    _next_deal: int = 1
    _rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    _directions: dict[str, np.ndarray] = field(default_factory=dict)
    _tick_cache: dict[str, tuple[int, int, TickStream]] = field(default_factory=dict)
    _extreme_cache: dict[str, tuple[float, float]] = field(default_factory=dict)
    _spread_cache: dict[str, np.ndarray] = field(default_factory=dict)
    _margin_cache: tuple[tuple[int, int], float] = ((-1, -1), 0.0)
    _safe_key: tuple[int, int, float] | None = None  # book state known to be far from stop-out
    # (deals, rollovers) of a book with nothing to replay: no SL/TP, no orders, stop-out out of reach
    _quiet: tuple[int, int] | None = None
    _rollover_at: tuple[int, int] = (-1, 0)  # (_next_rollover, its time) cached for advance
    _quote_cache: dict[str, tuple[int, tuple[float, float, int] | None]] = field(default_factory=dict)
    _close_cache: dict[str, np.ndarray] = field(default_factory=dict)  # trigger bars' close times

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.settings.seed)
        if self.trigger_bars is None:
            self.trigger_bars = self.market.m1
        self._add_deal(
            0,
            0,
            C.DEAL_TYPE_BALANCE,
            C.DEAL_ENTRY_IN,
            C.DEAL_REASON_CLIENT,
            0,
            "",
            0.0,
            0.0,
            0.0,
            self.settings.deposit,
            "deposit",
        )

    # ------------------------------------------------------------------------------ bookkeeping
    def _ticket(self) -> int:
        t = self._next_ticket
        self._next_ticket += 1
        return t

    def _add_deal(
        self,
        order: int,
        t: int,
        type_: int,
        entry: int,
        reason: int,
        position_id: int,
        symbol: str,
        volume: float,
        price: float,
        commission: float,
        profit: float,
        comment: str,
        strategy: str = "",
        signal_id: int | None = None,
        swap: float = 0.0,
        magic: int = 0,
    ) -> Deal:
        self.balance = round(self.balance + profit + commission + swap, 2)
        d = Deal(
            self._next_deal,
            order,
            t,
            type_,
            entry,
            reason,
            position_id,
            symbol,
            volume,
            price,
            commission,
            swap,
            profit,
            self.balance,
            comment,
            strategy,
            signal_id,
            magic,
        )
        self._next_deal += 1
        self.deals.append(d)
        return d

    def _history_order(
        self,
        symbol: str,
        type_: int,
        volume: float,
        price: float,
        t: int,
        reason: int,
        position_id: int,
        comment: str,
        magic: int = 0,
        strategy: str = "",
        signal_id: int | None = None,
        position_by: int = 0,
    ) -> Order:
        """A market order, filled at once: recorded in history with state FILLED."""
        o = Order(
            self._ticket(),
            symbol,
            type_,
            volume,
            0.0,
            price,
            0.0,
            0.0,
            0.0,
            t,
            state=C.ORDER_STATE_FILLED,
            time_done=t,
            magic=magic,
            position_id=position_id,
            position_by_id=position_by,
            reason=reason,
            comment=comment,
            price_done=price,
            strategy=strategy,
            signal_id=signal_id,
        )
        self.history_orders.append(o)
        return o

    def _close_part(
        self,
        p: Position,
        volume: float,
        price: float,
        t: int,
        reason: int,
        comment: str,
        order: int,
        entry: int = C.DEAL_ENTRY_OUT,
        magic: int | None = None,
    ) -> Deal:
        """Close ``volume`` of p at ``price``: one deal with the realised profit and swap share."""
        spec = self.specs[p.symbol]
        is_buy = p.type == C.POSITION_TYPE_BUY
        profit = self.profit(spec, is_buy, volume, p.price_open, price, t)
        share = volume / p.volume
        swap = round(p.swap * share, 2)
        p.swap = round(p.swap - swap, 2)
        commission = self.commission(spec, volume, price, t)
        d = self._add_deal(
            order,
            t,
            C.DEAL_TYPE_SELL if is_buy else C.DEAL_TYPE_BUY,
            entry,
            reason,
            p.identifier,
            p.symbol,
            volume,
            price,
            commission,
            profit,
            comment,
            p.strategy,
            p.signal_id,
            swap,
            p.magic if magic is None else magic,
        )
        p.volume = _round_volume(p.volume - volume)
        p.time_update = t
        if p.volume <= 1e-9:
            self.positions = [q for q in self.positions if q is not p]
        return d

    def close_position(self, p: Position, t: int, price: float, reason: int, comment: str) -> Deal:
        """Close all of p at ``price`` (SL, TP, stop-out, end of run) with a server-side order."""
        close_type = C.ORDER_TYPE_SELL if p.type == C.POSITION_TYPE_BUY else C.ORDER_TYPE_BUY
        order_reason = {
            C.DEAL_REASON_SL: C.ORDER_REASON_SL,
            C.DEAL_REASON_TP: C.ORDER_REASON_TP,
            C.DEAL_REASON_SO: C.ORDER_REASON_SO,
        }.get(reason, C.ORDER_REASON_EXPERT)
        o = self._history_order(
            p.symbol,
            close_type,
            p.volume,
            price,
            t,
            order_reason,
            p.identifier,
            comment,
            p.magic,
            p.strategy,
            p.signal_id,
        )
        return self._close_part(p, p.volume, price, t, reason, comment, o.ticket)

    # --------------------------------------------------------------------------------- checks
    def _check_volume(self, spec: SymbolSpec, volume: float) -> bool:
        """spec 5.6: min <= v <= max and (v - min) a multiple of step."""
        if volume < spec.volume_min - 1e-12 or volume > spec.volume_max + 1e-12:
            return False
        steps = (volume - spec.volume_min) / spec.volume_step
        return abs(steps - round(steps)) < 1e-7

    @staticmethod
    def _stops_ok(spec: SymbolSpec, is_buy: bool, ref: float, sl: float, tp: float) -> bool:
        """spec 5.5: SL/TP on the right side of ``ref`` and at least the stops level away."""
        lvl = spec.trade_stops_level * spec.point - 1e-12
        if is_buy:
            return (not sl or (ref - sl >= lvl and sl < ref)) and (not tp or (tp - ref >= lvl and tp > ref))
        return (not sl or (sl - ref >= lvl and sl > ref)) and (not tp or (ref - tp >= lvl and tp < ref))

    # ---------------------------------------------------------------------------------- trading
    def _slip(self, spec: SymbolSpec, price: float, is_buy: bool) -> float:
        s = self.settings
        if s.slippage_model == "none" or s.slippage_points == 0:
            return price
        pts = (
            s.slippage_points
            if s.slippage_model == "fixed"
            else int(self._rng.integers(0, s.slippage_points + 1))
        )
        return round(price + (pts if is_buy else -pts) * spec.point, spec.digits)

    def send(self, req: TradeRequest, strategy: str = "", signal_id: int | None = None) -> OrderSendResult:
        """order_send semantics (spec 5.3). Refusals are results with a retcode, never exceptions."""
        handler = {
            C.TRADE_ACTION_DEAL: self._deal,
            C.TRADE_ACTION_PENDING: self._pending,
            C.TRADE_ACTION_SLTP: self._sltp,
            C.TRADE_ACTION_MODIFY: self._modify,
            C.TRADE_ACTION_REMOVE: self._remove,
            C.TRADE_ACTION_CLOSE_BY: self._close_by,
        }.get(req.action)
        if handler is None:
            return _fail(C.TRADE_RETCODE_INVALID, req)
        return handler(req, strategy, signal_id)

    def _deal(self, req: TradeRequest, strategy: str, signal_id: int | None) -> OrderSendResult:
        spec = self.specs.get(req.symbol)
        if spec is None:
            return _fail(C.TRADE_RETCODE_INVALID, req)
        if req.type not in (C.ORDER_TYPE_BUY, C.ORDER_TYPE_SELL):
            return _fail(C.TRADE_RETCODE_INVALID_ORDER, req)
        q = self.quote(req.symbol)
        if q is None:
            return _fail(C.TRADE_RETCODE_MARKET_CLOSED, req)
        bid, ask, _ = q
        if not self._check_volume(spec, req.volume):
            return _fail(C.TRADE_RETCODE_INVALID_VOLUME, req, bid, ask)
        is_buy = req.type == C.ORDER_TYPE_BUY
        price = self._slip(spec, ask if is_buy else bid, is_buy)
        t = self.now
        target: Position | None = None
        if req.position:
            target = next((p for p in self.positions if p.ticket == req.position), None)
            if target is None or target.symbol != req.symbol:
                return _fail(C.TRADE_RETCODE_POSITION_CLOSED, req, bid, ask)
            if (target.type == C.POSITION_TYPE_BUY) == is_buy:
                return _fail(C.TRADE_RETCODE_INVALID, req, bid, ask)
            if req.volume > target.volume + 1e-9:
                return _fail(C.TRADE_RETCODE_INVALID_CLOSE_VOLUME, req, bid, ask)
        elif not self.settings.hedging:
            target = next((p for p in self.positions if p.symbol == req.symbol), None)
        closing = target is not None and (target.type == C.POSITION_TYPE_BUY) != is_buy
        # SL/TP of an opening (or adding) deal are checked against the side the position closes at.
        if not closing and not self._stops_ok(spec, is_buy, bid if is_buy else ask, req.sl, req.tp):
            return _fail(C.TRADE_RETCODE_INVALID_STOPS, req, bid, ask)
        if not closing or (target is not None and req.volume > target.volume + 1e-9):
            # spec 5.9 / 3.11: refused when the trade raises the margin beyond the equity (free margin < 0).
            after = self.margin(
                t,
                [
                    *self.positions,
                    Position(0, 0, req.symbol, 0 if is_buy else 1, req.volume, price, 0, 0, t, t),
                ],
            )
            if after > self.margin(t) and self.equity(t) - after < 0:
                return _fail(C.TRADE_RETCODE_NO_MONEY, req, bid, ask)
        order = self._history_order(
            req.symbol,
            req.type,
            req.volume,
            price,
            t,
            C.ORDER_REASON_EXPERT,
            0,
            req.comment,
            req.magic,
            strategy,
            signal_id,
        )
        deal = self._execute(
            order, is_buy, req.volume, price, t, req.sl, req.tp, target, C.DEAL_REASON_EXPERT
        )
        return OrderSendResult(
            C.TRADE_RETCODE_DONE,
            deal.ticket,
            order.ticket,
            req.volume,
            price,
            bid,
            ask,
            "Request executed",
            0,
            0,
            req,
        )

    def _execute(
        self,
        order: Order,
        is_buy: bool,
        volume: float,
        price: float,
        t: int,
        sl: float,
        tp: float,
        target: Position | None,
        reason: int,
        no_gap_index: int | None = None,
    ) -> Deal:
        """Apply a fill to the book: open, add to, reduce, close or reverse (netting) a position."""
        spec = self.specs[order.symbol]
        cursor = no_gap_index if no_gap_index is not None else self._entry_index(order.symbol, t)
        if target is not None and (target.type == C.POSITION_TYPE_BUY) != is_buy:
            if volume <= target.volume + 1e-9:
                order.position_id = target.identifier
                return self._close_part(target, volume, price, t, reason, order.comment, order.ticket)
            # Netting reversal (spec 5.7): close the position and open the rest, one INOUT deal.
            rest = _round_volume(volume - target.volume)
            closed = target.volume
            profit = self.profit(spec, target.type == 0, closed, target.price_open, price, t)
            commission = self.commission(spec, volume, price, t)
            swap = round(target.swap, 2)
            order.position_id = target.identifier
            d = self._order_deal(
                order,
                is_buy,
                C.DEAL_ENTRY_INOUT,
                reason,
                target.identifier,
                volume,
                price,
                t,
                commission,
                profit,
                swap,
            )
            target.type = 0 if is_buy else 1
            target.volume, target.price_open, target.swap = rest, price, 0.0
            target.sl, target.tp, target.time_update = sl, tp, t
            target.cursor, target.no_gap_at_cursor = cursor, no_gap_index is not None
            target.tick_from = t + 1
            return d
        commission = self.commission(spec, volume, price, t)
        if target is not None:  # netting: add to the position, volume-weighted open price
            new_volume = _round_volume(target.volume + volume)
            target.price_open = round(
                (target.price_open * target.volume + price * volume) / new_volume, spec.digits + 3
            )
            target.volume, target.time_update = new_volume, t
            if sl or tp:
                target.sl, target.tp = sl, tp
                self._watch_from(target, t)
            order.position_id = target.identifier
            return self._order_deal(
                order, is_buy, C.DEAL_ENTRY_IN, reason, target.identifier, volume, price, t, commission
            )
        order.position_id = order.ticket
        self.positions.append(
            Position(
                order.ticket,
                order.ticket,
                order.symbol,
                0 if is_buy else 1,
                volume,
                price,
                sl,
                tp,
                t,
                t,
                order.magic,
                order.comment,
                C.POSITION_REASON_EXPERT,
                0.0,
                order.strategy,
                order.signal_id,
                cursor,
                no_gap_index is not None,
            )
        )
        return self._order_deal(
            order, is_buy, C.DEAL_ENTRY_IN, reason, order.ticket, volume, price, t, commission
        )

    def _watch_from(self, p: Position, t: int) -> None:
        """New SL/TP are checked on prices from t on, never on earlier ones: a position that had none
        was not replayed, so its cursor may lag behind t."""
        p.cursor, p.no_gap_at_cursor, p.tick_from = self._entry_index(p.symbol, t), False, t + 1

    def _order_deal(
        self,
        order: Order,
        is_buy: bool,
        entry: int,
        reason: int,
        position_id: int,
        volume: float,
        price: float,
        t: int,
        commission: float,
        profit: float = 0.0,
        swap: float = 0.0,
    ) -> Deal:
        """The deal of an order filled in its own direction (an entry, an addition or a reversal)."""
        return self._add_deal(
            order.ticket,
            t,
            C.DEAL_TYPE_BUY if is_buy else C.DEAL_TYPE_SELL,
            entry,
            reason,
            position_id,
            order.symbol,
            volume,
            price,
            commission,
            profit,
            order.comment,
            order.strategy,
            order.signal_id,
            swap,
            order.magic,
        )

    def _pending(self, req: TradeRequest, strategy: str, signal_id: int | None) -> OrderSendResult:
        spec = self.specs.get(req.symbol)
        if spec is None or req.type not in PENDING_TYPES:
            return _fail(C.TRADE_RETCODE_INVALID_ORDER if spec else C.TRADE_RETCODE_INVALID, req)
        q = self.quote(req.symbol)
        if q is None:
            return _fail(C.TRADE_RETCODE_MARKET_CLOSED, req)
        bid, ask, _ = q
        if not self._check_volume(spec, req.volume):
            return _fail(C.TRADE_RETCODE_INVALID_VOLUME, req, bid, ask)
        if not self._placement_ok(spec, req.type, req.price, req.stoplimit, bid, ask):
            return _fail(C.TRADE_RETCODE_INVALID_PRICE, req, bid, ask)
        is_buy = req.type in BUY_TYPES
        entry = (
            req.stoplimit
            if req.type in (C.ORDER_TYPE_BUY_STOP_LIMIT, C.ORDER_TYPE_SELL_STOP_LIMIT)
            else req.price
        )
        if not self._stops_ok(spec, is_buy, entry, req.sl, req.tp):
            return _fail(C.TRADE_RETCODE_INVALID_STOPS, req, bid, ask)
        expiration = self._expiration(req)
        if expiration is None:
            return _fail(C.TRADE_RETCODE_INVALID_EXPIRATION, req, bid, ask)
        o = Order(
            self._ticket(),
            req.symbol,
            req.type,
            req.volume,
            req.volume,
            req.price,
            req.sl,
            req.tp,
            req.stoplimit,
            self.now,
            req.type_time,
            req.type_filling,
            expiration,
            magic=req.magic,
            comment=req.comment,
            strategy=strategy,
            signal_id=signal_id,
            cursor=self._entry_index(req.symbol, self.now),
        )
        self.orders.append(o)
        return OrderSendResult(
            C.TRADE_RETCODE_PLACED,
            0,
            o.ticket,
            req.volume,
            req.price,
            bid,
            ask,
            "Request executed",
            0,
            0,
            req,
        )

    def _expiration(self, req: TradeRequest) -> int | None:
        """UTC ns when the order expires, 0 for never, None when invalid (spec 4.5)."""
        if req.type_time == C.ORDER_TIME_GTC:
            return 0
        if req.type_time == C.ORDER_TIME_DAY:
            nxt = [int(r) for r in self.rollovers if r > self.now]
            return nxt[0] if nxt else 0
        if req.type_time in (C.ORDER_TIME_SPECIFIED, C.ORDER_TIME_SPECIFIED_DAY):
            exp = int(req.expiration) * 1_000_000_000 - self.server_offset_ns
            if req.type_time == C.ORDER_TIME_SPECIFIED_DAY:
                exp = exp - exp % (86_400 * 10**9) + 86_400 * 10**9 - 10**9
            return exp if exp > self.now else None
        return None

    @staticmethod
    def _placement_ok(
        spec: SymbolSpec, type_: int, price: float, stoplimit: float, bid: float, ask: float
    ) -> bool:
        """spec 5.3/5.5: limits below Ask / above Bid, stops above Ask / below Bid, at the stops level."""
        lvl = spec.trade_stops_level * spec.point - 1e-12
        if price <= 0:
            return False
        if type_ == C.ORDER_TYPE_BUY_LIMIT:
            return ask - price >= lvl and price < ask
        if type_ == C.ORDER_TYPE_SELL_LIMIT:
            return price - bid >= lvl and price > bid
        if type_ in (C.ORDER_TYPE_BUY_STOP, C.ORDER_TYPE_BUY_STOP_LIMIT):
            ok = price - ask >= lvl and price > ask
            return ok and (type_ == C.ORDER_TYPE_BUY_STOP or 0 < stoplimit <= price)
        if type_ in (C.ORDER_TYPE_SELL_STOP, C.ORDER_TYPE_SELL_STOP_LIMIT):
            ok = bid - price >= lvl and price < bid
            return ok and (type_ == C.ORDER_TYPE_SELL_STOP or stoplimit >= price)
        return False

    def _frozen(self, spec: SymbolSpec, is_buy: bool, levels: list[float], bid: float, ask: float) -> bool:
        """spec 5.5 freeze level: nothing within trade_freeze_level points of the price can change."""
        lvl = spec.trade_freeze_level * spec.point
        if lvl <= 0:
            return False
        ref = bid if is_buy else ask
        return any(x and abs(ref - x) <= lvl for x in levels)

    def _sltp(self, req: TradeRequest, strategy: str, signal_id: int | None) -> OrderSendResult:
        p = next((x for x in self.positions if x.ticket == req.position), None)
        if p is None:
            return _fail(C.TRADE_RETCODE_POSITION_CLOSED, req)
        spec = self.specs[p.symbol]
        q = self.quote(p.symbol)
        if q is None:
            return _fail(C.TRADE_RETCODE_MARKET_CLOSED, req)
        bid, ask, _ = q
        is_buy = p.type == C.POSITION_TYPE_BUY
        if abs(req.sl - p.sl) < 1e-12 and abs(req.tp - p.tp) < 1e-12:
            return _fail(C.TRADE_RETCODE_NO_CHANGES, req, bid, ask)
        if self._frozen(spec, is_buy, [p.sl, p.tp], bid, ask):
            return _fail(C.TRADE_RETCODE_FROZEN, req, bid, ask)
        if not self._stops_ok(spec, is_buy, bid if is_buy else ask, req.sl, req.tp):
            return _fail(C.TRADE_RETCODE_INVALID_STOPS, req, bid, ask)
        p.sl, p.tp, p.time_update = req.sl, req.tp, self.now
        self._watch_from(p, self.now)
        return OrderSendResult(C.TRADE_RETCODE_DONE, 0, 0, 0.0, 0.0, bid, ask, "Request executed", 0, 0, req)

    def _modify(self, req: TradeRequest, strategy: str, signal_id: int | None) -> OrderSendResult:
        o = next((x for x in self.orders if x.ticket == req.order), None)
        if o is None:
            return _fail(C.TRADE_RETCODE_INVALID_ORDER, req)
        spec = self.specs[o.symbol]
        q = self.quote(o.symbol)
        if q is None:
            return _fail(C.TRADE_RETCODE_MARKET_CLOSED, req)
        bid, ask, _ = q
        is_buy = o.type in BUY_TYPES
        if self._frozen(spec, is_buy, [o.price_open], bid, ask):
            return _fail(C.TRADE_RETCODE_FROZEN, req, bid, ask)
        stoplimit = req.stoplimit or o.price_stoplimit
        if not self._placement_ok(spec, o.type, req.price, stoplimit, bid, ask):
            return _fail(C.TRADE_RETCODE_INVALID_PRICE, req, bid, ask)
        entry = (
            stoplimit if o.type in (C.ORDER_TYPE_BUY_STOP_LIMIT, C.ORDER_TYPE_SELL_STOP_LIMIT) else req.price
        )
        if not self._stops_ok(spec, is_buy, entry, req.sl, req.tp):
            return _fail(C.TRADE_RETCODE_INVALID_STOPS, req, bid, ask)
        expiration = self._expiration(req)
        if expiration is None:
            return _fail(C.TRADE_RETCODE_INVALID_EXPIRATION, req, bid, ask)
        o.price_open, o.sl, o.tp, o.price_stoplimit = req.price, req.sl, req.tp, stoplimit
        o.type_time, o.time_expiration = req.type_time, expiration
        return OrderSendResult(
            C.TRADE_RETCODE_DONE,
            0,
            o.ticket,
            o.volume_current,
            req.price,
            bid,
            ask,
            "Request executed",
            0,
            0,
            req,
        )

    def _remove(self, req: TradeRequest, strategy: str, signal_id: int | None) -> OrderSendResult:
        o = next((x for x in self.orders if x.ticket == req.order), None)
        if o is None:
            return _fail(C.TRADE_RETCODE_INVALID_ORDER, req)
        q = self.quote(o.symbol)
        bid, ask = (q[0], q[1]) if q else (0.0, 0.0)
        if q and self._frozen(self.specs[o.symbol], o.type in BUY_TYPES, [o.price_open], bid, ask):
            return _fail(C.TRADE_RETCODE_FROZEN, req, bid, ask)
        self._finish_order(o, C.ORDER_STATE_CANCELED, self.now)
        return OrderSendResult(
            C.TRADE_RETCODE_DONE, 0, o.ticket, 0.0, 0.0, bid, ask, "Request executed", 0, 0, req
        )

    def _close_by(self, req: TradeRequest, strategy: str, signal_id: int | None) -> OrderSendResult:
        """Close two opposite positions of one symbol against each other (hedging; OUT_BY deals).

        Both closing deals are at the open price of ``position_by`` [U], so the pair realises the
        difference of the two open prices on the smaller volume (all of it on ``position``) and no
        spread is paid.
        """
        if not self.settings.hedging:
            return _fail(C.TRADE_RETCODE_INVALID, req)
        a = next((x for x in self.positions if x.ticket == req.position), None)
        b = next((x for x in self.positions if x.ticket == req.position_by), None)
        if a is None or b is None:
            return _fail(C.TRADE_RETCODE_POSITION_CLOSED, req)
        if a.symbol != b.symbol or a.type == b.type:
            return _fail(C.TRADE_RETCODE_INVALID, req)
        t = self.now
        volume = min(a.volume, b.volume)
        pa = pb = b.price_open
        oa = self._history_order(
            a.symbol,
            C.ORDER_TYPE_CLOSE_BY,
            volume,
            pa,
            t,
            C.ORDER_REASON_EXPERT,
            a.identifier,
            req.comment,
            req.magic,
            position_by=b.identifier,
        )
        da = self._close_part(
            a, volume, pa, t, C.DEAL_REASON_EXPERT, req.comment, oa.ticket, C.DEAL_ENTRY_OUT_BY
        )
        self._close_part(b, volume, pb, t, C.DEAL_REASON_EXPERT, req.comment, oa.ticket, C.DEAL_ENTRY_OUT_BY)
        return OrderSendResult(
            C.TRADE_RETCODE_DONE, da.ticket, oa.ticket, volume, pa, 0.0, 0.0, "Request executed", 0, 0, req
        )

    def check(self, req: TradeRequest) -> OrderCheckResult:
        """order_check: the account as it would be after the request (spec 3.11); nothing changes."""
        spec = self.specs.get(req.symbol)
        q = self.quote(req.symbol) if spec else None
        equity, margin = self.equity(), self.margin()
        if spec is None:
            return OrderCheckResult(
                C.TRADE_RETCODE_INVALID,
                self.balance,
                equity,
                self.floating(),
                margin,
                equity - margin,
                0.0,
                "Invalid request",
                req,
            )
        if q is None:
            return OrderCheckResult(
                C.TRADE_RETCODE_MARKET_CLOSED,
                self.balance,
                equity,
                self.floating(),
                margin,
                equity - margin,
                0.0,
                "Market closed",
                req,
            )
        if not self._check_volume(spec, req.volume):
            return OrderCheckResult(
                C.TRADE_RETCODE_INVALID_VOLUME,
                self.balance,
                equity,
                self.floating(),
                margin,
                equity - margin,
                0.0,
                "Invalid volume",
                req,
            )
        is_buy = req.type in BUY_TYPES
        price = req.price or (q[1] if is_buy else q[0])
        after = margin
        if req.action in (C.TRADE_ACTION_DEAL, C.TRADE_ACTION_PENDING) and not req.position:
            extra = Position(
                0, 0, req.symbol, 0 if is_buy else 1, req.volume, price, 0, 0, self.now, self.now
            )
            after = self.margin(self.now, [*self.positions, extra])
        free = round(equity - after, 2)
        level = round(equity / after * 100, 2) if after > 0 else 0.0
        code, comment = (0, "Done") if free >= 0 else (C.TRADE_RETCODE_NO_MONEY, "No money")
        return OrderCheckResult(code, self.balance, equity, self.floating(), after, free, level, comment, req)
