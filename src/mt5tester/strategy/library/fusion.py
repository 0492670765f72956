"""Fusion strategies: combine the signals of other configured strategies."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from mt5tester.model.signal import Signal
from mt5tester.model.timeframe import Timeframe
from mt5tester.strategy.base import FusionParams, FusionStrategy


class WeightedVoteParams(FusionParams):
    weights: dict[str, float] = Field(default_factory=dict, description="per member, default 1.0")
    threshold: float = Field(default=0.5, gt=0, le=1, description="|weighted vote| needed to trade")
    sl_points: float | None = Field(default=None, gt=0, description="default: the mean of the members' SLs")
    tp_points: float | None = Field(default=None, gt=0, description="default: the mean of the members' TPs")
    regime_weights: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="{regime: {member: weight}}: in that regime these weights replace `weights` "
        "(needs regime.enabled)",
    )

    @model_validator(mode="after")
    def _weights_for_members(self) -> WeightedVoteParams:
        unknown = sorted(set(self.weights) - set(self.members))
        if unknown:
            raise ValueError(f"weights for {unknown}, which are not members {self.members}")
        if any(w < 0 for w in self.weights.values()):
            raise ValueError("weights must be >= 0")
        labels = {"trending_up", "trending_down", "ranging", "volatile"}
        for regime, ws in self.regime_weights.items():
            if regime not in labels:
                raise ValueError(f"regime_weights: unknown regime {regime!r}; labels: {sorted(labels)}")
            bad = sorted(set(ws) - set(self.members))
            if bad or any(w < 0 for w in ws.values()):
                raise ValueError(f"regime_weights.{regime}: weights must be >= 0 for members only ({bad})")
        return self


class WeightedVote(FusionStrategy):
    """Weighted vote of member signals.

    Idea: trade only when independent strategies agree. Each member votes +1 (buy), -1 (sell) or 0
    (no signal or flat), scaled by its weight and the signal's confidence; the vote is the weighted
    sum divided by the total weight of all members. When |vote| >= ``threshold`` one market signal
    in that direction is emitted with confidence |vote|; SL/TP are the params' or the mean of the
    agreeing members' point distances. A reversal closes the opposite position (exit_opposite).
    """

    Params = WeightedVoteParams
    data_format = "numpy"

    def combine(
        self, symbol: str, timeframe: Timeframe, df: Any, member_signals: dict[str, list[Signal]]
    ) -> list[Signal]:
        p = self.params
        assert isinstance(p, WeightedVoteParams)
        weights = p.weights
        regime = self.ctx.regime(symbol) if p.regime_weights else None
        if regime in p.regime_weights:
            weights = p.regime_weights[regime]
        total = sum(weights.get(m, 1.0) for m in p.members)
        if total <= 0:
            return []
        vote = 0.0
        agreeing: list[Signal] = []
        for m in p.members:
            for sig in member_signals.get(m, [])[:1]:
                side = {"buy": 1.0, "sell": -1.0}.get(sig.direction, 0.0)
                vote += weights.get(m, 1.0) * sig.confidence * side
                agreeing.append(sig)
        vote /= total
        if abs(vote) < p.threshold:
            return []
        direction = "buy" if vote > 0 else "sell"
        same = [s for s in agreeing if s.direction == direction]
        sl = p.sl_points or _mean([s.sl_points for s in same])
        tp = p.tp_points or _mean([s.tp_points for s in same])
        return [
            Signal(
                symbol=symbol,
                direction=direction,
                sl_points=sl,
                tp_points=tp,
                confidence=round(min(abs(vote), 1.0), 6),
                strategy=self.name,
                comment=f"vote {vote:+.2f}",
                tags={
                    "vote": round(vote, 6),
                    "members": [s.strategy for s in same],
                    "weights_regime": regime,
                },
            )
        ]


def _mean(values: list[float | None]) -> float | None:
    xs = [v for v in values if v]
    return sum(xs) / len(xs) if xs else None
