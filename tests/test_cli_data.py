from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from mt5tester.data.catalog import Catalog
from mt5tester.data.health import validate
from mt5tester.data.resample import resample
from mt5tester.data.store import read_m1_parquet
from mt5tester.model.timeframe import Timeframe

BAR_FIELDS = ("time", "open", "high", "low", "close", "tick_volume", "spread")
M1_CSV = "mt5_export/EURUSD_M1_201806_renamed_header.csv"


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def csv_slice(src: Path, dst: Path, start: int, stop: int) -> Path:
    """Header plus data rows [start, stop) of an MT5 CSV (CRLF kept)."""
    lines = src.read_bytes().split(b"\r\n")
    dst.write_bytes(b"\r\n".join([lines[0], *lines[1 + start : 1 + stop]]) + b"\r\n")
    return dst


def info_json(run_cli, cat: Path, symbol: str, tf: str) -> dict:
    code, out, err = run_cli("data", "info", symbol, "--timeframe", tf, "--catalog", str(cat), "--json")
    assert code == 0, err
    [info] = json.loads(out)
    return info


def test_data_import_real_exports_ticks_and_m1_info_json_reports_rows_and_ranges(
    run_cli, shared_data: Path, tmp_path: Path
) -> None:
    cat = str(tmp_path / "cat")
    d = shared_data

    steps = [
        ("EURUSD", [str(d / "mt5_export/EURUSD_H1.csv"), str(d / M1_CSV), "--tz", "Europe/Athens"]),
        ("US30m", [str(d / "mt5_export/US30m_Daily_202401010000_202509080000.csv"), "--tz", "UTC"]),
        ("EURUSD", [str(d / "ticks/EURUSD_ticks_2014-05-01_2014-05-15_oanda.parquet")]),
        ("GBPUSD", [str(d / "m1/GBPUSD_M1_2018-2019.parquet")]),
    ]
    results = []
    for symbol, args in steps:
        code, out, err = run_cli("data", "import", *args, "--symbol", symbol, "--catalog", cat, "--json")
        assert code == 0, err
        results += json.loads(out)

    assert [(r["format"], r["timeframe"], r["rows_new"], r["duplicates"]) for r in results] == [
        ("mt5_bars", "H1", 3608, 0),
        ("mt5_bars", "M1", 30203, 0),
        ("mt5_bars", "D1", 527, 0),
        ("tick_parquet", "TICKS", 532903, 0),
        ("bar_parquet", "M1", 744597, 0),
    ]
    got = {
        (s, tf): (i["rows"], i["first"], i["last"], i["years"])
        for s, tf in [
            ("EURUSD", "H1"),
            ("EURUSD", "M1"),
            ("US30m", "D1"),
            ("EURUSD", "TICKS"),
            ("GBPUSD", "M1"),
        ]
        for i in [info_json(run_cli, Path(cat), s, tf)]
    }
    assert got == {
        # server time EEST (UTC+3) in summer, EET (UTC+2) in winter
        ("EURUSD", "H1"): (3608, "2025-06-22T21:00:00+00:00", "2026-01-21T08:00:00+00:00", [2025, 2026]),
        ("EURUSD", "M1"): (30203, "2018-05-31T21:00:00+00:00", "2018-06-29T20:59:00+00:00", [2018]),
        ("US30m", "D1"): (527, "2024-01-01T00:00:00+00:00", "2025-09-08T00:00:00+00:00", [2024, 2025]),
        ("EURUSD", "TICKS"): (
            532903,
            "2014-05-01T00:00:00.292000+00:00",
            "2014-05-15T23:59:56.324000+00:00",
            [2014],
        ),
        ("GBPUSD", "M1"): (744597, "2018-01-01T22:00:00+00:00", "2019-12-31T21:58:00+00:00", [2018, 2019]),
    }
    code, out, _ = run_cli("data", "list", "--catalog", cat, "--json")
    assert code == 0
    assert [(i["symbol"], i["timeframe"]) for i in json.loads(out)] == [
        ("EURUSD", "M1"), ("EURUSD", "H1"), ("EURUSD", "TICKS"), ("GBPUSD", "M1"), ("US30m", "D1")
    ]  # fmt: skip
    h1 = info_json(run_cli, Path(cat), "EURUSD", "H1")
    assert [(s["sha256"], s["tz"]) for s in h1["sources"]] == [
        ("21603130ada66c81443bc824dea67df9e22fac2834ff2327368f93c1c5bb2225", "Europe/Athens")
    ]


