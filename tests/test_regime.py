"""Tests for mt5tester.regime: rules and HMM detectors, causality (truncation), RegimeTracker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from mt5tester.config import RegimeParams
from mt5tester.data.resample import resample
from mt5tester.data.store import read_m1_parquet
from mt5tester.model.bars import Bars
from mt5tester.model.timeframe import Timeframe
from mt5tester.regime import (
    CODES,
    LABELS,
    RANGING,
    TRENDING_DOWN,
    TRENDING_UP,
    UNKNOWN,
    VOLATILE,
    RegimeTracker,
    detect,
    label_names,
    rules_features,
    warmup_bars,
)
from mt5tester.regime.detectors import _forward_filter, _gaussian_loglik, _state_codes

H4_NS = Timeframe.H4.period_ns
UP, DOWN, RANGE, VOL = (CODES[x] for x in LABELS)


def _bars(close: np.ndarray, half_range: float | np.ndarray, timeframe: Timeframe = Timeframe.H4) -> Bars:
    """Bars whose open is the previous close, high/low = max/min(open, close) -/+ half_range."""
    n = len(close)
    close = np.asarray(close, np.float64)
    half = np.broadcast_to(np.asarray(half_range, np.float64), (n,))
    open_ = np.concatenate(([close[0]], close[:-1]))
    return Bars(
        "TEST",
        timeframe,
        np.arange(n, dtype=np.int64) * timeframe.period_ns,
        open_,
        np.maximum(open_, close) + half,
        np.minimum(open_, close) - half,
        close,
        np.zeros(n, np.int64),
        np.zeros(n, np.int32),
    )


def _ohlc(rows: list[tuple[float, float, float]]) -> Bars:
    high, low, close = (np.array(c, np.float64) for c in zip(*rows, strict=True))
    n = len(rows)
    return Bars(
        "TEST",
        Timeframe.H4,
        np.arange(n, dtype=np.int64) * H4_NS,
        close.copy(),
        high,
        low,
        close,
        np.zeros(n, np.int64),
        np.zeros(n, np.int32),
    )


@pytest.fixture(scope="module")
def eurusd_m1(shared_data: Path) -> Bars:
    return read_m1_parquet(shared_data / "m1" / "EURUSD_M1_2018-2019.parquet", "EURUSD")


@pytest.fixture(scope="module")
def eurusd_h4(eurusd_m1: Bars) -> Bars:
    return resample(eurusd_m1, Timeframe.H4)


@pytest.fixture(scope="module")
def hmm_full(eurusd_h4: Bars) -> np.ndarray:
    return detect(eurusd_h4, RegimeParams(method="hmm"))


# ------------------------------------------------------------------------------------------ params


def test_params_defaults_and_timeframe_normalised() -> None:
    p = RegimeParams(timeframe="timeframe_h1")
    assert p.timeframe == "H1" and p.tf is Timeframe.H1
    d = RegimeParams()
    assert (d.method, d.timeframe, d.adx_period, d.adx_trend, d.atr_period) == ("rules", "H4", 14, 25.0, 14)
    assert (d.atr_pct_window, d.atr_volatile_pct, d.rv_window) == (500, 90.0, 20)
    assert (d.hmm_states, d.hmm_train_bars, d.hmm_refit_every, d.seed, d.min_bars) == (3, 2000, 500, 42, 0)


@pytest.mark.parametrize(
    "bad",
    [{"method": "kmeans"}, {"timeframe": "H5"}, {"adx_period": 1}, {"atr_pct_window": 1}, {"atr_tren": 20}],
)
def test_params_invalid_values_or_unknown_key_rejected(bad: dict) -> None:
    with pytest.raises(ValidationError):
        RegimeParams(**bad)


def test_params_frozen() -> None:
    p = RegimeParams()
    with pytest.raises(ValidationError):
        p.adx_trend = 30.0  # type: ignore[misc]


def test_warmup_bars_defaults_and_min_bars() -> None:
    assert warmup_bars(RegimeParams()) == 513  # 14 + 500 - 1 (ATR percentile) > 2*14 - 1 (ADX)
    assert warmup_bars(RegimeParams(method="hmm")) == 2020  # 20 + 2000
    assert warmup_bars(RegimeParams(min_bars=700)) == 700
    assert warmup_bars(RegimeParams(atr_pct_window=5)) == 27  # ADX: 2*14 - 1


def test_label_names_maps_codes_and_unknown() -> None:
    assert list(label_names([-1, 0, 1, 2, 3])) == [UNKNOWN, TRENDING_UP, TRENDING_DOWN, RANGING, VOLATILE]
    assert LABELS == ("trending_up", "trending_down", "ranging", "volatile")


# ------------------------------------------------------------------------------------------- rules


def test_rules_features_five_bars_hand_computed_wilder_adx_and_atr_percentile() -> None:
    # TR from bar 1: 3, 3, 3, 4; +DM: 2, 1, 0, 0; -DM: 0, 0, 1, 2 (period 2).
    bars = _ohlc([(10, 8, 9), (12, 9, 11), (13, 10, 12), (12, 9, 10), (11, 7, 8)])
    p = RegimeParams(adx_period=2, atr_period=2, atr_pct_window=2)
    f = rules_features(bars, p)
    nan = float("nan")
    np.testing.assert_allclose(f["atr"], [nan, nan, 3.0, 3.0, 3.5], rtol=1e-12)
    np.testing.assert_allclose(f["plus_di"], [nan, nan, 50.0, 25.0, 100 * 0.375 / 3.5], rtol=1e-12)
    np.testing.assert_allclose(f["minus_di"], [nan, nan, 0.0, 100 / 6, 100 * 1.25 / 3.5], rtol=1e-12)
    # DX: 100, 20, 700/13; ADX seed = mean(100, 20) at bar 3, then 60 + (700/13 - 60) / 2.
    np.testing.assert_allclose(f["adx"], [nan, nan, nan, 60.0, 740 / 13], rtol=1e-12)
    np.testing.assert_allclose(f["atr_pct"], [nan, nan, nan, 0.0, 100.0])
    # Bar 3: not volatile, ADX 60 >= 25 and +DI 25 > -DI 16.7 -> up. Bar 4: ATR the window's top -> volatile.
    assert list(detect(bars, p)) == [-1, -1, -1, UP, VOL]
    assert warmup_bars(p) == 3


def test_rules_linear_uptrend_trending_up_after_warmup() -> None:
    bars = _bars(1.1 + 0.0005 * np.arange(1000), 0.0005)
    codes = detect(bars, RegimeParams())
    assert np.all(codes[:513] == -1)
    assert np.all(codes[513:] == UP)


def test_rules_linear_downtrend_trending_down_after_warmup() -> None:
    bars = _bars(1.6 - 0.0005 * np.arange(800), 0.0005)
    codes = detect(bars, RegimeParams())
    assert np.all(codes[:513] == -1)
    assert np.all(codes[513:] == DOWN)


def test_rules_flat_sine_ranging() -> None:
    i = np.arange(1000)
    bars = _bars(1.1 + 0.002 * np.sin(2 * np.pi * i / 10), 0.002)
    p = RegimeParams()
    codes = detect(bars, p)
    assert np.all(codes[513:] == RANGE)
    assert float(np.nanmax(rules_features(bars, p)["adx"])) < 25


def test_rules_volatility_burst_volatile_then_ranging_again() -> None:
    i = np.arange(1000)
    half = np.full(1000, 0.002)
    half[700:710] = 0.01  # ranges 3x wider for ten bars, closes unchanged
    codes = detect(_bars(1.1 + 0.002 * np.sin(2 * np.pi * i / 10), half), RegimeParams())
    assert np.all(codes[513:700] == RANGE)
    assert np.all(codes[700:710] == VOL)
    # The ATR decays after the burst; once more than 10% of the window sits above it, the bar is not volatile.
    assert np.all(codes[800:] == RANGE)


def test_rules_min_bars_masks_only_leading_bars() -> None:
    bars = _bars(1.1 + 0.0005 * np.arange(1000), 0.0005)
    base = detect(bars, RegimeParams())
    masked = detect(bars, RegimeParams(min_bars=600))
    assert np.all(masked[:600] == -1)
    assert np.array_equal(masked[600:], base[600:])


def test_rules_fewer_bars_than_warmup_all_unknown() -> None:
    assert list(detect(_bars(np.full(5, 1.1), 0.001), RegimeParams())) == [-1] * 5
    empty = _bars(np.full(5, 1.1), 0.001).slice(0, 0)
    assert len(detect(empty, RegimeParams())) == 0
    assert len(detect(empty, RegimeParams(method="hmm"))) == 0


# --------------------------------------------------------------------------------------------- hmm


def test_state_codes_highest_sigma_volatile_then_drift_ratio() -> None:
    mu = np.array([0.001, -0.001, 0.0002, 0.0])
    sigma = np.array([0.01, 0.01, 0.01, 0.05])
    # ratios 0.1, -0.1, 0.02 (|.| < 0.05 -> ranging); state 3 has the largest sigma.
    assert list(_state_codes(mu, sigma, 0.05)) == [UP, DOWN, RANGE, VOL]


def test_forward_filter_equals_last_row_of_hmmlearn_posterior_on_each_prefix() -> None:
    from hmmlearn.hmm import GaussianHMM

    rng = np.random.default_rng(3)
    z = np.concatenate([rng.normal(0, 1, (60, 2)), rng.normal(2, 0.5, (40, 2))])
    model = GaussianHMM(2, "diag", n_iter=20, random_state=0).fit(z)
    variances = np.diagonal(model.covars_, axis1=1, axis2=2)
    post = _forward_filter(_gaussian_loglik(z, model.means_, variances), model.startprob_, model.transmat_)
    # At the last row of a sequence the smoothed posterior is the filtered one.
    for t in (0, 1, 30, 59, 60, 61, 99):
        np.testing.assert_allclose(post[t], model.predict_proba(z[: t + 1])[-1], atol=1e-9)


def test_forward_filter_uniform_emissions_returns_predicted_prior() -> None:
    trans = np.array([[0.9, 0.1], [0.2, 0.8]])
    post = _forward_filter(np.zeros((3, 2)), np.array([1.0, 0.0]), trans)
    np.testing.assert_allclose(post, [[1.0, 0.0], [0.9, 0.1], [0.83, 0.17]], atol=1e-12)


def test_hmm_synthetic_volatility_blocks_high_block_volatile() -> None:
    rng = np.random.default_rng(11)
    sd = np.tile(np.repeat([0.0005, 0.004], 100), 10)  # 2000 bars, blocks of 100 calm / 100 wild
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, sd)))
    p = RegimeParams(method="hmm", hmm_states=2, hmm_train_bars=600, hmm_refit_every=200, rv_window=10)
    codes = detect(_bars(close, 0.0001), p)
    assert np.all(codes[:610] == -1) and np.all(codes[610:] >= 0)
    wild = (sd == 0.004)[610:]
    labelled = codes[610:]
    assert np.mean(labelled[wild] == VOL) > 0.8
    assert np.mean(labelled[~wild] == VOL) < 0.2


def test_hmm_short_series_all_unknown() -> None:
    codes = detect(
        _bars(1.1 + 0.0001 * np.arange(300), 0.0001), RegimeParams(method="hmm", hmm_train_bars=400)
    )
    assert list(np.unique(codes)) == [-1]


# ------------------------------------------------------------------------ real data: causality etc.


@pytest.mark.shared_data
@pytest.mark.parametrize("k", [513, 514, 515, 1000, 2021, 3100])
def test_rules_truncation_real_eurusd_h4_labels_never_change(eurusd_h4: Bars, k: int) -> None:
    full = detect(eurusd_h4, RegimeParams())
    part = detect(eurusd_h4.slice(0, k), RegimeParams())
    assert np.array_equal(part, full[:k])


@pytest.mark.shared_data
def test_hmm_truncation_real_eurusd_h4_labels_never_change(eurusd_h4: Bars, hmm_full: np.ndarray) -> None:
    p = RegimeParams(method="hmm")
    first_refit = p.rv_window + p.hmm_train_bars - 1  # 2019; refits at 2019, 2519, 3019
    assert len(eurusd_h4) > first_refit + 2 * p.hmm_refit_every + 2
    # k = 2020: no bar after the first refit yet; 2021: its first labelled bar; 2520/2521: the last bar of
    # the first model's segment and the first bar labelled by the second model; 3021: right after refit 3.
    for k in (2020, 2021, 2022, 2300, 2520, 2521, 2522, 3021):
        part = detect(eurusd_h4.slice(0, k), p)
        assert np.array_equal(part, hmm_full[:k]), f"labels changed for k={k}"
    assert np.all(hmm_full[2020:] >= 0)


@pytest.mark.shared_data
def test_hmm_deterministic_with_seed(eurusd_h4: Bars, hmm_full: np.ndarray) -> None:
    again = detect(eurusd_h4, RegimeParams(method="hmm"))
    assert np.array_equal(again, hmm_full)


@pytest.mark.shared_data
def test_label_distribution_two_years_eurusd_h4(eurusd_h4: Bars, hmm_full: np.ndarray) -> None:
    rules = detect(eurusd_h4, RegimeParams())
    dist = {name: int(np.sum(rules == CODES[name])) for name in LABELS}
    print("rules", len(rules), dist, "hmm", {name: int(np.sum(hmm_full == CODES[name])) for name in LABELS})
    assert int(np.sum(rules == -1)) == 513
    assert all(count > 0 for count in dist.values()), dist
    # The 90th-percentile rule makes roughly a tenth of the labelled bars volatile (not exact: ties, drift).
    assert 0.03 < dist[VOLATILE] / (len(rules) - 513) < 0.2
    assert int(np.sum(hmm_full == -1)) == 2020
    assert set(np.unique(hmm_full)) <= {-1, UP, DOWN, RANGE, VOL}


# ----------------------------------------------------------------------------------------- tracker


def test_tracker_label_at_last_bar_closed_at_or_before_t() -> None:
    tracker = RegimeTracker()
    tracker.add("EURUSD", [100, 200, 300], [-1, UP, VOL])
    assert [tracker.label_at("EURUSD", t) for t in (0, 99, 100, 199)] == [UNKNOWN] * 4
    assert tracker.label_at("EURUSD", 200) == TRENDING_UP
    assert tracker.label_at("EURUSD", 299) == TRENDING_UP
    assert tracker.label_at("EURUSD", 300) == VOLATILE
    assert tracker.label_at("EURUSD", 10**18) == VOLATILE
    assert tracker.code_at("EURUSD", 250) == UP
    assert tracker.symbols == ["EURUSD"]


def test_tracker_unknown_symbol_and_bad_arrays_rejected() -> None:
    tracker = RegimeTracker()
    with pytest.raises(KeyError, match="GBPUSD"):
        tracker.label_at("GBPUSD", 0)
    with pytest.raises(ValueError, match="close times"):
        tracker.add("X", [1, 2], [0])
    with pytest.raises(ValueError, match="increasing"):
        tracker.add("X", [2, 2], [0, 0])
    with pytest.raises(ValueError, match="codes"):
        tracker.add("X", [1, 2], [0, 4])


def test_tracker_add_bars_uses_bar_close_times() -> None:
    bars = _bars(1.1 + 0.0005 * np.arange(600), 0.0005)
    tracker = RegimeTracker()
    codes = tracker.add_bars(bars, RegimeParams())
    open_513 = int(bars.time[513])
    # Bar 513 opens at open_513 and its label is known only at its close, open_513 + 4 h.
    assert codes[513] == UP
    assert tracker.label_at("TEST", open_513) == UNKNOWN
    assert tracker.label_at("TEST", open_513 + H4_NS - 1) == UNKNOWN
    assert tracker.label_at("TEST", open_513 + H4_NS) == TRENDING_UP


@pytest.mark.shared_data
def test_tracker_from_m1_real_eurusd_matches_detect(eurusd_m1: Bars, eurusd_h4: Bars) -> None:
    tracker = RegimeTracker.from_m1({"EURUSD": eurusd_m1}, RegimeParams())
    codes = detect(eurusd_h4, RegimeParams())
    close = eurusd_h4.close_time
    for i in (512, 513, 1500, len(eurusd_h4) - 1):
        assert tracker.code_at("EURUSD", int(close[i])) == codes[i]
        assert tracker.code_at("EURUSD", int(close[i]) - 1) == codes[i - 1]
