"""Strategies of the original system, run as they are.

Accepted shapes (a class that is not a ``Strategy`` but has one of these methods is adapted by the
loader, ``adapt``):

* ``__init__(self, mt5_manager, symbols, ...)``: the constructor's parameters are filled by name:
  ``mt5_manager`` / ``manager`` / ``mt5`` / ``data_manager`` get a ``SimManager``, ``symbols`` the
  strategy's symbols, ``symbol`` its first one, ``timeframe`` its timeframe name (``"H1"``),
  ``config`` / ``params`` / ``settings`` the ``params:`` dict (unless ``params:`` names them), every
  other parameter its ``params:`` value. A required parameter nothing fills, or a ``params:`` key the
  constructor does not take, is a load error (exit 4).
* ``generate_signals(symbol)``: called at each close of a bar of the strategy's timeframe, per symbol;
  it reads bars through its manager.
* ``generate_signal(df)`` / ``analyze(df)``: called the same way with ``df`` = the manager's
  ``get_rates(symbol, timeframe, warmup_bars)``.

They return None, a dict, a ``Signal`` or a list of those. A dict is validated into a ``Signal``
(``to_signal``); a missing or invalid field is an invalid signal naming the strategy, the field and
the bar (``backtest.on_strategy_error`` applies).

The manager reads only our simulated terminal at the simulated time: closed bars only, the same
anti-lookahead guarantees as ``self.ctx.mt5``.
"""

from __future__ import annotations

import datetime as dt
import inspect
import io
import math
import pickle
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import ConfigDict, ValidationError

from mt5tester.model.signal import InvalidSignal, Signal
from mt5tester.model.timeframe import Timeframe
from mt5tester.strategy.base import Category, Strategy, StrategyParams

CALLS = ("generate_signals", "generate_signal", "analyze")
MANAGER_NAMES = ("mt5_manager", "manager", "mt5", "data_manager", "mt5_handler", "connector")
CONFIG_NAMES = ("config", "params", "parameters", "settings")
CATEGORIES = ("technical", "smc", "ml", "fusion")


def is_legacy(cls: Any) -> bool:
    """A class of the original system's shapes (not a Strategy, with one of the CALLS)."""
    return (
        inspect.isclass(cls)
        and not issubclass(cls, Strategy)
        and any(callable(getattr(cls, c, None)) for c in CALLS)
    )


class LegacyParams(StrategyParams):
    """Any keys: they are checked against the legacy constructor instead."""

    model_config = ConfigDict(frozen=True, extra="allow")


class SimManager:
    """What the original system's ``mt5_manager`` offered, over our simulated terminal.

    Methods (all answer at the simulated time; nothing after it is reachable):

    * ``get_rates(symbol, timeframe, count=500)`` (aliases ``get_data``, ``get_historical_data``,
      ``copy_rates``): the last ``count`` **closed** bars as a DataFrame with ``time`` (naive
      datetimes of the broker's server clock, as ``pd.to_datetime(rates["time"], unit="s")`` gives),
      open, high, low, close, tick_volume, spread, real_volume; None when there are none.
      ``timeframe``: a name (``"H1"``, ``"TIMEFRAME_H1"``) or an MT5 constant.
    * ``get_tick(symbol)``: the current tick as a dict (time, bid, ask, last, volume, ...) or None.
    * ``get_symbol_info(symbol)``, ``get_account_info()``: dicts (None when unknown).
    * ``get_positions(symbol=None)``, ``get_orders(symbol=None)``: lists of dicts.
    * ``connect()`` / ``initialize()`` -> True, ``is_connected()`` -> True, ``disconnect()`` /
      ``shutdown()``; ``mt5``: the MetaTrader5-shaped module itself.
    """

    def __init__(self, owner: Strategy) -> None:
        self._owner = owner

    @property
    def mt5(self) -> Any:
        mt5 = self._owner.ctx.mt5
        if mt5 is None:
            raise RuntimeError(
                f"strategy {self._owner.name}: the manager reads the simulated terminal, which is ready from "
                "the first bar on (not in the constructor)"
            )
        return mt5

    def connect(self, *args: Any, **kwargs: Any) -> bool:
        return True

    initialize = connect

    def is_connected(self) -> bool:
        return True

    def disconnect(self) -> None:
        return None

    shutdown = disconnect

    def get_rates(self, symbol: str, timeframe: Any = None, count: int = 500) -> pd.DataFrame | None:
        tf = self._owner.timeframe if timeframe is None else Timeframe.parse(timeframe)
        # index 0 of copy_rates_from_pos is the forming bar: start at 1, the last closed one
        rates = self.mt5.copy_rates_from_pos(symbol, int(tf), 1, int(count))
        if rates is None or len(rates) == 0:
            return None
        cols = {name: rates[name] for name in rates.dtype.names}
        # as pd.to_datetime(rates["time"], unit="s"), built directly (a third of the cost per call)
        cols["time"] = (rates["time"].astype(np.int64) * 1_000_000_000).astype("datetime64[ns]")
        return pd.DataFrame(cols)

    get_data = get_historical_data = copy_rates = get_rates

    def get_tick(self, symbol: str) -> dict[str, Any] | None:
        tick = self.mt5.symbol_info_tick(symbol)
        return None if tick is None else dict(tick._asdict())

    def get_symbol_info(self, symbol: str) -> dict[str, Any] | None:
        info = self.mt5.symbol_info(symbol)
        return None if info is None else dict(info._asdict())

    def get_account_info(self) -> dict[str, Any] | None:
        acc = self.mt5.account_info()
        return None if acc is None else dict(acc._asdict())

    def get_positions(self, symbol: str | None = None) -> list[dict[str, Any]]:
        got = self.mt5.positions_get(symbol=symbol) if symbol else self.mt5.positions_get()
        return [dict(p._asdict()) for p in got or ()]

    def get_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        got = self.mt5.orders_get(symbol=symbol) if symbol else self.mt5.orders_get()
        return [dict(o._asdict()) for o in got or ()]


