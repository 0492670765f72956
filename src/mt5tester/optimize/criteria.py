"""Optimization criteria (MT5's list plus custom), constraints and ranking, over a run's metrics dict.

The metrics dict is ``Mt5Metrics.to_dict()`` (results/metrics.py). Every criterion returns a float or None
(undefined: such a pass cannot be ranked and goes last). ``score`` orients a criterion so that higher is
always better (drawdown_min is negated); ranking and the search methods only ever see scores.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Metrics = Mapping[str, Any]
CriterionFn = Callable[[Metrics], float | None]

WORST = -math.inf  # score of a pass that fails a constraint or whose criterion is undefined


def _get(m: Metrics, key: str) -> float | None:
    v = m.get(key)
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f


def balance(m: Metrics) -> float | None:
    """MT5 "Balance max": the final balance (same order as net profit for one deposit)."""
    return _get(m, "final_balance")


def profit_factor(m: Metrics) -> float | None:
    """MT5 "Profit Factor max". No losing deal but a gross profit: +inf (metrics leave it None)."""
    pf = _get(m, "profit_factor")
    if pf is None and (_get(m, "gross_profit") or 0.0) > 0:
        return math.inf
    return pf


def expected_payoff(m: Metrics) -> float | None:
    """MT5 "Expected Payoff max": net profit per trade."""
    return _get(m, "expected_payoff")


def drawdown(m: Metrics) -> float | None:
    """MT5 "Drawdown min": the relative equity drawdown in % (lower is better)."""
    return _get(m, "equity_dd_relative_pct")


def recovery_factor(m: Metrics) -> float | None:
    """MT5 "Recovery Factor max": net profit / maximal equity drawdown; no drawdown but a profit: +inf."""
    rf = _get(m, "recovery_factor")
    if rf is None and (_get(m, "total_net_profit") or 0.0) > 0:
        return math.inf
    return rf


def sharpe(m: Metrics) -> float | None:
    """MT5 "Sharpe Ratio max" (metrics.sharpe_ratio: annualised, daily balance returns)."""
    return _get(m, "sharpe_ratio")


def complex_criterion(m: Metrics) -> float | None:
    """MT5 "Complex Criterion max", 0-100. MetaQuotes do not publish its formula; this one is ours.

    MT5's help says it weighs several results of a pass together (trades, drawdown, recovery, payoff,
    Sharpe). Ours: 100 · c · mean(p, r, s, d) with, each clipped to [0, 1],
      c = 1 − exp(−trades / 30)          confidence grows with the number of trades
      p = (profit factor − 1) / 2        1 → 0, 3 or more → 1
      r = recovery factor / 5            0 → 0, 5 or more → 1
      s = Sharpe ratio / 3               0 → 0, 3 or more → 1
      d = 1 − relative equity DD % / 50  no drawdown → 1, 50 % or more → 0
    A pass without trades scores 0; undefined inputs count as 0.
    """
    trades = _get(m, "total_trades") or 0.0
    if trades <= 0:
        return 0.0

    def clip(x: float | None) -> float:
        return 0.0 if x is None else min(max(x, 0.0), 1.0)

    pf, rf, sr, dd = profit_factor(m), recovery_factor(m), sharpe(m), drawdown(m)
    parts = [
        clip(None if pf is None else (pf - 1.0) / 2.0),
        clip(None if rf is None else rf / 5.0),
        clip(None if sr is None else sr / 3.0),
        clip(None if dd is None else 1.0 - dd / 50.0),
    ]
    return 100.0 * (1.0 - math.exp(-trades / 30.0)) * sum(parts) / len(parts)


# name -> (function, True when higher is better)
CRITERIA: dict[str, tuple[CriterionFn, bool]] = {
    "balance": (balance, True),
    "profit_factor": (profit_factor, True),
    "expected_payoff": (expected_payoff, True),
    "drawdown_min": (drawdown, False),
    "recovery_factor": (recovery_factor, True),
    "sharpe_ratio": (sharpe, True),
    "complex": (complex_criterion, True),
}


def load_custom(spec: str) -> CriterionFn:
    """``"module:function"``: a function of the metrics dict returning a float (higher is better)."""
    module, _, name = spec.partition(":")
    fn = getattr(importlib.import_module(module), name, None)
    if not callable(fn):
        raise ValueError(f"custom criterion '{spec}': {module} has no function {name}")
    return fn


@dataclass(frozen=True)
class Objective:
    """What a search maximises: one or more criteria, with MT5's constraints on every pass."""

    criteria: tuple[str, ...] = ("balance",)
    custom: str | None = None
    min_trades: int = 0
    max_drawdown_pct: float | None = None

    @classmethod
    def from_config(cls, cfg: Any) -> Objective:
        names = tuple(cfg.objectives) if cfg.objectives else (cfg.criterion,)
        return cls(names, cfg.custom, cfg.min_trades, cfg.max_drawdown_pct)

    def _fn(self, name: str) -> tuple[CriterionFn, bool]:
        if name == "custom":
            if self.custom is None:
                raise ValueError("criterion custom needs a 'module:function'")
            return load_custom(self.custom), True
        return CRITERIA[name]

    def value(self, metrics: Metrics, name: str) -> float | None:
        return self._fn(name)[0](metrics)

    def violation(self, metrics: Metrics) -> str | None:
        """Why a pass is discarded (None if it is kept)."""
        trades = _get(metrics, "total_trades") or 0.0
        if trades < self.min_trades:
            return f"{int(trades)} trades < min_trades {self.min_trades}"
        dd = drawdown(metrics)
        if self.max_drawdown_pct is not None and (dd is None or dd > self.max_drawdown_pct):
            return f"drawdown {dd}% > max_drawdown_pct {self.max_drawdown_pct}"
        return None

    def scores(self, metrics: Metrics) -> tuple[float, ...]:
        """One score per criterion, higher is better; WORST for a discarded pass or an undefined value."""
        if self.violation(metrics) is not None:
            return tuple(WORST for _ in self.criteria)
        out = []
        for name in self.criteria:
            fn, higher = self._fn(name)
            v = fn(metrics)
            out.append(WORST if v is None or math.isnan(v) else (v if higher else -v))
        return tuple(out)

    def score(self, metrics: Metrics) -> float:
        return self.scores(metrics)[0]


def rank(results: Sequence[Metrics], objective: Objective) -> list[int]:
    """Indices of ``results`` best first by the first criterion; ties keep pass order (stable)."""
    scores = [objective.score(m) for m in results]
    return sorted(range(len(results)), key=lambda i: -scores[i])


def pareto_front(results: Sequence[Metrics], objective: Objective) -> list[int]:
    """Indices of the passes no other pass dominates on every criterion (kept passes only), pass order."""
    s = [objective.scores(m) for m in results]
    keep = [i for i in range(len(s)) if s[i][0] != WORST]

    def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
        return all(x >= y for x, y in zip(a, b, strict=True)) and a != b

    return [i for i in keep if not any(dominates(s[j], s[i]) for j in keep if j != i)]
