"""How executors cut a batch of passes into worker tasks (``Chunks``): one pass until passes are timed,
then about TARGET_SECONDS of passes per task, never more than a fair share of what is left, and a pass
that lost its worker alone."""

from __future__ import annotations

from collections import deque
from typing import Any

from mt5tester.optimize.executors import Chunks
from mt5tester.optimize.trial import TrialOutcome


def _outcome(duration: float) -> TrialOutcome:
    return TrialOutcome(0, "is", 0, {}, {}, 0, duration, "w", [], [])


def test_chunks_one_pass_until_a_pass_is_timed() -> None:
    chunks = Chunks(workers=2)

    assert chunks.size(remaining=1000) == 1


def test_chunks_about_half_a_second_of_passes_capped_by_fair_share_and_max() -> None:
    chunks = Chunks(workers=2)
    for d in (0.04, 0.06):  # mean 0.05 s: 10 passes make 0.5 s
        chunks.observe(_outcome(d))

    assert chunks.size(remaining=1000) == 10
    assert chunks.size(remaining=20) == 5  # 20 left over 2 workers x 2 tasks in flight
    assert chunks.size(remaining=1) == 1
    instant = Chunks(workers=2)
    instant.observe(_outcome(0.0))  # passes that take no measurable time: the MAX
    assert instant.size(remaining=10**6) == Chunks.MAX


def test_chunks_long_passes_go_one_by_one_and_lost_passes_first_alone() -> None:
    chunks = Chunks(workers=2)
    chunks.observe(_outcome(1.5))
    todo: deque[Any] = deque(range(10))
    retry: deque[Any] = deque(["lost"])

    assert chunks.take(todo, retry) == ["lost"]
    assert chunks.take(todo, retry) == [0]
    assert list(todo) == list(range(1, 10))


def test_local_dask_cluster_workers_keep_glibc_s_own_malloc_thresholds() -> None:
    """Dask's nannies set MALLOC_TRIM_THRESHOLD_=65536 in their workers, which pins glibc's mmap threshold:
    every large array of a pass is mmap'ed and page-faulted anew (a pass took 1.5x its in-process time).
    The LocalCluster the optimizer starts unsets it; the rest of the workers' settings stay Dask's."""
    import os

    from mt5tester.optimize.executors import DaskPool

    pool = DaskPool(None, 1)
    try:
        env = pool.client.submit(lambda: dict(os.environ), pure=False).result(timeout=60)
    finally:
        pool.close()
    assert "MALLOC_TRIM_THRESHOLD_" not in env
    assert env.get("OMP_NUM_THREADS") == "1"  # Dask's other pre-spawn settings are kept
