"""Built-in technical strategies and their indicators: hand-computed indicator values, exact signals
on hand-made bars, the higher-timeframe filter never reading an unclosed bar, lookahead-clean and
golden runs on real data (../shared/data)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mt5tester.config import parse_config
from mt5tester.engine.build import build
from mt5tester.engine.lookahead import check_lookahead
from mt5tester.engine.loop import Runner
from mt5tester.model import constants as C
from mt5tester.model.bars import BAR_COLUMNS, BarArrays
from mt5tester.model.signal import Signal
from mt5tester.model.timeframe import Timeframe
from mt5tester.strategy.base import Strategy
from mt5tester.strategy.library import indicators as ind
from mt5tester.strategy.library.technical import (
    BollingerKeltnerBreakout,
    DonchianAtrTrend,
    HigherTimeframeTrendFilter,
    Macd,
    RsiMeanReversion,
    tag_value,
)
from mt5tester.strategy.loader import BUILTINS

from conftest import base_config

NAN = math.nan


def _eq(got: pd.Series, want: list[float]) -> None:
    np.testing.assert_allclose(got.to_numpy(dtype=float), np.array(want, dtype=float), rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------------ indicators


def test_sma_three_bars_hand_values() -> None:
    _eq(ind.sma([1, 2, 3, 4, 5], 3), [NAN, NAN, 2, 3, 4])


def test_ema_alpha_half_seeded_at_first_value() -> None:
    # n=3 -> alpha 0.5: 1, 1.5, 2.25, 3.125 (first n-1 rows hidden)
    _eq(ind.ema([1, 2, 3, 4], 3), [NAN, NAN, 2.25, 3.125])


def test_wilder_seeded_with_simple_mean_then_recursive() -> None:
    # seed mean(1, 2, 3) = 2; then 2 + (4 - 2)/3; then that + (5 - that)/3
    a = 2 + 2 / 3
    _eq(ind.wilder([1, 2, 3, 4, 5], 3), [NAN, NAN, 2, a, a + (5 - a) / 3])


def test_wilder_skips_leading_nan_for_the_seed() -> None:
    _eq(ind.wilder([NAN, 3, 6, 9], 2), [NAN, NAN, 4.5, 6.75])


def test_rsi_wilder_hand_values() -> None:
    # changes +1 +1 +1 +1 -1 -1 -1; n=3: seed gains 1, losses 0 at row 3 -> 100
    # row 5: gain (2*1 + 0)/3 = 2/3, loss 1/3 -> RS 2 -> 66.67; row 6: gain 4/9, loss 5/9 -> 44.44
    # row 7: gain 8/27, loss (10/9 + 1)/3 = 19/27 -> RS 8/19 -> 100 - 100 * 19/27
    _eq(
        ind.rsi([1, 2, 3, 4, 5, 4, 3, 2], 3),
        [NAN, NAN, NAN, 100, 100, 200 / 3, 400 / 9, 100 - 1900 / 27],
    )


def test_rsi_flat_prices_is_fifty_and_only_losses_zero() -> None:
    _eq(ind.rsi([5, 5, 5, 5], 2), [NAN, NAN, 50, 50])
    _eq(ind.rsi([5, 4, 3, 2], 2), [NAN, NAN, 0, 0])


def test_true_range_uses_previous_close_and_first_bar_range() -> None:
    tr = ind.true_range([10, 12, 11], [8, 9, 7], [9, 11, 8])
    _eq(tr, [2, 3, 4])  # 12-9 = |12-9|; |7-11| = 4 > 11-7 = 4 (tie)


def test_atr_wilder_hand_values() -> None:
    # TR 2, 3, 4 -> seed mean(2, 3) = 2.5 at row 1 -> 2.5 + (4 - 2.5)/2 = 3.25
    _eq(ind.atr([10, 12, 11], [8, 9, 7], [9, 11, 8], 2), [NAN, 2.5, 3.25])


def test_bollinger_population_std_bands() -> None:
    mid, up, lo = ind.bollinger([1, 2, 3, 5], 3, 2.0)
    sd1, sd2 = math.sqrt(2 / 3), math.sqrt(14 / 9)  # pop. std of (1,2,3) and (2,3,5)
    _eq(mid, [NAN, NAN, 2, 10 / 3])
    _eq(up, [NAN, NAN, 2 + 2 * sd1, 10 / 3 + 2 * sd2])
    _eq(lo, [NAN, NAN, 2 - 2 * sd1, 10 / 3 - 2 * sd2])


def test_keltner_ema_plus_minus_atr_multiple() -> None:
    h, lo, c = [10, 12, 11], [8, 9, 7], [9, 11, 8]
    mid, up, low = ind.keltner(h, lo, c, 2, 1.5)
    # EMA(2), alpha 2/3: 9, 9 + 2/3*2 = 10.3333, 10.3333 + 2/3*(8 - 10.3333); ATR(2): nan, 2.5, 3.25
    e1 = 9 + 4 / 3
    e2 = e1 + 2 / 3 * (8 - e1)
    _eq(mid, [NAN, e1, e2])
    _eq(up, [NAN, e1 + 3.75, e2 + 4.875])
    _eq(low, [NAN, e1 - 3.75, e2 - 4.875])


def test_donchian_includes_current_bar() -> None:
    up, lo = ind.donchian([1, 3, 2, 5], [0, 1, 1, 2], 2)
    _eq(up, [NAN, 3, 3, 5])
    _eq(lo, [NAN, 0, 1, 1])


def test_macd_line_signal_hist_hand_values() -> None:
    # fast 1 = the close; slow 3 (alpha .5): 5, 4.5, 3.75, 2.875, 1.9375, 1.96875
    line, sig, hist = ind.macd([5, 4, 3, 2, 1, 2], 1, 3, 2)
    _eq(line, [NAN, NAN, -0.75, -0.875, -0.9375, 0.03125])
    s3 = -0.75 + 2 / 3 * (-0.875 + 0.75)
    s4 = s3 + 2 / 3 * (-0.9375 - s3)
    s5 = s4 + 2 / 3 * (0.03125 - s4)
    _eq(sig, [NAN, NAN, NAN, s3, s4, s5])
    _eq(hist, [NAN, NAN, NAN, -0.875 - s3, -0.9375 - s4, 0.03125 - s5])


def test_macd_fast_not_shorter_rejected() -> None:
    with pytest.raises(ValueError, match="shorter"):
        ind.macd([1.0, 2.0], 5, 5, 2)


def test_adx_steady_uptrend_is_hundred() -> None:
    n = 12
    h = np.arange(n) + 2.0
    lo = np.arange(n) + 1.0
    c = np.arange(n) + 1.5
    a = ind.adx(h, lo, c, 3)
    # +DM = 1 every bar, -DM = 0 -> -DI 0 -> DX 100; first DI at row 3, first ADX at row 5
    assert a.iloc[:5].isna().all()
    _eq(a.iloc[5:], [100.0] * (n - 5))


def test_cross_up_and_down_need_previous_on_other_side() -> None:
    assert ind.cross_up([1, 2, 3, 2, 3], 2).tolist() == [False, False, True, False, True]
    assert ind.cross_down([3, 2, 1, 2, 1], [2, 2, 2, 2, 2]).tolist() == [False, False, True, False, True]
    assert ind.cross_up([NAN, 3], 2).tolist() == [False, False]


def test_indicators_are_causal_prefix_equal() -> None:
    rng = np.random.default_rng(3)
    c = pd.Series(1.1 + np.cumsum(rng.normal(0, 1e-3, 300)))
    h, lo = c + 5e-4, c - 5e-4
    for f in (
        lambda k: ind.rsi(c[:k], 14),
        lambda k: ind.atr(h[:k], lo[:k], c[:k], 14),
        lambda k: ind.macd(c[:k])[1],
        lambda k: ind.keltner(h[:k], lo[:k], c[:k])[1],
        lambda k: ind.adx(h[:k], lo[:k], c[:k]),
    ):
        full = f(300)
        _eq(f(150), full.iloc[:150].tolist())


# ------------------------------------------------------------------------- hand-made bar scenarios


class FakeTerminal:
    """The bits of the MetaTrader5 module the strategies read: symbol_info and copy_rates_from_pos."""

    def __init__(self, htf_closes: list[float] | None = None) -> None:
        self.htf_closes = htf_closes or []
        self.calls: list[tuple[str, int, int, int]] = []

    def symbol_info(self, symbol: str) -> SimpleNamespace:
        return SimpleNamespace(point=0.00001, digits=5)

    def copy_rates_from_pos(self, symbol: str, timeframe: int, start_pos: int, count: int) -> np.ndarray:
        self.calls.append((symbol, timeframe, start_pos, count))
        closes = self.htf_closes[-count:]
        out = np.zeros(len(closes), dtype=[("time", "<i8"), ("close", "<f8")])
        out["close"] = closes
        return out


def _bars(closes: list[float], half_range: float = 0.0) -> pd.DataFrame:
    n = len(closes)
    c = np.asarray(closes, dtype=float)
    return pd.DataFrame(
        {
            "time": pd.date_range("2018-01-02", periods=n, freq="h", tz="UTC"),
            "open": np.r_[c[:1], c[:-1]],
            "high": c + half_range,
            "low": c - half_range,
            "close": c,
            "tick_volume": np.full(n, 10, np.int64),
            "spread": np.full(n, 10, np.int32),
        }
    )


def _strategy(cls: type[Strategy], terminal: FakeTerminal | None = None, **params: Any) -> Strategy:
    params = {"atr_period": 1, **params}  # ATR stops from the last bar's true range alone
    s = cls("s", cls.Params.model_validate(params), ["EURUSD"], Timeframe.H1, 50)
    s.ctx.mt5 = terminal or FakeTerminal()
    return s


def _call(s: Strategy, bars: pd.DataFrame) -> list[Signal]:
    """Prepare on exactly these bars (history up to the last one) and call at the last bar's close."""
    extra = s.prepare("EURUSD", Timeframe.H1, bars.copy())
    assert extra is not None and len(extra) == len(bars)
    arrays = {c: bars[c].to_numpy() for c in BAR_COLUMNS if c != "time"}
    df = BarArrays(
        time=pd.DatetimeIndex(bars["time"]).as_unit("ns").asi8,
        extra={str(k): extra[k].to_numpy() for k in extra.columns},
        **arrays,
    )
    return s.generate_signals("EURUSD", Timeframe.H1, df)  # type: ignore[arg-type]


