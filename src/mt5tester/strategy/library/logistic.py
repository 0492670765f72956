"""The ``logistic`` model of the walk-forward classifier (StandardScaler + binary L2 LogisticRegression,
lbfgs) fitted without scikit-learn's estimator layer.

A portfolio refits it ~1,400 times on ~400 x 15 matrices: there the arithmetic is microseconds and
scikit-learn's per-call work (input validation, array-namespace dispatch, config look-ups, the
pipeline, ~50 Python calls per lbfgs step) was most of a fit. :func:`fit` makes the same calls on the
same arrays in the same order -- the scaler's sums (:func:`standardize`), its ``X - mean_`` / ``scale_``, the
``HalfBinomialLoss`` kernel's arithmetic (compiled here), ``X @ w + b``, the sums and products of
``LinearModelLoss.loss_gradient``, scipy's L-BFGS-B step driven as ``scipy.optimize.minimize``
drives it with ``LogisticRegression``'s options (:func:`_lbfgsb`) -- so the coefficients, and every
probability after them, are bit-identical (tests/test_library_ml.py proves it against the pipeline
on random-walk windows; a scikit-learn or scipy upgrade that changed its arithmetic fails that test).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_ITER = 500  # LogisticRegression(max_iter=500) of make_model
TOL = 1e-4  # LogisticRegression's default tol: lbfgs's gtol
MAXLS = 50  # LogisticRegression's lbfgs line-search steps
FTOL = 64 * np.finfo(float).eps  # LogisticRegression's lbfgs ftol


@dataclass(frozen=True, eq=False)
class LogisticModel:
    """A fitted binary model: what ``predict_proba`` needs (``linear_parts`` reads these names)."""

    mean: np.ndarray  # scaler mean_
    scale: np.ndarray  # scaler scale_
    coef_t: np.ndarray  # coef_.T, shape (features, 1)
    intercept: np.ndarray  # intercept_, shape (1,)
    classes_: np.ndarray  # sorted labels; classes_[1] is the positive class
    n_iter: int


@functools.cache
def kernels() -> Any:
    """scipy's compiled L-BFGS-B step (imported once, lazily)."""
    from scipy.optimize import _lbfgsb

    return _lbfgsb.setulb


@functools.cache
def compiled_loss() -> Any:
    """``binomial_loss_gradient`` compiled on first use (importing the strategy library loads no numba)."""
    from numba import njit

    return njit(cache=True)(binomial_loss_gradient)


def binomial_loss_gradient(
    y: np.ndarray, raw: np.ndarray, loss_out: np.ndarray, grad_out: np.ndarray
) -> None:
    """Per-sample half-binomial loss and its gradient in the raw score, scikit-learn's
    ``closs_grad_half_binomial`` (sklearn/_loss/_loss.pyx.tp) branch for branch and operation for
    operation, with the same C library ``exp``/``log1p``: the same doubles without importing
    scikit-learn (~1 s inside a run's loop) for the one loss the logistic model needs."""
    for i in range(raw.shape[0]):
        r, t = raw[i], y[i]
        if r <= -37:
            e = math.exp(r)
            loss_out[i] = e - t * r
            grad_out[i] = e - t
        elif r <= -2:
            e = math.exp(r)
            loss_out[i] = math.log1p(e) - t * r
            grad_out[i] = ((1 - t) * e - t) / (1 + e)
        elif r <= 18:
            e = math.exp(-r)
            loss_out[i] = math.log1p(e) + (1 - t) * r
            grad_out[i] = ((1 - t) - t * e) / (1 + e)
        else:
            e = math.exp(-r)
            loss_out[i] = e + (1 - t) * r
            grad_out[i] = ((1 - t) - t * e) / (1 + e)


MAXCOR, MAXFUN = 10, 15_000  # scipy's L-BFGS-B defaults
FG, NEW_X = 3, 1  # setulb's task codes: evaluate f and g at x; an iteration is done


