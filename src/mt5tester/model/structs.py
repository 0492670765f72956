"""Result records and numpy dtypes of the ``MetaTrader5`` package (spec §3).

The package returns C struct-sequences: tuple subclasses with attribute access, ``_asdict()`` and a
namedtuple-style repr (spec §1). ``typing.NamedTuple`` gives all three, and the **field order** is the
spec's, because user code unpacks these tuples and builds ``pd.DataFrame(list(x))`` from them (spec §3).

Every field has a zero default (0 / 0.0 / '' / False) so the simulator can build partially filled records
(``TradePosition(ticket=5, volume=0.1)``), as the real terminal reports unset fields as zeros.
Times are int seconds of server time and ``*_msc`` int milliseconds (spec 5.2).
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple, get_type_hints

import numpy as np

# --- 3.1 rates and 3.2 ticks arrays (dtypes as the package prints them, OBS) ----------------------------
RATES_DTYPE: Final = np.dtype(
    [
        ("time", "<i8"),
        ("open", "<f8"),
        ("high", "<f8"),
        ("low", "<f8"),
        ("close", "<f8"),
        ("tick_volume", "<u8"),
        ("spread", "<i4"),
        ("real_volume", "<u8"),
    ]
)

TICKS_DTYPE: Final = np.dtype(
    [
        ("time", "<i8"),
        ("bid", "<f8"),
        ("ask", "<f8"),
        ("last", "<f8"),
        ("volume", "<u8"),
        ("time_msc", "<i8"),
        ("flags", "<u4"),
        ("volume_real", "<f8"),
    ]
)


class Tick(NamedTuple):
    """``symbol_info_tick()`` result; same fields as a TICKS_DTYPE row (spec 3.2)."""

    time: int = 0
    bid: float = 0.0
    ask: float = 0.0
    last: float = 0.0
    volume: int = 0
    time_msc: int = 0
    flags: int = 0  # TICK_FLAG_* bit mask
    volume_real: float = 0.0


class AccountInfo(NamedTuple):
    """``account_info()`` result, 28 fields (spec 3.3)."""

    login: int = 0
    trade_mode: int = 0  # ACCOUNT_TRADE_MODE_*
    leverage: int = 0  # 100 means 1:100
    limit_orders: int = 0
    margin_so_mode: int = 0  # ACCOUNT_STOPOUT_MODE_*
    trade_allowed: bool = False
    trade_expert: bool = False
    margin_mode: int = 0  # ACCOUNT_MARGIN_MODE_* (2 = hedging)
    currency_digits: int = 0
    fifo_close: bool = False
    balance: float = 0.0
    credit: float = 0.0
    profit: float = 0.0
    equity: float = 0.0
    margin: float = 0.0
    margin_free: float = 0.0
    margin_level: float = 0.0  # % ; 0.0 while margin is 0
    margin_so_call: float = 0.0
    margin_so_so: float = 0.0
    margin_initial: float = 0.0
    margin_maintenance: float = 0.0
    assets: float = 0.0
    liabilities: float = 0.0
    commission_blocked: float = 0.0
    name: str = ""
    server: str = ""
    currency: str = ""
    company: str = ""


class TerminalInfo(NamedTuple):
    """``terminal_info()`` result, 22 fields (spec 3.4)."""

    community_account: bool = False
    community_connection: bool = False
    connected: bool = False
    dlls_allowed: bool = False
    trade_allowed: bool = False
    tradeapi_disabled: bool = False
    email_enabled: bool = False
    ftp_enabled: bool = False
    notifications_enabled: bool = False
    mqid: bool = False
    build: int = 0
    maxbars: int = 0  # "Max bars in chart": caps how far back copy_rates_* reaches
    codepage: int = 0
    ping_last: int = 0  # microseconds
    community_balance: float = 0.0
    retransmission: float = 0.0
    company: str = ""
    name: str = ""
    language: str = ""
    path: str = ""
    data_path: str = ""
    commondata_path: str = ""


class SymbolInfo(NamedTuple):
    """``symbol_info()`` result, 96 fields in the package's order (spec 3.5)."""

    custom: bool = False
    chart_mode: int = 0  # SYMBOL_CHART_MODE_*
    select: bool = False
    visible: bool = False
    session_deals: int = 0
    session_buy_orders: int = 0
    session_sell_orders: int = 0
    volume: int = 0
    volumehigh: int = 0
    volumelow: int = 0
    time: int = 0
    digits: int = 0
    spread: int = 0  # points
    spread_float: bool = False
    ticks_bookdepth: int = 0
    trade_calc_mode: int = 0  # SYMBOL_CALC_MODE_*
    trade_mode: int = 0  # SYMBOL_TRADE_MODE_*
    start_time: int = 0
    expiration_time: int = 0
    trade_stops_level: int = 0  # points (spec 5.5)
    trade_freeze_level: int = 0  # points (spec 5.5)
    trade_exemode: int = 0  # SYMBOL_TRADE_EXECUTION_*
    swap_mode: int = 0  # SYMBOL_SWAP_MODE_*
    swap_rollover3days: int = 0  # DAY_OF_WEEK_*
    margin_hedged_use_leg: bool = False
    expiration_mode: int = 0  # SYMBOL_EXPIRATION_* bits
    filling_mode: int = 0  # SYMBOL_FILLING_* bits
    order_mode: int = 0  # SYMBOL_ORDER_* bits
    order_gtc_mode: int = 0  # SYMBOL_ORDERS_*
    option_mode: int = 0  # SYMBOL_OPTION_MODE_*
    option_right: int = 0  # SYMBOL_OPTION_RIGHT_*
    bid: float = 0.0
    bidhigh: float = 0.0
    bidlow: float = 0.0
    ask: float = 0.0
    askhigh: float = 0.0
    asklow: float = 0.0
    last: float = 0.0
    lasthigh: float = 0.0
    lastlow: float = 0.0
    volume_real: float = 0.0
    volumehigh_real: float = 0.0
    volumelow_real: float = 0.0
    option_strike: float = 0.0
    point: float = 0.0
    trade_tick_value: float = 0.0
    trade_tick_value_profit: float = 0.0
    trade_tick_value_loss: float = 0.0
    trade_tick_size: float = 0.0
    trade_contract_size: float = 0.0
    trade_accrued_interest: float = 0.0
    trade_face_value: float = 0.0
    trade_liquidity_rate: float = 0.0
    volume_min: float = 0.0
    volume_max: float = 0.0
    volume_step: float = 0.0
    volume_limit: float = 0.0
    swap_long: float = 0.0
    swap_short: float = 0.0
    margin_initial: float = 0.0
    margin_maintenance: float = 0.0
    session_volume: float = 0.0
    session_turnover: float = 0.0
    session_interest: float = 0.0
    session_buy_orders_volume: float = 0.0
    session_sell_orders_volume: float = 0.0
    session_open: float = 0.0
    session_close: float = 0.0
    session_aw: float = 0.0
    session_price_settlement: float = 0.0
    session_price_limit_min: float = 0.0
    session_price_limit_max: float = 0.0
    margin_hedged: float = 0.0
    price_change: float = 0.0
    price_volatility: float = 0.0
    price_theoretical: float = 0.0
    price_greeks_delta: float = 0.0
    price_greeks_theta: float = 0.0
    price_greeks_gamma: float = 0.0
    price_greeks_vega: float = 0.0
    price_greeks_rho: float = 0.0
    price_greeks_omega: float = 0.0
    price_sensitivity: float = 0.0
    basis: str = ""
    category: str = ""
    currency_base: str = ""
    currency_profit: str = ""
    currency_margin: str = ""
    bank: str = ""
    description: str = ""
    exchange: str = ""
    formula: str = ""
    isin: str = ""
    name: str = ""
    page: str = ""
    path: str = ""