def _sig(direction: str, sl: float | None, tp: float | None, comment: str, **tags: float) -> Signal:
    return Signal(
        symbol="EURUSD",
        direction=direction,  # type: ignore[arg-type]
        sl_points=sl,
        tp_points=tp,
        strategy="s",
        comment=comment,
        tags=tags,
    )


# Closes 1.1030 .. 1.1000 falling 10 points a bar, then 20 up: RSI(2) goes 0 -> 66.67.
FALL_THEN_UP = [1.1030, 1.1020, 1.1010, 1.1000, 1.1020]


def test_rsi_reversion_cross_up_through_oversold_buys_with_atr_stops() -> None:
    s = _strategy(RsiMeanReversion, period=2)
    assert _call(s, _bars(FALL_THEN_UP[:-1])) == []  # RSI 0: still oversold, no cross yet
    # gain (0 + 2)/2 = 1, loss (1 + 0)/2 = 0.5 -> RSI 66.67 crosses 30 (and 50: the entry wins);
    # ATR(1) = |1.1020 - 1.1000| = 0.0020 = 200 points -> SL 2 x 200, TP 2 x 200
    assert _call(s, _bars(FALL_THEN_UP)) == [_sig("buy", 400.0, 400.0, "rsi reversion", rsi=66.666667)]


