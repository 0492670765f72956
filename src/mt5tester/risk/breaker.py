"""The circuit breaker's arithmetic, compiled: one implementation for the coordinator's rule
(``risk.rules.CircuitBreakerRule``, driver a) and the whole-run kernel (``engine/kernel.py``, driver b).

A limit that is not set is passed as ``OFF`` (-1.0); ``day`` is the server day (server seconds // 86,400)
of the last observation, ``NO_DAY`` (-1) before the first.
"""

from __future__ import annotations

from numba import njit

OFF = -1.0
NO_DAY = -1
_EPS = 1e-12


@njit(cache=True)
def observe(
    day: int, day_start_equity: float, peak: float, latched: bool, equity: float, server_time: int,
    max_drawdown_pct: float,
) -> tuple[int, float, float, float]:  # fmt: skip
    """One equity sample: returns (day, the equity at its start, the peak, the drawdown % when the
    max-drawdown limit latches now, else OFF). A new server day starts at its first sample."""
    d = server_time // 86_400
    if d != day:
        day, day_start_equity = d, equity
    peak = max(peak, equity)
    if max_drawdown_pct != OFF and not latched and peak > 0:
        dd = (peak - equity) / peak * 100
        if dd >= max_drawdown_pct - _EPS:
            return day, day_start_equity, peak, dd
    return day, day_start_equity, peak, OFF


@njit(cache=True)
def daily_loss(day_start_equity: float, equity: float, daily_loss_pct: float) -> float:
    """The loss % below the day's starting equity when it reaches the daily limit, else OFF."""
    if daily_loss_pct != OFF and day_start_equity > 0:
        loss = (day_start_equity - equity) / day_start_equity * 100
        if loss >= daily_loss_pct - _EPS:
            return loss
    return OFF