class LegacyStrategy(Strategy):
    """Base of the adapter classes ``adapt`` makes: holds one instance of the legacy class."""

    Params: ClassVar[type[StrategyParams]] = LegacyParams
    data_format = "numpy"  # the df the host passes is only read for its last bar's time
    legacy_class: ClassVar[type]
    legacy_call: ClassVar[str]

    def __init__(
        self,
        name: str,
        params: StrategyParams,
        symbols: list[str],
        timeframe: Timeframe,
        warmup_bars: int,
        volume: float = 0.1,
    ) -> None:
        super().__init__(name, params, symbols, timeframe, warmup_bars, volume)
        self.manager = SimManager(self)
        self.legacy = self.legacy_class(**constructor_kwargs(self.legacy_class, self, params.model_dump()))

    def state_dict(self) -> dict[str, Any]:
        """The legacy instance's attributes for checkpoints (engine/checkpoint.py), its manager by
        reference: the adapter class is made at load time, so the strategy is not pickled itself."""
        buf = io.BytesIO()
        _ManagerPickler(buf, self.manager).dump(vars(self.legacy))
        return {"legacy": buf.getvalue()}

    def load_state(self, state: dict[str, Any]) -> None:
        attrs = _ManagerUnpickler(io.BytesIO(state["legacy"]), self.manager).load()
        vars(self.legacy).update(attrs)

    def generate_signals(self, symbol: str, timeframe: Timeframe, df: Any) -> list[Signal]:
        if self.legacy_call == "generate_signals":
            out = self.legacy.generate_signals(symbol)
        else:
            frame = self.manager.get_rates(symbol, timeframe, self.warmup_bars)
            if frame is None:
                return []
            out = getattr(self.legacy, self.legacy_call)(frame)
        bar = int(df["time"][-1]) if len(df) else 0
        return signals_from(out, symbol, self, bar)


class _ManagerPickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, manager: SimManager) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.manager = manager

    def persistent_id(self, obj: Any) -> str | None:
        return "manager" if obj is self.manager else None


class _ManagerUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, manager: SimManager) -> None:
        super().__init__(file)
        self.manager = manager

    def persistent_load(self, pid: Any) -> Any:
        if pid != "manager":
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        return self.manager


def adapt(cls: type, category: str | None = None) -> type[Strategy]:
    """The Strategy class running legacy class ``cls`` (named like it)."""
    call = next(c for c in CALLS if callable(getattr(cls, c, None)))
    own = getattr(cls, "category", None)
    cat: Category = category or (own if own in CATEGORIES else "technical")  # type: ignore[assignment]
    return type(
        cls.__name__,
        (LegacyStrategy,),
        {
            "legacy_class": cls,
            "legacy_call": call,
            "category": cat,
            "__module__": cls.__module__,
            "__doc__": cls.__doc__,
        },
    )