def test_rsi_reversion_cross_down_through_overbought_sells_fixed_points() -> None:
    rise_then_down = [1.1000, 1.1010, 1.1020, 1.1030, 1.1010]
    s = _strategy(RsiMeanReversion, period=2, sl_points=150, tp_points=250)
    # RSI 100 -> gain 0.5, loss 1 -> 33.33: crosses 70 down
    assert _call(s, _bars(rise_then_down)) == [_sig("sell", 150.0, 250.0, "rsi reversion", rsi=33.333333)]


def test_rsi_reversion_exit_mid_emits_flat_on_fifty_cross_only_when_enabled() -> None:
    # RSI(2): 0, 0, 66.67 (buy bar), then -20 points -> gain 0.5, loss 1.25 -> 28.57: crosses 50 -> flat
    closes = [*FALL_THEN_UP, 1.1000]
    assert _call(_strategy(RsiMeanReversion, period=2), _bars(closes)) == []
    got = _call(_strategy(RsiMeanReversion, period=2, exit_mid=True), _bars(closes))
    assert got == [Signal(symbol="EURUSD", direction="flat", strategy="s", comment="rsi reversion exit")]


def test_rsi_reversion_bad_levels_rejected() -> None:
    with pytest.raises(ValueError, match="oversold < 50 < overbought"):
        RsiMeanReversion.Params.model_validate({"oversold": 60, "overbought": 80})
    with pytest.raises(ValueError, match="sl_points or sl_atr"):
        RsiMeanReversion.Params.model_validate({"sl_points": 100, "sl_atr": 2})
    p = RsiMeanReversion.Params.model_validate({"sl_points": 100})
    assert p.sl_points == 100 and p.sl_atr is None and p.tp_atr == 2.0  # type: ignore[attr-defined]


