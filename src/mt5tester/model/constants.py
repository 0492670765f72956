"""Constants of the ``MetaTrader5`` Python package, with its exact names and values (spec §4).

Strategy code does ``import MetaTrader5 as mt5`` and uses ``mt5.ORDER_TYPE_BUY`` and friends; our simulated
terminal exposes the same names with the same int values so that code runs unchanged (spec §1: "All
constants are module-level ints"). Everything here is a plain ``int`` (no enums), as in the package.

A few bit-flag names below (SYMBOL_FILLING_*, SYMBOL_EXPIRATION_*, SYMBOL_ORDER_*) are MQL5 names that the
package itself does **not** export; they are marked as such and exist for the simulator's own checks of
``SymbolInfo.filling_mode`` / ``expiration_mode`` / ``order_mode`` (spec §3.5 table).
"""

from __future__ import annotations

from typing import Final

from mt5tester.model.timeframe import Timeframe

# --- 4.1 TIMEFRAME_*: minutes as is, hours 0x4000 | h, weeks 0x8000 | 1, months 0xC000 | 1 ---------------
# Reuse the model's enum so the two can never drift apart; int() keeps the package's plain-int type.
TIMEFRAME_M1: Final = int(Timeframe.M1)
TIMEFRAME_M2: Final = int(Timeframe.M2)
TIMEFRAME_M3: Final = int(Timeframe.M3)
TIMEFRAME_M4: Final = int(Timeframe.M4)
TIMEFRAME_M5: Final = int(Timeframe.M5)
TIMEFRAME_M6: Final = int(Timeframe.M6)
TIMEFRAME_M10: Final = int(Timeframe.M10)
TIMEFRAME_M12: Final = int(Timeframe.M12)
TIMEFRAME_M15: Final = int(Timeframe.M15)
TIMEFRAME_M20: Final = int(Timeframe.M20)
TIMEFRAME_M30: Final = int(Timeframe.M30)
TIMEFRAME_H1: Final = int(Timeframe.H1)
TIMEFRAME_H2: Final = int(Timeframe.H2)
TIMEFRAME_H3: Final = int(Timeframe.H3)
TIMEFRAME_H4: Final = int(Timeframe.H4)
TIMEFRAME_H6: Final = int(Timeframe.H6)
TIMEFRAME_H8: Final = int(Timeframe.H8)
TIMEFRAME_H12: Final = int(Timeframe.H12)
TIMEFRAME_D1: Final = int(Timeframe.D1)
TIMEFRAME_W1: Final = int(Timeframe.W1)
TIMEFRAME_MN1: Final = int(Timeframe.MN1)

# --- 4.2 ORDER_TYPE_* ---------------------------------------------------------------------------------
ORDER_TYPE_BUY: Final = 0
ORDER_TYPE_SELL: Final = 1
ORDER_TYPE_BUY_LIMIT: Final = 2
ORDER_TYPE_SELL_LIMIT: Final = 3
ORDER_TYPE_BUY_STOP: Final = 4
ORDER_TYPE_SELL_STOP: Final = 5
ORDER_TYPE_BUY_STOP_LIMIT: Final = 6
ORDER_TYPE_SELL_STOP_LIMIT: Final = 7
ORDER_TYPE_CLOSE_BY: Final = 8

# --- 4.3 TRADE_ACTION_* (2, 3, 4 and 9 are unused by the package) --------------------------------------
TRADE_ACTION_DEAL: Final = 1
TRADE_ACTION_PENDING: Final = 5
TRADE_ACTION_SLTP: Final = 6
TRADE_ACTION_MODIFY: Final = 7
TRADE_ACTION_REMOVE: Final = 8
TRADE_ACTION_CLOSE_BY: Final = 10

# --- 4.4 ORDER_FILLING_* (the request's type_filling; NOT the SymbolInfo.filling_mode bits) -------------
ORDER_FILLING_FOK: Final = 0
ORDER_FILLING_IOC: Final = 1
ORDER_FILLING_RETURN: Final = 2
ORDER_FILLING_BOC: Final = 3

