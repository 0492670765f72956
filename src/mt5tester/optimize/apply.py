"""A trial's params applied to a Config, and the checks that make every trial's Config valid up front.

A target path (``optimize.parameters`` keys) is one of
    strategies.<name>.params.<param>     a strategy's param (``name``: its name, or its class if unnamed)
    coordinator.<key>[.<sub>...]         a coordinator key (sub-keys of sizing, for instance)
    symbols.<SYMBOL>.<key>               a symbol setting (SymbolSpec field) of a tested symbol

``apply_params`` returns a new, validated Config without the ``optimize:`` section: a trial is a plain
backtest, stored (when re-run in full) exactly as ``mt5tester backtest`` would store it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mt5tester.errors import ConfigError
from mt5tester.model.symbol import build_symbol
from mt5tester.optimize.walkforward import forward_split, walk_forward_folds

if TYPE_CHECKING:
    from mt5tester.config import Config


def check_windows(cfg: Config) -> None:
    """The forward period or walk-forward fits the backtest range (ConfigError naming the key and line)."""
    opt = cfg.optimize
    if opt is None:
        return
    start, end = cfg.backtest.start, cfg.backtest.end
    key = "walk_forward" if opt.walk_forward is not None else "forward"
    try:
        if opt.walk_forward is not None:
            walk_forward_folds(start, end, opt.walk_forward)
        else:
            forward_split(start, end, opt.forward)
    except ValueError as e:
        raise ConfigError(
            f"{cfg.where('optimize', key)}: optimize.{key}: {str(e).split(': ', 1)[-1]}"
        ) from None


def _set(node: dict[str, Any], keys: list[str], value: Any) -> None:
    for k in keys[:-1]:
        child = node.get(k)
        if child is None:
            child = node[k] = {}
        node = child
    node[keys[-1]] = value


def apply_params(cfg: Config, params: dict[str, Any]) -> Config:
    """``cfg`` with each target set to its value, validated as a whole, without ``optimize:``."""
    from mt5tester.config import Config, value_hint

    raw = cfg.effective()
    raw["optimize"] = None
    for path, value in params.items():
        parts = path.split(".")
        if parts[0] == "strategies":
            for s in raw["strategies"]:
                if (s.get("name") or s["class"]) == parts[1]:
                    s["params"][parts[3]] = value
        elif parts[0] == "coordinator":
            _set(raw["coordinator"], parts[1:], value)
        else:
            raw["symbols"].setdefault(parts[1], {})[parts[2]] = value
    try:
        out = Config.model_validate(raw)
        for path in params:
            if path.startswith("symbols."):
                sym = path.split(".")[1]
                build_symbol(sym, out.symbols.get(sym))
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"{cfg.where('optimize', 'parameters')}: optimize.parameters: the trial {params} gives an "
            f"invalid config: {loc}: {first['msg']}{value_hint(first)}; narrow the parameter's range"
        ) from None
    out._origin.update(cfg._origin)
    return out


def with_window(cfg: Config, start: dt.date, end: dt.date) -> Config:
    """``cfg`` over ``[start, end)`` (a fold's in-sample or out-of-sample window)."""
    out = cfg.model_copy(update={"backtest": cfg.backtest.model_copy(update={"start": start, "end": end})})
    out._origin.update(cfg._origin)
    return out
