"""Machine-learning strategies."""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from mt5tester.model.bars import BarArrays
from mt5tester.model.signal import Signal
from mt5tester.model.timeframe import Timeframe
from mt5tester.strategy.base import Strategy, StrategyParams

STATE_VERSION = 1


class WalkForwardParams(StrategyParams):
    horizon: int = Field(default=6, ge=1, description="label: direction of the return over this many bars")
    min_move: float = Field(
        default=0.0005, ge=0, lt=1, description="dead zone: |forward return| <= min_move is class 0 (skipped)"
    )
    train_bars: int = Field(default=500, ge=10, description="rolling training window (bars)")
    retrain_every: int = Field(default=24, ge=1, description="bars between two fits")
    embargo: int = Field(default=2, ge=0, description="bars left out between the training labels and now")
    min_train_samples: int = Field(default=100, ge=10, description="usable rows needed to fit")
    model: Literal["logistic", "hgb"] = Field(
        default="logistic",
        description="logistic: StandardScaler + LogisticRegression; hgb: gradient boosting",
    )
    l2_c: float = Field(default=1.0, gt=0, description="inverse L2 strength C of the logistic regression")
    threshold: float = Field(default=0.55, gt=0.5, le=1, description="class probability needed to trade")
    lags: tuple[int, ...] = Field(default=(1, 2, 4, 8, 24), min_length=1, description="return lags (bars)")
    vol_window: int = Field(default=24, ge=2, description="rolling std of 1-bar log returns")
    atr_period: int = Field(default=14, ge=1, description="Wilder ATR; the slow ATR uses 4x this")
    rsi_period: int = Field(default=14, ge=2, description="Wilder RSI")
    ma_periods: tuple[int, ...] = Field(default=(20, 50), description="SMA distances, in ATRs")
    time_features: bool = Field(default=True, description="hour-of-day and day-of-week of the bar open")
    sl_atr: float | None = Field(default=2.0, gt=0, description="stop loss in ATRs")
    tp_atr: float | None = Field(default=3.0, gt=0, description="take profit in ATRs")
    sl_points: float | None = Field(default=None, gt=0, description="stop loss in points (instead of ATRs)")
    tp_points: float | None = Field(default=None, gt=0, description="take profit in points (instead of ATRs)")
    seed: int = Field(default=42, ge=0, description="seeds the per-symbol generator of model random_state")

    @model_validator(mode="after")
    def _consistent(self) -> WalkForwardParams:
        if self.min_train_samples > self.train_bars:
            raise ValueError(
                f"min_train_samples ({self.min_train_samples}) exceeds train_bars ({self.train_bars})"
            )
        if any(k < 1 for k in self.lags) or len(set(self.lags)) != len(self.lags):
            raise ValueError(f"lags must be distinct and >= 1, got {list(self.lags)}")
        if any(n < 2 for n in self.ma_periods) or len(set(self.ma_periods)) != len(self.ma_periods):
            raise ValueError(f"ma_periods must be distinct and >= 2, got {list(self.ma_periods)}")
        if self.sl_atr is not None and self.sl_points is not None:
            raise ValueError("give sl_atr or sl_points, not both")
        if self.tp_atr is not None and self.tp_points is not None:
            raise ValueError("give tp_atr or tp_points, not both")
        return self


# ----------------------------------------------------------------------------------- pure pieces
def feature_names(p: WalkForwardParams) -> list[str]:
    """Feature columns, in the order of the model's input matrix."""
    names = [f"ml_ret_{k}" for k in p.lags] + ["ml_vol", "ml_atr_rel", "ml_atr_ratio", "ml_rsi"]
    names += [f"ml_ma_{n}" for n in p.ma_periods]
    if p.time_features:
        names += ["ml_hour_sin", "ml_hour_cos", "ml_dow_sin", "ml_dow_cos"]
    return names


def _wilder(x: pd.Series, n: int) -> pd.Series:
    return x.ewm(alpha=1.0 / n, adjust=False, min_periods=n).mean()


