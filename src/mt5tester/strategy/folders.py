"""``strategies: [{folder: path/to/technical, category: technical}]``: every strategy class in a folder.

Each ``*.py`` file of the folder (sorted; names starting with ``_`` excluded) is imported, and every
class defined in it that is a ``Strategy`` or has the original system's shapes (strategy/legacy.py)
becomes one ``strategies:`` entry ``{class: FILE.py:Class, category: ..., params, symbols, timeframe,
volume}`` in the entry's place, named by its class. A class that other classes found there extend (a
shared base) is not an entry itself. A file that cannot be imported stops the run (exit 4), never
skipped; so does a folder without any strategy class.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from mt5tester.config import Config, StrategyConfig, StrategyFolderConfig
from mt5tester.errors import StrategyLoadError
from mt5tester.strategy.base import FusionStrategy, Strategy
from mt5tester.strategy.legacy import is_legacy
from mt5tester.strategy.loader import _import_file


def _strategy_classes(module: object) -> list[type]:
    found = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == getattr(module, "__name__", None)
        and not cls.__name__.startswith("_")
        and not inspect.isabstract(cls)
        and (is_legacy(cls) or (issubclass(cls, Strategy) and cls not in (Strategy, FusionStrategy)))
    ]
    return sorted(found, key=lambda c: inspect.getsourcelines(c)[1])


def folder_entries(entry: StrategyFolderConfig, cfg: Config, base_dir: Path) -> list[StrategyConfig]:
    """The strategies: entries one folder entry stands for (module doc)."""
    at = cfg.where("strategies", entry.position, "folder")
    folder = entry.folder if entry.folder.is_absolute() else base_dir / entry.folder
    if not folder.is_dir():
        raise StrategyLoadError(f"{at}: strategies[{entry.position}].folder: no folder {folder}")
    classes: list[tuple[Path, type]] = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = _import_file(path.resolve(), f"in folder {entry.folder} ({path.name})")
        classes += [(path.resolve(), cls) for cls in _strategy_classes(module)]
    bases = {b for _, cls in classes for b in cls.__mro__[1:]}
    picked = [(p, cls) for p, cls in classes if cls not in bases]
    if not picked:
        raise StrategyLoadError(
            f"{at}: strategies[{entry.position}].folder {folder}: no strategy class in its *.py files "
            "(a Strategy subclass, or a class with generate_signals(symbol), generate_signal(df) or "
            "analyze(df))"
        )
    return [
        StrategyConfig.model_validate(
            {
                "class": f"{p}:{cls.__name__}",
                "name": cls.__name__,
                "category": entry.category,
                "params": entry.params,
                "symbols": entry.symbols,
                "timeframe": entry.timeframe,
                "volume": entry.volume,
            }
        )
        for p, cls in picked
    ]


def expand_folders(cfg: Config, base_dir: Path) -> Config:
    """The config with every folder entry replaced, in place, by the strategies it holds."""
    if not cfg.strategy_folders:
        return cfg
    at = {f.position: f for f in cfg.strategy_folders}
    plain = iter(cfg.strategies)
    out: list[StrategyConfig] = []
    for i in range(len(cfg.strategies) + len(cfg.strategy_folders)):
        out += folder_entries(at[i], cfg, base_dir) if i in at else [next(plain)]
    return cfg.model_copy(update={"strategies": out, "strategy_folders": []})
