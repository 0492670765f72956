"""terminal.ticks: Every-tick generation from M1 bars (spec 6.2), OHLC paths and first-touch kernels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mt5tester.data.store import read_m1_parquet
from mt5tester.model.bars import Bars
from mt5tester.model.timeframe import Timeframe
from mt5tester.terminal import kernels
from mt5tester.terminal.ticks import (
    BEARISH,
    BULLISH,
    LIMIT,
    NONE,
    SL,
    STOP,
    TICK_FLAGS,
    TP,
    bar_directions,
    first_touch_ohlc,
    first_touch_ticks,
    generate_ticks,
    ohlc_path,
    reference_prices,
)

POINT = 1e-5
MIN = 60_000_000_000
T0 = 28_333_333 * MIN  # 2023-11-14 22:13 UTC, a minute boundary
SEC = 1_000_000_000

BULL = (1.10010, 1.10030, 1.10000, 1.10020)  # O, H, L, C: both shadows
BEAR = (1.10020, 1.10030, 1.10000, 1.10010)
DOJI = (1.10010, 1.10030, 1.10000, 1.10010)


def make_bars(rows: list[tuple[float, float, float, float, int]], spread: int = 2) -> Bars:
    n = len(rows)
    a = np.array([r[:4] for r in rows], dtype=np.float64).reshape(n, 4)
    return Bars(
        "EURUSD",
        Timeframe.M1,
        T0 + np.arange(n, dtype=np.int64) * MIN,
        a[:, 0].copy(),
        a[:, 1].copy(),
        a[:, 2].copy(),
        a[:, 3].copy(),
        np.array([r[4] for r in rows], dtype=np.int64),
        np.full(n, spread, dtype=np.int32),
    )


def bar_ticks(m1: Bars, seed: int = 7) -> list[list[float]]:
    """Bid prices of the generated ticks, grouped by bar."""
    t = generate_ticks(m1, POINT, seed)
    idx = (t.time - T0) // MIN
    return [t.bid[idx == i].tolist() for i in range(len(m1))]


def is_subsequence(sub: list[float], seq: list[float]) -> bool:
    it = iter(seq)
    return all(any(x == y for y in it) for x in sub)


# --------------------------------------------------------------------------------------------------
# Small volumes: exact sequences


def test_generate_ticks_volume_1_single_tick_at_close() -> None:
    t = generate_ticks(make_bars([(*BULL, 1)]), POINT, 1)

    assert t.bid.tolist() == [1.10020]
    assert t.ask.tolist() == [1.10022]
    assert t.time.tolist() == [T0]
    assert t.flags.tolist() == [TICK_FLAGS] and TICK_FLAGS == 6
    assert t.volume.tolist() == [0] and t.last.tolist() == [0.0]
    assert t.symbol == "EURUSD"


def test_generate_ticks_volume_2_open_then_close_half_minute_apart() -> None:
    t = generate_ticks(make_bars([(*BULL, 2)]), POINT, 1)

    assert t.bid.tolist() == [1.10010, 1.10020]
    assert t.ask.tolist() == [1.10012, 1.10022]
    assert t.time.tolist() == [T0, T0 + 30 * SEC]


def test_generate_ticks_volume_4_bullish_visits_low_first() -> None:
    t = generate_ticks(make_bars([(*BULL, 4)]), POINT, 1)

    assert t.bid.tolist() == [1.10010, 1.10000, 1.10030, 1.10020]
    assert t.ask.tolist() == [1.10012, 1.10002, 1.10032, 1.10022]
    assert t.time.tolist() == [T0, T0 + 15 * SEC, T0 + 30 * SEC, T0 + 45 * SEC]


def test_generate_ticks_volume_4_bearish_visits_high_first() -> None:
    assert bar_ticks(make_bars([(*BEAR, 4)])) == [[1.10020, 1.10030, 1.10000, 1.10010]]


def test_generate_ticks_doji_after_bullish_goes_high_first() -> None:
    ticks = bar_ticks(make_bars([(*BULL, 4), (*DOJI, 4)]))

    assert ticks[1] == [1.10010, 1.10030, 1.10000, 1.10010]


def test_generate_ticks_doji_after_bearish_goes_low_first() -> None:
    ticks = bar_ticks(make_bars([(*BEAR, 4), (*DOJI, 4)]))

    assert ticks[1] == [1.10010, 1.10000, 1.10030, 1.10010]


def test_generate_ticks_doji_chain_alternates_and_leading_doji_is_bearish() -> None:
    ticks = bar_ticks(make_bars([(*DOJI, 4), (*DOJI, 4), (*DOJI, 4)]))

    assert ticks == [
        [1.10010, 1.10030, 1.10000, 1.10010],  # no previous bar: taken as bullish -> doji bearish
        [1.10010, 1.10000, 1.10030, 1.10010],
        [1.10010, 1.10030, 1.10000, 1.10010],
    ]


def test_generate_ticks_volume_0_generated_as_volume_4() -> None:
    assert bar_ticks(make_bars([(*BULL, 0), (*BEAR, 0)])) == [
        [1.10010, 1.10000, 1.10030, 1.10020],
        [1.10020, 1.10030, 1.10000, 1.10010],
    ]


def test_generate_ticks_volume_3_inside_open_close_still_touches_both_extremes() -> None:
    assert bar_ticks(make_bars([(*BULL, 3)])) == [[1.10010, 1.10000, 1.10030, 1.10020]]


def test_generate_ticks_volume_3_open_at_low_three_ticks() -> None:
    assert bar_ticks(make_bars([(1.10000, 1.10030, 1.10000, 1.10020, 3)])) == [[1.10000, 1.10030, 1.10020]]


def test_generate_ticks_flat_bar_repeats_the_price() -> None:
    assert bar_ticks(make_bars([(1.1, 1.1, 1.1, 1.1, 5)])) == [[1.1] * 5]


def test_generate_ticks_volume_12_reference_points_split_3_5_3() -> None:
    m1 = make_bars([(1.10010, 1.10130, 1.10000, 1.10120, 12)])

    ticks = bar_ticks(m1)

    assert ticks == [
        [
            1.10010,
            *[1.10002, 1.10007, 1.10000],  # opening shadow: 3/4, 1/4, all of it
            *[1.10065, 1.10033, 1.10098, 1.10065, 1.10130],  # range: 1/2, 1/4, 3/4, 1/2, 1
            *[1.10122, 1.10127, 1.10120],  # closing shadow
        ]
    ]
    assert reference_prices(1.10010, 1.10130, 1.10000, 1.10120, 12, BULLISH, POINT).tolist() == ticks[0]


def test_generate_ticks_long_path_few_ticks_evenly_sampled() -> None:
    # O=10, L=0, H=30, C=20 points: path 50 points long, 20 ticks -> larger steps, no randomness.
    a = bar_ticks(make_bars([(*BULL, 20)]), seed=1)
    b = bar_ticks(make_bars([(*BULL, 20)]), seed=2)

    assert a == b
    assert len(a[0]) == 20
    assert a[0][:4] == [1.10010, 1.10006, 1.10002, 1.10005]


# --------------------------------------------------------------------------------------------------
# Volume 20: structure, seeds


SMALL_BULL = (1.10002, 1.10005, 1.10000, 1.10004, 20)  # path 2 + 5 + 1 = 8 points < 19 steps
SMALL_BEAR = (1.10003, 1.10005, 1.10000, 1.10001, 20)


@pytest.mark.parametrize("row", [SMALL_BULL, SMALL_BEAR, (*BULL, 20), (*BEAR, 20)])
def test_generate_ticks_volume_20_structural_properties(row: tuple[float, float, float, float, int]) -> None:
    m1 = make_bars([row])
    o, h, lo, c, _ = row

    t = generate_ticks(m1, POINT, 11)
    bid = t.bid.tolist()

    assert len(bid) == 20
    assert bid[0] == o and bid[-1] == c
    assert h in bid and lo in bid
    assert all(lo <= p <= h for p in bid)
    steps = (t.bid - o) / POINT
    assert np.allclose(steps, np.round(steps), atol=1e-6)
    assert np.all((t.time >= T0) & (t.time < T0 + MIN))
    assert np.all(np.diff(t.time) > 0)
    assert np.array_equal(t.ask, np.round(t.bid + 2 * POINT, 5))
    first_low, first_high = bid.index(lo), bid.index(h)
    assert (first_low < first_high) if c > o else (first_high < first_low)


def test_generate_ticks_small_range_every_step_one_point() -> None:
    t = generate_ticks(make_bars([SMALL_BULL]), POINT, 3)

    steps = np.round(np.diff(t.bid) / POINT).astype(int)

    assert set(steps.tolist()) <= {-1, 0, 1}
    assert int(np.sum(steps == 0)) == 1  # 11 surplus ticks: 5 oscillation pairs + 1 repeat


def test_generate_ticks_same_seed_identical_arrays() -> None:
    m1 = make_bars([SMALL_BULL, SMALL_BEAR, (*BULL, 20), (*DOJI, 0), (*BEAR, 7)])

    a, b = generate_ticks(m1, POINT, 42), generate_ticks(m1, POINT, 42)

    for name in ("time", "bid", "ask", "last", "volume", "flags"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_generate_ticks_other_seed_changes_oscillations_not_reference_points() -> None:
    m1 = make_bars([SMALL_BULL])
    refs = reference_prices(*SMALL_BULL[:4], 20, BULLISH, POINT).tolist()

    a = generate_ticks(m1, POINT, 1).bid.tolist()
    b = generate_ticks(m1, POINT, 2).bid.tolist()

    assert a != b
    assert refs[0] == 1.10002 and refs[-1] == 1.10004 and 1.10000 in refs and 1.10005 in refs
    assert is_subsequence(refs, a) and is_subsequence(refs, b)


def test_generate_ticks_slice_equals_same_bars_of_full_run() -> None:
    m1 = make_bars([(*BULL, 4), (*DOJI, 9), SMALL_BULL, (*DOJI, 15), SMALL_BEAR, (*BEAR, 1)])
    full = generate_ticks(m1, POINT, 5)

    part = generate_ticks(m1, POINT, 5, start=2, stop=5)

    keep = (full.time >= m1.time[2]) & (full.time < m1.time[5])
    assert np.array_equal(part.time, full.time[keep])
    assert np.array_equal(part.bid, full.bid[keep])
    assert np.array_equal(part.ask, full.ask[keep])


def test_generate_ticks_bad_range_raises() -> None:
    with pytest.raises(ValueError, match="bad bar range"):
        generate_ticks(make_bars([(*BULL, 4)]), POINT, 1, start=1, stop=3)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 40),  # Open, Close, shadows in points
    st.integers(0, 40),
    st.integers(0, 15),
    st.integers(0, 15),
    st.integers(0, 80),  # tick volume
    st.integers(0, 2**64 - 1),
)
def test_generate_ticks_any_bar_invariants_hold(
    o: int, c: int, up: int, down: int, v: int, seed: int
) -> None:
    lo = 110_000 - down
    bar = ((110_000 + o) / 1e5, (110_000 + max(o, c) + up) / 1e5, lo / 1e5, (110_000 + c) / 1e5, v)
    m1 = make_bars([bar])

    t = generate_ticks(m1, POINT, seed)
    bid = t.bid.tolist()

    assert len(bid) == int(expected_count(m1)[0])
    assert bid[-1] == bar[3]
    assert all(bar[2] <= p <= bar[1] for p in bid)
    assert np.all(np.diff(t.time) > 0) and t.time[0] == T0 and t.time[-1] < T0 + MIN
    if len(bid) > 1:
        assert bid[0] == bar[0]
    if len(bid) > 2:
        assert max(bid) == bar[1] and min(bid) == bar[2]
        first_low, first_high = bid.index(bar[2]), bid.index(bar[1])
        if c > o:
            assert first_low <= first_high
        elif c < o:
            assert first_high <= first_low


# --------------------------------------------------------------------------------------------------
# Real data


def _eurusd_day(shared_data: Path) -> Bars:
    bars = read_m1_parquet(shared_data / "m1" / "EURUSD_M1_2018-2019.parquet", "EURUSD")
    start = np.datetime64("2018-03-14T00:00", "ns").astype(np.int64)
    return bars.between(int(start), int(start + 24 * 60 * MIN))


def expected_count(m1: Bars) -> np.ndarray:
    """Rule: 1 -> 1, 2 -> 2, 0 -> 4, >= 3 -> volume, but 4 for volume 3 with Open and Close inside."""
    v = np.where(m1.tick_volume == 0, 4, m1.tick_volume)
    inside = (m1.open > m1.low) & (m1.open < m1.high) & (m1.close > m1.low) & (m1.close < m1.high)
    return np.where((v == 3) & inside, 4, v)


def check_within_bars(m1: Bars, ticks_time: np.ndarray, bid: np.ndarray) -> None:
    idx = np.searchsorted(m1.time, ticks_time, "right") - 1
    assert np.all(idx >= 0)
    assert np.all(ticks_time - m1.time[idx] < MIN)
    assert np.array_equal(np.bincount(idx, minlength=len(m1)), expected_count(m1))
    assert np.all(bid >= m1.low[idx]) and np.all(bid <= m1.high[idx])
    starts = np.searchsorted(idx, np.arange(len(m1)), "left")
    ends = np.searchsorted(idx, np.arange(len(m1)), "right") - 1
    count = expected_count(m1)
    multi = count > 1
    assert np.array_equal(bid[starts[multi]], m1.open[multi])
    assert np.array_equal(bid[ends], m1.close)
    full = count > 2  # volumes 1 and 2 are Close / Open+Close only (spec 6.2)
    assert np.array_equal(np.maximum.reduceat(bid, starts)[full], m1.high[full])
    assert np.array_equal(np.minimum.reduceat(bid, starts)[full], m1.low[full])


@pytest.mark.shared_data
def test_generate_ticks_real_eurusd_day_without_volume_four_ticks_inside_each_bar(shared_data: Path) -> None:
    m1 = _eurusd_day(shared_data)
    assert len(m1) > 1000 and not m1.tick_volume.any()

    t = generate_ticks(m1, POINT, 9)

    assert len(t) == 4 * len(m1)
    check_within_bars(m1, t.time, t.bid)


@pytest.mark.shared_data
def test_generate_ticks_real_eurusd_day_random_volumes_count_matches_rule(shared_data: Path) -> None:
    day = _eurusd_day(shared_data)
    volume = np.random.default_rng(3).integers(0, 40, len(day)).astype(np.int64)
    m1 = Bars(day.symbol, day.timeframe, day.time, day.open, day.high, day.low, day.close, volume, day.spread)

    t = generate_ticks(m1, POINT, 9)

    assert len(t) == int(expected_count(m1).sum())
    check_within_bars(m1, t.time, t.bid)
    steps = (t.bid - np.repeat(m1.open, expected_count(m1))) / POINT
    assert np.allclose(steps, np.round(steps), atol=1e-6)


# --------------------------------------------------------------------------------------------------
# OHLC path and first touch over bars


def test_ohlc_path_orders_extremes_by_direction() -> None:
    assert ohlc_path(*BULL, BEARISH) == (1.10010, 1.10000, 1.10030, 1.10020)
    assert ohlc_path(*BEAR, BULLISH) == (1.10020, 1.10030, 1.10000, 1.10010)
    assert ohlc_path(*DOJI, BULLISH) == (1.10010, 1.10030, 1.10000, 1.10010)
    assert ohlc_path(*DOJI, BEARISH) == (1.10010, 1.10000, 1.10030, 1.10010)


def test_bar_directions_doji_opposite_of_previous() -> None:
    m1 = make_bars([(*BULL, 0), (*DOJI, 0), (*DOJI, 0), (*BEAR, 0), (*DOJI, 0)])

    assert bar_directions(m1.open, m1.close, BULLISH).tolist() == [1, -1, 1, -1, 1]


def touch(
    m1: Bars, is_buy: bool, sl: float, tp: float, limit: float = 0.0, stop: float = 0.0, start: int = 0
) -> tuple[int, int, float]:
    direction = bar_directions(m1.open, m1.close, BULLISH)
    return first_touch_ohlc(
        m1.open,
        m1.high,
        m1.low,
        m1.close,
        direction,
        m1.spread,
        POINT,
        start,
        len(m1),
        is_buy,
        sl,
        tp,
        limit,
        stop,
    )


def test_first_touch_ohlc_bullish_bar_buy_hits_sl_before_tp() -> None:
    m1 = make_bars([(*BULL, 0)], spread=0)

    assert touch(m1, True, 1.10005, 1.10025) == (0, SL, 1.10005)
    # the pessimistic kernel flags the same bar as ambiguous
    i, kind, _, ambiguous = kernels.first_trigger(
        m1.open, m1.high, m1.low, m1.spread, POINT, 0, 1, True, 1.10005, 1.10025
    )
    assert (i, kind, ambiguous) == (0, kernels.SL, True)


def test_first_touch_ohlc_bearish_bar_buy_hits_tp_first() -> None:
    assert touch(make_bars([(*BEAR, 0)], spread=0), True, 1.10005, 1.10025) == (0, TP, 1.10025)


def test_first_touch_ohlc_doji_follows_chain() -> None:
    after_bull = make_bars([(*BULL, 0), (*DOJI, 0)], spread=0)
    after_bear = make_bars([(*BEAR, 0), (*DOJI, 0)], spread=0)

    assert touch(after_bull, True, 1.10005, 1.10025, start=1) == (1, TP, 1.10025)
    assert touch(after_bear, True, 1.10005, 1.10025, start=1) == (1, SL, 1.10005)


def test_first_touch_ohlc_sell_levels_on_ask() -> None:
    # bullish bar, spread 2: Ask path 1.10012 -> 1.10002 -> 1.10032 -> 1.10022
    m1 = make_bars([(*BULL, 0)], spread=2)

    assert touch(m1, False, 1.10030, 1.10005) == (0, TP, 1.10005)
    assert touch(m1, False, 1.10030, 1.10001) == (0, SL, 1.10030)  # Ask low 1.10002 misses the TP


def test_first_touch_ohlc_gap_through_level_fills_at_open() -> None:
    m1 = make_bars([(1.10050, 1.10060, 1.10040, 1.10055, 0), (*BULL, 0)], spread=2)

    assert touch(m1, True, 1.10020, 0.0) == (1, SL, 1.10010)  # Bid opens below the SL
    assert touch(m1, False, 0.0, 1.10015) == (1, TP, 1.10012)  # Ask opens below the sell TP
    assert touch(m1, False, 1.10058, 0.0) == (0, SL, 1.10058)  # no gap: level reached inside bar 0


def test_first_touch_ohlc_pending_levels_follow_path() -> None:
    bull = make_bars([(*BULL, 0)], spread=2)
    bear = make_bars([(*BEAR, 0)], spread=2)

    # buy limit Ask <= 1.10005, buy stop Ask >= 1.10025
    assert touch(bull, True, 0.0, 0.0, limit=1.10005, stop=1.10025) == (0, LIMIT, 1.10005)
    assert touch(bear, True, 0.0, 0.0, limit=1.10005, stop=1.10025) == (0, STOP, 1.10025)
    # sell limit Bid >= 1.10025, sell stop Bid <= 1.10005
    assert touch(bull, False, 0.0, 0.0, limit=1.10025, stop=1.10005) == (0, STOP, 1.10005)
    assert touch(bear, False, 0.0, 0.0, limit=1.10025, stop=1.10005) == (0, LIMIT, 1.10025)


def test_first_touch_ohlc_none_outside_range() -> None:
    m1 = make_bars([(*BULL, 0), (*BULL, 0)], spread=0)

    assert touch(m1, True, 1.09990, 1.10040) == (-1, NONE, 0.0)
    assert touch(m1, True, 1.10005, 0.0, start=2) == (-1, NONE, 0.0)


def test_first_touch_ohlc_agrees_with_ticks_on_bar_and_kind() -> None:
    rng = np.random.default_rng(17)
    close = 1.1 + np.cumsum(rng.integers(-6, 7, 300)) / 1e5
    open_ = np.concatenate(([1.1], close[:-1]))
    rows = [
        (round(o, 5), round(max(o, c) + int(rng.integers(0, 6)) / 1e5, 5),
         round(min(o, c) - int(rng.integers(0, 6)) / 1e5, 5), round(c, 5), 0)
        for o, c in zip(open_, close, strict=True)
    ]  # fmt: skip
    m1 = make_bars(rows, spread=3)
    t = generate_ticks(m1, POINT, 1)
    for entry in range(0, 280, 7):
        for is_buy in (True, False):
            ref = m1.open[entry]
            sl, tp = (ref - 8e-5, ref + 8e-5) if is_buy else (ref + 8e-5, ref - 8e-5)
            i, kind, _ = touch(m1, is_buy, sl, tp, start=entry)
            k, tkind, _ = first_touch_ticks(t.bid, t.ask, 4 * entry, len(t), is_buy, sl, tp)
            assert kind == tkind
            assert i == (k // 4 if k >= 0 else -1)


# --------------------------------------------------------------------------------------------------
# First touch over ticks


def test_first_touch_ticks_fills_at_triggering_tick_price() -> None:
    bid = np.array([1.10010, 1.10008, 1.10003, 1.09990])
    ask = bid + 2e-5

    assert first_touch_ticks(bid, ask, 0, 4, True, 1.10000, 1.10050) == (3, SL, 1.09990)  # gap: worse
    assert first_touch_ticks(bid, ask, 0, 4, False, 1.10050, 1.10006) == (2, TP, ask[2])  # Ask 1.10005
    assert first_touch_ticks(bid, ask, 0, 4, True, 0.0, 0.0, 1.10011, 0.0) == (1, LIMIT, ask[1])
    assert first_touch_ticks(bid, ask, 0, 2, True, 1.10000, 0.0) == (-1, NONE, 0.0)


def test_first_touch_ticks_on_generated_ticks_gap_between_ticks() -> None:
    t = generate_ticks(make_bars([(*BULL, 4)], spread=2), POINT, 1)

    # ticks jump Open -> Low: the buy SL at 1.10005 fills at the Low tick, 5 points worse
    assert first_touch_ticks(t.bid, t.ask, 0, len(t), True, 1.10005, 1.10025) == (1, SL, 1.10000)
    assert first_touch_ticks(t.bid, t.ask, 0, len(t), False, 1.10040, 1.10005) == (1, TP, 1.10002)
