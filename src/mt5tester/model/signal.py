"""What a strategy returns: a Signal, validated when created."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Direction = Literal["buy", "sell", "flat"]
OrderKind = Literal["market", "limit", "stop"]


class Signal(BaseModel):
    """A trade idea at the current bar close.

    ``direction`` "flat" closes the strategy's positions on the symbol. SL/TP are prices
    (``sl``/``tp``) or distances in points from the fill price (``sl_points``/``tp_points``).
    With ``exit_opposite`` (default) a buy first closes the strategy's sell positions on the
    symbol and vice versa, so a reversal strategy works the same on hedging and netting accounts.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str
    direction: Direction
    order_type: OrderKind = "market"
    price: float | None = Field(default=None, description="limit/stop price")
    sl: float | None = None
    tp: float | None = None
    sl_points: float | None = Field(default=None, gt=0)
    tp_points: float | None = Field(default=None, gt=0)
    volume: float | None = Field(default=None, gt=0, description="lots; default: the strategy's volume")
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    strategy: str = ""
    exit_opposite: bool = True
    comment: str = ""
    tags: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Signal:
        for name in ("price", "sl", "tp"):
            v = getattr(self, name)
            if v is not None and (not math.isfinite(v) or v <= 0):
                raise ValueError(f"{name} must be a positive finite price, got {v}")
        if self.order_type != "market" and self.price is None:
            raise ValueError(f"a {self.order_type} order needs a price")
        if self.sl is not None and self.sl_points is not None:
            raise ValueError("give sl or sl_points, not both")
        if self.tp is not None and self.tp_points is not None:
            raise ValueError("give tp or tp_points, not both")
        if self.direction == "buy" and self.sl is not None and self.tp is not None and self.sl >= self.tp:
            raise ValueError(f"buy with sl {self.sl} >= tp {self.tp}")
        if self.direction == "sell" and self.sl is not None and self.tp is not None and self.sl <= self.tp:
            raise ValueError(f"sell with sl {self.sl} <= tp {self.tp}")
        return self


class InvalidSignal(ValueError):
    """What a strategy returned cannot become a Signal (an adapted strategy's dict): ``reason`` is the
    stable text counted in the funnel, the message names the strategy, the field and the bar."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
