"""MT5's money and request rules, compiled once (numba, ``cache=True``) and called by the Python trade
server (money, ledger, trading, replay) and by the whole-run kernel alike: there is no second copy.

Every function takes plain numbers (kinds as ints) so both callers reach it without objects. Where a
rule needs a currency rate, the caller passes it (``money.rate`` finds it from the loaded pairs).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Python's round, compiled (arith/rounding.py): the rules round with it; callers reach it here too
from mt5tester.arith.rounding import round_array, round_to  # noqa: F401

# How a profit in the symbol's profit currency becomes deposit currency (spec 5.8).
CONV_NONE, CONV_DIVIDE_CLOSE, CONV_RATE = 0, 1, 2
# SYMBOL_CALC_MODE_* (spec 4.10), as model.symbol.CalcMode
FOREX, FUTURES, CFD, CFDINDEX, CFDLEVERAGE, FOREX_NO_LEVERAGE = 0, 1, 2, 3, 4, 5
# SYMBOL_SWAP_MODE_* (spec 4.11), as model.symbol.SwapMode
SWAP_DISABLED, SWAP_POINTS, SWAP_CURRENCY_SYMBOL, SWAP_CURRENCY_MARGIN = 0, 1, 2, 3
SWAP_CURRENCY_DEPOSIT, SWAP_INTEREST_CURRENT, SWAP_INTEREST_OPEN = 4, 5, 6


@njit(cache=True)
def profit_raw(
    is_buy: bool, volume: float, open_: float, close: float, contract: float, conv: int, rate: float
) -> float:
    """Profit in deposit currency, unrounded (spec 5.8). ``conv``: CONV_NONE (profit currency is the
    deposit), CONV_DIVIDE_CLOSE (the base is: USDJPY on a USD account divides by the closing rate),
    CONV_RATE (times ``rate``, deposit units per profit-currency unit)."""
    raw = (close - open_) * contract * volume * (1.0 if is_buy else -1.0)
    if conv == CONV_NONE:
        return raw * 1.0
    if conv == CONV_DIVIDE_CLOSE:
        return raw * (1.0 / close)
    return raw * rate


@njit(cache=True)
def tick_value(bid: float, point: float, contract: float, conv: int, rate: float) -> float:
    """SYMBOL_TRADE_TICK_VALUE (spec 3.5, 5.8): the deposit-currency value of one tick for 1 lot at the
    bid, rounded to 8 decimals."""
    return round_to(abs(profit_raw(True, 1.0, bid, bid + point, contract, conv, rate)), 8)


@njit(cache=True)
def profit_raw_many(
    is_buy: np.ndarray, volume: np.ndarray, open_: np.ndarray, close: np.ndarray, contract: float, conv: int,
    rate: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """``profit_raw`` of each row (the records' MFE/MAE of a million-bar run in one call)."""
    out = np.empty(len(volume))
    for j in range(len(volume)):
        out[j] = profit_raw(is_buy[j], volume[j], open_[j], close[j], contract, conv, rate[j])
    return out


@njit(cache=True)
def profit(
    is_buy: bool, volume: float, open_: float, close: float, contract: float, conv: int, rate: float
) -> float:
    """Profit in deposit currency, rounded to cents as MT5 does per deal."""
    return round_to(profit_raw(is_buy, volume, open_, close, contract, conv, rate), 2)


@njit(cache=True)
def margin(
    calc_mode: int, volume: float, contract: float, margin_rate: float, leverage: float, price: float,
    factor: float,
) -> float:  # fmt: skip
    """Initial margin of ``volume`` lots in deposit currency (spec 5.9), unrounded. ``factor`` turns the
    margin currency into deposit currency: the symbol's own price when its base currency is margined
    on a deposit-currency quote, else the rate of the margin (forex) or profit (CFD) currency."""
    contracts = volume * contract
    if calc_mode == FOREX or calc_mode == FOREX_NO_LEVERAGE:  # noqa: SIM109 - numba-friendly
        mg = contracts * margin_rate / (leverage if calc_mode == FOREX else 1.0)
        return mg * factor
    if calc_mode == CFDLEVERAGE:
        mg = contracts * price / leverage * margin_rate
    else:  # CFD, CFDINDEX (tick price = tick size here), FUTURES approximated as CFD
        mg = contracts * price * margin_rate
    return mg * factor


@njit(cache=True)
def commission(
    enabled: bool, rate_: float, per_lot: bool, volume: float, contract: float, price: float, conv: float
) -> float:
    """Commission of one deal (negative, cents): ``rate_`` per lot, or percent of the deal's value in
    deposit currency (``conv``: deposit units per profit-currency unit)."""
    if not enabled or rate_ == 0.0:
        return 0.0
    if per_lot:
        return -round_to(rate_ * volume, 2)
    value = volume * contract * price * conv
    return -round_to(value * rate_ / 100.0, 2)


@njit(cache=True)
def swap_amount(mode: int, rate_: float, point: float, contract: float, volume: float, price: float) -> float:
    """One night's swap in the currency the mode names (spec 5.10), before conversion: points (profit
    currency), money per lot (base, margin or deposit currency), or annual interest on ``price`` over a
    360-day year (profit currency)."""
    if mode == SWAP_DISABLED or rate_ == 0.0:
        return 0.0
    if mode == SWAP_POINTS:
        return rate_ * point * contract * volume
    if mode == SWAP_CURRENCY_SYMBOL or mode == SWAP_CURRENCY_MARGIN or mode == SWAP_CURRENCY_DEPOSIT:  # noqa: SIM109
        return rate_ * volume
    return rate_ / 100.0 / 360.0 * price * contract * volume


@njit(cache=True)
def slipped(price: float, points: int, is_buy: bool, point: float, digits: int) -> float:
    """A fill price moved ``points`` against the trader (buys up, sells down), at the symbol's digits."""
    return round_to(price + (points if is_buy else -points) * point, digits)


@njit(cache=True)
def volume_ok(volume: float, vmin: float, vmax: float, step: float) -> bool:
    """spec 5.6: min <= v <= max and (v - min) a multiple of step."""
    if volume < vmin - 1e-12 or volume > vmax + 1e-12:
        return False
    steps = (volume - vmin) / step
    return abs(steps - round_to(steps, 0)) < 1e-7


@njit(cache=True)
def stops_ok(is_buy: bool, ref: float, sl: float, tp: float, stops_level: float) -> bool:
    """spec 5.5: SL/TP (0 = none) on the right side of ``ref`` and at least ``stops_level`` (a price
    distance) away."""
    lvl = stops_level - 1e-12
    if is_buy:
        return (sl == 0.0 or (ref - sl >= lvl and sl < ref)) and (tp == 0.0 or (tp - ref >= lvl and tp > ref))
    return (sl == 0.0 or (sl - ref >= lvl and sl > ref)) and (tp == 0.0 or (ref - tp >= lvl and tp < ref))


@njit(cache=True)
def frozen(ref: float, level: float, freeze: float) -> bool:
    """spec 5.5 freeze level: a set ``level`` within ``freeze`` (a price distance) of ``ref``."""
    return freeze > 0.0 and level != 0.0 and abs(ref - level) <= freeze


@njit(cache=True)
def netted_open(open_: float, volume: float, price: float, added: float, digits: int) -> float:
    """Open price of a netting position after adding ``added`` lots at ``price``: volume-weighted,
    kept to three digits more than the symbol's."""
    return round_to((open_ * volume + price * added) / round_to(volume + added, 8), digits + 3)


# ORDER_TYPE_* (spec 4.2)
_BUY_LIMIT, _SELL_LIMIT, _BUY_STOP, _SELL_STOP, _BUY_STOP_LIMIT, _SELL_STOP_LIMIT = 2, 3, 4, 5, 6, 7


@njit(cache=True)
def placement_ok(
    type_: int, price: float, stoplimit: float, bid: float, ask: float, stops_level: float
) -> bool:
    """spec 5.3/5.5: limits below Ask / above Bid, stops above Ask / below Bid, at least the stops
    level (a price distance) away; a stop-limit's limit price on the near side of its stop."""
    lvl = stops_level - 1e-12
    if price <= 0.0:
        return False
    if type_ == _BUY_LIMIT:
        return ask - price >= lvl and price < ask
    if type_ == _SELL_LIMIT:
        return price - bid >= lvl and price > bid
    if type_ == _BUY_STOP or type_ == _BUY_STOP_LIMIT:  # noqa: SIM109 - numba-friendly
        ok = price - ask >= lvl and price > ask
        return ok and (type_ == _BUY_STOP or 0.0 < stoplimit <= price)
    if type_ == _SELL_STOP or type_ == _SELL_STOP_LIMIT:  # noqa: SIM109 - numba-friendly
        ok = bid - price >= lvl and price < bid
        return ok and (type_ == _SELL_STOP or stoplimit >= price)
    return False
