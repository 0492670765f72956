"""The coordinator reviews each signal and returns one Decision: approved with a volume, or rejected
with a rule, a reason code and the numbers behind it. It reads the account only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from mt5tester.config import CoordinatorConfig
from mt5tester.model.signal import Signal


@dataclass(frozen=True)
class Decision:
    status: str  # approved / rejected
    volume: float = 0.0
    rule: str | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class AccountView(Protocol):
    """What rules may read: open positions as (symbol, strategy) pairs."""

    def open_positions(self) -> list[tuple[str, str]]: ...


class MaxPositionsRule:
    name = "max_positions"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def review(self, signal: Signal, volume: float, open_: list[tuple[str, str]]) -> Decision | None:
        if len(open_) >= self.limit:
            return Decision(
                "rejected", 0.0, self.name, "max_positions", {"limit": self.limit, "value": len(open_)}
            )
        return None


class MaxPositionsPerSymbolRule:
    name = "max_positions_per_symbol"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def review(self, signal: Signal, volume: float, open_: list[tuple[str, str]]) -> Decision | None:
        n = sum(1 for s, _ in open_ if s == signal.symbol)
        if n >= self.limit:
            return Decision(
                "rejected",
                0.0,
                self.name,
                "max_positions_per_symbol",
                {"limit": self.limit, "value": n, "symbol": signal.symbol},
            )
        return None


class Rule(Protocol):
    name: str

    def review(self, signal: Signal, volume: float, open_: list[tuple[str, str]]) -> Decision | None: ...


class Coordinator:
    def __init__(self, cfg: CoordinatorConfig) -> None:
        self.rules: list[Rule] = [
            MaxPositionsRule(cfg.max_positions),
            MaxPositionsPerSymbolRule(cfg.max_positions_per_symbol),
        ]

    def review(self, signal: Signal, volume: float, view: AccountView) -> Decision:
        """Entries pass every rule in order; the first rejection wins. Exits ('flat') are always approved."""
        if signal.direction == "flat":
            return Decision("approved", 0.0)
        open_ = view.open_positions()
        for rule in self.rules:
            d = rule.review(signal, volume, open_)
            if d is not None:
                return d
        return Decision("approved", volume)
