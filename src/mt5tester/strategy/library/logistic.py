"""The ``logistic`` model of the walk-forward classifier (StandardScaler + binary L2 LogisticRegression,
lbfgs) fitted without scikit-learn's estimator layer.

A portfolio refits it ~1,400 times on ~400 x 15 matrices: there the arithmetic is microseconds and
scikit-learn's per-call work (input validation, array-namespace dispatch, config look-ups, the
pipeline, ~50 Python calls per lbfgs step) was most of a fit. :func:`fit` makes the same calls on the
same arrays in the same order -- the scaler's fit, its ``X - mean_`` / ``scale_``, the
``HalfBinomialLoss`` kernel, ``X @ w + b``, the sums and products of ``LinearModelLoss.loss_gradient``,
``scipy.optimize.minimize`` with ``LogisticRegression``'s options -- so the coefficients, and every
probability after them, are bit-identical (tests/test_library_ml.py proves it against the pipeline on
real and synthetic windows; a scikit-learn upgrade that changed its arithmetic fails that test).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_ITER = 500  # LogisticRegression(max_iter=500) of make_model
TOL = 1e-4  # LogisticRegression's default tol: lbfgs's gtol


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
def kernels() -> tuple[Any, Any, Any]:
    """scikit-learn's compiled binomial loss, its scaler and scipy's minimize (imported once, lazily)."""
    from scipy.optimize import minimize
    from sklearn._loss.loss import HalfBinomialLoss
    from sklearn.preprocessing import StandardScaler

    return HalfBinomialLoss().closs, StandardScaler, minimize


def _loss_gradient(
    coef: np.ndarray, x: np.ndarray, y: np.ndarray, l2: float, closs: Any
) -> tuple[float, np.ndarray]:
    """``LinearModelLoss(HalfBinomialLoss(), fit_intercept=True).loss_gradient`` for unit sample
    weights, operation for operation: raw = X @ w + b; per-sample loss and gradient from the compiled
    kernel; mean loss + 0.5 * l2 * w.w; gradient X.T @ (g / n) + l2 * w, intercept sum(g / n)."""
    n, k = x.shape
    weights, intercept = coef[:-1], coef[-1]
    raw = x @ weights + np.asarray(intercept, dtype=x.dtype)
    loss_out = np.empty_like(raw)
    grad_pointwise = np.empty_like(raw)
    closs.loss_gradient(
        y_true=y,
        raw_prediction=raw,
        sample_weight=None,
        loss_out=loss_out,
        gradient_out=grad_pointwise,
        n_threads=1,
    )
    loss = float(np.sum(loss_out) / n)
    loss += float(0.5 * l2 * (weights @ weights))
    grad_pointwise /= n
    grad = np.empty_like(coef, dtype=weights.dtype)
    grad[:k] = x.T @ grad_pointwise + l2 * weights
    grad[-1] = np.sum(grad_pointwise)
    return loss, grad


def fit(x: np.ndarray, y: np.ndarray, c: float) -> LogisticModel | None:
    """Fit on finite rows ``x`` (float64) and labels ``y``; None unless ``y`` has exactly two classes
    (more goes through scikit-learn's multinomial path, not reproduced here)."""
    classes = np.unique(y)
    if len(classes) != 2:
        return None
    closs, scaler_cls, minimize = kernels()
    scaler = scaler_cls().fit(x)
    xs = np.array(x, dtype=np.float64, order="C")  # the transform's copy, then in place
    xs -= scaler.mean_
    xs /= scaler.scale_
    y_bin = np.ones(y.shape, dtype=xs.dtype)
    y_bin[~(y == classes[1])] = 0.0
    n, k = xs.shape
    res = minimize(
        _loss_gradient,
        np.zeros(k + 1, dtype=xs.dtype),
        method="L-BFGS-B",
        jac=True,
        args=(xs, y_bin, 1.0 / (c * n), closs),
        options={"maxiter": MAX_ITER, "maxls": 50, "gtol": TOL, "ftol": 64 * np.finfo(float).eps},
    )
    w = res.x
    return LogisticModel(
        scaler.mean_, scaler.scale_, w[:-1][None, :].T, w[-1:], classes, int(min(res.nit, MAX_ITER))
    )