def compute_features(bars: pd.DataFrame, p: WalkForwardParams) -> pd.DataFrame:
    """Causal features: row i uses bars 0..i only (shift, trailing rolling windows, recursive ewm).

    Columns: ``ml_row`` (the bar's position in the series), ``ml_atr`` (Wilder ATR, for stops) and
    the model inputs of :func:`feature_names`: log returns over each lag, the rolling std of 1-bar
    log returns, ATR/close, ATR over the slow (4x) ATR, RSI rescaled to -1..1, the distance of the
    close to each SMA in ATRs and, optionally, sin/cos of the hour and weekday of the bar open (UTC).
    Warm-up rows are NaN.
    """
    close = bars["close"].astype(float)
    high, low = bars["high"].astype(float), bars["low"].astype(float)
    log_close = pd.Series(np.log(close.to_numpy()), index=close.index)
    prev = close.shift(1)
    tr = pd.concat([high - low, (high - prev).abs(), (low - prev).abs()], axis=1).max(axis=1)
    atr = _wilder(tr, p.atr_period)
    out: dict[str, pd.Series | np.ndarray] = {"ml_row": np.arange(len(bars), dtype=np.int64), "ml_atr": atr}
    for k in p.lags:
        out[f"ml_ret_{k}"] = log_close - log_close.shift(k)
    out["ml_vol"] = log_close.diff().rolling(p.vol_window).std()
    out["ml_atr_rel"] = atr / close
    out["ml_atr_ratio"] = atr / _wilder(tr, 4 * p.atr_period)
    delta = close.diff()
    gain, loss = _wilder(delta.clip(lower=0), p.rsi_period), _wilder((-delta).clip(lower=0), p.rsi_period)
    rsi = 100.0 - 100.0 / (1.0 + gain / loss)  # loss 0 -> 100
    rsi = rsi.where(~((gain == 0) & (loss == 0)), 50.0)  # no move at all -> neutral
    out["ml_rsi"] = (rsi - 50.0) / 50.0
    for n in p.ma_periods:
        out[f"ml_ma_{n}"] = (close - close.rolling(n).mean()) / atr
    if p.time_features:
        t = pd.to_datetime(bars["time"], utc=True)
        hour = (t.dt.hour + t.dt.minute / 60.0).to_numpy(dtype=float) * (2 * np.pi / 24)
        dow = t.dt.day_of_week.to_numpy(dtype=float) * (2 * np.pi / 7)
        out |= {
            "ml_hour_sin": np.sin(hour),
            "ml_hour_cos": np.cos(hour),
            "ml_dow_sin": np.sin(dow),
            "ml_dow_cos": np.cos(dow),
        }
    frame = pd.DataFrame({k: np.asarray(v) for k, v in out.items()}, index=bars.index)
    return frame.reset_index(drop=True)


def train_rows(j: int, horizon: int, embargo: int, train_bars: int) -> range:
    """Training rows for a decision at the close of bar ``j`` (purge + embargo, López de Prado).

    The label of row i is the return from close[i] to close[i + horizon]: it spans bars
    i+1 .. i+horizon and is known at the close of bar i + horizon. The decision at j is about
    bars j+1 .. j+horizon. **Purge**: keep only rows whose label span ends by bar j (i + horizon <= j),
    i.e. labels fully known now and not overlapping the predicted span. **Embargo**: also leave out
    the ``embargo`` rows right before that, whose features/labels are serially correlated with the
    present: i + horizon + embargo <= j. The window is the last ``train_bars`` such rows:
    ``range(max(0, j - horizon - embargo - train_bars + 1), j - horizon - embargo + 1)``.
    Between fits the model is reused at later bars j' > j, where the condition holds a fortiori.
    """
    hi = j - horizon - embargo  # last usable row
    return range(max(0, hi - train_bars + 1), max(0, hi + 1))


def labels(close: np.ndarray, rows: range, horizon: int, min_move: float) -> np.ndarray:
    """+1 / -1 / 0 for ``rows``: sign of close[i + horizon] / close[i] - 1, 0 inside +-min_move.

    ``close`` holds only the bars known now; a label reaching past it raises (it would be the future).
    """
    if len(rows) and rows[-1] + horizon >= len(close):
        raise IndexError(
            f"label of row {rows[-1]} needs bar {rows[-1] + horizon}; only {len(close)} bars are known"
        )
    now = close[rows.start : rows.stop]
    ret = close[rows.start + horizon : rows.stop + horizon] / now - 1.0
    return np.where(ret > min_move, 1, np.where(ret < -min_move, -1, 0)).astype(np.int64)


