"""Is the best pass luck? Deflated Sharpe ratio, probability of backtest overfitting (CSCV), Monte Carlo
of trade order and of skipped trades, and parameter stability around the best pass.

Pure numpy/pandas over results the optimizer already holds; seeded where random.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from mt5tester.optimize.space import Space

EULER_GAMMA = 0.5772156649015329
_N = NormalDist()


# -------------------------------------------------------------------------------------- deflated Sharpe


def probabilistic_sharpe_ratio(
    sr: float, sr_benchmark: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0
) -> float:
    """PSR (Bailey & López de Prado, "The Sharpe Ratio Efficient Frontier", J. of Risk 15(2), 2012; eq. 2
    of "The Deflated Sharpe Ratio", J. of Portfolio Management 40(5), 2014):

        PSR(SR*) = Φ( (SR − SR*) · √(T − 1) / √(1 − γ3·SR + (γ4 − 1)/4 · SR²) )

    SR and SR* per observation (not annualised), T observations, γ3 skewness, γ4 kurtosis (not excess: 3
    for normal returns).
    """
    if n_obs < 2:
        raise ValueError("PSR needs at least 2 observations")
    var = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if var <= 0:
        raise ValueError(f"skew {skew} and kurtosis {kurtosis} give a non-positive variance at SR {sr}")
    return _N.cdf((sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(var))


def expected_max_sharpe(n_trials: int, var_trials: float) -> float:
    """E[max SR] of N independent trials with SR variance V across trials, true SR 0 (DSR paper, eq. 6,
    with the Euler-Mascheroni approximation of the expected maximum of N standard normals):

        SR0 = √V · ( (1 − γ) · Φ⁻¹(1 − 1/N) + γ · Φ⁻¹(1 − 1/(N·e)) ),   γ ≈ 0.5772
    """
    if n_trials < 2:
        return 0.0  # one trial: nothing was selected, no deflation
    n = float(n_trials)
    return math.sqrt(var_trials) * (
        (1 - EULER_GAMMA) * _N.inv_cdf(1 - 1 / n) + EULER_GAMMA * _N.inv_cdf(1 - 1 / (n * math.e))
    )


def deflated_sharpe_ratio(
    sr: float, n_obs: int, n_trials: int, var_trials: float, skew: float = 0.0, kurtosis: float = 3.0
) -> float:
    """DSR = PSR(SR0) with SR0 = E[max SR] of the trials (Bailey & López de Prado 2014, eqs. 5-6).

    All Sharpe ratios (``sr``, ``var_trials``) per observation, on the same frequency as ``n_obs``. The
    probability that the selected pass's true Sharpe is positive, after the selection among ``n_trials``.
    """
    return probabilistic_sharpe_ratio(sr, expected_max_sharpe(n_trials, var_trials), n_obs, skew, kurtosis)


def deflated_sharpe_of_returns(returns: np.ndarray, trial_sharpes: np.ndarray) -> float:
    """DSR of the selected pass from its per-period ``returns`` and the per-period Sharpe ratios of all
    the trials (the selected one included): SR, skewness and kurtosis (not excess) from the returns,
    N = number of trials, V = sample variance (ddof 1) of the trials' Sharpe ratios."""
    r = np.asarray(returns, dtype=float)
    sd = float(r.std(ddof=1))
    if len(r) < 3 or sd <= 0:
        raise ValueError("DSR needs at least 3 returns that are not all equal")
    z = (r - r.mean()) / r.std(ddof=0)
    srs = np.asarray(trial_sharpes, dtype=float)
    var = float(srs.var(ddof=1)) if len(srs) > 1 else 0.0
    return deflated_sharpe_ratio(
        float(r.mean()) / sd, len(r), len(srs), var, float(np.mean(z**3)), float(np.mean(z**4))
    )


# ------------------------------------------------------------------------------------------- PBO (CSCV)


@dataclass(frozen=True)
class PboResult:
    pbo: float  # share of logits <= 0: the in-sample best is at or below the out-of-sample median
    logits: np.ndarray  # one per split
    splits: int