def _lbfgsb(
    fun: Callable[..., tuple[float, np.ndarray]], x0: np.ndarray, args: tuple
) -> tuple[np.ndarray, int]:
    """``scipy.optimize.minimize(fun, x0, args, method="L-BFGS-B", jac=True)`` with
    ``LogisticRegression``'s options and no bounds: scipy's driver loop over its compiled ``setulb``,
    the same calls with the same arrays (an evaluation at x0 first, an x equal to the last one not
    evaluated again, the iteration and evaluation limits), without its ~15 Python calls per step
    (``ScalarFunction``, ``MemoizeJac``, array-namespace checks). Returns (x, iterations)."""
    setulb = kernels()
    n = len(x0)
    factr = FTOL / np.finfo(float).eps
    nbd, low, high = np.zeros(n, np.int32), np.zeros(n, np.float64), np.zeros(n, np.float64)
    x = np.array(x0, dtype=np.float64)
    f: Any = np.array(0.0, dtype=np.float64)
    g = np.zeros((n,), dtype=np.float64)
    wa = np.zeros(2 * MAXCOR * n + 5 * n + 11 * MAXCOR * MAXCOR + 8 * MAXCOR, np.float64)
    iwa = np.zeros(3 * n, dtype=np.int32)
    task, ln_task = np.zeros(2, dtype=np.int32), np.zeros(2, dtype=np.int32)
    lsave, isave, dsave = np.zeros(4, np.int32), np.zeros(44, np.int32), np.zeros(29, np.float64)
    seen = np.array(x0, dtype=np.float64)
    fx, gx = fun(seen.copy(), *args)  # scipy evaluates at x0 when it wraps the function
    nfev, nit = 1, 0
    while True:
        g = g.astype(np.float64)
        setulb(
            MAXCOR, x, low, high, nbd, f, g, factr, TOL, wa, iwa, task, lsave, isave, dsave, MAXLS, ln_task
        )
        if task[0] == FG:
            if not np.array_equal(x, seen):
                seen = x.astype(np.float64)
                fx, gx = fun(seen.copy(), *args)
                nfev += 1
            f, g = fx, gx
        elif task[0] == NEW_X:
            nit += 1
            if nit >= MAX_ITER:
                task[0], task[1] = 5, 504  # STOP: the iteration limit
            elif nfev > MAXFUN:
                task[0], task[1] = 5, 502  # STOP: the evaluation limit
        else:
            return x, nit


def _loss_gradient(coef: np.ndarray, x: np.ndarray, y: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
    """``LinearModelLoss(HalfBinomialLoss(), fit_intercept=True).loss_gradient`` for unit sample
    weights, operation for operation: raw = X @ w + b; per-sample loss and gradient
    (:func:`binomial_loss_gradient`, compiled); mean loss + 0.5 * l2 * w.w; gradient X.T @ (g / n) + l2 * w,
    intercept sum(g / n)."""
    n, k = x.shape
    weights, intercept = coef[:-1], coef[-1]
    raw = x @ weights + np.asarray(intercept, dtype=x.dtype)
    loss_out = np.empty_like(raw)
    grad_pointwise = np.empty_like(raw)
    compiled_loss()(y, raw, loss_out, grad_pointwise)
    loss = float(np.sum(loss_out) / n)
    loss += float(0.5 * l2 * (weights @ weights))
    grad_pointwise /= n
    grad = np.empty_like(coef, dtype=weights.dtype)
    grad[:k] = x.T @ grad_pointwise + l2 * weights
    grad[-1] = np.sum(grad_pointwise)
    return loss, grad


def standardize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``StandardScaler().fit(x)``'s ``mean_`` and ``scale_`` for finite float64 rows, operation for
    operation: its ``_incremental_mean_and_var`` from an empty start (column sums, the corrected
    two-pass variance; from zero samples its merge keeps the new batch's sums as they are), then
    ``_is_constant_feature`` and ``_handle_zeros_in_scale`` (a constant column scales by 1)."""
    last_count = np.zeros(x.shape[1], np.float64)  # n_samples_seen_ (int64 zeros) as floats
    last_sum = 0.0 * last_count  # last mean_ (0.0) x last count
    new_sum = np.sum(x, axis=0)
    new_count = x.shape[0] - np.sum(np.isnan(x).astype(x.dtype), axis=0)
    count = last_count + new_count
    mean = (last_sum + new_sum) / count
    temp = x - new_sum / new_count
    correction = np.sum(temp, axis=0)
    temp **= 2
    unnormalized = np.sum(temp, axis=0)
    unnormalized -= correction**2 / new_count
    var = unnormalized / count
    n, eps = count[0], np.finfo(np.float64).eps  # every column saw every row: one count
    constant = var <= n * eps * var + (n * mean * eps) ** 2
    scale = np.sqrt(var)
    scale[constant] = 1.0
    return mean, scale


def fit(x: np.ndarray, y: np.ndarray, c: float) -> LogisticModel | None:
    """Fit on finite rows ``x`` (float64) and labels ``y``; None unless ``y`` has exactly two classes
    (more goes through scikit-learn's multinomial path, not reproduced here)."""
    classes = np.unique(y)
    if len(classes) != 2:
        return None
    mean, scale = standardize(x)
    xs = np.array(x, dtype=np.float64, order="C")  # the transform's copy, then in place
    xs -= mean
    xs /= scale
    y_bin = np.ones(y.shape, dtype=xs.dtype)
    y_bin[~(y == classes[1])] = 0.0
    n, k = xs.shape
    w, nit = _lbfgsb(_loss_gradient, np.zeros(k + 1, dtype=xs.dtype), (xs, y_bin, 1.0 / (c * n)))
    return LogisticModel(mean, scale, w[:-1][None, :].T, w[-1:], classes, min(nit, MAX_ITER))
