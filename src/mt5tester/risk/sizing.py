"""Entry sizing from the account and the symbol's tick value (spec 3.5, 5.6, 5.8).

* fixed: ``sizing.lots``, else the volume the signal / strategy asked for;
* risk: ``equity * risk_pct / 100 / (sl_distance / tick_size * tick_value)`` (loss at the SL = risk);
* volatility: the same with one ATR (simple mean of the true ranges of ``atr_period`` closed bars of
  ``atr_timeframe``) in place of the SL distance.

Each is multiplied by the regime multiplier, then rounded DOWN to ``volume_min + k * volume_step`` and
clipped to ``volume_max``. Under ``volume_min`` the entry is rejected (``size_below_min``). The tick
value is ``trade_tick_value_loss`` (the losing side), falling back to ``trade_tick_value``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mt5tester.config import SizingConfig
from mt5tester.risk import lots
from mt5tester.risk.exposure import Mt5View


@dataclass(frozen=True)
class SizeResult:
    """The sized volume (0.0 when rejected) and, when rejected, the reason code; details hold the numbers."""

    volume: float
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def atr(rates: np.ndarray | None, period: int) -> float | None:
    """Simple-mean ATR of the last ``period`` bars; needs ``period + 1`` bars (the first gives a close)."""
    if rates is None or len(rates) < period + 1:
        return None
    h = rates["high"][-period:].astype(np.float64)
    lo = rates["low"][-period:].astype(np.float64)
    pc = rates["close"][-period - 1 : -1].astype(np.float64)
    tr = np.maximum(h - lo, np.maximum(np.abs(h - pc), np.abs(lo - pc)))
    return float(tr.mean())


def size(
    cfg: SizingConfig | None,
    view: Mt5View,
    symbol: str,
    requested: float,
    sl_distance: float | None,
    equity: float,
    multiplier: float = 1.0,
) -> SizeResult:
    """Volume of one entry. Without sizing config and multiplier 1 the requested volume is kept as is."""
    d: dict[str, Any] = {"mode": cfg.mode if cfg else "requested", "multiplier": multiplier}
    if cfg is None and multiplier == 1.0:  # the volume as asked: nothing to read, nothing to round
        return SizeResult(requested, None, d | {"raw": requested})
    info = view.info(symbol)
    if info is None:
        return SizeResult(0.0, "no_symbol_info", {"symbol": symbol})
    if cfg is None or cfg.mode == "fixed":
        raw = cfg.lots if cfg is not None and cfg.lots is not None else requested
    else:
        money = lots.risk_money(equity, cfg.risk_pct)
        if cfg.mode == "risk":
            if sl_distance is None or sl_distance <= 0:
                return SizeResult(0.0, "no_stop_loss", d | {"symbol": symbol})
            distance = sl_distance
        else:
            a = atr(view.closed_rates(symbol, int(cfg.atr_timeframe), cfg.atr_period + 1), cfg.atr_period)
            if a is None or a <= 0:
                return SizeResult(0.0, "no_atr", d | {"symbol": symbol, "atr_period": cfg.atr_period})
            distance = a
            d["atr"] = round(a, 10)
        per_lot = view.money_per_lot(symbol, distance)
        if per_lot <= 0:
            return SizeResult(0.0, "no_tick_value", d | {"symbol": symbol})
        raw = money / per_lot
        d |= risk_details(money, distance, view.tick_value_loss(symbol), float(info.trade_tick_size), per_lot)
    raw, volume = lots.sized(
        raw, multiplier, float(info.volume_min), float(info.volume_max), float(info.volume_step)
    )
    d |= {"raw": round(raw, 8), "volume_min": float(info.volume_min), "volume_step": float(info.volume_step)}
    if volume <= 0:
        return SizeResult(0.0, "size_below_min", d)
    return SizeResult(volume, None, d)


def risk_details(
    money: float, distance: float, tick_value: float, tick_size: float, per_lot: float
) -> dict[str, Any]:
    """The numbers behind a risk or volatility size, as the signal's details record them."""
    return {
        "risk_money": round(money, 2),
        "distance": round(distance, 10),
        "tick_value": tick_value,
        "tick_size": tick_size,
        "money_per_lot": round(per_lot, 6),
    }
