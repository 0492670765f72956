"""MarketData: what copy_rates_* / copy_ticks_* / symbol_info_tick answer at the simulated time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mt5tester.data.resample import resample
from mt5tester.errors import DataError
from mt5tester.model.bars import Bars
from mt5tester.model.constants import COPY_TICKS_ALL, COPY_TICKS_INFO, COPY_TICKS_TRADE
from mt5tester.model.structs import RATES_DTYPE, TICKS_DTYPE, Tick
from mt5tester.model.symbol import build_symbol
from mt5tester.model.timeframe import Timeframe
from mt5tester.terminal.market import MarketData

M1, M5, H1, H4, D1 = Timeframe.M1, Timeframe.M5, Timeframe.H1, Timeframe.H4, Timeframe.D1
MIN_NS = 60_000_000_000
SPEC = build_symbol("EURUSD", None)  # digits 5, point 1e-5, spread 10
# Server seconds of 2024-01-02 00:00 on a UTC+2 clock (= 2024-01-01 22:00 UTC).
S0 = 1_704_153_600

# UTC open, O, H, L, C, tick_volume, spread. Server clock +02:00: 21:58 UTC = 23:58 on Jan 1.
# No bar at 22:03 (gap); 22:05 is a doji; 23:02 opens a new hour after an empty 23:00-23:01.
ROWS = [
    ("2024-01-01 21:58", 1.10000, 1.10050, 1.09950, 1.10020, 10, 5),
    ("2024-01-01 21:59", 1.10020, 1.10080, 1.10010, 1.10070, 12, 3),
    ("2024-01-01 22:00", 1.10070, 1.10075, 1.09990, 1.10000, 7, 4),
    ("2024-01-01 22:01", 1.10000, 1.10030, 1.09980, 1.10010, 3, 6),
    ("2024-01-01 22:02", 1.10010, 1.10100, 1.10005, 1.10090, 5, 2),
    ("2024-01-01 22:04", 1.10090, 1.10095, 1.10040, 1.10050, 9, 8),
    ("2024-01-01 22:05", 1.10050, 1.10060, 1.10020, 1.10050, 2, 7),
    ("2024-01-01 22:06", 1.10050, 1.10120, 1.10045, 1.10110, 6, 1),
    ("2024-01-01 23:02", 1.10110, 1.10200, 1.10100, 1.10150, 4, 9),
]


def _ns(text: str) -> int:
    return pd.Timestamp(text, tz="UTC").value


def _bars(rows: list[tuple[str, float, float, float, float, int, int]], symbol: str = "EURUSD") -> Bars:
    cols = list(zip(*rows, strict=True))
    return Bars(
        symbol,
        M1,
        np.array([_ns(t) for t in cols[0]], np.int64),
        np.array(cols[1], np.float64),
        np.array(cols[2], np.float64),
        np.array(cols[3], np.float64),
        np.array(cols[4], np.float64),
        np.array(cols[5], np.int64),
        np.array(cols[6], np.int32),
    )


def _md(server_tz: str = "+02:00", now: str | None = None, **kw: object) -> MarketData:
    md = MarketData({"EURUSD": _bars(ROWS)}, {"EURUSD": SPEC}, server_tz, **kw)  # type: ignore[arg-type]
    if now is not None:
        md.set_time(_ns(now))
    return md


def _rows(a: np.ndarray | None) -> list[tuple]:
    assert a is not None
    return [tuple(r) for r in a.tolist()]


def _rate(time: int, o: float, h: float, lo: float, c: float, tv: int, sp: int) -> tuple:
    return (time, o, h, lo, c, tv, sp, 0)


# Complete bars of the data set, as the terminal reports them (server seconds, +02:00).
H1_2300 = _rate(S0 - 3600, 1.10000, 1.10080, 1.09950, 1.10070, 22, 3)  # 21:58, 21:59 UTC
H1_0000_FULL = _rate(S0, 1.10070, 1.10120, 1.09980, 1.10110, 32, 1)  # 22:00 .. 22:06 UTC


# ----------------------------------------------------------------------------- copy_rates_from_pos
def test_copy_rates_from_pos_gap_minute_index0_is_last_complete_m1() -> None:
    md = _md(now="2024-01-01 22:03")  # no M1 bar opens at 22:03

    rates = md.copy_rates_from_pos("EURUSD", M1, 0, 2)

    assert rates is not None and rates.dtype == RATES_DTYPE
    assert _rows(rates) == [
        _rate(S0 + 60, 1.10000, 1.10030, 1.09980, 1.10010, 3, 6),
        _rate(S0 + 120, 1.10010, 1.10100, 1.10005, 1.10090, 5, 2),
    ]
    assert md.last_error() == (1, "Success")


def test_copy_rates_from_pos_bar_opens_at_now_index0_is_opening_tick_only() -> None:
    md = _md(now="2024-01-01 22:05")

    m1 = _rows(md.copy_rates_from_pos("EURUSD", M1, 0, 2))
    m5 = _rows(md.copy_rates_from_pos("EURUSD", M5, 0, 2))
    h1 = _rows(md.copy_rates_from_pos("EURUSD", H1, 0, 2))

    assert m1 == [
        _rate(S0 + 240, 1.10090, 1.10095, 1.10040, 1.10050, 9, 8),
        _rate(S0 + 300, 1.10050, 1.10050, 1.10050, 1.10050, 1, 7),
    ]
    assert m5 == [
        _rate(S0, 1.10070, 1.10100, 1.09980, 1.10050, 24, 2),
        _rate(S0 + 300, 1.10050, 1.10050, 1.10050, 1.10050, 1, 7),
    ]
    # The forming H1 bar: 22:00..22:04 complete plus the opening tick of 22:05 (min spread 2).
    assert h1 == [H1_2300, _rate(S0, 1.10070, 1.10100, 1.09980, 1.10050, 25, 2)]


def test_copy_rates_from_pos_start_pos_1_returns_completed_bars_only() -> None:
    md = _md(now="2024-01-01 22:05")

    rates = _rows(md.copy_rates_from_pos("EURUSD", M5, 1, 1))

    assert rates == [_rate(S0, 1.10070, 1.10100, 1.09980, 1.10050, 24, 2)]


def test_copy_rates_from_pos_no_tick_in_new_hour_index0_is_previous_hour() -> None:
    md = _md(now="2024-01-01 23:00")  # the 23:00 UTC hour has no tick yet

    h1 = _rows(md.copy_rates_from_pos("EURUSD", H1, 0, 5))

    assert h1 == [H1_2300, H1_0000_FULL]  # count beyond history: what exists


def test_copy_rates_from_pos_first_tick_of_hour_index0_is_new_bar() -> None:
    md = _md(now="2024-01-01 23:02")

    h1 = _rows(md.copy_rates_from_pos("EURUSD", H1, 0, 5))
    d1 = _rows(md.copy_rates_from_pos("EURUSD", D1, 0, 5))

    assert h1 == [H1_2300, H1_0000_FULL, _rate(S0 + 3600, 1.10110, 1.10110, 1.10110, 1.10110, 1, 9)]
    assert d1 == [
        _rate(S0 - 86400, 1.10000, 1.10080, 1.09950, 1.10070, 22, 3),
        _rate(S0, 1.10070, 1.10120, 1.09980, 1.10110, 33, 1),
    ]


def test_copy_rates_from_pos_between_minutes_shows_ticks_so_far() -> None:
    # 22:05:30: the doji 22:05 (after a bearish bar, so Low first) has shown its open and its Low.
    md = _md(now="2024-01-01 22:05:30")

    m1 = _rows(md.copy_rates_from_pos("EURUSD", M1, 0, 1))
    h1 = _rows(md.copy_rates_from_pos("EURUSD", H1, 0, 1))

    assert m1 == [_rate(S0 + 300, 1.10050, 1.10050, 1.10020, 1.10020, 2, 7)]
    assert h1 == [_rate(S0, 1.10070, 1.10100, 1.09980, 1.10020, 26, 2)]


def test_copy_rates_from_pos_clock_advances_forming_bar_follows() -> None:
    md = _md()
    closes = []
    for t in ("2024-01-01 22:01", "2024-01-01 22:02", "2024-01-01 22:03", "2024-01-01 22:05"):
        md.set_time(_ns(t))
        closes.append(_rows(md.copy_rates_from_pos("EURUSD", H1, 0, 1))[0][1:6])

    assert closes == [
        (1.10070, 1.10075, 1.09990, 1.10000, 8),
        (1.10070, 1.10075, 1.09980, 1.10010, 11),
        (1.10070, 1.10100, 1.09980, 1.10090, 15),
        (1.10070, 1.10100, 1.09980, 1.10050, 25),
    ]


def test_copy_rates_from_pos_before_first_bar_none_call_failed() -> None:
    md = _md(now="2024-01-01 21:00")

    assert md.copy_rates_from_pos("EURUSD", H1, 0, 10) is None
    assert md.last_error() == (-1, "Terminal: Call failed")


def test_copy_rates_from_pos_start_pos_past_history_none_call_failed() -> None:
    md = _md(now="2024-01-01 23:02")

    assert md.copy_rates_from_pos("EURUSD", H1, 3, 10) is None
    assert md.last_error() == (-1, "Terminal: Call failed")


def test_copy_rates_from_pos_unknown_symbol_none_call_failed() -> None:
    md = _md(now="2024-01-01 23:02")

    assert md.copy_rates_from_pos("GBPUSD", H1, 0, 10) is None
    assert md.last_error() == (-1, "Terminal: Call failed")


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((7, 0, 10), "timeframe"),
        ((True, 0, 10), "timeframe"),
        ((16385, -1, 10), "start_pos"),
        ((16385, 0, 0), "count"),
        ((16385, 0, 2.0), "count"),
    ],
)
def test_copy_rates_from_pos_bad_argument_none_invalid_argument(args: tuple, name: str) -> None:
    md = _md(now="2024-01-01 23:02")

    assert md.copy_rates_from_pos("EURUSD", *args) is None
    assert md.last_error() == (-2, f'Invalid "{name}" argument')


def test_copy_rates_from_pos_listed_and_lazy_timeframes_same_result() -> None:
    listed = _md(now="2024-01-01 22:05", timeframes=[M5, H1])
    lazy = _md(now="2024-01-01 22:05")

    for tf in (M5, H1):
        assert _rows(listed.copy_rates_from_pos("EURUSD", tf, 0, 9)) == _rows(
            lazy.copy_rates_from_pos("EURUSD", tf, 0, 9)
        )


def test_copy_rates_from_pos_fixed_spread_reported_in_bars() -> None:
    md = _md(now="2024-01-01 22:05", fixed_spread=15)

    rates = md.copy_rates_from_pos("EURUSD", H1, 0, 2)

    assert rates is not None and rates["spread"].tolist() == [15, 15]


# -------------------------------------------------------------------------------------- server time
def test_rates_time_europe_athens_winter_same_as_plus_two() -> None:
    fixed = _md("+02:00", now="2024-01-01 23:02")
    athens = _md("Europe/Athens", now="2024-01-01 23:02")

    for tf in (M1, M5, H1, D1):
        assert _rows(athens.copy_rates_from_pos("EURUSD", tf, 0, 20)) == _rows(
            fixed.copy_rates_from_pos("EURUSD", tf, 0, 20)
        )


def test_rates_time_europe_athens_summer_midnight_is_21_utc() -> None:
    rows = [
        ("2024-07-01 20:59", 1.07000, 1.07010, 1.06990, 1.07005, 3, 4),
        ("2024-07-01 21:00", 1.07005, 1.07020, 1.07000, 1.07015, 5, 6),
        ("2024-07-01 21:01", 1.07015, 1.07030, 1.07010, 1.07025, 2, 5),
    ]
    md = MarketData({"EURUSD": _bars(rows)}, {"EURUSD": SPEC}, "Europe/Athens")
    md.set_time(_ns("2024-07-01 21:02"))
    jul2 = int(pd.Timestamp("2024-07-02").timestamp())  # server midnight, encoded as if UTC

    d1 = _rows(md.copy_rates_from_pos("EURUSD", D1, 0, 5))
    m1 = md.copy_rates_from_pos("EURUSD", M1, 0, 5)

    assert d1 == [
        _rate(jul2 - 86400, 1.07000, 1.07010, 1.06990, 1.07005, 3, 4),
        _rate(jul2, 1.07005, 1.07030, 1.07000, 1.07025, 7, 5),
    ]
    assert m1 is not None and m1["time"].tolist() == [jul2 - 60, jul2, jul2 + 60]


def test_to_server_s_plus_two_utc_22_is_midnight_next_day() -> None:
    md = _md("+02:00")

    assert md.to_server_s(_ns("2024-01-01 22:00")) == S0


@pytest.mark.parametrize(
    "value",
    [
        S0,
        np.int64(S0),
        datetime(2024, 1, 2, tzinfo=UTC),
        datetime(2024, 1, 2, 3, tzinfo=timezone(timedelta(hours=3))),  # same instant as 00:00 UTC
        datetime(2024, 1, 2),  # naive: server wall time (documented deviation from local time)
        pd.Timestamp("2024-01-02", tz="UTC"),
        pd.Timestamp("2024-01-02"),
        np.datetime64("2024-01-02T00:00"),
    ],
)
def test_from_server_server_midnight_any_type_utc_22(value: object) -> None:
    md = _md("+02:00")

    assert md.from_server(value) == _ns("2024-01-01 22:00")


def test_from_server_athens_dst_repeated_first_skipped_shifted() -> None:
    md = _md("Europe/Athens")

    summer = md.from_server(datetime(2024, 7, 2, tzinfo=UTC))
    repeated = md.from_server(datetime(2024, 10, 27, 3, 30, tzinfo=UTC))  # 03:00-04:00 occurs twice
    skipped = md.from_server(datetime(2024, 3, 31, 3, 30, tzinfo=UTC))  # 03:00-04:00 does not exist

    assert summer == _ns("2024-07-01 21:00")
    assert repeated == _ns("2024-10-27 00:30")
    assert skipped == _ns("2024-03-31 01:00")


@pytest.mark.parametrize("value", [1.5, True, "2024-01-02", None])
def test_from_server_unsupported_type_raises_type_error(value: object) -> None:
    with pytest.raises(TypeError):
        _md().from_server(value)


def test_set_time_backwards_raises_value_error() -> None:
    md = _md(now="2024-01-01 22:05")

    with pytest.raises(ValueError, match="forward"):
        md.set_time(_ns("2024-01-01 22:04"))


# ------------------------------------------------------------------------- copy_rates_from / range
@pytest.mark.parametrize("date_from", [S0 + 240, datetime(2024, 1, 2, 0, 4, tzinfo=UTC), S0 + 299])
def test_copy_rates_from_int_or_aware_datetime_bars_at_or_before(date_from: object) -> None:
    md = _md(now="2024-01-01 23:02")

    rates = md.copy_rates_from("EURUSD", M1, date_from, 3)

    assert rates is not None and rates["time"].tolist() == [S0 + 60, S0 + 120, S0 + 240]


def test_copy_rates_from_after_now_capped_forming_bar_last() -> None:
    md = _md(now="2024-01-01 23:02")

    rates = _rows(md.copy_rates_from("EURUSD", M1, S0 + 5 * 3600, 2))

    assert rates == [
        _rate(S0 + 360, 1.10050, 1.10120, 1.10045, 1.10110, 6, 1),
        _rate(S0 + 3720, 1.10110, 1.10110, 1.10110, 1.10110, 1, 9),
    ]


def test_copy_rates_from_bad_date_none_invalid_argument() -> None:
    md = _md(now="2024-01-01 23:02")

    assert md.copy_rates_from("EURUSD", M1, "2024-01-02", 3) is None
    assert md.last_error() == (-2, 'Invalid "date_from" argument')


def test_copy_rates_range_both_ends_inclusive() -> None:
    md = _md(now="2024-01-01 23:02")

    rates = md.copy_rates_range("EURUSD", M1, S0 + 60, S0 + 300)

    assert rates is not None and rates["time"].tolist() == [S0 + 60, S0 + 120, S0 + 240, S0 + 300]


def test_copy_rates_range_past_now_capped_at_opening_tick() -> None:
    md = _md(now="2024-01-01 22:05")

    rates = _rows(md.copy_rates_range("EURUSD", M1, datetime(2024, 1, 2, 0, 2, tzinfo=UTC), S0 + 7200))

    assert rates == [
        _rate(S0 + 120, 1.10010, 1.10100, 1.10005, 1.10090, 5, 2),
        _rate(S0 + 240, 1.10090, 1.10095, 1.10040, 1.10050, 9, 8),
        _rate(S0 + 300, 1.10050, 1.10050, 1.10050, 1.10050, 1, 7),
    ]


def test_copy_rates_range_no_bar_inside_none_call_failed() -> None:
    md = _md(now="2024-01-01 23:02")

    assert md.copy_rates_range("EURUSD", M1, S0 + 180, S0 + 239) is None  # the 22:03 UTC gap
    assert md.last_error() == (-1, "Terminal: Call failed")


# ------------------------------------------------------------------------------------------- tick
def test_tick_bar_opens_at_now_bid_is_open_ask_adds_spread() -> None:
    md = _md(now="2024-01-01 22:05")

    tick = md.tick("EURUSD")

    assert tick == Tick(S0 + 300, 1.10050, 1.10057, 0.0, 0, (S0 + 300) * 1000, 6, 0.0)


def test_tick_gap_minute_bid_is_last_close_at_59s() -> None:
    md = _md(now="2024-01-01 22:03")

    tick = md.tick("EURUSD")

    assert tick == Tick(S0 + 179, 1.10090, 1.10092, 0.0, 0, (S0 + 179) * 1000, 6, 0.0)


def test_tick_fixed_spread_override_ask() -> None:
    md = _md(now="2024-01-01 22:05", fixed_spread=20)

    tick = md.tick("EURUSD")

    assert tick is not None and tick.ask == 1.10070


def test_tick_before_data_none_call_failed() -> None:
    md = _md(now="2024-01-01 21:00")

    assert md.tick("EURUSD") is None
    assert md.last_error() == (-1, "Terminal: Call failed")


# ------------------------------------------------------------------------------------- copy_ticks
def test_copy_ticks_range_generated_ohlc_ordered_and_capped_at_now() -> None:
    md = _md(now="2024-01-01 22:05:30")

    ticks = md.copy_ticks_range("EURUSD", S0 + 240, S0 + 3600, COPY_TICKS_ALL)

    assert ticks is not None and ticks.dtype == TICKS_DTYPE
    # 22:04 is bearish (High first); 22:05 is a doji after a bearish bar (Low first), seen up to +20 s.
    assert ticks["time"].tolist() == [S0 + 240, S0 + 260, S0 + 280, S0 + 299, S0 + 300, S0 + 320]
    assert ticks["time_msc"].tolist() == [t * 1000 for t in ticks["time"].tolist()]
    assert ticks["bid"].tolist() == [1.10090, 1.10095, 1.10040, 1.10050, 1.10050, 1.10020]
    assert ticks["ask"].tolist() == [1.10098, 1.10103, 1.10048, 1.10058, 1.10057, 1.10027]
    assert ticks["flags"].tolist() == [6] * 6


def test_copy_ticks_from_count_from_inside_bar() -> None:
    md = _md(now="2024-01-01 23:02")

    ticks = md.copy_ticks_from("EURUSD", S0 + 270, 3, COPY_TICKS_INFO)

    assert ticks is not None and ticks["time"].tolist() == [S0 + 280, S0 + 299, S0 + 300]


def test_copy_ticks_from_after_now_empty_success() -> None:
    md = _md(now="2024-01-01 22:05")

    ticks = md.copy_ticks_from("EURUSD", S0 + 301, 10, COPY_TICKS_ALL)

    assert ticks is not None and len(ticks) == 0
    assert md.last_error() == (1, "Success")


def test_copy_ticks_range_trade_flag_generated_quotes_empty() -> None:
    md = _md(now="2024-01-01 23:02")

    ticks = md.copy_ticks_range("EURUSD", S0, S0 + 3600, COPY_TICKS_TRADE)

    assert ticks is not None and len(ticks) == 0


def test_copy_ticks_range_bad_flags_none_invalid_argument() -> None:
    md = _md(now="2024-01-01 23:02")

    assert md.copy_ticks_range("EURUSD", S0, S0 + 3600, 3) is None
    assert md.last_error() == (-2, 'Invalid "flags" argument')


def _real_ticks() -> object:
    from mt5tester.model.ticks import Ticks

    times = np.array(
        [_ns("2024-01-01 22:00:00.250"), _ns("2024-01-01 22:00:01.500"), _ns("2024-01-01 22:00:03")]
    )
    return Ticks(
        "EURUSD",
        times,
        np.array([1.10070, 1.10070, 1.10072]),
        np.array([1.10078, 1.10079, 1.10080]),
        np.zeros(3),
        np.zeros(3, np.int64),
        np.array([6, 4, 6], np.int32),
    )


def test_tick_real_ticks_last_at_or_before_now() -> None:
    md = _md(ticks={"EURUSD": _real_ticks()})
    md.set_time(_ns("2024-01-01 22:00:02"))

    tick = md.tick("EURUSD")

    assert tick == Tick(S0 + 1, 1.10070, 1.10079, 0.0, 0, S0 * 1000 + 1500, 4, 0.0)


def test_copy_ticks_range_real_ticks_flags_filter_and_now_cap() -> None:
    md = _md(ticks={"EURUSD": _real_ticks()})
    md.set_time(_ns("2024-01-01 22:00:02"))

    every = md.copy_ticks_range("EURUSD", S0, S0 + 60, COPY_TICKS_ALL)
    bids = md.copy_ticks_from("EURUSD", S0, 10, COPY_TICKS_INFO)

    assert every is not None and every["time_msc"].tolist() == [S0 * 1000 + 250, S0 * 1000 + 1500]
    assert every["time"].tolist() == [S0, S0 + 1]
    assert bids is not None and bids["time_msc"].tolist() == [S0 * 1000 + 250, S0 * 1000 + 1500]


# ----------------------------------------------------------------------------- Market compatibility
def test_market_price_source_members_for_the_trade_server() -> None:
    bars = _bars(ROWS)
    new = MarketData({"EURUSD": bars}, {"EURUSD": SPEC}, "+02:00")

    t = _ns("2024-01-01 22:03")
    assert new.spread["EURUSD"].tolist() == bars.spread.tolist()
    assert (new.index_at("EURUSD", t), new.bid_before("EURUSD", t)) == (5, 1.10090)
    with pytest.raises(DataError):
        new.bid_before("EURUSD", _ns("2024-01-01 21:58"))


def test_market_spread_without_data_spread_uses_symbol_spread() -> None:
    rows = [(*r[:6], 0) for r in ROWS]
    md = MarketData({"EURUSD": _bars(rows)}, {"EURUSD": SPEC}, "UTC")
    md.set_time(_ns("2024-01-01 22:05"))

    tick = md.tick("EURUSD")

    assert md.spread["EURUSD"].tolist() == [10] * len(ROWS)
    assert tick is not None and tick.ask == 1.10060


# ---------------------------------------------------------------------------------- property tests
def _random_walk(seed: int) -> Bars:
    """Four days of M1 around a weekend with random one-minute holes, on a DST-free stretch."""
    rng = np.random.default_rng(seed)
    minutes = np.arange(_ns("2024-01-04 20:00"), _ns("2024-01-08 04:00"), MIN_NS, dtype=np.int64)
    weekday = pd.DatetimeIndex(minutes.view("datetime64[ns]")).day_of_week.to_numpy()
    keep = (weekday < 5) & (rng.random(len(minutes)) > 0.1)
    time = minutes[keep]
    n = len(time)
    close = np.round(1.1 + np.cumsum(rng.integers(-5, 6, n)) * 1e-5, 5)
    open_ = np.round(np.concatenate((np.array([1.1]), close[:-1])), 5).astype(np.float64)
    high = np.round(np.maximum(open_, close) + rng.integers(0, 4, n) * 1e-5, 5)
    low = np.round(np.minimum(open_, close) - rng.integers(0, 4, n) * 1e-5, 5)
    tv = rng.integers(1, 50, n).astype(np.int64)
    return Bars("EURUSD", M1, time, open_, high, low, close, tv, rng.integers(1, 20, n).astype(np.int32))


WALK = _random_walk(11)
WALK_TFS = [M1, M5, Timeframe.M15, H1, H4, D1, Timeframe.W1]


@settings(max_examples=150, deadline=None)
@given(
    offset_s=st.integers(min_value=-3600, max_value=int((WALK.time[-1] - WALK.time[0]) // 10**9) + 3600),
    tf=st.sampled_from(WALK_TFS),
    tz=st.sampled_from(["+02:00", "Europe/Athens", "-05:00"]),
)
def test_market_random_now_nothing_after_now_forming_close_is_bid(
    offset_s: int, tf: Timeframe, tz: str
) -> None:
    md = MarketData({"EURUSD": WALK}, {"EURUSD": SPEC}, tz)
    now = int(WALK.time[0]) + offset_s * 10**9
    md.set_time(now)
    now_s, now_ms = md.to_server_s(now), (now + 2 * 3600 * 10**9) // 10**6

    rates = md.copy_rates_from_pos("EURUSD", tf, 0, 10_000)
    ranged = md.copy_rates_range("EURUSD", tf, 0, 2**40)
    ticks = md.copy_ticks_range("EURUSD", 0, 2**40, COPY_TICKS_ALL)
    tick = md.tick("EURUSD")

    assert ticks is not None
    if now < WALK.time[0]:
        assert rates is None and ranged is None and tick is None and len(ticks) == 0
        return
    assert rates is not None and ranged is not None and tick is not None
    assert int(rates["time"].max()) <= now_s and int(ticks["time"].max()) <= now_s
    assert int(ticks["time_msc"].max()) == tick.time_msc
    assert _rows(ranged) == _rows(rates)
    assert float(rates["close"][-1]) == tick.bid
    if tz == "+02:00":
        assert int(ticks["time_msc"].max()) <= now_ms


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(st.integers(min_value=0, max_value=400 * 60), min_size=1, max_size=25),
    tf=st.sampled_from(WALK_TFS),
)
def test_market_clock_advancing_same_answers_as_fresh_instance(steps: list[int], tf: Timeframe) -> None:
    # The forming bar is aggregated incrementally as now advances; it must match a from-scratch answer.
    md = MarketData({"EURUSD": WALK}, {"EURUSD": SPEC}, "Europe/Athens")
    now = int(WALK.time[0])
    for step_s in steps:
        now += step_s * 10**9
        md.set_time(now)
        fresh = MarketData({"EURUSD": WALK}, {"EURUSD": SPEC}, "Europe/Athens")
        fresh.set_time(now)

        assert _rows(md.copy_rates_from_pos("EURUSD", tf, 0, 50)) == _rows(
            fresh.copy_rates_from_pos("EURUSD", tf, 0, 50)
        )
        assert md.tick("EURUSD") == fresh.tick("EURUSD")


@settings(max_examples=60, deadline=None)
@given(
    minute=st.integers(min_value=0, max_value=(int(WALK.time[-1] - WALK.time[0]) // MIN_NS)),
    tf=st.sampled_from(WALK_TFS),
)
def test_market_whole_minute_now_rates_equal_resample_of_visible_m1(minute: int, tf: Timeframe) -> None:
    # Visible data at a whole-minute now: M1 bars before now, plus the opening tick of a bar at now.
    now = int(WALK.time[0]) + minute * MIN_NS
    k = int(np.searchsorted(WALK.time, now, "right"))
    high, low, close, tv = (
        WALK.high[:k].copy(),
        WALK.low[:k].copy(),
        WALK.close[:k].copy(),
        WALK.tick_volume[:k].copy(),
    )
    if WALK.time[k - 1] == now:
        high[-1] = low[-1] = close[-1] = WALK.open[k - 1]
        tv[-1] = 1
    vis = Bars("EURUSD", M1, WALK.time[:k], WALK.open[:k], high, low, close, tv, WALK.spread[:k])
    expected = resample(vis, tf, "Europe/Athens")
    md = MarketData({"EURUSD": WALK}, {"EURUSD": SPEC}, "Europe/Athens")
    md.set_time(now)

    rates = md.copy_rates_from_pos("EURUSD", tf, 0, 10_000)

    assert rates is not None
    wall = (
        pd.DatetimeIndex(expected.time.view("datetime64[ns]")).tz_localize("UTC").tz_convert("Europe/Athens")
    )
    assert rates["time"].tolist() == (wall.tz_localize(None).as_unit("s").asi8).tolist()
    for col in ("open", "high", "low", "close", "tick_volume", "spread"):
        assert rates[col].tolist() == getattr(expected, col).tolist(), col


# ------------------------------------------------------------------------------------- shared data
def _load_m1(path: Path) -> Bars:
    df = pd.read_parquet(path, columns=["time", "open", "high", "low", "close"])
    n = len(df)
    idx = np.arange(n, dtype=np.int64)
    return Bars(
        "EURUSD",
        M1,
        df["time"].dt.tz_convert("UTC").to_numpy(dtype="datetime64[ns]").view(np.int64),
        df["open"].to_numpy(np.float64),
        df["high"].to_numpy(np.float64),
        df["low"].to_numpy(np.float64),
        df["close"].to_numpy(np.float64),
        (idx * 7919) % 97 + 1,
        ((idx * 31) % 23 + 1).astype(np.int32),
    )


@pytest.fixture(scope="module")
def eurusd_m1(shared_data: Path) -> Bars:
    return _load_m1(shared_data / "m1" / "EURUSD_M1_2018-2019.parquet")


@pytest.mark.shared_data
@pytest.mark.parametrize("now", ["2019-06-12 10:00", "2019-06-12 09:00", "2018-11-20 14:37"])
def test_copy_rates_from_pos_shared_eurusd_h4_equals_resample_before_now(eurusd_m1: Bars, now: str) -> None:
    m1 = eurusd_m1
    md = MarketData({"EURUSD": m1}, {"EURUSD": SPEC}, "Europe/Athens", timeframes=[H4])
    md.set_time(_ns(now))
    h4 = resample(m1, H4, "Europe/Athens")
    forming = int(np.searchsorted(h4.time, _ns(now), "right")) - 1  # a tick exists in these buckets
    expected = h4.slice(forming - 10, forming)

    rates = md.copy_rates_from_pos("EURUSD", H4, 1, 10)
    current = md.copy_rates_from_pos("EURUSD", H4, 0, 1)

    assert rates is not None and len(rates) == 10
    assert rates["time"].tolist() == [md.to_server_s(int(t)) for t in expected.time]
    for col in ("open", "high", "low", "close", "tick_volume", "spread"):
        assert rates[col].tolist() == getattr(expected, col).tolist(), col
    assert rates["real_volume"].tolist() == [0] * 10
    assert current is not None and current["time"].tolist() == [md.to_server_s(int(h4.time[forming]))]
    assert float(current["close"][0]) == md.tick("EURUSD").bid  # type: ignore[union-attr]


def test_low_first_in_chunks_carries_the_last_direction_across_them() -> None:
    from mt5tester.terminal.market import _low_first

    # doji, doji, bull, doji, doji, doji, bear, doji: before the first directional bar a virtual bullish
    # one (doji after bull: high first), then each doji opposite to the previous resolved bar
    open_ = np.array([1.0, 1.0, 1.0, 1.2, 1.2, 1.2, 1.2, 1.1])
    close = np.array([1.0, 1.0, 1.2, 1.2, 1.2, 1.2, 1.1, 1.1])
    expected = [False, True, True, False, True, False, False, True]
    for chunk in (1, 2, 3, 5, 1 << 18):
        assert _low_first(open_, close, chunk).tolist() == expected
