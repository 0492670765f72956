"""The book-keeping of the trade server: tickets, deals, history orders, and fills applied to the
positions (open, add, reduce, close, reverse). Functions over a ``TradeState``; the only code that
appends deals or changes the balance."""

from __future__ import annotations

import numpy as np

from mt5tester.model import constants as C
from mt5tester.model.trade import Deal, Order, Position
from mt5tester.terminal import money
from mt5tester.terminal.core import rules
from mt5tester.terminal.records import ServerSettings
from mt5tester.terminal.state import Market, TradeState


def open_account(settings: ServerSettings) -> TradeState:
    """A new account: the deposit deal (#1, dated 0 until the engine dates it) and nothing else."""
    s = TradeState(rng=np.random.default_rng(settings.seed))
    add_deal(
        s, 0, 0, C.DEAL_TYPE_BALANCE, C.DEAL_ENTRY_IN, C.DEAL_REASON_CLIENT, 0, "", 0.0, 0.0, 0.0,
        settings.deposit, "deposit",
    )  # fmt: skip
    return s


def round_volume(v: float) -> float:
    return float(rules.round_to(v, 8))


def new_ticket(s: TradeState) -> int:
    t = s.next_ticket
    s.next_ticket += 1
    return t


def add_deal(
    s: TradeState,
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
    swap: float = 0.0,
    magic: int = 0,
) -> Deal:
    s.balance = float(rules.round_to(s.balance + profit + commission + swap, 2))
    d = Deal(
        s.next_deal, order, t, type_, entry, reason, position_id, symbol, volume, price, commission, swap,
        profit, s.balance, comment, magic,
    )  # fmt: skip
    s.next_deal += 1
    s.deals.append(d)
    return d


def history_order(
    s: TradeState,
    symbol: str,
    type_: int,
    volume: float,
    price: float,
    t: int,
    reason: int,
    position_id: int,
    comment: str,
    magic: int = 0,
    position_by: int = 0,
) -> Order:
    """A market order, filled at once: recorded in history with state FILLED."""
    o = Order(
        new_ticket(s), symbol, type_, volume, 0.0, price, 0.0, 0.0, 0.0, t,
        state=C.ORDER_STATE_FILLED, time_done=t, magic=magic, position_id=position_id,
        position_by_id=position_by, reason=reason, comment=comment, price_done=price,
    )  # fmt: skip
    s.history_orders.append(o)
    return o


def finish_order(s: TradeState, o: Order, state: int, t: int) -> None:
    """A pending order leaves the book (filled, canceled, expired, rejected) for the history."""
    o.state, o.time_done = state, t
    s.orders = [x for x in s.orders if x is not o]
    s.history_orders.append(o)


