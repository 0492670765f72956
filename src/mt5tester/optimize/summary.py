"""A finished study's summary: the best pass, the walk-forward's stitched out-of-sample equity and
efficiency, and the robustness numbers (robustness.py) of the best pass among the passes of its fold.

Everything is computed from the stored passes (their daily equity curves and per-trade results), so a
resumed study's summary equals an uninterrupted one's.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from mt5tester.config import Config
from mt5tester.optimize import robustness as rb
from mt5tester.optimize.walkforward import stitch_equity
from mt5tester.results import studies as store

MC_SIMS = 1000
MC_SKIP = 0.1  # probability a trade is skipped in the skipped-trades Monte Carlo
QUANTILES = (0.5, 0.95, 0.99)


def curve_series(curve: list[list[float]]) -> pd.Series:
    """A stored daily curve as equity indexed by UTC time."""
    if not curve:
        return pd.Series([], dtype=float)
    arr = np.asarray(curve, dtype=float)
    return pd.Series(arr[:, 1], index=pd.to_datetime(arr[:, 0].astype(np.int64), utc=True))


def returns_matrix(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Daily returns of each pass (columns: pass number) on the union of their days (equity carried
    forward over a day a pass has no sample)."""
    curves = {r["number"]: curve_series(r["curve"]) for r in rows}
    equity = pd.DataFrame(curves).sort_index().ffill().bfill()
    return equity.pct_change().iloc[1:].fillna(0.0)


def _sharpe(col: np.ndarray) -> float:
    sd = float(np.std(col, ddof=1)) if len(col) > 1 else 0.0
    return float(np.mean(col)) / sd if sd > 0 else 0.0


def robustness(rows: list[dict[str, Any]], best: dict[str, Any], cfg: Config) -> dict[str, Any]:
    """DSR, PBO, Monte Carlo drawdown quantiles and stability of ``best`` among ``rows`` (one fold's
    in-sample passes). A number that cannot be computed (too few days, passes or trades) is None."""
    assert cfg.optimize is not None
    out: dict[str, Any] = {"dsr": None, "pbo": None, "pbo_splits": None, "stability": None}
    rets = returns_matrix(rows)
    if best["number"] in rets.columns and len(rets) >= 3:
        sharpes = np.array([_sharpe(rets[c].to_numpy()) for c in rets.columns])
        with contextlib.suppress(ValueError):  # a flat curve (no trades) has no Sharpe ratio
            out["dsr"] = rb.deflated_sharpe_of_returns(rets[best["number"]].to_numpy(), sharpes)
    t, n = rets.shape
    blocks = min(16, t // 2 * 2)
    if n >= 2 and t >= 4:  # CSCV needs two blocks of two days at least to say anything
        pbo = rb.pbo_cscv(rets.to_numpy(), n_blocks=blocks)
        out["pbo"], out["pbo_splits"] = pbo.pbo, pbo.splits
    pnl = np.asarray(best["trade_pnl"], dtype=float)
    deposit, seed = cfg.backtest.initial_deposit, cfg.optimize.seed
    for name, mc in (
        ("mc_order", rb.monte_carlo_order(pnl, deposit, MC_SIMS, seed) if len(pnl) else None),
        ("mc_skip", rb.monte_carlo_skip(pnl, deposit, MC_SKIP, MC_SIMS, seed) if len(pnl) else None),
    ):
        out[name] = (
            None
            if mc is None
            else {k: {str(q): v for q, v in d.items()} for k, d in mc.quantiles(QUANTILES).items()}
        )
    space = cfg.optimize.space()
    # balance max: the deposit would make every ratio ~1; the stability of a balance is that of its profit
    offset = deposit if (cfg.optimize.objectives or [cfg.optimize.criterion])[0] == "balance" else 0.0
    frame = pd.DataFrame(
        [{**r["params"], "value": None if r["score"] is None else r["score"] - offset} for r in rows]
    )
    if len(frame) > 1:
        out["stability"] = rb.stability_ratio(rb.neighbours(frame, space, best["params"]), best["params"])
    return out


def heatmap(rows: list[dict[str, Any]], best: dict[str, Any], cfg: Config) -> dict[str, Any] | None:
    """The criterion around the best pass, for the report: over the first two parameters with more than
    one value (the others held at the best pass's values), or along the only one."""
    assert cfg.optimize is not None
    space = cfg.optimize.space()
    varying = [d.path for d in space.dims if len(d.values) > 1]
    frame = pd.DataFrame([{**r["params"], "value": r["score"]} for r in rows])
    if len(varying) >= 2:
        x, y = varying[0], varying[1]
        table = rb.stability_table(frame, space, best["params"], x, y)
        z = [[None if pd.isna(v) else float(v) for v in row] for row in table.to_numpy()]
        return {
            "x": x,
            "y": y,
            "xs": [str(v) for v in table.columns],
            "ys": [str(v) for v in table.index],
            "z": z,
        }
    if varying:
        x = varying[0]
        line = frame.sort_values(x)
        return {
            "x": x,
            "xs": [str(v) for v in line[x]],
            "z": [None if pd.isna(v) else v for v in line["value"]],
        }
    return None


def summarize(engine: Engine, study_id: str, cfg: Config, folds: list[dict[str, Any]]) -> dict[str, Any]:
    rows = store.trials(engine, study_id)
    last = max((f["fold"] for f in folds), default=0)
    ins = [r for r in rows if r["fold"] == last and r["phase"] == "is"]
    kept = sorted((r for r in ins if r["score"] is not None), key=lambda r: (-r["score"], r["number"]))
    best_row = kept[0] if kept else None
    summary: dict[str, Any] = {
        "passes": sum(1 for r in rows if r["phase"] == "is"),
        "discarded": sum(1 for r in rows if r["phase"] == "is" and r["score"] is None),
        "best": None,
        "robustness": None,
        "folds": [
            {k: f[k] for k in ("fold", "is_start", "is_end", "oos_start", "oos_end", "best_params", "wfe")}
            for f in folds
        ],
    }
    if best_row is not None:
        summary["best"] = {k: best_row[k] for k in ("fold", "number", "params", "metrics", "score")}
        summary["robustness"] = robustness(ins, best_row, cfg)
        summary["heatmap"] = heatmap(ins, best_row, cfg)
    oos = sorted((r for r in rows if r["phase"] == "oos"), key=lambda r: r["fold"])
    if oos:
        stitched = stitch_equity([curve_series(r["curve"]) for r in oos], cfg.backtest.initial_deposit)
        times = pd.DatetimeIndex(stitched.index).asi8
        summary["stitched_oos"] = [
            [int(t), float(v)] for t, v in zip(times, stitched.to_numpy(), strict=True)
        ]
        wfes = [f["wfe"] for f in folds if f["wfe"] is not None]
        summary["wfe_mean"] = float(np.mean(wfes)) if wfes else None
        summary["oos_net_profit"] = round(sum(float(r["metrics"]["total_net_profit"] or 0) for r in oos), 2)
    return store.clean(summary)
