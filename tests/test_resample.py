"""Tests for mt5tester.data.resample: MT5 timeframes from M1, aligned in server time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mt5tester.data.resample import bucket_start, resample
from mt5tester.errors import DataError
from mt5tester.model.bars import Bars
from mt5tester.model.time import parse_server_tz
from mt5tester.model.timeframe import Timeframe

MIN_NS = 60 * 1_000_000_000
HOUR_NS = 60 * MIN_NS
EURUSD_M1 = Path("m1") / "EURUSD_M1_2018-2019.parquet"
HIGHER = [tf for tf in Timeframe if tf is not Timeframe.M1]


def _ns(text: str) -> int:
    """UTC ns of an ISO-like UTC time string."""
    return pd.Timestamp(text, tz="UTC").value


def _ns_list(*texts: str) -> list[int]:
    return [_ns(x) for x in texts]


def _bars(rows: list[tuple[str, float, float, float, float, int, int]]) -> Bars:
    """M1 Bars from (utc time, open, high, low, close, tick_volume, spread) rows."""
    return Bars(
        "TEST",
        Timeframe.M1,
        np.array([_ns(r[0]) for r in rows], np.int64),
        np.array([r[1] for r in rows], np.float64),
        np.array([r[2] for r in rows], np.float64),
        np.array([r[3] for r in rows], np.float64),
        np.array([r[4] for r in rows], np.float64),
        np.array([r[5] for r in rows], np.int64),
        np.array([r[6] for r in rows], np.int32),
    )


def _flat_m1(time_ns: np.ndarray) -> Bars:
    """M1 Bars at the given times with a deterministic zig-zag price, volume 1, spread 2."""
    n = len(time_ns)
    price: npt.NDArray[np.float64] = 1.1 + (np.arange(n) % 17).astype(np.float64) * 1e-4
    return Bars(
        "TEST",
        Timeframe.M1,
        np.asarray(time_ns, np.int64),
        price,
        price + 2e-4,
        price - 2e-4,
        price + 1e-4,
        np.ones(n, np.int64),
        np.full(n, 2, np.int32),
    )


def _minutes(start: str, end: str) -> np.ndarray:
    """Every whole minute in [start, end) UTC as ns."""
    return np.arange(_ns(start), _ns(end), MIN_NS, dtype=np.int64)


def _load_m1(path: Path) -> Bars:
    """Parquet M1 (time tz-aware UTC, open/high/low/close) -> Bars. The shared files have no tick
    volume or spread, so tests that check those columns fill them with deterministic values."""
    df = pd.read_parquet(path, columns=["time", "open", "high", "low", "close"])
    n = len(df)
    idx = np.arange(n, dtype=np.int64)
    return Bars(
        path.name.split("_")[0],
        Timeframe.M1,
        df["time"].dt.tz_convert("UTC").to_numpy(dtype="datetime64[ns]").view(np.int64),
        df["open"].to_numpy(np.float64),
        df["high"].to_numpy(np.float64),
        df["low"].to_numpy(np.float64),
        df["close"].to_numpy(np.float64),
        (idx * 7919) % 97 + 1,
        ((idx * 31) % 23).astype(np.int32),
    )


@pytest.fixture(scope="module")
def eurusd(shared_data: Path) -> Bars:
    return _load_m1(shared_data / EURUSD_M1)


# Tiny hand-written series: a gap at 10:03, a single-bar M5 bucket at 10:10, a lone 11:02 bar.
TINY = [
    ("2024-01-02 10:00", 1.1000, 1.1010, 1.0995, 1.1005, 10, 5),
    ("2024-01-02 10:01", 1.1005, 1.1020, 1.1001, 1.1015, 12, 3),
    ("2024-01-02 10:02", 1.1015, 1.1018, 1.0990, 1.0992, 7, 4),
    ("2024-01-02 10:04", 1.0992, 1.0999, 1.0985, 1.0998, 3, 6),
    ("2024-01-02 10:05", 1.0998, 1.1003, 1.0996, 1.1001, 5, 2),
    ("2024-01-02 10:06", 1.1001, 1.1030, 1.1000, 1.1025, 9, 8),
    ("2024-01-02 10:10", 1.1025, 1.1026, 1.1020, 1.1021, 1, 7),
    ("2024-01-02 11:02", 1.1021, 1.1040, 1.1019, 1.1035, 4, 9),
]


def _assert_bars(out: Bars, expected: list[tuple[str, float, float, float, float, int, int]]) -> None:
    want = _bars(expected)
    np.testing.assert_array_equal(out.time, want.time)
    for col in ("open", "high", "low", "close", "tick_volume", "spread"):
        np.testing.assert_array_equal(getattr(out, col), getattr(want, col), err_msg=col)


def test_resample_tiny_m5_with_gap_and_single_bar_exact_bars() -> None:
    out = resample(_bars(TINY), Timeframe.M5)
    assert out.timeframe is Timeframe.M5
    assert out.symbol == "TEST"
    _assert_bars(
        out,
        [
            ("2024-01-02 10:00", 1.1000, 1.1020, 1.0985, 1.0998, 32, 3),
            ("2024-01-02 10:05", 1.0998, 1.1030, 1.0996, 1.1025, 14, 2),
            ("2024-01-02 10:10", 1.1025, 1.1026, 1.1020, 1.1021, 1, 7),
            ("2024-01-02 11:00", 1.1021, 1.1040, 1.1019, 1.1035, 4, 9),
        ],
    )


def test_resample_tiny_h1_exact_bars() -> None:
    out = resample(_bars(TINY), Timeframe.H1)
    _assert_bars(
        out,
        [
            ("2024-01-02 10:00", 1.1000, 1.1030, 1.0985, 1.1021, 47, 2),
            ("2024-01-02 11:00", 1.1021, 1.1040, 1.1019, 1.1035, 4, 9),
        ],
    )


def test_resample_spread_first_bar_not_minimum_takes_minimum() -> None:
    # [U] rule: bar spread = minimum M1 spread of the bucket (first is 5, minimum 3, last 6).
    out = resample(_bars(TINY[:4]), Timeframe.M5)
    assert out.spread.tolist() == [3]
    assert out.spread.dtype == np.int32
    assert out.tick_volume.dtype == np.int64


def test_resample_m1_to_m1_returns_same_bars() -> None:
    m1 = _bars(TINY)
    out = resample(m1, Timeframe.M1, "Europe/Athens")
    _assert_bars(out, TINY)


def test_resample_fixed_offset_h4_aligned_to_server_midnight() -> None:
    # Server UTC+2: H4 opens at server 00/04/08/... = 22/02/06 UTC.
    m1 = _bars(
        [
            ("2024-01-02 21:59", 1.0, 1.2, 0.9, 1.1, 1, 1),
            ("2024-01-02 22:00", 1.1, 1.3, 1.0, 1.2, 1, 1),
            ("2024-01-03 01:59", 1.2, 1.4, 1.1, 1.3, 1, 1),
            ("2024-01-03 02:00", 1.3, 1.5, 1.2, 1.4, 1, 1),
        ]
    )
    for spec in ("+02:00", "UTC+2", "GMT+0200", "+2"):
        out = resample(m1, Timeframe.H4, spec)
        assert out.time.tolist() == _ns_list("2024-01-02 18:00", "2024-01-02 22:00", "2024-01-03 02:00"), spec
        assert out.close.tolist() == [1.1, 1.3, 1.4]


def test_resample_fixed_offset_h3_starts_at_server_multiples_of_three() -> None:
    m1 = _bars(
        [("2024-01-02 21:30", 1.0, 1.0, 1.0, 1.0, 1, 1), ("2024-01-03 01:10", 1.0, 1.0, 1.0, 1.0, 1, 1)]
    )
    out = resample(m1, Timeframe.H3, "+03:00")
    # 00:30 server -> 00:00 server = 21:00 UTC; 04:10 server -> 03:00 server = 00:00 UTC.
    assert out.time.tolist() == _ns_list("2024-01-02 21:00", "2024-01-03 00:00")


def test_resample_w1_utc_starts_on_sunday() -> None:
    # 2024-01-06 is a Saturday, 2024-01-07 a Sunday.
    m1 = _bars(
        [
            ("2024-01-05 12:00", 1.0, 1.0, 1.0, 1.0, 1, 1),
            ("2024-01-06 23:59", 1.0, 1.0, 1.0, 1.0, 1, 1),
            ("2024-01-07 00:00", 1.0, 1.0, 1.0, 1.0, 1, 1),
        ]
    )
    out = resample(m1, Timeframe.W1)
    assert out.time.tolist() == _ns_list("2023-12-31", "2024-01-07")


def test_resample_mn1_fixed_offset_opens_first_of_month_server_time() -> None:
    m1 = _bars(
        [("2024-02-29 21:59", 1.0, 1.0, 1.0, 1.0, 1, 1), ("2024-02-29 22:00", 2.0, 2.0, 2.0, 2.0, 1, 1)]
    )
    out = resample(m1, Timeframe.MN1, "+02:00")
    assert out.time.tolist() == _ns_list("2024-01-31 22:00", "2024-02-29 22:00")
    assert out.open.tolist() == [1.0, 2.0]


def test_resample_empty_input_returns_empty_bars() -> None:
    out = resample(_bars([]), Timeframe.H1, "Europe/Athens")
    assert len(out) == 0
    assert out.timeframe is Timeframe.H1
    assert out.spread.dtype == np.int32


def test_resample_non_m1_input_raises_valueerror() -> None:
    m1 = _bars(TINY)
    h1 = Bars("TEST", Timeframe.H1, m1.time, m1.open, m1.high, m1.low, m1.close, m1.tick_volume, m1.spread)
    with pytest.raises(ValueError, match="needs M1"):
        resample(h1, Timeframe.D1)


def test_resample_unsorted_times_raises_dataerror() -> None:
    m1 = _bars([TINY[1], TINY[0]])
    with pytest.raises(DataError, match="strictly increasing"):
        resample(m1, Timeframe.M5)


def test_resample_bad_server_tz_raises_valueerror() -> None:
    with pytest.raises(ValueError, match="IANA"):
        resample(_bars(TINY), Timeframe.H1, "Mars/Olympus_Mons")


@pytest.mark.parametrize(
    ("spec", "offset_h"),
    [
        ("UTC", 0.0),
        ("gmt", 0.0),
        ("Z", 0.0),
        ("+02:00", 2.0),
        ("-05:00", -5.0),
        ("UTC+2", 2.0),
        ("UTC-3:30", -3.5),
        ("GMT+03:00", 3.0),
        ("+0545", 5.75),
        ("+0", 0.0),
        ("  +3 ", 3.0),
    ],
)
def test_parse_server_tz_fixed_forms_give_offset(spec: str, offset_h: float) -> None:
    tz = parse_server_tz(spec)
    off = tz.utcoffset(datetime(2024, 1, 1))
    assert off == timedelta(hours=offset_h)


def test_parse_server_tz_iana_name_gives_zoneinfo_with_dst() -> None:
    tz = parse_server_tz("Europe/Athens")
    assert isinstance(tz, ZoneInfo)
    assert datetime(2024, 1, 15, tzinfo=UTC).astimezone(tz).utcoffset() == timedelta(hours=2)
    assert datetime(2024, 7, 15, tzinfo=UTC).astimezone(tz).utcoffset() == timedelta(hours=3)


def test_parse_server_tz_tzinfo_instance_passes_through() -> None:
    tz = timezone(timedelta(hours=3))
    assert parse_server_tz(tz) is tz


@pytest.mark.parametrize(
    "spec", ["", "   ", "Mars/Olympus_Mons", "+25:00", "UTC+2:75", "EET-ish", "../etc", "2"]
)
def test_parse_server_tz_nonsense_raises_valueerror(spec: str) -> None:
    with pytest.raises(ValueError, match="server_tz"):
        parse_server_tz(spec)


def test_bucket_start_fixed_offset_h4_per_row() -> None:
    times = np.array(_ns_list("2024-01-02 21:59", "2024-01-02 22:00", "2024-01-03 01:59", "2024-01-03 02:00"))
    got = bucket_start(times, Timeframe.H4, "+02:00")
    want = _ns_list("2024-01-02 18:00", "2024-01-02 22:00", "2024-01-02 22:00", "2024-01-03 02:00")
    assert got.tolist() == want


def test_bucket_start_matches_resample_labels_athens() -> None:
    m1 = _flat_m1(_minutes("2018-10-27 18:00", "2018-10-29 02:00"))
    for tf in (Timeframe.M30, Timeframe.H1, Timeframe.D1, Timeframe.W1):
        starts = bucket_start(m1.time, tf, "Europe/Athens")
        assert np.unique(starts).tolist() == resample(m1, tf, "Europe/Athens").time.tolist()
        assert bool(np.all(starts <= m1.time))


# --- DST, synthetic (no shared data needed) ---


def test_resample_athens_d1_synthetic_dst_boundaries_winter_22_summer_21() -> None:
    times = np.concatenate(
        [_minutes("2018-03-23 20:00", "2018-03-26 23:00"), _minutes("2018-10-26 20:00", "2018-10-29 23:00")]
    )
    out = resample(_flat_m1(times), Timeframe.D1, "Europe/Athens")
    assert out.time.tolist() == _ns_list(
        "2018-03-22 22:00",  # Fri 23 Mar (EET)
        "2018-03-23 22:00",  # Sat 24 Mar (EET)
        "2018-03-24 22:00",  # Sun 25 Mar: midnight is still EET, the change is at 03:00 local (23 h day)
        "2018-03-25 21:00",  # Mon 26 Mar (EEST)
        "2018-03-26 21:00",
        "2018-10-25 21:00",  # Fri 26 Oct (EEST)
        "2018-10-26 21:00",
        "2018-10-27 21:00",  # Sun 28 Oct: 25 h day
        "2018-10-28 22:00",  # Mon 29 Oct (EET)
        "2018-10-29 22:00",
    )
    # The 25 h day holds every minute from 2018-10-27 21:00 to 2018-10-28 22:00 UTC.
    assert out.tick_volume[7] == 25 * 60
    assert out.tick_volume[2] == 23 * 60


def test_resample_athens_fall_back_hour_gives_two_h1_bars() -> None:
    # 03:00-03:59 local happens twice on 2018-10-28 (EEST, then EET): two H1 bars, one per occurrence.
    times = _minutes("2018-10-27 22:00", "2018-10-28 03:00")
    out = resample(_flat_m1(times), Timeframe.H1, "Europe/Athens")
    assert out.time.tolist() == [
        int(x) for x in np.arange(_ns("2018-10-27 22:00"), _ns("2018-10-28 03:00"), HOUR_NS)
    ]
    assert out.tick_volume.tolist() == [60] * 5
    m30 = resample(_flat_m1(times), Timeframe.M30, "Europe/Athens")
    assert len(m30) == 10
    assert bool(np.all(np.diff(m30.time) == 30 * MIN_NS))


def test_resample_santiago_nonexistent_midnight_opens_at_transition() -> None:
    # America/Santiago jumped 2018-08-12 00:00 -04 -> 01:00 -03 (04:00 UTC): Sunday has no midnight,
    # so the D1 and W1 bars open at the transition instant (pandas' nonexistent="shift_forward").
    times = _minutes("2018-08-11 20:00", "2018-08-12 08:00")
    m1 = _flat_m1(times)
    d1 = resample(m1, Timeframe.D1, "America/Santiago")
    assert d1.time.tolist() == _ns_list("2018-08-11 04:00", "2018-08-12 04:00")
    assert d1.tick_volume.tolist() == [8 * 60, 4 * 60]
    w1 = resample(m1, Timeframe.W1, "America/Santiago")
    assert w1.time.tolist() == _ns_list("2018-08-05 04:00", "2018-08-12 04:00")


def test_resample_lord_howe_half_hour_fall_back_m20_reopens_at_transition() -> None:
    # Australia/Lord_Howe 2018-04-01 02:00 +11 -> 01:30 +10:30 (15:00 UTC). The wall bucket 01:20-01:40
    # closed at 14:40 UTC and comes round again at 01:30 wall: that second bar opens at the change.
    times = _minutes("2018-03-31 14:00", "2018-03-31 16:00")
    out = resample(_flat_m1(times), Timeframe.M20, "Australia/Lord_Howe")
    assert out.time.tolist() == _ns_list(
        "2018-03-31 14:00",
        "2018-03-31 14:20",
        "2018-03-31 14:40",
        "2018-03-31 15:00",
        "2018-03-31 15:10",
        "2018-03-31 15:30",
        "2018-03-31 15:50",
    )
    assert out.tick_volume.tolist() == [20, 20, 20, 10, 20, 20, 10]


def test_resample_athens_w1_spanning_dst_change_synthetic() -> None:
    # Week of Sun 2018-03-25: opens at 00:00 EET (22:00 UTC Sat), its minutes after 01:00 UTC are EEST.
    times = _minutes("2018-03-24 21:00", "2018-03-31 22:00")
    out = resample(_flat_m1(times), Timeframe.W1, "Europe/Athens")
    assert out.time.tolist() == _ns_list("2018-03-17 22:00", "2018-03-24 22:00", "2018-03-31 21:00")
    assert out.tick_volume.tolist() == [60, (7 * 24 - 1) * 60, 60]


# --- every timeframe on a synthetic series ---


def _synthetic_m1() -> Bars:
    """Random-walk M1 over two windows spanning the EU DST changes, month ends and weekends, with
    30 % of the minutes missing at random."""
    rng = np.random.default_rng(20180325)
    times = np.concatenate([_minutes("2018-02-20", "2018-04-10"), _minutes("2018-10-15", "2018-11-10")])
    times = times[rng.random(len(times)) > 0.3]
    n = len(times)
    close = 1.2 + np.cumsum(rng.normal(0.0, 1e-4, n))
    open_ = np.concatenate(([1.2], close[:-1]))
    wick = np.abs(rng.normal(0.0, 1e-4, (2, n)))
    return Bars(
        "SYN",
        Timeframe.M1,
        times,
        open_,
        np.maximum(open_, close) + wick[0],
        np.minimum(open_, close) - wick[1],
        close,
        rng.integers(1, 50, n).astype(np.int64),
        rng.integers(0, 30, n).astype(np.int32),
    )


SYNTHETIC = _synthetic_m1()


@pytest.mark.parametrize(
    "server_tz",
    [
        "UTC",
        "+02:00",
        "-05:30",
        "Europe/Athens",
        "America/New_York",
        "Asia/Tokyo",
        "Australia/Lord_Howe",
        "America/Santiago",
    ],
)
@pytest.mark.parametrize("tf", list(Timeframe), ids=lambda tf: tf.name)
def test_resample_every_timeframe_synthetic_valid_bars(tf: Timeframe, server_tz: str) -> None:
    m1 = SYNTHETIC
    out = resample(m1, tf, server_tz)
    assert out.timeframe is tf
    assert len(out) > 0
    assert bool(np.all(np.diff(out.time) > 0))  # monotonic and unique
    assert bool(np.all(out.high >= np.maximum(out.open, out.close)))
    assert bool(np.all(out.low <= np.minimum(out.open, out.close)))
    assert int(out.tick_volume.sum()) == int(m1.tick_volume.sum())
    assert float(out.high.max()) == float(m1.high.max())
    assert float(out.low.min()) == float(m1.low.min())
    starts = bucket_start(m1.time, tf, server_tz)
    assert bool(np.all(starts <= m1.time))
    np.testing.assert_array_equal(np.unique(starts), out.time)
    if tf.is_fixed:
        # A bar never spans more than its period plus one DST hour (the 25 h day / week).
        slack = HOUR_NS if "/" in server_tz else 0
        assert bool(np.all(m1.time - starts < tf.period_ns + slack))
    if tf is Timeframe.M1:
        np.testing.assert_array_equal(out.time, m1.time)


# --- property test against a per-row datetime reference (fixed offsets) ---


def _reference_label(t_ns: int, tf: Timeframe, tz: tzinfo) -> int:
    """Pure-Python bucket open of one M1 time: wall clock via datetime, calendar rules spelt out."""
    wall = datetime.fromtimestamp(t_ns // 1_000_000_000, tz).replace(tzinfo=None)
    if tf is Timeframe.MN1:
        start = wall.replace(day=1, hour=0, minute=0, second=0)
    elif tf is Timeframe.W1:
        day = wall.replace(hour=0, minute=0, second=0)
        start = day - timedelta(days=(day.weekday() + 1) % 7)  # back to Sunday
    else:
        minutes = tf.minutes
        since_midnight = wall.hour * 60 + wall.minute
        start = wall.replace(hour=0, minute=0, second=0) + timedelta(
            minutes=since_midnight // minutes * minutes
        )
    return int(start.replace(tzinfo=tz).timestamp()) * 1_000_000_000


@settings(max_examples=60, deadline=None)
@given(
    minutes=st.lists(st.integers(0, 90 * 24 * 60), min_size=1, max_size=80, unique=True),
    offset_q=st.integers(-12 * 4, 14 * 4),
    tf=st.sampled_from(list(Timeframe)),
)
def test_bucket_start_fixed_offset_matches_datetime_reference(
    minutes: list[int], offset_q: int, tf: Timeframe
) -> None:
    tz = timezone(timedelta(minutes=15 * offset_q))
    base = _ns("2019-12-20")
    times = base + np.array(sorted(minutes), np.int64) * MIN_NS
    got = bucket_start(times, tf, tz)
    want = [_reference_label(int(t), tf, tz) for t in times]
    assert got.tolist() == want


# --- real data: EURUSD 2018-2019 against an independent pandas computation ---


def _pandas_reference(m1: Bars, tf: Timeframe, tz: tzinfo | str) -> pd.DataFrame:
    """Independent pandas resample: wall clock via tz_convert, buckets via floor / Period, labels back
    to UTC via tz_localize; groupby drops empty buckets."""
    utc = pd.DatetimeIndex(m1.time.view("datetime64[ns]")).tz_localize("UTC")
    wall = pd.Series(utc.tz_convert(tz).tz_localize(None))
    if tf is Timeframe.W1:
        key = wall.dt.to_period("W-SAT").dt.start_time  # W-SAT periods run Sunday..Saturday
    elif tf is Timeframe.MN1:
        key = wall.dt.to_period("M").dt.start_time
    else:
        key = wall.dt.floor(pd.Timedelta(minutes=tf.minutes))
    df = pd.DataFrame(
        {
            "open": m1.open,
            "high": m1.high,
            "low": m1.low,
            "close": m1.close,
            "vol": m1.tick_volume,
            "spr": m1.spread,
        }
    )
    agg = df.groupby(key.to_numpy(), sort=True).agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        vol=("vol", "sum"),
        spr=("spr", "min"),
    )
    labels = pd.DatetimeIndex(agg.index).tz_localize(tz, ambiguous="raise", nonexistent="raise")
    agg.index = labels.tz_convert("UTC").as_unit("ns")
    return agg


@pytest.mark.parametrize(
    "server_tz",
    ["UTC", "Europe/Athens", "+02:00"],
)
@pytest.mark.parametrize(
    "tf",
    [Timeframe.M5, Timeframe.H1, Timeframe.H4, Timeframe.D1, Timeframe.W1, Timeframe.MN1],
    ids=lambda tf: tf.name,
)
def test_resample_eurusd_matches_pandas_reference_exactly(
    eurusd: Bars, tf: Timeframe, server_tz: str
) -> None:
    tz: tzinfo | str = timezone(timedelta(hours=2)) if server_tz == "+02:00" else server_tz
    ref = _pandas_reference(eurusd, tf, tz)
    out = resample(eurusd, tf, server_tz)
    assert len(out) == len(ref)
    np.testing.assert_array_equal(out.time, pd.DatetimeIndex(ref.index).asi8)
    np.testing.assert_array_equal(out.open, ref["open"].to_numpy())
    np.testing.assert_array_equal(out.high, ref["high"].to_numpy())
    np.testing.assert_array_equal(out.low, ref["low"].to_numpy())
    np.testing.assert_array_equal(out.close, ref["close"].to_numpy())
    np.testing.assert_array_equal(out.tick_volume, ref["vol"].to_numpy())
    np.testing.assert_array_equal(out.spread, ref["spr"].to_numpy())


def test_resample_eurusd_athens_d1_opens_22_utc_winter_21_utc_summer(eurusd: Bars) -> None:
    d1 = resample(eurusd, Timeframe.D1, "Europe/Athens")
    march = d1.between(_ns("2018-03-19"), _ns("2018-03-31"))
    assert march.time.tolist() == _ns_list(
        "2018-03-19 22:00",
        "2018-03-20 22:00",
        "2018-03-21 22:00",
        "2018-03-22 22:00",  # Fri 23 Mar, last winter day with data
        "2018-03-25 21:00",  # Mon 26 Mar, first summer day (change Sun 25 Mar 01:00 UTC)
        "2018-03-26 21:00",
        "2018-03-27 21:00",
        "2018-03-28 21:00",
        "2018-03-29 21:00",
    )
    october = d1.between(_ns("2018-10-22"), _ns("2018-11-06"))
    assert october.time.tolist() == _ns_list(
        "2018-10-22 21:00",
        "2018-10-23 21:00",
        "2018-10-24 21:00",
        "2018-10-25 21:00",  # Fri 26 Oct, summer
        "2018-10-27 21:00",  # Sun 28 Oct (25 h day): the 2018 data reopens Sun 21:00 UTC = 23:00 EET
        "2018-10-28 22:00",  # Mon 29 Oct, winter
        "2018-10-29 22:00",
        "2018-10-30 22:00",
        "2018-10-31 22:00",
        "2018-11-01 22:00",
        "2018-11-04 22:00",
        "2018-11-05 22:00",
    )


def test_resample_eurusd_athens_w1_bar_spanning_dst_change(eurusd: Bars) -> None:
    w1 = resample(eurusd, Timeframe.W1, "Europe/Athens")
    weeks = w1.between(_ns("2018-03-10"), _ns("2018-04-08"))
    assert weeks.time.tolist() == _ns_list(
        "2018-03-10 22:00", "2018-03-17 22:00", "2018-03-24 22:00", "2018-03-31 21:00", "2018-04-07 21:00"
    )
    # The week opening Sun 25 Mar 00:00 EET (= Sat 22:00 UTC) holds only EEST minutes.
    inside = eurusd.between(_ns("2018-03-24 22:00"), _ns("2018-03-31 21:00"))
    assert inside.time[0] == _ns("2018-03-25 21:00")
    assert inside.time[-1] == _ns("2018-03-30 20:59")
    bar = weeks.slice(2, 3)
    assert bar.open[0] == inside.open[0]
    assert bar.close[0] == inside.close[-1]
    assert bar.high[0] == inside.high.max()
    assert bar.low[0] == inside.low.min()
    assert bar.tick_volume[0] == inside.tick_volume.sum()
    autumn = w1.between(_ns("2018-10-20"), _ns("2018-11-04"))
    assert autumn.time.tolist() == _ns_list("2018-10-20 21:00", "2018-10-27 21:00", "2018-11-03 22:00")


def test_resample_eurusd_athens_mn1_boundary_first_of_month_server_time(eurusd: Bars) -> None:
    mn1 = resample(eurusd, Timeframe.MN1, "Europe/Athens")
    assert mn1.time.tolist() == _ns_list(
        "2017-12-31 22:00",
        "2018-01-31 22:00",
        "2018-02-28 22:00",
        "2018-03-31 21:00",
        "2018-04-30 21:00",
        "2018-05-31 21:00",
        "2018-06-30 21:00",
        "2018-07-31 21:00",
        "2018-08-31 21:00",
        "2018-09-30 21:00",
        "2018-10-31 22:00",
        "2018-11-30 22:00",
        "2018-12-31 22:00",
        "2019-01-31 22:00",
        "2019-02-28 22:00",
        "2019-03-31 21:00",
        "2019-04-30 21:00",
        "2019-05-31 21:00",
        "2019-06-30 21:00",
        "2019-07-31 21:00",
        "2019-08-31 21:00",
        "2019-09-30 21:00",
        "2019-10-31 22:00",
        "2019-11-30 22:00",
    )
    # Wed 31 Oct 2018: the 21:59 UTC minute closes October, the 22:00 UTC minute opens November.
    i = int(np.searchsorted(eurusd.time, _ns("2018-10-31 22:00")))
    assert eurusd.time[i - 1] == _ns("2018-10-31 21:59")
    assert eurusd.time[i] == _ns("2018-10-31 22:00")
    assert mn1.close[9] == eurusd.close[i - 1]
    assert mn1.open[10] == eurusd.open[i]
