"""ML built-in (walk-forward classifier): purge/embargo arithmetic, labels, causal features, the
retraining schedule, an exact signal of a hand-made scenario, predictions unchanged by truncation,
checkpoint round trip, lookahead check and golden run on real EURUSD H1."""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

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
from mt5tester.strategy.base import StrategyContext
from mt5tester.strategy.library import ml
from mt5tester.strategy.library.ml import WalkForwardClassifier, WalkForwardParams
from mt5tester.strategy.loader import BUILTINS, resolve_class

from conftest import base_config

# Small feature set whose warm-up is known exactly: ml_ret_2 valid from row 2, ml_vol (std of 3
# one-bar returns) from 3, ATR(2) from 1, slow ATR(8) from 7, RSI(2) from 2, SMA(3) from 2
# -> every feature finite from row 7 on.
SMALL = {
    "lags": (1, 2),
    "vol_window": 3,
    "atr_period": 2,
    "rsi_period": 2,
    "ma_periods": (3,),
    "time_features": False,
}
FIRST_FINITE = 7


class _Terminal:
    """The one terminal call the strategy makes: the symbol's point for ATR stops."""

    def symbol_info(self, symbol: str) -> SimpleNamespace:
        return SimpleNamespace(point=0.0001)


def _make(**params: object) -> WalkForwardClassifier:
    s = WalkForwardClassifier("wf", WalkForwardParams(**params), ["EURUSD"], Timeframe.H1, 5)
    s.ctx = StrategyContext("test", _Terminal())
    return s


def _bars(close: np.ndarray, first_open: float | None = None) -> pd.DataFrame:
    """H1 bars from closes: open = previous close, high/low = max/min of open and close."""
    n = len(close)
    open_ = np.concatenate([[close[0] if first_open is None else first_open], close[:-1]])
    return pd.DataFrame(
        {
            "time": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close),
            "low": np.minimum(open_, close),
            "close": close,
            "tick_volume": np.full(n, 10, np.int64),
            "spread": np.zeros(n, np.int32),
        }
    )