def _rank_of(values: np.ndarray, col: np.ndarray) -> np.ndarray:
    """Rank (1..N, ascending, ties sharing their average rank) of ``values[i, col[i]]`` within row i."""
    v = values[np.arange(len(values)), col][:, None]
    return (values < v).sum(axis=1) + ((values == v).sum(axis=1) + 1) / 2.0


def pbo_cscv(perf: np.ndarray, n_blocks: int = 16, metric: str = "sharpe") -> PboResult:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation (D. Bailey,
    J. Borwein, M. López de Prado, Q. Zhu, "The Probability of Backtest Overfitting", J. of Computational
    Finance 20(4), 2017; SSRN 2326253, 2015).

    ``perf``: T × N, the per-period returns of N trials. Rows are cut into S = ``n_blocks`` equal blocks
    (S even; the last T mod S rows are dropped). For each of the C(S, S/2) choices J of S/2 blocks as
    in-sample (the rest J̄ out-of-sample): n* = the trial best in-sample by ``metric`` (mean, or
    mean/std "sharpe"), ω = its rank among the N trials out-of-sample / (N + 1), λ = ln(ω / (1 − ω)).
    PBO = share of λ ≤ 0.
    """
    t, n = perf.shape
    if n_blocks < 2 or n_blocks % 2:
        raise ValueError(f"n_blocks must be even and >= 2, not {n_blocks}")
    if n < 2 or t < n_blocks:
        raise ValueError(f"need >= 2 trials and >= {n_blocks} rows, got {n} trials and {t} rows")
    size = t // n_blocks
    blocks = perf[: size * n_blocks].reshape(n_blocks, size, n)
    # per block sums and sums of squares let every split's mean/std be two matrix products
    s1, s2 = blocks.sum(axis=1), (blocks**2).sum(axis=1)  # S × N
    combos = np.array(list(itertools.combinations(range(n_blocks), n_blocks // 2)))
    mask = np.zeros((len(combos), n_blocks))
    np.put_along_axis(mask, combos, 1.0, axis=1)

    def stat(m: np.ndarray) -> np.ndarray:
        k = m.sum(axis=1, keepdims=True) * size
        mean = (m @ s1) / k
        if metric == "mean":
            return mean
        var = ((m @ s2) - k * mean**2) / np.maximum(k - 1, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(var > 0, mean / np.sqrt(np.maximum(var, 0)), 0.0)

    is_stat, oos_stat = stat(mask), stat(1.0 - mask)
    best = np.argmax(is_stat, axis=1)
    omega = _rank_of(oos_stat, best) / (n + 1)
    logits = np.log(omega / (1 - omega))
    return PboResult(float(np.mean(logits <= 0)), logits, len(combos))


# ------------------------------------------------------------------------------------------ Monte Carlo


@dataclass(frozen=True)
class MonteCarlo:
    max_dd: np.ndarray  # money, one per simulation
    max_dd_pct: np.ndarray  # % of the peak before the trough
    final_balance: np.ndarray

    def quantiles(self, qs: tuple[float, ...] = (0.5, 0.95, 0.99)) -> dict[str, dict[float, float]]:
        return {
            "max_dd": {q: float(np.quantile(self.max_dd, q)) for q in qs},
            "max_dd_pct": {q: float(np.quantile(self.max_dd_pct, q)) for q in qs},
            "final_balance": {q: float(np.quantile(self.final_balance, q)) for q in qs},
        }


MC_BLOCK = 64  # simulations drawn and measured at once: a block of paths stays small (64 x trades)


def _path_stats(pnl: np.ndarray, deposit: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # pnl: sims × trades; the balance path starts at the deposit (a drawdown may start at trade 0)
    bal = deposit + np.cumsum(pnl, axis=1)
    bal = np.concatenate([np.full((len(bal), 1), float(deposit)), bal], axis=1)
    peak = np.maximum.accumulate(bal, axis=1)
    fall = peak - bal
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(peak > 0, fall / peak * 100.0, 0.0)
    return fall.max(axis=1), pct.max(axis=1), bal[:, -1]


def _simulate(draw: Callable[[int], np.ndarray], n_sims: int, deposit: float) -> MonteCarlo:
    """``draw(k)``: the next k simulations' trade results (k x trades), drawn block after block: the
    generator gives the same numbers as one draw of every simulation, without holding them all (1,000
    simulations of 40,000 trades are 320 MB per array)."""
    parts = [_path_stats(draw(min(MC_BLOCK, n_sims - i)), deposit) for i in range(0, n_sims, MC_BLOCK)]
    if not parts:
        return MonteCarlo(np.empty(0), np.empty(0), np.empty(0))
    dd, dd_pct, final = (np.concatenate(c) for c in zip(*parts, strict=True))
    return MonteCarlo(dd, dd_pct, final)


def monte_carlo_order(pnl: np.ndarray, deposit: float, n_sims: int = 1000, seed: int = 0) -> MonteCarlo:
    """Drawdowns of the same trades in random orders (final balance is the same in every order)."""
    rng = np.random.default_rng(seed)
    trades = np.asarray(pnl, dtype=float)
    return _simulate(lambda k: rng.permuted(np.tile(trades, (k, 1)), axis=1), n_sims, deposit)


def monte_carlo_skip(
    pnl: np.ndarray, deposit: float, p_skip: float = 0.1, n_sims: int = 1000, seed: int = 0
) -> MonteCarlo:
    """Each trade skipped with probability ``p_skip`` (missed fills, downtime), order kept."""
    if not 0 <= p_skip < 1:
        raise ValueError(f"p_skip must be in [0, 1), not {p_skip}")
    rng = np.random.default_rng(seed)
    trades = np.asarray(pnl, dtype=float)
    return _simulate(lambda k: (rng.random((k, len(trades))) >= p_skip) * trades, n_sims, deposit)


# ------------------------------------------------------------------------------------ parameter stability


def neighbours(
    trials: pd.DataFrame, space: Space, best: dict[str, Any], value: str = "value", radius: int = 1
) -> pd.DataFrame:
    """The passes within ``radius`` grid steps of ``best`` in every parameter (best included), with their
    criterion ``value``. ``trials`` has one column per parameter path and the ``value`` column."""
    centre = space.point(best)
    idx = np.array([[d.values.index(v) for v in trials[d.path]] for d in space.dims]).T
    near = (np.abs(idx - np.array(centre)) <= radius).all(axis=1)
    return trials.loc[near, [*(d.path for d in space.dims), value]]


def stability_table(
    trials: pd.DataFrame, space: Space, best: dict[str, Any], x: str, y: str, value: str = "value"
) -> pd.DataFrame:
    """Criterion over two parameters (rows y, columns x, in grid order), the others held at the best
    pass's values: the heatmap around the best pass. Cells without a pass are NaN."""
    if x == y:
        raise ValueError("stability_table needs two different parameters")
    fixed = [d.path for d in space.dims if d.path not in (x, y)]
    rows = trials
    for p in fixed:
        rows = rows[rows[p] == best[p]]
    table = rows.pivot_table(index=y, columns=x, values=value, aggfunc="first")
    dims = {d.path: list(d.values) for d in space.dims}
    return table.reindex(index=dims[y], columns=dims[x])


def stability_ratio(neigh: pd.DataFrame, best: dict[str, Any], value: str = "value") -> float | None:
    """Mean criterion of the neighbours (``neighbours`` output, best excluded) over the best pass's: near
    1 = a plateau, near 0 or below = a spike (the best pass is likely luck). None without neighbours or
    when the best value is not positive."""
    is_best = np.ones(len(neigh), dtype=bool)
    for p, v in best.items():
        is_best &= (neigh[p] == v).to_numpy()
    best_values = neigh.loc[is_best, value]
    others = neigh.loc[~is_best, value].dropna()
    if best_values.empty or others.empty or float(best_values.iloc[0]) <= 0:
        return None
    return float(others.mean()) / float(best_values.iloc[0])
