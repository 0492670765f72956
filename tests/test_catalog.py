from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mt5tester.data import catalog as catalog_mod
from mt5tester.data.catalog import Catalog
from mt5tester.data.store import read_m1_parquet
from mt5tester.errors import ConfigError, DataError
from mt5tester.model.bars import Bars
from mt5tester.model.ticks import Ticks
from mt5tester.model.timeframe import Timeframe

MIN = 60 * 1_000_000_000
BAR_FIELDS = ("time", "open", "high", "low", "close", "tick_volume", "spread")
TICK_FIELDS = ("time", "bid", "ask", "last", "volume", "flags")


def ns(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value)


def make_bars(start: str, n: int, symbol: str = "EURUSD", tf: Timeframe = Timeframe.M1) -> Bars:
    """n bars every tf period from start; prices unique per bar so any change is visible."""
    t = ns(start) + np.arange(n, dtype=np.int64) * tf.period_ns
    base = 1.1 + np.arange(n) * 1e-5
    return Bars(
        symbol,
        tf,
        t,
        base,
        base + 2e-4,
        base - 2e-4,
        base + 1e-4,
        np.arange(n, dtype=np.int64) + 10,
        np.full(n, 7, np.int32),
    )


def with_close(bars: Bars, idx: list[int], delta: float) -> Bars:
    close = bars.close.copy()
    close[idx] += delta
    high = np.maximum(bars.high, close)
    return Bars(
        bars.symbol,
        bars.timeframe,
        bars.time,
        bars.open,
        high,
        bars.low,
        close,
        bars.tick_volume,
        bars.spread,
    )


def assert_same_bars(a: Bars, b: Bars) -> None:
    assert len(a) == len(b)
    for f in BAR_FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under root (temp files included): sha256 and mtime."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_import_bars_across_new_year_writes_one_partition_per_year(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    bars = make_bars("2018-12-31 23:00", 120)

    res = cat.import_bars(bars, "synthetic")

    assert (res.symbol, res.timeframe, res.rows_in, res.rows_new, res.duplicates) == (
        "EURUSD",
        "M1",
        120,
        120,
        0,
    )
    assert res.partitions_written == (
        "bars/symbol=EURUSD/timeframe=M1/year=2018.parquet",
        "bars/symbol=EURUSD/timeframe=M1/year=2019.parquet",
    )
    assert pq.read_metadata(tmp_path / res.partitions_written[0]).num_rows == 60
    schema = pq.read_schema(tmp_path / res.partitions_written[1])
    assert [str(t) for t in schema.types] == [
        "timestamp[ns, tz=UTC]", "double", "double", "double", "double", "int64", "int32"
    ]  # fmt: skip
    loaded = cat.load("EURUSD", Timeframe.M1)
    assert_same_bars(loaded, bars)
    assert loaded.time.flags.c_contiguous and not loaded.time.flags.writeable
    assert cat.symbols() == ["EURUSD"]
    assert cat.timeframes("EURUSD") == [Timeframe.M1]