# Ten quiet bars alternating 1.1000 / 1.1010 (range +-2 pips), then a close at 1.1040.
QUIET = [1.1000, 1.1010] * 5


def test_bollinger_breakout_after_squeeze_buys() -> None:
    s = _strategy(BollingerKeltnerBreakout, period=10, squeeze_lookback=3)
    bars = _bars([*QUIET, 1.1040], half_range=0.0002)
    prep = s.prepare("EURUSD", Timeframe.H1, bars.copy())
    assert prep is not None
    # Bollinger(10, 2) of the quiet closes: 1.1005 +- 0.0010 inside Keltner 1.5 x ATR ~ +-0.0018
    assert prep["squeeze"].iloc[9] and prep["bb_upper"].iloc[9] == pytest.approx(1.1015)
    got = _call(s, bars)
    # ATR(1) of the breakout bar: high 1.1042 - previous close 1.1010 = 320 pts -> SL 2x, TP 4x
    bb_up, bb_lo = prep["bb_upper"].iloc[-1], prep["bb_lower"].iloc[-1]
    assert bb_up < 1.1040
    assert got == [
        _sig("buy", 640.0, 1280.0, "bb/kc breakout", bb_upper=tag_value(bb_up), bb_lower=tag_value(bb_lo))
    ]


def test_bollinger_breakout_without_squeeze_trades_only_when_not_required() -> None:
    bars = _bars([*QUIET, 1.1040], half_range=0.0002)
    # Keltner at 0.5 ATR (~ +-0.0006) is inside the Bollinger bands (+-0.0010): no squeeze
    narrow = _strategy(BollingerKeltnerBreakout, period=10, kc_mult=0.5)
    prep = narrow.prepare("EURUSD", Timeframe.H1, bars.copy())
    assert prep is not None and not prep["squeeze"].iloc[9]
    assert _call(narrow, bars) == []
    plain = _strategy(BollingerKeltnerBreakout, period=10, kc_mult=0.5, require_squeeze=False)
    assert [g.direction for g in _call(plain, bars)] == ["buy"]


def test_bollinger_breakout_downside_sells() -> None:
    s = _strategy(BollingerKeltnerBreakout, period=10, squeeze_lookback=3)
    assert [g.direction for g in _call(s, _bars([*QUIET, 1.0970], half_range=0.0002))] == ["sell"]


def test_donchian_breakout_buys_once_per_run_with_atr_stop_no_tp() -> None:
    closes = [1.1003, 1.1000, 1.1010, 1.1005, 1.1008, 1.1002, 1.1030, 1.1050]
    s = _strategy(DonchianAtrTrend, period=5)
    # bar 6: the prior 5 highs (= closes) peak at 1.1010 < 1.1030 -> buy; ATR(1) = 280 pts -> SL 2x
    assert _call(s, _bars(closes[:7])) == [
        _sig("buy", 560.0, None, "donchian breakout", dc_upper=1.101, dc_lower=1.1)
    ]
    assert _call(s, _bars(closes)) == []  # still breaking out: not a new entry
    # the close must beat the prior high, not equal it
    assert _call(s, _bars([*closes[:6], 1.1010])) == []


def test_donchian_breakdown_sells() -> None:
    closes = [1.1003, 1.1000, 1.1010, 1.1005, 1.1008, 1.1002, 1.0990]
    got = _call(_strategy(DonchianAtrTrend, period=5, sl_points=300), _bars(closes))
    assert got == [_sig("sell", 300.0, None, "donchian breakout", dc_upper=1.101, dc_lower=1.1)]


def _macd_closes(ticks: list[float]) -> list[float]:
    return [1.1 + 0.0001 * t for t in ticks]