# --- 4.5 ORDER_TIME_* -----------------------------------------------------------------------------------
ORDER_TIME_GTC: Final = 0
ORDER_TIME_DAY: Final = 1
ORDER_TIME_SPECIFIED: Final = 2
ORDER_TIME_SPECIFIED_DAY: Final = 3

# --- 4.6 ORDER_STATE_* and ORDER_REASON_* ---------------------------------------------------------------
ORDER_STATE_STARTED: Final = 0
ORDER_STATE_PLACED: Final = 1
ORDER_STATE_CANCELED: Final = 2
ORDER_STATE_PARTIAL: Final = 3
ORDER_STATE_FILLED: Final = 4
ORDER_STATE_REJECTED: Final = 5
ORDER_STATE_EXPIRED: Final = 6
ORDER_STATE_REQUEST_ADD: Final = 7
ORDER_STATE_REQUEST_MODIFY: Final = 8
ORDER_STATE_REQUEST_CANCEL: Final = 9

ORDER_REASON_CLIENT: Final = 0
ORDER_REASON_MOBILE: Final = 1
ORDER_REASON_WEB: Final = 2
ORDER_REASON_EXPERT: Final = 3
ORDER_REASON_SL: Final = 4
ORDER_REASON_TP: Final = 5
ORDER_REASON_SO: Final = 6

# --- 4.7 POSITION_TYPE_* and POSITION_REASON_* ----------------------------------------------------------
POSITION_TYPE_BUY: Final = 0
POSITION_TYPE_SELL: Final = 1

POSITION_REASON_CLIENT: Final = 0
POSITION_REASON_MOBILE: Final = 1
POSITION_REASON_WEB: Final = 2
POSITION_REASON_EXPERT: Final = 3

# --- 4.8 DEAL_TYPE_*, DEAL_ENTRY_*, DEAL_REASON_* -------------------------------------------------------
DEAL_TYPE_BUY: Final = 0
DEAL_TYPE_SELL: Final = 1
DEAL_TYPE_BALANCE: Final = 2
DEAL_TYPE_CREDIT: Final = 3
DEAL_TYPE_CHARGE: Final = 4
DEAL_TYPE_CORRECTION: Final = 5
DEAL_TYPE_BONUS: Final = 6
DEAL_TYPE_COMMISSION: Final = 7
DEAL_TYPE_COMMISSION_DAILY: Final = 8
DEAL_TYPE_COMMISSION_MONTHLY: Final = 9
DEAL_TYPE_COMMISSION_AGENT_DAILY: Final = 10
DEAL_TYPE_COMMISSION_AGENT_MONTHLY: Final = 11
DEAL_TYPE_INTEREST: Final = 12
DEAL_TYPE_BUY_CANCELED: Final = 13
DEAL_TYPE_SELL_CANCELED: Final = 14
# The package spells these three without "_TYPE" (spec 4.8); keep its spelling exactly.
DEAL_DIVIDEND: Final = 15
DEAL_DIVIDEND_FRANKED: Final = 16
DEAL_TAX: Final = 17

DEAL_ENTRY_IN: Final = 0
DEAL_ENTRY_OUT: Final = 1
DEAL_ENTRY_INOUT: Final = 2  # netting reversal (spec 5.7)
DEAL_ENTRY_OUT_BY: Final = 3  # close-by

DEAL_REASON_CLIENT: Final = 0
DEAL_REASON_MOBILE: Final = 1
DEAL_REASON_WEB: Final = 2
DEAL_REASON_EXPERT: Final = 3
DEAL_REASON_SL: Final = 4
DEAL_REASON_TP: Final = 5
DEAL_REASON_SO: Final = 6  # stop out (spec 5.11)
DEAL_REASON_ROLLOVER: Final = 7
DEAL_REASON_VMARGIN: Final = 8
DEAL_REASON_SPLIT: Final = 9

# --- 4.9 COPY_TICKS_* and TICK_FLAG_* (bit mask in Tick.flags; bit 0x80 seen in real data is undocumented)
COPY_TICKS_ALL: Final = -1
COPY_TICKS_INFO: Final = 1
COPY_TICKS_TRADE: Final = 2

