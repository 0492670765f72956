"""An importable ``MetaTrader5`` module backed by a SimTerminal, so unmodified scripts run against it.

``install(terminal)`` builds a module object with the package's constants (``model.constants``),
its functions bound to the terminal, its structure types, ``__version__`` and ``__author__`` (spec 1),
and registers it as ``sys.modules["MetaTrader5"]``; ``uninstall()`` removes it.
"""

from __future__ import annotations

import sys
import types

from mt5tester.model import constants, structs
from mt5tester.terminal.api import PACKAGE_VERSION, SimTerminal

FUNCTIONS = (
    "initialize",
    "login",
    "shutdown",
    "version",
    "last_error",
    "account_info",
    "terminal_info",
    "symbols_total",
    "symbols_get",
    "symbol_info",
    "symbol_info_tick",
    "symbol_select",
    "market_book_add",
    "market_book_release",
    "market_book_get",
    "copy_rates_from",
    "copy_rates_from_pos",
    "copy_rates_range",
    "copy_ticks_from",
    "copy_ticks_range",
    "orders_total",
    "orders_get",
    "positions_total",
    "positions_get",
    "history_orders_total",
    "history_orders_get",
    "history_deals_total",
    "history_deals_get",
    "order_calc_margin",
    "order_calc_profit",
    "order_check",
    "order_send",
    "Buy",
    "Sell",
    "Close",
)
# The result structures by their type names (spec 1), so `isinstance(x, mt5.TradePosition)` and
# annotations such as `mt5.SymbolInfo` work as with the real package.
STRUCTURES = (
    "AccountInfo",
    "TerminalInfo",
    "SymbolInfo",
    "Tick",
    "BookInfo",
    "TradeOrder",
    "TradePosition",
    "TradeDeal",
    "TradeRequest",
    "OrderSendResult",
    "OrderCheckResult",
)


def build_module(terminal: SimTerminal) -> types.ModuleType:
    mod = types.ModuleType("MetaTrader5", "MetaTrader 5 terminal API (mt5tester simulation)")
    for name in dir(constants):
        value = getattr(constants, name)
        if name.isupper() and isinstance(value, int):
            setattr(mod, name, value)
    for name in FUNCTIONS:
        setattr(mod, name, getattr(terminal, name))
    for name in STRUCTURES:
        setattr(mod, name, getattr(structs, name))
    mod.__version__ = PACKAGE_VERSION  # type: ignore[attr-defined]
    mod.__author__ = "MetaQuotes Ltd."  # type: ignore[attr-defined]
    return mod


def install(terminal: SimTerminal) -> types.ModuleType:
    mod = build_module(terminal)
    sys.modules["MetaTrader5"] = mod
    return mod


def uninstall() -> None:
    sys.modules.pop("MetaTrader5", None)
