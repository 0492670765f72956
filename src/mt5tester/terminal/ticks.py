"""MT5 "Every tick" generation from M1 bars, the "1 minute OHLC" price path, and first-touch kernels.

Spec 6.1/6.2 (TICKGEN). Everything per bar is integer arithmetic in ``point`` units measured from the
bar's Low, so the same (bars, seed) gives byte-identical ticks on any machine. Rules implemented
([U] = our choice where MetaQuotes publishes no exact rule):

Tick count
    * tick_volume 1: one tick at Close. tick_volume 2: Open, Close.
    * tick_volume 0 (data without volume, e.g. HistData M1) is treated as 4 [U]: with 4 ticks the
      bar becomes Open, first extreme, second extreme, Close - the same path as OHLC mode.
    * tick_volume >= 3: exactly tick_volume ticks, except that Open, High, Low and Close are always
      visited so the ticks rebuild the bar: a bar with tick_volume 3 whose Open and Close both lie
      strictly inside its range gets 4 ticks [U].

Direction (spec 6.2)
    Bullish (Close > Open): Open -> Low -> High -> Close. Bearish: Open -> High -> Low -> Close.
    Doji (Close == Open): the opposite of the previous bar's direction, where a previous doji counts
    with the direction it was given. Before the first bar the previous direction is taken as bullish
    (so a leading doji is bearish) [U]. ``bar_directions`` computes the chain once per series.

Reference points (tick_volume >= 3)
    The path has three legs: opening shadow (Open -> first extreme), range (first -> second extreme,
    High <-> Low) and closing shadow (second extreme -> Close). A leg of zero length is skipped, which
    yields MetaQuotes' four progress schemes: both shadows / no opening shadow / no closing shadow /
    Open and Close at the extremes. There are min(tick_volume - 1, 11) reference points after Open
    (at least one per non-empty leg). Each non-empty leg gets one, then the rest go round-robin
    range, opening, closing with caps 5/3/3, so 11 points give the ideal 3-5-3 split. A leg with k
    points is a zigzag from its start ``a`` to its end ``b`` at these fractions of ``b - a`` [U]:
    k=1: 1; k=2: 1/2, 1; k=3: 3/4, 1/4, 1; k=4: 1/2, 1/4, 3/4, 1; k=5: 1/2, 1/4, 3/4, 1/2, 1
    (rounded half away from zero to whole points; a point equal to the previous one is dropped).
    Every zigzag point stays between its leg's ends, so the extremes are first touched in order.

Intermediate ticks
    Let D be the path length in points through the reference points and m the number of reference
    points after Open. A full point-by-point walk needs D + 1 ticks.
    * N >= D + 1 (volume exceeds what the distance needs): the walk visits every point, and the
      E = N - D - 1 extra ticks are 1-point oscillations: E // 2 pairs "step forward, step back"
      inserted at steps drawn from the bar's RNG; if E is odd, one walk tick drawn at random is
      repeated (unchanged bid) because a +-1 lattice walk cannot change its length parity [U].
    * N < D + 1 (the distance needs more ticks than the volume gives): the tick count is capped at N
      and the N - m - 1 intermediate ticks are shared among the segments between reference points in
      proportion to their free capacity (floor, then one each round-robin), evenly spaced inside each
      segment; steps are then larger than one point [U].

Prices, times, flags
    Open, High, Low and Close are emitted as the exact input floats (first tick Open, last tick
    Close); other ticks are on the ``point`` grid measured from Low, computed as integer / 10**digits
    when ``point`` is a power of ten so they equal the parsed decimal. Prices off the point grid are
    snapped (positions are rounded to whole points) and clamped into [Low, High]. Ask = Bid + the
    bar's spread x point, fixed for the minute (spec 6.1; on the grid when Bid is). Tick k of N
    is stamped bar open + floor(k * 60000 / N) ms [U]: first tick at the bar open, millisecond
    resolution like MT5's time_msc, strictly increasing for N <= 60000 and always < open + 60 s.
    ``flags`` = 6 (TICK_FLAG_BID | TICK_FLAG_ASK) [U: the TEST sample shows 14 = also LAST, but FX
    symbols have no Last price, so we do not claim it changed]; ``last`` 0.0; ``volume`` 0.

Randomness
    Each bar's RNG is splitmix64 seeded from (seed, bar open time), so the ticks of a minute do not
    depend on which slice of the series is generated (``start``/``stop``) [U: time rather than index].

API
    ``generate_ticks(m1, point, seed, start, stop) -> Ticks``; the compiled two-pass kernels under it
    (``bar_directions`` once per series, ``count_ticks`` then ``fill_ticks`` into preallocated arrays
    at the cumulative offsets); ``reference_prices`` (one bar's Open + reference points);
    ``ohlc_path``; ``first_touch_ohlc``; ``first_touch_ticks``.

First-touch kernels
    ``first_touch_ohlc`` follows the 4-point OHLC path of each bar (Open, then the extremes in the
    direction order above, then Close) and returns the first level reached, so SL vs TP inside one
    bar is resolved the MT5-OHLC way instead of pessimistically. ``first_touch_ticks`` does the same
    over a tick array and fills at the triggering tick's price (spec 5.4).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from mt5tester.model.bars import F64, I32, I64, Bars
from mt5tester.model.ticks import Ticks
from mt5tester.model.time import MS_NS
from mt5tester.terminal.kernels import NONE, SL, TP

__all__ = [
    "BEARISH",
    "BULLISH",
    "LIMIT",
    "NONE",
    "SL",
    "STOP",
    "TICK_FLAGS",
    "TP",
    "bar_directions",
    "count_ticks",
    "fill_ticks",
    "first_touch_ohlc",
    "first_touch_ticks",
    "generate_ticks",
    "ohlc_path",
    "reference_prices",
]

I8 = npt.NDArray[np.int8]

LIMIT, STOP = 3, 4  # pending triggers; NONE/SL/TP shared with terminal.kernels
BULLISH, BEARISH = 1, -1
TICK_FLAGS = 6  # TICK_FLAG_BID (2) | TICK_FLAG_ASK (4), spec 4.9
MAX_REFERENCE_POINTS = 11  # TICKGEN: at most 11 reference points, Open not counted
NO_VOLUME_TICKS = 4  # tick_volume 0 is generated as if it were 4
MINUTE_MS = 60_000

# Zigzag fractions (in quarters of the leg) for a leg drawn with k reference points, row k-1.
_ZIGZAG = np.array(
    [
        [4, 0, 0, 0, 0],
        [2, 4, 0, 0, 0],
        [3, 1, 4, 0, 0],
        [2, 1, 3, 4, 0],
        [2, 1, 3, 2, 4],
    ],
    dtype=np.int64,
)
_LEG_CAP = np.array([3, 5, 3], dtype=np.int64)  # opening shadow, range, closing shadow: "3-5-3"
_LEG_ORDER = np.array([1, 0, 2], dtype=np.int64)  # extra points go to the range first

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_U30, _U27, _U31 = np.uint64(30), np.uint64(27), np.uint64(31)
_U64_MASK = (1 << 64) - 1


# --------------------------------------------------------------------------------------------------
# Small helpers (compiled, inlined by numba)


@njit(cache=True)
def _mix64(z: np.uint64) -> np.uint64:
    """splitmix64 finaliser: a bijective 64-bit scramble."""
    z = (z ^ (z >> _U30)) * _MIX1
    z = (z ^ (z >> _U27)) * _MIX2
    return z ^ (z >> _U31)


@njit(cache=True)
def _bar_state(seed: np.uint64, bar_time: np.int64) -> np.uint64:
    # explicit casts: numba turns int64 * uint64 into float64
    return _mix64(np.uint64(seed) * _GOLDEN + _mix64(np.uint64(bar_time)))


@njit(cache=True)
def _draw(state: np.uint64, n: int) -> tuple[np.uint64, int]:
    """Next splitmix64 output reduced to [0, n); returns (new state, value)."""
    state = state + _GOLDEN
    return state, int(_mix64(state) % np.uint64(n))


@njit(cache=True)
def _div_round(num: int, den: int) -> int:
    """num / den rounded half away from zero (den > 0), in integers."""
    if num >= 0:
        return (2 * num + den) // (2 * den)
    return -((-2 * num + den) // (2 * den))


@njit(cache=True)
def _grid(point: float) -> tuple[bool, float]:
    """(True, 10**digits) when point is a power of ten (prices = integer / scale), else (False, 1/point)."""
    inv = round(1.0 / point)
    if inv >= 1.0 and abs(inv * point - 1.0) < 1e-9:
        return True, float(inv)
    return False, 1.0 / point


@njit(cache=True)
def _to_points(price: float, decimal: bool, scale: float, point: float) -> int:
    if decimal:
        return round(price * scale)
    return round(price / point)


@njit(cache=True)
def _from_points(n: int, decimal: bool, scale: float, point: float) -> float:
    if decimal:
        return n / scale  # exact integer / exact power of ten: the float nearest the decimal
    return n * point


@njit(cache=True)
def _ask(bid: float, spread_points: int, decimal: bool, scale: float, point: float) -> float:
    """Bid + spread x point, exactly on the grid when Bid is on it."""
    n = _to_points(bid, decimal, scale, point)
    if _from_points(n, decimal, scale, point) == bid:
        return _from_points(n + spread_points, decimal, scale, point)
    return bid + spread_points * point


@njit(cache=True)
def _direction(open_: float, close: float, prev_direction: int) -> int:
    if close > open_:
        return BULLISH
    if close < open_:
        return BEARISH
    return BULLISH if prev_direction < 0 else BEARISH  # doji: opposite of the previous bar


# --------------------------------------------------------------------------------------------------
# Bar-mode paths


@njit(cache=True)
def bar_directions(open_: F64, close: F64, prev_direction: int = BULLISH) -> I8:
    """Direction (+1 bullish / -1 bearish) each bar is walked in; dojis alternate against the previous."""
    n = len(open_)
    out = np.empty(n, dtype=np.int8)
    prev = prev_direction
    for i in range(n):
        prev = _direction(open_[i], close[i], prev)
        out[i] = prev
    return out


@njit(cache=True)
def _path(
    open_: float, high: float, low: float, close: float, direction: int
) -> tuple[float, float, float, float]:
    if direction > 0:
        return open_, low, high, close
    return open_, high, low, close


@njit(cache=True)
def ohlc_path(
    open_: float, high: float, low: float, close: float, prev_direction: int
) -> tuple[float, float, float, float]:
    """The 4 ticks of "1 minute OHLC" mode: Open, the extremes in direction order, Close (spec 6.1)."""
    return _path(open_, high, low, close, _direction(open_, close, prev_direction))


# --------------------------------------------------------------------------------------------------
# Every-tick generation


@njit(cache=True)
def _reference_points(opos: int, hpos: int, cpos: int, direction: int, volume: int, refs: I64) -> int:
    """Write Open and the reference points (positions from Low) into refs; return how many follow Open."""
    x1 = 0 if direction > 0 else hpos
    x2 = hpos - x1
    starts = (opos, x1, x2)
    ends = (x1, x2, cpos)
    k = np.zeros(3, dtype=np.int64)
    nonempty = 0
    for leg in range(3):
        if ends[leg] != starts[leg]:
            k[leg] = 1
            nonempty += 1
    extra = min(volume - 1, MAX_REFERENCE_POINTS) - nonempty
    while extra > 0:
        given = 0
        for j in range(3):
            leg = _LEG_ORDER[j]
            if extra > 0 and 0 < k[leg] < _LEG_CAP[leg]:
                k[leg] += 1
                extra -= 1
                given += 1
        if given == 0:
            break
    refs[0] = opos
    m = 0
    for leg in range(3):
        a = starts[leg]
        d = ends[leg] - a
        for j in range(k[leg]):
            p = a + _div_round(d * _ZIGZAG[k[leg] - 1, j], 4)
            if p != refs[m]:
                m += 1
                refs[m] = p
    return m


@njit(cache=True)
def _bar_positions(
    o: float, h: float, lo: float, c: float, decimal: bool, scale: float, point: float
) -> tuple[int, int, int, int]:
    """(Low in points, Open, High, Close as positions from Low), clamped into [0, High]."""
    base = _to_points(lo, decimal, scale, point)
    hpos = max(_to_points(h, decimal, scale, point) - base, 0)
    opos = min(max(_to_points(o, decimal, scale, point) - base, 0), hpos)
    cpos = min(max(_to_points(c, decimal, scale, point) - base, 0), hpos)
    return base, opos, hpos, cpos


@njit(cache=True)
def count_ticks(
    open_: F64,
    high: F64,
    low: F64,
    close: F64,
    tick_volume: I64,
    direction: I8,
    point: float,
    start: int,
    stop: int,
) -> I64:
    """Pass 1: number of generated ticks for each bar in [start, stop)."""
    decimal, scale = _grid(point)
    refs = np.empty(MAX_REFERENCE_POINTS + 1, dtype=np.int64)
    out = np.empty(stop - start, dtype=np.int64)
    for i in range(start, stop):
        v = tick_volume[i]
        if v <= 0:
            v = NO_VOLUME_TICKS
        if v <= 2:
            out[i - start] = v
        elif v > MAX_REFERENCE_POINTS:
            out[i - start] = v  # reference ticks (<= 12) always fit
        else:
            _, opos, hpos, cpos = _bar_positions(open_[i], high[i], low[i], close[i], decimal, scale, point)
            m = _reference_points(opos, hpos, cpos, direction[i], v, refs)
            out[i - start] = max(v, m + 1)
    return out


@njit(cache=True)
def reference_prices(
    open_: float, high: float, low: float, close: float, tick_volume: int, direction: int, point: float
) -> F64:
    """Open followed by the bar's reference points (tick_volume >= 3 rule; 0 counts as 4), as prices."""
    decimal, scale = _grid(point)
    base, opos, hpos, cpos = _bar_positions(open_, high, low, close, decimal, scale, point)
    refs = np.empty(MAX_REFERENCE_POINTS + 1, dtype=np.int64)
    v = NO_VOLUME_TICKS if tick_volume <= 0 else max(tick_volume, 3)
    m = _reference_points(opos, hpos, cpos, direction, v, refs)
    out = np.empty(m + 1)
    for j in range(m + 1):
        out[j] = _price_at(refs[j], base, opos, hpos, open_, high, low, decimal, scale, point)
    out[0] = open_
    out[m] = close if m > 0 else open_
    return out