def test_data_import_same_file_again_is_idempotent_and_leaves_files_untouched(
    run_cli, shared_data: Path, tmp_path: Path
) -> None:
    cat = tmp_path / "cat"
    args = (
        "data",
        "import",
        str(shared_data / M1_CSV),
        "--symbol",
        "EURUSD",
        "--tz",
        "UTC",
        "--catalog",
        str(cat),
        "--json",
    )
    assert run_cli(*args)[0] == 0
    before = snapshot(cat)

    code, out, err = run_cli(*args)

    assert code == 0, err
    [r] = json.loads(out)
    assert (r["rows_new"], r["duplicates"], r["partitions_written"]) == (0, 30203, [])
    assert snapshot(cat) == before


def test_data_import_csv_slices_overlapping_by_100_rows_merge_with_100_duplicates(
    run_cli, shared_data: Path, tmp_path: Path
) -> None:
    src = shared_data / M1_CSV
    a = csv_slice(src, tmp_path / "a.csv", 0, 1000)
    b = csv_slice(src, tmp_path / "b.csv", 900, 2000)
    cat = str(tmp_path / "cat")

    code, out, err = run_cli(
        "data", "import", str(a), str(b), "--symbol", "EURUSD", "--tz", "UTC", "--catalog", cat, "--json"
    )

    assert code == 0, err
    assert [(r["rows_in"], r["rows_new"], r["duplicates"]) for r in json.loads(out)] == [
        (1000, 1000, 0),
        (1100, 1000, 100),
    ]
    assert info_json(run_cli, Path(cat), "EURUSD", "M1")["rows"] == 2000


def test_data_import_conflicting_values_exits_3_lists_times_and_keeps_catalog(
    run_cli, shared_data: Path, tmp_path: Path
) -> None:
    src = shared_data / M1_CSV
    a = csv_slice(src, tmp_path / "a.csv", 0, 1000)
    b = csv_slice(src, tmp_path / "b.csv", 900, 2000)
    lines = b.read_bytes().split(b"\r\n")
    for i in (1, 2):  # first two data rows of b: 2018.06.01 15:00 and 15:01 server time
        cells = lines[i].split(b"\t")
        cells[4] = b"0.5"  # low far below every other price
        lines[i] = b"\t".join(cells)
    b.write_bytes(b"\r\n".join(lines))
    cat = tmp_path / "cat"
    assert (
        run_cli("data", "import", str(a), "--symbol", "EURUSD", "--tz", "UTC", "--catalog", str(cat))[0] == 0
    )
    before = snapshot(cat)

    code, _, err = run_cli(
        "data", "import", str(b), "--symbol", "EURUSD", "--tz", "UTC", "--catalog", str(cat)
    )

    assert code == 3
    assert "2 time(s)" in err and "2018-06-01T15:00:00+00:00, 2018-06-01T15:01:00+00:00." in err
    assert "--on-conflict replace" in err
    assert snapshot(cat) == before


def test_data_validate_json_on_real_eurusd_reports_score_and_findings(
    run_cli, shared_data: Path, tmp_path: Path
) -> None:
    path = shared_data / "m1/EURUSD_M1_2018-2019.parquet"
    cat = str(tmp_path / "cat")
    assert run_cli("data", "import", str(path), "--catalog", cat)[0] == 0  # symbol from the file metadata
    expected = validate(read_m1_parquet(path, "EURUSD")).to_dict()

    code, out, err = run_cli("data", "validate", "EURUSD", "--catalog", cat, "--json")

    assert code == 0, err
    [rep] = json.loads(out)
    assert rep == expected
    assert (rep["symbol"], rep["timeframe"], rep["bars"]) == ("EURUSD", "M1", 745077)
    assert 0 < rep["score"] < 100 and rep["findings"]


def test_data_validate_min_health_101_exits_3(run_cli, shared_data: Path, tmp_path: Path) -> None:
    cat = str(tmp_path / "cat")
    assert (
        run_cli(
            "data", "import", str(shared_data / M1_CSV), "--symbol", "EURUSD", "--tz", "UTC", "--catalog", cat
        )[0]
        == 0
    )

    code, out, err = run_cli("data", "validate", "EURUSD", "--catalog", cat, "--min-health", "101")

    assert code == 3
    assert "Data health" in out
    assert "health below --min-health 101: EURUSD M1" in err