def _random_walk(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    b = _bars(close)
    wick = np.abs(rng.normal(0, 0.001, n))
    b["high"] += wick
    b["low"] -= wick[::-1]
    return b


def _window(bars: pd.DataFrame, prepared: pd.DataFrame, j: int, rows: int = 5) -> BarArrays:
    """What the loop hands in at the close of bar j: the last ``rows`` closed bars, as copies."""
    lo = max(0, j + 1 - rows)
    col = {c: bars[c].to_numpy()[lo : j + 1].copy() for c in ("open", "high", "low", "close")}
    return BarArrays(
        pd.DatetimeIndex(bars["time"]).as_unit("ns").asi8[lo : j + 1].copy(),
        col["open"],
        col["high"],
        col["low"],
        col["close"],
        bars["tick_volume"].to_numpy()[lo : j + 1].copy(),
        bars["spread"].to_numpy()[lo : j + 1].copy(),
        {c: prepared[c].to_numpy()[lo : j + 1].copy() for c in prepared.columns},
    )


def _drive(
    s: WalkForwardClassifier, bars: pd.DataFrame, prepared: pd.DataFrame, js: range
) -> list[tuple[int, list[Signal], tuple[float, float] | None]]:
    out = []
    for j in js:
        sigs = s.generate_signals("EURUSD", Timeframe.H1, _window(bars, prepared, j))
        out.append((j, sigs, s.state("EURUSD").last_proba))
    return out


# ----------------------------------------------------------------------------- purge and embargo
def test_train_rows_purge_and_embargo_exact_ranges() -> None:
    # decision at bar 20, labels 3 bars ahead, embargo 2: rows i with i + 3 + 2 <= 20 -> i <= 15
    assert ml.train_rows(20, 3, 2, 5) == range(11, 16)
    assert ml.train_rows(20, 3, 0, 5) == range(13, 18)  # purge only: i + 3 <= 20
    assert ml.train_rows(20, 1, 0, 100) == range(0, 20)  # window clipped at the first bar
    assert ml.train_rows(6, 3, 2, 5) == range(0, 2)
    assert ml.train_rows(5, 3, 2, 5) == range(0, 1)  # row 0: label known at bar 3, embargo 4..5
    assert ml.train_rows(4, 3, 2, 5) == range(0, 0)  # nothing known yet


def test_labels_sign_with_dead_zone_and_unknown_label_refused() -> None:
    close = np.array([1.0, 1.01, 1.0, 1.0004, 1.02, 0.99])
    # horizon 1: +1%, -0.99%, +0.04% (dead zone 0.1%), +1.96%, -2.94%
    assert ml.labels(close, range(0, 5), 1, 0.001).tolist() == [1, -1, 0, 1, -1]
    # horizon 2 from rows 0..3: 1.0 -> 1.0 is 0, 1.01 -> 1.0004 is -0.95%, 1.0 -> 1.02, 1.0004 -> 0.99
    assert ml.labels(close, range(0, 4), 2, 0.0).tolist() == [0, -1, 1, -1]
    with pytest.raises(IndexError, match="needs bar 6; only 6 bars are known"):
        ml.labels(close, range(0, 5), 2, 0.0)


# ----------------------------------------------------------------------------- features
def test_compute_features_hand_values_and_warmup() -> None:
    bars = _bars(np.array([1.0, 2.0, 4.0, 2.0, 2.0, 1.0, 2.0, 4.0, 8.0]))
    p = WalkForwardParams(**SMALL, min_train_samples=10)
    f = ml.compute_features(bars, p)
    assert f["ml_row"].tolist() == list(range(9))
    assert f["ml_ret_1"].iloc[2] == pytest.approx(np.log(2.0))
    assert f["ml_ret_2"].iloc[2] == pytest.approx(np.log(4.0))
    assert np.isnan(f["ml_ret_2"].iloc[1])
    # TR: 0 (first bar: open = close), 1, 2, 2, 0, 1, 1, 2, 4; Wilder ATR(2): 0, 0.5, 1.25
    assert np.isnan(f["ml_atr"].iloc[0]) and f["ml_atr"].iloc[1] == 0.5 and f["ml_atr"].iloc[2] == 1.25
    x = f[ml.feature_names(p)].to_numpy()
    finite = np.isfinite(x).all(axis=1)
    assert int(np.argmax(finite)) == FIRST_FINITE and finite[FIRST_FINITE:].all()
    # RSI(2) at bar 2 after two rises: no loss -> 100 -> rescaled 1.0; SMA(3) distance in ATRs
    assert f["ml_rsi"].iloc[2] == 1.0
    assert f["ml_ma_3"].iloc[2] == pytest.approx((4.0 - 7.0 / 3) / 1.25)


def test_compute_features_time_of_bar_open_utc() -> None:
    bars = _bars(np.linspace(1.0, 1.1, 30))  # 2024-01-01 is a Monday, bars from 00:00 UTC
    f = ml.compute_features(bars, WalkForwardParams())
    assert f["ml_hour_sin"].iloc[6] == pytest.approx(1.0)  # 06:00
    assert f["ml_hour_cos"].iloc[12] == pytest.approx(-1.0)  # 12:00
    assert f["ml_dow_sin"].iloc[0] == 0.0 and f["ml_dow_cos"].iloc[0] == 1.0  # Monday
    assert f["ml_dow_sin"].iloc[24] == pytest.approx(np.sin(2 * np.pi / 7))  # Tuesday


@pytest.mark.parametrize("k", [30, 151, 299])
def test_compute_features_on_truncated_bars_equal_full_rows(k: int) -> None:
    bars = _random_walk(300, 5)
    p = WalkForwardParams()
    full = ml.compute_features(bars, p)
    part = ml.compute_features(bars.iloc[:k].copy(), p)
    assert len(part) == k
    pd.testing.assert_frame_equal(part, full.iloc[:k], rtol=1e-12)


# ----------------------------------------------------------------------------- training schedule
def test_retrain_schedule_first_eligible_bar_then_every_n_bars() -> None:
    # usable rows at bar j: FIRST_FINITE .. j - 2 - 1 (continuous prices: no zero label), so
    # 20 of them first at j = 20 + 2 + 1 + 6 = 29; then a fit every 10 bars.
    bars = _random_walk(130, 11)
    s = _make(
        **SMALL, horizon=2, embargo=1, train_bars=40, min_train_samples=20, retrain_every=10, min_move=0.0
    )
    prepared = s.prepare("EURUSD", Timeframe.H1, bars)
    assert isinstance(prepared, pd.DataFrame)
    st = s.state("EURUSD")
    for j in range(10, 125):
        s.generate_signals("EURUSD", Timeframe.H1, _window(bars, prepared, j))
        if st.last_train is not None:  # the last training label ends embargo bars before the fit
            assert st.train_range is not None
            assert st.train_range[1] + 2 + 1 == st.last_train
            assert st.train_range[1] - st.train_range[0] + 1 == min(40, st.last_train - 2 - 1 + 1)
        if j < 29:
            assert st.model is None and st.last_proba is None
    assert st.trained_at == [29, 39, 49, 59, 69, 79, 89, 99, 109, 119]
    assert st.train_range == (77, 116)
    assert ml.retrain_due(5, None, 10) and ml.retrain_due(49, 39, 10) and not ml.retrain_due(48, 39, 10)


# ----------------------------------------------------------------------------- hand-made scenario
def test_zigzag_scenario_exact_signals_and_no_repeat() -> None:
    # Closes alternate 1.1000 / 1.1010: after a down bar the next bar rises, and vice versa.
    # Every bar has range 0.0010 -> ATR 0.0010 = 10 points -> SL 2 ATR = 20, TP 3 ATR = 30 points.
    close = np.where(np.arange(60) % 2 == 0, 1.1000, 1.1010)
    bars = _bars(close, first_open=1.1010)
    s = _make(**SMALL, horizon=1, embargo=0, train_bars=40, min_train_samples=20, retrain_every=100)
    prepared = s.prepare("EURUSD", Timeframe.H1, bars)
    assert isinstance(prepared, pd.DataFrame)
    j = 50  # even: closed down at 1.1000
    (sigs,) = [x[1] for x in _drive(s, bars, prepared, range(j, j + 1))]
    # The same fit by hand: rows 10..49 (i + 1 <= 50), random_state from the symbol's generator.
    rows = range(10, 50)
    x = np.ascontiguousarray(prepared[ml.feature_names(s.p)].to_numpy())
    y = np.where(close[11:51] > close[10:50], 1, -1)
    seed = int(np.random.default_rng([42, zlib.crc32(b"EURUSD")]).integers(2**31 - 1))
    with ml._threads().limit(limits=1):  # as the strategy does: the same BLAS path, the same floats
        ref = ml.make_model("logistic", 1.0, seed).fit(x[rows.start : rows.stop], y)
        p_down, p_up = ref.predict_proba(x[j : j + 1])[0]
    assert ref.classes_.tolist() == [-1, 1] and p_up > 0.55
    assert s.state("EURUSD").train_range == (rows.start, rows.stop - 1)
    assert sigs == [
        Signal(
            symbol="EURUSD",
            direction="buy",
            sl_points=20.0,
            tp_points=30.0,
            confidence=p_up,
            strategy="wf",
            comment=f"wf buy p={p_up:.2f}",
            tags={"p_up": p_up, "p_down": p_down, "trained_at": 50},
        )
    ]
    # Next bar (closed up): the reversal; the bar after (down again) another buy.
    nxt = _drive(s, bars, prepared, range(51, 53))
    assert [sig.direction for _, sigs_, _ in nxt for sig in sigs_] == ["sell", "buy"]
    assert nxt[0][1][0].confidence > 0.55
    # Same side as the last emitted signal: nothing (no stacking), although p_up is as high.
    again = _drive(s, bars, prepared, range(54, 55))
    assert again[0][1] == [] and again[0][2] == pytest.approx((p_up, p_down))


def test_linear_proba_bit_identical_to_sklearn_predict_proba() -> None:
    # The strategy's one-row predictions skip scikit-learn's per-call checks: on every row of walk-
    # forward fits over a random walk (full feature set, NaN warm-up rows left out), the probabilities
    # are the same doubles as the pipeline's predict_proba.
    bars = _random_walk(900, seed=7)
    s = _make()
    prepared = s.prepare("EURUSD", Timeframe.H1, bars)
    x = np.ascontiguousarray(prepared[ml.feature_names(s.p)].to_numpy())
    close = bars["close"].to_numpy()
    finite = np.isfinite(x).all(axis=1)
    compared = 0
    for fit_at in (200, 450, 700):
        st = ml._ModelState(np.random.default_rng(fit_at))
        assert s._fit(st, x[: fit_at + 1], close[: fit_at + 1], fit_at)
        parts = ml.linear_parts(st.model)
        assert parts is not None
        for j in np.flatnonzero(finite):
            row = x[j : j + 1]
            with ml._threads().limit(limits=1):
                want = st.model.predict_proba(row)
            got = ml.linear_proba(parts, row)
            assert got.shape == want.shape and got.tobytes() == want.tobytes(), j
            compared += 1
    assert compared > 2000


def test_linear_parts_none_for_other_models() -> None:
    hgb = ml.make_model("hgb", 1.0, 0)
    assert ml.linear_parts(hgb) is None
    three = ml.make_model("logistic", 1.0, 0).fit(np.arange(30.0).reshape(10, 3), np.arange(10) % 3)
    assert ml.linear_parts(three) is None  # three classes: softmax, left to scikit-learn


def test_fixed_point_stops_and_no_model_no_signal() -> None:
    close = np.where(np.arange(60) % 2 == 0, 1.1000, 1.1010)
    bars = _bars(close, first_open=1.1010)
    s = _make(
        **SMALL,
        horizon=1,
        embargo=0,
        train_bars=40,
        min_train_samples=20,
        sl_atr=None,
        tp_atr=None,
        sl_points=150,
        tp_points=None,
    )
    prepared = s.prepare("EURUSD", Timeframe.H1, bars)
    assert isinstance(prepared, pd.DataFrame)
    early = _drive(s, bars, prepared, range(10, 27))  # rows 7..j-1 usable: 20 of them at bar 27
    assert all(sigs == [] and proba is None for _, sigs, proba in early)
    (_, sigs, _) = _drive(s, bars, prepared, range(27, 28))[0]  # bar 27 closed up: a fall is next
    assert [(g.direction, g.sl_points, g.tp_points) for g in sigs] == [("sell", 150.0, None)]
    assert s.state("EURUSD").trained_at == [27]


# ----------------------------------------------------------------------------- no lookahead
WF_SMALL = {"horizon": 3, "embargo": 1, "train_bars": 150, "retrain_every": 7, "min_train_samples": 40}


@pytest.mark.parametrize("k", [140, 233])
def test_predictions_on_truncated_bars_equal_full_run(k: int) -> None:
    bars = _random_walk(300, 3)
    full, part = _make(**WF_SMALL, threshold=0.51), _make(**WF_SMALL, threshold=0.51)
    prep_full = full.prepare("EURUSD", Timeframe.H1, bars)
    prep_part = part.prepare("EURUSD", Timeframe.H1, bars.iloc[:k].copy())
    assert isinstance(prep_full, pd.DataFrame) and isinstance(prep_part, pd.DataFrame)
    a = _drive(full, bars, prep_full, range(100, k))
    b = _drive(part, bars.iloc[:k], prep_part, range(100, k))
    assert a == b
    assert sum(len(x[1]) for x in a) > 2 and sum(x[2] is not None for x in a) > 20
    assert full.state("EURUSD").trained_at == part.state("EURUSD").trained_at


def test_predictions_unchanged_when_future_bars_are_rewritten() -> None:
    bars = _random_walk(300, 4)
    future = bars.copy()
    future.loc[200:, ["open", "high", "low", "close"]] *= 1.5  # a jump after bar 199
    a, b = _make(**WF_SMALL, threshold=0.51), _make(**WF_SMALL, threshold=0.51)
    pa, pb = a.prepare("EURUSD", Timeframe.H1, bars), b.prepare("EURUSD", Timeframe.H1, future)
    assert isinstance(pa, pd.DataFrame) and isinstance(pb, pd.DataFrame)
    assert _drive(a, bars, pa, range(100, 200)) == _drive(b, future, pb, range(100, 200))


# ----------------------------------------------------------------------------- checkpoint
def test_state_dict_pickle_round_trip_mid_run_same_subsequent_signals() -> None:
    bars = _random_walk(320, 9)
    straight = _make(**WF_SMALL, threshold=0.51)
    prep = straight.prepare("EURUSD", Timeframe.H1, bars)
    assert isinstance(prep, pd.DataFrame)
    ref = _drive(straight, bars, prep, range(100, 320))

    first = _make(**WF_SMALL, threshold=0.51)
    first.prepare("EURUSD", Timeframe.H1, bars)
    head = _drive(first, bars, prep, range(100, 205))  # stop between the fits at 202 and 209
    blob = pickle.dumps(first.state_dict())
    resumed = _make(**WF_SMALL, threshold=0.51)
    resumed.prepare("EURUSD", Timeframe.H1, bars)
    resumed.load_state(pickle.loads(blob))
    tail = _drive(resumed, bars, prep, range(205, 320))
    assert head + tail == ref
    assert sum(len(x[1]) for x in tail) > 2
    trained = straight.state("EURUSD").trained_at
    assert resumed.state("EURUSD").trained_at == trained and {202, 209} <= set(trained)
    # A fresh strategy without the state diverges (it has to fit again at 205): the state matters.
    fresh = _make(**WF_SMALL, threshold=0.51)
    fresh.prepare("EURUSD", Timeframe.H1, bars)
    assert _drive(fresh, bars, prep, range(205, 320)) != tail


def test_load_state_with_other_params_refused() -> None:
    a = _make(**WF_SMALL)
    with pytest.raises(ValueError, match="other params"):
        _make(**WF_SMALL | {"horizon": 4}).load_state(a.state_dict())
    with pytest.raises(ValueError, match="state version"):
        a.load_state({"version": 0})


def test_hgb_model_deterministic() -> None:
    bars = _random_walk(220, 6)
    runs = []
    for _ in range(2):
        s = _make(**WF_SMALL | {"retrain_every": 50}, model="hgb", threshold=0.51)
        prep = s.prepare("EURUSD", Timeframe.H1, bars)
        assert isinstance(prep, pd.DataFrame)
        runs.append(_drive(s, bars, prep, range(120, 220)))
    assert runs[0] == runs[1] and any(x[1] for x in runs[0])


# ----------------------------------------------------------------------------- params
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"train_bars": 50, "min_train_samples": 60}, "exceeds train_bars"),
        ({"sl_points": 100}, "sl_atr or sl_points"),
        ({"tp_points": 100}, "tp_atr or tp_points"),
        ({"lags": (1, 1)}, "distinct"),
        ({"ma_periods": (1,)}, "distinct and >= 2"),
        ({"threshold": 0.5}, "greater than 0.5"),
        ({"model": "forest"}, "logistic"),
    ],
)
def test_params_invalid_rejected(params: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WalkForwardParams(**params)


def test_builtin_registered_as_ml() -> None:
    cls, _ = resolve_class("ml_walkforward", Path("."), "#1")
    assert BUILTINS["ml_walkforward"].endswith("ml:WalkForwardClassifier")
    assert cls is WalkForwardClassifier and cls.category == "ml"


# ----------------------------------------------------------------------------- real data
def _real_config(shared_data: Path, tmp_path: Path, start: str, end: str) -> dict:
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    link = folder / "EURUSD_M1_x.parquet"
    if not link.exists():
        link.symlink_to(shared_data / "m1" / "EURUSD_M1_2018-2019.parquet")
    raw = base_config(folder, tmp_path, start=start, end=end, warmup_bars=10, seed=42)
    raw["strategies"] = [{"class": "ml_walkforward", "name": "ml_walkforward"}]
    raw["execution"] = {"spread": {"source": "fixed", "points": 10}}
    raw["results"]["database_url"] = f"sqlite:///{tmp_path / 'ml.sqlite'}"
    return raw


@pytest.mark.shared_data
def test_check_lookahead_real_eurusd_h1_clean(shared_data: Path, tmp_path: Path) -> None:
    cfg = parse_config(_real_config(shared_data, tmp_path, "2018-02-01", "2018-05-01"))
    report = check_lookahead(cfg, tmp_path, "ml_walkforward", points=3)
    assert report.clean, [d.to_dict() for d in report.differences[:5]]
    assert report.signals_checked > 0 and report.values_checked > 0


@pytest.mark.shared_data
def test_golden_run_real_eurusd_h1(shared_data: Path, tmp_path: Path, golden: Callable[..., None]) -> None:
    raw = _real_config(shared_data, tmp_path, "2018-02-01", "2018-06-01")
    runner = Runner(build(parse_config(raw), tmp_path))
    result = runner.run()
    trades = sum(1 for d in runner.c.server.deals if d.entry == C.DEAL_ENTRY_OUT)
    assert trades > 0
    assert not runner.funnel.errors and not runner.funnel.invalid_signals
    st = runner.c.strategies[0].strategy.state("EURUSD")  # type: ignore[attr-defined]
    assert st.trained_at[0] > 0 and np.all(np.diff(st.trained_at) == 24)
    golden("ml_walkforward", {"trades": trades, "net_profit": round(result.final_balance - 10_000.0, 2)})


def test_prepare_loads_the_model_library_so_a_missing_one_stops_the_run_before_bar_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """scikit-learn is loaded by prepare() (the build, before bar 1), not at the first fit in the loop:
    without it the strategy fails to build, with the library's error, instead of at its first refit."""
    import sys

    from mt5tester.engine.feed import prepared_columns
    from mt5tester.errors import StrategyLoadError
    from mt5tester.model.bars import Bars

    bars = _random_walk(60, 3)
    series = Bars(
        "EURUSD", Timeframe.H1, bars["time"].to_numpy(np.int64), *(bars[c].to_numpy(float) for c in
        ("open", "high", "low", "close")), bars["tick_volume"].to_numpy(np.int64),
        bars["spread"].to_numpy(np.int32),
    )  # fmt: skip
    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)
    with pytest.raises(
        StrategyLoadError,
        match=r"strategy wf: prepare\(EURUSD, H1\) raised ModuleNotFoundError: import of sklearn",
    ):
        prepared_columns(_make(), "EURUSD", series)
    monkeypatch.undo()
    assert "ml_row" in prepared_columns(_make(), "EURUSD", series)
