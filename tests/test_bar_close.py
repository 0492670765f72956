"""When a bar becomes visible: its close on the server clock, for every timeframe, in four zones, across
DST changes and month ends; the same instant for the strategy's df, copy_rates_from_pos and regimes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mt5tester.config import RegimeParams, parse_config
from mt5tester.data.resample import bar_close, resample
from mt5tester.data.store import read_m1_parquet
from mt5tester.engine.build import build
from mt5tester.engine.loop import Runner
from mt5tester.model.bars import Bars
from mt5tester.model.symbol import build_symbol
from mt5tester.model.timeframe import Timeframe
from mt5tester.regime import RegimeTracker
from mt5tester.terminal.market import MarketData

from conftest import FIXTURES, base_config

MIN = 60_000_000_000
ZONES = ["UTC", "Europe/Athens", "America/New_York", "Asia/Tokyo"]


def ns(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value)


def minutes(start: str, end: str) -> Bars:
    """Contiguous M1 bars (every minute, no gap) over [start, end) UTC."""
    t = np.arange(ns(start), ns(end), MIN, dtype=np.int64)
    p = np.full(len(t), 1.1)
    return Bars("EURUSD", Timeframe.M1, t, p, p, p, p, np.ones(len(t), np.int64), np.zeros(len(t), np.int32))


# (zone, timeframe, bar open UTC, bar close UTC): the close is the start of the next period on the
# server clock. Athens: EET +2 / EEST +3 (changes 2018-03-25 01:00 and 2018-10-28 01:00 UTC);
# New York: EST -5 / EDT -4 (2018-03-11 07:00 and 2018-11-04 06:00 UTC); Tokyo +9 without DST.
TABLE = [
    ("UTC", "MN1", "2018-02-01 00:00", "2018-03-01 00:00"),
    ("UTC", "W1", "2018-03-11 00:00", "2018-03-18 00:00"),
    ("UTC", "D1", "2018-03-25 00:00", "2018-03-26 00:00"),
    ("UTC", "H4", "2018-03-25 00:00", "2018-03-25 04:00"),
    ("UTC", "M1", "2018-03-25 00:00", "2018-03-25 00:01"),
    ("Europe/Athens", "MN1", "2018-01-31 22:00", "2018-02-28 22:00"),
    ("Europe/Athens", "MN1", "2018-02-28 22:00", "2018-03-31 21:00"),  # the month DST starts in
    ("Europe/Athens", "MN1", "2018-09-30 21:00", "2018-10-31 22:00"),  # the month DST ends in
    ("Europe/Athens", "W1", "2018-03-24 22:00", "2018-03-31 21:00"),  # 167 h
    ("Europe/Athens", "W1", "2018-10-27 21:00", "2018-11-03 22:00"),  # 169 h
    ("Europe/Athens", "D1", "2018-03-24 22:00", "2018-03-25 21:00"),  # 23 h
    ("Europe/Athens", "D1", "2018-03-26 21:00", "2018-03-27 21:00"),
    ("Europe/Athens", "D1", "2018-10-27 21:00", "2018-10-28 22:00"),  # 25 h
    ("Europe/Athens", "H4", "2018-03-24 22:00", "2018-03-25 01:00"),  # 00:00-04:00 EET/EEST: 3 h
    ("Europe/Athens", "H4", "2018-03-25 01:00", "2018-03-25 05:00"),
    ("Europe/Athens", "H1", "2018-03-25 00:00", "2018-03-25 01:00"),
    ("Europe/Athens", "M30", "2018-03-25 00:30", "2018-03-25 01:00"),
    ("America/New_York", "MN1", "2018-03-01 05:00", "2018-04-01 04:00"),
    ("America/New_York", "MN1", "2018-04-01 04:00", "2018-05-01 04:00"),
    ("America/New_York", "MN1", "2018-11-01 04:00", "2018-12-01 05:00"),
    ("America/New_York", "W1", "2018-03-11 05:00", "2018-03-18 04:00"),
    ("America/New_York", "D1", "2018-03-11 05:00", "2018-03-12 04:00"),
    ("America/New_York", "D1", "2018-11-04 04:00", "2018-11-05 05:00"),
    ("America/New_York", "H12", "2018-03-11 05:00", "2018-03-11 16:00"),
    ("America/New_York", "H4", "2018-03-11 05:00", "2018-03-11 08:00"),
    ("America/New_York", "H2", "2018-11-04 04:00", "2018-11-04 06:00"),  # 01:00 EST opens a new bar
    ("America/New_York", "H2", "2018-11-04 06:00", "2018-11-04 07:00"),
    ("Asia/Tokyo", "MN1", "2018-02-28 15:00", "2018-03-31 15:00"),
    ("Asia/Tokyo", "W1", "2018-03-10 15:00", "2018-03-17 15:00"),
    ("Asia/Tokyo", "D1", "2018-03-24 15:00", "2018-03-25 15:00"),
    ("Asia/Tokyo", "H8", "2018-03-25 07:00", "2018-03-25 15:00"),
]


@pytest.mark.parametrize(("zone", "tf", "opens", "closes"), TABLE)
def test_bar_close_table_server_clock_exact_instant(zone: str, tf: str, opens: str, closes: str) -> None:
    m1 = minutes(
        str(pd.Timestamp(opens) - pd.Timedelta(days=3)), str(pd.Timestamp(closes) + pd.Timedelta(days=3))
    )
    bars = resample(m1, Timeframe.parse(tf), zone)
    i = int(np.searchsorted(bars.time, ns(opens)))
    assert bars.time[i] == ns(opens)
    assert bars.close_time[i] == ns(closes)
    assert bar_close(bars.time[i : i + 1], Timeframe.parse(tf), zone)[0] == ns(closes)
    # The bar's last M1 minute is the one just before its close; the next minute opens the next bar.
    assert bars.time[i + 1] == ns(closes)


@pytest.mark.parametrize(("zone", "tf", "opens", "closes"), TABLE)
def test_copy_rates_from_pos_shows_the_bar_closed_exactly_at_its_close(
    zone: str, tf: str, opens: str, closes: str
) -> None:
    t = np.arange(ns(opens) - 3 * 86_400 * 10**9, ns(closes) + 3 * 86_400 * 10**9, MIN, dtype=np.int64)
    price = 1.1 + (np.arange(len(t)) % 997) * 1e-5
    m1 = Bars(
        "EURUSD", Timeframe.M1, t, price, price + 2e-4, price - 3e-4, price + 1e-5,
        np.ones(len(t), np.int64), np.full(len(t), 10, np.int32),
    )  # fmt: skip
    timeframe = Timeframe.parse(tf)
    md = MarketData({"EURUSD": m1}, {"EURUSD": build_symbol("EURUSD", None)}, zone)
    inside = (t >= ns(opens)) & (t < ns(closes))
    md.set_time(ns(closes) - MIN)  # the bar's last minute has opened, not closed: still forming
    forming = md.copy_rates_from_pos("EURUSD", timeframe, 0, 2)
    assert forming is not None and int(forming["time"][-1]) == md.to_server_s(ns(opens))
    assert float(forming["high"][-1]) == pytest.approx(
        float(m1.high[inside][:-1].max(initial=m1.open[inside][-1]))
    )
    md.set_time(ns(closes))  # it has closed: position 1, with the OHLC of every minute inside it
    closed = md.copy_rates_from_pos("EURUSD", timeframe, 1, 1)
    assert closed is not None and int(closed["time"][0]) == md.to_server_s(ns(opens))
    assert float(closed["high"][0]) == pytest.approx(float(m1.high[inside].max()))
    assert float(closed["low"][0]) == pytest.approx(float(m1.low[inside].min()))
    assert float(closed["close"][0]) == pytest.approx(float(m1.close[inside][-1]))
    assert int(closed["tick_volume"][0]) == int(inside.sum())


WINDOWS = [
    ("2018-02-20", "2018-04-10"),  # New York and Athens spring forward, two month ends
    ("2018-10-20", "2018-12-05"),  # both fall backs, two month ends
]


@pytest.mark.parametrize("zone", [*ZONES, "+02:00", "-05:00", "Australia/Lord_Howe"])  # and 30-min DST
@pytest.mark.parametrize("window", WINDOWS)
def test_every_timeframe_closes_when_the_next_bar_opens(zone: str, window: tuple[str, str]) -> None:
    m1 = minutes(*window)
    for tf in Timeframe:
        bars = m1 if tf is Timeframe.M1 else resample(m1, tf, zone)
        # Without gaps, a bar closes exactly when its last minute has passed: the next bar's open.
        np.testing.assert_array_equal(bars.close_time[:-1], bars.time[1:], err_msg=f"{zone} {tf.name}")
        # History that ends inside a bar does not move its close (the run's last, still forming bar).
        for cut in range(1, len(m1), 4999):
            part = m1.slice(0, cut) if tf is Timeframe.M1 else resample(m1.slice(0, cut), tf, zone)
            assert part.close_time[-1] == bars.close_time[len(part) - 1], (zone, tf.name, cut)


def test_bars_slice_keeps_server_clock_closes() -> None:
    bars = resample(minutes("2018-03-20", "2018-03-30"), Timeframe.D1, "Europe/Athens")
    part = bars.between(ns("2018-03-24 00:00"), ns("2018-03-26 00:00"))
    assert part.close_time.tolist() == [ns("2018-03-25 21:00"), ns("2018-03-26 21:00")]


def test_regime_labels_change_at_server_clock_closes() -> None:
    m1 = minutes("2018-03-20", "2018-04-03")
    tracker = RegimeTracker.from_m1({"EURUSD": m1}, RegimeParams(timeframe="D1"), "Europe/Athens")
    d1 = resample(m1, Timeframe.D1, "Europe/Athens")
    close = tracker._close["EURUSD"]
    assert close[list(d1.time).index(ns("2018-03-24 22:00"))] == ns("2018-03-25 21:00")
    np.testing.assert_array_equal(close[:-1], d1.time[1:])


@pytest.fixture(scope="module")
def eurusd_2018h1(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real EURUSD M1 of January to mid-May 2018 (a temporary copy of that part of the shared file)."""
    folder = tmp_path_factory.mktemp("eurusd_2018h1")
    frame = pd.read_parquet(shared_data / "m1" / "EURUSD_M1_2018-2019.parquet")
    frame[frame["time"] < pd.Timestamp("2018-05-15", tz="UTC")].to_parquet(folder / "EURUSD_M1_real.parquet")
    return folder


