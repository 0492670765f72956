"""The coordinator's answer to one signal."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Decision:
    """``status`` approved / resized (approved with a smaller volume) / rejected.

    ``rule`` and ``reason`` name the rule and the reason code that rejected or resized the signal;
    ``details`` hold the numbers behind it (limit, value, ...).
    """

    status: str
    volume: float = 0.0
    rule: str | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def reject(rule: str, reason: str, **details: Any) -> Decision:
    return Decision("rejected", 0.0, rule, reason, details)


def resize(rule: str, reason: str, volume: float, **details: Any) -> Decision:
    return Decision("resized", volume, rule, reason, details)
