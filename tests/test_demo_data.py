"""Synthetic demo data: determinism, calendar, bar validity, market texture, Parquet round trip."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mt5tester.data.demo import (
    DEMO_SYMBOLS,
    SOURCE,
    generate_m1,
    session_activity,
    write_demo_data,
)
from mt5tester.data.store import read_m1_parquet
from mt5tester.errors import DataError
from mt5tester.model.bars import Bars
from mt5tester.model.time import MINUTE_NS
from mt5tester.model.timeframe import Timeframe

ALL = sorted(DEMO_SYMBOLS)
FX = [s for s in ALL if not DEMO_SYMBOLS[s].daily_break]
SATURDAY = 5
SUNDAY = 6


def _utc(bars: Bars) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(bars.time, utc=True))


def _minute_of_day(bars: Bars) -> npt.NDArray[np.int64]:
    return (bars.time // MINUTE_NS) % 1440


def _points(values: npt.NDArray[np.float64], symbol: str) -> npt.NDArray[np.int64]:
    return np.rint(values * 10 ** DEMO_SYMBOLS[symbol].digits).astype(np.int64)


def _digest(bars: Bars) -> str:
    h = hashlib.sha256()
    for a in (bars.time, bars.open, bars.high, bars.low, bars.close, bars.tick_volume, bars.spread):
        h.update(a.tobytes())
    return h.hexdigest()


def _week_first_bars(bars: Bars) -> pd.DatetimeIndex:
    after_break = np.flatnonzero(np.diff(bars.time) > 24 * 60 * MINUTE_NS) + 1
    return _utc(bars)[after_break]


def _week_last_bars(bars: Bars) -> pd.DatetimeIndex:
    before_break = np.flatnonzero(np.diff(bars.time) > 24 * 60 * MINUTE_NS)
    return _utc(bars)[before_break]


# --- symbols -----------------------------------------------------------------------------------------


def test_demo_symbols_required_set_has_broker_digits() -> None:
    digits = {s: DEMO_SYMBOLS[s].digits for s in ("EURUSD", "GBPUSD", "USDJPY", "EURGBP", "AUDUSD", "XAUUSD")}

    assert digits == {"EURUSD": 5, "GBPUSD": 5, "USDJPY": 3, "EURGBP": 5, "AUDUSD": 5, "XAUUSD": 2}
    assert DEMO_SYMBOLS["XAUUSD"].daily_break
    assert DEMO_SYMBOLS["USDJPY"].point == 0.001


@pytest.mark.parametrize("symbol", ALL)
def test_session_activity_every_overlap_hour_above_every_asian_hour(symbol: str) -> None:
    activity = session_activity(symbol)

    assert len(activity) == 24
    assert min(activity[13:16]) > 1.5 * max(activity[0:5])
    assert sum(a * a for a in activity) / 24 == pytest.approx(1.0)


# --- determinism -------------------------------------------------------------------------------------


def test_generate_m1_same_inputs_identical_arrays() -> None:
    a = generate_m1("EURUSD", "2024-01-01", "2024-02-01", seed=3)
    b = generate_m1("EURUSD", pd.Timestamp("2024-01-01", tz="UTC"), "2024-02-01T00:00:00Z", seed=3)

    assert _digest(a) == _digest(b)


def test_generate_m1_different_seed_different_prices() -> None:
    a = generate_m1("EURUSD", "2024-01-01", "2024-01-08", seed=1)
    b = generate_m1("EURUSD", "2024-01-01", "2024-01-08", seed=2)

    assert not np.array_equal(a.close[: min(len(a), len(b))], b.close[: min(len(a), len(b))])


def test_generate_m1_fixed_inputs_match_golden_digest() -> None:
    # Pins the byte stream across machines and releases; a change here changes every demo result.
    bars = generate_m1("EURUSD", "2024-01-05", "2024-01-09", seed=7)

    assert len(bars) == 2880
    assert bars.time[0] == 1_704_412_800_000_000_000
    assert bars.open[0] == 1.085
    assert _digest(bars) == "e42449b489dac4c9d52aa43ae638fa8776150a95f6ee178b835cbd5af8a07c5c"


# --- calendar ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", FX)
def test_generate_m1_fx_four_weeks_sunday_2200_to_friday_2159_no_saturday(symbol: str) -> None:
    bars = generate_m1(symbol, "2024-03-01", "2024-03-30")
    times = _utc(bars)

    assert not (times.day_of_week == SATURDAY).any()
    firsts = _week_first_bars(bars)
    assert list(firsts.strftime("%a %H:%M")) == ["Sun 22:00"] * 4
    assert list(_week_last_bars(bars).strftime("%a %H:%M")) == ["Fri 21:59"] * 4
    assert times[-1] == pd.Timestamp("2024-03-29 21:59", tz="UTC")


def test_generate_m1_xauusd_daily_break_empty_and_week_opens_sunday_2300() -> None:
    bars = generate_m1("XAUUSD", "2024-03-01", "2024-03-30")
    times = _utc(bars)

    assert not (times.hour == 21).any()
    assert not (times.day_of_week == SATURDAY).any()
    assert list(_week_first_bars(bars).strftime("%a %H:%M")) == ["Sun 23:00"] * 4
    assert list(_week_last_bars(bars).strftime("%a %H:%M")) == ["Fri 20:59"] * 4
    monday_evening = times[(times.day_of_week == 0) & (times.hour == 22)]
    assert monday_evening[0] == pd.Timestamp("2024-03-04 22:00", tz="UTC")


def test_generate_m1_range_half_open_first_bar_on_next_whole_minute() -> None:
    bars = generate_m1("EURUSD", "2024-01-08 10:00:30", "2024-01-08 10:05")

    assert list(_utc(bars).strftime("%H:%M")) == ["10:01", "10:02", "10:03", "10:04"]
    assert bars.timeframe is Timeframe.M1
    assert bars.time.dtype == np.int64 and bars.spread.dtype == np.int32


def test_generate_m1_saturday_only_range_returns_no_bars() -> None:
    bars = generate_m1("EURUSD", "2024-01-06", "2024-01-07")

    assert len(bars) == 0


def test_generate_m1_unknown_symbol_raises_value_error() -> None:
    with pytest.raises(ValueError, match="NZDUSD"):
        generate_m1("NZDUSD", "2024-01-01", "2024-01-02")


def test_generate_m1_end_before_start_raises_value_error() -> None:
    with pytest.raises(ValueError, match="before start"):
        generate_m1("EURUSD", "2024-01-02", "2024-01-01")


def test_generate_m1_quarter_missing_minutes_only_in_quiet_hours_about_one_per_mille() -> None:
    bars = generate_m1("EURUSD", "2024-01-01", "2024-04-01")
    step = np.diff(bars.time) // MINUTE_NS
    hole = np.flatnonzero((step > 1) & (step < 60))
    hours = (bars.time[hole] // MINUTE_NS + 1) % 1440 // 60
    quiet_bars = np.isin(_minute_of_day(bars) // 60, [20, 21, 22, 23, 0, 1, 2, 3, 4, 5, 6]).sum()

    assert np.isin(hours, [20, 21, 22, 23, 0, 1, 2, 3, 4, 5, 6]).all()
    assert 0.0005 < len(hole) / quiet_bars < 0.002


# --- bars --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", ALL)
def test_generate_m1_month_ohlc_valid_rounded_positive(symbol: str) -> None:
    bars = generate_m1(symbol, "2024-05-01", "2024-06-01", seed=11)
    scale = 10 ** DEMO_SYMBOLS[symbol].digits

    assert (bars.high >= np.maximum(bars.open, bars.close)).all()
    assert (bars.low <= np.minimum(bars.open, bars.close)).all()
    assert (bars.low > 0).all()
    for prices in (bars.open, bars.high, bars.low, bars.close):
        assert np.array_equal(np.rint(prices * scale) / scale, prices)


@pytest.mark.parametrize("symbol", ALL)
def test_generate_m1_consecutive_minutes_open_within_one_point_of_previous_close(symbol: str) -> None:
    bars = generate_m1(symbol, "2024-05-01", "2024-06-01", seed=11)
    consecutive = np.flatnonzero(np.diff(bars.time) == MINUTE_NS) + 1
    jump = _points(bars.open, symbol)[consecutive] - _points(bars.close, symbol)[consecutive - 1]

    assert set(np.unique(jump).tolist()) == {-1, 0, 1}
    assert (jump == 0).mean() > 0.8


def test_generate_m1_first_bar_opens_at_start_price() -> None:
    bars = generate_m1("USDJPY", "2024-01-08", "2024-01-09")

    assert bars.open[0] == 148.5


@pytest.mark.parametrize("symbol", ALL)
def test_generate_m1_spread_at_least_one_point_rollover_wider_than_london(symbol: str) -> None:
    bars = generate_m1(symbol, "2024-01-01", "2024-02-01")
    minute = _minute_of_day(bars)
    rollover = np.median(bars.spread[(minute >= 22 * 60) & (minute < 22 * 60 + 15)])
    london = np.median(bars.spread[(minute >= 8 * 60) & (minute < 12 * 60)])

    assert bars.spread.min() >= 1
    assert london == DEMO_SYMBOLS[symbol].spread_points
    assert rollover >= 3 * london


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("symbol", ALL)
def test_generate_m1_two_weeks_overlap_range_above_asia_range(symbol: str, seed: int) -> None:
    bars = generate_m1(symbol, "2024-02-05", "2024-02-17", seed=seed)
    hour = _minute_of_day(bars) // 60
    bar_range = bars.high - bars.low

    overlap = np.median(bar_range[(hour >= 13) & (hour < 16)])
    asia = np.median(bar_range[hour < 5])
    assert overlap > 1.5 * asia


def test_generate_m1_tick_volume_positive_and_busier_in_overlap() -> None:
    bars = generate_m1("GBPUSD", "2024-01-01", "2024-02-01")
    hour = _minute_of_day(bars) // 60

    assert bars.tick_volume.min() >= 1
    assert np.median(bars.tick_volume[(hour >= 13) & (hour < 16)]) > np.median(bars.tick_volume[hour < 5])


@pytest.mark.parametrize("symbol", ["EURUSD", "GBPUSD", "XAUUSD"])
def test_generate_m1_quarter_has_five_day_move_over_twice_daily_range(symbol: str) -> None:
    bars = generate_m1(symbol, "2024-01-01", "2024-04-01")
    day = (bars.time // MINUTE_NS - 22 * 60) // 1440  # trading day starts at the 22:00 rollover
    frame = pd.DataFrame({"day": day, "high": bars.high, "low": bars.low, "close": bars.close})
    daily = frame.groupby("day").agg(
        high=("high", "max"), low=("low", "min"), close=("close", "last"), bars=("close", "size")
    )
    daily = daily[daily["bars"] > 600]  # whole trading days only
    typical_range = float((daily["high"] - daily["low"]).median())

    five_day_move = daily["close"].diff(5).abs().max()
    assert five_day_move > 2 * typical_range


# --- Parquet -----------------------------------------------------------------------------------------


def test_write_demo_data_round_trip_exact(tmp_path: Path) -> None:
    paths = write_demo_data(tmp_path, ["EURUSD", "XAUUSD"], "2024-01-01", "2024-01-15", seed=5)

    assert [p.name for p in paths] == ["EURUSD_M1_demo.parquet", "XAUUSD_M1_demo.parquet"]
    for path, symbol in zip(paths, ["EURUSD", "XAUUSD"], strict=True):
        expected = generate_m1(symbol, "2024-01-01", "2024-01-15", seed=5)
        got = read_m1_parquet(path, symbol)
        assert got.symbol == symbol and got.timeframe is Timeframe.M1
        assert _digest(got) == _digest(expected)
        for name in ("time", "open", "high", "low", "close", "tick_volume", "spread"):
            assert getattr(got, name).flags["C_CONTIGUOUS"]


def test_write_demo_data_schema_and_metadata(tmp_path: Path) -> None:
    (path,) = write_demo_data(tmp_path, ["GBPUSD"], "2024-01-01", "2024-01-03", seed=9)
    schema = pq.read_schema(path)
    meta = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}

    assert schema.field("time").type == pa.timestamp("ns", tz="UTC")
    assert [schema.field(c).type for c in ("open", "high", "low", "close", "tick_volume", "spread")] == [
        pa.float64(),
        pa.float64(),
        pa.float64(),
        pa.float64(),
        pa.int64(),
        pa.int32(),
    ]
    assert meta["symbol"] == "GBPUSD"
    assert meta["timeframe"] == "M1"
    assert meta["source"] == SOURCE == "mt5tester synthetic demo"
    assert meta["seed"] == "9"
    assert meta["start"] == "2024-01-01T00:00:00+00:00"
    assert meta["end"] == "2024-01-03T00:00:00+00:00"
    assert pd.read_parquet(path)["time"].iloc[0] == pd.Timestamp("2024-01-01", tz="UTC")


def test_write_demo_data_same_metadata_keeps_file_untouched(tmp_path: Path) -> None:
    (path,) = write_demo_data(tmp_path, ["EURUSD"], "2024-01-01", "2024-01-03")
    os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))

    (again,) = write_demo_data(tmp_path, ["EURUSD"], pd.Timestamp("2024-01-01", tz="UTC"), "2024-01-03")

    assert again == path
    assert path.stat().st_mtime_ns == 1_000_000_000_000_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["EURUSD_M1_demo.parquet"]


def test_write_demo_data_other_seed_rewrites_file(tmp_path: Path) -> None:
    (path,) = write_demo_data(tmp_path, ["EURUSD"], "2024-01-01", "2024-01-03", seed=1)
    os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))

    write_demo_data(tmp_path, ["EURUSD"], "2024-01-01", "2024-01-03", seed=2)

    assert path.stat().st_mtime_ns != 1_000_000_000_000_000_000
    assert (pq.read_schema(path).metadata or {})[b"seed"] == b"2"
    assert _digest(read_m1_parquet(path, "EURUSD")) == _digest(
        generate_m1("EURUSD", "2024-01-01", "2024-01-03", seed=2)
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["EURUSD_M1_demo.parquet"]


def _write_table(path: Path, time: pa.Array, **columns: list[float] | list[int]) -> Path:
    data: dict[str, pa.Array] = {"time": time}
    data.update({name: pa.array(values) for name, values in columns.items()})
    pq.write_table(pa.table(data), path)
    return path


def test_read_m1_parquet_naive_time_raises_value_error_naming_file(tmp_path: Path) -> None:
    time = pa.array([0, MINUTE_NS], pa.timestamp("ns"))
    path = _write_table(
        tmp_path / "naive.parquet", time, open=[1.0, 1.0], high=[1.0, 1.0], low=[1.0, 1.0], close=[1.0, 1.0]
    )

    with pytest.raises(DataError, match=r"naive\.parquet.*naive"):
        read_m1_parquet(path, "EURUSD")


def test_read_m1_parquet_missing_close_raises_value_error(tmp_path: Path) -> None:
    time = pa.array([0], pa.timestamp("ns", tz="UTC"))
    path = _write_table(tmp_path / "noclose.parquet", time, open=[1.0], high=[1.0], low=[1.0])

    with pytest.raises(DataError, match=r"noclose\.parquet: missing column\(s\) close"):
        read_m1_parquet(path, "EURUSD")


def test_read_m1_parquet_unsorted_time_raises_value_error(tmp_path: Path) -> None:
    time = pa.array([MINUTE_NS, 0], pa.timestamp("ns", tz="UTC"))
    path = _write_table(
        tmp_path / "unsorted.parquet",
        time,
        open=[1.0, 1.0],
        high=[1.0, 1.0],
        low=[1.0, 1.0],
        close=[1.0, 1.0],
    )

    with pytest.raises(DataError, match="not strictly increasing at row 1"):
        read_m1_parquet(path, "EURUSD")


def test_read_m1_parquet_of_many_row_groups_reads_each_column_whole(tmp_path: Path) -> None:
    # column by column, each joined from its row groups' chunks (no whole table held beside the arrays)
    table = pa.table(
        {
            "time": pa.array([k * 60_000_000 for k in range(5)], pa.timestamp("us", tz="UTC")),
            "open": [1.1, 1.2, 1.3, 1.4, 1.5],
            "high": [1.2, 1.3, 1.4, 1.5, 1.6],
            "low": [1.0, 1.1, 1.2, 1.3, 1.4],
            "close": pa.array([1.15, 1.25, 1.35, 1.45, 1.55], pa.float32()),
            "tick_volume": pa.array([1, 2, 3, 4, 5], pa.int32()),
            "spread": pa.array([7, 8, 9, 10, 11], pa.int64()),
        }
    )
    path = tmp_path / "groups.parquet"
    pq.write_table(table, path, row_group_size=2)
    assert pq.ParquetFile(path).metadata.num_row_groups == 3

    bars = read_m1_parquet(path, "EURUSD")

    assert bars.time.tolist() == [k * MINUTE_NS for k in range(5)]
    assert bars.open.tolist() == [1.1, 1.2, 1.3, 1.4, 1.5]
    assert bars.close.tolist() == np.array([1.15, 1.25, 1.35, 1.45, 1.55], np.float32).astype(float).tolist()
    assert bars.tick_volume.tolist() == [1, 2, 3, 4, 5] and bars.spread.tolist() == [7, 8, 9, 10, 11]
    dtypes = [a.dtype for a in (bars.time, bars.open, bars.close, bars.tick_volume, bars.spread)]
    assert dtypes == [np.int64, np.float64, np.float64, np.int64, np.int32]
    assert all(a.flags.c_contiguous for a in (bars.time, bars.high, bars.low, bars.spread))


def test_read_m1_parquet_null_price_raises_naming_column(tmp_path: Path) -> None:
    time = pa.array([0, MINUTE_NS], pa.timestamp("ns", tz="UTC"))
    path = _write_table(
        tmp_path / "hole.parquet", time, open=[1.0, 1.0], high=[1.0, None], low=[1.0, 1.0], close=[1.0, 1.0]
    )

    with pytest.raises(DataError, match=r"hole\.parquet: column high has 1 null\(s\)"):
        read_m1_parquet(path, "EURUSD")


def test_read_m1_parquet_ms_time_other_zone_no_volume_spread_fills_zeros(tmp_path: Path) -> None:
    time = pa.array([1_704_067_200_000, 1_704_067_260_000], pa.timestamp("ms", tz="Europe/Athens"))
    path = _write_table(
        tmp_path / "plain.parquet",
        time,
        open=[1.1, 1.2],
        high=[1.3, 1.4],
        low=[1.0, 1.1],
        close=[1.2, 1.3],
    )

    bars = read_m1_parquet(path, "EURUSD")

    assert bars.time.tolist() == [1_704_067_200_000_000_000, 1_704_067_260_000_000_000]
    assert bars.close.tolist() == [1.2, 1.3]
    assert bars.tick_volume.tolist() == [0, 0] and bars.tick_volume.dtype == np.int64
    assert bars.spread.tolist() == [0, 0] and bars.spread.dtype == np.int32


def test_read_m1_parquet_shared_eurusd_reads_all_rows(shared_data: Path) -> None:
    bars = read_m1_parquet(shared_data / "m1" / "EURUSD_M1_2018-2019.parquet", "EURUSD")

    assert len(bars) == 745_077
    assert bars.time[0] == pd.Timestamp("2018-01-01 22:00", tz="UTC").value
    assert bars.time[-1] == pd.Timestamp("2019-12-31 21:59", tz="UTC").value
    assert not bars.tick_volume.any() and not bars.spread.any()
    assert bars.open.dtype == np.float64 and bars.open.flags["C_CONTIGUOUS"]
