"""Where passes run: in this process, a local process pool (default) or a Dask cluster.

Every executor runs each task of a batch exactly once as far as the caller sees (``run`` yields one
outcome per task, in completion order) and loses none when a worker dies:
- the local pool is spawn-based (no fork of a process holding database connections or threads); a dead
  worker breaks a ``ProcessPoolExecutor`` for every pending task, so the pool is rebuilt and the passes
  that had not returned are submitted again;
- Dask's scheduler itself moves the tasks of a lost worker to the others (``distributed``'s
  ``allowed-failures``).
A pass is a pure function of its task, so re-running it elsewhere gives the same outcome.
"""

from __future__ import annotations

import logging
import multiprocessing
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from mt5tester.errors import ConfigError, Mt5TesterError
from mt5tester.optimize.trial import TrialOutcome, TrialTask, run_trial, run_trials

log = logging.getLogger(__name__)

MAX_LOST = 3  # times a pass may lose its worker before the study stops (a pass that kills every worker)


class Executor(ABC):
    name = "executor"
    workers = 1

    @abstractmethod
    def run(self, tasks: list[TrialTask]) -> Iterator[TrialOutcome]:
        """One outcome per task, in completion order."""

    def close(self) -> None:  # noqa: B027 (nothing to release by default)
        """Release the workers."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcess(Executor):
    """``--workers 1``: passes run one after the other in this process (no spawn, no pickling)."""

    name = "in-process"

    def run(self, tasks: list[TrialTask]) -> Iterator[TrialOutcome]:
        for task in tasks:
            yield run_trial(task)


class Chunks:
    """How many passes go to a worker in one task: enough for a task to last about ``TARGET_SECONDS``
    (short passes: the round trip to the worker is paid once per chunk, not per pass), never more than
    a fair share of what is left (the last tasks do not leave a worker idle), one pass while nothing has
    been timed yet and for a pass that lost its worker (a pass that kills workers is found alone).
    ``IN_FLIGHT`` tasks per worker are kept submitted, so a worker never waits for the next task."""

    TARGET_SECONDS = 0.5
    MAX = 64
    IN_FLIGHT = 2

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.seconds = 0.0
        self.timed = 0

    def observe(self, out: TrialOutcome) -> None:
        self.seconds += out.duration
        self.timed += 1

    def size(self, remaining: int) -> int:
        if not self.timed:
            return 1
        mean = max(self.seconds / self.timed, 1e-6)
        fair = -(-remaining // (self.workers * self.IN_FLIGHT))
        return max(1, min(self.MAX, round(self.TARGET_SECONDS / mean), fair))

    def take(self, todo: deque[TrialTask], retry: deque[TrialTask]) -> list[TrialTask]:
        if retry:
            return [retry.popleft()]
        return [todo.popleft() for _ in range(min(self.size(len(todo)), len(todo)))]


class LocalPool(Executor):
    name = "local pool"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self.chunks = Chunks(workers)

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def run(self, tasks: list[TrialTask]) -> Iterator[TrialOutcome]:
        lost: dict[tuple[int, str, int], int] = {}
        todo, retry = deque(tasks), deque[TrialTask]()
        flying: dict[Future[list[TrialOutcome]], list[TrialTask]] = {}
        while todo or retry or flying:
            pool = self._executor()
            while (todo or retry) and len(flying) < self.workers * self.chunks.IN_FLIGHT:
                chunk = self.chunks.take(todo, retry)
                flying[pool.submit(run_trials, chunk)] = chunk
            finished, _ = wait(flying, return_when=FIRST_COMPLETED)
            broken = False
            for f in finished:
                chunk = flying.pop(f)
                try:
                    outs = f.result()
                except BrokenProcessPool:
                    broken = True
                    retry.extend(self._lost(chunk, lost))
                    continue
                for out in outs:
                    self.chunks.observe(out)
                    yield out
            if broken:
                # every task still on the broken pool fails too: collect them, then start a new pool
                for f in list(flying):
                    chunk = flying.pop(f)
                    try:
                        outs = f.result()
                    except BrokenProcessPool:
                        retry.extend(self._lost(chunk, lost))
                        continue
                    for out in outs:
                        self.chunks.observe(out)
                        yield out
                log.warning("a worker process died: %d passes run again on a new pool", len(retry))
                pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    @staticmethod
    def _lost(chunk: list[TrialTask], lost: dict[tuple[int, str, int], int]) -> list[TrialTask]:
        for task in chunk:
            lost[task.key] = lost.get(task.key, 0) + 1
            if lost[task.key] > MAX_LOST:
                raise Mt5TesterError(
                    f"pass {task.number} (fold {task.fold}, {task.phase}) {task.params} lost its "
                    f"worker process {lost[task.key]} times; the pass itself kills it"
                ) from None
        return chunk

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DaskPool(Executor):
    """A Dask ``distributed`` cluster: the scheduler at ``address``, or a ``LocalCluster`` of ``workers``
    single-threaded worker processes (a pass holds the GIL: one per process). Passes go in chunks as on
    the local pool; each worker reads the market data from its path once (``worker_data``), nothing
    large is shipped with a task."""

    name = "dask"

    def __init__(self, address: str | None, workers: int) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError(
                "--scheduler / Dask needs the distributed package: pip install 'dask[distributed]'"
            ) from None
        self._cluster: Any = None
        if address is None:
            import dask

            # the workers' statistical profiler samples every thread's stack every 10 ms: CPU taken from
            # the passes for a dashboard nobody opens here (a user's own cluster keeps its settings).
            # Dask's nannies set MALLOC_TRIM_THRESHOLD_=65536 in their workers, which pins glibc's mmap
            # threshold at 128 kB: every array of a 1M-bar pass is then mmap'ed, page-faulted and
            # unmapped anew (a pass took 1.5x its in-process time on a lone worker); unset here.
            settings = {
                "distributed.worker.profile.enabled": False,
                "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
            }
            with dask.config.set(settings):
                self._cluster = LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
                )
            self.client = Client(self._cluster)
        else:
            try:
                self.client = Client(address, timeout=10)
            except OSError as e:
                raise ConfigError(
                    f"--scheduler {address}: no Dask scheduler answers there ({e}); start one with "
                    "`dask scheduler` and workers with `dask worker ADDRESS`"
                ) from None
        self.workers = len(self.client.scheduler_info()["workers"]) or workers
        self.chunks = Chunks(self.workers)

    def run(self, tasks: list[TrialTask]) -> Iterator[TrialOutcome]:
        from distributed import as_completed

        todo, none = deque(tasks), deque[TrialTask]()
        flying = as_completed()
        for _ in range(self.workers * self.chunks.IN_FLIGHT):
            if todo:
                flying.add(self.client.submit(run_trials, self.chunks.take(todo, none), pure=False))
        for f in flying:
            outs: list[TrialOutcome] = f.result()
            for out in outs:
                self.chunks.observe(out)
                yield out
            if todo:
                flying.add(self.client.submit(run_trials, self.chunks.take(todo, none), pure=False))

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(workers: int = 1, scheduler: str | None = None) -> Executor:
    """``scheduler``: a Dask scheduler address (tcp://HOST:PORT), or "local" for a Dask LocalCluster of
    ``workers``; without it the local process pool (in this process for one worker)."""
    if scheduler is not None:
        return DaskPool(None if scheduler == "local" else scheduler, workers)
    if workers <= 1:
        return InProcess()
    return LocalPool(workers)
