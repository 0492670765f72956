"""The pandas df of a strategy call (engine/feed.py, WindowFrame): the same DataFrame as a copy of the
window's rows, holding nothing after the current bar by any route, and no write leaking out of it."""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mt5tester.config import parse_config
from mt5tester.engine.build import build
from mt5tester.engine.feed import StrategyFeed, full_frame
from mt5tester.engine.loop import Runner
from mt5tester.model.bars import Bars
from mt5tester.model.timeframe import Timeframe
from mt5tester.strategy.base import Strategy, StrategyParams

from conftest import FIXTURES, base_config

sys.path.insert(0, str(FIXTURES))
routes = importlib.import_module("feed_routes")

N = 400


def _bars() -> Bars:
    rng = np.random.default_rng(7)
    close = 1.1 + np.cumsum(rng.normal(0, 1e-4, N))
    return Bars(
        symbol="EURUSD",
        timeframe=Timeframe.H1,
        time=np.arange(N, dtype=np.int64) * 3_600_000_000_000 + 1_704_067_200_000_000_000,
        open=close - 1e-5,
        high=close + 2e-4,
        low=close - 2e-4,
        close=close,
        tick_volume=rng.integers(1, 100, N).astype(np.int64),
        spread=rng.integers(0, 20, N).astype(np.int32),
    )