def _oracle_close(labels: np.ndarray, tf: Timeframe, zone: str) -> np.ndarray:
    """Close of each bar from pandas' calendar in the zone (spring-forward windows only): the wall-clock
    start of the next period, localised, a skipped wall time moved to the clock change."""
    wall = pd.DatetimeIndex(pd.to_datetime(labels, utc=True)).tz_convert(zone).tz_localize(None)
    if tf is Timeframe.MN1:
        end = wall.to_period("M").to_timestamp() + pd.DateOffset(months=1)
    elif tf is Timeframe.W1:
        day = wall.normalize()
        end = day - pd.to_timedelta((day.day_of_week + 1) % 7, unit="D") + pd.Timedelta(days=7)
    else:
        end = wall.floor(f"{tf.minutes}min") + pd.Timedelta(minutes=tf.minutes)
    local = pd.DatetimeIndex(end).tz_localize(zone, nonexistent="shift_forward", ambiguous="raise")
    return np.asarray(local.tz_convert("UTC").as_unit("ns").asi8, np.int64)


@pytest.mark.parametrize("zone", ZONES)
def test_strategy_and_copy_rates_see_a_bar_exactly_at_its_server_close(
    eurusd_2018h1: Path, tmp_path: Path, zone: str
) -> None:
    data = eurusd_2018h1
    raw = base_config(
        data, tmp_path, start="2018-02-28", end="2018-04-03", warmup_bars=1, server_timezone=zone
    )
    fine = {Timeframe.M1, Timeframe.M2, Timeframe.M3, Timeframe.M4, Timeframe.M5, Timeframe.M6}
    tfs = [tf for tf in Timeframe if tf not in fine] + [Timeframe.M5]  # fine ones: one stands for all
    raw["strategies"] = [
        {"class": f"{FIXTURES / 'visibility.py'}:SeenBars", "name": f"seen_{tf.name}", "timeframe": tf.name}
        for tf in tfs
    ]
    runner = Runner(build(parse_config(raw), tmp_path))
    runner.run()
    m1 = read_m1_parquet(data / "EURUSD_M1_real.parquet", "EURUSD").time
    market = runner.c.terminal.market
    start, end = ns("2018-02-28"), ns("2018-04-03")
    for ls in runner.c.strategies:
        tf = ls.strategy.timeframe
        labels = runner.c.tf_bars[("EURUSD", tf)].time
        close = _oracle_close(labels, tf, zone)
        # The bar is handed out on the first tick at or after its close: never earlier, never later.
        seen_at = m1[np.minimum(np.searchsorted(m1, close, "left"), len(m1) - 1)]
        due = (np.searchsorted(m1, close, "left") < len(m1)) & (seen_at >= start) & (seen_at < end)
        expected = [(int(t), int(b)) for t, b in zip(seen_at[due], labels[due], strict=True)]
        seen = ls.strategy.seen  # type: ignore[attr-defined]
        assert [(now, last) for now, last, _, _ in seen] == expected, (zone, tf.name)
        for now, last, closed, forming in seen:
            # copy_rates_from_pos: index 1 is that same closed bar, index 0 the bar forming at now.
            assert closed == market.to_server_s(last), (zone, tf.name, now)
            k = int(np.searchsorted(labels, now, "right")) - 1
            assert forming == market.to_server_s(int(labels[k])), (zone, tf.name, now)
    if zone == "Europe/Athens":  # the report's case: March is handed out at its end, not when it opens
        mn1 = next(ls.strategy for ls in runner.c.strategies if ls.strategy.timeframe is Timeframe.MN1)
        seen_mn1 = [(now, last) for now, last, _, _ in mn1.seen]  # type: ignore[attr-defined]
        assert seen_mn1[0] == (ns("2018-02-28 22:00"), ns("2018-01-31 22:00"))
        march = [now for now, last in seen_mn1 if last == ns("2018-02-28 22:00")]
        assert len(march) == 1 and march[0] >= ns("2018-03-31 21:00")