def close_part(
    m: Market,
    s: TradeState,
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
    spec = m.specs[p.symbol]
    is_buy = p.type == C.POSITION_TYPE_BUY
    profit = money.profit(m, spec, is_buy, volume, p.price_open, price, t)
    share = volume / p.volume
    swap = float(rules.round_to(p.swap * share, 2))
    p.swap = float(rules.round_to(p.swap - swap, 2))
    commission = money.commission(m, spec, volume, price, t)
    d = add_deal(
        s, order, t, C.DEAL_TYPE_SELL if is_buy else C.DEAL_TYPE_BUY, entry, reason, p.identifier,
        p.symbol, volume, price, commission, profit, comment, swap, p.magic if magic is None else magic,
    )  # fmt: skip
    p.volume = round_volume(p.volume - volume)
    p.time_update = t
    if p.volume <= 1e-9:
        s.positions = [q for q in s.positions if q is not p]
    return d


def close_position(
    m: Market, s: TradeState, p: Position, t: int, price: float, reason: int, comment: str
) -> Deal:
    """Close all of p at ``price`` (SL, TP, stop-out, end of run) with a server-side order."""
    close_type = C.ORDER_TYPE_SELL if p.type == C.POSITION_TYPE_BUY else C.ORDER_TYPE_BUY
    order_reason = {
        C.DEAL_REASON_SL: C.ORDER_REASON_SL,
        C.DEAL_REASON_TP: C.ORDER_REASON_TP,
        C.DEAL_REASON_SO: C.ORDER_REASON_SO,
    }.get(reason, C.ORDER_REASON_EXPERT)
    o = history_order(
        s, p.symbol, close_type, p.volume, price, t, order_reason, p.identifier, comment, p.magic
    )  # fmt: skip
    return close_part(m, s, p, p.volume, price, t, reason, comment, o.ticket)


def execute(
    m: Market,
    s: TradeState,
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
    spec = m.specs[order.symbol]
    if target is not None and (target.type == C.POSITION_TYPE_BUY) != is_buy:
        if volume <= target.volume + 1e-9:
            order.position_id = target.identifier
            return close_part(m, s, target, volume, price, t, reason, order.comment, order.ticket)
        # Netting reversal (spec 5.7): close the position and open the rest, one INOUT deal.
        rest = round_volume(volume - target.volume)
        closed = target.volume
        profit = money.profit(m, spec, target.type == 0, closed, target.price_open, price, t)
        commission = money.commission(m, spec, volume, price, t)
        swap = float(rules.round_to(target.swap, 2))
        cursor = _entry_cursor(m, order.symbol, t, no_gap_index)
        order.position_id = target.identifier
        d = _order_deal(
            s, order, is_buy, C.DEAL_ENTRY_INOUT, reason, target.identifier, volume, price, t, commission,
            profit, swap,
        )  # fmt: skip
        target.type = 0 if is_buy else 1
        target.volume, target.price_open, target.swap = rest, price, 0.0
        target.sl, target.tp, target.time_update = sl, tp, t
        target.cursor, target.no_gap_at_cursor = cursor, no_gap_index is not None
        target.tick_from = t + 1
        return d
    commission = money.commission(m, spec, volume, price, t)
    if target is not None:  # netting: add to the position, volume-weighted open price
        new_volume = round_volume(target.volume + volume)
        target.price_open = float(
            rules.netted_open(target.price_open, target.volume, price, volume, spec.digits)
        )
        target.volume, target.time_update = new_volume, t
        if sl or tp:
            target.sl, target.tp = sl, tp
            watch_from(m, target, t)
        order.position_id = target.identifier
        return _order_deal(
            s, order, is_buy, C.DEAL_ENTRY_IN, reason, target.identifier, volume, price, t, commission
        )
    order.position_id = order.ticket
    cursor = _entry_cursor(m, order.symbol, t, no_gap_index)
    s.positions.append(
        Position(
            order.ticket, order.ticket, order.symbol, 0 if is_buy else 1, volume, price, sl, tp, t, t,
            order.magic, order.comment, C.POSITION_REASON_EXPERT, 0.0, cursor, no_gap_index is not None,
        )
    )  # fmt: skip
    return _order_deal(s, order, is_buy, C.DEAL_ENTRY_IN, reason, order.ticket, volume, price, t, commission)


def _entry_cursor(m: Market, symbol: str, t: int, no_gap_index: int | None) -> int:
    """The trigger bar a position opened (or reversed) at t is watched from: a close needs none."""
    return no_gap_index if no_gap_index is not None else m.entry_index(symbol, t)


def watch_from(m: Market, p: Position, t: int) -> None:
    """New SL/TP are checked on prices from t on, never on earlier ones: a position that had none
    was not replayed, so its cursor may lag behind t."""
    p.cursor, p.no_gap_at_cursor, p.tick_from = m.entry_index(p.symbol, t), False, t + 1


def _order_deal(
    s: TradeState,
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
    return add_deal(
        s, order.ticket, t, C.DEAL_TYPE_BUY if is_buy else C.DEAL_TYPE_SELL, entry, reason, position_id,
        order.symbol, volume, price, commission, profit, order.comment, swap, order.magic,
    )  # fmt: skip