TICK_FLAG_BID: Final = 0x02
TICK_FLAG_ASK: Final = 0x04
TICK_FLAG_LAST: Final = 0x08
TICK_FLAG_VOLUME: Final = 0x10
TICK_FLAG_BUY: Final = 0x20
TICK_FLAG_SELL: Final = 0x40

# --- 4.10 SYMBOL_CALC_MODE_* (margin/profit formulas in spec 5.8/5.9) -----------------------------------
SYMBOL_CALC_MODE_FOREX: Final = 0
SYMBOL_CALC_MODE_FUTURES: Final = 1
SYMBOL_CALC_MODE_CFD: Final = 2
SYMBOL_CALC_MODE_CFDINDEX: Final = 3
SYMBOL_CALC_MODE_CFDLEVERAGE: Final = 4
SYMBOL_CALC_MODE_FOREX_NO_LEVERAGE: Final = 5
SYMBOL_CALC_MODE_EXCH_STOCKS: Final = 32
SYMBOL_CALC_MODE_EXCH_FUTURES: Final = 33
SYMBOL_CALC_MODE_EXCH_OPTIONS: Final = 34
SYMBOL_CALC_MODE_EXCH_OPTIONS_MARGIN: Final = 36
SYMBOL_CALC_MODE_EXCH_BONDS: Final = 37
SYMBOL_CALC_MODE_EXCH_STOCKS_MOEX: Final = 38
SYMBOL_CALC_MODE_EXCH_BONDS_MOEX: Final = 39
SYMBOL_CALC_MODE_SERV_COLLATERAL: Final = 64

SYMBOL_TRADE_MODE_DISABLED: Final = 0
SYMBOL_TRADE_MODE_LONGONLY: Final = 1
SYMBOL_TRADE_MODE_SHORTONLY: Final = 2
SYMBOL_TRADE_MODE_CLOSEONLY: Final = 3
SYMBOL_TRADE_MODE_FULL: Final = 4

SYMBOL_TRADE_EXECUTION_REQUEST: Final = 0
SYMBOL_TRADE_EXECUTION_INSTANT: Final = 1
SYMBOL_TRADE_EXECUTION_MARKET: Final = 2
SYMBOL_TRADE_EXECUTION_EXCHANGE: Final = 3

SYMBOL_CHART_MODE_BID: Final = 0
SYMBOL_CHART_MODE_LAST: Final = 1

SYMBOL_ORDERS_GTC: Final = 0
SYMBOL_ORDERS_DAILY: Final = 1
SYMBOL_ORDERS_DAILY_NO_STOPS: Final = 2

SYMBOL_OPTION_RIGHT_CALL: Final = 0
SYMBOL_OPTION_RIGHT_PUT: Final = 1

SYMBOL_OPTION_MODE_EUROPEAN: Final = 0
SYMBOL_OPTION_MODE_AMERICAN: Final = 1

# --- 4.11 SYMBOL_SWAP_MODE_* (charging rules in spec 5.10) and DAY_OF_WEEK_* ----------------------------
SYMBOL_SWAP_MODE_DISABLED: Final = 0
SYMBOL_SWAP_MODE_POINTS: Final = 1
SYMBOL_SWAP_MODE_CURRENCY_SYMBOL: Final = 2
SYMBOL_SWAP_MODE_CURRENCY_MARGIN: Final = 3
SYMBOL_SWAP_MODE_CURRENCY_DEPOSIT: Final = 4
SYMBOL_SWAP_MODE_INTEREST_CURRENT: Final = 5
SYMBOL_SWAP_MODE_INTEREST_OPEN: Final = 6
SYMBOL_SWAP_MODE_REOPEN_CURRENT: Final = 7
SYMBOL_SWAP_MODE_REOPEN_BID: Final = 8