def retrain_due(j: int, last_train: int | None, retrain_every: int) -> bool:
    """Fit at the first eligible bar, then whenever ``retrain_every`` bars have passed since the last fit."""
    return last_train is None or j - last_train >= retrain_every


@functools.cache
def _threads() -> Any:
    """One thread for sklearn/BLAS/OpenMP: deterministic and far faster than oversubscribed pools.
    Made after scipy is loaded: a controller only sees (and limits) the BLAS libraries loaded when it
    is made, and scipy's own OpenBLAS left at 2 threads cost lbfgs ~1.5 ms per step in a thread
    hand-off on this 2-core machine (scikit-learn, loaded later for ``hgb``, uses numpy's and scipy's)."""
    import scipy.optimize  # noqa: F401  (its BLAS, before the controller is made)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _fast_sklearn() -> Any:
    """scikit-learn without its per-call parameter validation and finiteness scans (the inputs are
    checked finite here): the same arithmetic, so the same fits and probabilities."""
    import sklearn

    return sklearn.config_context(assume_finite=True, skip_parameter_validation=True)


@functools.cache
def _expit() -> Any:
    from scipy.special import expit

    return expit


Linear = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # scaler mean, scale, coef.T, intercept


def linear_parts(model: Any) -> Linear | None:
    """The fitted numbers of a ``logistic`` model (StandardScaler + binary LogisticRegression), or None
    for any other model (``hgb``, more than two classes), which goes through scikit-learn."""
    steps = getattr(model, "steps", None)
    if steps is None or len(steps) != 2:
        return None
    scaler, clf = steps[0][1], steps[1][1]
    if type(scaler).__name__ != "StandardScaler" or type(clf).__name__ != "LogisticRegression":
        return None
    if not (scaler.with_mean and scaler.with_std) or len(clf.classes_) != 2 or clf.coef_.ndim != 2:
        return None
    return scaler.mean_, scaler.scale_, clf.coef_.T, clf.intercept_


def linear_proba(parts: Linear, row: np.ndarray) -> np.ndarray:
    """``predict_proba`` of one row (shape (1, n), finite) for a ``linear_parts`` model: scikit-learn's
    own operations in its order (the scaler's copy, ``-= mean_``, ``/= scale_``; ``X @ coef_.T +
    intercept_``; ``expit``; ``[1 - p, p]``), so bit-identical, without its per-call checks (~60 µs)."""
    mean, scale, coef_t, intercept = parts
    x = np.array(row, dtype=np.float64)
    x -= mean
    x /= scale
    scores = (x @ coef_t + intercept).reshape(-1)
    prob = _expit()(scores, out=scores)
    out = np.empty((len(prob), 2))  # np.stack([1 - p, p], axis=1): the same values, ~10x cheaper
    out[:, 0] = 1 - prob
    out[:, 1] = prob
    return out


def make_model(kind: str, l2_c: float, random_state: int) -> Any:
    if kind == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            max_iter=100, max_depth=3, learning_rate=0.05, early_stopping=False, random_state=random_state
        )
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("clf", LogisticRegression(C=l2_c, max_iter=500, random_state=random_state)),
        ]
    )


# ----------------------------------------------------------------------------------- the strategy
@dataclass
class _Series:
    """What prepare() computed for one symbol, indexed by bar position (row i known at bar i's close)."""

    x: np.ndarray  # (bars, features)
    close: np.ndarray
    atr: np.ndarray
    finite: np.ndarray  # row i of x holds no NaN (warm-up rows do): a property of row i alone


@dataclass
class _ModelState:
    rng: np.random.Generator
    model: Any = None
    last_train: int | None = None  # bar of the last fit
    train_range: tuple[int, int] | None = None  # first and last training row of that fit
    trained_at: list[int] = field(default_factory=list)
    side: str | None = None  # direction of the last emitted signal
    last_proba: tuple[float, float] | None = None  # (p_up, p_down) at the last call
    # linear_parts and class labels of ``model`` (not saved: derived again from the model after a restore)
    linear: tuple[Any, Linear | None, list[int]] = (None, None, [])


