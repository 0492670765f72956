"""Starting a session: ``paper`` (our simulated terminal replaying stored data) and ``live`` (a real
terminal through the ``MetaTrader5`` package, or any module with its API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from mt5tester.config import Config
from mt5tester.engine.build import Components, build
from mt5tester.engine.modes import ModeSwitch
from mt5tester.engine.preflight import day_ns
from mt5tester.live.clock import ReplayClock, WallClock
from mt5tester.live.session import Session, SessionResult, StopSwitch
from mt5tester.live.terminal import ServerClock, import_module
from mt5tester.results import db
from mt5tester.risk.coordinator import Coordinator
from mt5tester.strategy.loader import load_strategies
from mt5tester.strategy.modes import prepare_config
from mt5tester.terminal.shim import build_module


def paper(
    cfg: Config,
    base_dir: Path,
    speed: float = 0.0,
    stop: StopSwitch | None = None,
    wrap: Any = None,
) -> SessionResult:
    """Paper trading on a replay of the config's data from ``backtest.start`` to ``backtest.end``, at
    ``speed`` times real time (0: as fast as it goes). ``wrap(module)`` may stand between the session
    and the simulated terminal (the contract tests put a faulty connection there)."""
    c = build(cfg, base_dir)  # strategy folders expanded, trading_mode applied (strategy/modes.py)
    start, end = day_ns(cfg.backtest.start), day_ns(cfg.backtest.end)
    mt5 = build_module(c.terminal)
    clock = ReplayClock(c.terminal, start, end, speed)
    session = Session(c, wrap(mt5) if wrap else mt5, clock, "paper", c.regimes, end, stop)
    return session.run()


def paper_on_quotes(
    cfg: Config,
    base_dir: Path,
    module: str | None = None,
    stop: StopSwitch | None = None,
    source: Any = None,
    sleep: Any = None,
) -> SessionResult:
    """Paper trading on the live quotes of the MetaTrader5-API module ``module`` (or ``source``)."""
    from mt5tester.live.quotes import LiveQuotesClock, QuoteFeed

    feed = QuoteFeed(
        cfg, base_dir, source if source is not None else import_module(module or cfg.live.module)
    )
    c = live_components(cfg, base_dir, feed.module)
    clock = LiveQuotesClock(feed, cfg.live.poll_seconds, **({"sleep": sleep} if sleep else {}))
    return Session(c, feed.module, clock, "paper", None, None, stop).run()


def live_components(cfg: Config, base_dir: Path, mt5: Any) -> Components:
    """What a live session needs of a backtest's components: no market data (the terminal has it)."""
    cfg.check_symbol_specs()
    cfg = prepare_config(cfg, base_dir)  # strategy folders expanded, trading_mode applied
    engine = db.connect(
        cfg.results.database_url,
        connect_timeout=cfg.results.connect_timeout_seconds,
        statement_timeout=cfg.results.statement_timeout_seconds,
    )
    strategies = load_strategies(cfg, base_dir)
    specs = {s: cfg.symbol_spec(s) for s in cfg.backtest.symbols}
    none = cast(Any, None)  # no simulated server or terminal behind a live session
    coordinator = Coordinator(cfg.coordinator, mt5)
    # trading_mode_switch: each mode its own coordinator on the terminal's account (engine/modes.py)
    modes = ModeSwitch(cfg, strategies, coordinator, mt5) if cfg.trading_mode_switch and strategies else None
    return Components(
        cfg,
        base_dir,
        specs,
        {},
        {},
        strategies,
        coordinator,
        none,
        none,
        [],
        {},
        engine,
        modes=modes,
    )


def live(
    cfg: Config, base_dir: Path, module: str | None = None, stop: StopSwitch | None = None
) -> SessionResult:
    """Live trading through the MetaTrader5-API module ``module`` (default ``live.module``)."""
    mt5 = import_module(module or cfg.live.module)
    c = live_components(cfg, base_dir, mt5)
    server = ServerClock(cfg.backtest.server_timezone)
    clock = WallClock(mt5, lambda s: int(server.to_utc_ns([s])[0]), cfg.live.poll_seconds)
    return Session(c, mt5, clock, "live", None, None, stop).run()
