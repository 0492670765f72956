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

import numpy as np

from mt5tester.config import Config, TimeWindowConfig
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
            (
                sw,
                None
                if sw.regimes is not None
                else week_mask(blocked if sw.windows == "blocked" else sw.windows, sw.margin_minutes),
            )
            for sw in cfg.trading_mode_switch
        ]

    def coordinators(self) -> list[Coordinator]:
        return [m.coordinator for m in self.modes.values()]

    def active(self, server_s: int, regime: str | None) -> Mode:
        """The mode in force at server time ``server_s`` for a symbol in regime ``regime``."""
        minute = -1
        for sw, mask in self.switches:
            if mask is None:
                if regime in (sw.regimes or ()):
                    return self.modes[sw.mode]
                continue
            if minute < 0:
                t = dt.datetime.fromtimestamp(server_s, dt.UTC)
                minute = t.weekday() * MINUTES_A_DAY + t.hour * 60 + t.minute
            if mask[minute]:
                return self.modes[sw.mode]
        return self.base


MINUTES_A_DAY = 1440


def week_mask(windows: list[TimeWindowConfig] | Any, margin: int) -> np.ndarray:
    """For each minute of the server week (Monday 00:00 = 0), whether it is inside one of ``windows``
    widened by ``margin`` minutes on both sides (the week wraps around)."""
    week = 7 * MINUTES_A_DAY
    inside = np.zeros(week, bool)
    for m in range(week):
        day, minute = divmod(m, MINUTES_A_DAY)
        inside[m] = any(_in_window(w, day, minute) for w in windows or [])
    if margin and inside.any():
        padded = np.concatenate([inside[-margin:], inside, inside[:margin]]).astype(np.int64)
        sums = np.convolve(padded, np.ones(2 * margin + 1, np.int64), mode="valid")
        inside = sums > 0
    return inside