# SymbolInfo.swap_rollover3days holds one of these (3 = Wednesday on most forex symbols, spec 3.5).
DAY_OF_WEEK_SUNDAY: Final = 0
DAY_OF_WEEK_MONDAY: Final = 1
DAY_OF_WEEK_TUESDAY: Final = 2
DAY_OF_WEEK_WEDNESDAY: Final = 3
DAY_OF_WEEK_THURSDAY: Final = 4
DAY_OF_WEEK_FRIDAY: Final = 5
DAY_OF_WEEK_SATURDAY: Final = 6

# --- 4.12 ACCOUNT_* and BOOK_TYPE_* ---------------------------------------------------------------------
ACCOUNT_TRADE_MODE_DEMO: Final = 0
ACCOUNT_TRADE_MODE_CONTEST: Final = 1
ACCOUNT_TRADE_MODE_REAL: Final = 2

ACCOUNT_STOPOUT_MODE_PERCENT: Final = 0
ACCOUNT_STOPOUT_MODE_MONEY: Final = 1

ACCOUNT_MARGIN_MODE_RETAIL_NETTING: Final = 0
ACCOUNT_MARGIN_MODE_EXCHANGE: Final = 1
ACCOUNT_MARGIN_MODE_RETAIL_HEDGING: Final = 2

BOOK_TYPE_SELL: Final = 1
BOOK_TYPE_BUY: Final = 2
BOOK_TYPE_SELL_MARKET: Final = 3
BOOK_TYPE_BUY_MARKET: Final = 4

# --- SymbolInfo bit flags (spec 3.5 table). MQL5 names; NOT exported by the MetaTrader5 package. ---------
# filling_mode: which ORDER_FILLING_* a symbol allows for market orders (1 = FOK, 2 = IOC).
SYMBOL_FILLING_FOK: Final = 1
SYMBOL_FILLING_IOC: Final = 2
# expiration_mode: which ORDER_TIME_* a pending order may use.
SYMBOL_EXPIRATION_GTC: Final = 1
SYMBOL_EXPIRATION_DAY: Final = 2
SYMBOL_EXPIRATION_SPECIFIED: Final = 4
SYMBOL_EXPIRATION_SPECIFIED_DAY: Final = 8
# order_mode: which order kinds the symbol accepts.
SYMBOL_ORDER_MARKET: Final = 1
SYMBOL_ORDER_LIMIT: Final = 2
SYMBOL_ORDER_STOP: Final = 4
SYMBOL_ORDER_STOP_LIMIT: Final = 8
SYMBOL_ORDER_SL: Final = 16
SYMBOL_ORDER_TP: Final = 32
SYMBOL_ORDER_CLOSEBY: Final = 64

# --- 4.13 last_error() codes (RES_*) ---------------------------------------------------------------------
RES_S_OK: Final = 1
RES_E_FAIL: Final = -1
RES_E_INVALID_PARAMS: Final = -2
RES_E_NO_MEMORY: Final = -3
RES_E_NOT_FOUND: Final = -4
RES_E_INVALID_VERSION: Final = -5
RES_E_AUTH_FAILED: Final = -6
RES_E_UNSUPPORTED: Final = -7
RES_E_AUTO_TRADING_DISABLED: Final = -8
RES_E_INTERNAL_FAIL: Final = -10000
RES_E_INTERNAL_FAIL_SEND: Final = -10001
RES_E_INTERNAL_FAIL_RECEIVE: Final = -10002
RES_E_INTERNAL_FAIL_INIT: Final = -10003
RES_E_INTERNAL_FAIL_CONNECT: Final = -10004  # the DOC-PY table misprints it as -10003 (spec 4.13)
RES_E_INTERNAL_FAIL_TIMEOUT: Final = -10005

