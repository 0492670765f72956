"""Checks that run before bar 1. Each failure raises the error class of its stage (exit codes)."""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd

from mt5tester.config import Config
from mt5tester.data.health import HealthReport, validate
from mt5tester.errors import DataError
from mt5tester.model.bars import Bars
from mt5tester.model.timeframe import Timeframe

# The FX week closes Friday ~22:00 UTC and reopens Sunday ~22:00 UTC: data ending up to 3 days
# before the end date (a weekend, plus the holiday at each year end) still covers it.
END_SLACK_NS = 3 * 86_400 * 1_000_000_000


def ts(ns: int) -> str:
    return pd.Timestamp(ns, tz="UTC").strftime("%Y-%m-%d %H:%M")


def day_ns(d: object) -> int:
    return int(pd.Timestamp(d, tz="UTC").value)  # type: ignore[arg-type]


def check_coverage(cfg: Config, m1: Bars, tf_bars: dict[Timeframe, Bars], check_end: bool = True) -> None:
    """Every timeframe has ``warmup_bars`` closed bars at the start and data runs through the end."""
    start, end = day_ns(cfg.backtest.start), day_ns(cfg.backtest.end)
    warm = cfg.backtest.warmup_bars
    avail = f"{ts(int(m1.time[0]))} .. {ts(int(m1.time[-1]))}" if len(m1) else "nothing"
    asked = f"asked for {cfg.backtest.start} .. {cfg.backtest.end} plus {warm} warm-up bars"
    for tf, bars in tf_bars.items():
        closed_before = int(np.searchsorted(bars.close_time, start, "right"))
        if closed_before < warm:
            raise DataError(
                f"{m1.symbol} {tf.name}: the run needs {warm} closed bars before {cfg.backtest.start} "
                f"(warmup_bars) but the data has {closed_before}; {asked}, available {avail}. "
                "Move backtest.start later, lower warmup_bars or import more data."
            )
        if check_end and (len(bars) == closed_before or int(m1.time[-1]) + END_SLACK_NS < end):
            raise DataError(
                f"{m1.symbol} {tf.name}: no data through the run; {asked}, available {avail}. "
                "Move backtest.end earlier or import more data."
            )


def check_prices(m1: Bars) -> None:
    """Refuse data the loop cannot trade on: unsorted times, NaN or non-positive prices."""
    if len(m1) > 1 and not bool(np.all(np.diff(m1.time) > 0)):
        bad = int(np.argmax(np.diff(m1.time) <= 0)) + 1
        raise DataError(
            f"{m1.symbol} M1: times not strictly increasing at row {bad} ({ts(int(m1.time[bad]))})"
        )
    for name in ("open", "high", "low", "close"):
        col = getattr(m1, name)
        bad_mask = ~np.isfinite(col) | (col <= 0)
        if bad_mask.any():
            i = int(np.argmax(bad_mask))
            raise DataError(f"{m1.symbol} M1: {name} is {col[i]} at {ts(int(m1.time[i]))} (row {i})")


# The health of a series of M1 bars up to an end, validated once per bars object (a preloaded dataset's
# bars serve every optimizer pass of a worker); freed with the bars.
_HEALTH: weakref.WeakKeyDictionary[Bars, dict[int, HealthReport]] = weakref.WeakKeyDictionary()


def check_health(cfg: Config, m1: Bars) -> HealthReport:
    """Validate the run's M1 window (warm-up included) and refuse it below ``data.min_health``."""
    start, end = int(m1.time[0]) if len(m1) else 0, day_ns(cfg.backtest.end)
    known = _HEALTH.setdefault(m1, {})
    report = known.get(end)
    if report is None:
        report = known[end] = validate(m1.between(start, end))
    if report.score < cfg.data.min_health and not cfg.data.allow_unhealthy:
        top = "; ".join(f"{f.kind} x{f.count} at {ts(f.start_ns)}" for f in report.findings[:3])
        raise DataError(
            f"{m1.symbol} M1: data health {report.score:.1f} is below data.min_health "
            f"{cfg.data.min_health:g} ({top}). Inspect with `mt5tester data validate`, fix the data, or "
            "set data.allow_unhealthy: true (or --allow-unhealthy) to run anyway."
        )
    return report
