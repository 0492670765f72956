"""Entry volumes, compiled: one implementation for the coordinator's sizing (risk/sizing.py, driver a)
and the whole-run kernel (engine/kernel.py, driver b). Plain numbers in, plain numbers out."""

from __future__ import annotations

import math

from numba import njit

from mt5tester.arith.rounding import round_to


@njit(cache=True)
def round_volume(volume: float, vmin: float, vmax: float, step: float) -> float:
    """Round DOWN to ``vmin + k * step`` (spec 5.6), clip to ``vmax``; 0.0 below ``vmin`` (or not finite)."""
    if not math.isfinite(volume) or volume < vmin - 1e-9:
        return 0.0
    k = math.floor((volume - vmin) / step + 1e-9)
    return round_to(min(vmin + k * step, vmax), 8)


@njit(cache=True)
def money_per_lot(distance: float, tick_size: float, tick_value: float) -> float:
    """Deposit-currency loss of 1 lot over a price distance: distance / tick_size * tick_value."""
    return distance / tick_size * tick_value


@njit(cache=True)
def notional_per_lot(price: float, tick_size: float, tick_value: float) -> float:
    """Deposit-currency value of 1 lot's base amount at ``price``: price x tick_value / tick_size (= contract
    x price x the profit currency's rate, since tick_value = tick_size x contract x rate; spec 5.8)."""
    return price * tick_value / tick_size


@njit(cache=True)
def exposure_fit(before: float, delta: float, volume: float, limit: float) -> tuple[float, float]:
    """max_currency_exposure on one currency: (the net exposure after ``volume`` lots of an entry moving it
    by ``delta`` per lot from ``before``, the largest volume within ``limit``; NaN when the entry stays
    within it or lowers the exposure)."""
    after = before + volume * delta
    if abs(after) <= limit + 1e-6 or abs(after) <= abs(before):
        return after, math.nan
    if before * delta >= 0:  # the same way: the room left under the limit
        return after, (limit - abs(before)) / abs(delta)
    return after, (limit + abs(before)) / abs(delta)  # the other way: through zero to the limit


@njit(cache=True)
def correlation_fit(volume: float, adj: float, limit: float) -> float:
    """max_correlation's resize: the volume scaled by (1 - corr) / (1 - limit)."""
    return volume * (1 - adj) / (1 - limit)


@njit(cache=True)
def risk_money(equity: float, risk_pct: float) -> float:
    return equity * risk_pct / 100.0


@njit(cache=True)
def sized(raw: float, multiplier: float, vmin: float, vmax: float, step: float) -> tuple[float, float]:
    """(raw x multiplier, that rounded down to a valid volume: 0.0 under ``vmin``)."""
    raw *= multiplier
    return raw, round_volume(raw, vmin, vmax, step)
