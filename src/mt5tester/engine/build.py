"""Composition root: every component built eagerly from the config, each stage checked (preflight)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from mt5tester.config import Config, RegimeParams
from mt5tester.data.health import HealthReport
from mt5tester.data.resample import resample
from mt5tester.engine import preflight
from mt5tester.engine.dataset import Dataset, read_symbol
from mt5tester.engine.feed import StrategyFeed, prepared_columns
from mt5tester.engine.modes import ModeSwitch
from mt5tester.errors import ConfigError, StorageError
from mt5tester.model.bars import Bars
from mt5tester.model.symbol import SymbolSpec
from mt5tester.model.ticks import Ticks
from mt5tester.model.time import parse_server_tz
from mt5tester.model.timeframe import Timeframe
from mt5tester.regime.detectors import RegimeTracker
from mt5tester.results import db
from mt5tester.risk.coordinator import Coordinator
from mt5tester.strategy.loader import LoadedStrategy, load_strategies
from mt5tester.strategy.modes import prepare_config
from mt5tester.terminal.api import SimTerminal
from mt5tester.terminal.market import MarketData
from mt5tester.terminal.server import (
    ServerSettings,
    TickStream,
    TradeServer,
    real_tick_stream,
    rollover_schedule,
)
from mt5tester.terminal.shim import build_module

log = logging.getLogger(__name__)


@dataclass
class Components:
    cfg: Config
    base_dir: Path
    specs: dict[str, SymbolSpec]
    m1: dict[str, Bars]
    tf_bars: dict[tuple[str, Timeframe], Bars]
    strategies: list[LoadedStrategy]
    coordinator: Coordinator
    server: TradeServer
    terminal: SimTerminal
    health: list[HealthReport]
    feeds: dict[tuple[int, str], StrategyFeed]
    engine: Engine | None  # the results database; None when the records go to a sink of their own
    regimes: RegimeTracker | None = None
    modes: ModeSwitch | None = None  # trading_mode_switch: the mode in force per signal

    @property
    def db(self) -> Engine:
        """The results database; a run whose records go to a sink of its own has none."""
        if self.engine is None:
            raise StorageError("this run opened no results database (its records go to a sink of its own)")
        return self.engine


def conversion_symbols(cfg: Config, specs: dict[str, SymbolSpec]) -> list[str]:
    """Pairs needed to convert profit/margin currencies into the deposit currency (spec 5.8)."""
    dep = cfg.backtest.deposit_currency
    need = []
    for spec in specs.values():
        for ccy in {spec.currency_profit, spec.currency_margin}:
            if ccy == dep or (spec.currency_base == dep and ccy == spec.currency_margin):
                continue
            if spec.currency_profit == dep and ccy == spec.currency_margin:
                continue  # margin in base ccy is converted by the symbol's own price
            if ccy + dep in specs or dep + ccy in specs:
                continue
            need.append(ccy)
    return sorted(set(need))


def open_price_bars(m1: Bars, tested: Timeframe, server_tz: str) -> Bars:
    """The bars "open prices only" resolves SL/TP, pending orders and stop-out on (spec 6.1): the
    tested timeframe's, daily ones for W1 and MN1. Each is stamped at its first tick, the moment MT5
    opens it (spec 5.1), so the bars stamped before a decision point are exactly the closed ones."""
    if tested is Timeframe.M1:
        return m1
    bars = resample(m1, Timeframe.D1 if tested in (Timeframe.W1, Timeframe.MN1) else tested, server_tz)
    first_tick = m1.time[np.searchsorted(m1.time, bars.time, "left")]
    return Bars(
        bars.symbol,
        bars.timeframe,
        first_tick,
        bars.open,
        bars.high,
        bars.low,
        bars.close,
        bars.tick_volume,
        bars.spread,
        bars.close_at,
    )


def build(
    cfg: Config,
    base_dir: Path,
    with_strategies: bool = True,
    truncate_ns: int | None = None,
    data: Dataset | None = None,
    engine: Engine | None = None,
    open_results: bool = True,
) -> Components:
    """Build everything, in the order that makes failures cheapest: config, storage, strategies, data.

    ``with_strategies=False`` (run-script: the script is the strategy) skips the strategy loader.
    ``truncate_ns`` (the lookahead checker): drop every M1 bar at or after it, as if history ended there.
    ``data``: preloaded market data (``load_data``), used instead of reading files where it applies.
    ``engine``: the results database already open (default: open ``results.database_url``, unless
    ``open_results`` is False: the records go to a sink that needs no database).
    """
    try:
        parse_server_tz(cfg.backtest.server_timezone)
    except ValueError as e:
        raise ConfigError(f"backtest.server_timezone: {e}") from None
    cfg.check_symbol_specs()
    if with_strategies:
        cfg = prepare_config(cfg, base_dir)  # strategy folders, trading_mode (strategy/modes.py)
    specs = {s: cfg.symbol_spec(s) for s in cfg.backtest.symbols}
    if engine is None and open_results:
        engine = db.connect(
            cfg.results.database_url,
            connect_timeout=cfg.results.connect_timeout_seconds,
            statement_timeout=cfg.results.statement_timeout_seconds,
        )
    strategies = load_strategies(cfg, base_dir) if with_strategies else []

    m1: dict[str, Bars] = {}
    tf_bars: dict[tuple[str, Timeframe], Bars] = {}
    tfs_by_symbol: dict[str, set[Timeframe]] = {s: set(cfg.backtest.timeframes) for s in cfg.backtest.symbols}
    for ls in strategies:
        for s in ls.strategy.symbols:
            tfs_by_symbol[s].add(ls.strategy.timeframe)
    real: dict[str, TickStream] = {}
    health: list[HealthReport] = []
    for sym in cfg.backtest.symbols:
        got = (data.lookup(cfg, sym) if data is not None else None) or read_symbol(cfg, sym, specs[sym])
        bars = got.m1
        if got.ticks is not None and cfg.backtest.tester_mode == "real_ticks":
            real[sym] = got.ticks
        if truncate_ns is not None:
            bars = bars.between(int(bars.time[0]) if len(bars) else 0, truncate_ns)
            if sym in real:
                r = real[sym]
                keep = r.time < truncate_ns
                real[sym] = TickStream(r.time[keep], r.bid[keep], r.ask[keep])
        preflight.check_prices(bars)
        health.append(preflight.check_health(cfg, bars))
        per_tf = {
            tf: bars if tf == Timeframe.M1 else resample(bars, tf, cfg.backtest.server_timezone)
            for tf in sorted(tfs_by_symbol[sym])
        }
        preflight.check_coverage(cfg, bars, per_tf, check_end=truncate_ns is None)
        m1[sym] = bars
        tf_bars.update({(sym, tf): b for tf, b in per_tf.items()})
    missing = conversion_symbols(cfg, specs)
    if missing:
        dep = cfg.backtest.deposit_currency
        pairs = ", ".join(f"{c}{dep} or {dep}{c}" for c in missing)
        raise ConfigError(
            f"backtest.symbols: profits in {', '.join(missing)} cannot be converted to the deposit currency "
            f"{dep}; add {pairs} to backtest.symbols"
        )
    fixed = cfg.execution.spread.points if cfg.execution.spread.source == "fixed" else None
    if cfg.execution.spread.source == "fixed" and fixed is None:
        raise ConfigError("execution.spread.points is required with execution.spread.source: fixed")
    bt = cfg.backtest
    market = MarketData(
        m1,
        specs,
        bt.server_timezone,
        fixed,
        timeframes=bt.timeframes,
        tick_seed=bt.seed if bt.tester_mode == "every_tick" else None,
    )
    streams = {
        sym: real_tick_stream(
            m1[sym], market.spread[sym], raw.time, raw.bid, raw.ask, specs[sym].point, bt.seed
        )
        for sym, raw in real.items()
    }
    # The terminal shows the same ticks the server fills on (read lazily, so set before any query).
    market.ticks.update(
        {
            s: Ticks(
                s,
                st.time,
                st.bid,
                st.ask,
                np.zeros(len(st.time)),
                np.zeros(len(st.time), np.int64),
                np.full(len(st.time), 6, np.int32),
            )
            for s, st in streams.items()
        }
    )
    trigger_bars = None
    if bt.tester_mode == "open_prices":
        # One tested timeframe: Config refuses strategies on several. A script (run-script, no
        # strategies) is tested on backtest.primary_timeframe, its chart.
        tested = (cfg.strategy_timeframes() or [bt.primary_timeframe])[0]
        trigger_bars = {s: open_price_bars(m1[s], tested, bt.server_timezone) for s in m1}
    settings = ServerSettings(
        currency=bt.deposit_currency,
        leverage=bt.leverage,
        deposit=bt.initial_deposit,
        hedging=bt.account_mode == "hedging",
        commission_enabled=cfg.execution.commission == "symbol",
        margin_call=bt.margin_call_level,
        stop_out=bt.stop_out_level,
        stop_out_mode=bt.stop_out_mode,
        slippage_model=cfg.execution.slippage.model,
        slippage_points=cfg.execution.slippage.points,
        intrabar=cfg.execution.intrabar_policy,
        tick_mode={"every_tick": "every_tick", "real_ticks": "real_ticks"}.get(bt.tester_mode, "bars"),  # type: ignore[arg-type]
        seed=bt.seed,
    )
    server = TradeServer(market, settings, trigger_bars)
    server.real_ticks.update(streams)
    server.deals[0].time = preflight.day_ns(
        bt.start
    )  # the deposit deal is dated at the test start, as in MT5
    first = min(int(b.time[0]) for b in m1.values())
    server.rollovers, server.rollover_days = rollover_schedule(
        first, preflight.day_ns(bt.end), bt.server_timezone
    )
    feeds = {
        (si, sym): StrategyFeed(
            ls.strategy,
            tf_bars[(sym, ls.strategy.timeframe)],
            prepared_columns(ls.strategy, sym, tf_bars[(sym, ls.strategy.timeframe)]),
        )
        for si, ls in enumerate(strategies)
        for sym in ls.strategy.symbols
    }
    terminal = SimTerminal(market, server, data_path=Path(cfg.results.out_dir) / "terminal")
    regimes = None
    if cfg.regime.enabled:
        params = RegimeParams(**cfg.regime.model_dump(exclude={"enabled"}))
        regimes = RegimeTracker.from_m1(m1, params, bt.server_timezone)
    mt5 = build_module(terminal)
    coordinator = Coordinator(cfg.coordinator, mt5)
    modes = ModeSwitch(cfg, strategies, coordinator, mt5) if cfg.trading_mode_switch and strategies else None
    return Components(
        cfg,
        base_dir,
        specs,
        m1,
        tf_bars,
        strategies,
        coordinator,
        server,
        terminal,
        health,
        feeds,
        engine,
        regimes,
        modes,
    )
