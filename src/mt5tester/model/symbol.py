"""MT5 symbol properties (spec 3.5) and built-in defaults for the usual FX majors, crosses and XAUUSD.

A config lists only what differs from these defaults (``symbols:`` section).
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SwapMode(IntEnum):
    """SYMBOL_SWAP_MODE_* (spec 4.11)."""

    DISABLED = 0
    POINTS = 1
    CURRENCY_SYMBOL = 2
    CURRENCY_MARGIN = 3
    CURRENCY_DEPOSIT = 4
    INTEREST_CURRENT = 5
    INTEREST_OPEN = 6


class CalcMode(IntEnum):
    """SYMBOL_CALC_MODE_* used for margin and profit (spec 4.10, 5.9)."""

    FOREX = 0
    FUTURES = 1
    CFD = 2
    CFDINDEX = 3
    CFDLEVERAGE = 4
    FOREX_NO_LEVERAGE = 5


class SymbolSpec(BaseModel):
    """Trading properties of one symbol, named as in MT5's SymbolInfo."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    digits: int = Field(ge=0, le=10)
    point: float = Field(gt=0)
    trade_contract_size: float = Field(gt=0)
    currency_base: str
    currency_profit: str
    currency_margin: str
    trade_calc_mode: CalcMode = CalcMode.FOREX
    volume_min: float = Field(default=0.01, gt=0)
    volume_max: float = Field(default=500.0, gt=0)
    volume_step: float = Field(default=0.01, gt=0)
    trade_stops_level: int = Field(default=0, ge=0, description="points")
    trade_freeze_level: int = Field(default=0, ge=0, description="points")
    swap_mode: SwapMode = SwapMode.POINTS
    swap_long: float = 0.0
    swap_short: float = 0.0
    swap_rollover3days: int = Field(default=3, ge=0, le=6, description="DAY_OF_WEEK_*, 3 = Wednesday")
    commission: float = Field(default=0.0, ge=0, description="per side, see commission_mode")
    commission_mode: Literal["per_lot", "percent_of_value"] = "per_lot"
    spread: int = Field(default=10, ge=0, description="points, used when the data has no spread")
    margin_rate: float = Field(default=1.0, gt=0)

    @property
    def tick_size(self) -> float:
        return self.point

    @model_validator(mode="after")
    def _volumes_consistent(self) -> SymbolSpec:
        if self.volume_min > self.volume_max:
            raise ValueError(f"volume_min {self.volume_min} > volume_max {self.volume_max}")
        return self


def _fx(
    name: str, digits: int = 5, spread: int = 10, swap_long: float = -0.7, swap_short: float = -1.0
) -> dict[str, Any]:
    base, quote = name[:3], name[3:]
    return {
        "name": name,
        "digits": digits,
        "point": 10.0**-digits,
        "trade_contract_size": 100_000.0,
        "currency_base": base,
        "currency_profit": quote,
        "currency_margin": base,
        "spread": spread,
        "swap_long": swap_long,
        "swap_short": swap_short,
    }


# Typical retail ECN-like values: spreads in points, swaps in points (SYMBOL_SWAP_MODE_POINTS).
BUILTIN_SYMBOLS: dict[str, dict[str, Any]] = {
    s["name"]: s
    for s in [
        _fx("EURUSD", spread=10, swap_long=-7.0, swap_short=2.0),
        _fx("GBPUSD", spread=14, swap_long=-4.0, swap_short=-1.0),
        _fx("AUDUSD", spread=12, swap_long=-2.5, swap_short=-1.0),
        _fx("NZDUSD", spread=16, swap_long=-1.5, swap_short=-1.5),
        _fx("USDJPY", digits=3, spread=11, swap_long=12.0, swap_short=-25.0),
        _fx("USDCHF", spread=14, swap_long=5.0, swap_short=-12.0),
        _fx("USDCAD", spread=16, swap_long=-1.0, swap_short=-4.0),
        _fx("EURGBP", spread=14, swap_long=-5.0, swap_short=0.5),
        _fx("EURJPY", digits=3, spread=16, swap_long=3.0, swap_short=-12.0),
        _fx("GBPJPY", digits=3, spread=22, swap_long=5.0, swap_short=-18.0),
        _fx("EURCHF", spread=18, swap_long=-4.0, swap_short=-1.0),
        _fx("AUDJPY", digits=3, spread=18, swap_long=2.0, swap_short=-8.0),
        _fx("EURAUD", spread=20, swap_long=-9.0, swap_short=2.0),
        _fx("EURCAD", spread=22, swap_long=-8.0, swap_short=1.0),
        {
            "name": "XAUUSD",
            "digits": 2,
            "point": 0.01,
            "trade_contract_size": 100.0,
            "currency_base": "XAU",
            "currency_profit": "USD",
            "currency_margin": "USD",
            "trade_calc_mode": CalcMode.CFDLEVERAGE,
            "spread": 25,
            "swap_long": -30.0,
            "swap_short": 15.0,
        },
    ]
}


# A broker's suffix on a built-in symbol: EURUSD.a, XAUUSD.PRO, EURUSDm, EURUSD_i, EURUSD-ECN, EURUSD+.
_BROKER_SUFFIX = re.compile(r"^[._\-#!+ ]?[A-Za-z0-9]{0,6}[+!#]?$")


def builtin_name(name: str) -> str | None:
    """The built-in symbol ``name`` spells with a broker suffix (``EURUSD.a`` -> ``EURUSD``), or None.
    Longer additions (``GBPUSD DFX 10 Index``) are other instruments and need their own definition."""
    if name in BUILTIN_SYMBOLS:
        return name
    upper = name.upper()
    for base in sorted(BUILTIN_SYMBOLS, key=len, reverse=True):
        if upper.startswith(base) and _BROKER_SUFFIX.match(name[len(base) :]):
            return base
    return None


def build_symbol(name: str, overrides: dict[str, Any] | None) -> SymbolSpec:
    """Merge config overrides over the built-in defaults (also for a built-in spelled with a broker
    suffix, see ``builtin_name``). Unknown symbols need a full definition."""
    known = builtin_name(name)
    base = dict(BUILTIN_SYMBOLS[known] if known is not None else {"name": name})
    base.update(overrides or {})
    base["name"] = name
    if "digits" in (overrides or {}) and "point" not in (overrides or {}):
        base["point"] = 10.0 ** -int(base["digits"])
    return SymbolSpec.model_validate(base)


# Brokers spell symbols with suffixes, dots, spaces and signs (EURUSD.a, XAUUSD.PRO, #US30, EURUSD+,
# "GBPUSD DFX 10 Index"). A name only has to be usable as a folder / file-name part on every OS and on
# the command line, where --symbols splits on commas.
_FORBIDDEN_IN_SYMBOL = frozenset('/\\:*?"<>|,')


def symbol_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a symbol name, or None when it can."""
    if not isinstance(name, str) or not name:
        return "empty"
    if name != name.strip():
        return "leading or trailing spaces"
    if name.startswith("."):
        return "starts with a dot"
    bad = sorted({c for c in name if c in _FORBIDDEN_IN_SYMBOL or not c.isprintable()})
    if bad:
        return f"contains {' '.join(repr(c) for c in bad)}"
    return None


def check_symbol_name(name: str) -> str:
    """``name`` if it is a valid symbol name (see ``symbol_name_problem``), else ValueError."""
    problem = symbol_name_problem(name)
    if problem is not None:
        raise ValueError(
            f"invalid symbol name {name!r} ({problem}): use the name as the broker spells it "
            '(letters, digits, spaces, . _ # ! & + - ...), without / \\ : * ? " < > | or commas'
        )
    return name
