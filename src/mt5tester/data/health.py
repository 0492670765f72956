"""Data validation and a health score per symbol and timeframe.

``validate(bars)`` checks one ``Bars`` series and returns a ``HealthReport``: a list of ``Finding`` (kind,
time range, count, short detail) and a score from 0 to 100. Everything is numpy over the whole arrays
(745k M1 rows take a fraction of a second); the only Python loops run over calendar years, findings kept
for the report, and the closed-market windows of the session calendar.

Time ranges
-----------
``start_ns``/``end_ns`` are bar *open* times, both inclusive: the first and last bar involved. For a gap
they are the first and last *missing* bar inside the session (EURUSD 2019-05-27: bars at 03:59 and
10:00, gap 04:00..09:59, count 360).

Checks (kinds)
--------------
* ``duplicate_time``: a row whose time already appeared in an earlier row (every copy after the first);
  consecutive such rows form one finding, ``count`` = rows to drop.
* ``non_monotonic``: a row whose time is earlier than some row before it (below the running maximum);
  consecutive such rows form one finding, ``count`` = rows out of order.
* ``bad_price``: any of open/high/low/close NaN, infinite or <= 0. Runs of rows, ``count`` = rows.
* ``ohlc_inconsistent``: ``high < max(open, close)`` or ``low > min(open, close)`` or ``high < low``
  (exact comparisons: a bar's own prices come from one source, no rounding is involved).
* ``spike``: a price that jumps and comes straight back. On close-to-close log returns ``r`` a robust
  z-score ``z = (r - median) / (1.4826 * MAD)`` is computed per block of 1,440 consecutive rows (about one
  trading day of M1; the last partial block joins the one before), so the scale follows the volatility
  regime without a costly rolling median. The scale is floored at 1e-5 (0.1 pip on EURUSD) and, when a
  block is mostly flat, at a quarter of the global scale. Bar ``i`` is a spike when
  ``|z[i]| > spike_z`` and ``|z[i+1]| > spike_z`` with opposite signs **and** the next close retraces at
  least half of the jump (``|log(c[i+1]/c[i-1])| <= 0.5 * |r[i]|``). A genuine one-directional move
  (JPY flash crash 2019-01-02 22:35 UTC, GBP exit poll 2019-12-12 22:00 UTC) has no such immediate
  reversal and is not reported. Bars that are ``bad_price`` are excluded (reported there instead).
* ``gap``: bars missing inside the trading session. For each pair of consecutive distinct times the
  missing bar opens are counted, minus those falling in a closed window of the session calendar (below).
  A gap is reported when that in-session count is larger than ``min_gap_bars`` (default 5 for M1: single
  missing quiet minutes are normal, no quote means no bar; 0 for every other timeframe: any missing bar).
  A gap straddling a closed window is one finding whose range spans it but whose count holds only the
  in-session bars. MN1 (variable length) is not checked for gaps.
* ``stale``: at least ``stale_bars`` consecutive rows with open = high = low = close = previous close
  (price frozen), outside closed windows. ``count`` = frozen rows.
* ``bad_spread``: spread < 0 or > max(50 x median spread, 1000) points.
* ``misaligned``: a bar whose open time is off its timeframe's grid (an H1 bar at :17): on the minute of
  the hour the other bars share for M1..H1, on a whole hour for longer timeframes (the server's zone is
  not known here; whole-hour offsets keep those grids). Runs of rows, ``count`` = rows.
* ``closed_market``: a bar lying wholly inside the weekend close, Friday 18:00 -> Sunday 17:00 New York
  time (metals reopen at 18:00), so no tick can have made it: usually a file read in the wrong time
  zone. The FX week closes at 17:00 New York; the hour of slack is for feeds that keep a fixed UTC close
  through US summer time. Not checked for W1/MN1 (their bars span trading time) nor for ``"24x7"``,
  nor when more than 10 % of the bars are there (a symbol that trades through the weekend).

Session calendars (UTC; the windows are deliberately the widest seen at brokers, so no false alarms):

* ``"fx"``: weekend Friday 20:00 -> Sunday 23:00; Dec 24 12:00 -> Dec 25 23:00 and Dec 31 12:00 ->
  Jan 1 23:00 (Christmas / New Year closures with their early closes). Symbols starting with ``XAU`` or
  ``XAG`` get the ``"xau"`` calendar under ``"fx"`` (the report's ``session`` says which was used).
* ``"xau"``: the ``"fx"`` windows (ending 23:05 instead of 23:00, the metal reopens at 23:01 in winter),
  plus the daily break 21:00 -> 23:05 every day, US holidays with a metals early close (MLK, Presidents,
  Memorial, Independence (observed), Labor, Thanksgiving days and the Friday after Thanksgiving:
  16:00 -> 23:05) and Good Friday
  (Thursday 20:00 -> the weekend).
* ``"24x7"``: no closed windows.

Score
-----
For each kind ``k`` a fraction ``f_k``: affected rows / rows for the row kinds, and in-session missing
bars / (distinct bar times + in-session missing bars) for ``gap`` (only reported gaps count). Then::

    penalty_k = cap_k * min(1, sqrt(f_k / full_k))
    score     = max(0, 100 - sum_k penalty_k)

The square root makes a handful of defects visible (one bad price in two weeks of M1 costs ~10 points)
while a kind can never cost more than its cap. ``(cap, full)`` per kind: non_monotonic (40, 0.1 %),
bad_price (40, 0.1 %), duplicate_time (30, 0.1 %), ohlc_inconsistent (30, 0.1 %), gap (20, 5 %),
spike (10, 0.2 %), stale (10, 5 %), bad_spread (10, 1 %). Hard defects weigh most and reach their cap
at 0.1 % of the rows; clean real data scores >= 95.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from rich.table import Table
from rich.text import Text

from mt5tester.model.bars import Bars
from mt5tester.model.timeframe import Timeframe

B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

MINUTE = 60 * 1_000_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR

KINDS = (
    "non_monotonic",
    "duplicate_time",
    "bad_price",
    "ohlc_inconsistent",
    "spike",
    "gap",
    "stale",
    "bad_spread",
    "misaligned",
    "closed_market",
)
HARD_KINDS = frozenset({"non_monotonic", "duplicate_time", "bad_price", "ohlc_inconsistent", "misaligned"})
# kind -> (cap in score points, fraction at which the cap is reached)
SCORE_WEIGHTS: dict[str, tuple[float, float]] = {
    "non_monotonic": (40.0, 0.001),
    "bad_price": (40.0, 0.001),
    "duplicate_time": (30.0, 0.001),
    "ohlc_inconsistent": (30.0, 0.001),
    "gap": (20.0, 0.05),
    "spike": (10.0, 0.002),
    "stale": (10.0, 0.05),
    "bad_spread": (10.0, 0.01),
    "misaligned": (40.0, 0.001),
    "closed_market": (20.0, 0.001),
}
SESSIONS = ("fx", "xau", "24x7")
SPIKE_BLOCK = 1440
WEEKEND_TRADING_SHARE = 0.1  # above this share of bars in the weekend close, the symbol trades 24x7
SPIKE_SCALE_FLOOR = 1e-5


@dataclass(frozen=True)
class Finding:
    kind: str
    start_ns: int
    end_ns: int
    count: int
    detail: str
    rows: tuple[int, int] | None = None  # first and last row (0-based, input order) of a run of rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "start": iso(self.start_ns),
            "end": iso(self.end_ns),
            "count": self.count,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class HealthReport:
    symbol: str
    timeframe: Timeframe
    session: str
    bars: int
    first_ns: int | None
    last_ns: int | None
    findings: list[Finding]
    score: float
    counts: dict[str, int] = field(default_factory=dict)  # findings per kind, before max_findings_per_kind
    affected: dict[str, int] = field(default_factory=dict)  # rows (or missing bars for gaps) per kind
    penalties: dict[str, float] = field(default_factory=dict)  # score points lost per kind

    @property
    def hard_defects(self) -> int:
        return sum(self.counts.get(k, 0) for k in HARD_KINDS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "timeframe": self.timeframe.name,
            "session": self.session,
            "bars": self.bars,
            "first": iso(self.first_ns) if self.first_ns is not None else None,
            "last": iso(self.last_ns) if self.last_ns is not None else None,
            "score": round(self.score, 2),
            "counts": dict(self.counts),
            "affected": dict(self.affected),
            "penalties": {k: round(v, 3) for k, v in self.penalties.items()},
            "findings": [f.to_dict() for f in self.findings],
        }


def iso(ns: int) -> str:
    """UTC ISO-8601 text of a nanosecond timestamp (microsecond precision)."""
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(ns) // 1000)).isoformat()


def _short(ns: int) -> str:
    return iso(ns)[:16].replace("T", " ")


# ---------------------------------------------------------------------------------------------------
# Run helpers


def _runs(flag: B) -> tuple[I64, I64]:
    """Start and stop (exclusive) indexes of the runs of True in ``flag``."""
    d = np.diff(np.concatenate(([0], flag.astype(np.int8), [0])))
    return np.flatnonzero(d == 1).astype(np.int64), np.flatnonzero(d == -1).astype(np.int64)


def _run_findings(kind: str, flag: B, time: I64, detail: str, min_len: int = 1) -> list[Finding]:
    starts, stops = _runs(flag)
    keep = (stops - starts) >= min_len
    starts, stops = starts[keep], stops[keep]
    if len(starts) == 0:
        return []
    # Row order may be unsorted (that is what non_monotonic reports): the range is min..max of the run.
    # reduceat over [start, stop) pairs; a sentinel row makes stop == len(time) a valid index.
    padded = np.append(time, time[:1])
    pairs = np.column_stack((starts, stops)).ravel()
    tmin = np.minimum.reduceat(padded, pairs)[::2]
    tmax = np.maximum.reduceat(padded, pairs)[::2]
    return [
        Finding(kind, int(a), int(b), int(n), detail, (int(i), int(j) - 1))
        for a, b, n, i, j in zip(
            tmin.tolist(),
            tmax.tolist(),
            (stops - starts).tolist(),
            starts.tolist(),
            stops.tolist(),
            strict=True,
        )
    ]


# ---------------------------------------------------------------------------------------------------
# Session calendars


def _day_ns(d: date) -> int:
    return (d - date(1970, 1, 1)).days * DAY


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    x = h + el - 7 * m + 114
    return date(year, x // 31, x % 31 + 1)


def _us_metal_holidays(year: int) -> list[date]:
    """US holidays on which CME metals close early (the spot market follows)."""
    jul4 = date(year, 7, 4)
    if jul4.weekday() == 5:
        jul4 -= timedelta(days=1)
    elif jul4.weekday() == 6:
        jul4 += timedelta(days=1)
    return [
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Presidents Day
        _last_weekday(year, 5, 0),  # Memorial Day
        jul4,
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _nth_weekday(year, 11, 3, 4) + timedelta(days=1),  # the Friday after closes early too
    ]


def closed_windows(session: str, first_ns: int, last_ns: int) -> tuple[I64, I64]:
    """Merged, sorted closed-market windows [start, end) in UTC ns covering [first_ns, last_ns]."""
    if session == "24x7":
        return np.empty(0, np.int64), np.empty(0, np.int64)
    reopen = 23 * HOUR + (5 * MINUTE if session == "xau" else 0)
    day0 = first_ns // DAY - 8
    day1 = last_ns // DAY + 8
    days = np.arange(day0, day1 + 1, dtype=np.int64)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    fridays = days[weekday == 4] * DAY
    starts = [fridays + 20 * HOUR]
    ends = [fridays + 2 * DAY + reopen]
    if session == "xau":
        starts.append(days * DAY + 21 * HOUR)
        ends.append(days * DAY + reopen)
    extra_s: list[int] = []
    extra_e: list[int] = []
    y0 = (datetime(1970, 1, 1) + timedelta(days=int(day0))).year
    y1 = (datetime(1970, 1, 1) + timedelta(days=int(day1))).year
    for year in range(y0, y1 + 1):
        for month, day in ((12, 24), (12, 31)):
            d = _day_ns(date(year, month, day))
            extra_s.append(d + 12 * HOUR)
            extra_e.append(d + DAY + reopen)
        if session == "xau":
            for hol in _us_metal_holidays(year):
                extra_s.append(_day_ns(hol) + 16 * HOUR)
                extra_e.append(_day_ns(hol) + reopen)
            good_friday = _day_ns(_easter(year) - timedelta(days=2))
            extra_s.append(good_friday - DAY + 20 * HOUR)
            extra_e.append(good_friday + DAY)
    starts.append(np.asarray(extra_s, np.int64))
    ends.append(np.asarray(extra_e, np.int64))
    return _merge(np.concatenate(starts), np.concatenate(ends))


def _merge(ws: I64, we: I64) -> tuple[I64, I64]:
    keep = we > ws
    ws, we = ws[keep], we[keep]
    if len(ws) == 0:
        return ws, we
    order = np.argsort(ws, kind="stable")
    ws, we = ws[order], we[order]
    reach = np.maximum.accumulate(we)
    new = np.ones(len(ws), bool)
    new[1:] = ws[1:] > reach[:-1]
    idx = np.flatnonzero(new)
    return ws[idx], np.maximum.reduceat(we, idx)


def _snap(ws: I64, we: I64, phase: int, period: int) -> tuple[I64, I64]:
    """Move window edges up to the bar grid, so a window holds exactly the bar opens inside it."""

    def up(t: I64) -> I64:
        return phase + -((phase - t) // period) * period

    return _merge(up(ws), up(we))


def _window_of(t: I64, ws: I64, we: I64) -> tuple[I64, B]:
    """Index of the last window starting at or before t, and whether t lies inside it."""
    k = np.searchsorted(ws, t, "right") - 1
    kk = np.clip(k, 0, max(len(ws) - 1, 0))
    inside = (k >= 0) & (t < we[kk]) if len(ws) else np.zeros(len(t), bool)
    return kk, inside


def _closed_before(t: I64, ws: I64, we: I64, cum: I64) -> I64:
    """Total closed time in (-inf, t)."""
    if len(ws) == 0:
        return np.zeros(len(t), np.int64)
    k = np.searchsorted(ws, t, "right") - 1
    kk = np.clip(k, 0, len(ws) - 1)
    part = np.clip(t - ws[kk], 0, we[kk] - ws[kk])
    return np.where(k >= 0, cum[kk] + part, 0)


# ---------------------------------------------------------------------------------------------------
# Checks


def _gap_findings(
    sorted_time: I64, period: int, ws: I64, we: I64, min_gap_bars: int
) -> tuple[list[Finding], int, int]:
    """Gap findings, total in-session missing bars of those findings, distinct bar times."""
    keep = np.ones(len(sorted_time), bool)
    keep[1:] = sorted_time[1:] != sorted_time[:-1]
    u = sorted_time if keep.all() else sorted_time[keep]  # distinct times: no copy when none repeats
    del keep
    if len(u) < 2:
        return [], 0, len(u)
    phase = int(u[0] % period)
    sws, swe = _snap(ws, we, phase, period)
    cum = np.concatenate(([0], np.cumsum(swe - sws))).astype(np.int64)
    # a gap from a = u[k] + period to b = u[k + 1]: b - a >= (min + 1) periods, i.e. a step of min + 2
    cand = np.flatnonzero(np.diff(u) >= (min_gap_bars + 2) * period)
    a, b = u[cand] + period, u[cand + 1]
    closed = _closed_before(b, sws, swe, cum) - _closed_before(a, sws, swe, cum)
    missing = (b - a - closed) // period
    sel = missing > min_gap_bars
    a, b, missing = a[sel], b[sel], missing[sel]
    if len(a) == 0:
        return [], 0, len(u)
    ka, ina = _window_of(a, sws, swe)
    first = np.where(ina, swe[ka] if len(swe) else a, a)
    last = b - period
    kl, inl = _window_of(last, sws, swe)
    last = np.where(inl, (sws[kl] if len(sws) else last) - period, last)
    out = [
        Finding("gap", int(f), int(lt), int(m), f"{int(m)} bars missing in session")
        for f, lt, m in zip(first.tolist(), last.tolist(), missing.tolist(), strict=True)
    ]
    return out, int(missing.sum()), len(u)


def _spike_flags(close: F64, valid: B, spike_z: float) -> tuple[B, F64, F64]:
    """Spike flag per row, plus the log returns and z-scores used (for the details). Computed in place
    (a few arrays of one row each at a time, whatever the length: a 5M-bar file is checked in the
    memory of its returns and z-scores)."""
    n = len(close)
    r = np.full(n, np.nan)
    if n < 3:
        return np.zeros(n, bool), r, r
    ok = valid[1:] & valid[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(close[1:], close[:-1], out=r[1:])
        np.log(r[1:], out=r[1:])
    r[1:][~ok] = np.nan
    del ok
    finite = np.isfinite(r)
    rf = r[finite]
    if len(rf) == 0:
        return np.zeros(n, bool), r, r
    # medians of scratch copies, partitioned in place (the median of the same values)
    gmed = float(np.median(rf, overwrite_input=True))
    rf -= gmed
    np.abs(rf, out=rf)
    gscale = 1.4826 * float(np.median(rf, overwrite_input=True))
    del rf
    floor = max(SPIKE_SCALE_FLOOR, gscale)
    # Per-block median / MAD; the last partial block joins the previous full one.
    nb = max(1, n // SPIKE_BLOCK)
    med = np.empty(nb)
    scale = np.empty(nb)
    full = (nb - 1) * SPIKE_BLOCK
    if nb > 1:
        # The few undefined returns (first row, bad prices) count as the global median: a negligible
        # bias that keeps this a plain 2-D median (nanmedian loops in Python per row).
        blocks = np.where(finite[:full], r[:full], gmed).reshape(nb - 1, SPIKE_BLOCK)
        med[:-1] = np.median(blocks, axis=1, overwrite_input=True)
        blocks -= med[:-1, None]
        np.abs(blocks, out=blocks)
        scale[:-1] = 1.4826 * np.median(blocks, axis=1, overwrite_input=True)
        del blocks
    del finite
    tail = r[full:]
    tail = tail[np.isfinite(tail)]
    med[-1] = np.median(tail) if len(tail) else gmed
    scale[-1] = 1.4826 * np.median(np.abs(tail - med[-1])) if len(tail) else gscale
    med = np.where(np.isfinite(med), med, gmed)
    scale = np.maximum(np.where(np.isfinite(scale), scale, gscale), floor)
    # z = (r - med[block]) / scale[block], block by block (rows of the full blocks, then the rest)
    z = np.empty(n)
    if full:
        zb = z[:full].reshape(nb - 1, SPIKE_BLOCK)
        np.subtract(r[:full].reshape(nb - 1, SPIKE_BLOCK), med[:-1, None], out=zb)
        np.divide(zb, scale[:-1, None], out=zb)
    np.subtract(r[full:], med[-1], out=z[full:])
    np.divide(z[full:], scale[-1], out=z[full:])
    # a spike: |z| > spike_z at a row and the next, of opposite signs, and the close two rows on is back
    # within half the move: |log(c[i+1] / c[i-1])| <= 0.5 |r[i]|
    big = np.abs(z) > spike_z
    flag = np.zeros(n, bool)
    flag[:-1] = big[:-1] & big[1:]
    del big
    pos = z > 0  # where both are big, both are non-zero: sign(z) != sign(z_next) is a change of this
    flag[:-1] &= pos[:-1] != pos[1:]
    del pos
    # log(c[i+1] / c[i-1]) at the few candidate rows only (the first and last rows have none: no spike)
    at = np.flatnonzero(flag)
    inner = at[(at > 0) & (at < n - 1)]
    flag[at] = False
    with np.errstate(divide="ignore", invalid="ignore"):
        back = np.abs(np.log(np.divide(close[inner + 1], close[inner - 1])))
        flag[inner] = back <= 0.5 * np.abs(r[inner])
    return flag, r, z


def _off_grid(time: I64, tf: Timeframe) -> B:
    step = min(tf.period_ns if tf.is_fixed else HOUR, HOUR)
    phase = time % step
    off = phase != 0
    if 2 * int(np.count_nonzero(off)) < len(phase):  # most bars on the grid: 0 is the usual phase
        return off
    values, counts = np.unique(phase, return_counts=True)
    return np.asarray(phase != values[int(np.argmax(counts))], dtype=bool)


_WEEKEND_OPEN = {"fx": 17 * HOUR, "xau": 18 * HOUR}
_CHUNK = 1 << 18  # rows per chunk of the calendar checks


def _in_weekend(time: I64, tf: Timeframe, session: str) -> B:
    """Bars whose whole period lies in Friday 18:00 -> Sunday 17:00 (metals 18:00) New York time: the
    FX week closes and opens at 17:00 New York, which MT5 servers on UTC+2/+3 show as midnight."""
    if session not in _WEEKEND_OPEN:
        return np.zeros(len(time), bool)
    closes, opens = 4 * DAY + 18 * HOUR, 6 * DAY + _WEEKEND_OPEN[session]
    inside = np.empty(len(time), bool)
    for a in range(0, len(time), _CHUNK):  # a chunk at a time: a few temporaries of one chunk each
        part = time[a : a + _CHUNK]
        ny = pd.DatetimeIndex(part.view("datetime64[ns]")).tz_localize("UTC").tz_convert("America/New_York")
        local = ny.tz_localize(None).as_unit("ns").asi8
        week = ((local // DAY + 3) % 7) * DAY + local % DAY  # time since Monday 00:00 New York
        inside[a : a + len(part)] = (week >= closes) & (week + tf.period_ns <= opens)
    # A wrong time zone moves a few hours of each week (at most ~3 %) into the close; a market that
    # trades through the weekend (crypto CFDs) has ~25 % of its bars there: no finding for those.
    return inside if inside.mean() <= WEEKEND_TRADING_SHARE else np.zeros(len(time), bool)


def _cap(findings: list[Finding], limit: int) -> list[Finding]:
    """Keep the ``limit`` largest findings (by count, then earliest), in time order."""
    if len(findings) <= limit:
        return findings
    best = sorted(findings, key=lambda f: (-f.count, f.start_ns))[: max(limit, 0)]
    return sorted(best, key=lambda f: f.start_ns)


def validate(
    bars: Bars,
    *,
    session: str = "fx",
    spike_z: float = 12.0,
    stale_bars: int = 60,
    max_findings_per_kind: int = 50,
    min_gap_bars: int | None = None,
) -> HealthReport:
    """Check ``bars`` and score them (module docstring: checks, session calendars, score formula)."""
    if session not in SESSIONS:
        raise ValueError(f"unknown session {session!r}; valid: {', '.join(SESSIONS)}")
    if session == "fx" and bars.symbol.upper().startswith(("XAU", "XAG")):
        session = "xau"
    n = len(bars)
    tf = bars.timeframe
    if n == 0:
        return HealthReport(bars.symbol, tf, session, 0, None, None, [], 100.0, {}, {}, {})
    time = np.asarray(bars.time, np.int64)
    o, h, lo, c = (np.asarray(x, np.float64) for x in (bars.open, bars.high, bars.low, bars.close))
    first_ns, last_ns = int(time.min()), int(time.max())
    found: dict[str, list[Finding]] = {}

    # Time order: duplicates (every copy after the first, stable sort keeps row order) and rows that
    # come after a later time.
    dup = np.zeros(n, bool)
    back = np.zeros(n, bool)
    if bool((time[1:] > time[:-1]).all()):  # strictly increasing (the usual case): sorted, no repeat
        st = time
    else:
        order = np.argsort(time, kind="stable")
        st = time[order]
        dup[order[1:][st[1:] == st[:-1]]] = True
        del order
        runmax = np.maximum.accumulate(time)
        back[1:] = time[1:] < runmax[:-1]
        del runmax
    found["duplicate_time"] = _run_findings("duplicate_time", dup, time, "time repeated")
    found["non_monotonic"] = _run_findings("non_monotonic", back, time, "time earlier than a previous row")
    del dup, back

    # Prices.
    with np.errstate(invalid="ignore"):
        good = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c)
        good &= (o > 0) & (h > 0) & (lo > 0) & (c > 0)
        # h < max(o, c) as (h < o) | (h < c), without the max's array of prices (rows with NaN are not good)
        ohlc = good & ((h < o) | (h < c) | (lo > o) | (lo > c) | (h < lo))
    found["bad_price"] = _run_findings("bad_price", ~good, time, "price NaN, infinite or <= 0")
    found["ohlc_inconsistent"] = _run_findings(
        "ohlc_inconsistent", ohlc, time, "high < max(open, close), low > min(open, close) or high < low"
    )

    # Spikes (one finding per spike bar, with its numbers).
    spike, r, z = _spike_flags(c, good, spike_z)
    idx = np.flatnonzero(spike)
    found["spike"] = [
        Finding(
            "spike",
            int(time[i]),
            int(time[i]),
            1,
            f"close jumps {r[i] * 100:+.3f}% (z={z[i]:+.0f}) then {r[i + 1] * 100:+.3f}% (z={z[i + 1]:+.0f})",
        )
        for i in idx.tolist()
    ]
    del spike, r, z  # the returns and z-scores are only the spikes' details

    # Session calendar: gaps and stale prices.
    ws, we = closed_windows(session, first_ns, last_ns)
    gap_total = 0
    distinct = n
    if tf.is_fixed:
        thr = min_gap_bars if min_gap_bars is not None else (5 if tf is Timeframe.M1 else 0)
        found["gap"], gap_total, distinct = _gap_findings(st, tf.period_ns, ws, we, thr)
    else:
        found["gap"] = []
    _, in_closed = _window_of(time, ws, we)
    frozen = np.zeros(n, bool)
    frozen[1:] = (o[1:] == c[:-1]) & (h[1:] == c[:-1]) & (lo[1:] == c[:-1]) & (c[1:] == c[:-1])
    frozen &= good & ~in_closed
    found["stale"] = _run_findings(
        "stale", frozen, time, "open = high = low = close = previous close", min_len=max(stale_bars, 1)
    )

    # Spreads.
    spread = np.asarray(bars.spread)  # as stored (int32): compared as numbers, no int64 copy
    if spread.dtype.kind not in "iu":
        spread = spread.astype(np.int64)
    limit = max(50.0 * float(np.median(spread)), 1000.0)
    found["bad_spread"] = _run_findings(
        "bad_spread", (spread < 0) | (spread > limit), time, f"spread < 0 or > {limit:.0f} points"
    )

    found["misaligned"] = _run_findings(
        "misaligned", _off_grid(time, tf), time, f"open time off the {tf.name} grid"
    )
    found["closed_market"] = (
        _run_findings("closed_market", _in_weekend(time, tf, session), time, "bar inside the weekend close")
        if tf.is_fixed and tf.period_ns <= DAY
        else []
    )

    counts = {k: len(found[k]) for k in KINDS}
    affected = {k: sum(f.count for f in found[k]) for k in KINDS}
    penalties: dict[str, float] = {}
    for k in KINDS:
        cap, full = SCORE_WEIGHTS[k]
        denom = (distinct + gap_total) if k == "gap" else n
        frac = affected[k] / denom if denom else 0.0
        penalties[k] = cap * min(1.0, float(np.sqrt(frac / full)))
    score = max(0.0, 100.0 - sum(penalties.values()))
    findings = [f for k in KINDS for f in _cap(found[k], max_findings_per_kind)]
    findings.sort(key=lambda f: (f.start_ns, KINDS.index(f.kind)))
    return HealthReport(
        bars.symbol, tf, session, n, first_ns, last_ns, findings, score, counts, affected, penalties
    )


# ---------------------------------------------------------------------------------------------------
# Human output


def _top(report: HealthReport, limit: int = 3) -> str:
    rank = {k: i for i, k in enumerate(KINDS)}
    best = sorted(
        report.findings, key=lambda f: (f.kind not in HARD_KINDS, -f.count, rank[f.kind], f.start_ns)
    )
    lines = [f"{f.kind} {_short(f.start_ns)} x{f.count}" for f in best[:limit]]
    more = sum(report.counts.values()) - len(lines)
    if more > 0:
        lines.append(f"(+{more} more)")
    return "\n".join(lines) or "-"


def format_report(reports: list[HealthReport]) -> Table:
    """A rich table: one row per report with range, score, counts per kind and the top findings."""
    table = Table(title="Data health", show_lines=True)
    for name, justify in (
        ("symbol", "left"),
        ("tf", "left"),
        ("bars", "right"),
        ("range (UTC)", "left"),
        ("score", "right"),
        ("findings", "left"),
        ("top findings", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for rep in reports:
        colour = "green" if rep.score >= 95 else "yellow" if rep.score >= 80 else "red"
        rng = (
            "-"
            if rep.first_ns is None or rep.last_ns is None
            else (f"{_short(rep.first_ns)} ->\n{_short(rep.last_ns)}")
        )
        counts = ", ".join(f"{k} {v}" for k, v in rep.counts.items() if v) or "none"
        table.add_row(
            rep.symbol,
            rep.timeframe.name,
            f"{rep.bars:,}",
            rng,
            Text(f"{rep.score:.1f}", style=colour),
            counts,
            _top(rep),
        )
    return table


def history_quality(bars: Bars, report: HealthReport) -> float:
    """MT5's "History Quality" (spec 6.6) of M1 bars, in %: the share of correct bars, where a bar with
    tick volume 1 but different O/H/L/C is bad and every missing in-session minute (the gaps found by
    ``validate``) counts as a bad bar. MT5 also splits the period into up to 199 intervals for its
    chart; the figure is the overall share [U: MT5's exact weighting is not documented]."""
    if report.first_ns is not None and report.last_ns is not None:
        bars = bars.between(report.first_ns, report.last_ns + 1)  # the window the report validated
    n = len(bars)
    k = np.flatnonzero(bars.tick_volume == 1)  # the one-tick bars (none in most files), then their prices
    flat = (bars.open[k] == bars.high[k]) & (bars.high[k] == bars.low[k]) & (bars.low[k] == bars.close[k])
    bad = int((~flat).sum()) + int(report.affected.get("gap", 0))
    total = n + int(report.affected.get("gap", 0))
    return round(100.0 * (total - bad) / total, 2) if total else 0.0
