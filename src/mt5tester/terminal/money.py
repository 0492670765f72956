"""Money of the trade server: quotes, currency conversion, profit, margin, commission, swap, equity
(spec 5.4, 5.7-5.10). Functions of the ``Market`` (and, for the account totals, the ``TradeState``)."""

from __future__ import annotations

import numpy as np

from mt5tester.errors import DataError
from mt5tester.model import constants as C
from mt5tester.model.symbol import CalcMode, SwapMode, SymbolSpec
from mt5tester.model.trade import Position
from mt5tester.terminal.core import rules
from mt5tester.terminal.records import MARKET_CLOSED_AFTER_NS
from mt5tester.terminal.state import Market, TradeState


# --------------------------------------------------------------------------------------- prices
def quote(m: Market, symbol: str, t: int) -> tuple[float, float, int] | None:
    """(bid, ask, index of the M1 bar) of the current tick at t, or None when no quote is recent.

    The current tick is ``prices.quote_at(t)``, the one the terminal shows: the last tick at or
    before t of the tester mode's path (spec 6.1: Ask = Bid + the M1 bar's spread).
    """
    cached = m.memo.quotes.get(symbol)
    if cached is not None and cached[0] == t:
        return cached[1]
    q = _quote(m, symbol, t)
    m.memo.quotes[symbol] = (t, q)
    return q


def _quote(m: Market, symbol: str, t: int) -> tuple[float, float, int] | None:
    q = m.prices.quote_at(symbol, t)  # the terminal's quote: fills never use a later price
    if q is None:
        return None
    bid, ask, k, tick_time = q
    last = tick_time if m.settings.tick_mode == "real_ticks" else int(m.prices.m1[symbol].time[k])
    if t - last > MARKET_CLOSED_AFTER_NS:
        return None
    return bid, ask, k


# ----------------------------------------------------------------------------------- conversion
def rate(m: Market, ccy: str, t: int) -> float:
    """Units of deposit currency per unit of ``ccy`` at time t, from the loaded pairs (spec 5.8)."""
    dep = m.settings.currency
    if ccy == dep:
        return 1.0
    direct, inverse = ccy + dep, dep + ccy
    if direct in m.prices.m1:
        return _bid_at(m, direct, t)
    if inverse in m.prices.m1:
        return 1.0 / _bid_at(m, inverse, t)
    raise DataError(f"no conversion pair for {ccy}->{dep}: add {direct} or {inverse} to backtest.symbols")


def _bid_at(m: Market, symbol: str, t: int) -> float:
    """The pair's bid known at t (its quote, however old), never a later one."""
    q = m.prices.quote_at(symbol, t)
    if q is None:
        raise DataError(f"{symbol}: no price at or before {np.datetime64(t, 'ns')}")
    return q[0]


def conversion_kind(m: Market, spec: SymbolSpec) -> int:
    """How the symbol's profit currency turns into deposit currency (spec 5.8), whatever the time."""
    dep = m.settings.currency
    if spec.currency_profit == dep:
        return rules.CONV_NONE
    if spec.currency_base == dep:
        return rules.CONV_DIVIDE_CLOSE  # USDJPY on a USD account: divide by the closing rate
    return rules.CONV_RATE


def conversion(m: Market, spec: SymbolSpec, t: int) -> tuple[int, float]:
    """(conv kind, rate) turning the symbol's profit currency into deposit currency (spec 5.8)."""
    kind = conversion_kind(m, spec)
    return kind, rate(m, spec.currency_profit, t) if kind == rules.CONV_RATE else 1.0


def profit_raw(
    m: Market, spec: SymbolSpec, is_buy: bool, volume: float, open_: float, close: float, t: int
) -> float:
    """Profit in deposit currency (spec 5.8), unrounded."""
    conv, r = conversion(m, spec, t)
    return float(rules.profit_raw(is_buy, volume, open_, close, spec.trade_contract_size, conv, r))


