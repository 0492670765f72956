"""An in-memory sink: the Recorder's interface, keeping a run's rows in lists instead of a database.

For tests and optimizer trials: no database, no I/O, and the rows pickle with the result. The rows
are the very dicts the Recorder would insert (same tables, same columns), so the DataFrames built from
them equal the ones read back from SQL. Nothing here is durable: ``then`` callbacks (checkpoint rows
joined to a transaction) have no database to run in and are skipped, so a memory run cannot be resumed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table

from mt5tester import __version__


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class MemorySink:
    def __init__(self, run_id: str = "") -> None:
        self.run_id = run_id  # set by run() (or the caller) before start_run
        self.run: dict[str, Any] = {}  # the runs-table row
        self.tables: dict[str, list[dict[str, Any]]] = {}  # table name -> rows, in insertion order

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
    ) -> None:
        self.run = {
            "run_id": self.run_id,
            "status": "running",
            "started_at": _now(),
            "finished_at": None,
            "config": config,
            "config_hash": config_hash,
            "package_version": __version__,
            "seed": seed,
            "deposit": deposit,
            "currency": currency,
            "funnel": None,
            "error": None,
            "timings": None,
        }
        self.tables["run_strategies"] = [{"run_id": self.run_id, **s} for s in strategies]
        self.tables["data_health"] = [{"run_id": self.run_id, **h} for h in health or []]

    def add(self, table: Table, row: dict[str, Any]) -> None:
        row["run_id"] = self.run_id
        self.tables.setdefault(table.name, []).append(row)

    def add_columns(self, table: Table, columns: Mapping[str, Sequence[Any]]) -> None:
        """Many rows given column by column (the Recorder's ``add_columns``): kept as the same row dicts,
        numpy values as Python values, columns not given as None."""
        names = [c.name for c in table.columns if c.name != "run_id"]
        unknown = sorted(set(columns) - set(names))
        if unknown:
            raise ValueError(f"{table.name} has no column {', '.join(unknown)}")
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"{table.name}: columns of different lengths {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        plain = {k: v.tolist() if hasattr(v, "tolist") else list(v) for k, v in columns.items()}
        for i in range(n):
            self.add(table, {k: plain[k][i] if k in plain else None for k in names})

    def flush(self, then: Callable[[Any], object] | None = None) -> None:
        """Nothing to write; ``then`` (a checkpoint insert) needs a database and is skipped."""

    def finish(
        self,
        status: str,
        funnel: dict[str, Any] | None,
        error: str | None,
        timings: dict[str, float] | None = None,
    ) -> None:
        self.run.update(status=status, funnel=funnel, error=error, timings=timings, finished_at=_now())

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.tables.get(table, [])
