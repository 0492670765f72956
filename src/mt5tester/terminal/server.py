"""The simulated trade server: orders, positions and deals, in the deposit currency.

Only this module mutates trading state (ARCHITECTURE 4). It follows ../shared/spec/mt5_python_api.md:
fills at Bid/Ask (5.4), stops and freeze levels (5.5), volume rules (5.6), hedging and netting (5.7),
profit (5.8), margin (5.9), swaps (5.10), margin call and stop-out (5.11). Between two decision
points ``advance(t)`` replays, in time order, every SL/TP hit, pending-order activation, expiry,
swap rollover and stop-out on the finest data the tester mode allows.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from mt5tester.errors import DataError
from mt5tester.model.bars import Bars
from mt5tester.model.symbol import CalcMode, SwapMode, SymbolSpec
from mt5tester.terminal import constants as C
from mt5tester.terminal import kernels
from mt5tester.terminal import ticks as tickgen
from mt5tester.terminal.structs import OrderCheckResult, OrderSendResult, TradeRequest

MINUTE_NS = 60_000_000_000
# A symbol with no quote in the last 15 minutes is treated as closed for trading [U]: MT5 knows the
# symbol's sessions; the tester only has the quotes, and quiet minutes without a bar are normal.
MARKET_CLOSED_AFTER_NS = 15 * MINUTE_NS

BUY_TYPES = (C.ORDER_TYPE_BUY, C.ORDER_TYPE_BUY_LIMIT, C.ORDER_TYPE_BUY_STOP, C.ORDER_TYPE_BUY_STOP_LIMIT)
PENDING_TYPES = (
    C.ORDER_TYPE_BUY_LIMIT,
    C.ORDER_TYPE_SELL_LIMIT,
    C.ORDER_TYPE_BUY_STOP,
    C.ORDER_TYPE_SELL_STOP,
    C.ORDER_TYPE_BUY_STOP_LIMIT,
    C.ORDER_TYPE_SELL_STOP_LIMIT,
)
IntrabarPolicy = Literal["pessimistic", "ohlc_path"]
TickMode = Literal["bars", "every_tick", "real_ticks"]


class PriceSource(Protocol):
    """What the server needs from market data (implemented by terminal.market.MarketData)."""

    m1: dict[str, Bars]
    specs: dict[str, SymbolSpec]
    spread: dict[str, np.ndarray]

    def index_at(self, symbol: str, t: int) -> int: ...

    def bid_before(self, symbol: str, t: int) -> float: ...


@dataclass(slots=True)
class Position:
    ticket: int
    identifier: int
    symbol: str
    type: int  # POSITION_TYPE_BUY 0 / SELL 1
    volume: float
    price_open: float
    sl: float
    tp: float
    time: int
    time_update: int
    magic: int = 0
    comment: str = ""
    reason: int = C.POSITION_REASON_EXPERT
    swap: float = 0.0  # accumulated, realised in the closing deal (spec 5.10)
    strategy: str = ""
    signal_id: int | None = None
    cursor: int = 0  # next bar index of the trigger data to scan for SL/TP
    no_gap_at_cursor: bool = False  # opened inside bar `cursor`: its open price came before the fill
    tick_from: int = 0  # tick modes: the next tick to scan has time >= tick_from (UTC ns)


@dataclass(slots=True)
class Order:
    ticket: int
    symbol: str
    type: int
    volume_initial: float
    volume_current: float
    price_open: float
    sl: float
    tp: float
    price_stoplimit: float
    time_setup: int
    type_time: int = C.ORDER_TIME_GTC
    type_filling: int = C.ORDER_FILLING_FOK
    time_expiration: int = 0  # UTC ns, 0 = none
    state: int = C.ORDER_STATE_PLACED
    time_done: int = 0
    magic: int = 0
    position_id: int = 0
    position_by_id: int = 0
    reason: int = C.ORDER_REASON_EXPERT
    comment: str = ""
    price_done: float = 0.0
    strategy: str = ""
    signal_id: int | None = None
    cursor: int = 0
    no_gap_at_cursor: bool = False
    tick_from: int = 0


@dataclass(slots=True)
class Deal:
    ticket: int
    order: int
    time: int
    type: int
    entry: int
    reason: int
    position_id: int
    symbol: str
    volume: float
    price: float
    commission: float
    swap: float
    profit: float
    balance: float
    comment: str
    strategy: str
    signal_id: int | None
    magic: int = 0
    fee: float = 0.0


@dataclass
class ServerSettings:
    currency: str = "USD"
    leverage: int = 100
    deposit: float = 10_000.0
    hedging: bool = True
    commission_enabled: bool = True
    margin_call: float = 50.0  # margin level % (or money with stop_out_mode "money")
    stop_out: float = 30.0
    stop_out_mode: Literal["percent", "money"] = "percent"
    slippage_model: Literal["none", "fixed", "random"] = "none"
    slippage_points: int = 0
    intrabar: IntrabarPolicy = "pessimistic"
    tick_mode: TickMode = "bars"
    seed: int = 42


@dataclass
class TickStream:
    """Ticks of one symbol as arrays (time UTC ns, bid, ask), sorted by time."""

    time: np.ndarray
    bid: np.ndarray
    ask: np.ndarray


_NEVER = 2**63 - 1


def _round_volume(v: float) -> float:
    return round(v, 8)


def _fail(retcode: int, request: TradeRequest, bid: float = 0.0, ask: float = 0.0) -> OrderSendResult:
    return OrderSendResult(
        retcode, 0, 0, 0.0, 0.0, bid, ask, C.RETCODE_COMMENTS.get(retcode, ""), 0, 0, request
    )


@dataclass
class TradeServer:
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
    margin_level_min: float = 0.0  # lowest margin level seen at decision points (0 = never had margin)
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

    # ----------------------------------------------------------------------------------- prices
    @property
    def specs(self) -> dict[str, SymbolSpec]:
        return self.market.specs

    def quote(self, symbol: str, t: int | None = None) -> tuple[float, float, int] | None:
        """(bid, ask, index of the M1 bar) of the current tick at t, or None when no quote is recent.

        The current tick is the open of an M1 bar starting exactly at t, else the close of the last
        bar before t (spec 6.1: Ask = Bid + the M1 bar's spread).
        """
        t = self.now if t is None else t
        cached = self._quote_cache.get(symbol)
        if cached is not None and cached[0] == t:
            return cached[1]
        q = self._quote(symbol, t)
        self._quote_cache[symbol] = (t, q)
        return q

    def _quote(self, symbol: str, t: int) -> tuple[float, float, int] | None:
        bars = self.market.m1[symbol]
        spec = self.specs[symbol]
        if self.settings.tick_mode == "real_ticks" and symbol in self.real_ticks:
            st = self.real_ticks[symbol]
            j = int(st.time.searchsorted(t, "right")) - 1
            if j < 0 or t - int(st.time[j]) > MARKET_CLOSED_AFTER_NS:
                return None
            return float(st.bid[j]), float(st.ask[j]), max(self.market.index_at(symbol, t + 1) - 1, 0)
        k = self.market.index_at(symbol, t)
        if k < len(bars) and int(bars.time[k]) == t:
            bid = float(bars.open[k])
        else:
            k -= 1
            if k < 0 or t - int(bars.time[k]) > MARKET_CLOSED_AFTER_NS:
                return None
            bid = float(bars.close[k])
        ask = round(bid + int(self.market.spread[symbol][k]) * spec.point, spec.digits)
        return bid, ask, k

    # ------------------------------------------------------------------------------- conversion
    def rate(self, ccy: str, t: int) -> float:
        """Units of deposit currency per unit of ``ccy`` at time t, from the loaded pairs (spec 5.8)."""
        dep = self.settings.currency
        if ccy == dep:
            return 1.0
        direct, inverse = ccy + dep, dep + ccy
        if direct in self.market.m1:
            return self.market.bid_before(direct, t + 1)
        if inverse in self.market.m1:
            return 1.0 / self.market.bid_before(inverse, t + 1)
        raise DataError(f"no conversion pair for {ccy}->{dep}: add {direct} or {inverse} to backtest.symbols")

    def profit_raw(
        self, spec: SymbolSpec, is_buy: bool, volume: float, open_: float, close: float, t: int
    ) -> float:
        """Profit in deposit currency (spec 5.8), unrounded."""
        raw = (close - open_) * spec.trade_contract_size * volume * (1 if is_buy else -1)
        dep = self.settings.currency
        if spec.currency_profit == dep:
            conv = 1.0
        elif spec.currency_base == dep:
            conv = 1.0 / close  # USDJPY on a USD account: divide by the closing rate (spec 5.8)
        else:
            conv = self.rate(spec.currency_profit, t)
        return float(raw * conv)

    def profit(
        self, spec: SymbolSpec, is_buy: bool, volume: float, open_: float, close: float, t: int
    ) -> float:
        """Profit in deposit currency, rounded to cents as MT5 does per deal."""
        return round(self.profit_raw(spec, is_buy, volume, open_, close, t), 2)

    def margin_for(self, spec: SymbolSpec, volume: float, price: float, t: int) -> float:
        """Initial margin in deposit currency for ``volume`` lots (spec 5.9)."""
        contracts = volume * spec.trade_contract_size
        lev = self.settings.leverage
        mode = spec.trade_calc_mode
        if mode in (CalcMode.FOREX, CalcMode.FOREX_NO_LEVERAGE):
            m = contracts * spec.margin_rate / (lev if mode == CalcMode.FOREX else 1)
            ccy = spec.currency_margin
            if ccy != self.settings.currency and spec.currency_profit == self.settings.currency:
                return m * price  # base currency margin valued at the symbol's own price
            return m * self.rate(ccy, t)
        if mode == CalcMode.CFDLEVERAGE:
            m = contracts * price / lev * spec.margin_rate
        else:  # CFD, CFDINDEX (tick price = tick size here), FUTURES approximated as CFD
            m = contracts * price * spec.margin_rate
        return m * self.rate(spec.currency_profit, t)

    def commission(self, spec: SymbolSpec, volume: float, price: float, t: int) -> float:
        if not self.settings.commission_enabled or spec.commission == 0:
            return 0.0
        if spec.commission_mode == "per_lot":
            return -round(spec.commission * volume, 2)
        value = volume * spec.trade_contract_size * price * self.rate(spec.currency_profit, t)
        return -round(value * spec.commission / 100.0, 2)

    # ----------------------------------------------------------------------------------- account
    def position_profit(self, p: Position, t: int) -> tuple[float, float]:
        """(floating profit without swap, current close price) of a position at t."""
        q = self.quote(p.symbol, t)
        if q is None:
            bid = self.market.bid_before(p.symbol, t + 1)
            i = max(self.market.index_at(p.symbol, t + 1) - 1, 0)
            spec = self.specs[p.symbol]
            ask = round(bid + int(self.market.spread[p.symbol][i]) * spec.point, spec.digits)
        else:
            bid, ask, _ = q
        price = bid if p.type == C.POSITION_TYPE_BUY else ask
        return self.profit(self.specs[p.symbol], p.type == 0, p.volume, p.price_open, price, t), price

    def floating(self, t: int | None = None) -> float:
        t = self.now if t is None else t
        return round(sum(self.position_profit(p, t)[0] + p.swap for p in self.positions), 2)

    def margin(self, t: int | None = None, positions: list[Position] | None = None) -> float:
        """Margin of the open positions. Hedged (opposite) volume of a symbol is margined once, on the
        larger leg (spec 5.7: margin_hedged_use_leg; the exact formula is [U])."""
        t = self.now if t is None else t
        if positions is None:
            if not self.positions:
                return 0.0
            # The open positions change only through deals (and volume through partial-close deals), so
            # (t, deals so far) identifies the book: the same margin is not recomputed within a point.
            key = (t, len(self.deals))
            if self._margin_cache[0] == key:
                return self._margin_cache[1]
            value = self._margin_of(t, self.positions)
            self._margin_cache = (key, value)
            return value
        return self._margin_of(t, positions)

    def _margin_of(self, t: int, positions: list[Position]) -> float:
        total = 0.0
        by_symbol: dict[str, list[Position]] = {}
        for p in positions:
            by_symbol.setdefault(p.symbol, []).append(p)
        for sym, ps in by_symbol.items():
            spec = self.specs[sym]
            legs = {0: 0.0, 1: 0.0}
            value = {0: 0.0, 1: 0.0}
            for p in ps:
                legs[p.type] += p.volume
                value[p.type] += self.margin_for(spec, p.volume, p.price_open, t)
            if self.settings.hedging:
                total += max(value[0], value[1])
            else:
                total += value[0] + value[1]
        return round(total, 2)

    def equity(self, t: int | None = None) -> float:
        return round(self.balance + self.floating(t), 2)

    def margin_level(self, t: int | None = None) -> float:
        m = self.margin(t)
        return round(self.equity(t) / m * 100.0, 2) if m > 0 else 0.0

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
        cursor = no_gap_index if no_gap_index is not None else self._trigger_index(order.symbol, t)
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
            cursor=self._trigger_index(req.symbol, self.now),
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

    # ------------------------------------------------------------------------------ the replay
    def _trigger_index(self, symbol: str, t: int) -> int:
        """Index of the first trigger bar at or after t."""
        assert self.trigger_bars is not None
        return int(self.trigger_bars[symbol].time.searchsorted(t, "left"))

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

    def _scan_position(self, p: Position, stop: int) -> tuple[int, int, float, bool, int] | None:
        """(time, kind, price, ambiguous, index) of p's first SL/TP hit before bar ``stop``, else None."""
        assert self.trigger_bars is not None
        bars = self.trigger_bars[p.symbol]
        spec = self.specs[p.symbol]
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
            return None
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

    def _scan_order(self, o: Order, stop: int) -> tuple[int, int, float, int] | None:
        """(time, what, price, index): activation (what 1) or expiry (what 2) before ``stop``."""
        assert self.trigger_bars is not None
        bars = self.trigger_bars[o.symbol]
        spec = self.specs[o.symbol]
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
            return None
        return int(bars.time[i]), 1, float(price), i

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
        nxt = self._rollover_at
        if nxt[0] != self._next_rollover:
            k = self._next_rollover
            nxt = self._rollover_at = (k, int(self.rollovers[k]) if k < len(self.rollovers) else _NEVER)
        positions = self.positions
        if (
            t < nxt[1]
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
        while self._next_rollover < len(self.rollovers) and int(self.rollovers[self._next_rollover]) <= t:
            r = int(self.rollovers[self._next_rollover])
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
                else self._scan_position(p, self._trigger_index(p.symbol, t))
            )
            if r is not None:
                found[p.ticket] = ("p", p, r)
                heapq.heappush(heap, (r[0], 0, p.ticket, 0))

        def push_order(o: Order) -> None:
            r = (
                self._scan_order_ticks(o, t)
                if ticks_mode
                else self._scan_order(o, self._trigger_index(o.symbol, t))
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
            lo, hi = self._trigger_index(p.symbol, self.now), self._trigger_index(p.symbol, before)
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

    # ---------------------------------------------------------------------------------- swaps
    def swap_charge(self, p: Position, t: int) -> float:
        """One night's swap for position p in deposit currency (spec 5.10), rounded to cents."""
        spec = self.specs[p.symbol]
        rate = spec.swap_long if p.type == 0 else spec.swap_short
        mode = spec.swap_mode
        if mode == SwapMode.DISABLED or rate == 0:
            return 0.0
        if mode == SwapMode.POINTS:
            amount, ccy = rate * spec.point * spec.trade_contract_size * p.volume, spec.currency_profit
        elif mode == SwapMode.CURRENCY_SYMBOL:
            amount, ccy = rate * p.volume, spec.currency_base
        elif mode == SwapMode.CURRENCY_MARGIN:
            amount, ccy = rate * p.volume, spec.currency_margin
        elif mode == SwapMode.CURRENCY_DEPOSIT:
            amount, ccy = rate * p.volume, self.settings.currency
        else:  # INTEREST_CURRENT / INTEREST_OPEN: annual % of the price, 360-day year
            price = self.market.bid_before(p.symbol, t) if mode == SwapMode.INTEREST_CURRENT else p.price_open
            amount, ccy = (
                rate / 100.0 / 360.0 * price * spec.trade_contract_size * p.volume,
                spec.currency_profit,
            )
        return round(amount * self.rate(ccy, t), 2)


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
