"""Trading on the simulated server: ``send`` (order_send, spec 5.3) and ``check`` (order_check, spec
3.11) over a ``TradeState``, with the checks of spec 5.5-5.7 (volume, stops, freeze level, margin).
Fills are applied by ``ledger``; prices and money come from ``money``."""

from __future__ import annotations

from mt5tester.model import constants as C
from mt5tester.model.structs import OrderCheckResult, OrderSendResult, TradeRequest
from mt5tester.model.symbol import SymbolSpec
from mt5tester.model.trade import BUY_TYPES, PENDING_TYPES, Order, Position
from mt5tester.terminal import ledger, money
from mt5tester.terminal.core import rules
from mt5tester.terminal.state import Market, TradeState


def _fail(retcode: int, request: TradeRequest, bid: float = 0.0, ask: float = 0.0) -> OrderSendResult:
    return OrderSendResult(
        retcode, 0, 0, 0.0, 0.0, bid, ask, C.RETCODE_COMMENTS.get(retcode, ""), 0, 0, request
    )


def _check_volume(spec: SymbolSpec, volume: float) -> bool:
    """spec 5.6: min <= v <= max and (v - min) a multiple of step."""
    return bool(rules.volume_ok(volume, spec.volume_min, spec.volume_max, spec.volume_step))


def _stops_ok(spec: SymbolSpec, is_buy: bool, ref: float, sl: float, tp: float) -> bool:
    """spec 5.5: SL/TP on the right side of ``ref`` and at least the stops level away."""
    return bool(rules.stops_ok(is_buy, ref, sl, tp, spec.trade_stops_level * spec.point))


# ---------------------------------------------------------------------------------- trading
def _slip(m: Market, s: TradeState, spec: SymbolSpec, price: float, is_buy: bool) -> float:
    cfg = m.settings
    if cfg.slippage_model == "none" or cfg.slippage_points == 0:
        return price
    # Random slippage draws from the state's generator, so a restored state draws what the run would.
    pts = (
        cfg.slippage_points
        if cfg.slippage_model == "fixed"
        else int(s.rng.integers(0, cfg.slippage_points + 1))
    )
    return float(rules.slipped(price, pts, is_buy, spec.point, spec.digits))


def send(m: Market, s: TradeState, req: TradeRequest) -> OrderSendResult:
    """order_send semantics (spec 5.3). Refusals are results with a retcode, never exceptions. The request
    is the whole input, as on a real server: who sent it is told by its ``magic`` and ``comment``."""
    handler = _HANDLERS.get(req.action)
    if handler is None:
        return _fail(C.TRADE_RETCODE_INVALID, req)
    return handler(m, s, req)