@pytest.mark.parametrize(
    ("zone", "april_opens", "april_closes"),
    [
        ("UTC", "2018-04-01 00:00", "2018-05-01 00:00"),
        ("Europe/Athens", "2018-03-31 21:00", "2018-04-30 21:00"),
        ("America/New_York", "2018-04-01 04:00", "2018-05-01 04:00"),  # UTC months: 4 h early
        ("Asia/Tokyo", "2018-03-31 15:00", "2018-04-30 15:00"),  # UTC months: 9 h late
    ],
)
def test_mn1_strategy_gets_the_month_at_its_server_month_end_on_a_weekday(
    eurusd_2018h1: Path, tmp_path: Path, zone: str, april_opens: str, april_closes: str
) -> None:
    data = eurusd_2018h1
    raw = base_config(
        data, tmp_path, start="2018-04-25", end="2018-05-03", warmup_bars=1, server_timezone=zone
    )
    raw["strategies"] = [
        {"class": f"{FIXTURES / 'visibility.py'}:SeenBars", "name": "mn1", "timeframe": "MN1"}
    ]
    runner = Runner(build(parse_config(raw), tmp_path))
    runner.run()
    m1 = read_m1_parquet(data / "EURUSD_M1_real.parquet", "EURUSD").time
    first_tick = int(m1[np.searchsorted(m1, ns(april_closes), "left")])
    assert first_tick - ns(april_closes) < 5 * MIN  # a weekday: the market is open at the month end
    seen = runner.c.strategies[0].strategy.seen  # type: ignore[attr-defined]
    market = runner.c.terminal.market
    assert seen == [(first_tick, ns(april_opens), market.to_server_s(ns(april_opens)), seen[0][3])]
    assert seen[0][3] == market.to_server_s(ns(april_closes))  # copy_rates index 0: May, just opened
