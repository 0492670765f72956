"""Trading-mode profiles (``trading_modes:``): validation, selection and the config a mode runs with.

A profile selects strategies (by name or category), timeframes and symbols, and overrides coordinator
keys (limits, sessions, blocked windows, a regime gate, a risk multiplier). ``apply_trading_modes``
runs before the strategies load (engine/build.py):

* ``trading_mode: X`` alone: the config becomes the one X describes (strategies narrowed, coordinator
  overridden); ``effective()['trading_mode_diff']`` lists what X changed. Applying it again changes
  nothing (every profile key sets, none adds), so a stored effective config parses back to itself.
* with ``trading_mode_switch``: the strategies of every mode involved are kept and the coordinator stays
  as written; the engine (engine/modes.py) picks the mode in force per signal and reviews it with that
  mode's coordinator (``mode_coordinator``).

Every mistake is a ConfigError (exit 2) naming the file, line and key path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mt5tester.config import Config, CoordinatorConfig, TradingModeConfig, did_you_mean, value_hint
from mt5tester.errors import ConfigError
from mt5tester.model.timeframe import Timeframe
from mt5tester.strategy.folders import expand_folders
from mt5tester.strategy.loader import identify

CATEGORIES = ("technical", "smc", "ml", "fusion")


@dataclass(frozen=True)
class Member:
    """What a profile selects on: one configured strategy as the loader names it."""

    name: str
    category: str
    timeframe: Timeframe
    symbols: tuple[str, ...]
    trade: bool
    members: tuple[str, ...]  # a fusion strategy's members


def members_of(cfg: Config, base_dir: Path) -> list[Member]:
    """Every configured strategy's name and category (its class is imported to know them)."""
    out = []
    for i, sc in enumerate(cfg.strategies):
        name, category = identify(sc, cfg, base_dir, i)
        out.append(
            Member(
                name,
                category,
                sc.timeframe or cfg.backtest.primary_timeframe,
                tuple(sc.symbols or cfg.backtest.symbols),
                sc.trade,
                tuple(str(m) for m in sc.params.get("members", []) or []),
            )
        )
    return out


def _error(cfg: Config, loc: tuple[Any, ...], message: str) -> ConfigError:
    return ConfigError(f"{cfg.where(*loc)}: {'.'.join(map(str, loc))}: {message}")


def select(cfg: Config, name: str, mode: TradingModeConfig, members: list[Member]) -> list[str]:
    """The names of the strategies profile ``name`` runs (a selected fusion strategy brings its
    ``trade: false`` members); a profile selecting none is an error."""
    picked = []
    for m in members:
        if (
            mode.strategies is not None
            and m.name not in mode.strategies
            and m.category not in mode.strategies
        ):
            continue
        if mode.timeframes is not None and m.timeframe not in mode.timeframes:
            continue
        if mode.symbols is not None and not set(m.symbols) & set(mode.symbols):
            continue
        if m.trade:
            picked.append(m.name)
    fed = {x for m in members if m.name in picked for x in m.members}
    chosen = [m.name for m in members if m.name in picked or m.name in fed]
    if not picked:
        asked = {
            k: v
            for k, v in (
                ("strategies", mode.strategies),
                ("timeframes", mode.timeframes),
                ("symbols", mode.symbols),
            )
            if v is not None
        }
        shown = ", ".join(f"{k} {[str(getattr(x, 'name', x)) for x in v]}" for k, v in asked.items())
        configured = ", ".join(f"{m.name} ({m.category}, {m.timeframe.name})" for m in members if m.trade)
        raise _error(
            cfg,
            ("trading_modes", name),
            f"the profile selects no strategy ({shown or 'nothing to select'}; configured: {configured}). "
            "List a configured strategy name or category, or widen its timeframes/symbols",
        )
    return chosen


def check_profiles(cfg: Config, members: list[Member]) -> dict[str, list[str]]:
    """Validate every profile, ``trading_mode`` and ``trading_mode_switch``; return each profile's
    selected strategy names."""
    names = {m.name for m in members}
    known = set(cfg.backtest.symbols)
    selected = {}
    for pname, mode in cfg.trading_modes.items():
        for i, s in enumerate(mode.strategies or []):
            if s not in names and s not in CATEGORIES:
                raise _error(
                    cfg,
                    ("trading_modes", pname, "strategies", i),
                    f"'{s}' is neither a configured strategy ({', '.join(sorted(names))}) nor a category "
                    f"({', '.join(CATEGORIES)}){did_you_mean(s, [*names, *CATEGORIES])}",
                )
        for i, sym in enumerate(mode.symbols or []):
            if sym not in known:
                raise _error(
                    cfg,
                    ("trading_modes", pname, "symbols", i),
                    f"'{sym}' is not in backtest.symbols {cfg.backtest.symbols}; add it there or remove it",
                )
        if mode.regimes is not None and not cfg.regime.enabled:
            raise _error(
                cfg,
                ("trading_modes", pname, "regimes"),
                "needs regime.enabled: true (no regime labels without it)",
            )
        selected[pname] = select(cfg, pname, mode, members)
        mode_coordinator(cfg, pname, selected[pname])  # its coordinator keys are valid
    if cfg.trading_mode is not None and cfg.trading_mode not in cfg.trading_modes:
        raise _unknown_mode(cfg, ("trading_mode",), cfg.trading_mode)
    for i, sw in enumerate(cfg.trading_mode_switch):
        if sw.mode not in cfg.trading_modes:
            raise _unknown_mode(cfg, ("trading_mode_switch", i, "mode"), sw.mode)
        if sw.regimes is not None and not cfg.regime.enabled:
            raise _error(
                cfg,
                ("trading_mode_switch", i, "regimes"),
                "needs regime.enabled: true (no regime labels without it)",
            )
        if sw.windows == "blocked" and not cfg.coordinator.blocked:
            raise _error(
                cfg,
                ("trading_mode_switch", i, "windows"),
                "'blocked' means the windows of coordinator.blocked, and there are none; list windows here",
            )
    return selected


