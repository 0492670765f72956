"""MT5 timeframes with the MetaTrader5 package's exact constant values (spec 4.1)."""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema

from mt5tester.errors import did_you_mean
from mt5tester.model.time import MINUTE_NS


class Timeframe(IntEnum):
    M1 = 1
    M2 = 2
    M3 = 3
    M4 = 4
    M5 = 5
    M6 = 6
    M10 = 10
    M12 = 12
    M15 = 15
    M20 = 20
    M30 = 30
    H1 = 0x4000 | 1
    H2 = 0x4000 | 2
    H3 = 0x4000 | 3
    H4 = 0x4000 | 4
    H6 = 0x4000 | 6
    H8 = 0x4000 | 8
    H12 = 0x4000 | 12
    D1 = 0x4000 | 24
    W1 = 0x8000 | 1
    MN1 = 0xC000 | 1

    @property
    def minutes(self) -> int:
        """Nominal length in minutes (MN1: 30 days, used only for sizing buffers)."""
        v = int(self)
        kind = v & 0xC000
        if kind == 0:
            return v
        if kind == 0x4000:
            return (v & 0x3FFF) * 60
        if kind == 0x8000:
            return 7 * 24 * 60
        return 30 * 24 * 60

    @property
    def is_fixed(self) -> bool:
        """True when every bar has the same length (all but MN1)."""
        return self is not Timeframe.MN1

    @property
    def period_ns(self) -> int:
        return self.minutes * MINUTE_NS

    @classmethod
    def parse(cls, name: str | int) -> Timeframe:
        if isinstance(name, int):
            return cls(name)
        key = name.strip().upper()
        if key.startswith("TIMEFRAME_"):
            key = key[len("TIMEFRAME_") :]
        try:
            return cls[key]
        except KeyError:
            valid = ", ".join(t.name for t in cls)
            raise ValueError(f"unknown timeframe {name!r}; valid: {valid}") from None


# The config's field type of a timeframe: reads "H1" / "TIMEFRAME_H1", writes the name.
def _parse_tf(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return Timeframe.parse(v)
        except ValueError as e:
            raise ValueError(f"{e}{did_you_mean(v.strip().upper(), (t.name for t in Timeframe))}") from None
    return v


TF = Annotated[
    Timeframe,
    BeforeValidator(_parse_tf),
    PlainSerializer(lambda t: t.name, return_type=str),
    WithJsonSchema({"type": "string", "enum": [t.name for t in Timeframe]}),
    Field(description="MT5 timeframe name, e.g. M15, H1, D1"),
]
