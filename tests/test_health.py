"""Tests for mt5tester.data.health: every defect kind, session calendars, score, real-data behaviour."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rich.table import Table

from mt5tester.data.health import HARD_KINDS, Finding, HealthReport, format_report, validate
from mt5tester.data.store import read_m1_parquet
from mt5tester.model.bars import Bars
from mt5tester.model.timeframe import Timeframe

MIN = 60 * 1_000_000_000
SYMBOLS = ("EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCHF", "USDCAD", "XAUUSD")


def ns(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value)


@lru_cache(maxsize=8)
def _load(folder: str, symbol: str) -> Bars:
    return read_m1_parquet(Path(folder) / "m1" / f"{symbol}_M1_2018-2019.parquet", symbol)


def load(shared_data: Path, symbol: str, start: str | None = None, end: str | None = None) -> Bars:
    bars = _load(str(shared_data), symbol)
    if start is None or end is None:
        return bars
    return bars.between(ns(start), ns(end))


def replace(bars: Bars, **arrays: Any) -> Bars:
    """A new Bars with some columns replaced (the originals are never modified)."""
    cols = {
        name: np.array(getattr(bars, name), copy=True)
        for name in ("time", "open", "high", "low", "close", "tick_volume", "spread")
    }
    cols.update(arrays)
    return Bars(bars.symbol, bars.timeframe, **cols)


def take(bars: Bars, idx: np.ndarray) -> Bars:
    """Rows of bars in the order of idx (used to insert, drop or swap rows)."""
    return replace(
        bars,
        **{n: getattr(bars, n)[idx] for n in ("time", "open", "high", "low", "close")},
        tick_volume=bars.tick_volume[idx],
        spread=bars.spread[idx],
    )


def tiny(
    times: list[int],
    closes: list[float] | None = None,
    symbol: str = "EURUSD",
    timeframe: Timeframe = Timeframe.M1,
) -> Bars:
    """Hand-made bars: open = previous close, high/low the extremes of open and close."""
    n = len(times)
    if closes is None:
        closes = [1.1000 + 0.0001 * (i % 2) for i in range(n)]
    c = np.asarray(closes, np.float64)
    o = np.concatenate((c[:1], c[:-1]))
    return Bars(
        symbol,
        timeframe,
        np.asarray(times, np.int64),
        o,
        np.maximum(o, c),
        np.minimum(o, c),
        c,
        np.ones(n, np.int64),
        np.full(n, 10, np.int32),
    )


def of_kind(report: HealthReport, kind: str) -> list[Finding]:
    return [f for f in report.findings if f.kind == kind]


WED = ns("2019-01-09 10:00")  # a plain Wednesday, inside every session


# --------------------------------------------------------------------------------------------------
# Hand-made bars: exact counts and ranges


def test_validate_tiny_clean_bars_no_findings_score_100() -> None:
    report = validate(tiny([WED + i * MIN for i in range(20)]))
    assert report.findings == []
    assert report.score == 100.0
    assert report.bars == 20
    assert (report.first_ns, report.last_ns) == (WED, WED + 19 * MIN)


def test_validate_tiny_repeated_times_duplicates_counted_per_run() -> None:
    t = [WED + i * MIN for i in (0, 1, 2, 2, 2, 3, 4, 5, 5, 6)]
    report = validate(tiny(t))
    dups = of_kind(report, "duplicate_time")
    assert [(f.start_ns, f.end_ns, f.count) for f in dups] == [
        (WED + 2 * MIN, WED + 2 * MIN, 2),
        (WED + 5 * MIN, WED + 5 * MIN, 1),
    ]
    assert report.counts["duplicate_time"] == 2
    assert report.affected["duplicate_time"] == 3
    assert of_kind(report, "non_monotonic") == []


def test_validate_tiny_backward_rows_non_monotonic_with_range() -> None:
    t = [WED + i * MIN for i in (0, 1, 2, 5, 6, 3, 4, 7, 8)]
    report = validate(tiny(t))
    assert [(f.start_ns, f.end_ns, f.count) for f in of_kind(report, "non_monotonic")] == [
        (WED + 3 * MIN, WED + 4 * MIN, 2)
    ]
    assert of_kind(report, "duplicate_time") == []
    assert of_kind(report, "gap") == []  # gaps are measured on the sorted distinct times


def test_validate_tiny_missing_minutes_gap_with_exact_range_and_count() -> None:
    t = [WED + i * MIN for i in (*range(3), *range(13, 20))]  # minutes 3..12 missing
    gaps = of_kind(validate(tiny(t)), "gap")
    assert [(f.start_ns, f.end_ns, f.count) for f in gaps] == [(WED + 3 * MIN, WED + 12 * MIN, 10)]


def test_validate_tiny_five_missing_minutes_below_threshold_not_a_gap() -> None:
    t = [WED + i * MIN for i in (*range(3), *range(8, 12))]  # 5 missing: normal quiet minutes
    assert of_kind(validate(tiny(t)), "gap") == []
    strict = validate(tiny(t), min_gap_bars=0)
    assert [(f.start_ns, f.count) for f in of_kind(strict, "gap")] == [(WED + 3 * MIN, 5)]


def test_validate_tiny_fx_weekend_not_a_gap_but_24x7_is() -> None:
    fri = ns("2019-01-11 19:58")
    sun = ns("2019-01-13 23:00")
    t = [fri, fri + MIN, sun, sun + MIN]
    assert of_kind(validate(tiny(t)), "gap") == []
    gaps = of_kind(validate(tiny(t), session="24x7"), "gap")
    assert [(f.start_ns, f.end_ns, f.count) for f in gaps] == [
        (fri + 2 * MIN, sun - MIN, (sun - fri) // MIN - 2)
    ]


def test_validate_tiny_gap_straddling_weekend_counts_only_session_minutes() -> None:
    fri = ns("2019-01-11 19:40")  # last bar; 19:41..19:59 missing in session
    mon = ns("2019-01-14 00:10")  # first bar; Sunday 23:00..Monday 00:09 missing in session
    gaps = of_kind(validate(tiny([fri - MIN, fri, mon, mon + MIN])), "gap")
    assert [(f.start_ns, f.end_ns, f.count) for f in gaps] == [(fri + MIN, mon - MIN, 19 + 70)]


def test_validate_tiny_christmas_and_new_year_closures_not_gaps() -> None:
    xmas = [ns("2018-12-24 11:58"), ns("2018-12-24 11:59"), ns("2018-12-25 23:00"), ns("2018-12-25 23:01")]
    new_year = [ns("2018-12-31 11:58"), ns("2018-12-31 11:59"), ns("2019-01-01 23:00")]
    assert of_kind(validate(tiny(xmas)), "gap") == []
    assert of_kind(validate(tiny(new_year)), "gap") == []


def test_validate_tiny_xau_daily_break_not_a_gap_under_xau_but_under_fx() -> None:
    t = [ns("2019-06-12 20:58"), ns("2019-06-12 20:59"), ns("2019-06-12 22:01"), ns("2019-06-12 22:02")]
    assert of_kind(validate(tiny(t), session="xau"), "gap") == []
    gaps = of_kind(validate(tiny(t), session="fx"), "gap")
    assert [(f.start_ns, f.end_ns, f.count) for f in gaps] == [
        (ns("2019-06-12 21:00"), ns("2019-06-12 22:00"), 61)
    ]


def test_validate_xau_symbol_under_fx_uses_xau_calendar() -> None:
    t = [ns("2019-06-12 20:59"), ns("2019-06-12 22:01")]
    report = validate(tiny(t, [1330.0, 1331.0], symbol="XAUUSD"))
    assert report.session == "xau"
    assert of_kind(report, "gap") == []


def test_validate_xau_us_holiday_early_close_not_a_gap() -> None:
    # Thanksgiving 2018-11-22: gold stopped at 17:59 UTC and reopened 23:01 UTC.
    t = [ns("2018-11-22 17:58"), ns("2018-11-22 17:59"), ns("2018-11-22 23:01")]
    assert of_kind(validate(tiny(t, [1227.0, 1227.5, 1228.0]), session="xau"), "gap") == []


def test_validate_h1_missing_weekday_hour_is_gap_weekend_hours_are_not() -> None:
    hour = 60 * MIN
    thu = ns("2019-01-10 00:00")
    hours = [h for h in range(0, 24 * 4 + 12) if h != 5]  # Thursday 00:00 .. Sunday 11:00, 05:00 missing
    t = [
        thu + h * hour
        for h in hours
        if not (ns("2019-01-11 21:00") <= thu + h * hour < ns("2019-01-13 22:00"))
    ]
    t += [ns("2019-01-13 22:00"), ns("2019-01-13 23:00")]
    report = validate(tiny(t, timeframe=Timeframe.H1))
    assert [(f.start_ns, f.end_ns, f.count) for f in of_kind(report, "gap")] == [
        (thu + 5 * hour, thu + 5 * hour, 1)
    ]


def test_validate_tiny_bad_prices_and_ohlc_violation_reported_exactly() -> None:
    bars = tiny([WED + i * MIN for i in range(10)])
    close = bars.close.copy()
    close[3] = np.nan
    close[4] = -1.0
    high = bars.high.copy()
    high[7] = bars.low[7] - 0.0005
    report = validate(replace(bars, close=close, high=high))
    assert [(f.start_ns, f.end_ns, f.count) for f in of_kind(report, "bad_price")] == [
        (WED + 3 * MIN, WED + 4 * MIN, 2)
    ]
    assert [(f.start_ns, f.count) for f in of_kind(report, "ohlc_inconsistent")] == [(WED + 7 * MIN, 1)]


def test_validate_tiny_spike_that_reverts_is_reported() -> None:
    closes = [1.1000 + 0.0001 * (i % 2) for i in range(30)]
    closes[12] = 1.1200
    report = validate(tiny([WED + i * MIN for i in range(30)], closes))
    assert [(f.start_ns, f.count) for f in of_kind(report, "spike")] == [(WED + 12 * MIN, 1)]


def test_validate_tiny_level_shift_without_reversal_not_a_spike() -> None:
    closes = [1.1000 + 0.0001 * (i % 2) for i in range(15)] + [1.1200 + 0.0001 * (i % 2) for i in range(15)]
    report = validate(tiny([WED + i * MIN for i in range(30)], closes))
    assert of_kind(report, "spike") == []


def test_validate_tiny_frozen_price_run_is_stale_from_threshold() -> None:
    closes = [1.1000 + 0.0001 * (i % 2) for i in range(10)] + [1.1001] * 5 + [1.1002, 1.1003]
    t = [WED + i * MIN for i in range(len(closes))]
    report = validate(tiny(t, closes), stale_bars=5)
    # Row 9 closes at 1.1001; rows 10..14 repeat it with O=H=L=C: 5 frozen bars.
    assert [(f.start_ns, f.end_ns, f.count) for f in of_kind(report, "stale")] == [
        (WED + 10 * MIN, WED + 14 * MIN, 5)
    ]
    assert of_kind(validate(tiny(t, closes), stale_bars=6), "stale") == []


def test_validate_tiny_negative_and_absurd_spread_reported() -> None:
    bars = tiny([WED + i * MIN for i in range(10)])
    spread = bars.spread.copy()
    spread[2] = -3
    spread[6] = 1001  # > max(50 x median 10, 1000)
    report = validate(replace(bars, spread=spread))
    assert [(f.start_ns, f.count) for f in of_kind(report, "bad_spread")] == [
        (WED + 2 * MIN, 1),
        (WED + 6 * MIN, 1),
    ]


def test_validate_score_formula_one_ohlc_violation_in_4000_bars_costs_15_points() -> None:
    bars = tiny([WED + i * MIN for i in range(4000)], symbol="BTCUSD")
    high = bars.high.copy()
    high[100] = bars.low[100] - 0.001
    report = validate(replace(bars, high=high), session="24x7")
    # penalty = 30 * sqrt((1 / 4000) / 0.001) = 30 * 0.5 = 15
    assert report.penalties["ohlc_inconsistent"] == pytest.approx(15.0)
    assert report.score == pytest.approx(85.0)


def test_validate_max_findings_per_kind_keeps_largest_but_counts_all() -> None:
    minutes = [0, 1, *range(9, 12), *range(30, 32), *range(60, 62)]  # gaps of 7, 18 and 28 minutes
    report = validate(tiny([WED + m * MIN for m in minutes]), max_findings_per_kind=2)
    assert [f.count for f in of_kind(report, "gap")] == [18, 28]
    assert report.counts["gap"] == 3
    assert report.affected["gap"] == 7 + 18 + 28


def test_validate_empty_bars_score_100() -> None:
    report = validate(tiny([]))
    assert (report.bars, report.score, report.findings, report.first_ns) == (0, 100.0, [], None)


def test_validate_unknown_session_raises_value_error() -> None:
    with pytest.raises(ValueError, match="unknown session"):
        validate(tiny([WED]), session="crypto")


def test_report_to_dict_json_friendly_iso_times() -> None:
    t = [WED + i * MIN for i in (*range(3), *range(13, 20))]
    d = validate(tiny(t)).to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["first"] == "2019-01-09T10:00:00+00:00"
    assert d["timeframe"] == "M1"
    assert d["findings"][0] == {
        "kind": "gap",
        "start": "2019-01-09T10:03:00+00:00",
        "end": "2019-01-09T10:12:00+00:00",
        "count": 10,
        "detail": "10 bars missing in session",
    }


def test_format_report_one_row_per_report() -> None:
    reports = [validate(tiny([WED + i * MIN for i in range(5)])), validate(tiny([]))]
    table = format_report(reports)
    assert isinstance(table, Table)
    assert table.row_count == 2
    assert [c.header for c in table.columns][:5] == ["symbol", "tf", "bars", "range (UTC)", "score"]


# --------------------------------------------------------------------------------------------------
# Real EURUSD slice with injected defects

CLEAN = ("2018-06-04 00:00", "2018-06-16 00:00")  # two plain weeks of EURUSD M1


@pytest.fixture(scope="module")
def eurusd(shared_data: Path) -> Bars:
    return load(shared_data, "EURUSD", *CLEAN)


@pytest.fixture(scope="module")
def eurusd_clean(eurusd: Bars) -> HealthReport:
    return validate(eurusd)


def _row(bars: Bars, when: str) -> int:
    i = int(np.searchsorted(bars.time, ns(when)))
    assert bars.time[i] == ns(when)
    return i


def test_validate_eurusd_slice_clean_baseline(eurusd_clean: HealthReport) -> None:
    assert eurusd_clean.hard_defects == 0
    assert eurusd_clean.score >= 95.0


def test_validate_eurusd_inserted_duplicate_reported(eurusd: Bars, eurusd_clean: HealthReport) -> None:
    k = _row(eurusd, "2018-06-06 10:15")
    idx = np.insert(np.arange(len(eurusd)), k + 1, k)
    report = validate(take(eurusd, idx))
    assert [(f.start_ns, f.count) for f in of_kind(report, "duplicate_time")] == [(ns("2018-06-06 10:15"), 1)]
    assert report.score < eurusd_clean.score


def test_validate_eurusd_swapped_rows_non_monotonic(eurusd: Bars, eurusd_clean: HealthReport) -> None:
    k = _row(eurusd, "2018-06-07 14:00")
    idx = np.arange(len(eurusd))
    idx[[k, k + 1]] = idx[[k + 1, k]]
    report = validate(take(eurusd, idx))
    assert [(f.start_ns, f.count) for f in of_kind(report, "non_monotonic")] == [(ns("2018-06-07 14:00"), 1)]
    assert report.score < eurusd_clean.score


def test_validate_eurusd_high_below_low_ohlc_inconsistent(eurusd: Bars, eurusd_clean: HealthReport) -> None:
    k = _row(eurusd, "2018-06-08 09:30")
    high = eurusd.high.copy()
    high[k] = eurusd.low[k] - 0.0002
    report = validate(replace(eurusd, high=high))
    assert [(f.start_ns, f.count) for f in of_kind(report, "ohlc_inconsistent")] == [
        (ns("2018-06-08 09:30"), 1)
    ]
    assert report.score < eurusd_clean.score


@pytest.mark.parametrize("bad", [np.nan, np.inf, 0.0, -1.1])
def test_validate_eurusd_bad_close_bad_price(eurusd: Bars, eurusd_clean: HealthReport, bad: float) -> None:
    k = _row(eurusd, "2018-06-11 12:00")
    close = eurusd.close.copy()
    close[k] = bad
    report = validate(replace(eurusd, close=close))
    assert [(f.start_ns, f.count) for f in of_kind(report, "bad_price")] == [(ns("2018-06-11 12:00"), 1)]
    assert report.score < eurusd_clean.score


def test_validate_eurusd_one_bar_spike_reported(eurusd: Bars, eurusd_clean: HealthReport) -> None:
    k = _row(eurusd, "2018-06-12 15:45")
    close = eurusd.close.copy()
    close[k] *= 1.01
    high = np.maximum(eurusd.high, close)
    report = validate(replace(eurusd, close=close, high=high))
    new = [f for f in of_kind(report, "spike") if f not in of_kind(eurusd_clean, "spike")]
    assert [(f.start_ns, f.count) for f in new] == [(ns("2018-06-12 15:45"), 1)]
    assert report.score < eurusd_clean.score


def test_validate_eurusd_removed_half_hour_gap(eurusd: Bars, eurusd_clean: HealthReport) -> None:
    k = _row(eurusd, "2018-06-13 10:00")
    assert eurusd.time[k + 30] == ns("2018-06-13 10:30")  # the 30 removed minutes were all present
    report = validate(take(eurusd, np.delete(np.arange(len(eurusd)), np.arange(k, k + 30))))
    new = [f for f in of_kind(report, "gap") if f not in of_kind(eurusd_clean, "gap")]
    assert [(f.start_ns, f.end_ns, f.count) for f in new] == [
        (ns("2018-06-13 10:00"), ns("2018-06-13 10:29"), 30)
    ]
    assert report.score < eurusd_clean.score


def test_validate_eurusd_frozen_hour_stale(eurusd: Bars, eurusd_clean: HealthReport) -> None:
    k = _row(eurusd, "2018-06-14 08:00")
    cols = {n: getattr(eurusd, n).copy() for n in ("open", "high", "low", "close")}
    for a in cols.values():
        a[k : k + 70] = eurusd.close[k - 1]
    report = validate(replace(eurusd, **cols))
    assert [(f.start_ns, f.count) for f in of_kind(report, "stale")] == [(ns("2018-06-14 08:00"), 70)]
    assert report.score < eurusd_clean.score


def test_validate_eurusd_absurd_spread_bad_spread(eurusd: Bars, eurusd_clean: HealthReport) -> None:
    k = _row(eurusd, "2018-06-15 16:20")
    spread = np.full(len(eurusd), 8, np.int32)
    spread[k] = 5000
    report = validate(replace(eurusd, spread=spread))
    assert [(f.start_ns, f.count) for f in of_kind(report, "bad_spread")] == [(ns("2018-06-15 16:20"), 1)]
    assert report.score < eurusd_clean.score


# --------------------------------------------------------------------------------------------------
# Real data as it is: no false alarms, the known outage found


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_validate_real_two_weeks_no_hard_defects_score_at_least_90(shared_data: Path, symbol: str) -> None:
    report = validate(load(shared_data, symbol, "2019-06-02 00:00", "2019-06-15 00:00"))
    assert report.hard_defects == 0
    assert report.score >= 90.0


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_validate_real_full_file_no_hard_defects_score_at_least_95(shared_data: Path, symbol: str) -> None:
    report = validate(load(shared_data, symbol))
    assert all(report.counts[k] == 0 for k in HARD_KINDS)
    assert report.score >= 95.0


def test_validate_xauusd_daily_break_not_a_gap(shared_data: Path) -> None:
    bars = load(shared_data, "XAUUSD", "2019-06-02 00:00", "2019-06-15 00:00")
    assert of_kind(validate(bars), "gap") == []
    # The breaks are really there: without a calendar each of the 9 weekday breaks is a gap.
    assert validate(bars, session="24x7").counts["gap"] >= 9


def test_validate_eurusd_weekends_christmas_new_year_not_gaps(shared_data: Path) -> None:
    report = validate(load(shared_data, "EURUSD", "2018-12-14 00:00", "2019-01-12 00:00"))
    assert of_kind(report, "gap") == []


def test_validate_eurusd_may_2019_outage_is_360_minute_gap(shared_data: Path) -> None:
    report = validate(load(shared_data, "EURUSD", "2019-05-20 00:00", "2019-06-01 00:00"))
    gaps = [(f.start_ns, f.end_ns, f.count) for f in of_kind(report, "gap")]
    assert (ns("2019-05-27 04:00"), ns("2019-05-27 09:59"), 360) in gaps


def test_validate_usdjpy_flash_crash_not_a_spike(shared_data: Path) -> None:
    report = validate(load(shared_data, "USDJPY", "2018-12-30 00:00", "2019-01-12 00:00"))
    crash = [
        f for f in of_kind(report, "spike") if ns("2019-01-02 22:30") <= f.start_ns <= ns("2019-01-02 22:40")
    ]
    assert crash == []


def test_validate_gbpusd_exit_poll_not_a_spike(shared_data: Path) -> None:
    report = validate(load(shared_data, "GBPUSD", "2019-12-08 00:00", "2019-12-20 00:00"))
    assert [f for f in of_kind(report, "spike") if f.start_ns == ns("2019-12-12 22:00")] == []


def test_history_quality_counts_one_tick_bars_with_a_range_and_gaps_as_bad() -> None:
    from mt5tester.data.health import history_quality

    t0 = np.datetime64("2024-01-03T10:00", "ns").astype(np.int64)  # a Wednesday, in session
    minutes = np.r_[np.arange(5), np.arange(15, 20)]  # 10 bars, minutes 5..14 missing (10 > 5: a gap)
    n = len(minutes)
    open_ = np.full(n, 1.1)
    close = open_.copy()
    close[[1, 6]] = 1.1001  # two bars whose O != C ...
    vol = np.full(n, 5, np.int64)
    vol[[1, 6, 7]] = 1  # ... with one tick: bad; bar 7 has one tick but O=H=L=C: fine
    bars = Bars(
        "EURUSD",
        Timeframe.M1,
        t0 + minutes.astype(np.int64) * 60_000_000_000,
        open_,
        np.maximum(open_, close),
        np.minimum(open_, close),
        close,
        vol,
        np.ones(n, np.int32),
    )
    report = validate(bars)
    assert report.affected["gap"] == 10
    assert history_quality(bars, report) == 40.0  # (10 + 10 - 2 - 10) / (10 + 10)