def _extra() -> dict[str, np.ndarray]:
    i = np.arange(N)
    return {
        "sma": np.where(i < 5, np.nan, i * 0.5),
        "up": i % 3 == 0,
        "n": i.astype(np.int64),
        "label": np.array(["x", "y"] * (N // 2), dtype=object),
    }


def _feed(bars: Bars, extra: dict[str, np.ndarray]) -> StrategyFeed:
    s = Strategy("s", StrategyParams(), ["EURUSD"], Timeframe.H1, warmup_bars=30)
    return StrategyFeed(s, bars, extra)


def _reference(bars: Bars, extra: dict[str, np.ndarray], lo: int, hi: int) -> pd.DataFrame:
    """What the pandas df was before the lazy view: a copy of rows [lo, hi) of the full frame."""
    frame = full_frame(bars)
    for name, values in extra.items():
        frame[name] = values
    return frame.iloc[lo:hi].copy()


WINDOWS = [(0, 1), (0, 30), (170, 200), (N - 30, N), (5, 5)]


@pytest.mark.parametrize(("lo", "hi"), WINDOWS)
def test_window_is_the_same_dataframe(lo: int, hi: int) -> None:
    bars, extra = _bars(), _extra()
    feed, ref = _feed(bars, extra), _reference(bars, extra, lo, hi)
    df = feed.window(lo, hi)
    assert isinstance(df, pd.DataFrame)
    assert len(df) == hi - lo
    for name in ref.columns:  # the lazy paths, each on a fresh window
        col = feed.window(lo, hi)[name]
        assert isinstance(col, pd.Series)
        pd.testing.assert_series_equal(col, ref[name], check_series_type=False)
        pd.testing.assert_series_equal(getattr(feed.window(lo, hi), name), ref[name], check_series_type=False)
    pd.testing.assert_frame_equal(df, ref, check_frame_type=False)  # materialised
    pd.testing.assert_series_equal(df["close"], ref["close"], check_series_type=False)  # after it
    if hi > lo:
        pd.testing.assert_series_equal(feed.window(lo, hi).iloc[-1], ref.iloc[-1])
        assert feed.window(lo, hi)["time"].iloc[-1] == ref["time"].iloc[-1]
        pd.testing.assert_series_equal(
            feed.window(lo, hi)["close"].rolling(3).mean(),
            ref["close"].rolling(3).mean(),
            check_series_type=False,
        )


def test_results_of_operations_are_plain_pandas() -> None:
    df = _feed(_bars(), {}).window(10, 40)
    assert type(df.tail(3)) is pd.DataFrame
    assert type(df.copy()) is pd.DataFrame
    assert type(df["close"].shift(1)) is pd.Series
    assert type(df["close"] - df["open"]) is pd.Series
    assert type(df[["close", "open"]]) is pd.DataFrame
    assert type(df["close"].ewm(span=5).mean()) is pd.Series


@pytest.mark.parametrize("materialised", [False, True])
@pytest.mark.parametrize(("lo", "hi"), [(0, 30), (170, 200), (N - 30, N)])
def test_no_route_reaches_later_rows(lo: int, hi: int, materialised: bool) -> None:
    """Columns, .values/.to_numpy()/np.asarray, .base chains, the manager's blocks, _data, .iloc past the
    end, .loc and reindex past the last label: none holds a row after hi."""
    bars, extra = _bars(), {"sma": np.arange(N, dtype=np.float64)}
    df = _feed(bars, extra).window(lo, hi)
    if materialised:
        _ = df.shape
    assert routes.reach(df) == hi - lo


def test_writes_never_leak() -> None:
    """A strategy writing into its df changes neither later windows nor another feed of the same bars."""
    bars, extra = _bars(), _extra()
    a, b = _feed(bars, extra), _feed(bars, extra)
    pristine = {k: np.array(getattr(bars, k)) for k in ("open", "high", "low", "close")}
    for lo, hi in [(100, 130), (101, 131), (100, 130)]:
        routes.mutate(a.window(lo, hi))
        ref = _reference(bars, extra, lo, hi)
        pd.testing.assert_frame_equal(a.window(lo, hi), ref, check_frame_type=False)
        pd.testing.assert_frame_equal(b.window(lo, hi), ref, check_frame_type=False)
        pd.testing.assert_series_equal(a.window(lo, hi)["close"], ref["close"], check_series_type=False)
    for k, values in pristine.items():
        np.testing.assert_array_equal(getattr(bars, k), values)


def test_a_series_is_its_own_copy() -> None:
    df = _feed(_bars(), {}).window(0, 30)
    s = df["close"]
    s.iloc[-1] = -1.0
    assert df["close"].iloc[-1] != -1.0
    assert df.close.iloc[-1] != -1.0


def test_pickle_and_copy_give_the_window() -> None:
    import copy
    import pickle

    bars = _bars()
    ref = _reference(bars, {}, 50, 80)
    for df in (
        pickle.loads(pickle.dumps(_feed(bars, {}).window(50, 80))),
        copy.deepcopy(_feed(bars, {}).window(50, 80)),
    ):
        pd.testing.assert_frame_equal(df, ref, check_frame_type=False)


def test_loop_routes_and_mutations(demo_data: Path, tmp_path: Path) -> None:
    """In a run: every route of every call stops at the current bar, and the probe's writes reach neither
    its own next call nor the reader on the same bars."""
    raw = base_config(demo_data, tmp_path, warmup_bars=20, end="2024-01-04")
    raw["strategies"] = [
        {"class": f"{FIXTURES / 'feed_routes.py'}:RouteProbe", "name": "probe"},
        {"class": f"{FIXTURES / 'feed_routes.py'}:CloseReader", "name": "reader"},
    ]
    runner = Runner(build(parse_config(raw), tmp_path))
    runner.run()
    probe, reader = (x.strategy.log for x in runner.c.strategies)  # type: ignore[attr-defined]
    assert len(probe) > 30 and len(probe) == len(reader)
    assert all(rows == 20 and reached == 20 for rows, reached, _ in probe + reader)
    bars = runner.c.tf_bars[("EURUSD", runner.c.strategies[0].strategy.timeframe)]
    closes = set(bars.close.tolist())
    assert all(seen in closes for *_, seen in probe + reader)  # never a mutated (0, -1, -2) value
    assert [e[2] for e in probe] == [e[2] for e in reader]


def test_materialising_drops_the_source() -> None:
    """Once the window is a full DataFrame it no longer refers to the feed's series (nor do its Series)."""
    df = _feed(_bars(), {}).window(10, 40)
    assert df.__dict__["_wf_src"] is not None
    _ = df.iloc[-1]
    assert df.__dict__["_wf_src"] is None
    col = _feed(_bars(), {}).window(10, 40)["close"]
    assert "_wf_src" not in col.__dict__
    assert type(col * 2) is pd.Series


def test_flags_are_pandas_flags() -> None:
    """The window and its columns make their Flags only when asked: the same Flags pandas gives."""
    feed = _feed(_bars(), {})
    df = feed.window(10, 40)
    assert df.flags.allows_duplicate_labels is True
    col = feed.window(10, 40)["close"]
    assert col.flags.allows_duplicate_labels is True
    strict = col.set_flags(allows_duplicate_labels=False)
    assert strict.flags.allows_duplicate_labels is False
    assert col.flags.allows_duplicate_labels is True
    df.flags.allows_duplicate_labels = False
    assert df.flags.allows_duplicate_labels is False
    with pytest.raises(pd.errors.DuplicateLabelError):
        df.set_flags(allows_duplicate_labels=False).reindex([10, 10])
    col.flags["allows_duplicate_labels"] = False
    assert col.flags.allows_duplicate_labels is False
    import pickle

    assert pickle.loads(pickle.dumps(col)).flags.allows_duplicate_labels is False


def test_feeds_on_the_same_bars_share_one_bar_frame() -> None:
    """Strategies on the same bars share one bar frame (built once) and, at one point, the window's
    index; each df holds the bar columns and its own prepared columns only."""
    bars = _bars()
    a = _feed(bars, {"sma": np.arange(N, dtype=np.float64)})
    b = _feed(bars, {"rsi": np.full(N, 50.0), "up": np.arange(N) % 2 == 0})
    assert a._source is not None and b._source is not None
    assert a._source.bars is b._source.bars
    assert _feed(_bars(), {})._source.bars is not a._source.bars  # type: ignore[union-attr]
    da, db = a.window(170, 200), b.window(170, 200)
    assert da["close"].index is db["close"].index
    assert list(da.columns) == [*full_frame(bars).columns, "sma"]
    assert list(db.columns) == [*full_frame(bars).columns, "rsi", "up"]
    with pytest.raises(KeyError):
        a.window(170, 200)["rsi"]
    with pytest.raises(AttributeError):
        _ = a.window(170, 200).rsi
    pd.testing.assert_frame_equal(
        b.window(170, 200),
        _reference(bars, {"rsi": np.full(N, 50.0), "up": np.arange(N) % 2 == 0}, 170, 200),
        check_frame_type=False,
    )
    assert routes.reach(b.window(170, 200)) == 30


def test_numpy_conversions_are_pandas() -> None:
    """np.asarray of a column: a read-only view of its own copy, as pandas' copy-on-write gives; a dtype
    or an np.array copy goes through pandas; tz times convert as pandas converts them."""
    bars, extra = _bars(), _extra()
    ref = _reference(bars, extra, 170, 200)
    feed = _feed(bars, extra)
    for name in ("close", "tick_volume", "up", "n", "sma"):
        got, want = np.asarray(feed.window(170, 200)[name]), np.asarray(ref[name])
        assert got.dtype == want.dtype and not got.flags.writeable
        np.testing.assert_array_equal(got, want)
        copy = np.array(feed.window(170, 200)[name])
        assert copy.flags.writeable
        np.testing.assert_array_equal(copy, want)
    as_float = np.asarray(feed.window(170, 200)["n"], dtype=np.float64)
    np.testing.assert_array_equal(as_float, np.arange(170, 200, dtype=np.float64))
    times = np.asarray(feed.window(170, 200)["time"])
    np.testing.assert_array_equal(times, np.asarray(ref["time"]))
    col = feed.window(170, 200)["close"]
    view = np.asarray(col)
    col.iloc[-1] = -1.0  # the Series' own write: the view handed out before keeps its values or follows
    assert np.asarray(col)[-1] == -1.0
    assert view[-2] == ref["close"].iloc[-2]


def test_numpy_view_of_a_column_holds_only_the_window() -> None:
    """np.asarray of a lazy column is built from its ``__array_struct__``: read-only, the window's values,
    its base (the Series, a capsule) holding the window's rows only; tz times have none (pandas')."""
    bars = _bars()
    ref = _reference(bars, {}, 170, 200)
    col = _feed(bars, {}).window(170, 200)["close"]
    view = np.asarray(col)
    assert not view.flags.writeable and view.dtype == np.float64
    np.testing.assert_array_equal(view, ref["close"].to_numpy())
    assert isinstance(view.base, tuple) and view.base[0] is col
    assert routes._extent(view) == 30
    with pytest.raises(AttributeError):
        _ = _feed(bars, {}).window(170, 200)["time"].__array_struct__


def test_values_and_to_numpy_are_pandas() -> None:
    """A lazy column's ``.values`` and ``.to_numpy()`` (no arguments: without building its manager) are
    what pandas gives: the same values, dtype and read-only flag; with arguments, and tz times, pandas'."""
    bars, extra = _bars(), _extra()
    ref = _reference(bars, extra, 170, 200)
    feed = _feed(bars, extra)
    for name in ref.columns:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Series.values of a tz column: pandas 3.1's deprecation notice
            pairs = [
                (feed.window(170, 200)[name].values, ref[name].values),
                (feed.window(170, 200)[name].to_numpy(), ref[name].to_numpy()),
            ]
        for got, want in pairs:
            assert type(got) is type(want)
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
            if isinstance(got, np.ndarray):
                assert got.dtype == want.dtype and got.flags.writeable == want.flags.writeable
    as_float = feed.window(170, 200)["n"].to_numpy(dtype=np.float64)
    np.testing.assert_array_equal(as_float, np.arange(170, 200, dtype=np.float64))
    copy = feed.window(170, 200)["close"].to_numpy(copy=True)
    assert copy.flags.writeable
    np.testing.assert_array_equal(copy, ref["close"].to_numpy())


def test_every_window_is_the_old_dataframe_and_the_numpy_rows() -> None:
    """Every window a 30-bar strategy gets over the series (the first ones shorter): each lazy column is
    the old DataFrame's (values, dtype, index), the numpy form's rows are the same values, and neither
    holds a row after the window; every 37th window is compared whole (materialised)."""
    bars, extra = _bars(), {"sma": np.arange(N, dtype=np.float64) / 7}
    pandas_feed = _feed(bars, extra)
    s = Strategy("s", StrategyParams(), ["EURUSD"], Timeframe.H1, warmup_bars=30)
    s.data_format = "numpy"
    numpy_feed = StrategyFeed(s, bars, extra)
    assert numpy_feed.numpy and not pandas_feed.numpy
    full = _reference(bars, extra, 0, N)
    for hi in range(1, N + 1):
        lo = max(0, hi - 30)
        ref = full.iloc[lo:hi]
        rows = numpy_feed.window(lo, hi)
        assert len(pandas_feed.window(lo, hi)) == len(rows) == hi - lo
        for name in ("close", "tick_volume", "spread", "sma"):
            col = pandas_feed.window(lo, hi)[name]
            got = np.asarray(col)
            assert got.dtype == ref[name].dtype and routes._extent(got) == hi - lo
            np.testing.assert_array_equal(got, ref[name].to_numpy())
            np.testing.assert_array_equal(rows[name], ref[name].to_numpy())
            assert rows[name].base is None or len(rows[name].base) == hi - lo
            pd.testing.assert_index_equal(col.index, ref.index)
        if hi % 37 == 0:
            df = pandas_feed.window(lo, hi)
            pd.testing.assert_frame_equal(df, ref, check_frame_type=False)
            assert list(df.columns) == list(ref.columns) and list(df.dtypes) == list(ref.dtypes)
            assert routes.reach(pandas_feed.window(lo, hi)) == hi - lo