def test_macd_cross_above_signal_buys() -> None:
    s = _strategy(Macd, fast=1, slow=3, signal=2)
    closes = _macd_closes([5, 4, 3, 2, 1, 2])
    assert _call(s, _bars(closes[:-1])) == []
    got = _call(s, _bars(closes))
    # line -0.9375 <= signal -0.9028 (x 1e-4) then 0.03125 > -0.2801: a cross; ATR(1) = 1 pip
    assert len(got) == 1 and got[0].direction == "buy"
    assert (got[0].sl_points, got[0].tp_points) == (20.0, 30.0)
    assert got[0].tags["macd"] == pytest.approx(0.03125e-4, abs=1e-9)


def test_macd_zero_filter_blocks_cross_below_zero() -> None:
    closes = _macd_closes([5, 4, 3, 2, 1, 1.5])  # crosses its signal line while still below zero
    assert [g.direction for g in _call(_strategy(Macd, fast=1, slow=3, signal=2), _bars(closes))] == ["buy"]
    assert _call(_strategy(Macd, fast=1, slow=3, signal=2, zero_filter=True), _bars(closes)) == []


def test_macd_cross_below_signal_sells() -> None:
    closes = _macd_closes([1, 2, 3, 4, 5, 4])
    got = _call(_strategy(Macd, fast=1, slow=3, signal=2, zero_filter=True), _bars(closes))
    assert [g.direction for g in got] == ["sell"]


# ------------------------------------------------------------------- higher-timeframe trend filter


def test_htf_filter_reads_closed_bars_only_and_follows_their_trend() -> None:
    closes = _macd_closes([5, 4, 3, 2, 1, 2])  # EMA(1) crosses above EMA(2) on the last bar
    up = FakeTerminal(htf_closes=[1.0990, 1.1000])
    s = _strategy(HigherTimeframeTrendFilter, up, fast=1, slow=2, htf_period=2, htf_bars=2)
    got = _call(s, _bars(closes))
    # EMA(2) of 1.0990, 1.1000 = 1.0990 + 2/3 * 0.0010; the close is above it -> up trend -> buy
    assert len(got) == 1 and got[0].direction == "buy"
    assert got[0].tags["htf_close"] == 1.1 and got[0].tags["htf_ema"] == 1.0996667
    assert up.calls == [("EURUSD", int(Timeframe.H4), 1, 2)]  # position 1: the forming bar is skipped
    down = FakeTerminal(htf_closes=[1.1000, 1.0990])
    s = _strategy(HigherTimeframeTrendFilter, down, fast=1, slow=2, htf_period=2, htf_bars=2)
    assert _call(s, _bars(closes)) == []
    short = FakeTerminal(htf_closes=[1.1000])  # fewer closed bars than htf_period: no trend, no trade
    s = _strategy(HigherTimeframeTrendFilter, short, fast=1, slow=2, htf_period=2, htf_bars=2)
    assert _call(s, _bars(closes)) == []


def test_htf_filter_no_candidate_no_terminal_call() -> None:
    t = FakeTerminal(htf_closes=[1.0, 1.1])
    s = _strategy(HigherTimeframeTrendFilter, t, fast=1, slow=2, htf_period=2, htf_bars=2)
    assert _call(s, _bars(_macd_closes([1, 2, 3, 4, 5, 6]))) == [] and t.calls == []


def test_htf_filter_htf_must_be_longer_than_strategy_timeframe() -> None:
    params = HigherTimeframeTrendFilter.Params.model_validate({"htf": "M30"})
    assert params.htf is Timeframe.M30  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="longer timeframe"):
        HigherTimeframeTrendFilter("s", params, ["EURUSD"], Timeframe.H1, 50)


def _write_m1(folder: Path, hours: list[tuple[str, float]], end: str) -> None:
    """M1 bars, every minute flat at the price of its hour: (hour start, price) until ``end``."""
    folder.mkdir(parents=True, exist_ok=True)
    starts = pd.to_datetime([h for h, _ in hours], utc=True)
    times = pd.date_range(starts[0], pd.Timestamp(end, tz="UTC"), freq="min", inclusive="left")
    price = np.asarray([p for _, p in hours])[np.searchsorted(starts.asi8, times.asi8, "right") - 1]
    table = pa.table(
        {
            "time": pa.array(times.as_unit("ns")),
            "open": price,
            "high": price,
            "low": price,
            "close": price,
            "tick_volume": [10] * len(times),
            "spread": pa.array([10] * len(times), pa.int32()),
        }
    )
    pq.write_table(table, folder / "EURUSD_M1_test.parquet")


