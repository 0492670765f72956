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