@njit(cache=True)
def _price_at(
    pos: int,
    base: int,
    opos: int,
    hpos: int,
    o: float,
    h: float,
    lo: float,
    decimal: bool,
    scale: float,
    point: float,
) -> float:
    if pos == hpos:
        return h
    if pos == 0:
        return lo
    if pos == opos:
        return o
    p = _from_points(base + pos, decimal, scale, point)
    return min(max(p, lo), h)


@njit(cache=True)
def fill_ticks(
    time: I64,
    open_: F64,
    high: F64,
    low: F64,
    close: F64,
    tick_volume: I64,
    spread: I32,
    direction: I8,
    point: float,
    seed: np.uint64,
    start: int,
    stop: int,
    offsets: I64,
    out_time: I64,
    out_bid: F64,
    out_ask: F64,
) -> None:
    """Pass 2: write the ticks of bars [start, stop) at out[offsets[i - start]:offsets[i - start + 1]].

    ``offsets`` is the exclusive cumulative sum of ``count_ticks`` (length stop - start + 1).
    """
    decimal, scale = _grid(point)
    refs = np.empty(MAX_REFERENCE_POINTS + 1, dtype=np.int64)
    quota = np.empty(MAX_REFERENCE_POINTS + 1, dtype=np.int64)
    max_n = 1
    for b in range(stop - start):
        max_n = max(max_n, offsets[b + 1] - offsets[b])
    walk = np.empty(max_n + 1, dtype=np.int64)  # point-by-point walk: only built when it fits in N
    inserts = np.empty(max_n + 1, dtype=np.int64)
    for i in range(start, stop):
        k0 = offsets[i - start]
        n = offsets[i - start + 1] - k0
        o, h, lo, c = open_[i], high[i], low[i], close[i]
        t0 = time[i]
        sp = int(spread[i])
        v = tick_volume[i]
        if v <= 0:
            v = NO_VOLUME_TICKS
        base, opos, hpos, cpos = _bar_positions(o, h, lo, c, decimal, scale, point)
        k = k0  # next output slot
        if v == 1:
            out_bid[k] = c
        elif v == 2:
            out_bid[k] = o
            out_bid[k + 1] = c
        else:
            m = _reference_points(opos, hpos, cpos, direction[i], v, refs)
            dist = 0
            for j in range(1, m + 1):
                dist += abs(refs[j] - refs[j - 1])
            if n >= dist + 1:
                # Walk every point; spend the surplus on seeded 1-point oscillations.
                w = 0
                walk[0] = refs[0]
                for j in range(1, m + 1):
                    step = 1 if refs[j] > refs[j - 1] else -1
                    p = refs[j - 1]
                    while p != refs[j]:
                        p += step
                        w += 1
                        walk[w] = p
                surplus = n - dist - 1
                state = _bar_state(seed, t0)
                for s in range(dist):
                    inserts[s] = 0
                if dist > 0:
                    for _ in range(surplus // 2):
                        state, s = _draw(state, dist)
                        inserts[s] += 1
                repeat_at = -1
                if surplus % 2 == 1 or dist == 0:
                    state, repeat_at = _draw(state, dist + 1)
                for s in range(dist + 1):
                    p = walk[s]
                    out_bid[k] = _price_at(p, base, opos, hpos, o, h, lo, decimal, scale, point)
                    k += 1
                    if s == repeat_at:
                        reps = surplus if dist == 0 else 1
                        for _ in range(reps):
                            out_bid[k] = out_bid[k - 1]
                            k += 1
                    if s < dist:
                        q = walk[s + 1]
                        for _ in range(inserts[s]):
                            out_bid[k] = _price_at(q, base, opos, hpos, o, h, lo, decimal, scale, point)
                            out_bid[k + 1] = _price_at(p, base, opos, hpos, o, h, lo, decimal, scale, point)
                            k += 2
            else:
                # Fewer ticks than points: evenly spaced samples between reference points.
                room = n - m - 1
                capacity = dist - m
                given = 0
                for j in range(1, m + 1):
                    quota[j] = room * (abs(refs[j] - refs[j - 1]) - 1) // capacity
                    given += quota[j]
                while given < room:
                    for j in range(1, m + 1):
                        if given < room and quota[j] < abs(refs[j] - refs[j - 1]) - 1:
                            quota[j] += 1
                            given += 1
                out_bid[k] = o
                k += 1
                for j in range(1, m + 1):
                    a = refs[j - 1]
                    d = refs[j] - a
                    q = quota[j]
                    for t in range(1, q + 1):
                        p = a + _div_round(d * t, q + 1)
                        out_bid[k] = _price_at(p, base, opos, hpos, o, h, lo, decimal, scale, point)
                        k += 1
                    out_bid[k] = _price_at(refs[j], base, opos, hpos, o, h, lo, decimal, scale, point)
                    k += 1
            out_bid[k0] = o
            out_bid[k0 + n - 1] = c
        for t in range(n):
            out_time[k0 + t] = t0 + (t * MINUTE_MS // n) * MS_NS
            out_ask[k0 + t] = _ask(out_bid[k0 + t], sp, decimal, scale, point)


def generate_ticks(
    m1: Bars, point: float, seed: int, start: int = 0, stop: int | None = None, direction: I8 | None = None
) -> Ticks:
    """ "Every tick" ticks for M1 bars [start, stop), generated by the rules in the module docstring.

    ``direction``: ``bar_directions`` of the whole series, when the caller keeps it (saves a pass
    from bar 0 on every call).
    """
    if point <= 0.0:
        raise ValueError(f"generate_ticks {m1.symbol}: point must be > 0, got {point}")
    n_bars = len(m1)
    stop = n_bars if stop is None else stop
    if not 0 <= start <= stop <= n_bars:
        raise ValueError(f"generate_ticks {m1.symbol}: bad bar range [{start}, {stop}) of {n_bars}")
    open_ = np.ascontiguousarray(m1.open, dtype=np.float64)
    close = np.ascontiguousarray(m1.close, dtype=np.float64)
    high = np.ascontiguousarray(m1.high, dtype=np.float64)
    low = np.ascontiguousarray(m1.low, dtype=np.float64)
    volume = np.ascontiguousarray(m1.tick_volume, dtype=np.int64)
    # The doji chain runs from bar 0, so a slice gets the directions the full series would give.
    if direction is None:
        direction = bar_directions(open_[:stop], close[:stop], BULLISH)
    counts = count_ticks(open_, high, low, close, volume, direction, float(point), start, stop)
    offsets = np.zeros(stop - start + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    out_time = np.empty(total, dtype=np.int64)
    out_bid = np.empty(total, dtype=np.float64)
    out_ask = np.empty(total, dtype=np.float64)
    fill_ticks(
        np.ascontiguousarray(m1.time, dtype=np.int64),
        open_,
        high,
        low,
        close,
        volume,
        np.ascontiguousarray(m1.spread, dtype=np.int32),
        direction,
        float(point),
        np.uint64(seed & _U64_MASK),
        start,
        stop,
        offsets,
        out_time,
        out_bid,
        out_ask,
    )
    return Ticks(
        m1.symbol,
        out_time,
        out_bid,
        out_ask,
        np.zeros(total, dtype=np.float64),
        np.zeros(total, dtype=np.int64),
        np.full(total, TICK_FLAGS, dtype=np.int32),
    )


# --------------------------------------------------------------------------------------------------
# First touch of SL / TP / pending levels


@njit(cache=True)
def _levels(
    is_buy: bool, sl: float, tp: float, limit_price: float, stop_price: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Per level in priority order SL, TP, LIMIT, STOP: (price, on Ask side, triggers when price rises).

    Spec 5.3/5.4: a buy position closes at Bid (SL Bid <= sl, TP Bid >= tp) and a buy order opens at
    Ask (BUY_LIMIT Ask <= price, BUY_STOP Ask >= price); a sell closes at Ask (SL Ask >= sl, TP
    Ask <= tp) and opens at Bid (SELL_LIMIT Bid >= price, SELL_STOP Bid <= price). 0 = unset.
    """
    price = np.array([sl, tp, limit_price, stop_price])
    on_ask = np.empty(4, dtype=np.bool_)
    rising = np.empty(4, dtype=np.bool_)
    if is_buy:
        on_ask[0], rising[0] = False, False
        on_ask[1], rising[1] = False, True
        on_ask[2], rising[2] = True, False
        on_ask[3], rising[3] = True, True
    else:
        on_ask[0], rising[0] = True, True
        on_ask[1], rising[1] = True, False
        on_ask[2], rising[2] = False, True
        on_ask[3], rising[3] = False, False
    return price, on_ask, rising


@njit(cache=True)
def first_touch_ohlc(
    open_: F64,
    high: F64,
    low: F64,
    close: F64,
    direction: I8,
    spread: I32,
    point: float,
    start: int,
    stop: int,
    is_buy: bool,
    sl: float,
    tp: float,
    limit_price: float = 0.0,
    stop_price: float = 0.0,
) -> tuple[int, int, float]:
    """Scan bars [start, stop) along their OHLC paths; return (bar index, NONE|SL|TP|LIMIT|STOP, fill).

    ``direction`` comes from ``bar_directions``. A level already met at a bar's Open fills at the
    Open (Bid or Ask side of the level, the gap rule of ``kernels.first_trigger``); one reached
    between path points fills at the level. When several are reached on one leg the nearest to the
    leg's start wins; exact ties go SL, TP, LIMIT, STOP. No result: (-1, NONE, 0.0).
    """
    decimal, scale = _grid(point)
    price, on_ask, rising = _levels(is_buy, sl, tp, limit_price, stop_price)
    bid_path = np.empty(4)
    ask_path = np.empty(4)
    for i in range(start, stop):
        p0, p1, p2, p3 = _path(open_[i], high[i], low[i], close[i], direction[i])
        bid_path[0], bid_path[1], bid_path[2], bid_path[3] = p0, p1, p2, p3
        sp = int(spread[i])
        for j in range(4):
            ask_path[j] = _ask(bid_path[j], sp, decimal, scale, point)
        for lv in range(4):
            if price[lv] > 0.0:
                x = ask_path[0] if on_ask[lv] else bid_path[0]
                if (rising[lv] and x >= price[lv]) or (not rising[lv] and x <= price[lv]):
                    return i, lv + 1, x
        for j in range(1, 4):
            best = -1
            best_dist = 0.0
            for lv in range(4):
                if price[lv] <= 0.0:
                    continue
                xa = ask_path[j - 1] if on_ask[lv] else bid_path[j - 1]
                xb = ask_path[j] if on_ask[lv] else bid_path[j]
                if rising[lv] and xb >= price[lv]:
                    dist = price[lv] - xa
                elif not rising[lv] and xb <= price[lv]:
                    dist = xa - price[lv]
                else:
                    continue
                if best < 0 or dist < best_dist:
                    best, best_dist = lv, dist
            if best >= 0:
                return i, best + 1, price[best]
    return -1, NONE, 0.0


@njit(cache=True)
def first_touch_ticks(
    bid: F64,
    ask: F64,
    start: int,
    stop: int,
    is_buy: bool,
    sl: float,
    tp: float,
    limit_price: float = 0.0,
    stop_price: float = 0.0,
) -> tuple[int, int, float]:
    """Scan ticks [start, stop); return (tick index, NONE|SL|TP|LIMIT|STOP, fill at that tick's price).

    Spec 5.4: on ticks the fill is the triggering tick's Bid or Ask, which on a gap is better or worse
    than the level. Several levels met by one tick: SL, TP, LIMIT, STOP in that order.
    """
    price, on_ask, rising = _levels(is_buy, sl, tp, limit_price, stop_price)
    for i in range(start, stop):
        for lv in range(4):
            if price[lv] > 0.0:
                x = ask[i] if on_ask[lv] else bid[i]
                if (rising[lv] and x >= price[lv]) or (not rising[lv] and x <= price[lv]):
                    return i, lv + 1, x
    return -1, NONE, 0.0