def test_data_resample_stores_h1_equal_to_resample_of_stored_m1(
    run_cli, shared_data: Path, tmp_path: Path
) -> None:
    cat = tmp_path / "cat"
    assert (
        run_cli("data", "import", str(shared_data / "m1/EURUSD_M1_2018-2019.parquet"), "--catalog", str(cat))[
            0
        ]
        == 0
    )
    args = (
        "data",
        "resample",
        "EURUSD",
        "--to",
        "H1,D1",
        "--server-tz",
        "Europe/Athens",
        "--catalog",
        str(cat),
    )

    code, out, err = run_cli(*args, "--json")
    again = run_cli(*args, "--json")

    assert code == 0, err
    c = Catalog(cat)
    m1 = c.load("EURUSD", Timeframe.M1)
    for tf in (Timeframe.H1, Timeframe.D1):
        want = resample(m1, tf, "Europe/Athens")
        got = c.load("EURUSD", tf)
        for f in BAR_FIELDS:
            np.testing.assert_array_equal(getattr(got, f), getattr(want, f), err_msg=f"{tf.name} {f}")
    first = json.loads(out)
    assert [(r["timeframe"], r["rows_new"]) for r in first] == [
        ("H1", first[0]["bars"]),
        ("D1", first[1]["bars"]),
    ]
    assert [(r["rows_new"], r["partitions_written"]) for r in json.loads(again[1])] == [(0, []), (0, [])]


def test_data_export_then_import_round_trips_identical_arrays(
    run_cli, shared_data: Path, tmp_path: Path
) -> None:
    cat1, cat2, out = tmp_path / "cat1", tmp_path / "cat2", tmp_path / "EURUSD_M1.csv"
    tz = ("--tz", "Europe/Athens")
    assert (
        run_cli(
            "data", "import", str(shared_data / M1_CSV), "--symbol", "EURUSD", *tz, "--catalog", str(cat1)
        )[0]
        == 0
    )

    code, _, err = run_cli(
        "data", "export", "EURUSD", "--timeframe", "M1", "--out", str(out), *tz, "--catalog", str(cat1)
    )
    assert code == 0, err
    code, _, err = run_cli("data", "import", str(out), "--symbol", "EURUSD", *tz, "--catalog", str(cat2))
    assert code == 0, err

    a, b = Catalog(cat1).load("EURUSD", "M1"), Catalog(cat2).load("EURUSD", "M1")
    for f in BAR_FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    code, out_json, _ = run_cli(
        "data", "import", str(out), "--symbol", "EURUSD", *tz, "--catalog", str(cat1), "--json"
    )
    assert code == 0
    assert json.loads(out_json)[0]["duplicates"] == 30203


def test_data_info_missing_symbol_exits_3_and_lists_what_exists(run_cli, tmp_path: Path) -> None:
    src = tmp_path / "x.csv"
    src.write_bytes(b"<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\r\n"
                    b"2024.01.02\t10:00:00\t1.1\t1.2\t1.0\t1.15\t5\t0\t7\r\n"
                    b"2024.01.02\t11:00:00\t1.15\t1.2\t1.1\t1.12\t6\t0\t8\r\n")  # fmt: skip
    cat = str(tmp_path / "cat")
    assert run_cli("data", "import", str(src), "--symbol", "EURUSD", "--tz", "UTC", "--catalog", cat)[0] == 0

    code, _, err = run_cli("data", "info", "GBPUSD", "--catalog", cat)
    code_tf, _, err_tf = run_cli("data", "info", "EURUSD", "--timeframe", "M1", "--catalog", cat)

    assert code == 3 and "no bars for symbol GBPUSD" in err and "the catalog holds: EURUSD (H1)" in err
    assert code_tf == 3 and "no M1 bars for EURUSD" in err_tf and "stored timeframes: H1" in err_tf


def test_data_commands_bad_input_exit_with_config_or_data_codes(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "x.csv"
    src.write_bytes(b"foo\tbar\r\n1\t2\r\n")
    monkeypatch.setenv("MT5TESTER_CATALOG", str(tmp_path / "envcat"))

    assert run_cli("data", "import", str(src), "--symbol", "EURUSD", "--timeframe", "M7")[0] == 2
    assert run_cli("data", "import", str(src), "--symbol", "EURUSD", "--tz", "Mars/Base")[0] == 2
    code, _, err = run_cli("data", "import", str(src), "--symbol", "EURUSD")
    assert code == 3 and "cannot detect the format" in err
    code, _, err = run_cli("data", "list")
    assert code == 3 and f"no catalog at {tmp_path / 'envcat'}" in err
    assert run_cli("data", "resample", "EURUSD", "--to", "M1")[0] == 2