def _unknown_mode(cfg: Config, loc: tuple[Any, ...], name: str) -> ConfigError:
    have = ", ".join(cfg.trading_modes) or "none: add a trading_modes: section"
    return _error(
        cfg, loc, f"no trading mode '{name}' (profiles: {have}){did_you_mean(name, cfg.trading_modes)}"
    )


def mode_coordinator(cfg: Config, name: str, selected: list[str]) -> CoordinatorConfig:
    """The coordinator keys of ``cfg.coordinator`` with profile ``name``'s overrides."""
    mode = cfg.trading_modes[name]
    over: dict[str, Any] = dict(mode.coordinator)
    for key in ("sessions", "blocked", "risk_multiplier"):
        value = getattr(mode, key)
        if value is not None:
            over[key] = [w.model_dump(by_alias=True) for w in value] if key != "risk_multiplier" else value
    if mode.regimes is not None:
        gate = dict(over.get("regime_gate") or cfg.coordinator.regime_gate or {})
        over["regime_gate"] = gate | {s: list(mode.regimes) for s in selected}
    try:
        merged = CoordinatorConfig.model_validate(cfg.coordinator.model_dump(by_alias=True) | over)
    except ValidationError as e:
        first = e.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else ""
        where = "coordinator" if key in mode.coordinator or not mode.coordinator else ""
        loc = ("trading_modes", name, *((where, *first["loc"]) if where else first["loc"]))
        hint = ""
        if first["type"] == "extra_forbidden":
            hint = did_you_mean(key, CoordinatorConfig.model_fields) + " (a key of the coordinator: section)"
        raise _error(cfg, loc, f"{first['msg']}{value_hint(first)}{hint}") from None
    if merged.regime_gate and not cfg.regime.enabled:
        raise _error(cfg, ("trading_modes", name, "coordinator", "regime_gate"), "needs regime.enabled: true")
    return merged


def resolve(cfg: Config, name: str, selected: list[str], members: list[Member]) -> Config:
    """The config as profile ``name`` runs it: its strategies (on its symbols) and its coordinator."""
    mode = cfg.trading_modes[name]
    keep = []
    for sc, m in zip(cfg.strategies, members, strict=True):
        if m.name not in selected:
            continue
        if mode.symbols is not None:
            own = [s for s in m.symbols if s in mode.symbols]
            sc = sc.model_copy(update={"symbols": own})
        keep.append(sc)
    return cfg.model_copy(
        update={"strategies": keep, "coordinator": mode_coordinator(cfg, name, selected)}, deep=False
    )


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


_NOT_DIFFED = ("strategies", "strategy_folders", "trading_modes", "trading_mode", "trading_mode_switch")


def diff(before: Config, after: Config, members: list[Member], kept: list[str]) -> dict[str, list[Any]]:
    """{key path: [before, after]} of what a mode changes; strategies as 'name SYMBOLS' in order
    (``kept``: the names ``after`` runs, in the order of ``members``)."""
    a, b = before.effective(), after.effective()
    for d in (a, b):
        for k in (*_NOT_DIFFED, "trading_mode_diff"):
            d.pop(k, None)
    fa, fb = _flat(a), _flat(b)
    keys = sorted(set(fa) | set(fb))
    out: dict[str, list[Any]] = {k: [fa.get(k), fb.get(k)] for k in keys if fa.get(k) != fb.get(k)}
    was = [f"{m.name} {','.join(m.symbols)}" for m in members]
    now = [
        f"{m.name} {','.join(sc.symbols or after.backtest.symbols)}"
        for m, sc in zip([m for m in members if m.name in kept], after.strategies, strict=True)
    ]
    if was != now:
        out["strategies"] = [was, now]
    return out


def apply_trading_modes(cfg: Config, base_dir: Path) -> Config:
    """Validate the profiles and apply ``trading_mode`` / ``trading_mode_switch`` (module doc)."""
    if not cfg.trading_modes and cfg.trading_mode is None and not cfg.trading_mode_switch:
        return cfg
    members = members_of(cfg, base_dir)
    selected = check_profiles(cfg, members)
    if cfg.trading_mode is None and not cfg.trading_mode_switch:
        return cfg
    involved = ([cfg.trading_mode] if cfg.trading_mode else []) + [
        sw.mode for sw in cfg.trading_mode_switch if sw.mode != cfg.trading_mode
    ]
    involved = list(dict.fromkeys(involved))
    profiles = {n: cfg.trading_modes[n] for n in involved}
    changes = {n: diff(cfg, resolve(cfg, n, selected[n], members), members, selected[n]) for n in involved}
    if not cfg.trading_mode_switch:
        assert cfg.trading_mode is not None
        out = resolve(cfg, cfg.trading_mode, selected[cfg.trading_mode], members)
    else:
        # the strategies any involved mode runs (all of them while no profile is in force)
        wanted = {s for n in involved for s in selected[n]} if cfg.trading_mode else {m.name for m in members}
        out = cfg.model_copy(
            update={
                "strategies": [sc for sc, m in zip(cfg.strategies, members, strict=True) if m.name in wanted]
            }
        )
    out = out.model_copy(update={"trading_modes": profiles})
    out._mode_diff = changes
    return out


def prepare_config(cfg: Config, base_dir: Path) -> Config:
    """The config the run loads: strategy folders expanded, then the trading mode applied."""
    return apply_trading_modes(expand_folders(cfg, base_dir), base_dir)
