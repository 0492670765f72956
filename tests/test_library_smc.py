"""Smart Money Concepts built-ins: building blocks on hand-made bars (exact values, confirmation
delays, causality under truncation), exact signals of hand-made scenarios, lookahead check and
golden runs on real EURUSD H1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from mt5tester.config import parse_config
from mt5tester.engine.build import build
from mt5tester.engine.lookahead import check_lookahead
from mt5tester.engine.loop import Runner
from mt5tester.model import constants as C
from mt5tester.model.bars import BarArrays
from mt5tester.model.signal import Signal
from mt5tester.model.timeframe import Timeframe
from mt5tester.strategy.base import Strategy
from mt5tester.strategy.library import smc
from mt5tester.strategy.loader import BUILTINS, resolve_class

from conftest import base_config

NAN = np.nan

# Hand-made structure (swing_left = swing_right = 1), worked out by hand:
#   swing highs: pivot 1 (12.0) confirmed at 2, pivot 5 (12.5) confirmed at 6
#   swing lows:  pivot 3 (8.0) confirmed at 4, pivot 7 (7.5) at 8, pivot 9 (7.0) at 10
#   bar 5 closes 12.2 > 12.0: first break, BOS up        bar 7 closes 7.8 < 8.0: CHoCH down
#   bar 9 closes 7.2 < 7.5: BOS down                      bar 11 closes 12.8 > 12.5: CHoCH up
STRUCTURE = pd.DataFrame(
    {
        #         0     1     2     3     4     5     6     7     8    9    10    11
        "open": [9.8, 10.2, 11.0, 10.0, 9.0, 10.8, 12.2, 11.5, 7.8, 8.5, 7.2, 8.9],
        "high": [10.0, 12.0, 11.0, 10.5, 11.0, 12.5, 12.4, 11.6, 9.0, 8.8, 9.0, 13.0],
        "low": [9.0, 10.0, 9.8, 8.0, 8.5, 10.0, 11.0, 7.5, 7.6, 7.0, 7.1, 8.8],
        "close": [9.5, 11.0, 10.0, 9.0, 10.8, 12.2, 11.5, 7.8, 8.5, 7.2, 8.9, 12.8],
    }
)


def _frame(bars: pd.DataFrame) -> pd.DataFrame:
    """The bar columns prepare() gets (hourly times from 2024-01-01)."""
    n = len(bars)
    out = pd.DataFrame({"time": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")})
    for col in ("open", "high", "low", "close"):
        out[col] = bars[col].to_numpy(dtype=float)
    out["tick_volume"] = np.full(n, 100, dtype=np.int64)
    out["spread"] = np.full(n, 10, dtype=np.int32)
    return out


def _mirror(bars: pd.DataFrame, axis: float = 20.0) -> pd.DataFrame:
    """Prices reflected around ``axis``: highs become lows, up becomes down."""
    return pd.DataFrame(
        {
            "open": axis - bars["open"],
            "high": axis - bars["low"],
            "low": axis - bars["high"],
            "close": axis - bars["close"],
        }
    )


def _signals_per_bar(strategy: Strategy, bars: pd.DataFrame) -> dict[int, list[Signal]]:
    """Run prepare() once, then generate_signals() at each bar close on the bars up to it."""
    frame = _frame(bars)
    extra = strategy.prepare("EURUSD", Timeframe.H1, frame.copy())
    assert extra is not None and len(extra) == len(frame)
    out = {}
    for k in range(1, len(frame) + 1):
        f = frame.iloc[:k]
        df = BarArrays(
            np.arange(k, dtype=np.int64),
            f["open"].to_numpy(),
            f["high"].to_numpy(),
            f["low"].to_numpy(),
            f["close"].to_numpy(),
            f["tick_volume"].to_numpy(),
            f["spread"].to_numpy(),
            {c: extra[c].to_numpy()[:k] for c in extra.columns},
        )
        sigs = strategy.generate_signals("EURUSD", Timeframe.H1, df)  # type: ignore[arg-type]
        if sigs:
            out[k - 1] = sigs
    return out


def _make(cls: type[Strategy], **params: object) -> Strategy:
    return cls("s", cls.Params(**params), ["EURUSD"], Timeframe.H1, 50)


def _eq(a: pd.Series | np.ndarray, b: list) -> None:
    np.testing.assert_array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float))


# ------------------------------------------------------------------------------------- swings
def test_swings_hand_made_confirmed_right_bars_after_pivot() -> None:
    high = np.array([1, 2, 5, 3, 2, 3, 4, 7, 6, 5], dtype=float)
    sw = smc.swings(high, high - 1, left=2, right=2)
    # Swing high 5 at bar 2 is known at bar 4, 7 at bar 7 at bar 9; swing low 1 (bar 4) at bar 6.
    assert list(np.flatnonzero(sw["swing_high_new"])) == [4, 9]
    _eq(sw["swing_high"], [NAN, NAN, NAN, NAN, 5, 5, 5, 5, 5, 7])
    _eq(sw["swing_high_id"], [0, 0, 0, 0, 1, 1, 1, 1, 1, 2])
    assert list(np.flatnonzero(sw["swing_low_new"])) == [6]
    _eq(sw["swing_low"], [NAN] * 6 + [1, 1, 1, 1])


def test_swings_equal_highs_make_no_swing() -> None:
    high = np.array([1, 3, 3, 1, 1], dtype=float)
    sw = smc.swings(high, high - 1, left=1, right=1)
    assert not sw["swing_high_new"].any()


def test_swings_zero_confirmation_delay_rejected() -> None:
    with pytest.raises(ValueError, match="right must be >= 1"):
        smc.swings(np.ones(5), np.ones(5), left=2, right=0)


# ------------------------------------------------------------------------------------- structure
def test_market_structure_hand_made_bos_choch_and_trend() -> None:
    b = STRUCTURE
    sw = smc.swings(b["high"], b["low"], 1, 1)
    _eq(sw["swing_high"], [NAN, NAN, 12, 12, 12, 12, 12.5, 12.5, 12.5, 12.5, 12.5, 12.5])
    _eq(sw["swing_low"], [NAN, NAN, NAN, NAN, 8, 8, 8, 8, 7.5, 7.5, 7.0, 7.0])
    ms = smc.market_structure(b["close"], sw)
    on = {col: list(np.flatnonzero(ms[col])) for col in ms.columns if col != "trend"}
    assert on == {
        "break_up": [5, 11],
        "break_down": [7, 9],
        "bos_up": [5],
        "bos_down": [9],
        "choch_up": [11],
        "choch_down": [7],
    }
    assert list(ms["trend"]) == [0, 0, 0, 0, 0, 1, 1, -1, -1, -1, -1, 1]


def test_market_structure_swing_broken_once_until_a_new_swing() -> None:
    # Swing high 12 (bar 1) confirmed at 2; closes above it at bars 3, 4 and 5: one break (bar 3).
    high = [10.0, 12.0, 11.0, 12.5, 12.6, 12.7]
    low = [9.0, 10.0, 10.5, 11.0, 12.0, 12.1]
    close = [9.5, 11.0, 10.8, 12.3, 12.4, 12.6]
    ms = smc.market_structure(close, smc.swings(high, low, 1, 1))
    assert list(np.flatnonzero(ms["break_up"])) == [3]
    assert list(np.flatnonzero(ms["bos_up"])) == [3]


# ------------------------------------------------------------------------------------- order blocks
def test_order_blocks_hand_made_zones_created_at_break_valid_until_mitigated() -> None:
    b = STRUCTURE
    ms = smc.market_structure(b["close"], smc.swings(b["high"], b["low"], 1, 1))
    ob = smc.order_blocks(b["open"], b["high"], b["low"], b["close"], ms["break_up"], ms["break_down"], 10)
    # Bull OB of the break at 5: bar 3 (last bearish before 5), zone [8, 10.5]; bar 7's low 7.5
    # reaches 10.5: mitigated. Break at 11: bar 9, zone [7.0, 8.8].
    assert list(np.flatnonzero(ob["bull_ob_new"])) == [5, 11]
    _eq(ob["bull_ob_top"], [NAN] * 5 + [10.5, 10.5] + [NAN] * 4 + [8.8])
    _eq(ob["bull_ob_bottom"], [NAN] * 5 + [8.0, 8.0] + [NAN] * 4 + [7.0])
    assert list(np.flatnonzero(ob["bull_ob_mitigated"])) == [7]
    # Bear OB of the break at 7: bar 5 (last bullish before 7), zone [10, 12.5]; replaced at 9 by
    # bar 8's zone [7.6, 9.0], mitigated at 10 (high 9.0 >= 7.6).
    assert list(np.flatnonzero(ob["bear_ob_new"])) == [7, 9]
    _eq(ob["bear_ob_top"], [NAN] * 7 + [12.5, 12.5, 9.0, NAN, NAN])
    _eq(ob["bear_ob_bottom"], [NAN] * 7 + [10.0, 10.0, 7.6, NAN, NAN])
    assert list(np.flatnonzero(ob["bear_ob_mitigated"])) == [10]


def test_order_blocks_candle_older_than_max_age_ignored() -> None:
    b = STRUCTURE
    ms = smc.market_structure(b["close"], smc.swings(b["high"], b["low"], 1, 1))
    ob = smc.order_blocks(b["open"], b["high"], b["low"], b["close"], ms["break_up"], ms["break_down"], 1)
    # Break at 5: OB candle 3 is 2 bars back; break at 11: candle 9 is 2 back; bear at 7: 5 is 2 back;
    # bear at 9: candle 8 is 1 back -> the only OB left.
    assert not ob["bull_ob_new"].any()
    assert list(np.flatnonzero(ob["bear_ob_new"])) == [9]


# ------------------------------------------------------------------------------------- fair value gaps
FVG_BARS = pd.DataFrame(
    {
        "open": [9.5, 10.2, 11.5, 12.5, 12.5, 11.0],
        "high": [10.0, 12.0, 13.0, 13.5, 13.0, 12.0],
        "low": [9.0, 10.0, 11.0, 12.0, 10.5, 9.5],
        "close": [9.8, 11.8, 12.8, 13.0, 11.5, 10.0],
    }
)


def test_fair_value_gaps_bullish_known_at_third_candle_retest_then_fill() -> None:
    f = smc.fair_value_gaps(FVG_BARS["high"], FVG_BARS["low"])
    # low[2] = 11 > high[0] = 10: gap [10, 11] at bar 2; bar 4 (low 10.5) retests, bar 5 (9.5) fills.
    assert list(np.flatnonzero(f["bull_fvg_new"])) == [2]
    _eq(f["bull_fvg_top"], [NAN, NAN, 11, 11, 11, NAN])
    _eq(f["bull_fvg_bottom"], [NAN, NAN, 10, 10, 10, NAN])
    _eq(f["bull_fvg_age"], [-1, -1, 0, 1, 2, 3])
    assert list(np.flatnonzero(f["bull_fvg_retest"])) == [4]
    assert list(np.flatnonzero(f["bull_fvg_filled"])) == [5]
    assert not f["bear_fvg_new"].any()


def test_fair_value_gaps_bearish_mirror() -> None:
    m = _mirror(FVG_BARS)
    f = smc.fair_value_gaps(m["high"], m["low"])
    assert list(np.flatnonzero(f["bear_fvg_new"])) == [2]
    _eq(f["bear_fvg_top"], [NAN, NAN, 10, 10, 10, NAN])
    _eq(f["bear_fvg_bottom"], [NAN, NAN, 9, 9, 9, NAN])
    assert list(np.flatnonzero(f["bear_fvg_retest"])) == [4]
    assert list(np.flatnonzero(f["bear_fvg_filled"])) == [5]
    assert not f["bull_fvg_new"].any()


def test_fair_value_gaps_narrower_than_min_size_ignored() -> None:
    f = smc.fair_value_gaps(FVG_BARS["high"], FVG_BARS["low"], min_size=1.5)  # the gap is 1.0 wide
    assert not f["bull_fvg_new"].any() and not f["bull_fvg_retest"].any()


def test_fair_value_gaps_wick_through_is_a_fill_not_a_retest() -> None:
    bars = FVG_BARS.copy()
    bars.loc[4, "low"] = 9.9  # the first touch goes through the bottom (10)
    f = smc.fair_value_gaps(bars["high"], bars["low"])
    assert not f["bull_fvg_retest"].any()
    assert list(np.flatnonzero(f["bull_fvg_filled"])) == [4]


# ------------------------------------------------------------------------------------- sweeps
SWEEP_BARS = pd.DataFrame(
    {
        "open": [9.2, 9.6, 10.4, 10.0, 10.8],
        "high": [10.0, 11.0, 10.5, 11.5, 11.8],
        "low": [9.0, 9.5, 9.6, 9.8, 10.0],
        "close": [9.5, 10.5, 10.0, 10.8, 10.2],
    }
)


def test_liquidity_sweeps_high_swept_once_and_closed_back_inside() -> None:
    b = SWEEP_BARS
    sw = smc.swings(b["high"], b["low"], 1, 1)
    s = smc.liquidity_sweeps(b["high"], b["low"], b["close"], sw)
    # Swing high 11 (bar 1) known at bar 2; bar 3 trades to 11.5 and closes 10.8: sweep; bar 4
    # trades above 11 again but the liquidity is already taken.
    assert list(np.flatnonzero(s["sweep_high"])) == [3]
    _eq(s["sweep_high_level"], [NAN, NAN, NAN, 11.0, NAN])
    assert not s["sweep_low"].any()


def test_liquidity_sweeps_low_mirror() -> None:
    m = _mirror(SWEEP_BARS)
    s = smc.liquidity_sweeps(m["high"], m["low"], m["close"], smc.swings(m["high"], m["low"], 1, 1))
    assert list(np.flatnonzero(s["sweep_low"])) == [3]
    _eq(s["sweep_low_level"], [NAN, NAN, NAN, 9.0, NAN])
    assert not s["sweep_high"].any()


def test_liquidity_sweeps_close_beyond_is_a_breakout_not_a_sweep() -> None:
    b = SWEEP_BARS.copy()
    b.loc[3, "close"] = 11.2
    s = smc.liquidity_sweeps(b["high"], b["low"], b["close"], smc.swings(b["high"], b["low"], 1, 1))
    assert not s["sweep_high"].any()


def test_liquidity_sweeps_unconfirmed_swing_not_swept() -> None:
    # With right = 2 the swing high of bar 1 is known only at bar 3: bar 3 (the same bar) cannot
    # sweep a swing it confirms, and bar 4's high 11.8 is the first one beyond it; it closes 10.2.
    b = SWEEP_BARS.copy()
    b.loc[3, "high"] = 10.9
    sw = smc.swings(b["high"], b["low"], 1, 2)
    _eq(sw["swing_high"], [NAN, NAN, NAN, 11.0, 11.0])
    s = smc.liquidity_sweeps(b["high"], b["low"], b["close"], sw)
    assert list(np.flatnonzero(s["sweep_high"])) == [4]


# ------------------------------------------------------------------------------------- causality
def _random_bars(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 1.1 + np.cumsum(rng.normal(0, 0.001, n))
    open_ = np.r_[1.1, close[:-1]]
    wick = np.abs(rng.normal(0, 0.0007, (2, n)))
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + wick[0],
            "low": np.minimum(open_, close) - wick[1],
            "close": close,
        }
    )


def _blocks(b: pd.DataFrame) -> pd.DataFrame:
    sw = smc.swings(b["high"], b["low"], 3, 2)
    ms = smc.market_structure(b["close"], sw)
    ob = smc.order_blocks(b["open"], b["high"], b["low"], b["close"], ms["break_up"], ms["break_down"], 8)
    a = smc.atr(b["high"], b["low"], b["close"], 14)
    fvg = smc.fair_value_gaps(b["high"], b["low"], (0.3 * a).fillna(np.inf).to_numpy())
    sweeps = smc.liquidity_sweeps(b["high"], b["low"], b["close"], sw)
    return pd.concat([sw, ms, ob, fvg, sweeps, a.rename("atr")], axis=1)


def test_building_blocks_on_truncated_bars_identical_before_cut() -> None:
    bars = _random_bars(1500, seed=3)
    full = _blocks(bars)
    # The blocks fire often enough here for the comparison to mean something.
    for col in ("swing_high_new", "bos_up", "choch_down", "bull_ob_new", "bear_fvg_retest", "sweep_low"):
        assert full[col].sum() >= 5, col
    for k in (40, 333, 777, 1201, 1499):
        part = _blocks(bars.iloc[:k].reset_index(drop=True))
        assert len(part) == k
        pd.testing.assert_frame_equal(part, full.iloc[:k], check_exact=True)


@pytest.mark.parametrize("name", ["smc_structure", "smc_order_block", "smc_fvg", "smc_sweep"])
def test_prepare_on_truncated_bars_identical_before_cut(name: str) -> None:
    cls, _ = resolve_class(name, Path("."), name)
    strategy = _make(cls)
    frame = _frame(_random_bars(800, seed=5))
    full = strategy.prepare("EURUSD", Timeframe.H1, frame.copy())
    assert full is not None
    for k in (60, 401, 799):
        part = strategy.prepare("EURUSD", Timeframe.H1, frame.iloc[:k].copy())
        assert part is not None
        pd.testing.assert_frame_equal(part, full.iloc[:k], check_exact=True)


# ------------------------------------------------------------------------------------- strategies
def test_builtins_registered_with_smc_category() -> None:
    for name in ("smc_structure", "smc_order_block", "smc_fvg", "smc_sweep"):
        assert BUILTINS[name].startswith("mt5tester.strategy.library.smc:")
        cls, _ = resolve_class(name, Path("."), name)
        assert cls.category == "smc"


def test_params_invalid_rejected() -> None:
    with pytest.raises(ValidationError):
        smc.MarketStructure.Params(swing_right=0)
    with pytest.raises(ValidationError):
        smc.MarketStructure.Params(entries="all")
    with pytest.raises(ValidationError):
        smc.FairValueGap.Params(rr=0)
    with pytest.raises(ValidationError):
        smc.OrderBlockRetest.Params(unknown=1)


def test_market_structure_scenario_exact_signals() -> None:
    s = _make(smc.MarketStructure, swing_left=1, swing_right=1, rr=1.0, atr_period=1, sl_buffer_atr=0.0)
    got = _signals_per_bar(s, STRUCTURE)
    # 5: BOS up, stop at swing low 8.0, risk 4.2; 7: CHoCH down, stop at swing high 12.5, risk 4.7;
    # 9: BOS down, stop 12.5, risk 5.3; 11: CHoCH up, stop at swing low 7.0, risk 5.8.
    assert sorted(got) == [5, 7, 9, 11]
    want = {
        5: ("buy", 8.0, 16.4, "smc bos up"),
        7: ("sell", 12.5, 3.1, "smc choch down"),
        9: ("sell", 12.5, 1.9, "smc bos down"),
        11: ("buy", 7.0, 18.6, "smc choch up"),
    }
    for k, (direction, sl, tp, comment) in want.items():
        (sig,) = got[k]
        assert (sig.direction, sig.order_type, sig.sl, sig.comment) == (direction, "market", sl, comment)
        assert sig.tp == pytest.approx(tp, abs=1e-12)


def test_market_structure_choch_only_and_stop_buffer() -> None:
    s = _make(smc.MarketStructure, swing_left=1, swing_right=1, rr=None, entries="choch", atr_period=1)
    got = _signals_per_bar(s, STRUCTURE)
    assert sorted(got) == [7, 11]
    # ATR(1) = true range of the signal bar; the stop sits 0.1 of it beyond the swing.
    tr7 = max(11.6 - 7.5, abs(11.6 - 11.5), abs(7.5 - 11.5))
    assert got[7][0].sl == pytest.approx(12.5 + 0.1 * tr7) and got[7][0].tp is None
    tr11 = max(13.0 - 8.8, abs(13.0 - 8.9), abs(8.8 - 8.9))
    assert got[11][0].sl == pytest.approx(7.0 - 0.1 * tr11)


def test_order_block_retest_scenario_exact_limit_orders() -> None:
    s = _make(smc.OrderBlockRetest, swing_left=1, swing_right=1, rr=1.0, sl_buffer_atr=0.0)
    got = _signals_per_bar(s, STRUCTURE)
    want = {
        5: ("buy", 10.5, 8.0, 13.0),  # OB bar 3 [8, 10.5]
        7: ("sell", 10.0, 12.5, 7.5),  # OB bar 5 [10, 12.5]
        9: ("sell", 7.6, 9.0, 6.2),  # OB bar 8 [7.6, 9.0]
        11: ("buy", 8.8, 7.0, 10.6),  # OB bar 9 [7.0, 8.8]
    }
    assert sorted(got) == sorted(want)
    for k, (direction, price, sl, tp) in want.items():
        (sig,) = got[k]
        assert (sig.direction, sig.order_type, sig.price, sig.sl) == (direction, "limit", price, sl)
        assert sig.tp == pytest.approx(tp, abs=1e-12)


def test_order_block_retest_bos_only_skips_choch() -> None:
    s = _make(smc.OrderBlockRetest, swing_left=1, swing_right=1, include_choch=False, sl_buffer_atr=0.0)
    assert sorted(_signals_per_bar(s, STRUCTURE)) == [5, 9]


# Break up at 3 (close 11.8 > swing high 11 of bar 1), bullish gap [10.5, 11] at bar 4,
# retest at bar 6 (low 10.8) in the up trend.
FVG_TREND = pd.DataFrame(
    {
        "open": [9.2, 9.8, 10.2, 10.2, 11.8, 12.8, 13.0],
        "high": [10.0, 11.0, 10.5, 12.0, 13.0, 13.5, 13.2],
        "low": [9.0, 9.5, 9.2, 10.0, 11.0, 12.0, 10.8],
        "close": [9.5, 10.0, 9.8, 11.8, 12.8, 13.0, 12.5],
    }
)


def test_fair_value_gap_scenario_exact_signal() -> None:
    s = _make(smc.FairValueGap, swing_left=1, swing_right=1, sl_buffer_atr=0.0)
    got = _signals_per_bar(s, FVG_TREND)
    assert sorted(got) == [6]
    (sig,) = got[6]
    assert (sig.direction, sig.order_type, sig.sl, sig.tp) == ("buy", "market", 10.5, 16.5)


def test_fair_value_gap_mirror_sells_and_against_trend_skipped() -> None:
    s = _make(smc.FairValueGap, swing_left=1, swing_right=1, sl_buffer_atr=0.0)
    got = _signals_per_bar(s, _mirror(FVG_TREND))
    (sig,) = got[6]
    assert (sig.direction, sig.sl, sig.tp) == ("sell", 9.5, 3.5)
    assert not _signals_per_bar(s, FVG_BARS)  # a retest without an up trend: no trade
    old = _make(smc.FairValueGap, swing_left=1, swing_right=1, max_age=1, sl_buffer_atr=0.0)
    assert not _signals_per_bar(old, FVG_TREND)  # the retest comes 2 bars after the gap


def test_liquidity_sweep_scenario_exact_signals() -> None:
    s = _make(smc.LiquiditySweep, swing_left=1, swing_right=1, sl_buffer_atr=0.0)
    got = _signals_per_bar(s, SWEEP_BARS)
    assert sorted(got) == [3]
    (sig,) = got[3]
    # Sell at the close 10.8, stop above the sweep extreme 11.5, risk 0.7, rr 2.
    assert (sig.direction, sig.order_type, sig.sl, sig.tags) == ("sell", "market", 11.5, {"swept": 11.0})
    assert sig.tp == pytest.approx(9.4, abs=1e-12)
    (buy,) = _signals_per_bar(s, _mirror(SWEEP_BARS))[3]
    assert (buy.direction, buy.sl, buy.tags) == ("buy", 8.5, {"swept": 9.0})
    assert buy.tp == pytest.approx(10.6, abs=1e-12)


# ------------------------------------------------------------------------------------- real data
NAMES = ["smc_structure", "smc_order_block", "smc_fvg", "smc_sweep"]


def _real_config(shared_data: Path, tmp_path: Path, name: str, start: str, end: str) -> dict:
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    link = folder / "EURUSD_M1_x.parquet"
    if not link.exists():
        link.symlink_to(shared_data / "m1" / "EURUSD_M1_2018-2019.parquet")
    raw = base_config(folder, tmp_path, start=start, end=end, warmup_bars=20, seed=42)
    raw["strategies"] = [{"class": name, "name": name}]
    raw["execution"] = {"spread": {"source": "fixed", "points": 10}}
    raw["results"]["database_url"] = f"sqlite:///{tmp_path / (name + '.sqlite')}"
    return raw


@pytest.mark.shared_data
@pytest.mark.parametrize("name", NAMES)
def test_check_lookahead_real_eurusd_h1_clean(shared_data: Path, tmp_path: Path, name: str) -> None:
    cfg = parse_config(_real_config(shared_data, tmp_path, name, "2018-02-01", "2018-05-01"))
    report = check_lookahead(cfg, tmp_path, name, points=3)
    assert report.clean, [d.to_dict() for d in report.differences[:5]]
    assert report.signals_checked > 0 and report.values_checked > 0


@pytest.mark.shared_data
@pytest.mark.parametrize("name", NAMES)
def test_golden_run_real_eurusd_h1(shared_data: Path, tmp_path: Path, name: str, golden) -> None:
    raw = _real_config(shared_data, tmp_path, name, "2018-02-01", "2018-06-01")
    runner = Runner(build(parse_config(raw), tmp_path))
    result = runner.run()
    trades = sum(1 for d in runner.c.server.deals if d.entry == C.DEAL_ENTRY_OUT)
    assert trades > 0
    assert not runner.funnel.errors
    golden(name, {"trades": trades, "net_profit": round(result.final_balance - 10_000.0, 2)})
