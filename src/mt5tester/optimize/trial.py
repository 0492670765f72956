"""One optimizer pass, as a function a worker process runs: ``run_trial(task) -> TrialOutcome``.

The task carries the config and the params, never market data: each worker process reads the data once
(``worker_data``: memory-mapped Parquet through engine/dataset.py) and keeps it for every later pass that
reads the same source. Runs go through ``mt5tester.run()`` with a ``MetricsSink`` (no database, one row
of results per pass).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mt5tester.config import Config
from mt5tester.engine.dataset import Dataset, data_source, history_window, load_data
from mt5tester.optimize.apply import apply_params
from mt5tester.results.studies import clean
from mt5tester.results.trial_sink import MetricsSink


@dataclass(frozen=True)
class TrialTask:
    fold: int
    phase: str  # "is" (the search), "forward" or "oos"
    number: int  # the search's ask order in the fold (the in-sample pass's number for forward/oos)
    params: dict[str, Any]
    config: Config  # the study's config over this pass's window
    data_config: Config  # the study's config over its whole range: what a worker preloads
    base_dir: str

    @property
    def key(self) -> tuple[int, str, int]:
        return (self.fold, self.phase, self.number)


@dataclass(frozen=True)
class TrialOutcome:
    fold: int
    phase: str
    number: int
    params: dict[str, Any]
    metrics: dict[str, Any]  # Mt5Metrics.to_dict(), JSON-safe (non-finite values are None)
    seed: int
    duration: float
    worker: str
    curve: list[list[float]]
    trade_pnl: list[float]

    @property
    def key(self) -> tuple[int, str, int]:
        return (self.fold, self.phase, self.number)


# Per-process cache of market data (source, window, mode, symbols) -> Dataset. This is the "load once per
# worker" of issue 15: module state on purpose, read-only after the load, never shipped between processes.
_DATA: dict[tuple[Any, ...], Dataset] = {}


def worker_data(cfg: Config) -> Dataset:
    key = (data_source(cfg), history_window(cfg), cfg.backtest.tester_mode, tuple(cfg.backtest.symbols))
    data = _DATA.get(key)
    if data is None:
        data = _DATA[key] = load_data(cfg)
    return data


_CONTROLLER: list[Any] = []  # the process's threadpoolctl controller (its library scan costs ~8 ms)


def _blas() -> Any:
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_trial(task: TrialTask) -> TrialOutcome:
    from mt5tester.engine.run import run

    t0 = time.perf_counter()
    cfg = apply_params(task.config, task.params)
    sink = MetricsSink()
    # One BLAS thread, whatever runs the pass: a multi-threaded BLAS sums in another order (the
    # regression metrics of a 1M-bar run differed in their last digits between this process and a Dask
    # worker, which limits its threads), and a pass per core is how the optimizer uses the machine.
    with _blas().limit(limits=1):
        result = run(cfg, data=worker_data(task.data_config), sink=sink, base_dir=Path(task.base_dir))
        # from the sink's columns: the values of result.metrics without a row dict per deal
        metrics = clean(sink.metrics(result.deposit, result.funnel.get("margin_level_min")).to_dict())
    return TrialOutcome(
        fold=task.fold,
        phase=task.phase,
        number=task.number,
        params=dict(task.params),
        metrics=metrics,
        seed=cfg.backtest.seed,
        duration=round(time.perf_counter() - t0, 6),
        worker=worker_name(),
        curve=sink.curve(cfg.backtest.initial_deposit),
        trade_pnl=sink.trade_pnl(),
    )


def run_trials(tasks: list[TrialTask]) -> list[TrialOutcome]:
    """Several passes in one call: what an executor ships to a worker when passes are short (the
    round trip of a task, ~1-5 ms on a local pool and more on Dask, would be a large share of a pass)."""
    return [run_trial(t) for t in tasks]
