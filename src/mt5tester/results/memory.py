"""An in-memory sink: the Recorder's interface, keeping a run's rows in lists instead of a database.

For tests and optimizer trials: no database, no I/O, and the rows pickle with the result. The rows
are the very dicts the Recorder would insert (same tables, same columns), so the DataFrames built from
them equal the ones read back from SQL. Rows given as columns (``add_columns``: a compiled driver's
deals, orders, signals) are kept as those columns: the row dicts are built only when ``rows`` asks for
them, and ``column`` reads one column without building any (the run's funnel counts over columns).
Nothing here is durable: ``then`` callbacks (checkpoint rows joined to a transaction) have no database
to run in and are skipped, so a memory run cannot be resumed; its data-health reports leave out the
bars' fingerprints unless ``fingerprints=True`` (they identify the data of a stored run).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from typing import Any

from sqlalchemy import Table

from mt5tester import __version__
from mt5tester.model.columns import Chained, Const


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class MemorySink:
    def __init__(self, run_id: str = "", fingerprints: bool = False) -> None:
        self.run_id = run_id  # set by run() (or the caller) before start_run
        # the data-health reports without the bars' sha256 unless asked (results.sink.fingerprints)
        self.fingerprints = fingerprints
        self.run: dict[str, Any] = {}  # the runs-table row
        # table name -> its parts in insertion order: lists of row dicts and blocks of columns
        self._parts: dict[str, list[_Part]] = {}

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
        self._parts["run_strategies"] = [[{"run_id": self.run_id, **s} for s in strategies]]
        self._parts["data_health"] = [[{"run_id": self.run_id, **h} for h in health or []]]

    def add(self, table: Table, row: dict[str, Any]) -> None:
        row["run_id"] = self.run_id
        parts = self._parts.setdefault(table.name, [])
        if not parts or not isinstance(parts[-1], list):
            parts.append([])
        last = parts[-1]
        assert isinstance(last, list)
        last.append(row)

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
        if n:
            self._parts.setdefault(table.name, []).append(_Block(names, dict(columns), n))

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
        """The table's rows as dicts, in insertion order (column blocks are turned into rows once)."""
        parts = self._parts.get(table)
        if not parts:
            return []
        if len(parts) > 1 or isinstance(parts[0], _Block):
            rows: list[dict[str, Any]] = []
            for part in parts:
                rows.extend(part.rows(self.run_id) if isinstance(part, _Block) else part)
            self._parts[table] = [rows]
        first = self._parts[table][0]
        assert isinstance(first, list)
        return first

    def column(self, table: str, name: str) -> list[Any]:
        """One column of the table over all its rows, in insertion order, without building the rows."""
        out: list[Any] = []
        for part in self._parts.get(table, []):
            out.extend(part.column(name) if isinstance(part, _Block) else [r.get(name) for r in part])
        return out

    def form(self, table: str, name: str) -> Sequence[Any]:
        """One column of the table as its blocks hold it (arrays and column forms, chained; a list for
        rows added one by one): what the funnel counts over, no Python value per row built."""
        parts = [
            part.form(name) if isinstance(part, _Block) else [r.get(name) for r in part]
            for part in self._parts.get(table, [])
        ]
        return parts[0] if len(parts) == 1 else Chained(parts)

    def count(self, table: str) -> int:
        return sum(p.n if isinstance(p, _Block) else len(p) for p in self._parts.get(table, []))

    @property
    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """Every table's rows (built from the column blocks on first use)."""
        return {name: self.rows(name) for name in list(self._parts)}


class _Block:
    """Rows given column by column: the columns as given (arrays or lists), the table's columns absent
    from them are None. Values come out as Python values (``tolist``), as a row-wise ``add`` holds them."""

    def __init__(self, names: list[str], columns: dict[str, Sequence[Any]], n: int) -> None:
        self.names, self.columns, self.n = names, columns, n

    def form(self, name: str) -> Sequence[Any]:
        v = self.columns.get(name)
        return Const(None, self.n) if v is None else v

    def column(self, name: str) -> list[Any]:
        v = self.columns.get(name)
        if v is None:
            return [None] * self.n
        return v.tolist() if hasattr(v, "tolist") else list(v)

    def rows(self, run_id: str) -> list[dict[str, Any]]:
        cols = [self.column(k) for k in self.names] + [list(repeat(run_id, self.n))]
        keys = [*self.names, "run_id"]
        return [dict(zip(keys, values, strict=True)) for values in zip(*cols, strict=True)]


_Part = list[dict[str, Any]] | _Block
