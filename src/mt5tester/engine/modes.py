"""The trading mode in force per signal (``trading_mode`` with ``trading_mode_switch``).

Each involved mode has its coordinator (``cfg.coordinator`` with the profile's overrides) and its
selection (strategies, symbols). Per signal the first switch that holds names the mode (a time window
on the server clock, widened by ``margin_minutes``, or the symbol's regime label); none holding,
``trading_mode`` is in force (no profile at all when it is unset: the config as written). A signal of a
strategy or symbol the mode does not select is rejected (rule ``trading_mode``); exits always pass.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from mt5tester.config import Config, ModeSwitchConfig, TimeWindowConfig
from mt5tester.risk.coordinator import Coordinator
from mt5tester.risk.rules import _in_window
from mt5tester.strategy.loader import LoadedStrategy
from mt5tester.strategy.modes import Member, mode_coordinator, select


@dataclass
class Mode:
    name: str | None
    strategies: set[str]
    symbols: set[str] | None
    coordinator: Coordinator


class ModeSwitch:
    def __init__(self, cfg: Config, loaded: list[LoadedStrategy], base: Coordinator, mt5: Any) -> None:
        members = [
            Member(
                ls.strategy.name,
                ls.strategy.category,
                ls.strategy.timeframe,
                tuple(ls.strategy.symbols),
                sc.trade,
                tuple(str(m) for m in sc.params.get("members", []) or []),
            )
            for ls, sc in zip(loaded, cfg.strategies, strict=True)
        ]
        self.modes: dict[str | None, Mode] = {}
        for name in [cfg.trading_mode, *(sw.mode for sw in cfg.trading_mode_switch)]:
            if name in self.modes:
                continue
            if name is None:  # no profile: the config as written
                self.modes[None] = Mode(None, {m.name for m in members}, None, base)
                continue
            chosen = select(cfg, name, cfg.trading_modes[name], members)
            profile = cfg.trading_modes[name]
            coordinator = Coordinator(mode_coordinator(cfg, name, chosen), mt5)
            self.modes[name] = Mode(
                name, set(chosen), set(profile.symbols) if profile.symbols else None, coordinator
            )
        self.base = self.modes[cfg.trading_mode]
        blocked = cfg.coordinator.blocked
        self.switches = [
            (sw, blocked if sw.windows == "blocked" else sw.windows) for sw in cfg.trading_mode_switch
        ]

    def coordinators(self) -> list[Coordinator]:
        return [m.coordinator for m in self.modes.values()]

    def active(self, server_s: int, regime: str | None) -> Mode:
        """The mode in force at server time ``server_s`` for a symbol in regime ``regime``."""
        for sw, windows in self.switches:
            if _holds(sw, windows, server_s, regime):
                return self.modes[sw.mode]
        return self.base


def _holds(sw: ModeSwitchConfig, windows: Any, server_s: int, regime: str | None) -> bool:
    if sw.regimes is not None:
        return regime in sw.regimes
    wins: list[TimeWindowConfig] = windows or []
    t = dt.datetime.fromtimestamp(server_s, dt.UTC)
    # widened by the margin: some minute within margin_minutes of now is inside a window
    for k in range(-sw.margin_minutes, sw.margin_minutes + 1):
        m = t + dt.timedelta(minutes=k)
        if any(_in_window(w, m.weekday(), m.hour * 60 + m.minute) for w in wins):
            return True
    return False