# Default message of each last_error() code: the texts the package's pyd returns (spec 4.13 and §2).
# Argument errors replace the -2 text with a specific one, e.g. 'Invalid "volume" argument' (spec §2).
LAST_ERROR_MESSAGES: Final[dict[int, str]] = {
    RES_S_OK: "Success",
    RES_E_FAIL: "Terminal: Call failed",
    RES_E_INVALID_PARAMS: "Terminal: Invalid params",
    RES_E_NO_MEMORY: "Terminal: Out of memory",
    RES_E_NOT_FOUND: "Terminal: Not found",
    # The spec truncates this one ("Terminal: Incompatible versions…"); the full string is the one users
    # report after a terminal auto-update (mql5.com forum 438477).
    RES_E_INVALID_VERSION: (
        "Terminal: Incompatible versions, please install the latest version of Terminal and Python module"
    ),
    RES_E_AUTH_FAILED: "Terminal: Authorization failed",
    RES_E_UNSUPPORTED: "Terminal: Unsupported function",
    RES_E_AUTO_TRADING_DISABLED: "Auto-Trading using Python API disabled in Terminal",
    RES_E_INTERNAL_FAIL: "IPC call failed",
    RES_E_INTERNAL_FAIL_SEND: "IPC send failed",
    RES_E_INTERNAL_FAIL_RECEIVE: "IPC recv failed",
    RES_E_INTERNAL_FAIL_INIT: "IPC initialize failed, MetaTrader 5 x64 not found",  # full text: spec §2
    RES_E_INTERNAL_FAIL_CONNECT: "No IPC connection",
    RES_E_INTERNAL_FAIL_TIMEOUT: "IPC timeout",
}

# --- 4.14 TRADE_RETCODE_* (OrderSendResult.retcode) ------------------------------------------------------
# 10005 and 10037 do not exist; 10046 HEDGE_PROHIBITED is in the MQL5 docs but the package (5.0.6231) does
# not export it, so neither do we: code probing hasattr(mt5, ...) must see the same answer.
TRADE_RETCODE_REQUOTE: Final = 10004
TRADE_RETCODE_REJECT: Final = 10006
TRADE_RETCODE_CANCEL: Final = 10007
TRADE_RETCODE_PLACED: Final = 10008
TRADE_RETCODE_DONE: Final = 10009
TRADE_RETCODE_DONE_PARTIAL: Final = 10010
TRADE_RETCODE_ERROR: Final = 10011
TRADE_RETCODE_TIMEOUT: Final = 10012
TRADE_RETCODE_INVALID: Final = 10013
TRADE_RETCODE_INVALID_VOLUME: Final = 10014
TRADE_RETCODE_INVALID_PRICE: Final = 10015
TRADE_RETCODE_INVALID_STOPS: Final = 10016
TRADE_RETCODE_TRADE_DISABLED: Final = 10017
TRADE_RETCODE_MARKET_CLOSED: Final = 10018
TRADE_RETCODE_NO_MONEY: Final = 10019
TRADE_RETCODE_PRICE_CHANGED: Final = 10020
TRADE_RETCODE_PRICE_OFF: Final = 10021
TRADE_RETCODE_INVALID_EXPIRATION: Final = 10022
TRADE_RETCODE_ORDER_CHANGED: Final = 10023
TRADE_RETCODE_TOO_MANY_REQUESTS: Final = 10024
TRADE_RETCODE_NO_CHANGES: Final = 10025
TRADE_RETCODE_SERVER_DISABLES_AT: Final = 10026
TRADE_RETCODE_CLIENT_DISABLES_AT: Final = 10027
TRADE_RETCODE_LOCKED: Final = 10028
TRADE_RETCODE_FROZEN: Final = 10029
TRADE_RETCODE_INVALID_FILL: Final = 10030
TRADE_RETCODE_CONNECTION: Final = 10031
TRADE_RETCODE_ONLY_REAL: Final = 10032
TRADE_RETCODE_LIMIT_ORDERS: Final = 10033
TRADE_RETCODE_LIMIT_VOLUME: Final = 10034
TRADE_RETCODE_INVALID_ORDER: Final = 10035
TRADE_RETCODE_POSITION_CLOSED: Final = 10036
TRADE_RETCODE_INVALID_CLOSE_VOLUME: Final = 10038
TRADE_RETCODE_CLOSE_ORDER_EXIST: Final = 10039
TRADE_RETCODE_LIMIT_POSITIONS: Final = 10040
TRADE_RETCODE_REJECT_CANCEL: Final = 10041
TRADE_RETCODE_LONG_ONLY: Final = 10042
TRADE_RETCODE_SHORT_ONLY: Final = 10043
TRADE_RETCODE_CLOSE_ONLY: Final = 10044
TRADE_RETCODE_FIFO_CLOSE: Final = 10045