def _deal(m: Market, s: TradeState, req: TradeRequest) -> OrderSendResult:
    spec = m.specs.get(req.symbol)
    if spec is None:
        return _fail(C.TRADE_RETCODE_INVALID, req)
    if req.type not in (C.ORDER_TYPE_BUY, C.ORDER_TYPE_SELL):
        return _fail(C.TRADE_RETCODE_INVALID_ORDER, req)
    q = money.quote(m, req.symbol, s.now)
    if q is None:
        return _fail(C.TRADE_RETCODE_MARKET_CLOSED, req)
    bid, ask, _ = q
    if not _check_volume(spec, req.volume):
        return _fail(C.TRADE_RETCODE_INVALID_VOLUME, req, bid, ask)
    is_buy = req.type == C.ORDER_TYPE_BUY
    price = _slip(m, s, spec, ask if is_buy else bid, is_buy)
    t = s.now
    target: Position | None = None
    if req.position:
        target = next((p for p in s.positions if p.ticket == req.position), None)
        if target is None or target.symbol != req.symbol:
            return _fail(C.TRADE_RETCODE_POSITION_CLOSED, req, bid, ask)
        if (target.type == C.POSITION_TYPE_BUY) == is_buy:
            return _fail(C.TRADE_RETCODE_INVALID, req, bid, ask)
        if req.volume > target.volume + 1e-9:
            return _fail(C.TRADE_RETCODE_INVALID_CLOSE_VOLUME, req, bid, ask)
    elif not m.settings.hedging:
        target = next((p for p in s.positions if p.symbol == req.symbol), None)
    closing = target is not None and (target.type == C.POSITION_TYPE_BUY) != is_buy
    # SL/TP of an opening (or adding) deal are checked against the side the position closes at.
    if not closing and not _stops_ok(spec, is_buy, bid if is_buy else ask, req.sl, req.tp):
        return _fail(C.TRADE_RETCODE_INVALID_STOPS, req, bid, ask)
    if not closing or (target is not None and req.volume > target.volume + 1e-9):
        # spec 5.9 / 3.11: refused when the trade raises the margin beyond the equity (free margin < 0).
        after = money.margin_with(m, s, t, req.symbol, 0 if is_buy else 1, req.volume, price)
        if after > money.margin(m, s, t) and money.equity(m, s, t) - after < 0:
            return _fail(C.TRADE_RETCODE_NO_MONEY, req, bid, ask)
    order = ledger.history_order(
        s,
        req.symbol,
        req.type,
        req.volume,
        price,
        t,
        C.ORDER_REASON_EXPERT,
        0,
        req.comment,
        req.magic,
    )
    deal = ledger.execute(
        m, s, order, is_buy, req.volume, price, t, req.sl, req.tp, target, C.DEAL_REASON_EXPERT
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


def _pending(m: Market, s: TradeState, req: TradeRequest) -> OrderSendResult:
    spec = m.specs.get(req.symbol)
    if spec is None or req.type not in PENDING_TYPES:
        return _fail(C.TRADE_RETCODE_INVALID_ORDER if spec else C.TRADE_RETCODE_INVALID, req)
    q = money.quote(m, req.symbol, s.now)
    if q is None:
        return _fail(C.TRADE_RETCODE_MARKET_CLOSED, req)
    bid, ask, _ = q
    if not _check_volume(spec, req.volume):
        return _fail(C.TRADE_RETCODE_INVALID_VOLUME, req, bid, ask)
    if not _placement_ok(spec, req.type, req.price, req.stoplimit, bid, ask):
        return _fail(C.TRADE_RETCODE_INVALID_PRICE, req, bid, ask)
    is_buy = req.type in BUY_TYPES
    entry = (
        req.stoplimit
        if req.type in (C.ORDER_TYPE_BUY_STOP_LIMIT, C.ORDER_TYPE_SELL_STOP_LIMIT)
        else req.price
    )
    if not _stops_ok(spec, is_buy, entry, req.sl, req.tp):
        return _fail(C.TRADE_RETCODE_INVALID_STOPS, req, bid, ask)
    expiration = _expiration(m, s, req)
    if expiration is None:
        return _fail(C.TRADE_RETCODE_INVALID_EXPIRATION, req, bid, ask)
    o = Order(
        ledger.new_ticket(s),
        req.symbol,
        req.type,
        req.volume,
        req.volume,
        req.price,
        req.sl,
        req.tp,
        req.stoplimit,
        s.now,
        req.type_time,
        req.type_filling,
        expiration,
        magic=req.magic,
        comment=req.comment,
        cursor=m.entry_index(req.symbol, s.now),
    )
    s.orders.append(o)
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


def _expiration(m: Market, s: TradeState, req: TradeRequest) -> int | None:
    """UTC ns when the order expires, 0 for never, None when invalid (spec 4.5)."""
    if req.type_time == C.ORDER_TIME_GTC:
        return 0
    if req.type_time == C.ORDER_TIME_DAY:
        nxt = [int(r) for r in m.rollovers if r > s.now]
        return nxt[0] if nxt else 0
    if req.type_time in (C.ORDER_TIME_SPECIFIED, C.ORDER_TIME_SPECIFIED_DAY):
        exp = int(req.expiration) * 1_000_000_000 - s.server_offset_ns
        if req.type_time == C.ORDER_TIME_SPECIFIED_DAY:
            exp = exp - exp % (86_400 * 10**9) + 86_400 * 10**9 - 10**9
        return exp if exp > s.now else None
    return None


def _placement_ok(
    spec: SymbolSpec, type_: int, price: float, stoplimit: float, bid: float, ask: float
) -> bool:
    """spec 5.3/5.5: limits below Ask / above Bid, stops above Ask / below Bid, at the stops level."""
    return bool(rules.placement_ok(type_, price, stoplimit, bid, ask, spec.trade_stops_level * spec.point))


def _frozen(spec: SymbolSpec, is_buy: bool, levels: list[float], bid: float, ask: float) -> bool:
    """spec 5.5 freeze level: nothing within trade_freeze_level points of the price can change."""
    ref, lvl = (bid if is_buy else ask), spec.trade_freeze_level * spec.point
    return any(rules.frozen(ref, float(x), lvl) for x in levels)


def _sltp(m: Market, s: TradeState, req: TradeRequest) -> OrderSendResult:
    p = next((x for x in s.positions if x.ticket == req.position), None)
    if p is None:
        return _fail(C.TRADE_RETCODE_POSITION_CLOSED, req)
    spec = m.specs[p.symbol]
    q = money.quote(m, p.symbol, s.now)
    if q is None:
        return _fail(C.TRADE_RETCODE_MARKET_CLOSED, req)
    bid, ask, _ = q
    is_buy = p.type == C.POSITION_TYPE_BUY
    if abs(req.sl - p.sl) < 1e-12 and abs(req.tp - p.tp) < 1e-12:
        return _fail(C.TRADE_RETCODE_NO_CHANGES, req, bid, ask)
    if _frozen(spec, is_buy, [p.sl, p.tp], bid, ask):
        return _fail(C.TRADE_RETCODE_FROZEN, req, bid, ask)
    if not _stops_ok(spec, is_buy, bid if is_buy else ask, req.sl, req.tp):
        return _fail(C.TRADE_RETCODE_INVALID_STOPS, req, bid, ask)
    p.sl, p.tp, p.time_update = req.sl, req.tp, s.now
    ledger.watch_from(m, p, s.now)
    return OrderSendResult(C.TRADE_RETCODE_DONE, 0, 0, 0.0, 0.0, bid, ask, "Request executed", 0, 0, req)


def _modify(m: Market, s: TradeState, req: TradeRequest) -> OrderSendResult:
    o = next((x for x in s.orders if x.ticket == req.order), None)
    if o is None:
        return _fail(C.TRADE_RETCODE_INVALID_ORDER, req)
    spec = m.specs[o.symbol]
    q = money.quote(m, o.symbol, s.now)
    if q is None:
        return _fail(C.TRADE_RETCODE_MARKET_CLOSED, req)
    bid, ask, _ = q
    is_buy = o.type in BUY_TYPES
    if _frozen(spec, is_buy, [o.price_open], bid, ask):
        return _fail(C.TRADE_RETCODE_FROZEN, req, bid, ask)
    stoplimit = req.stoplimit or o.price_stoplimit
    if not _placement_ok(spec, o.type, req.price, stoplimit, bid, ask):
        return _fail(C.TRADE_RETCODE_INVALID_PRICE, req, bid, ask)
    entry = stoplimit if o.type in (C.ORDER_TYPE_BUY_STOP_LIMIT, C.ORDER_TYPE_SELL_STOP_LIMIT) else req.price
    if not _stops_ok(spec, is_buy, entry, req.sl, req.tp):
        return _fail(C.TRADE_RETCODE_INVALID_STOPS, req, bid, ask)
    expiration = _expiration(m, s, req)
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


def _remove(m: Market, s: TradeState, req: TradeRequest) -> OrderSendResult:
    o = next((x for x in s.orders if x.ticket == req.order), None)
    if o is None:
        return _fail(C.TRADE_RETCODE_INVALID_ORDER, req)
    q = money.quote(m, o.symbol, s.now)
    bid, ask = (q[0], q[1]) if q else (0.0, 0.0)
    if q and _frozen(m.specs[o.symbol], o.type in BUY_TYPES, [o.price_open], bid, ask):
        return _fail(C.TRADE_RETCODE_FROZEN, req, bid, ask)
    ledger.finish_order(s, o, C.ORDER_STATE_CANCELED, s.now)
    return OrderSendResult(
        C.TRADE_RETCODE_DONE, 0, o.ticket, 0.0, 0.0, bid, ask, "Request executed", 0, 0, req
    )


def _close_by(m: Market, s: TradeState, req: TradeRequest) -> OrderSendResult:
    """Close two opposite positions of one symbol against each other (hedging; OUT_BY deals).

    Both closing deals are at the open price of ``position_by`` [U], so the pair realises the
    difference of the two open prices on the smaller volume (all of it on ``position``) and no
    spread is paid.
    """
    if not m.settings.hedging:
        return _fail(C.TRADE_RETCODE_INVALID, req)
    a = next((x for x in s.positions if x.ticket == req.position), None)
    b = next((x for x in s.positions if x.ticket == req.position_by), None)
    if a is None or b is None:
        return _fail(C.TRADE_RETCODE_POSITION_CLOSED, req)
    if a.symbol != b.symbol or a.type == b.type:
        return _fail(C.TRADE_RETCODE_INVALID, req)
    t = s.now
    volume = min(a.volume, b.volume)
    pa = pb = b.price_open
    oa = ledger.history_order(
        s,
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
    da = ledger.close_part(
        m, s, a, volume, pa, t, C.DEAL_REASON_EXPERT, req.comment, oa.ticket, C.DEAL_ENTRY_OUT_BY
    )
    ledger.close_part(
        m, s, b, volume, pb, t, C.DEAL_REASON_EXPERT, req.comment, oa.ticket, C.DEAL_ENTRY_OUT_BY
    )
    return OrderSendResult(
        C.TRADE_RETCODE_DONE, da.ticket, oa.ticket, volume, pa, 0.0, 0.0, "Request executed", 0, 0, req
    )


_HANDLERS = {  # TRADE_ACTION_* -> its handler (send)
    C.TRADE_ACTION_DEAL: _deal,
    C.TRADE_ACTION_PENDING: _pending,
    C.TRADE_ACTION_SLTP: _sltp,
    C.TRADE_ACTION_MODIFY: _modify,
    C.TRADE_ACTION_REMOVE: _remove,
    C.TRADE_ACTION_CLOSE_BY: _close_by,
}


def check(m: Market, s: TradeState, req: TradeRequest) -> OrderCheckResult:
    """order_check: the account as it would be after the request (spec 3.11); nothing changes."""
    spec = m.specs.get(req.symbol)
    q = money.quote(m, req.symbol, s.now) if spec else None
    equity, margin = money.equity(m, s, s.now), money.margin(m, s, s.now)
    floating = money.floating(m, s, s.now)
    if spec is None or q is None or not _check_volume(spec, req.volume):
        code, text = (
            (C.TRADE_RETCODE_INVALID, "Invalid request")
            if spec is None
            else (C.TRADE_RETCODE_MARKET_CLOSED, "Market closed")
            if q is None
            else (C.TRADE_RETCODE_INVALID_VOLUME, "Invalid volume")
        )
        return OrderCheckResult(code, s.balance, equity, floating, margin, equity - margin, 0.0, text, req)
    is_buy = req.type in BUY_TYPES
    price = req.price or (q[1] if is_buy else q[0])
    after = margin
    if req.action in (C.TRADE_ACTION_DEAL, C.TRADE_ACTION_PENDING) and not req.position:
        extra = Position(0, 0, req.symbol, 0 if is_buy else 1, req.volume, price, 0, 0, s.now, s.now)
        after = money.margin(m, s, s.now, [*s.positions, extra])
    free = float(rules.round_to(equity - after, 2))
    level = float(rules.round_to(equity / after * 100, 2)) if after > 0 else 0.0
    code, comment = (0, "Done") if free >= 0 else (C.TRADE_RETCODE_NO_MONEY, "No money")
    return OrderCheckResult(code, s.balance, equity, floating, after, free, level, comment, req)
