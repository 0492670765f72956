"""Importers: MT5 bar/tick CSV exports, tick Parquet, generic tables, and the MT5 CSV writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mt5tester.data.importers import (
    read_bars_table,
    read_mt5_bars_csv,
    read_mt5_ticks_csv,
    read_ticks_parquet,
    write_mt5_bars_csv,
)
from mt5tester.errors import ConfigError, DataError
from mt5tester.model.bars import Bars
from mt5tester.model.ticks import Ticks
from mt5tester.model.timeframe import Timeframe

HEADER = "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"
TICK_HEADER = "<DATE>\t<TIME>\t<BID>\t<ASK>\t<LAST>\t<VOLUME>\t<FLAGS>"


def ns(text: str) -> int:
    """UTC nanoseconds of an ISO time string."""
    return int(np.datetime64(text, "ns").astype(np.int64))


def write(path: Path, lines: list[str], eol: str = "\r\n") -> Path:
    path.write_bytes((eol.join(lines) + eol).encode("ascii"))
    return path


def raw_line(path: Path, lineno: int) -> list[str]:
    return path.read_bytes().decode("ascii").split("\r\n")[lineno - 1].split("\t")


def assert_row(bars: Bars, row: int, cells: list[str]) -> None:
    """Bar ``row`` equals the MT5 text cells ``[...] OPEN HIGH LOW CLOSE TICKVOL VOL SPREAD``."""
    o, h, lo, c, tv, _vol, sp = cells[-7:]
    assert bars.open[row] == float(o)
    assert bars.high[row] == float(h)
    assert bars.low[row] == float(lo)
    assert bars.close[row] == float(c)
    assert bars.tick_volume[row] == int(tv)
    assert bars.spread[row] == int(sp)


# ---------------------------------------------------------------------------------------------- real files


def test_read_mt5_bars_csv_eurusd_h1_export_exact_rows_in_utc(shared_data: Path) -> None:
    path = shared_data / "mt5_export" / "EURUSD_H1.csv"
    bars = read_mt5_bars_csv(path, "EURUSD", tz="Europe/Athens")

    assert len(bars) == 3608
    assert bars.symbol == "EURUSD"
    assert bars.timeframe is Timeframe.H1
    assert bars.time.dtype == np.int64 and bars.spread.dtype == np.int32
    # 2025.06.23 00:00 EEST (UTC+3), 2026.01.21 10:00 EET (UTC+2)
    assert bars.time[0] == ns("2025-06-22T21:00")
    assert bars.time[-1] == ns("2026-01-21T08:00")
    assert_row(bars, 0, ["1.14565", "1.14745", "1.14565", "1.14721", "644", "0", "7"])
    assert_row(bars, -1, ["1.17166", "1.17184", "1.17047", "1.17099", "2579", "0", "7"])
    cells = raw_line(path, 1800)  # 2025.10.03 22:00:00, summer time
    assert cells[:2] == ["2025.10.03", "22:00:00"]
    assert bars.time[1798] == ns("2025-10-03T19:00")
    assert_row(bars, 1798, cells)


def test_read_mt5_bars_csv_us30_daily_without_time_column_infers_d1(shared_data: Path) -> None:
    path = shared_data / "mt5_export" / "US30m_Daily_202401010000_202509080000.csv"
    bars = read_mt5_bars_csv(path, "US30m")

    assert len(bars) == 527
    assert bars.timeframe is Timeframe.D1
    assert bars.time[0] == ns("2024-01-01T00:00")
    assert bars.time[-1] == ns("2025-09-08T00:00")
    assert_row(bars, 0, ["37763.9", "37791.7", "37762.5", "37776.3", "385", "0", "90"])
    assert_row(bars, -1, ["45538.0", "45616.8", "45315.7", "45616.3", "158030", "0", "10"])
    cells = raw_line(path, 260)
    assert cells[0] == "2024.10.29"
    assert bars.time[258] == ns("2024-10-29T00:00")
    assert_row(bars, 258, cells)


def test_read_mt5_bars_csv_renamed_header_m1_fixed_offset_and_zone_agree(shared_data: Path) -> None:
    path = shared_data / "mt5_export" / "EURUSD_M1_201806_renamed_header.csv"
    fixed = read_mt5_bars_csv(path, "EURUSD", tz="+03:00")
    zoned = read_mt5_bars_csv(path, "EURUSD", tz="Europe/Athens")

    assert len(fixed) == 30203
    assert fixed.timeframe is Timeframe.M1 and zoned.timeframe is Timeframe.M1
    np.testing.assert_array_equal(fixed.time, zoned.time)
    assert fixed.time[0] == ns("2018-05-31T21:00")  # 2018.06.01 00:00 server (UTC+3)
    assert fixed.time[-1] == ns("2018-06-29T20:59")
    assert_row(fixed, 0, ["1.16879", "1.16906", "1.16852", "1.16855", "8", "0", "47"])
    assert_row(fixed, -1, ["1.16833", "1.16835", "1.16823", "1.16831", "11", "0", "13"])
    cells = raw_line(path, 15001)
    assert cells[:2] == ["2018.06.15", "10:21:00"]
    assert fixed.time[14999] == ns("2018-06-15T07:21")
    assert_row(fixed, 14999, cells)


def test_read_mt5_bars_csv_arrays_are_read_only(shared_data: Path) -> None:
    bars = read_mt5_bars_csv(shared_data / "mt5_export" / "EURUSD_H1.csv", "EURUSD")
    with pytest.raises(ValueError):
        bars.close[0] = 1.0


def test_read_ticks_parquet_oanda_file_rows_times_and_flags(shared_data: Path) -> None:
    ticks = read_ticks_parquet(
        shared_data / "ticks" / "EURUSD_ticks_2014-05-01_2014-05-15_oanda.parquet", "EURUSD"
    )

    assert isinstance(ticks, Ticks)
    assert len(ticks) == 532_903
    assert ticks.time[0] == ns("2014-05-01T00:00:00.292")
    assert ticks.time[-1] == ns("2014-05-15T23:59:56.324")
    assert ticks.last[0] == 0.0 and ticks.volume[0] == 0
    assert ticks.flags[0] == 6  # first tick: BID|ASK
    changed = (np.diff(ticks.bid) != 0) * 2 | (np.diff(ticks.ask) != 0) * 4
    np.testing.assert_array_equal(ticks.flags[1:], changed)


def test_read_bars_table_bidask_parquet_spread_in_points(shared_data: Path) -> None:
    path = shared_data / "h1" / "EURUSD_H1_2007-2018_oanda_bidask.parquet"
    bars = read_bars_table(path, "EURUSD", Timeframe.H1, point=0.00001)

    assert len(bars) == 74_439
    assert bars.time[0] == ns("2007-01-01T21:00")
    assert (bars.open[0], bars.high[0], bars.low[0], bars.close[0]) == (1.31927, 1.31955, 1.3187, 1.31935)
    assert bars.spread[0] == 100  # (1.32035 - 1.31935) / 0.00001
    assert bars.tick_volume[0] == 0


def test_read_bars_table_bidask_without_point_raises(shared_data: Path) -> None:
    path = shared_data / "h1" / "EURUSD_H1_2007-2018_oanda_bidask.parquet"
    with pytest.raises(DataError, match="need --point "):
        read_bars_table(path, "EURUSD", Timeframe.H1)


# ---------------------------------------------------------------------------------------------- malformed


GOOD_ROWS = [
    "2018.06.01\t00:00:00\t1.16879\t1.16906\t1.16852\t1.16855\t8\t0\t47",
    "2018.06.01\t00:01:00\t1.16871\t1.16884\t1.16871\t1.16879\t13\t0\t31",
]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("2018.06.01\t00:02:00\t1.16879\t1.16906\t1.16852\t1.16855\t8\t0", "expected 9 columns, got 8"),
        ("2018.06.01\t00:02:00\t1.16879\t1.169x6\t1.16852\t1.16855\t8\t0\t47", "high value '1.169x6'"),
        ("2018.06.01\t00:02:00\t1.16879\t\t1.16852\t1.16855\t8\t0\t47", "empty high"),
        ("2018.06.01\t00:02:00\t1.16879\t1.16906\t1.16852\t1.16855\t8.5\t0\t47", "tickvol value '8.5'"),
        ("2018.13.01\t00:02:00\t1.16879\t1.16906\t1.16852\t1.16855\t8\t0\t47", "bad date"),
        ("2018.02.30\t00:02:00\t1.16879\t1.16906\t1.16852\t1.16855\t8\t0\t47", "bad date"),
        ("2018.06.01\t24:02:00\t1.16879\t1.16906\t1.16852\t1.16855\t8\t0\t47", "bad time"),
        ("2018.06.01\t00:02\t1.16879\tnan\t1.16852\t1.16855\t8\t0\t47", "high is not a finite number"),
        ("", "expected 9 columns, got 1"),
    ],
)
def test_read_mt5_bars_csv_malformed_line_raises_with_file_line_and_text(
    tmp_path: Path, bad: str, reason: str
) -> None:
    path = write(tmp_path / "broken_EURUSD.csv", [HEADER, *GOOD_ROWS, bad, GOOD_ROWS[0]])

    with pytest.raises(DataError) as info:
        read_mt5_bars_csv(path, "EURUSD")

    msg = str(info.value)
    assert "broken_EURUSD.csv" in msg
    assert "line 4:" in msg
    assert reason in msg
    assert repr(bad) in msg


def test_read_mt5_bars_csv_high_below_low_is_not_a_parse_error(tmp_path: Path) -> None:
    row = "2018.06.01\t00:02:00\t1.16879\t1.16800\t1.16900\t1.16855\t8\t0\t47"
    bars = read_mt5_bars_csv(write(tmp_path / "x.csv", [HEADER, *GOOD_ROWS, row]), "EURUSD")
    assert (bars.high[2], bars.low[2]) == (1.168, 1.169)


def test_read_mt5_bars_csv_empty_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.csv: empty file"):
        read_mt5_bars_csv(path, "EURUSD")


def test_read_mt5_bars_csv_header_only_raises(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no data rows"):
        read_mt5_bars_csv(write(tmp_path / "h.csv", [HEADER]), "EURUSD")


def test_read_mt5_bars_csv_missing_column_names_it_and_lists_found(tmp_path: Path) -> None:
    header = "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<TICKVOL>\t<VOL>\t<SPREAD>"
    row = "2018.06.01\t00:00:00\t1.16879\t1.16906\t1.16852\t8\t0\t47"
    with pytest.raises(DataError) as info:
        read_mt5_bars_csv(write(tmp_path / "m.csv", [header, row]), "EURUSD")
    msg = str(info.value)
    assert "missing required column(s) close" in msg
    assert "found: <DATE>, <TIME>, <OPEN>, <HIGH>, <LOW>, <TICKVOL>, <VOL>, <SPREAD>" in msg


def test_read_mt5_bars_csv_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read file"):
        read_mt5_bars_csv(tmp_path / "nope.csv", "EURUSD")


def test_read_mt5_bars_csv_unknown_tz_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        read_mt5_bars_csv(write(tmp_path / "x.csv", [HEADER, *GOOD_ROWS]), "EURUSD", tz="Mars/Olympus")


# ---------------------------------------------------------------------------------------------- variants


def test_read_mt5_bars_csv_lf_bom_short_times_and_renamed_header_parse(tmp_path: Path) -> None:
    lines = [
        "date,time,open,high,low,close,tick_volume,real_volume,spread",
        "2020.01.02,09:30,1.1,1.2,1.0,1.15,10,0,3",
        "2020.01.02,09:35,1.15,1.25,1.05,1.2,11,0,4",
        "2020.01.02,09:40,1.2,1.3,1.1,1.25,12,0,5",
    ]
    path = tmp_path / "lf.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ("\n".join(lines) + "\n\n").encode())

    bars = read_mt5_bars_csv(path, "EURUSD", tz="UTC+2")

    assert bars.timeframe is Timeframe.M5
    np.testing.assert_array_equal(
        bars.time, [ns("2020-01-02T07:30"), ns("2020-01-02T07:35"), ns("2020-01-02T07:40")]
    )
    np.testing.assert_array_equal(bars.close, [1.15, 1.2, 1.25])
    np.testing.assert_array_equal(bars.spread, [3, 4, 5])


def test_read_mt5_bars_csv_irregular_spacing_cannot_infer_timeframe_raises(tmp_path: Path) -> None:
    rows = [f"2020.01.02\t{t}\t1.1\t1.2\t1.0\t1.15\t10\t0\t3" for t in ("00:00:00", "00:07:00", "00:14:00")]
    with pytest.raises(DataError, match="median bar spacing 7 min is not an MT5 timeframe"):
        read_mt5_bars_csv(write(tmp_path / "x.csv", [HEADER, *rows]), "EURUSD")


def test_read_mt5_bars_csv_explicit_timeframe_skips_inference(tmp_path: Path) -> None:
    rows = [f"2020.01.02\t{t}\t1.1\t1.2\t1.0\t1.15\t10\t0\t3" for t in ("00:00:00", "00:07:00", "00:14:00")]
    bars = read_mt5_bars_csv(write(tmp_path / "x.csv", [HEADER, *rows]), "EURUSD", Timeframe.M1)
    assert bars.timeframe is Timeframe.M1


def _rows(date: str, times: list[str]) -> list[str]:
    return [f"{date}\t{t}\t1.1\t1.2\t1.0\t1.15\t10\t0\t3" for t in times]


def test_read_mt5_bars_csv_spring_forward_gap_time_raises_with_line(tmp_path: Path) -> None:
    # Europe/Athens 2018-03-25: 03:00 local jumps to 04:00; 03:30 does not exist on that clock.
    path = write(tmp_path / "gap.csv", [HEADER, *_rows("2018.03.25", ["02:30:00", "03:30:00", "04:30:00"])])
    with pytest.raises(DataError) as info:
        read_mt5_bars_csv(path, "EURUSD", Timeframe.H1, tz="Europe/Athens")
    msg = str(info.value)
    assert "gap.csv: line 3:" in msg and "does not exist" in msg and "03:30:00" in msg


def test_read_mt5_bars_csv_repeated_fall_back_hour_resolved_by_file_order(tmp_path: Path) -> None:
    # Europe/Athens 2018-10-28: 04:00 EEST goes back to 03:00 EET; 03:00-03:59 happens twice.
    times = ["02:30:00", "03:00:00", "03:30:00", "03:00:00", "03:30:00", "04:00:00"]
    path = write(tmp_path / "fold.csv", [HEADER, *_rows("2018.10.28", times)])

    bars = read_mt5_bars_csv(path, "EURUSD", Timeframe.M30, tz="Europe/Athens")

    expected = [
        "2018-10-27T23:30",
        "2018-10-28T00:00",
        "2018-10-28T00:30",
        "2018-10-28T01:00",
        "2018-10-28T01:30",
    ]
    np.testing.assert_array_equal(bars.time, [ns(t) for t in [*expected, "2018-10-28T02:00"]])


def test_read_mt5_bars_csv_single_ambiguous_hour_taken_as_first_occurrence(tmp_path: Path) -> None:
    path = write(tmp_path / "once.csv", [HEADER, *_rows("2018.10.28", ["02:00:00", "03:00:00", "04:00:00"])])

    bars = read_mt5_bars_csv(path, "EURUSD", tz="Europe/Athens")

    assert bars.timeframe is Timeframe.H1
    np.testing.assert_array_equal(
        bars.time, [ns("2018-10-27T23:00"), ns("2018-10-28T00:00"), ns("2018-10-28T02:00")]
    )


# ---------------------------------------------------------------------------------------------- ticks CSV


def test_read_mt5_ticks_csv_blank_cells_forward_filled(tmp_path: Path) -> None:
    lines = [
        TICK_HEADER,
        "2020.01.02\t00:00:00.124\t1.12122\t1.12139\t\t\t6",
        "2020.01.02\t00:00:00.329\t1.12121\t\t\t\t2",
        "2020.01.02\t00:00:01.002\t\t1.12140\t\t\t4",
        "2020.01.02\t00:00:01.002\t1.12125\t1.12141\t1.12130\t3\t30",
    ]
    ticks = read_mt5_ticks_csv(write(tmp_path / "ticks.csv", lines), "EURUSD", tz="+02:00")

    base = ns("2020-01-01T22:00")
    np.testing.assert_array_equal(ticks.time, base + np.array([124, 329, 1002, 1002]) * 1_000_000)
    np.testing.assert_array_equal(ticks.bid, [1.12122, 1.12121, 1.12121, 1.12125])
    np.testing.assert_array_equal(ticks.ask, [1.12139, 1.12139, 1.12140, 1.12141])
    np.testing.assert_array_equal(ticks.last, [0.0, 0.0, 0.0, 1.1213])
    np.testing.assert_array_equal(ticks.volume, [0, 0, 0, 3])
    np.testing.assert_array_equal(ticks.flags, [6, 2, 4, 30])
    assert ticks.flags.dtype == np.int32 and ticks.volume.dtype == np.int64


def test_read_mt5_ticks_csv_leading_blank_ask_raises(tmp_path: Path) -> None:
    lines = [TICK_HEADER, "2020.01.02\t00:00:00.124\t1.12122\t\t\t\t2"]
    with pytest.raises(DataError, match=r"ticks\.csv: line 2: empty ask before any ask value"):
        read_mt5_ticks_csv(write(tmp_path / "ticks.csv", lines), "EURUSD")


def test_read_mt5_ticks_csv_empty_flags_raises_with_line(tmp_path: Path) -> None:
    lines = [
        TICK_HEADER,
        "2020.01.02\t00:00:00.124\t1.12122\t1.12139\t\t\t6",
        "2020.01.02\t00:00:00.200\t1.1\t\t\t\t",
    ]
    with pytest.raises(DataError, match=r"line 3: empty flags value"):
        read_mt5_ticks_csv(write(tmp_path / "ticks.csv", lines), "EURUSD")


# ---------------------------------------------------------------------------------------------- tables


def test_read_bars_table_csv_with_mapping_bid_only_spread_zero(tmp_path: Path) -> None:
    lines = [
        "Day;Hour;O;H;L;C;Ticks",
        "2020-01-02;10:00;1.1;1.2;1.0;1.15;5",
        "2020-01-02;11:00;1.15;1.3;1.1;1.2;6",
    ]
    path = write(tmp_path / "t.csv", lines, eol="\n")
    mapping = {
        "date": "Day",
        "time": "Hour",
        "open": "O",
        "high": "H",
        "low": "L",
        "close": "C",
        "tick_volume": "Ticks",
    }

    bars = read_bars_table(path, "EURUSD", Timeframe.H1, columns=mapping, tz="Europe/Athens")

    np.testing.assert_array_equal(bars.time, [ns("2020-01-02T08:00"), ns("2020-01-02T09:00")])
    np.testing.assert_array_equal(bars.high, [1.2, 1.3])
    np.testing.assert_array_equal(bars.tick_volume, [5, 6])
    np.testing.assert_array_equal(bars.spread, [0, 0])


def test_read_bars_table_csv_bad_time_raises_with_line(tmp_path: Path) -> None:
    lines = [
        "time,open,high,low,close",
        "2020-01-02 10:00:00,1.1,1.2,1.0,1.15",
        "2020-01-02 1O:00:00,1,1,1,1",
    ]
    with pytest.raises(DataError, match=r"t\.csv: line 3: bad time .*'2020-01-02 1O:00:00,1,1,1,1'"):
        read_bars_table(write(tmp_path / "t.csv", lines), "EURUSD", Timeframe.H1)


def test_read_bars_table_parquet_missing_column_lists_found(tmp_path: Path) -> None:
    path = tmp_path / "b.parquet"
    pq.write_table(
        pa.table({"time": pa.array([0], pa.timestamp("ns", "UTC")), "open": [1.0], "high": [1.0]}), path
    )
    with pytest.raises(
        DataError, match=r"missing required column\(s\) low \(or bid_low\), close .*found: time, open, high"
    ):
        read_bars_table(path, "EURUSD", Timeframe.H1)


def test_read_bars_table_parquet_naive_time_uses_tz(tmp_path: Path) -> None:
    path = tmp_path / "b.parquet"
    t = pa.array(np.array(["2020-07-01T03:00"], "datetime64[ns]"), pa.timestamp("ns"))
    pq.write_table(
        pa.table({"time": t, "open": [1.0], "high": [2.0], "low": [0.5], "close": [1.5], "spread": [7]}), path
    )

    bars = read_bars_table(path, "EURUSD", Timeframe.H1, tz="Europe/Athens")

    assert bars.time[0] == ns("2020-07-01T00:00")
    assert bars.spread[0] == 7


# ---------------------------------------------------------------------------------------------- round trip


def test_write_mt5_bars_csv_round_trip_m1_identical_arrays(tmp_path: Path, shared_data: Path) -> None:
    original = read_mt5_bars_csv(
        shared_data / "mt5_export" / "EURUSD_M1_201806_renamed_header.csv", "EURUSD", tz="+03:00"
    )
    out = tmp_path / "EURUSD_M1.csv"

    write_mt5_bars_csv(original, out, tz="Europe/Athens")
    again = read_mt5_bars_csv(out, "EURUSD", tz="Europe/Athens")

    assert out.read_bytes().startswith((HEADER + "\r\n2018.06.01\t00:00:00\t1.16879\t").encode())
    assert again.timeframe is original.timeframe
    for name in ("time", "open", "high", "low", "close", "tick_volume", "spread"):
        np.testing.assert_array_equal(getattr(again, name), getattr(original, name))


def test_write_mt5_bars_csv_daily_has_no_time_column_and_round_trips(tmp_path: Path) -> None:
    time = np.array([ns("2024-01-01T22:00"), ns("2024-01-02T22:00")], np.int64)
    bars = Bars(
        "US30m",
        Timeframe.D1,
        time,
        np.array([37763.9, 37777.1]),
        np.array([37791.7, 37863.5]),
        np.array([37762.5, 37510.1]),
        np.array([37776.3, 37763.1]),
        np.array([385, 39963], np.int64),
        np.array([90, 71], np.int32),
    )
    out = tmp_path / "d1.csv"

    write_mt5_bars_csv(bars, out, tz="+02:00", digits=1)
    again = read_mt5_bars_csv(out, "US30m", tz="+02:00")

    assert out.read_text().splitlines()[:2] == [
        "<DATE>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>",
        "2024.01.02\t37763.9\t37791.7\t37762.5\t37776.3\t385\t0\t90",
    ]
    assert again.timeframe is Timeframe.D1
    for name in ("time", "open", "high", "low", "close", "tick_volume", "spread"):
        np.testing.assert_array_equal(getattr(again, name), getattr(bars, name))
