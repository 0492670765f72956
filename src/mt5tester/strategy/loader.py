"""Eager strategy loading: every configured strategy is imported and built before bar 1.

A spec is a built-in short name (``ma_cross``), ``package.module:ClassName`` or
``path/to/file.py:ClassName`` (relative to the config file's folder). Any failure raises
StrategyLoadError naming the strategy, the source and the cause; zero strategies is a failure.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from mt5tester.config import BacktestConfig, Config, StrategyConfig, value_hint
from mt5tester.errors import ConfigError, StrategyLoadError, did_you_mean
from mt5tester.model import limits
from mt5tester.strategy.base import FusionStrategy, Strategy
from mt5tester.strategy.legacy import adapt, is_legacy

BUILTINS: dict[str, str] = {
    "ma_cross": "mt5tester.strategy.library.technical:MovingAverageCross",
    "rsi_reversion": "mt5tester.strategy.library.technical:RsiMeanReversion",
    "bollinger_breakout": "mt5tester.strategy.library.technical:BollingerKeltnerBreakout",
    "donchian_trend": "mt5tester.strategy.library.technical:DonchianAtrTrend",
    "macd_cross": "mt5tester.strategy.library.technical:Macd",
    "htf_trend_filter": "mt5tester.strategy.library.technical:HigherTimeframeTrendFilter",
    "weighted_vote": "mt5tester.strategy.library.fusion:WeightedVote",
    "ml_walkforward": "mt5tester.strategy.library.ml:WalkForwardClassifier",
    "smc_structure": "mt5tester.strategy.library.smc:MarketStructure",
    "smc_order_block": "mt5tester.strategy.library.smc:OrderBlockRetest",
    "smc_fvg": "mt5tester.strategy.library.smc:FairValueGap",
    "smc_sweep": "mt5tester.strategy.library.smc:LiquiditySweep",
}


@dataclass(frozen=True)
class LoadedStrategy:
    strategy: Strategy
    spec: str
    source_file: str
    source_hash: str


ENTRY_POINT_GROUP = "mt5tester.strategies"


@functools.lru_cache(maxsize=8)
def _scan_plugins(path: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The entry points found on ``path`` (sys.path: the scan reads its distributions)."""
    return tuple((ep.name, ep.value) for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def plugin_targets() -> dict[str, str]:
    """Installed plug-ins: entry points of group ``mt5tester.strategies`` (name -> 'module:Class').

    The installed distributions are scanned once per ``sys.path`` (~15 ms, paid by every run otherwise:
    an optimizer worker builds its strategies once per pass); a plug-in installed into a folder already
    on the path while a process runs is seen by the next process."""
    return dict(_scan_plugins(tuple(sys.path)))


def _import_file(path: Path, label: str) -> object:
    if not path.is_file():
        raise StrategyLoadError(f"strategy {label}: file not found: {path}")
    mod_name = "mt5tester_user_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise StrategyLoadError(f"strategy {label}: cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(mod_name, None)
        raise StrategyLoadError(
            f"strategy {label}: importing {path} raised {type(e).__name__}: {e}\n{_tail(e)}"
        ) from e
    return module


def _tail(e: BaseException) -> str:
    return "".join(traceback.format_exception(type(e), e, e.__traceback__)[-3:]).rstrip()


def resolve_class(spec: str, base_dir: Path, label: str) -> tuple[type[Strategy], str]:
    """Import the class named by ``spec``; return it with its source file."""
    target = BUILTINS.get(spec) or plugin_targets().get(spec, spec)
    if ":" not in target:
        known = ", ".join(sorted(BUILTINS))
        plugins = ", ".join(sorted(plugin_targets())) or "none installed"
        hint = did_you_mean(spec, [*BUILTINS, *plugin_targets()])
        raise StrategyLoadError(
            f"strategy {label}: class '{spec}' is neither a built-in ({known}), an installed plug-in "
            f"(entry points '{ENTRY_POINT_GROUP}': {plugins}) nor 'module:Class' nor 'file.py:Class'{hint}"
        )
    where, cls_name = target.rsplit(":", 1)
    if where.endswith(".py"):
        path = Path(where)
        module = _import_file(path if path.is_absolute() else base_dir / path, label)
    else:
        try:
            module = importlib.import_module(where)
        except Exception as e:
            raise StrategyLoadError(
                f"strategy {label}: cannot import module '{where}': {type(e).__name__}: {e}"
            ) from e
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise StrategyLoadError(f"strategy {label}: module '{where}' has no class '{cls_name}'")
    if is_legacy(cls):  # the original system's shapes, run as they are (strategy/legacy.py)
        return adapt(cls), inspect.getsourcefile(cls) or where
    if not (inspect.isclass(cls) and issubclass(cls, Strategy)):
        raise StrategyLoadError(
            f"strategy {label}: '{target}' is neither a subclass of mt5tester Strategy nor a class with "
            "generate_signals(symbol), generate_signal(df) or analyze(df) (the original system's shapes)"
        )
    return cls, inspect.getsourcefile(cls) or where


def identify(sc: StrategyConfig, cfg: Config, base_dir: Path, index: int) -> tuple[str, str]:
    """The name and category strategy entry ``index`` will have (its class is imported)."""
    label = f"#{index + 1} '{sc.name or sc.class_}'"
    try:
        cls, _ = resolve_class(sc.class_, base_dir, label)
    except StrategyLoadError as e:
        raise StrategyLoadError(f"{cfg.where('strategies', index, 'class')}: {e}") from e
    return sc.name or cls.__name__, sc.category or cls.category


def _file_hash(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return ""


def _params_error(
    err: ValidationError, cls: type[Strategy], sc: StrategyConfig, cfg: Config, index: int, label: str
) -> str:
    """The bad params at the first one's line, a "did you mean" for a misspelt name or value, and the
    valid params (or that there are none)."""
    fields = list(cls.Params.model_fields)
    errors = err.errors()
    bad = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}{value_hint(x)}" for x in errors)
    names = [str(x["loc"][0]) for x in errors if x["type"] == "extra_forbidden" and len(x["loc"]) == 1]
    hints = "".join(did_you_mean(n, fields)[:-1] + f" for '{n}'?" for n in names if did_you_mean(n, fields))
    valid = (
        f"Valid params: {', '.join(fields)}" if fields else "This strategy takes no params: remove 'params:'"
    )
    where = cfg.where("strategies", index, "params", *errors[0]["loc"])
    return f"{where}: strategy {label} ({sc.class_}): bad params: {bad}. {valid}{hints}"


def build_strategy(sc: StrategyConfig, cfg: Config, base_dir: Path, index: int) -> LoadedStrategy:
    label = f"#{index + 1} '{sc.name or sc.class_}'"
    try:
        cls, source = resolve_class(sc.class_, base_dir, label)
    except StrategyLoadError as e:
        raise StrategyLoadError(f"{cfg.where('strategies', index, 'class')}: {e}") from e
    try:
        params = cls.Params.model_validate(sc.params)
    except ValidationError as e:
        raise StrategyLoadError(_params_error(e, cls, sc, cfg, index, label)) from None
    name = sc.name or cls.__name__
    # the results database holds names and paths of bounded length (model/limits.py): refused before bar 1
    if len(name) > limits.STRATEGY_NAME:
        raise StrategyLoadError(
            f"strategy {label}: its name {name[:40]!r}... has {len(name)} characters, more than the "
            f"{limits.STRATEGY_NAME} the results database stores; set a shorter 'name:'"
        )
    if len(source) > limits.SOURCE_FILE:
        raise StrategyLoadError(
            f"strategy {label}: its source path has {len(source)} characters, more than the "
            f"{limits.SOURCE_FILE} the results database stores; move the file to a shorter path"
        )
    symbols = sc.symbols or list(cfg.backtest.symbols)
    _check_known(symbols, cfg, label)
    tf = sc.timeframe or cfg.backtest.primary_timeframe
    try:
        strategy = cls(name, params, symbols, tf, cfg.backtest.warmup_bars, sc.volume)
    except Exception as e:
        raise StrategyLoadError(
            f"strategy {label} ({sc.class_}): constructor raised {type(e).__name__}: {e}\n{_tail(e)}"
        ) from e
    if sc.category is not None:
        strategy.__dict__["category"] = sc.category  # the config's (a strategy folder's) category wins
    return LoadedStrategy(strategy, sc.class_, source, _file_hash(source))


def _check_known(symbols: list[str], cfg: Config, label: str) -> None:
    known = set(cfg.backtest.symbols)  # a set: configs may define thousands of symbols
    unknown = [s for s in symbols if s not in known]
    if unknown:
        raise StrategyLoadError(
            f"strategy {label}: symbols {unknown} are not in backtest.symbols {cfg.backtest.symbols}"
        )


def narrow_symbols(cfg: Config, symbols: list[str]) -> Config:
    """``--symbols``: backtest.symbols becomes ``symbols`` and a strategy that lists its own symbols
    keeps those also in ``symbols``; a strategy left with none is a StrategyLoadError naming it."""
    try:
        backtest = BacktestConfig.model_validate(cfg.backtest.model_dump() | {"symbols": symbols})
    except ValidationError as e:
        raise ConfigError("--symbols: " + "; ".join(x["msg"] for x in e.errors())) from None
    strategies = []
    for i, sc in enumerate(cfg.strategies):
        if sc.symbols is not None:
            label = f"#{i + 1} '{sc.name or sc.class_}'"
            _check_known(sc.symbols, cfg, label)  # the config as written must be valid first
            keep = [s for s in sc.symbols if s in backtest.symbols]
            if not keep:
                raise StrategyLoadError(
                    f"strategy {label}: none of its symbols {sc.symbols} is in --symbols "
                    f"{backtest.symbols}; add one of them to --symbols or remove the strategy from the config"
                )
            sc = sc.model_copy(update={"symbols": keep})
        strategies.append(sc)
    folders = []
    for f in cfg.strategy_folders:  # a folder entry's own symbols narrow the same way
        if f.symbols is not None:
            keep = [s for s in f.symbols if s in backtest.symbols]
            if not keep:
                raise StrategyLoadError(
                    f"strategy folder {f.folder}: none of its symbols {f.symbols} is in --symbols "
                    f"{backtest.symbols}; add one of them to --symbols or remove the folder from the config"
                )
            f = f.model_copy(update={"symbols": keep})
        folders.append(f)
    return cfg.model_copy(
        update={"backtest": backtest, "strategies": strategies, "strategy_folders": folders}
    )


def load_strategies(cfg: Config, base_dir: Path) -> list[LoadedStrategy]:
    if not cfg.strategies:
        raise StrategyLoadError(
            "no strategies configured: add at least one entry under 'strategies:' "
            f"(built-ins: {', '.join(sorted(BUILTINS))})"
        )
    loaded = [build_strategy(sc, cfg, base_dir, i) for i, sc in enumerate(cfg.strategies)]
    names = [ls.strategy.name for ls in loaded]
    dupes = sorted(n for n, k in collections.Counter(names).items() if k > 1)
    if dupes:
        raise StrategyLoadError(f"strategy names must be unique; repeated: {', '.join(dupes)} (set 'name:')")
    check_fusion(loaded, cfg)
    have = {ls.strategy.category for ls in loaded}
    empty = [c for c in cfg.portfolio.categories if c not in have]
    if empty:
        raise StrategyLoadError(
            f"portfolio.categories lists {empty} but no configured strategy is in them "
            f"(loaded categories: {sorted(have)}); add one or remove the category"
        )
    return loaded


def check_fusion(loaded: list[LoadedStrategy], cfg: Config) -> None:
    """Fusion members exist, share the fusion's timeframe and symbols, and are `trade: false`;
    every `trade: false` strategy feeds some fusion strategy (else it would silently never trade)."""
    by_name = {ls.strategy.name: (ls, sc) for ls, sc in zip(loaded, cfg.strategies, strict=True)}
    fed: set[str] = set()
    for ls, _ in by_name.values():
        f = ls.strategy
        if not isinstance(f, FusionStrategy):
            continue
        for m in f.members:
            if m not in by_name:
                raise StrategyLoadError(
                    f"fusion strategy {f.name}: member '{m}' is not a configured strategy "
                    f"(configured: {', '.join(sorted(by_name))})"
                )
            member, msc = by_name[m]
            if msc.trade:
                raise StrategyLoadError(
                    f"fusion strategy {f.name}: member '{m}' must be configured with "
                    "trade: false (its signals are combined, not traded alone)"
                )
            if member.strategy.timeframe != f.timeframe:
                raise StrategyLoadError(
                    f"fusion strategy {f.name} ({f.timeframe.name}): member '{m}' runs on "
                    f"{member.strategy.timeframe.name}; give them the same timeframe"
                )
            missing = sorted(set(f.symbols) - set(member.strategy.symbols))
            if missing:
                raise StrategyLoadError(f"fusion strategy {f.name}: member '{m}' does not trade {missing}")
            fed.add(m)
    idle = sorted(n for n, (_, sc) in by_name.items() if not sc.trade and n not in fed)
    if idle:
        raise StrategyLoadError(
            f"strategies {idle} have trade: false but no fusion strategy lists them as "
            "members: they would never trade"
        )
