"""Regime detectors: a label per bar, known at the bar's close, from that bar and earlier ones only.

Codes (``np.int8``): 0 ``trending_up``, 1 ``trending_down``, 2 ``ranging``, 3 ``volatile``, -1 unknown
(warm-up). Bar ``i`` is the i-th bar of the ``Bars`` passed in (labelled by open time, visible at its
close, ARCHITECTURE 2); the label of bar ``i`` depends on bars ``0..i`` only, so
``detect(bars.slice(0, k), p)`` equals ``detect(bars, p)[:k]`` exactly (tested on real data).

Rules method (``method="rules"``), all Wilder-smoothed, indices from 0:

* ``TR[i] = max(high[i] - low[i], |high[i] - close[i-1]|, |low[i] - close[i-1]|)`` for ``i >= 1``;
  ``up = high[i] - high[i-1]``, ``down = low[i-1] - low[i]``; ``+DM = up`` if ``up > down and up > 0``
  else 0; ``-DM = down`` if ``down > up and down > 0`` else 0.
* Wilder smoothing ``W_n(x)``: the first value, at ``i = first + n - 1``, is the mean of the first ``n``
  values of ``x``; then ``W[i] = W[i-1] + (x[i] - W[i-1]) / n``.
* ``ATR = W_atr_period(TR)`` (first at bar ``atr_period``);
  ``+DI = 100 W_adx_period(+DM) / W_adx_period(TR)``, ``-DI`` likewise (0 when the smoothed TR is 0);
  ``DX = 100 |+DI - -DI| / (+DI + -DI)`` (0 when both are 0), first at bar ``adx_period``;
  ``ADX = W_adx_period(DX)``, first at bar ``2 adx_period - 1``.
* ATR percentile at bar ``i``, over the window of the last ``W = atr_pct_window`` ATR values (bar ``i``
  included): ``100 * below / (W - 1)`` with ``below = #{j in (i - W, i) : ATR[j] < ATR[i] (1 - 1e-9)}``,
  i.e. the share of the other ``W - 1`` values strictly below the current one; values within a relative
  1e-9 count as equal, so float noise on a constant ATR reads 0, not 100. 100 = the highest of the
  window, 0 = the lowest or all equal. First at bar ``atr_period + W - 1``.
* Label, in this order: ``volatile`` if ATR percentile ``>= atr_volatile_pct`` (compared as
  ``100 below >= atr_volatile_pct (W - 1)``); else ``trending_up`` if
  ``ADX >= adx_trend`` and ``+DI > -DI``; ``trending_down`` if ``ADX >= adx_trend`` and ``+DI < -DI``;
  else ``ranging`` (this includes ``+DI == -DI``).
* Realised volatility (``rv``: standard deviation, ddof 1, of the last ``rv_window`` log returns) is
  reported by :func:`rules_features` but is not part of the rule.
* Warm-up: ``max(2 adx_period - 1, atr_period + atr_pct_window - 1, min_bars)`` leading bars are -1
  (defaults: 513 bars).

HMM method (``method="hmm"``):

* Features per bar: ``x[i] = (log(close[i] / close[i-1]), rv[i])``, valid from bar ``rv_window``.
* Refit points ``r = r0, r0 + E, r0 + 2E, ...`` with ``T = hmm_train_bars``, ``E = hmm_refit_every``,
  ``r0 = rv_window + T - 1`` (the first point with ``T`` valid feature rows). At ``r`` a
  ``GaussianHMM(hmm_states, covariance_type="diag", n_iter=200, tol=1e-4, random_state=seed)`` is fitted
  on rows ``(r - T, r]``, standardised with that window's own mean and standard deviation. EM starts
  from the means and variances of ``hmm_states`` equal-count groups of those rows sorted by ``rv``
  (start/transition probabilities: hmmlearn's seeded Dirichlet draw).
* Bars in ``(r, r + E]`` are labelled with that model: the scaled forward recursion (filter, not Viterbi
  and not forward-backward) runs from ``r - T + 1`` to the bar, and the bar's state is the argmax of the
  filtered probability ``P(state_i | x[r-T+1..i])`` (ties: lowest state index). Only bars ``<= i`` are
  used, so the label never changes when later bars arrive.
* State -> label, per fitted model, in raw return units (``mu_k`` mean, ``sigma_k`` standard deviation
  of the return component of state ``k``): the state with the largest ``sigma_k`` (ties: lowest index)
  is ``volatile``; each other state is ``trending_up`` if ``mu_k / sigma_k >= hmm_trend_ratio``,
  ``trending_down`` if ``mu_k / sigma_k <= -hmm_trend_ratio``, else ``ranging``.
* Warm-up: ``max(rv_window + hmm_train_bars, min_bars)`` leading bars are -1 (defaults: 2020 bars).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import tzinfo

import numpy as np
import numpy.typing as npt
import pandas as pd

from mt5tester.config import RegimeParams
from mt5tester.model.bars import Bars

log = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]

TRENDING_UP = "trending_up"
TRENDING_DOWN = "trending_down"
RANGING = "ranging"
VOLATILE = "volatile"
UNKNOWN = "unknown"
LABELS: tuple[str, ...] = (TRENDING_UP, TRENDING_DOWN, RANGING, VOLATILE)
CODES: dict[str, int] = {name: code for code, name in enumerate(LABELS)}
UNKNOWN_CODE = -1
CODE_TRENDING_UP, CODE_TRENDING_DOWN, CODE_RANGING, CODE_VOLATILE = range(4)

_TIE_REL = 1e-9  # ATR values this close (relative) are ties in the percentile
_HMM_ITER = 200
_HMM_TOL = 1e-4
_HMM_INIT_VAR_FLOOR = 1e-3  # standardised units; keeps a group of identical rows from a zero variance


def warmup_bars(params: RegimeParams) -> int:
    """Number of leading bars that are always unknown (-1): the index of the first labelled bar."""
    if params.method == "rules":
        own = max(2 * params.adx_period - 1, params.atr_period + params.atr_pct_window - 1)
    else:
        own = params.rv_window + params.hmm_train_bars
    return max(own, params.min_bars)


def label_names(codes: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """Label strings of a code array (-1 -> ``unknown``)."""
    table = np.array([*LABELS, UNKNOWN])
    return table[np.asarray(codes, np.int64)]  # -1 indexes the last entry, "unknown"


def detect(bars: Bars, params: RegimeParams) -> I8:
    """Regime code per bar (``np.int8``, -1 during warm-up); bar ``i`` uses bars ``<= i`` only."""
    codes = _rules(bars, params) if params.method == "rules" else _hmm(bars, params)
    codes[: min(params.min_bars, len(bars))] = UNKNOWN_CODE
    return codes


# --------------------------------------------------------------------------------------------- rules


def _wilder(x: F64, n: int, start: int) -> F64:
    """Wilder smoothing of ``x[start:]``: NaN before ``start + n - 1``, SMA seed there, then the recursion."""
    out = np.full(len(x), np.nan)
    first = start + n - 1
    if len(x) <= first:
        return out
    y = x[first:].copy()
    y[0] = x[start : first + 1].mean()
    # ewm(adjust=False) is exactly W[i] = (1 - 1/n) W[i-1] + x[i] / n, a sequential (causal) loop.
    out[first:] = pd.Series(y).ewm(alpha=1.0 / n, adjust=False).mean().to_numpy()
    return out


def _count_below(x: F64, w: int) -> F64:
    """For each i: how many of ``x[i-w+1 .. i-1]`` are below ``x[i] (1 - 1e-9)``; NaN until w values exist."""
    n = len(x)
    out = np.full(n, np.nan)
    valid = np.flatnonzero(~np.isnan(x))
    if len(valid) == 0 or n < valid[0] + w:
        return out
    start = int(valid[0]) + w - 1
    windows = np.lib.stride_tricks.sliding_window_view(x, w)  # windows[j] = x[j : j + w], ends at j + w - 1
    # Chunks bound the (rows x w) comparison matrix to a few MB whatever the series length.
    step = max(1, 2_000_000 // w)
    for a in range(start, n, step):
        b = min(a + step, n)
        current = x[a:b] * (1.0 - _TIE_REL)
        out[a:b] = (windows[a - w + 1 : b - w + 1, :-1] < current[:, None]).sum(axis=1)
    return out


def _log_returns(close: F64) -> F64:
    ret = np.full(len(close), np.nan)
    ret[1:] = np.log(close[1:] / close[:-1])
    return ret


def _realised_vol(ret: F64, window: int) -> F64:
    """Standard deviation (ddof 1) of the last ``window`` log returns; first at bar ``window``."""
    return pd.Series(ret).rolling(window, min_periods=window).std(ddof=1).to_numpy()


def rules_features(bars: Bars, params: RegimeParams) -> pd.DataFrame:
    """The rules method's inputs per bar: time, plus_di, minus_di, adx, atr, atr_pct (0-100) and rv.

    Values are NaN while their warm-up lasts."""
    high = np.asarray(bars.high, np.float64)
    low = np.asarray(bars.low, np.float64)
    close = np.asarray(bars.close, np.float64)
    n = len(close)
    tr = np.full(n, np.nan)
    plus_dm = np.full(n, np.nan)
    minus_dm = np.full(n, np.nan)
    if n > 1:
        prev = close[:-1]
        tr[1:] = np.maximum(high[1:] - low[1:], np.maximum(np.abs(high[1:] - prev), np.abs(low[1:] - prev)))
        up = high[1:] - high[:-1]
        down = low[:-1] - low[1:]
        plus_dm[1:] = np.where((up > down) & (up > 0), up, 0.0)
        minus_dm[1:] = np.where((down > up) & (down > 0), down, 0.0)
    p = params.adx_period
    tr_s = _wilder(tr, p, 1)
    safe = np.where(tr_s > 0, tr_s, 1.0)
    plus_di = np.where(tr_s > 0, 100.0 * _wilder(plus_dm, p, 1) / safe, np.where(np.isnan(tr_s), np.nan, 0.0))
    minus_di = np.where(
        tr_s > 0, 100.0 * _wilder(minus_dm, p, 1) / safe, np.where(np.isnan(tr_s), np.nan, 0.0)
    )
    di_sum = plus_di + minus_di
    dx = np.where(di_sum > 0, 100.0 * np.abs(plus_di - minus_di) / np.where(di_sum > 0, di_sum, 1.0), 0.0)
    dx[np.isnan(di_sum)] = np.nan
    adx = _wilder(dx, p, p)
    atr = _wilder(tr, params.atr_period, 1)
    w = params.atr_pct_window
    return pd.DataFrame(
        {
            "time": np.asarray(bars.time, np.int64),
            "plus_di": plus_di,
            "minus_di": minus_di,
            "adx": adx,
            "atr": atr,
            "atr_pct": 100.0 * _count_below(atr, w) / (w - 1),
            "rv": _realised_vol(_log_returns(close), params.rv_window),
        }
    )


def _rules(bars: Bars, params: RegimeParams) -> I8:
    f = rules_features(bars, params)
    adx = f["adx"].to_numpy()
    plus_di = f["plus_di"].to_numpy()
    minus_di = f["minus_di"].to_numpy()
    # Compare the integer count with the threshold (below * 100 >= pct * (W - 1)): no rounding at the edge.
    w = params.atr_pct_window
    count = np.rint(f["atr_pct"].to_numpy() * (w - 1) / 100.0)
    volatile = count * 100.0 >= params.atr_volatile_pct * (w - 1)
    trend = adx >= params.adx_trend
    codes = np.where(
        volatile,
        CODE_VOLATILE,
        np.where(
            trend & (plus_di > minus_di),
            CODE_TRENDING_UP,
            np.where(trend & (plus_di < minus_di), CODE_TRENDING_DOWN, CODE_RANGING),
        ),
    ).astype(np.int8)
    codes[np.isnan(adx) | np.isnan(count)] = UNKNOWN_CODE
    return codes


# ----------------------------------------------------------------------------------------------- hmm


def _hmm_features(bars: Bars, params: RegimeParams) -> F64:
    ret = _log_returns(np.asarray(bars.close, np.float64))
    return np.column_stack([ret, _realised_vol(ret, params.rv_window)])


def _gaussian_loglik(z: F64, means: F64, variances: F64) -> F64:
    """log N(z_t | means_k, diag(variances_k)) for every row t and state k, shape (rows, states)."""
    diff = z[:, None, :] - means[None, :, :]
    return -0.5 * (
        np.log(2.0 * np.pi * variances).sum(axis=1)[None, :] + (diff**2 / variances[None]).sum(axis=2)
    )


def _forward_filter(loglik: F64, startprob: F64, transmat: F64) -> F64:
    """Filtered state probabilities P(s_t | x_0..x_t): the scaled forward recursion, row by row."""
    rows, k = loglik.shape
    out = np.empty((rows, k))
    # Subtracting the row maximum only rescales a row; each step is normalised anyway.
    emit = np.exp(loglik - loglik.max(axis=1, keepdims=True))
    predicted = np.asarray(startprob, np.float64)
    for t in range(rows):
        alpha = predicted * emit[t]
        total = alpha.sum()
        # An observation impossible under every reachable state (underflow) carries no usable evidence.
        alpha = alpha / total if total > 0 and np.isfinite(total) else predicted / predicted.sum()
        out[t] = alpha
        predicted = alpha @ transmat
    return out


def _state_codes(mu: F64, sigma: F64, trend_ratio: float) -> I8:
    """Label code of each HMM state from its raw return mean and standard deviation (module docstring)."""
    codes = np.full(len(mu), CODE_RANGING, np.int8)
    ratio = mu / sigma
    codes[ratio >= trend_ratio] = CODE_TRENDING_UP
    codes[ratio <= -trend_ratio] = CODE_TRENDING_DOWN
    codes[int(np.argmax(sigma))] = CODE_VOLATILE
    return codes


def _fit_segment(train: F64, params: RegimeParams) -> tuple[F64, F64, F64, F64, F64, F64, I8] | None:
    """Fit on ``train`` (raw features); return standardisation, HMM parameters and state codes."""
    from hmmlearn.hmm import GaussianHMM

    centre = train.mean(axis=0)
    scale = train.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (train - centre) / scale
    # Means and variances start from equal-count groups of the rows sorted by realised volatility:
    # deterministic, cheap, and about as good as hmmlearn's k-means start (whose threaded k-means took
    # ~90% of each fit). Start and transition probabilities keep hmmlearn's seeded Dirichlet start.
    order = np.argsort(z[:, 1], kind="stable")
    groups = np.array_split(order, params.hmm_states)
    model = GaussianHMM(
        n_components=params.hmm_states,
        covariance_type="diag",
        n_iter=_HMM_ITER,
        tol=_HMM_TOL,
        random_state=params.seed,
        init_params="st",
    )
    model.means_ = np.array([z[g].mean(axis=0) for g in groups])
    model.covars_ = np.array([z[g].var(axis=0) + _HMM_INIT_VAR_FLOOR for g in groups])
    model.fit(z)
    means = np.asarray(model.means_, np.float64)
    variances = np.diagonal(np.asarray(model.covars_, np.float64), axis1=1, axis2=2).copy()
    startprob = np.asarray(model.startprob_, np.float64)
    transmat = np.asarray(model.transmat_, np.float64)
    if not all(np.all(np.isfinite(a)) for a in (means, variances, startprob, transmat)):
        return None
    mu = means[:, 0] * scale[0] + centre[0]
    sigma = np.sqrt(variances[:, 0]) * scale[0]
    return (
        centre,
        scale,
        means,
        variances,
        startprob,
        transmat,
        _state_codes(mu, sigma, params.hmm_trend_ratio),
    )


def _hmm(bars: Bars, params: RegimeParams) -> I8:
    n = len(bars)
    codes = np.full(n, UNKNOWN_CODE, np.int8)
    x = _hmm_features(bars, params)
    span, every = params.hmm_train_bars, params.hmm_refit_every
    first_refit = params.rv_window + span - 1
    # A refit at r labels (r, r + every]; it exists only when bar r + 1 exists, which keeps every fit a
    # function of bars <= r alone (the same fits for any longer series).
    for r in range(first_refit, n - 1, every):
        lo, hi = r - span + 1, min(r + every, n - 1)
        fitted = _fit_segment(x[lo : r + 1], params)
        if fitted is None:
            log.warning(
                "regime hmm: fit at bar %d of %s gave non-finite parameters; bars left unknown",
                r,
                bars.symbol,
            )
            continue
        centre, scale, means, variances, startprob, transmat, state_codes = fitted
        z = (x[lo : hi + 1] - centre) / scale
        post = _forward_filter(_gaussian_loglik(z, means, variances), startprob, transmat)
        codes[r + 1 : hi + 1] = state_codes[np.argmax(post[span:], axis=1)]
    return codes


# ------------------------------------------------------------------------------------------- tracker


class RegimeTracker:
    """Regime labels per symbol with their bar close times; ``label_at`` answers for any time ``t``.

    Filled once before the run (``add``/``add_bars``/``from_m1``), read-only afterwards. The regime at
    ``t`` is the label of the last bar whose close time is ``<= t`` (a bar closing exactly at ``t`` is
    known at ``t``); before the first such bar, or while it is in warm-up, it is ``unknown``.
    """

    def __init__(self) -> None:
        self._close: dict[str, I64] = {}
        self._codes: dict[str, I8] = {}

    @property
    def symbols(self) -> list[str]:
        return sorted(self._codes)

    def add(self, symbol: str, close_time: npt.ArrayLike, codes: npt.ArrayLike) -> None:
        """Store (replacing) the labels of ``symbol``: ``codes[i]`` holds from ``close_time[i]`` (UTC ns)."""
        ct = np.array(close_time, np.int64)
        cd = np.array(codes, np.int8)
        if ct.shape != cd.shape or ct.ndim != 1:
            raise ValueError(f"regime {symbol}: {len(ct)} close times but {len(cd)} codes")
        if len(ct) > 1 and bool(np.any(ct[1:] <= ct[:-1])):
            raise ValueError(f"regime {symbol}: close times must be strictly increasing")
        if bool(np.any((cd < UNKNOWN_CODE) | (cd >= len(LABELS)))):
            raise ValueError(f"regime {symbol}: codes must be -1..{len(LABELS) - 1}")
        ct.setflags(write=False)
        cd.setflags(write=False)
        self._close[symbol] = ct
        self._codes[symbol] = cd

    def add_bars(self, bars: Bars, params: RegimeParams) -> I8:
        """Detect on ``bars`` and store the labels under ``bars.symbol``; returns the codes."""
        codes = detect(bars, params)
        self.add(bars.symbol, bars.close_time, codes)
        return codes

    @classmethod
    def from_m1(
        cls, m1: Mapping[str, Bars], params: RegimeParams, server_tz: str | tzinfo = "UTC"
    ) -> RegimeTracker:
        """Build ``params.timeframe`` bars from each symbol's M1 (server-time aligned) and detect."""
        from mt5tester.data.resample import resample

        tracker = cls()
        for symbol, bars in m1.items():
            built = resample(bars, params.tf, server_tz)
            tracker.add(symbol, built.close_time, detect(built, params))
        return tracker

    def code_at(self, symbol: str, t_ns: int) -> int:
        """Code of the last bar closed at or before ``t_ns`` (-1 if none or in warm-up)."""
        return int(self.codes_at(symbol, np.array([t_ns], np.int64))[0])

    def codes_at(self, symbol: str, times: npt.ArrayLike) -> I8:
        """``code_at`` of each of ``times`` (UTC ns) at once."""
        try:
            close = self._close[symbol]
        except KeyError:
            raise KeyError(f"no regime labels for symbol {symbol!r} (tracked: {self.symbols})") from None
        i = np.searchsorted(close, np.asarray(times, np.int64), "right") - 1
        codes: I8 = np.where(i < 0, UNKNOWN_CODE, self._codes[symbol][np.maximum(i, 0)]).astype(np.int8)
        return codes

    def label_at(self, symbol: str, t_ns: int) -> str:
        """Label of the last bar closed at or before ``t_ns``: one of ``LABELS`` or ``unknown``."""
        code = self.code_at(symbol, t_ns)
        return UNKNOWN if code == UNKNOWN_CODE else LABELS[code]
