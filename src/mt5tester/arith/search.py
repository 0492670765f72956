"""Binary search over a sorted time column from a hint, compiled (numba): the positions table finds each
position's bars, the timeline each signal bar's first tick, in keys that come in time order, so each
search starts near the last one's answer instead of at the middle of a million bars.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def search(a: np.ndarray, t: int, right: bool, hint: int) -> int:
    """``np.searchsorted(a, t, "right" if right else "left")`` (``a`` ascending), galloping forward from
    ``hint`` when the answer is at or after it; any ``hint`` gives the same answer."""
    n = len(a)
    lo, hi = 0, n
    if 0 < hint <= n and (a[hint - 1] <= t if right else a[hint - 1] < t):
        lo, step = hint, 1  # the answer is >= hint: gallop to a bound above it
        while lo + step <= n and (a[lo + step - 1] <= t if right else a[lo + step - 1] < t):
            lo, step = lo + step, 2 * step
        hi = min(lo + step, n)
    while lo < hi:  # the first index in [lo, hi] after t (right) or not before it (left)
        mid = (lo + hi) // 2
        if a[mid] <= t if right else a[mid] < t:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def search_sorted(a: np.ndarray, keys: np.ndarray, right: bool) -> np.ndarray:
    """``np.searchsorted(a, keys, side)`` for ascending ``keys`` (any keys give the same answer, ascending
    ones in about a step per key)."""
    out = np.empty(len(keys), np.int64)
    last = 0
    for k in range(len(keys)):
        last = search(a, keys[k], right, last)
        out[k] = last
    return out