class TradePosition(NamedTuple):
    """``positions_get()`` record, 19 fields (spec 3.6). profit excludes swap."""

    ticket: int = 0
    time: int = 0
    time_msc: int = 0
    time_update: int = 0
    time_update_msc: int = 0
    type: int = 0  # POSITION_TYPE_*
    magic: int = 0
    identifier: int = 0  # ticket of the opening order; kept through netting changes
    reason: int = 0  # POSITION_REASON_*
    volume: float = 0.0
    price_open: float = 0.0
    sl: float = 0.0
    tp: float = 0.0
    price_current: float = 0.0
    swap: float = 0.0
    profit: float = 0.0
    symbol: str = ""
    comment: str = ""
    external_id: str = ""


class TradeOrder(NamedTuple):
    """``orders_get()`` / ``history_orders_get()`` record, 24 fields (spec 3.7)."""

    ticket: int = 0
    time_setup: int = 0
    time_setup_msc: int = 0
    time_done: int = 0
    time_done_msc: int = 0
    time_expiration: int = 0
    type: int = 0  # ORDER_TYPE_*
    type_time: int = 0  # ORDER_TIME_*
    type_filling: int = 0  # ORDER_FILLING_*
    state: int = 0  # ORDER_STATE_*
    magic: int = 0
    position_id: int = 0
    position_by_id: int = 0
    reason: int = 0  # ORDER_REASON_*
    volume_initial: float = 0.0
    volume_current: float = 0.0
    price_open: float = 0.0
    sl: float = 0.0
    tp: float = 0.0
    price_current: float = 0.0
    price_stoplimit: float = 0.0
    symbol: str = ""
    comment: str = ""
    external_id: str = ""