# order_check() reports a request that passes with retcode 0 and comment "Done" (spec §2); 0 is not a
# TRADE_RETCODE_* constant, so it has no name here, only a comment below.
ORDER_CHECK_OK_RETCODE: Final = 0

# Short comment the simulated server puts in OrderSendResult.comment / OrderCheckResult.comment for each
# retcode (meanings from spec 4.14; wording follows the trade server's own short texts where known, e.g.
# 10009 'Request executed' in the DOC-PY order_send example, 10019 'No money').
RETCODE_COMMENTS: Final[dict[int, str]] = {
    ORDER_CHECK_OK_RETCODE: "Done",
    TRADE_RETCODE_REQUOTE: "Requote",
    TRADE_RETCODE_REJECT: "Request rejected",
    TRADE_RETCODE_CANCEL: "Request canceled by trader",
    TRADE_RETCODE_PLACED: "Order placed",
    TRADE_RETCODE_DONE: "Request executed",
    TRADE_RETCODE_DONE_PARTIAL: "Request executed partially",
    TRADE_RETCODE_ERROR: "Request processing error",
    TRADE_RETCODE_TIMEOUT: "Request canceled by timeout",
    TRADE_RETCODE_INVALID: "Invalid request",
    TRADE_RETCODE_INVALID_VOLUME: "Invalid volume",
    TRADE_RETCODE_INVALID_PRICE: "Invalid price",
    TRADE_RETCODE_INVALID_STOPS: "Invalid stops",
    TRADE_RETCODE_TRADE_DISABLED: "Trade disabled",
    TRADE_RETCODE_MARKET_CLOSED: "Market closed",
    TRADE_RETCODE_NO_MONEY: "No money",
    TRADE_RETCODE_PRICE_CHANGED: "Prices changed",
    TRADE_RETCODE_PRICE_OFF: "Off quotes",
    TRADE_RETCODE_INVALID_EXPIRATION: "Invalid expiration",
    TRADE_RETCODE_ORDER_CHANGED: "Order state changed",
    TRADE_RETCODE_TOO_MANY_REQUESTS: "Too many requests",
    TRADE_RETCODE_NO_CHANGES: "No changes",
    TRADE_RETCODE_SERVER_DISABLES_AT: "AutoTrading disabled by server",
    TRADE_RETCODE_CLIENT_DISABLES_AT: "AutoTrading disabled by client",
    TRADE_RETCODE_LOCKED: "Request locked for processing",
    TRADE_RETCODE_FROZEN: "Order or position frozen",
    TRADE_RETCODE_INVALID_FILL: "Unsupported filling mode",
    TRADE_RETCODE_CONNECTION: "No connection",
    TRADE_RETCODE_ONLY_REAL: "Only real accounts allowed",
    TRADE_RETCODE_LIMIT_ORDERS: "Pending orders limit reached",
    TRADE_RETCODE_LIMIT_VOLUME: "Volume limit reached",
    TRADE_RETCODE_INVALID_ORDER: "Invalid order type",
    TRADE_RETCODE_POSITION_CLOSED: "Position already closed",
    TRADE_RETCODE_INVALID_CLOSE_VOLUME: "Close volume exceeds position volume",
    TRADE_RETCODE_CLOSE_ORDER_EXIST: "Close order already exists",
    TRADE_RETCODE_LIMIT_POSITIONS: "Positions limit reached",
    TRADE_RETCODE_REJECT_CANCEL: "Pending order activation rejected, order canceled",
    TRADE_RETCODE_LONG_ONLY: "Only long positions allowed",
    TRADE_RETCODE_SHORT_ONLY: "Only short positions allowed",
    TRADE_RETCODE_CLOSE_ONLY: "Only position closing allowed",
    TRADE_RETCODE_FIFO_CLOSE: "Position closing allowed only by FIFO rule",
}