def test_htf_filter_h1_bar_inside_h4_bar_never_uses_its_close(tmp_path: Path) -> None:
    """H4 00-04 closes 1.1000, H4 04-08 closes 1.0990: the closed trend is down. The H1 bar 09-10
    drops (1.1060 -> 1.1030): a sell candidate at 10:00, inside H4 08-12, whose close so far
    (1.1030) and at its end (1.1070) are both above 1.0990. Reading that unclosed bar would flip
    the trend to up and drop the sell; reading closed bars only sells. At 13:00 (sell candidate)
    and 14:00 (buy candidate) the H4 08-12 bar has closed at 1.1070: up -> only the buy trades."""
    day = "2018-01-02T"
    hours = [("2018-01-01T20:00", 1.1000)]  # warm-up: H4 20-24 closes at 1.1000
    hours += [(f"{day}04:00", 1.0990), (f"{day}08:00", 1.1060), (f"{day}09:00", 1.1030)]
    hours += [(f"{day}10:00", 1.1070), (f"{day}12:00", 1.1040), (f"{day}13:00", 1.1080)]
    data = tmp_path / "data"
    _write_m1(data, hours, f"{day}15:00")
    raw = base_config(data, tmp_path, start="2018-01-02", end="2018-01-03", warmup_bars=3)
    raw["data"]["min_health"] = 0.0
    params = {"fast": 1, "slow": 2, "htf_period": 2, "htf_bars": 2, "sl_points": 100, "tp_points": 100}
    raw["strategies"] = [{"class": "htf_trend_filter", "name": "htf", "params": params}]
    runner = Runner(build(parse_config(raw), tmp_path))
    runner.capture = []
    runner.run()
    got = [
        (pd.Timestamp(t, tz="UTC").strftime("%H:%M"), g.direction, g.tags) for t, _, _, g in runner.capture
    ]
    assert got == [
        ("10:00", "sell", {**got[0][2], "htf_close": 1.099, "htf": "H4"}),
        ("14:00", "buy", {**got[1][2], "htf_close": 1.107, "htf": "H4"}),
    ]
    assert got[0][2]["htf_ema"] == pytest.approx(1.1 - 2 / 3 * 0.001, abs=1e-6)


# ------------------------------------------------------------------------------- real-data runs

SPECS = {
    "rsi_reversion": {},
    "bollinger_breakout": {},
    "donchian_trend": {},
    "macd_cross": {},
    "htf_trend_filter": {},
}


def _real_config(shared_data: Path, tmp: Path, spec: str, start: str, end: str) -> dict:
    folder = tmp / "data"
    folder.mkdir(exist_ok=True)
    link = folder / "EURUSD_M1_x.parquet"
    if not link.exists():
        link.symlink_to(shared_data / "m1" / "EURUSD_M1_2018-2019.parquet")
    raw = base_config(folder, tmp, start=start, end=end, warmup_bars=60, seed=42)
    raw["execution"] = {"spread": {"source": "fixed", "points": 10}}
    raw["strategies"] = [{"class": spec, "name": "s", "params": SPECS[spec]}]
    return raw


def test_builtins_registered_in_loader() -> None:
    for short in SPECS:
        assert BUILTINS[short].startswith("mt5tester.strategy.library.technical:")


@pytest.mark.parametrize("spec", list(SPECS))
def test_technical_lookahead_clean_on_real_data(shared_data: Path, tmp_path: Path, spec: str) -> None:
    cfg = parse_config(_real_config(shared_data, tmp_path, spec, "2018-02-01", "2018-05-01"))
    report = check_lookahead(cfg, tmp_path, "s", points=3)
    assert report.clean, [d.to_dict() for d in report.differences[:5]]
    assert report.signals_checked > 0 and report.values_checked > 0


@pytest.mark.parametrize("spec", list(SPECS))
def test_technical_golden_run_eurusd_h1(shared_data: Path, tmp_path: Path, golden, spec: str) -> None:
    runner = Runner(
        build(parse_config(_real_config(shared_data, tmp_path, spec, "2018-02-01", "2018-06-01")), tmp_path)
    )
    result = runner.run()
    closing = (C.DEAL_ENTRY_OUT, C.DEAL_ENTRY_INOUT, C.DEAL_ENTRY_OUT_BY)
    trades = sum(1 for d in runner.c.server.deals if d.entry in closing)
    values = {"trades": trades, "net_profit": round(result.final_balance - 10_000.0, 2)}
    assert trades > 0
    golden(f"technical_{spec}", values)