def profit_raw_many(
    m: Market, spec: SymbolSpec, is_buy: np.ndarray, volume: np.ndarray, open_: np.ndarray,
    close: np.ndarray, t: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """``profit_raw`` of each row, the conversion at each row's time (the compiled rule over arrays)."""
    conv = conversion_kind(m, spec)
    if conv == rules.CONV_RATE:
        rates = np.array([rate(m, spec.currency_profit, int(x)) for x in t.tolist()], np.float64)
    else:
        rates = np.ones(len(t))
    return rules.profit_raw_many(
        np.asarray(is_buy, np.bool_), np.asarray(volume, np.float64), np.asarray(open_, np.float64),
        np.asarray(close, np.float64), float(spec.trade_contract_size), conv, rates,
    )  # fmt: skip


def profit(
    m: Market, spec: SymbolSpec, is_buy: bool, volume: float, open_: float, close: float, t: int
) -> float:
    """Profit in deposit currency, rounded to cents as MT5 does per deal."""
    conv, r = conversion(m, spec, t)
    return float(rules.profit(is_buy, volume, open_, close, spec.trade_contract_size, conv, r))


def _margin_rate_currency(m: Market, spec: SymbolSpec) -> str | None:
    """The currency whose rate values the symbol's margin (spec 5.9), or None where the symbol's own
    price does: forex margins the base currency, valued at the symbol's own price on a deposit-currency
    quote; CFDs margin the profit currency."""
    if spec.trade_calc_mode in (CalcMode.FOREX, CalcMode.FOREX_NO_LEVERAGE):
        ccy = spec.currency_margin
        if ccy != m.settings.currency and spec.currency_profit == m.settings.currency:
            return None
        return ccy
    return spec.currency_profit


def margin_factor(m: Market, spec: SymbolSpec, price: float, t: int) -> float:
    """Deposit units per unit of the margin's currency (spec 5.9, see ``_margin_rate_currency``)."""
    ccy = _margin_rate_currency(m, spec)
    return price if ccy is None else rate(m, ccy, t)


def margin_for(m: Market, spec: SymbolSpec, volume: float, price: float, t: int) -> float:
    """Initial margin in deposit currency for ``volume`` lots (spec 5.9)."""
    return float(
        rules.margin(
            int(spec.trade_calc_mode), volume, spec.trade_contract_size, spec.margin_rate,
            float(m.settings.leverage), price, margin_factor(m, spec, price, t),
        )
    )  # fmt: skip


def commission(m: Market, spec: SymbolSpec, volume: float, price: float, t: int) -> float:
    if not m.settings.commission_enabled or spec.commission == 0:
        return 0.0
    per_lot = spec.commission_mode == "per_lot"
    conv = 1.0 if per_lot else rate(m, spec.currency_profit, t)
    return float(
        rules.commission(True, spec.commission, per_lot, volume, spec.trade_contract_size, price, conv)
    )


# -------------------------------------------------------------------------------------- account
def _valuation(m: Market, symbol: str, t: int) -> tuple[float, float]:
    """(bid, ask) open positions are valued at: the quote at t, or with the market closed its last."""
    q = quote(m, symbol, t)
    if q is None:  # market closed: valued at its last quote
        last = m.prices.quote_at(symbol, t)
        if last is None:
            raise DataError(f"{symbol}: no price at or before {np.datetime64(t, 'ns')}")
        return last[0], last[1]
    return q[0], q[1]


Mark = tuple[float, float, float, int, float]  # bid, ask, contract size, conversion kind, rate


def _mark(m: Market, symbol: str, t: int) -> Mark:
    """What values a symbol's open positions at t: its (bid, ask) valuation and profit conversion.
    A function of the market data and t alone: kept per symbol for the last t (the terminal's
    ``positions_get`` values every position of a symbol at the same t)."""
    kept = m.memo.marks.get(symbol)
    if kept is not None and kept[0] == t:
        return kept[1]
    spec = m.specs[symbol]
    bid, ask = _valuation(m, symbol, t)
    mark = (bid, ask, spec.trade_contract_size, *conversion(m, spec, t))
    m.memo.marks[symbol] = (t, mark)
    return mark


def _marked_profit(p: Position, mark: Mark) -> tuple[float, float]:
    bid, ask, contract, conv, r = mark
    buy = p.type == C.POSITION_TYPE_BUY
    price = bid if buy else ask
    return float(rules.profit(buy, p.volume, p.price_open, price, contract, conv, r)), price


def position_profit(m: Market, p: Position, t: int) -> tuple[float, float]:
    """(floating profit without swap, current close price) of a position at t."""
    return _marked_profit(p, _mark(m, p.symbol, t))


def floating(m: Market, s: TradeState, t: int) -> float:
    """Floating profit plus swaps of the open positions, summed in book order: ``position_profit``
    of each, with each symbol's mark looked up once. Kept per (t, deals, rollovers): the book's
    volumes, prices and swaps change only through deals and rollover charges (``replay.advance``
    drops it when it charges swaps), so the account calls within one point compute it once."""
    key = (t, len(s.deals), s.next_rollover)
    kept = s.memo.floating
    if kept is not None and kept[0] == key:
        return kept[1]
    total = 0.0
    marks: dict[str, Mark] = {}
    for p in s.positions:
        mark = marks.get(p.symbol)
        if mark is None:
            mark = marks[p.symbol] = _mark(m, p.symbol, t)
        total += _marked_profit(p, mark)[0] + p.swap
    value = float(rules.round_to(total, 2))
    s.memo.floating = (key, value)
    return value


def margin(m: Market, s: TradeState, t: int, positions: list[Position] | None = None) -> float:
    """Margin of the open positions (or of ``positions``). Hedged (opposite) volume of a symbol is
    margined once, on the larger leg (spec 5.7: margin_hedged_use_leg; the exact formula is [U])."""
    if positions is not None:
        return margin_of(m, t, positions)
    if not s.positions:
        return 0.0
    # The open positions change only through deals (and volume through partial-close deals), so
    # (t, deals so far) identifies the book: the same margin is not recomputed within a point.
    key = (t, len(s.deals))
    if s.memo.margin[0] == key:
        return s.memo.margin[1]
    value = _total(m, _open_sums(m, s, t))
    s.memo.margin = (key, value)
    return value


def margin_of(m: Market, t: int, positions: list[Position]) -> float:
    return _total(m, _sums(m, t, positions))


def _sums(m: Market, t: int, positions: list[Position]) -> dict[str, list[float]]:
    """Per symbol (in the order of first appearance) the [buy, sell] margin sums, in position order."""
    by_symbol: dict[str, list[float]] = {}
    fixed = m.memo.fixed_margin
    for p in positions:
        value = by_symbol.get(p.symbol)
        if value is None:
            value = by_symbol[p.symbol] = [0.0, 0.0]
        key = (p.symbol, p.volume, p.price_open)
        one = fixed.get(key)
        if one is None:
            spec = m.specs[p.symbol]
            one = margin_for(m, spec, p.volume, p.price_open, t)
            if _time_free(m, spec):  # the same lots at the same price: the same margin at any time
                if len(fixed) > 65_536:
                    fixed.clear()
                fixed[key] = one
        value[p.type] += one
    return by_symbol


def _time_free(m: Market, spec: SymbolSpec) -> bool:
    """``margin_for`` of the symbol reads no rate at t: ``margin_factor`` values it at the position's own
    price, or in the deposit currency itself (``rate`` is 1)."""
    ccy = _margin_rate_currency(m, spec)
    return ccy is None or ccy == m.settings.currency


def _open_sums(m: Market, s: TradeState, t: int) -> dict[str, list[float]]:
    """``_sums`` of the open positions, kept per (t, deals)."""
    key = (t, len(s.deals))
    parts = s.memo.margin_parts
    if parts is None or parts[0] != key:
        parts = s.memo.margin_parts = (key, _sums(m, t, s.positions))
    return parts[1]


def _total(m: Market, by_symbol: dict[str, list[float]]) -> float:
    total = 0.0
    hedging = m.settings.hedging
    for value in by_symbol.values():
        total += max(value[0], value[1]) if hedging else value[0] + value[1]
    return float(rules.round_to(total, 2))


def margin_with(
    m: Market, s: TradeState, t: int, symbol: str, type_: int, volume: float, price: float
) -> float:
    """``margin_of`` the open positions plus one more (a request's, at ``price``): the open positions'
    per-symbol sums are kept per (t, deals) and the new one is added last to its symbol's side, as
    ``margin_of`` of the longer list adds it, so the value is the same to the bit."""
    by_symbol = dict(_open_sums(m, s, t))
    value = list(by_symbol.get(symbol, (0.0, 0.0)))
    value[type_] += margin_for(m, m.specs[symbol], volume, price, t)
    by_symbol[symbol] = value
    return _total(m, by_symbol)


def equity(m: Market, s: TradeState, t: int) -> float:
    return float(rules.round_to(s.balance + floating(m, s, t), 2))


def margin_level(m: Market, s: TradeState, t: int) -> float:
    mg = margin(m, s, t)
    return float(rules.round_to(equity(m, s, t) / mg * 100.0, 2)) if mg > 0 else 0.0


# ---------------------------------------------------------------------------------------- swaps
def swap_charge(m: Market, p: Position, t: int) -> float:
    """One night's swap for position p in deposit currency (spec 5.10), rounded to cents."""
    spec = m.specs[p.symbol]
    rate_ = spec.swap_long if p.type == 0 else spec.swap_short
    mode = spec.swap_mode
    if mode == SwapMode.DISABLED or rate_ == 0:
        return 0.0
    ccy = {
        SwapMode.CURRENCY_SYMBOL: spec.currency_base,
        SwapMode.CURRENCY_MARGIN: spec.currency_margin,
        SwapMode.CURRENCY_DEPOSIT: m.settings.currency,
    }.get(mode, spec.currency_profit)
    price = m.prices.bid_before(p.symbol, t) if mode == SwapMode.INTEREST_CURRENT else p.price_open
    amount = rules.swap_amount(int(mode), rate_, spec.point, spec.trade_contract_size, p.volume, price)
    return float(rules.round_to(amount * rate(m, ccy, t), 2))
