"""Where a run's records go: the calls the loop and checkpoints make (start_run, add, flush, finish).

Two implementations: ``results.recorder.Recorder`` (SQL, the default, durable and resumable: columnar
buffers written in bulk) and ``results.memory.MemorySink`` (lists in memory, for tests and optimizer
trials). Both also take many rows at once column by column (``add_columns(table, {column: array})``,
e.g. the deals of a compiled driver); it is not part of the protocol, so a sink without it (a
metrics-only one) still is a Sink.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Table


class Sink(Protocol):
    run_id: str

    def start_run(
        self,
        config: dict[str, Any],
        config_hash: str,
        seed: int,
        deposit: float,
        currency: str,
        strategies: list[dict[str, Any]],
        health: list[dict[str, Any]] | None = None,
        then: Callable[[Any], object] | None = None,
    ) -> None: ...

    def add(self, table: Table, row: dict[str, Any]) -> None: ...

    def add_columns(self, table: Table, columns: Mapping[str, Sequence[Any]]) -> None:
        """Many rows at once, as equal-length columns (the compiled kernel's deals, signals, equity)."""
        ...

    def flush(self, then: Callable[[Any], object] | None = None) -> None: ...

    def finish(
        self,
        status: str,
        funnel: dict[str, Any] | None,
        error: str | None,
        timings: dict[str, float] | None = None,
    ) -> None: ...


def keeps(sink: object, table: str) -> bool:
    """Whether ``sink`` keeps the rows of ``table``. A sink that keeps only some tables (the optimizer's
    ``MetricsSink``) names them in ``kept_tables``, so the engine skips building rows that would be
    dropped (a run's orders and positions, its data-health fingerprints); by default every table."""
    kept = getattr(sink, "kept_tables", None)
    return kept is None or table in kept


def fingerprints(sink: object) -> bool:
    """Whether the run's data-health reports carry the bars' fingerprints (sha256 of every array the run
    read, ~0.03 s per 1M M1 bars). A stored run's do: they tell two stored runs that saw the same data
    apart from two that did not. A sink that keeps the run only in this process, beside the very bars,
    says ``fingerprints = False`` (``MemorySink``'s default, ``MemorySink(fingerprints=True)`` asks)."""
    return bool(getattr(sink, "fingerprints", True))
