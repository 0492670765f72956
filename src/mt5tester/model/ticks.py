"""Ticks as contiguous arrays: the tick-data shape the importers, the catalog and the terminal share."""

from __future__ import annotations

from dataclasses import dataclass

from mt5tester.model.bars import F64, I32, I64


@dataclass(frozen=True, eq=False)
class Ticks:
    """Ticks as contiguous arrays: ``time`` UTC int64 ns, ``flags`` TICK_FLAG_* bits (spec 4.9)."""

    symbol: str
    time: I64
    bid: F64
    ask: F64
    last: F64
    volume: I64
    flags: I32

    def __post_init__(self) -> None:
        n = len(self.time)
        for name in ("bid", "ask", "last", "volume", "flags"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Ticks {self.symbol}: column {name} has wrong length")

    def __len__(self) -> int:
        return len(self.time)
