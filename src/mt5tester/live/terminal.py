"""The MetaTrader5-API module a session trades through, and conversions of its values."""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

import numpy as np
import pandas as pd

from mt5tester.data.resample import parse_server_tz
from mt5tester.errors import ConfigError
from mt5tester.model.bars import Bars
from mt5tester.model.timeframe import Timeframe

WINDOWS_HINT = (
    "Live trading needs the MetaQuotes MetaTrader5 package, which runs only next to a MetaTrader 5 "
    "terminal on Windows: install the terminal, log in to the trading account, then `pip install "
    "MetaTrader5` in this Python (README 'Live trading'). Paper trading works anywhere: mt5tester paper "
    "--config FILE --replay-speed 0."
)


def import_module(name: str) -> types.ModuleType:
    """The MetaTrader5-API module ``name`` (``MetaTrader5`` by default); ConfigError (exit 2) if absent."""
    if name in sys.modules and sys.modules[name] is not None:
        return sys.modules[name]
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ConfigError(
            f"preflight: cannot import the MetaTrader5-API module {name!r} ({e}). {WINDOWS_HINT}"
        ) from None


class ServerClock:
    """Server-clock seconds (the API's ``time`` fields) to and from UTC ns (``backtest.server_timezone``)."""

    def __init__(self, server_tz: str) -> None:
        self.tz = parse_server_tz(server_tz)

    def to_utc_ns(self, server_s: Any) -> np.ndarray:
        """UTC ns of increasing server-clock seconds; a repeated wall hour (DST end) is told by the order."""
        wall = pd.DatetimeIndex(np.asarray(server_s, np.int64).astype("datetime64[s]")).as_unit("ns")
        try:
            local = wall.tz_localize(self.tz, ambiguous="infer", nonexistent="shift_forward")
        except (ValueError, TypeError):  # a single ambiguous time: the first occurrence
            local = wall.tz_localize(self.tz, ambiguous=True, nonexistent="shift_forward")
        return np.asarray(local.tz_convert("UTC").asi8, np.int64)

    def to_server_s(self, utc_ns: int) -> int:
        ts = pd.Timestamp(int(utc_ns), unit="ns", tz="UTC").tz_convert(self.tz)
        off = ts.utcoffset()
        return int(utc_ns // 1_000_000_000 + (off.total_seconds() if off is not None else 0))


def rates_to_bars(rates: np.ndarray, symbol: str, timeframe: Timeframe, clock: ServerClock) -> Bars:
    """``copy_rates_*`` records (server-clock times) as Bars labelled in UTC ns, as the backtest's."""
    time = clock.to_utc_ns(rates["time"])
    return Bars(
        symbol,
        timeframe,
        time,
        np.ascontiguousarray(rates["open"], np.float64),
        np.ascontiguousarray(rates["high"], np.float64),
        np.ascontiguousarray(rates["low"], np.float64),
        np.ascontiguousarray(rates["close"], np.float64),
        np.ascontiguousarray(rates["tick_volume"], np.int64),
        np.ascontiguousarray(rates["spread"], np.int32),
    )
