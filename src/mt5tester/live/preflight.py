"""Preflight of a session, before the first order: the terminal is connected and allows trading, the
account allows expert trading, every symbol exists and is selected, and the config's symbol settings are
compared with the broker's ``symbol_info`` (each difference listed: the backtest assumed them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mt5tester.config import Config
from mt5tester.errors import ConfigError
from mt5tester.model import constants as C

# SymbolSpec fields that have a symbol_info field of the same name and meaning (spec 3.5)
COMPARED = (
    "digits",
    "point",
    "trade_contract_size",
    "currency_base",
    "currency_profit",
    "currency_margin",
    "trade_calc_mode",
    "volume_min",
    "volume_max",
    "volume_step",
    "trade_stops_level",
    "trade_freeze_level",
    "swap_mode",
    "swap_long",
    "swap_short",
)


@dataclass
class PreflightReport:
    account: dict[str, Any]
    differences: list[str] = field(default_factory=list)  # config vs broker, one line each


def _fail(what: str, mt5: Any, fix: str) -> ConfigError:
    code, text = mt5.last_error()
    return ConfigError(f"preflight: {what} (last_error {code}: {text}). {fix}")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)), abs(float(b)))
    return bool(a == b)


def preflight(mt5: Any, cfg: Config) -> PreflightReport:
    """Connect and check; ConfigError (exit 2) naming what is wrong and how to fix it."""
    if not mt5.initialize():
        raise _fail("the terminal did not initialize", mt5, "Start the MetaTrader 5 terminal and log in")
    term = mt5.terminal_info()
    if term is None or not term.connected:
        raise _fail("the terminal is not connected to its trade server", mt5, "Check its connection")
    if not term.trade_allowed:
        raise ConfigError("preflight: algorithmic trading is disabled in the terminal: press 'Algo Trading'")
    acc = mt5.account_info()
    if acc is None:
        raise _fail("no account", mt5, "Log in to the trading account in the terminal")
    if not acc.trade_allowed or not acc.trade_expert:
        raise ConfigError(
            f"preflight: account {acc.login} on {acc.server} does not allow expert trading "
            f"(trade_allowed {acc.trade_allowed}, trade_expert {acc.trade_expert}); ask the broker"
        )
    bt = cfg.backtest
    diffs: list[str] = []
    if acc.currency != bt.deposit_currency:
        diffs.append(
            f"account: currency {acc.currency}, config backtest.deposit_currency {bt.deposit_currency}"
        )
    hedging = acc.margin_mode == C.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING
    if hedging != (bt.account_mode == "hedging"):
        diffs.append(
            f"account: {'hedging' if hedging else 'netting'}, config backtest.account_mode {bt.account_mode}"
        )
    if acc.leverage != bt.leverage:
        diffs.append(f"account: leverage {acc.leverage}, config backtest.leverage {bt.leverage}")
    for symbol in bt.symbols:
        info = mt5.symbol_info(symbol)
        if info is None:
            raise _fail(
                f"symbol {symbol} is not offered by {acc.server}",
                mt5,
                "Name it as the broker spells it (e.g. EURUSD.a) in backtest.symbols",
            )
        if not info.select and not mt5.symbol_select(symbol, True):
            raise _fail(
                f"symbol {symbol} cannot be selected in Market Watch", mt5, "Select it in the terminal"
            )
        if info.trade_mode == C.SYMBOL_TRADE_MODE_DISABLED:
            raise ConfigError(f"preflight: trading {symbol} is disabled on {acc.server}")
        spec = cfg.symbol_spec(symbol)
        for name in COMPARED:
            ours, theirs = getattr(spec, name), getattr(info, name)
            ours = int(ours) if name in ("trade_calc_mode", "swap_mode") else ours
            if not _same(ours, theirs):
                diffs.append(f"{symbol}: {name} broker {theirs!r}, config {ours!r}")
    account = {
        "login": acc.login,
        "server": acc.server,
        "company": acc.company,
        "currency": acc.currency,
        "leverage": acc.leverage,
        "hedging": hedging,
        "balance": acc.balance,
    }
    return PreflightReport(account, diffs)
