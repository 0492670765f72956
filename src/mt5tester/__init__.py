"""mt5tester: a MetaTrader 5 faithful backtester.

The Python API (README "Python API")::

    import mt5tester
    result = mt5tester.run("config.yaml")
    result.deals, result.metrics
    mt5tester.load_run(result.run_id)

Names are imported on first use (``__getattr__``), so ``import mt5tester`` (and ``mt5tester --help``)
stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "run": "mt5tester.engine.run",
    "load_run": "mt5tester.engine.run",
    "RunResult": "mt5tester.engine.run",
    "load_data": "mt5tester.engine.dataset",
    "Dataset": "mt5tester.engine.dataset",
    "MemorySink": "mt5tester.results.memory",
    "Config": "mt5tester.config",
    "load_config": "mt5tester.config",
    "Strategy": "mt5tester.strategy.base",
    "Signal": "mt5tester.model.signal",
    "Mt5TesterError": "mt5tester.errors",
    "ConfigError": "mt5tester.errors",
    "DataError": "mt5tester.errors",
    "StrategyLoadError": "mt5tester.errors",
    "StrategyRuntimeError": "mt5tester.errors",
    "LookaheadFound": "mt5tester.errors",
    "StorageError": "mt5tester.errors",
}
__all__ = [
    "Config",
    "ConfigError",
    "DataError",
    "Dataset",
    "LookaheadFound",
    "MemorySink",
    "Mt5TesterError",
    "RunResult",
    "Signal",
    "StorageError",
    "Strategy",
    "StrategyLoadError",
    "StrategyRuntimeError",
    "__version__",
    "load_config",
    "load_data",
    "load_run",
    "run",
]

if TYPE_CHECKING:
    from mt5tester.config import Config, load_config
    from mt5tester.engine.dataset import Dataset, load_data
    from mt5tester.engine.run import RunResult, load_run, run
    from mt5tester.errors import (
        ConfigError,
        DataError,
        LookaheadFound,
        Mt5TesterError,
        StorageError,
        StrategyLoadError,
        StrategyRuntimeError,
    )
    from mt5tester.model.signal import Signal
    from mt5tester.results.memory import MemorySink
    from mt5tester.strategy.base import Strategy


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mt5tester' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