def test_import_bars_same_bars_again_is_idempotent_and_touches_no_file(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    bars = make_bars("2018-12-31 23:00", 120)
    cat.import_bars(bars, "synthetic")
    before = snapshot(tmp_path)

    res = cat.import_bars(bars, "synthetic")

    assert (res.rows_new, res.duplicates, res.partitions_written) == (0, 120, ())
    assert snapshot(tmp_path) == before


def test_import_bars_overlapping_slices_counts_overlap_as_duplicates(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    bars = make_bars("2019-03-01", 500)
    cat.import_bars(bars.slice(0, 300), "a")

    res = cat.import_bars(bars.slice(200, 500), "b")

    assert (res.rows_in, res.rows_new, res.duplicates) == (300, 200, 100)
    assert_same_bars(cat.load("EURUSD", "M1"), bars)
    sources = [s["source"] for s in cat.info("EURUSD", "M1")["sources"]]
    assert sorted(sources) == ["a", "b"]


def test_import_bars_conflicting_values_raise_listing_times_and_change_nothing(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    bars = make_bars("2018-12-31 23:00", 120)
    cat.import_bars(bars, "a")
    before = snapshot(tmp_path)
    changed = with_close(bars, [5, 70, 71], 1e-3)

    with pytest.raises(DataError) as exc:
        cat.import_bars(changed, "b")

    msg = str(exc.value)
    assert "3 time(s)" in msg
    assert "2018-12-31T23:05:00+00:00, 2019-01-01T00:10:00+00:00, 2019-01-01T00:11:00+00:00" in msg
    assert "Nothing was written" in msg
    assert snapshot(tmp_path) == before


def test_import_bars_conflict_with_replace_overwrites_the_stored_rows(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    bars = make_bars("2018-12-31 23:00", 120)
    cat.import_bars(bars, "a")
    changed = with_close(bars, [5, 70, 71], 1e-3)

    res = cat.import_bars(changed.slice(0, 100), "b", on_conflict="replace")

    assert (res.rows_new, res.duplicates, res.replaced) == (0, 97, 3)
    assert_same_bars(cat.load("EURUSD", "M1"), changed)


def test_import_bars_writer_fails_on_second_partition_leaves_catalog_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cat = Catalog(tmp_path)
    bars = make_bars("2018-12-31 22:00", 240)
    cat.import_bars(bars.slice(0, 60), "a")  # 2018 partition only
    cat.import_bars(bars.slice(180, 240), "a")  # 2019 partition only
    before = snapshot(tmp_path)
    real = catalog_mod._write_parquet
    calls: list[Path] = []

    def failing(table: object, path: Path) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full (injected)")
        real(table, path)  # type: ignore[arg-type]

    monkeypatch.setattr(catalog_mod, "_write_parquet", failing)

    with pytest.raises(OSError, match="injected"):
        cat.import_bars(bars, "b")

    assert len(calls) == 2
    assert snapshot(tmp_path) == before  # no partition replaced, no temp file left
    monkeypatch.setattr(catalog_mod, "_write_parquet", real)
    assert cat.import_bars(bars, "b").rows_new == 120


def test_import_bars_repeated_time_in_input_identical_is_duplicate_different_is_error(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    b = make_bars("2019-01-02", 4)
    idx = np.array([0, 1, 1, 2, 3])
    repeated = Bars("EURUSD", Timeframe.M1, *(getattr(b, f)[idx] for f in BAR_FIELDS))

    res = cat.import_bars(repeated, "a")

    assert (res.rows_in, res.rows_new, res.duplicates) == (5, 4, 1)
    close = repeated.close.copy()
    close[2] += 1e-4
    bad = Bars("EURUSD", Timeframe.M1, repeated.time, repeated.open, repeated.high + 1e-3, repeated.low, close,
               repeated.tick_volume, repeated.spread)  # fmt: skip
    with pytest.raises(DataError, match=r"appear more than once with different values: 2019-01-02T00:01:00"):
        Catalog(tmp_path / "other").import_bars(bad, "b")


def test_load_range_opens_only_the_years_it_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cat = Catalog(tmp_path)
    bars = make_bars("2017-12-31 12:00", 36 + 3 * 24 * 365, tf=Timeframe.M20)  # .. 2018-12-31 23:40
    bars2 = make_bars("2019-06-01", 10, tf=Timeframe.M20)
    cat.import_bars(bars, "a")
    cat.import_bars(bars2, "a")
    opened: list[str] = []
    real = Catalog._read_table

    def spy(path: Path, columns: list[str]) -> object:
        opened.append(path.name)
        return real(path, columns)

    monkeypatch.setattr(Catalog, "_read_table", staticmethod(spy))

    got = cat.load("EURUSD", "M20", ns("2018-03-01"), ns("2018-03-02"))

    assert set(opened) == {"year=2018.parquet"}
    assert len(got) == 72
    assert got.time[0] == ns("2018-03-01") and got.time[-1] == ns("2018-03-01 23:40")
    (tmp_path / "bars/symbol=EURUSD/timeframe=M20/year=2017.parquet").unlink()
    (tmp_path / "bars/symbol=EURUSD/timeframe=M20/year=2019.parquet").unlink()
    assert len(cat.load("EURUSD", "M20", ns("2018-01-01"), ns("2019-01-01"))) == 3 * 24 * 365


def test_load_missing_symbol_timeframe_or_range_raises_naming_what_exists(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    cat.import_bars(make_bars("2019-01-02", 10), "a")

    with pytest.raises(DataError, match=r"no bars for symbol GBPUSD .* the catalog holds: EURUSD \(M1\)"):
        cat.load("GBPUSD", "M1")
    with pytest.raises(DataError, match=r"did you mean EURUSD"):
        cat.load("eurusd", "M1")
    with pytest.raises(DataError, match=r"no H1 bars for EURUSD .* stored timeframes: M1; .*--to H1"):
        cat.load("EURUSD", "H1")
    with pytest.raises(DataError, match=r"no EURUSD M1 bars in \[2020-01-01T00:00:00\+00:00, -inf\).*"
                                        r"stored: 2019-01-02T00:00:00\+00:00 \.\. 2019-01-02T00:09:00\+00:00"):  # fmt: skip
        cat.load("EURUSD", "M1", ns("2020-01-01"))
    with pytest.raises(ConfigError, match="invalid symbol"):
        cat.import_bars(make_bars("2019-01-02", 1, symbol="../x"), "a")


def test_import_ticks_same_millisecond_groups_dedupe_and_conflict(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    t = np.array([ns("2014-05-01") + k for k in (0, 1_000_000, 1_000_000, 2_000_000)], np.int64)
    ticks = Ticks("EURUSD", t, np.array([1.1, 1.2, 1.3, 1.4]), np.array([1.2, 1.3, 1.4, 1.5]),
                  np.zeros(4), np.zeros(4, np.int64), np.array([6, 2, 2, 6], np.int32))  # fmt: skip

    first = cat.import_ticks(ticks, "a")
    again = cat.import_ticks(ticks, "a")

    assert first.partitions_written == ("ticks/symbol=EURUSD/year=2014/month=05.parquet",)
    assert (again.rows_new, again.duplicates, again.partitions_written) == (0, 4, ())
    loaded = cat.load_ticks("EURUSD", ns("2014-05-01"), ns("2014-05-02"))
    for f in TICK_FIELDS:
        np.testing.assert_array_equal(getattr(loaded, f), getattr(ticks, f))
    one = Ticks("EURUSD", t[1:2], ticks.bid[1:2], ticks.ask[1:2], ticks.last[1:2], ticks.volume[1:2],
                ticks.flags[1:2])  # fmt: skip
    with pytest.raises(DataError, match=r"1 time\(s\) .* 2014-05-01T00:00:00.001000"):
        cat.import_ticks(one, "b")  # one tick where two are stored: a different group


def test_info_reports_rows_range_years_and_source_sha256(tmp_path: Path) -> None:
    src = tmp_path / "source.csv"
    src.write_bytes(b"any bytes")
    cat = Catalog(tmp_path / "cat")
    cat.import_bars(make_bars("2018-12-31 23:30", 60), str(src), tz="Europe/Athens")

    info = cat.info("EURUSD", Timeframe.M1)

    assert {k: info[k] for k in ("symbol", "timeframe", "rows", "first", "last", "years", "partitions")} == {
        "symbol": "EURUSD",
        "timeframe": "M1",
        "rows": 60,
        "first": "2018-12-31T23:30:00+00:00",
        "last": "2019-01-01T00:29:00+00:00",
        "years": [2018, 2019],
        "partitions": 2,
    }
    assert info["bytes"] == sum(p.stat().st_size for p in (tmp_path / "cat").rglob("*.parquet"))
    [source] = info["sources"]
    assert source["sha256"] == hashlib.sha256(b"any bytes").hexdigest()
    assert (source["source"], source["tz"]) == (str(src), "Europe/Athens")


def test_rebuild_bars_replaces_changes_and_drops_partitions_not_rebuilt(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    old = make_bars("2018-12-31 23:00", 120, tf=Timeframe.H1)  # 2018 .. 2019
    cat.rebuild_bars(old, "r1")
    new = with_close(old.slice(60, 120), [0], 1e-3)  # 2019 only, first bar changed

    res = cat.rebuild_bars(new, "r2")
    again = cat.rebuild_bars(new, "r2")

    assert (res.rows_new, res.duplicates, res.replaced, res.removed) == (0, 59, 1, 60)
    assert not (tmp_path / "bars/symbol=EURUSD/timeframe=H1/year=2018.parquet").exists()
    assert_same_bars(cat.load("EURUSD", "H1"), new)
    assert (again.duplicates, again.partitions_written) == (60, ())


def test_catalog_real_m1_import_load_roundtrip_and_year_slice(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "m1" / "EURUSD_M1_2018-2019.parquet"
    bars = read_m1_parquet(path, "EURUSD")
    cat = Catalog(tmp_path)

    res = cat.import_bars(bars, str(path))

    assert (res.rows_new, len(res.partitions_written)) == (745_077, 2)
    assert_same_bars(cat.load("EURUSD", "M1"), bars)
    y2019 = cat.load("EURUSD", "M1", ns("2019-01-01"), ns("2020-01-01"))
    i = int(np.searchsorted(bars.time, ns("2019-01-01")))
    assert_same_bars(y2019, bars.slice(i, len(bars)))
    info = cat.info("EURUSD", "M1")
    assert (info["rows"], info["first"], info["last"], info["years"]) == (
        745_077, "2018-01-01T22:00:00+00:00", "2019-12-31T21:59:00+00:00", [2018, 2019]
    )  # fmt: skip
    assert info["sources"][0]["sha256"] == "ded7e22db95748bf2b117600a77e62c529a94069ea53bc2b8d3e1cc2240298d3"
