"""Forward period and walk-forward folds (pure date arithmetic), stitched out-of-sample equity and
walk-forward efficiency.

Windows are half-open day ranges ``[start, end)``, as ``backtest.start``/``end`` are (the end day is not
tested, as in MT5's tester).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from mt5tester.optimize.space import ForwardSplit, WalkForwardConfig

DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class Window:
    start: dt.date
    end: dt.date  # excluded

    @property
    def days(self) -> int:
        return (self.end - self.start).days


@dataclass(frozen=True)
class Fold:
    index: int
    in_sample: Window
    out_of_sample: Window


def add_period(d: dt.date, spec: str, times: int = 1) -> dt.date:
    """``d`` plus ``times`` × ``spec`` (``<n>d|w|m|y``); months and years keep the day of month, clamped
    to the month's last day (Jan 31 + 1m = Feb 28/29)."""
    n, unit = int(spec[:-1]) * times, spec[-1]
    if unit == "d":
        return d + dt.timedelta(days=n)
    if unit == "w":
        return d + dt.timedelta(weeks=n)
    months = n if unit == "m" else 12 * n
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return dt.date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def forward_split(start: dt.date, end: dt.date, forward: ForwardSplit | dt.date) -> Fold | None:
    """MT5's forward period: the last 1/2, 1/3 or 1/4 of the range, or from a date on (None: no forward).

    The in-sample part gets the whole days (floor) of its share, the forward part the rest.
    """
    if forward == "none":
        return None
    if isinstance(forward, dt.date):
        if not start < forward < end:
            raise ValueError(f"optimize.forward: {forward} is not inside the backtest range {start} .. {end}")
        cut = forward
    else:
        parts = int(forward.split("/")[1])
        days = (end - start).days
        cut = start + dt.timedelta(days=days * (parts - 1) // parts)
        if not start < cut < end:
            raise ValueError(f"optimize.forward: {start} .. {end} is too short to split {forward}")
    return Fold(0, Window(start, cut), Window(cut, end))


def walk_forward_folds(start: dt.date, end: dt.date, wf: WalkForwardConfig) -> list[Fold]:
    """The folds of a walk-forward over ``[start, end)``, laid from ``start`` on.

    Fold k's out-of-sample window follows its in-sample window, and the out-of-sample windows follow each
    other without gap or overlap. Rolling: in-sample = the ``in_sample`` length just before fold k's
    out-of-sample window. Anchored: in-sample = from ``start`` to that window. Without ``out_of_sample``,
    the days after the first in-sample window are shared equally (floor) by the out-of-sample windows.
    """
    first_oos = add_period(start, wf.in_sample)
    if wf.out_of_sample is None:
        step = (end - first_oos).days // wf.folds
        if step < 1:
            raise ValueError(
                f"optimize.walk_forward: {start} .. {end} leaves no out-of-sample days after an in-sample "
                f"of {wf.in_sample} for {wf.folds} folds"
            )
        bounds = [first_oos + dt.timedelta(days=step * k) for k in range(wf.folds + 1)]
    else:
        bounds = [add_period(first_oos, wf.out_of_sample, k) for k in range(wf.folds + 1)]
        if bounds[-1] > end:
            raise ValueError(
                f"optimize.walk_forward: {wf.folds} folds of {wf.in_sample} in-sample + {wf.out_of_sample} "
                f"out-of-sample need {start} .. {bounds[-1]}, past the backtest end {end}"
            )
    folds = []
    for k in range(wf.folds):
        oos = Window(bounds[k], bounds[k + 1])
        # max(): month-end clamping can put "start + 1m - 1m" before start (Jan 31 -> Feb 29 -> Jan 29)
        is_start = start if wf.mode == "anchored" else max(start, add_period(oos.start, wf.in_sample, -1))
        folds.append(Fold(k, Window(is_start, oos.start), oos))
    return folds


def stitch_equity(curves: Sequence[pd.Series], initial: float, compound: bool = False) -> pd.Series:
    """One curve from the folds' out-of-sample equity curves, in fold order.

    Each curve's first value is the balance its run started from. Fold k continues from the stitched
    curve's end: additive (default) moves the fold's money P&L onto that balance, as fixed-lot runs earn
    money independent of the balance; ``compound`` scales it by end / start instead, for runs that size
    positions in % of equity. A fold whose first time equals the previous last time (a window's end is the
    next one's start) drops that first point, which is the same balance at the same time.
    """
    pieces: list[pd.Series] = []
    level = float(initial)
    last_time = None
    for k, curve in enumerate(curves):
        if curve.empty:
            continue
        if not curve.index.is_monotonic_increasing:
            raise ValueError(f"fold {k}: equity times are not increasing")
        base = float(curve.iloc[0])
        moved = curve * (level / base) if compound else curve - base + level
        if last_time is not None:
            if moved.index[0] < last_time:
                first = moved.index[0]
                raise ValueError(f"fold {k} starts at {first}, before fold {k - 1} ends ({last_time})")
            if moved.index[0] == last_time:
                moved = moved.iloc[1:]
        if moved.empty:
            continue
        pieces.append(moved)
        level, last_time = float(moved.iloc[-1]), moved.index[-1]
    if not pieces:
        return pd.Series([], dtype=float, name="equity")
    return pd.concat(pieces).rename("equity")


def annualised_return(ret: float, days: float) -> float:
    """Linear annualisation, ret × 365.25 / days (Pardo's annualised rate of profit)."""
    if days <= 0:
        raise ValueError(f"a window of {days} days has no annual rate")
    return ret * DAYS_PER_YEAR / days


def walk_forward_efficiency(
    is_return: float, is_days: float, oos_return: float, oos_days: float
) -> float | None:
    """WFE = annualised out-of-sample return / annualised in-sample return (R. Pardo, *The Evaluation and
    Optimization of Trading Strategies*, 2nd ed., Wiley 2008, ch. 11: "the annualized rate of profit of
    the out-of-sample period divided by the annualized rate of profit of the in-sample optimization").

    Returns are fractions of the starting balance; linear annualisation as Pardo's. A robust system keeps
    WFE above roughly 0.5-0.6 (Pardo). None when the in-sample return is not positive: the ratio then
    says nothing (a loss over a loss would look "efficient").
    """
    is_annual = annualised_return(is_return, is_days)
    if is_annual <= 0:
        return None
    return annualised_return(oos_return, oos_days) / is_annual