class TradeDeal(NamedTuple):
    """``history_deals_get()`` record, 18 fields (spec 3.8)."""

    ticket: int = 0
    order: int = 0
    time: int = 0
    time_msc: int = 0
    type: int = 0  # DEAL_TYPE_* (2 = BALANCE for a deposit)
    entry: int = 0  # DEAL_ENTRY_*
    magic: int = 0
    position_id: int = 0
    reason: int = 0  # DEAL_REASON_*
    volume: float = 0.0
    price: float = 0.0
    commission: float = 0.0
    swap: float = 0.0
    profit: float = 0.0
    fee: float = 0.0
    symbol: str = ""
    comment: str = ""
    external_id: str = ""


class TradeRequest(NamedTuple):
    """The request echoed in OrderSendResult / OrderCheckResult, 17 fields (spec 3.9, 5.3)."""

    action: int = 0  # TRADE_ACTION_*
    magic: int = 0
    order: int = 0
    symbol: str = ""
    volume: float = 0.0
    price: float = 0.0
    stoplimit: float = 0.0
    sl: float = 0.0
    tp: float = 0.0
    deviation: int = 0  # points
    type: int = 0  # ORDER_TYPE_*
    type_filling: int = 0  # ORDER_FILLING_*
    type_time: int = 0  # ORDER_TIME_*
    expiration: int = 0
    comment: str = ""
    position: int = 0
    position_by: int = 0


class OrderSendResult(NamedTuple):
    """``order_send()`` result, 11 fields (spec 3.10)."""

    retcode: int = 0  # TRADE_RETCODE_*
    deal: int = 0
    order: int = 0
    volume: float = 0.0
    price: float = 0.0
    bid: float = 0.0
    ask: float = 0.0
    comment: str = ""
    request_id: int = 0
    retcode_external: int = 0
    request: TradeRequest = TradeRequest()


class OrderCheckResult(NamedTuple):
    """``order_check()`` result, 9 fields (spec 3.11): account figures as they would be after the trade."""

    retcode: int = 0  # 0 with comment "Done" when the request passes
    balance: float = 0.0
    equity: float = 0.0
    profit: float = 0.0
    margin: float = 0.0
    margin_free: float = 0.0
    margin_level: float = 0.0
    comment: str = ""
    request: TradeRequest = TradeRequest()


class BookInfo(NamedTuple):
    """``market_book_get()`` record (spec 3.12)."""

    type: int = 0  # BOOK_TYPE_*: 1 = sell (ask side), 2 = buy
    price: float = 0.0
    volume: int = 0
    volume_dbl: float = 0.0


# --- order_send / order_check request dict (spec §2, 5.3) ----------------------------------------------
# Python type each request key must have: the TradeRequest annotations (field order = validation order).
# The strict reading of the package [U: its exact coercions are not documented]: a double field needs a
# float (numpy.float64 is one; an int such as volume=1 is refused, a commonly reported cause of
# 'Invalid "volume" argument'), an integer field an int, a string field a str. MqlTradeRequest's integer
# fields are unsigned tickets/points/times or non-negative enums (REQ), so negative values are refused too.
_REQUEST_KINDS: Final[dict[str, Any]] = get_type_hints(TradeRequest)


def _invalid(key: object) -> ValueError:
    # Same wording as the package's last_error() text for a bad request key (spec §2).
    return ValueError(f'Invalid "{key}" argument')


def trade_request_from_dict(d: dict[str, Any]) -> TradeRequest:
    """Validate an ``order_send``/``order_check`` request dict and build the TradeRequest it echoes.

    Absent keys become 0 / 0.0 / '' (spec 3.9). Keys are validated one by one in the field order the
    package's messages list them (spec §2), then any key that is not a request field is rejected; the
    first problem raises ``ValueError('Invalid "<key>" argument')``, which the API layer turns into
    ``order_send`` returning None with last_error -2.
    """
    if not isinstance(d, dict):
        raise ValueError("Invalid 1st unnamed argument")
    # The common case, every key a field and every value of exactly its field's type (the engine's own
    # requests, most scripts'): the dict is already the request. Anything else is checked key by key
    # below, which converts subclasses (numpy.float64) and finds the package's first message.
    for key, value in d.items():
        kind = _REQUEST_KINDS.get(key)
        if type(value) is not kind or (kind is int and value < 0):
            break
    else:
        return TradeRequest(**d)
    values: dict[str, Any] = {}
    for key, kind in _REQUEST_KINDS.items():
        if key not in d:
            continue
        value = d[key]
        if kind is float:
            if not isinstance(value, float):
                raise _invalid(key)
            values[key] = float(value)
        elif kind is int:
            if not isinstance(value, int) or value < 0:
                raise _invalid(key)
            values[key] = int(value)
        else:
            if not isinstance(value, str):
                raise _invalid(key)
            values[key] = str(value)
    for key in d:
        if key not in _REQUEST_KINDS:
            raise _invalid(key)
    return TradeRequest(**values)