def constructor_kwargs(cls: type, owner: Strategy, params: dict[str, Any]) -> dict[str, Any]:
    """The legacy constructor's arguments, filled by name (module doc); TypeError naming what is wrong."""
    sig = inspect.signature(cls.__init__)  # type: ignore[misc]
    named = [p for p in list(sig.parameters.values())[1:] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    names = {p.name for p in named}
    extra = sorted(set(params) - names)
    if extra and not takes_any:
        raise TypeError(
            f"{cls.__name__}.__init__ takes no parameter {', '.join(map(repr, extra))} "
            f"(its parameters: {', '.join(p.name for p in named) or 'none'}); fix params:"
        )
    kwargs: dict[str, Any] = {}
    for p in named:
        if p.name in params:
            kwargs[p.name] = params[p.name]
        elif p.name in MANAGER_NAMES:
            kwargs[p.name] = owner.manager  # type: ignore[attr-defined]
        elif p.name == "symbols":
            kwargs[p.name] = list(owner.symbols)
        elif p.name == "symbol":
            kwargs[p.name] = owner.symbols[0]
        elif p.name == "timeframe":
            kwargs[p.name] = owner.timeframe.name
        elif p.name in CONFIG_NAMES:
            kwargs[p.name] = dict(params)
        elif p.default is p.empty:
            raise TypeError(
                f"{cls.__name__}.__init__ needs '{p.name}': give it under params: (filled by name: "
                f"{', '.join(MANAGER_NAMES[:3])}, symbols, symbol, timeframe, {', '.join(CONFIG_NAMES[:2])})"
            )
    if takes_any:
        kwargs.update({k: v for k, v in params.items() if k not in names})
    return kwargs


# --------------------------------------------------------------------------- dict signals -> Signal
FIELDS: dict[str, tuple[str, ...]] = {
    "direction": ("direction", "signal", "action", "type", "side"),
    "sl": ("sl", "stop_loss", "stoploss"),
    "tp": ("tp", "take_profit", "takeprofit"),
    "volume": ("volume", "lot", "lots", "lot_size"),
    "confidence": ("confidence", "strength"),
    "comment": ("comment", "reason"),
    "price": ("price", "entry_price", "entry"),
}
DIRECTIONS = {
    "buy": "buy",
    "long": "buy",
    "1": "buy",
    "sell": "sell",
    "short": "sell",
    "-1": "sell",
    "flat": "flat",
    "close": "flat",
    "exit": "flat",
}
NO_TRADE = {"hold", "none", "neutral", "wait", "0", ""}
PASSED = ("symbol", "order_type", "sl_points", "tp_points", "exit_opposite", "tags")


def _when(bar_ns: int) -> str:
    return dt.datetime.fromtimestamp(bar_ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M")


def signals_from(out: Any, symbol: str, s: Strategy, bar_ns: int) -> list[Signal]:
    """The Signals of what a legacy call returned (None, dict, Signal or a list of them)."""
    items = out if isinstance(out, list | tuple) else [out]
    got = []
    for x in items:
        sig = x if isinstance(x, Signal) or x is None else to_signal(x, symbol, s, bar_ns)
        if sig is not None:
            got.append(sig)
    return got


def _plain(v: Any) -> Any:
    """A JSON-storable tag value."""
    if isinstance(v, np.generic):
        return v.item()
    if v is None or isinstance(v, str | int | float | bool):
        return v
    return str(v)


def to_signal(d: Any, symbol: str, s: Strategy, bar_ns: int) -> Signal | None:
    """One dict signal as a Signal (None for hold/none); InvalidSignal naming the strategy, the field
    and the bar when it cannot be one."""
    where = f"strategy {s.name}: signal for bar {symbol} {s.timeframe.name} {_when(bar_ns)} UTC"
    if not isinstance(d, dict):
        raise InvalidSignal(f"not a dict: {type(d).__name__}", f"{where}: expected a dict, got {d!r:.120}")
    found = {k: next((a for a in names if a in d), None) for k, names in FIELDS.items()}
    key = found["direction"]
    if key is None:
        raise InvalidSignal(
            "dict signal: field 'direction' missing",
            f"{where}: field 'direction' missing (one of {', '.join(FIELDS['direction'])}) in {d!r:.200}",
        )
    raw = str(d[key]).strip().lower()
    if raw in NO_TRADE or d[key] is None:
        return None
    if raw not in DIRECTIONS:
        raise InvalidSignal(
            f"dict signal: field '{key}' invalid",
            f"{where}: field '{key}' is {d[key]!r}; use buy/long, sell/short, close/flat or hold/none",
        )
    fields: dict[str, Any] = {"direction": DIRECTIONS[raw], "symbol": d.get("symbol", symbol)}
    for name in ("sl", "tp", "volume", "confidence", "comment"):
        k = found[name]
        if k is not None and d[k] is not None and not (name in ("sl", "tp") and d[k] == 0):
            fields[name] = d[k]
    for k in PASSED:
        if k in d and k != "symbol":
            fields[k] = d[k]
    price_key = found["price"]
    pending = fields.get("order_type", "market") != "market"
    if price_key is not None and pending:
        fields["price"] = d[price_key]
    used = {k for k in found.values() if k is not None and (k != price_key or pending)} | set(PASSED)
    tags = {k: _plain(v) for k, v in d.items() if k not in used}
    fields["tags"] = {**tags, **(fields.get("tags") or {})}
    for name in ("sl", "tp", "volume", "confidence", "price"):
        v = fields.get(name)
        if v is not None and not (isinstance(v, int | float | np.number) and math.isfinite(float(v))):
            k = found.get(name) or name
            raise InvalidSignal(
                f"dict signal: field '{k}' invalid", f"{where}: field '{k}' is {v!r}, not a number"
            )
    try:
        return Signal(**fields)
    except ValidationError as e:
        first = e.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "signal"
        key_name = found.get(field) or field
        raise InvalidSignal(
            f"dict signal: field '{key_name}' invalid",
            f"{where}: field '{key_name}': {first['msg']} in {d!r:.200}",
        ) from None
