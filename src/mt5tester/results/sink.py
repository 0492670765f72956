"""Where a run's records go: the calls the loop and checkpoints make (start_run, add, flush, finish).

Two implementations: ``results.recorder.Recorder`` (SQL, the default, durable and resumable: columnar
buffers written in bulk) and ``results.memory.MemorySink`` (lists in memory, for tests and optimizer
trials). Both also take many rows at once column by column (``add_columns(table, {column: array})``,
e.g. the deals of a compiled driver); it is not part of the protocol, so a sink without it (a
metrics-only one) still is a Sink.
"""

from __future__ import annotations

from collections.abc import Callable
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

    def flush(self, then: Callable[[Any], object] | None = None) -> None: ...

    def finish(
        self,
        status: str,
        funnel: dict[str, Any] | None,
        error: str | None,
        timings: dict[str, float] | None = None,
    ) -> None: ...