class WalkForwardClassifier(Strategy):
    """Walk-forward classifier of the forward-return direction, retrained on a rolling window.

    Idea: learn, from recent history only, which states of momentum, volatility, RSI, distance
    to moving averages and time of day/week precede a rise or a fall over the next ``horizon``
    bars, and trade the model's confident calls.

    Features (prepare(), vectorised and causal, see :func:`compute_features`): row i uses bars <= i.
    Label of row i: sign of close[i+horizon]/close[i] - 1, 0 (skipped) within +-``min_move``.
    Training at the close of bar j uses rows i with i + horizon + embargo <= j, the last
    ``train_bars`` of them (purge and embargo: :func:`train_rows`), dropping warm-up rows and
    dead-zone labels; fewer than ``min_train_samples`` usable rows, or a single class, means no fit
    yet (tried again next bar). Labels are computed from closes sliced to bar j, so the future is
    out of reach. The model (``logistic``: StandardScaler + LogisticRegression; ``hgb``:
    HistGradientBoosting, ~15x slower) is refitted every ``retrain_every`` bars, with a
    random_state drawn from a per-symbol generator seeded by ``seed`` and the symbol: deterministic.

    When it trades: at each bar close, with a model, predict_proba of the bar's features; buy when
    p_up >= ``threshold``, sell when p_down >= ``threshold``, confidence = that probability. A
    signal is emitted only when the side differs from the last emitted one (a reversal closes the
    opposite position; no stacking). SL/TP: ``sl_atr``/``tp_atr`` ATRs converted to points, or
    fixed ``sl_points``/``tp_points``. Tags carry p_up, p_down and the bar of the fit.

    Bar j is the position of the current bar in the series prepare() saw (history before the run
    included), read from the ``ml_row`` column of df; training windows may reach before df (closed
    bars only), so ``warmup_bars`` can stay small. ``seed`` is a param (the context carries no run
    seed); fits and predictions run single-threaded, which makes them bit-for-bit repeatable.

    Model state survives a checkpoint: :meth:`state_dict` / :meth:`load_state` (picklable). The
    features are not in it: prepare() recomputes them from the same series (same first bar) on resume.
    """

    category = "ml"
    Params = WalkForwardParams
    data_format = "numpy"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._series: dict[str, _Series] = {}
        self._states: dict[str, _ModelState] = {}
        self._points: dict[str, float] = {}

    @property
    def p(self) -> WalkForwardParams:
        assert isinstance(self.params, WalkForwardParams)
        return self.params

    # -------------------------------------------------------------------------- features
    def prepare(self, symbol: str, timeframe: Timeframe, bars: pd.DataFrame) -> pd.DataFrame:
        # The model's library and the thread limiter are loaded here, before bar 1: a missing or broken
        # scikit-learn stops the run at build, and the first fit in the loop pays no import (~0.4 s).
        make_model(self.p.model, self.p.l2_c, 0)
        _threads()
        feats = compute_features(bars, self.p)
        x = np.ascontiguousarray(feats[feature_names(self.p)].to_numpy(dtype=float))
        self._series[symbol] = _Series(
            x,
            bars["close"].to_numpy(dtype=float),
            feats["ml_atr"].to_numpy(dtype=float),
            np.isfinite(x).all(axis=1),
        )
        return feats

    # -------------------------------------------------------------------------- model state
    def state(self, symbol: str) -> _ModelState:
        st = self._states.get(symbol)
        if st is None:
            st = _ModelState(np.random.default_rng([self.p.seed, zlib.crc32(symbol.encode())]))
            self._states[symbol] = st
        return st

    def state_dict(self) -> dict[str, Any]:
        """Picklable model state: per symbol the fitted model, fit bars, generator state, last side."""
        return {
            "version": STATE_VERSION,
            "params": self.p.model_dump(mode="json"),
            "symbols": {
                sym: {
                    "model": st.model,
                    "last_train": st.last_train,
                    "train_range": st.train_range,
                    "trained_at": list(st.trained_at),
                    "side": st.side,
                    "last_proba": st.last_proba,
                    "rng": st.rng.bit_generator.state,
                }
                for sym, st in self._states.items()
            },
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output; the params must be the ones it was saved with."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"state version {state.get('version')!r}; this strategy reads {STATE_VERSION}")
        if state.get("params") != self.p.model_dump(mode="json"):
            raise ValueError("state saved with other params; a model is only valid for its own params")
        self._states = {}
        for sym, s in state["symbols"].items():
            rng = np.random.default_rng()
            rng.bit_generator.state = s["rng"]
            self._states[sym] = _ModelState(
                rng,
                s["model"],
                s["last_train"],
                tuple(s["train_range"]) if s["train_range"] is not None else None,
                list(s["trained_at"]),
                s["side"],
                tuple(s["last_proba"]) if s["last_proba"] is not None else None,
            )

    def _fit(self, st: _ModelState, x: np.ndarray, close: np.ndarray, j: int) -> bool:
        p = self.p
        rows = train_rows(j, p.horizon, p.embargo, p.train_bars)
        if not rows:
            return False
        y = labels(close, rows, p.horizon, p.min_move)
        xw = x[rows.start : rows.stop]
        keep = np.isfinite(xw).all(axis=1) & (y != 0)
        if int(keep.sum()) < p.min_train_samples or len(np.unique(y[keep])) < 2:
            return False
        model = make_model(p.model, p.l2_c, int(st.rng.integers(2**31 - 1)))
        with _threads().limit(limits=1), _fast_sklearn():  # rows kept are finite (keep)
            model.fit(xw[keep], y[keep])
        st.model, st.last_train, st.train_range = model, j, (rows.start, rows.stop - 1)
        st.trained_at.append(j)
        return True

    # -------------------------------------------------------------------------- signals
    def _point(self, symbol: str) -> float:
        if symbol not in self._points:
            info = self.ctx.mt5.symbol_info(symbol) if self.ctx.mt5 is not None else None
            if info is None:
                raise RuntimeError(f"no symbol_info for {symbol}: ATR stops need the symbol's point")
            self._points[symbol] = float(info.point)
        return self._points[symbol]

    def generate_signals(self, symbol: str, timeframe: Timeframe, df: BarArrays) -> list[Signal]:  # type: ignore[override]
        p = self.p
        series = self._series.get(symbol)
        if series is None:
            raise RuntimeError(f"{self.name}: prepare() was not run for {symbol}")
        j = int(np.asarray(df["ml_row"])[-1])
        if series.close[j] != float(np.asarray(df["close"])[-1]):
            raise RuntimeError(f"{self.name}: prepared series of {symbol} does not match the bars at row {j}")
        # Everything below reads bars 0..j only: the closes and features known at this bar's close.
        x, close = series.x[: j + 1], series.close[: j + 1]
        st = self.state(symbol)
        if retrain_due(j, st.last_train, p.retrain_every):
            self._fit(st, x, close, j)
        st.last_proba = None
        if st.model is None or not series.finite[j]:
            return []
        # One row: the same sklearn computation without its per-call input checks (x[j] is finite, checked
        # above) or a thread-pool switch (a 1-row product never threads); they were half a portfolio's loop.
        if st.linear[0] is not st.model:
            st.linear = (st.model, linear_parts(st.model), [int(c) for c in st.model.classes_])
        _, parts, classes = st.linear
        if parts is not None:
            proba = linear_proba(parts, x[j : j + 1])[0]
        else:
            with _fast_sklearn():
                proba = st.model.predict_proba(x[j : j + 1])[0]
        p_up, p_down = float(proba[classes.index(1)]), float(proba[classes.index(-1)])
        st.last_proba = (p_up, p_down)
        side = "buy" if p_up >= p.threshold else "sell" if p_down >= p.threshold else None
        if side is None or side == st.side:
            return []
        atr = float(series.atr[j])
        sl, tp = p.sl_points, p.tp_points
        if p.sl_atr is not None or p.tp_atr is not None:
            if not np.isfinite(atr) or atr <= 0:
                return []
            point = self._point(symbol)
            if p.sl_atr is not None:
                sl = round(p.sl_atr * atr / point, 1)
            if p.tp_atr is not None:
                tp = round(p.tp_atr * atr / point, 1)
        if (sl is not None and sl <= 0) or (tp is not None and tp <= 0):
            return []  # an ATR below 0.05 points: no meaningful stop
        st.side = side
        conf = p_up if side == "buy" else p_down
        return [
            Signal(
                symbol=symbol,
                direction=side,
                sl_points=sl,
                tp_points=tp,
                confidence=conf,
                strategy=self.name,
                comment=f"wf {side} p={conf:.2f}",
                tags={"p_up": p_up, "p_down": p_down, "trained_at": st.last_train},
            )
        ]
