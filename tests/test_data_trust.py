"""Issue 12, points 12, 13, 14 and 21: data import and the catalog never change data without a word."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mt5tester.data.catalog import Catalog
from mt5tester.model.timeframe import Timeframe

from conftest import base_config, write_yaml

H1_CSV = "mt5_export/EURUSD_H1.csv"
US30 = "mt5_export/US30m_Daily_202401010000_202509080000.csv"
HEADER = b"<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\r\n"


def mt5_csv(path: Path, times: list[str]) -> Path:
    rows = [f"{t[:10]}\t{t[11:]}\t1.1\t1.2\t1.0\t1.15\t5\t0\t7\r\n".encode() for t in times]
    path.write_bytes(HEADER + b"".join(rows))
    return path


def imported(run_cli, *args: str) -> list[dict]:
    code, out, err = run_cli("data", "import", *args, "--json")
    assert code == 0, err
    return json.loads(out)


# ---- point 12: MT5 exports are in server time -------------------------------------------------------


def test_import_mt5_export_without_tz_exits_2_says_how_and_writes_nothing(
    run_cli, shared_data: Path, tmp_path: Path
) -> None:
    cat = tmp_path / "cat"
    for name in (H1_CSV, US30):
        code, _, err = run_cli("data", "import", str(shared_data / name), "--catalog", str(cat))
        assert code == 2
        assert f"{shared_data / name}: MT5 exports are in the broker's server time, not UTC" in err
        assert "--tz Europe/Athens" in err and "data.source_timezone" in err and "Traceback" not in err
    assert not cat.exists() or not any(cat.rglob("*.parquet"))


@pytest.mark.parametrize(("section", "key"), [("data", "source_timezone"), ("backtest", "server_timezone")])
def test_import_mt5_export_takes_the_zone_from_the_config(
    run_cli, shared_data: Path, tmp_path: Path, section: str, key: str
) -> None:
    raw = {
        "backtest": {"start": "2025-07-01", "end": "2025-08-01", "symbols": ["EURUSD"]},
        "strategies": [{"class": "ma_cross"}],
    }
    raw.setdefault(section, {})[key] = "Europe/Athens"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(raw))

    [r] = imported(run_cli, str(shared_data / H1_CSV), "--config", str(cfg), "--catalog", str(tmp_path / "c"))

    info = Catalog(tmp_path / "c").info("EURUSD", "H1")
    assert (r["symbol"], r["timeframe"], r["rows_new"]) == ("EURUSD", "H1", 3608)
    assert info["first"] == "2025-06-22T21:00:00+00:00"  # 2025-06-23 00:00 EEST
    assert info["sources"][0]["tz"] == "Europe/Athens"


def test_import_with_a_config_naming_no_zone_still_exits_2(
    run_cli, shared_data: Path, tmp_path: Path
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "backtest": {"start": "2025-07-01", "end": "2025-08-01", "symbols": ["EURUSD"]},
        "strategies": [{"class": "ma_cross"}],
    }))  # fmt: skip

    code, _, err = run_cli("data", "import", str(shared_data / H1_CSV), "--config", str(cfg),
                           "--catalog", str(tmp_path / "c"))  # fmt: skip

    assert code == 2 and "--tz" in err


def test_import_naive_parquet_without_tz_exits_2_and_with_tz_converts(run_cli, tmp_path: Path) -> None:
    times = pd.date_range("2024-01-02 10:00", periods=3, freq="h")  # naive
    df = pd.DataFrame({"time": times, "open": 1.1, "high": 1.2, "low": 1.0, "close": 1.15})
    path = tmp_path / "EURUSD_H1.parquet"
    df.to_parquet(path)

    code, _, err = run_cli("data", "import", str(path), "--catalog", str(tmp_path / "c"))
    assert code == 2 and "without a time zone" in err and "--tz" in err

    [r] = imported(run_cli, str(path), "--tz", "+02:00", "--catalog", str(tmp_path / "c"))
    assert (r["symbol"], r["timeframe"], r["rows_new"]) == ("EURUSD", "H1", 3)
    assert Catalog(tmp_path / "c").info("EURUSD", "H1")["first"] == "2024-01-02T08:00:00+00:00"


# ---- point 13: replace clears the whole range ---------------------------------------------------------


def test_reimport_with_right_tz_and_replace_leaves_exactly_the_file(
    run_cli, shared_data: Path, tmp_path: Path
) -> None:
    cat = tmp_path / "cat"
    src = str(shared_data / H1_CSV)
    imported(run_cli, src, "--tz", "UTC", "--catalog", str(cat))  # the mistake: server time read as UTC

    [r] = imported(run_cli, src, "--tz", "Europe/Athens", "--on-conflict", "replace", "--catalog", str(cat))

    stored = Catalog(cat).load("EURUSD", Timeframe.H1)
    from mt5tester.data.importers import read_mt5_bars_csv

    want = read_mt5_bars_csv(src, "EURUSD", Timeframe.H1, "Europe/Athens")
    assert len(stored) == 3608 and np.array_equal(stored.time, want.time)
    assert np.array_equal(stored.close, want.close)
    assert r["removed"] == 84  # 82 Friday-night bars inside the range and the last 2 after it


def test_replace_of_a_slice_keeps_rows_outside_its_range(run_cli, tmp_path: Path) -> None:
    cat = str(tmp_path / "cat")
    a = mt5_csv(tmp_path / "a.csv", [f"2024.01.02 {h:02d}:00:00" for h in range(10)])
    b = mt5_csv(tmp_path / "b.csv", ["2024.01.02 03:00:00", "2024.01.02 05:00:00"])
    imported(run_cli, str(a), "--symbol", "EURUSD", "--tz", "UTC", "--catalog", cat)

    [r] = imported(run_cli, str(b), "--symbol", "EURUSD", "--timeframe", "H1", "--tz", "UTC", "--on-conflict", "replace",
                   "--catalog", cat)  # fmt: skip

    hours = (np.asarray(Catalog(cat).load("EURUSD", "H1").time) // 3_600_000_000_000) % 24
    assert hours.tolist() == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert (r["removed"], r["duplicates"]) == (1, 2)


# ---- point 14: names from MT5 file names, broker spellings ---------------------------------------------


def test_import_reads_symbol_and_timeframe_from_mt5_file_names(
    run_cli, shared_data: Path, tmp_path: Path
) -> None:
    cat = str(tmp_path / "cat")
    rows = imported(
        run_cli, str(shared_data / H1_CSV), str(shared_data / US30), "--tz", "UTC", "--catalog", cat
    )
    assert [(r["symbol"], r["timeframe"], r["rows_new"]) for r in rows] == [
        ("EURUSD", "H1", 3608),
        ("US30m", "D1", 527),
    ]


def test_import_name_that_does_not_parse_needs_symbol(run_cli, shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "mt5_export/EURUSD_M1_201806_renamed_header.csv"
    code, _, err = run_cli("data", "import", str(path), "--tz", "UTC", "--catalog", str(tmp_path / "c"))
    assert code == 2 and f"{path}: pass --symbol" in err


@pytest.mark.parametrize("symbol", ["EURUSD.a", "XAUUSD.PRO", "GBPUSD DFX 10 Index", "#US30", "EURUSD+"])
def test_broker_symbol_spellings_work_in_every_data_command(run_cli, tmp_path: Path, symbol: str) -> None:
    cat = str(tmp_path / "cat")
    m1 = mt5_csv(tmp_path / f"{symbol}_M1.csv", [f"2024.01.02 10:{m:02d}:00" for m in range(60)])

    [r] = imported(run_cli, str(m1), "--tz", "UTC", "--catalog", cat)
    assert (r["symbol"], r["timeframe"], r["rows_new"]) == (symbol, "M1", 60)
    code, out, err = run_cli("data", "list", "--catalog", cat, "--json")
    assert code == 0 and [i["symbol"] for i in json.loads(out)] == [symbol]
    for args in (
        ("info", symbol),
        ("validate", symbol),
        ("resample", symbol, "--to", "H1"),
        ("export", symbol, "--timeframe", "H1", "--out", str(tmp_path / "out.csv")),
        ("delete", symbol, "--timeframe", "H1", "--yes"),
    ):
        code, _, err = run_cli("data", *args, "--catalog", cat)
        assert code == 0, (args, err)


# ---- point 21: order, grid, header-only, duplicates ------------------------------------------------------


def test_import_reports_rows_out_of_order_with_lines_and_stores_them_sorted(run_cli, tmp_path: Path) -> None:
    src = mt5_csv(tmp_path / "x.csv", ["2024.01.02 10:00:00", "2024.01.02 12:00:00", "2024.01.02 11:00:00",
                                      "2024.01.02 13:00:00"])  # fmt: skip
    code, out, err = run_cli("data", "import", str(src), "--symbol", "EURUSD", "--tz", "UTC",
                             "--catalog", str(tmp_path / "c"))  # fmt: skip
    assert code == 0, err
    assert (
        "x.csv: 1 row(s) out of time order (stored sorted by time): line 4 (2024-01-02T11:00:00+00:00)" in out
    )

    [r] = imported(run_cli, str(src), "--symbol", "EURUSD", "--tz", "UTC", "--catalog", str(tmp_path / "d"))
    assert r["out_of_order"] == [{"line": 4, "time": "2024-01-02T11:00:00+00:00"}]
    hours = (np.asarray(Catalog(tmp_path / "d").load("EURUSD", "H1").time) // 3_600_000_000_000) % 24
    assert hours.tolist() == [10, 11, 12, 13]


@pytest.mark.parametrize("tf", [None, "H1"])
def test_import_refuses_an_h1_bar_off_the_hour_naming_line_and_time(
    run_cli, tmp_path: Path, tf: str | None
) -> None:
    src = mt5_csv(tmp_path / "EURUSD_H1.csv", ["2024.01.02 10:00:00", "2024.01.02 11:00:00",
                                               "2024.01.02 11:17:00", "2024.01.02 12:00:00"])  # fmt: skip
    cat = tmp_path / "c"
    code, _, err = run_cli("data", "import", str(src), *(["--timeframe", tf] if tf else []), "--tz", "+02:00",
                           "--catalog", str(cat))  # fmt: skip
    assert code == 3
    assert "1 bar(s) are not on the H1 grid" in err and "line 4 (2024-01-02T09:17:00 UTC)" in err
    assert not cat.exists() or not any(cat.rglob("*.parquet"))


def test_import_d1_bar_off_server_midnight_is_refused(run_cli, tmp_path: Path) -> None:
    src = tmp_path / "US30m_Daily.csv"
    src.write_bytes(b"<DATE>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\r\n"
                    b"2024.01.02\t1\t2\t0.5\t1.5\t5\t0\t7\r\n")  # fmt: skip
    assert run_cli("data", "import", str(src), "--tz", "UTC", "--catalog", str(tmp_path / "c"))[0] == 0
    src2 = mt5_csv(tmp_path / "X_Daily.csv", ["2024.01.02 00:00:00", "2024.01.03 06:00:00"])
    code, _, err = run_cli("data", "import", str(src2), "--tz", "UTC", "--catalog", str(tmp_path / "c"))
    assert code == 3 and "not on the D1 grid" in err and "line 3" in err


def test_import_header_only_file_names_line_1(run_cli, tmp_path: Path) -> None:
    src = tmp_path / "EURUSD_H1.csv"
    src.write_bytes(HEADER)
    code, _, err = run_cli("data", "import", str(src), "--tz", "UTC", "--catalog", str(tmp_path / "c"))
    assert code == 3 and f"{src}: line 1: only a header, no data rows" in err


def test_import_lists_duplicates_with_their_times(run_cli, tmp_path: Path) -> None:
    cat = str(tmp_path / "cat")
    a = mt5_csv(tmp_path / "a.csv", [f"2024.01.02 {h:02d}:00:00" for h in range(5)])
    b = mt5_csv(tmp_path / "b.csv", [f"2024.01.02 {h:02d}:00:00" for h in (3, 4, 5, 5)])
    imported(run_cli, str(a), "--symbol", "EURUSD", "--tz", "UTC", "--catalog", cat)

    [r] = imported(run_cli, str(b), "--symbol", "EURUSD", "--tz", "UTC", "--catalog", cat)

    assert r["duplicates"] == 3
    assert r["duplicate_ranges"] == [
        {"first": "2024-01-02T03:00:00+00:00", "last": "2024-01-02T04:00:00+00:00", "rows": 2}
    ]
    assert r["repeated_in_file"] == [{"line": 5, "time": "2024-01-02T05:00:00+00:00"}]
    _, out, _ = run_cli("data", "import", str(b), "--symbol", "EURUSD", "--tz", "UTC", "--catalog", cat)
    assert (
        "already stored with identical values: 2024-01-02T03:00:00+00:00 .. 2024-01-02T05:00:00+00:00 (3 rows)"
        in out
    )


def test_data_delete_range_needs_yes_off_a_terminal_and_removes_only_that_range(
    run_cli, tmp_path: Path
) -> None:
    cat = str(tmp_path / "cat")
    src = mt5_csv(tmp_path / "EURUSD_H1.csv", [f"2024.01.02 {h:02d}:00:00" for h in range(10)])
    imported(run_cli, str(src), "--tz", "UTC", "--catalog", cat)
    args = ("data", "delete", "EURUSD", "--timeframe", "H1", "--start", "2024-01-02 03:00",
            "--end", "2024-01-02 05:00", "--catalog", cat)  # fmt: skip

    code, _, err = run_cli(*args)  # pytest's stdin is not a terminal
    assert code == 2 and "needs --yes" in err
    assert len(Catalog(cat).load("EURUSD", "H1")) == 10

    code, out, err = run_cli(*args, "--yes", "--json")
    assert code == 0, err
    assert json.loads(out) == {"symbol": "EURUSD", "removed": {"H1": 2}}
    hours = (np.asarray(Catalog(cat).load("EURUSD", "H1").time) // 3_600_000_000_000) % 24
    assert hours.tolist() == [0, 1, 2, 5, 6, 7, 8, 9]


def test_data_delete_whole_symbol_then_info_exits_3(run_cli, tmp_path: Path) -> None:
    cat = str(tmp_path / "cat")
    imported(run_cli, str(mt5_csv(tmp_path / "EURUSD_H1.csv", ["2024.01.02 10:00:00"])), "--timeframe", "H1",
             "--tz", "UTC", "--catalog", cat)  # fmt: skip
    imported(run_cli, str(mt5_csv(tmp_path / "EURUSD_M1.csv", ["2024.01.02 10:00:00"])), "--timeframe", "M1",
             "--tz", "UTC", "--catalog", cat)  # fmt: skip

    code, out, err = run_cli("data", "delete", "EURUSD", "--yes", "--catalog", cat)

    assert code == 0, err
    assert "deleted from" in out and "EURUSD 1 M1, 1 H1 row(s)" in out
    code, _, err = run_cli("data", "info", "EURUSD", "--catalog", cat)
    assert code == 3 and "no bars for symbol EURUSD" in err
    code, _, err = run_cli("data", "delete", "GBPUSD", "--yes", "--catalog", cat)
    assert code == 3 and "GBPUSD" in err


# ---- point 13 / 21: data validate -------------------------------------------------------------------------


def test_data_validate_flags_bars_in_the_weekend_close_with_times(
    run_cli, shared_data: Path, tmp_path: Path
) -> None:
    cat = str(tmp_path / "cat")
    imported(run_cli, str(shared_data / H1_CSV), "--tz", "UTC", "--catalog", cat)  # server time read as UTC

    code, out, err = run_cli("data", "validate", "EURUSD", "--timeframe", "H1", "--catalog", cat, "--json")

    assert code == 0, err
    [rep] = json.loads(out)
    closed = [f for f in rep["findings"] if f["kind"] == "closed_market"]
    assert rep["counts"]["closed_market"] == 30 and rep["affected"]["closed_market"] == 48
    assert closed[0] == {  # Friday 2025-06-27 18:00 and 19:00 New York (EDT)
        "kind": "closed_market",
        "start": "2025-06-27T22:00:00+00:00",
        "end": "2025-06-27T23:00:00+00:00",
        "count": 2,
        "detail": "bar inside the weekend close",
    }


def test_validate_right_zone_has_no_closed_market_bars(shared_data: Path) -> None:
    from mt5tester.data.health import validate
    from mt5tester.data.importers import read_mt5_bars_csv

    bars = read_mt5_bars_csv(shared_data / H1_CSV, "EURUSD", None, "Europe/Athens")
    assert validate(bars).counts["closed_market"] == 0


def test_validate_flags_off_grid_and_out_of_order_bars_with_times() -> None:
    from mt5tester.data.health import validate
    from mt5tester.model.bars import Bars

    hour = 3_600_000_000_000
    t0 = 1_704_189_600_000_000_000  # 2024-01-02 10:00 UTC, a Tuesday
    time = np.array([t0, t0 + 2 * hour, t0 + hour + 17 * 60_000_000_000, t0 + 3 * hour], np.int64)
    n = len(time)
    bars = Bars("EURUSD", Timeframe.H1, time, np.full(n, 1.1), np.full(n, 1.2), np.full(n, 1.0),
                np.full(n, 1.15), np.zeros(n, np.int64), np.zeros(n, np.int32))  # fmt: skip

    rep = validate(bars).to_dict()

    got = {(f["kind"], f["start"], f["count"]) for f in rep["findings"]}
    assert ("misaligned", "2024-01-02T11:17:00+00:00", 1) in got
    assert ("non_monotonic", "2024-01-02T11:17:00+00:00", 1) in got
    assert rep["counts"]["misaligned"] == 1 and rep["score"] < 60


def test_backtest_runs_broker_symbol_spellings_from_files_and_catalog(
    run_cli, demo_data: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("EURUSD.a", "GBPUSD DFX 10 Index"):
        shutil.copy(demo_data / "EURUSD_M1_demo.parquet", data / f"{name}_M1_demo.parquet")
    raw = base_config(data, tmp_path, symbols=["EURUSD.a", "GBPUSD DFX 10 Index"])
    spec = {"digits": 5, "trade_contract_size": 100000, "currency_base": "GBP", "currency_profit": "USD",
            "currency_margin": "GBP"}  # fmt: skip
    raw["symbols"] = {"GBPUSD DFX 10 Index": spec}  # EURUSD.a takes EURUSD's built-in defaults
    cfg = write_yaml(tmp_path / "c.yaml", raw)

    code, out, err = run_cli("backtest", "--config", str(cfg), "--symbols", "GBPUSD DFX 10 Index,EURUSD.a")
    assert code == 0, err
    assert "EURUSD.a" in out and "GBPUSD DFX 10 Index" in out

    cat = tmp_path / "cat"
    imported(run_cli, str(data / "EURUSD.a_M1_demo.parquet"), "--symbol", "EURUSD.a", "--catalog", str(cat))
    raw["data"] = {"source": "catalog", "catalog": str(cat)}
    raw["symbols"] = {}
    code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "d.yaml", raw)), "--symbols",
                           "EURUSD.a")  # fmt: skip
    assert code == 0, err


def test_missing_symbol_suggests_the_broker_spelling_in_the_catalog(run_cli, tmp_path: Path) -> None:
    cat = str(tmp_path / "cat")
    imported(run_cli, str(mt5_csv(tmp_path / "EURUSD.a_H1.csv", ["2024.01.02 10:00:00"])), "--tz", "UTC",
             "--catalog", cat)  # fmt: skip
    code, _, err = run_cli("data", "info", "EURUSD", "--catalog", cat)
    assert code == 3 and "(did you mean EURUSD.a?)" in err


def test_data_validate_a_file_reports_order_grid_and_repeats_with_lines(run_cli, tmp_path: Path) -> None:
    src = mt5_csv(tmp_path / "EURUSD_H1.csv", ["2024.01.02 10:00:00", "2024.01.02 12:00:00",
                                               "2024.01.02 11:00:00", "2024.01.02 13:17:00",
                                               "2024.01.02 14:00:00", "2024.01.02 14:00:00"])  # fmt: skip

    code, out, err = run_cli("data", "validate", str(src), "--tz", "UTC", "--json")

    assert code == 0, err
    [rep] = json.loads(out)
    got = [(f["kind"], f.get("lines"), f["start"]) for f in rep["findings"]]
    assert ("non_monotonic", [4, 4], "2024-01-02T11:00:00+00:00") in got
    assert ("misaligned", [5, 5], "2024-01-02T13:17:00+00:00") in got
    assert ("duplicate_time", [7, 7], "2024-01-02T14:00:00+00:00") in got
    assert (rep["file"], rep["symbol"], rep["timeframe"]) == (str(src), "EURUSD", "H1")

    code, out, _ = run_cli("data", "validate", str(src), "--tz", "UTC")
    assert code == 0
    assert "EURUSD_H1.csv: misaligned line 5 2024-01-02T13:17:00+00:00 x1: open time off the H1 grid" in out
    code, _, err = run_cli("data", "validate", str(src))
    assert code == 2 and "MT5 exports are in the broker's server time" in err


def test_import_reports_mt5_ticks_out_of_order_with_lines(run_cli, tmp_path: Path) -> None:
    src = tmp_path / "EURUSD_202401020000_202401030000.csv"
    src.write_bytes(b"<DATE>\t<TIME>\t<BID>\t<ASK>\t<LAST>\t<VOLUME>\t<FLAGS>\r\n"
                    b"2024.01.02\t10:00:00.000\t1.1\t1.2\t\t\t6\r\n"
                    b"2024.01.02\t10:00:02.000\t1.1\t1.2\t\t\t6\r\n"
                    b"2024.01.02\t10:00:01.000\t1.1\t1.2\t\t\t6\r\n")  # fmt: skip

    [r] = imported(run_cli, str(src), "--tz", "UTC", "--catalog", str(tmp_path / "c"))

    assert (r["symbol"], r["timeframe"], r["rows_new"]) == ("EURUSD", "TICKS", 3)
    assert r["out_of_order"] == [{"line": 4, "time": "2024-01-02T10:00:01+00:00"}]


def test_replace_clears_stale_ticks_in_range_and_a_second_replace_writes_nothing(tmp_path: Path) -> None:
    from mt5tester.model.ticks import Ticks

    def ticks(ms: list[int]) -> Ticks:
        n = len(ms)
        t = np.asarray(ms, np.int64) * 1_000_000 + 1_704_189_600_000_000_000
        return Ticks("EURUSD", t, np.full(n, 1.1), np.full(n, 1.2), np.zeros(n), np.zeros(n, np.int64),
                     np.full(n, 6, np.int32))  # fmt: skip

    cat = Catalog(tmp_path / "cat")
    cat.import_ticks(ticks([0, 100, 200, 300, 400]), "a")

    res = cat.import_ticks(ticks([100, 150, 300]), "b", on_conflict="replace")
    again = cat.import_ticks(ticks([100, 150, 300]), "b", on_conflict="replace")

    kept = (np.asarray(cat.load_ticks("EURUSD").time) - 1_704_189_600_000_000_000) // 1_000_000
    assert kept.tolist() == [0, 100, 150, 300, 400]
    assert (res.rows_new, res.duplicates, res.removed) == (1, 2, 1)
    assert (again.rows_new, again.removed, again.partitions_written) == (0, 0, ())


def test_import_refuses_a_time_repeated_with_other_values_naming_both_lines(run_cli, tmp_path: Path) -> None:
    src = tmp_path / "EURUSD_H1.csv"
    src.write_bytes(HEADER + b"2024.01.02\t10:00:00\t1.1\t1.2\t1.0\t1.15\t5\t0\t7\r\n"
                    b"2024.01.02\t11:00:00\t1.1\t1.2\t1.0\t1.15\t5\t0\t7\r\n"
                    b"2024.01.02\t10:00:00\t1.1\t1.3\t1.0\t1.15\t5\t0\t7\r\n")  # fmt: skip
    code, _, err = run_cli("data", "import", str(src), "--tz", "UTC", "--catalog", str(tmp_path / "c"))
    assert code == 3
    assert (
        "1 time(s) appear more than once with different values: lines 2 and 4 (2024-01-02T10:00:00 UTC)"
        in err
    )


def test_import_naive_tick_parquet_needs_tz(run_cli, tmp_path: Path) -> None:
    times = pd.date_range("2024-01-02 10:00", periods=3, freq="s")  # naive
    path = tmp_path / "EURUSD_ticks.parquet"
    pd.DataFrame({"time": times, "bid": 1.1, "ask": 1.2}).to_parquet(path)

    code, _, err = run_cli(
        "data", "import", str(path), "--symbol", "EURUSD", "--catalog", str(tmp_path / "c")
    )
    assert code == 2 and "without a time zone" in err

    [r] = imported(
        run_cli, str(path), "--symbol", "EURUSD", "--tz", "+02:00", "--catalog", str(tmp_path / "c")
    )
    assert (r["timeframe"], r["rows_new"]) == ("TICKS", 3)
    assert Catalog(tmp_path / "c").info("EURUSD", "TICKS")["first"] == "2024-01-02T08:00:00+00:00"


def test_validate_does_not_flag_a_symbol_that_trades_all_weekend() -> None:
    from mt5tester.data.health import validate
    from mt5tester.model.bars import Bars

    hour = 3_600_000_000_000
    time = 1_704_067_200_000_000_000 + np.arange(24 * 14, dtype=np.int64) * hour  # 2024-01-01: two weeks
    n = len(time)
    bars = Bars("BTCUSD", Timeframe.H1, time, np.full(n, 1.1), np.full(n, 1.2), np.full(n, 1.0),
                np.linspace(1.1, 1.19, n), np.zeros(n, np.int64), np.zeros(n, np.int32))  # fmt: skip

    assert validate(bars).counts["closed_market"] == 0
    assert validate(bars.slice(0, 24 * 4 + 23)).counts["closed_market"] == 0  # Monday .. Friday 23:00 UTC
    friday_evening = np.concatenate([time[: 24 * 4 + 20], [time[24 * 4 + 23]]])  # + Fri 23:00 UTC = 18:00 EST
    m = len(friday_evening)
    late = Bars("EURUSD", Timeframe.H1, friday_evening, np.full(m, 1.1), np.full(m, 1.2), np.full(m, 1.0),
                np.linspace(1.1, 1.19, m), np.zeros(m, np.int64), np.zeros(m, np.int32))  # fmt: skip
    assert validate(late).counts["closed_market"] == 1


def test_config_refuses_a_symbol_no_file_name_can_hold_and_keeps_broker_spellings(
    run_cli, demo_data: Path, tmp_path: Path
) -> None:
    raw = base_config(demo_data, tmp_path, symbols=["EUR/USD"])
    code, _, err = run_cli("config", "check", str(write_yaml(tmp_path / "c.yaml", raw)))
    assert code == 2 and "invalid symbol name 'EUR/USD' (contains '/')" in err

    raw = base_config(demo_data, tmp_path, symbols=[" EURUSD.a ", "XAUUSD.PRO"])
    code, out, err = run_cli("config", "check", str(write_yaml(tmp_path / "d.yaml", raw)))
    assert code == 0, err
    assert "symbols EURUSD.a, XAUUSD.PRO" in out


def test_config_zone_applies_to_undeclared_clocks_only(run_cli, shared_data: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "backtest": {"start": "2025-07-01", "end": "2025-08-01", "symbols": ["EURUSD"]},
        "data": {"source_timezone": "+03:00"},
        "strategies": [{"class": "ma_cross"}],
    }))  # fmt: skip
    naive = tmp_path / "EURUSD_H1.parquet"
    pd.DataFrame({"time": pd.date_range("2024-01-02 10:00", periods=3, freq="h"), "open": 1.1, "high": 1.2,
                  "low": 1.0, "close": 1.15}).to_parquet(naive)  # fmt: skip
    cat = str(tmp_path / "cat")

    rows = imported(run_cli, str(naive), str(shared_data / "ticks/EURUSD_ticks_2014-05-01_2014-05-15_oanda.parquet"),
                    "--config", str(cfg), "--catalog", cat)  # fmt: skip

    assert [(r["timeframe"], r["rows_new"]) for r in rows] == [("H1", 3), ("TICKS", 532903)]
    info = {tf: Catalog(cat).info("EURUSD", tf) for tf in ("H1", "TICKS")}
    assert info["H1"]["first"] == "2024-01-02T07:00:00+00:00"  # 10:00 at +03:00
    assert info["TICKS"]["first"] == "2014-05-01T00:00:00.292000+00:00"  # tz-aware: kept as stored
    assert [s["tz"] for s in info["H1"]["sources"]] == ["+03:00"]
    assert [s["tz"] for s in info["TICKS"]["sources"]] == ["UTC"]
