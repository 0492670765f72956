"""Python's ``round(x, digits)``, compiled and exact (numba): MT5's money is rounded to cents, volumes to
8 decimals, and every layer (the trade rules, the coordinator's sizing, the records) rounds with this one
implementation, inside compiled code or not.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_SPLIT = 134217729.0  # 2**27 + 1: Veltkamp's split of a double into two 26-bit halves
_EXACT = 4503599627370496.0  # 2**52: from here on every double is an integer


@njit(cache=True)
def _split(a: float) -> tuple[float, float]:
    c = _SPLIT * a
    hi = c - (c - a)
    return hi, a - hi


@njit(cache=True)
def round_to(x: float, digits: int) -> float:
    """Python's ``round(x, digits)``, exactly: the double's exact value rounded half-even to ``digits``
    decimals (numba's own ``round`` scales first and so differs on about 1 value in 200 at cents).

    The scaled value a*10**d is carried exactly as p + e (Dekker's product), so the distance to the
    half is known without error. For |x|*10**d >= 2**52 (beyond any price or balance) x is returned.
    """
    if not math.isfinite(x):
        return x
    s = 10.0**digits
    a = abs(x)
    p = a * s
    if p >= _EXACT:
        return x
    ah, al = _split(a)
    sh, sl = _split(s)
    e = ((ah * sh - p) + ah * sl + al * sh) + al * sl
    f = math.floor(p)
    d = (p - f) - 0.5  # exact: p - f is in [0, 1) on p's own grid
    if d > 0.0 or (d == 0.0 and e > 0.0):
        r = f + 1.0
    elif d < 0.0 or (d == 0.0 and e < 0.0):
        r = f
    else:  # an exact half: to even
        r = f + 1.0 if f % 2.0 == 1.0 else f
    # correctly rounded (the double nearest r / 10**digits), with x's sign as Python keeps it: -0.0 for
    # -0.0 and for a negative x that rounds to zero
    return math.copysign(r / s, x)


@njit(cache=True)
def round_array(x: np.ndarray, digits: int) -> np.ndarray:
    """``round_to`` of each element."""
    out = np.empty(len(x))
    for i in range(len(x)):
        out[i] = round_to(x[i], digits)
    return out
