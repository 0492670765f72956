"""A simulated terminal over hand-made M1 bars for the risk tests, reached only as a MetaTrader5 module.

Also checks the tick values the coordinator relies on (spec 3.5, 5.8), hand-computed below.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mt5tester.config import CoordinatorConfig, parse_config
from mt5tester.model import constants as C
from mt5tester.model.bars import Bars
from mt5tester.model.signal import Signal
from mt5tester.model.structs import TradeRequest
from mt5tester.model.timeframe import Timeframe
from mt5tester.risk.coordinator import Coordinator, Decision, ReviewContext, SignalContext
from mt5tester.terminal.api import SimTerminal
from mt5tester.terminal.market import MarketData
from mt5tester.terminal.server import ServerSettings, TradeServer
from mt5tester.terminal.shim import build_module

T0 = pd.Timestamp("2024-01-02T10:00Z").value  # a Tuesday; server time = UTC here
MIN = 60_000_000_000
Row = tuple[float, float, float, float]


def flat(price: float, n: int) -> list[Row]:
    return [(price, price, price, price)] * n


def m1(symbol: str, rows: list[Row]) -> Bars:
    a = np.array(rows, dtype=np.float64)
    n = len(rows)
    return Bars(
        symbol,
        Timeframe.M1,
        T0 + np.arange(n, dtype=np.int64) * MIN,
        a[:, 0].copy(),
        a[:, 1].copy(),
        a[:, 2].copy(),
        a[:, 3].copy(),
        np.ones(n, np.int64),
        np.zeros(n, np.int32),
    )


@dataclass
class World:
    market: MarketData
    server: TradeServer
    terminal: SimTerminal
    mt5: types.ModuleType

    def at(self, minute: int) -> None:
        t = T0 + minute * MIN
        self.server.advance(t)
        self.terminal.set_time(t)

    def open(self, symbol: str, volume: float, buy: bool = True, sl: float = 0.0) -> int:
        req = TradeRequest(
            action=C.TRADE_ACTION_DEAL,
            symbol=symbol,
            volume=volume,
            type=C.ORDER_TYPE_BUY if buy else C.ORDER_TYPE_SELL,
            sl=sl,
        )
        r = self.server.send(req)
        assert r.retcode == C.TRADE_RETCODE_DONE, r.comment
        return int(r.order)

    @property
    def server_time(self) -> int:
        return self.market.to_server_s(self.market.now)


def world(
    rows: dict[str, list[Row]],
    minute: int = 20,
    deposit: float = 10_000.0,
    symbols: dict[str, dict[str, Any]] | None = None,
    connect: bool = True,
) -> World:
    """Zero-spread M1 bars from T0 (Tuesday 10:00 UTC); the clock at T0 + ``minute``; 1:100 USD account."""
    cfg = parse_config(
        {
            "backtest": {"start": "2024-01-01", "end": "2024-02-01", "symbols": list(rows)},
            "symbols": symbols or {},
        }
    )
    specs = {s: cfg.symbol_spec(s) for s in rows}
    market = MarketData({s: m1(s, r) for s, r in rows.items()}, specs, "UTC", 0)
    server = TradeServer(market, ServerSettings(deposit=deposit, leverage=100))
    terminal = SimTerminal(market, server)
    if connect:
        assert terminal.initialize() is True
    w = World(market, server, terminal, build_module(terminal))
    w.at(0)
    if minute:
        w.at(minute)
    return w


PRICES = {"EURUSD": 1.10000, "USDJPY": 150.000, "EURGBP": 0.85000, "GBPUSD": 1.25000, "XAUUSD": 2000.00}


def fx_world(minute: int = 20, **kw: Any) -> World:
    """Flat prices: EURUSD 1.10000, USDJPY 150.000, EURGBP 0.85000, GBPUSD 1.25000, XAUUSD 2000.00."""
    return world({s: flat(p, 40) for s, p in PRICES.items()}, minute, **kw)


def sig(symbol: str, direction: str = "buy", strategy: str = "a", confidence: float = 1.0) -> Signal:
    return Signal(symbol=symbol, direction=direction, strategy=strategy, confidence=confidence)


def sc(
    strategy: str = "a",
    volume: float = 0.1,
    sl: float | None = None,
    regime: str | None = None,
    mult: float | None = None,
) -> SignalContext:
    return SignalContext(strategy, volume, sl, regime, mult)


def review(
    w: World,
    cfg: dict[str, Any] | Coordinator,
    items: list[tuple[Signal, SignalContext]],
    owners: dict[int, str] | None = None,
    server_time: int | None = None,
) -> list[Decision]:
    coord = cfg if isinstance(cfg, Coordinator) else Coordinator(CoordinatorConfig.model_validate(cfg), w.mt5)
    now = w.market.now
    ctx = ReviewContext(now, now, [c for _, c in items], owners or {}, server_time)
    return coord.review([s for s, _ in items], ctx)


def test_tick_values_come_from_the_terminal_as_spec_5_8() -> None:
    w = fx_world()
    tv = {s: w.mt5.symbol_info(s).trade_tick_value for s in PRICES}
    # EURUSD: 0.00001 × 100000 = 1 USD (quote = deposit currency)
    # USDJPY: 0.001 × 100000 JPY / 150.001 (the closing price bid + 1 point) = 0.66666222 USD
    # EURGBP: 0.00001 × 100000 GBP × GBPUSD 1.25 = 1.25 USD; XAUUSD: 0.01 × 100 oz = 1 USD
    assert tv == {"EURUSD": 1.0, "USDJPY": 0.66666222, "EURGBP": 1.25, "GBPUSD": 1.0, "XAUUSD": 1.0}
    assert w.mt5.symbol_info("XAUUSD").trade_tick_size == 0.01


def test_no_account_rejects_entries_and_still_approves_exits() -> None:
    w = fx_world(connect=False)
    d = review(w, {}, [(sig("EURUSD"), sc()), (sig("EURUSD", "flat"), sc())])
    assert d == [
        Decision("rejected", 0.0, "account", "no_account", {"last_error": [-10004, "No IPC connection"]}),
        Decision("approved", 0.0),
    ]


def test_review_needs_one_context_per_signal() -> None:
    w = fx_world()
    coord = Coordinator(CoordinatorConfig(), w.mt5)
    with pytest.raises(ValueError, match="2 signals but 1 signal contexts"):
        coord.review([sig("EURUSD"), sig("GBPUSD")], ReviewContext(0, 0, [sc()]))
