"""Paper trading on a live terminal's quotes: our simulated terminal (its trade server fills, SL/TP,
swaps, margin) over the M1 bars a live MetaTrader5-API module delivers as time passes.

The simulated terminal's market data are arrays built once (terminal/market.py), so the feed rebuilds
them when a strategy's bar closes: the closed M1 bars fetched so far plus the minute now forming, seen
only through its first tick (its open: the tick a backtest fills at, README "Design choices"). The
trade state (balance, positions, orders, deals, tickets) is carried over whole (``TradeState``), so
the session trades one continuous account. The session talks to a module that always forwards to the
current simulated terminal.
"""

from __future__ import annotations

import datetime as dt
import time as _time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mt5tester.config import Config
from mt5tester.engine.build import build
from mt5tester.engine.dataset import Dataset, SymbolData, data_source
from mt5tester.errors import DataError
from mt5tester.live.clock import WallClock
from mt5tester.live.terminal import ServerClock, rates_to_bars
from mt5tester.model import constants, structs
from mt5tester.model.bars import Bars
from mt5tester.model.timeframe import Timeframe
from mt5tester.terminal.shim import FUNCTIONS, STRUCTURES
from mt5tester.terminal.state import StateMemo

MINUTE_S = 60
DAY_S = 86_400


class QuoteFeed:
    """Our simulated terminal kept up to date with a live module's M1 bars."""

    def __init__(self, cfg: Config, base_dir: Path, source: Any) -> None:
        self.base_dir, self.source = base_dir, source
        self.clock = ServerClock(cfg.backtest.server_timezone)
        self.cfg0 = cfg
        self.bars: dict[str, Bars] = {}
        self.sim: Any = None
        self.module = self._forwarding()

    def _forwarding(self) -> types.ModuleType:
        """A MetaTrader5 module whose functions call the current simulated terminal's."""
        mod = types.ModuleType("MetaTrader5", "mt5tester paper trading on live quotes")
        for name in dir(constants):
            value = getattr(constants, name)
            if name.isupper() and isinstance(value, int):
                setattr(mod, name, value)
        for name in FUNCTIONS:
            setattr(mod, name, self._call(name))
        for name in STRUCTURES:
            setattr(mod, name, getattr(structs, name))
        return mod

    def _call(self, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if self.sim is None:
                raise DataError("paper on live quotes: the simulated terminal is not built yet")
            return getattr(self.sim.terminal, name)(*args, **kwargs)

        call.__name__ = name
        return call

    def _history_span_s(self) -> int:
        cfg = self.cfg0
        tfs = cfg.strategy_timeframes() or [cfg.backtest.primary_timeframe]
        bars = max(cfg.live.history_bars, cfg.backtest.warmup_bars)
        return max(int(Timeframe(tf).period_ns // 1_000_000_000) * bars for tf in tfs) + 4 * DAY_S

    def _fetch(self, now_ns: int) -> dict[str, Bars]:
        """Closed M1 bars up to now, and the forming minute's first tick as its only price."""
        now_s = self.clock.to_server_s(now_ns)
        out = {}
        for symbol in self.cfg0.backtest.symbols:
            have = self.bars.get(symbol)
            lo = (
                int(self.clock.to_server_s(int(have.time[-1]))) + MINUTE_S
                if have is not None and len(have)
                else now_s - self._history_span_s()
            )
            got = self.source.copy_rates_range(symbol, int(Timeframe.M1), lo, now_s)
            forming = self.source.copy_rates_from_pos(symbol, int(Timeframe.M1), 0, 1)
            new = (
                rates_to_bars(got, symbol, Timeframe.M1, self.clock) if got is not None and len(got) else None
            )
            start = forming["time"][0] if forming is not None and len(forming) else None
            if new is not None and start is not None:
                new = new.slice(
                    0, int(np.searchsorted(new.time, int(self.clock.to_utc_ns([start])[0]), "left"))
                )
            parts = [b for b in (have, new) if b is not None and len(b)]
            closed = _concat(symbol, parts) if parts else None
            if closed is None:
                raise DataError(f"paper on live quotes: the terminal gave no M1 bars of {symbol}")
            self.bars[symbol] = closed
            if forming is not None and len(forming):
                row = rates_to_bars(forming, symbol, Timeframe.M1, self.clock)
                o = row.open[:1]
                row = Bars(
                    symbol,
                    Timeframe.M1,
                    row.time,
                    o,
                    o.copy(),
                    o.copy(),
                    o.copy(),
                    row.tick_volume * 0,
                    row.spread,
                )
                out[symbol] = _concat(symbol, [closed, row])
            else:
                out[symbol] = closed
        return out

    def rebuild(self, t: int) -> None:
        """The simulated terminal at ``t`` over the bars fetched by now; the account carried over."""
        m1 = self._fetch(t)
        first_day = dt.datetime.fromtimestamp(t // 1_000_000_000, dt.UTC).date()
        bt = self.cfg0.backtest.model_copy(
            update={"start": first_day, "end": first_day + dt.timedelta(days=366)}
        )
        data = self.cfg0.data.model_copy(update={"min_health": 0.0})
        cfg = self.cfg0.model_copy(update={"backtest": bt, "data": data})
        dataset = Dataset(
            data_source(cfg), None, {s: SymbolData(b, None, cfg.symbol_spec(s)) for s, b in m1.items()}
        )
        sim = build(cfg, self.base_dir, with_strategies=False, data=dataset, truncate_ns=t + 1)
        if self.sim is not None:
            state = self.sim.server.state
            state.memo = StateMemo()
            sim.server.state = state
        sim.server.advance(t)
        sim.terminal.set_time(t)
        sim.terminal.connected = True
        self.sim = sim


def _concat(symbol: str, parts: list[Bars]) -> Bars:
    if len(parts) == 1:
        return parts[0]
    cols = {
        n: np.concatenate([getattr(p, n) for p in parts])
        for n in ("time", "open", "high", "low", "close", "tick_volume", "spread")
    }
    return Bars(symbol, Timeframe.M1, **cols)


class LiveQuotesClock(WallClock):
    """Waits on the live module's ticks; at each decision time the simulated terminal is rebuilt there."""

    def __init__(self, feed: QuoteFeed, poll: float, sleep: Callable[[float], None] = _time.sleep) -> None:
        server = feed.clock
        super().__init__(feed.source, lambda s: int(server.to_utc_ns([s])[0]), poll, sleep=sleep)
        self.feed = feed
        self.reconnect = lambda: bool(feed.source.initialize())  # the quote source, not our terminal

    def start(self, symbols: list[str]) -> None:
        super().start(symbols)
        self.feed.rebuild(self._now)

    def wait(self, due: dict[str, int], stop: Callable[[], bool]) -> int | None:
        t = super().wait(due, stop)
        if t is not None:
            self.feed.rebuild(t)
        return t
