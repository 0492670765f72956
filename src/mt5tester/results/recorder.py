"""Batched writer of a run's rows: appended to buffers, flushed in one transaction per batch.

Rows reach the database every ``batch_rows`` rows (bounded memory) and with each checkpoint. A write
that fails (disk full, server gone, timeout) raises StorageError (exit 6) and the recorder stays failed:
later writes raise that error again, and ``finish`` marks the run failed with it, so the run keeps what
was written and can be resumed from its last checkpoint.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Engine, Table, insert, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from mt5tester import __version__
from mt5tester.errors import ConfigError, StorageError
from mt5tester.results import db

log = logging.getLogger(__name__)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _json_columns(table: Table) -> frozenset[str]:
    return frozenset(c.name for c in table.columns if isinstance(c.type, JSON))


# Buffered tables in insert order; their JSON columns are serialised here as SQLAlchemy's JSON type does
# (json.dumps, None as JSON null), so every table goes straight to the driver's executemany (about 3x
# faster than the Core insert on the big tables).
TABLE_ORDER = ("signals", "deals", "equity", "strategy_errors", "orders", "positions", "daily_equity")
JSON_COLUMNS = {name: _json_columns(db.metadata.tables[name]) for name in TABLE_ORDER}


def _insert_sql(dialect: Any, table: str, keys: list[str]) -> str:
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    columns = ", ".join(quote(k) for k in keys)
    return f"INSERT INTO {quote(table)} ({columns}) VALUES ({', '.join([mark] * len(keys))})"


def check_lengths(table: Table, row: dict[str, Any]) -> None:
    """Refuse text longer than its column: PostgreSQL would refuse it, SQLite would store it silently."""
    for column in table.columns:
        limit = getattr(column.type, "length", None)
        value = row.get(column.name)
        if limit and isinstance(value, str) and len(value) > limit:
            raise ConfigError(
                f"{table.name}.{column.name} {value[:40]!r}... has {len(value)} characters; the results "
                f"database stores at most {limit}. Shorten it in the config."
            )


class Recorder:
    def __init__(self, engine: Engine, run_id: str, batch_rows: int = 5000, resumable: bool = False) -> None:
        self.engine = engine
        self.run_id = run_id
        self.batch_rows = batch_rows
        self.resumable = resumable  # the run has checkpoints: a failed write says how to resume it
        self._buffers: dict[str, list[dict[str, Any]]] = {}
        self._pending = 0
        self.failure: StorageError | None = None  # the write that failed; no write is tried after it

    @contextmanager
    def _transaction(self, what: str, started: bool = True) -> Iterator[Connection]:
        """One transaction; a database error in it is the recorder's StorageError from then on."""
        if self.failure is not None:
            raise self.failure
        fix = "Free space on its disk or fix the database, then " + (
            f"continue the run from its last checkpoint: mt5tester backtest --resume {self.run_id} "
            "--config FILE (or --db URL)"
            if started and self.resumable
            else "run it again"
        )
        try:
            with (
                db.storage_errors(self.engine, f"{what} of run {self.run_id}", fix),
                self.engine.begin() as c,
            ):
                yield c
        except StorageError as e:
            self.failure = e
            raise

    def start_run(
        self,
        config: dict[str, Any],
        config_hash: str,
        seed: int,
        deposit: float,
        currency: str,
        strategies: list[dict[str, Any]],
        health: list[dict[str, Any]] | None = None,
        then: Callable[[Connection], object] | None = None,
    ) -> None:
        """Store the run as ``running`` with its strategies and data health (and ``then``'s statements)
        in one transaction."""
        run = {
            "run_id": self.run_id,
            "status": "running",
            "started_at": _now(),
            "config": config,
            "config_hash": config_hash,
            "package_version": __version__,
            "seed": seed,
            "deposit": deposit,
            "currency": currency,
        }
        strategies = [{"run_id": self.run_id, **s} for s in strategies]
        health = [{"run_id": self.run_id, **h} for h in health or []]
        for table, rows in ((db.runs, [run]), (db.run_strategies, strategies), (db.data_health, health)):
            for row in rows:
                check_lengths(table, row)
        with self._transaction("writing the start", started=False) as conn:
            conn.execute(insert(db.runs).values(**run))
            if strategies:
                conn.execute(insert(db.run_strategies), strategies)
            if health:
                conn.execute(insert(db.data_health), health)
            if then is not None:
                then(conn)

    def add(self, table: Table, row: dict[str, Any]) -> None:
        row["run_id"] = self.run_id
        self._buffers.setdefault(table.name, []).append(row)
        self._pending += 1
        if self._pending >= self.batch_rows and self.failure is None:
            self.flush()

    def add_columns(self, table: Table, columns: dict[str, list[Any]]) -> None:
        keys = [*columns, "run_id"]
        n = len(next(iter(columns.values()))) if columns else 0
        rows = [
            dict(zip(keys, values, strict=True))
            for values in zip(*columns.values(), [self.run_id] * n, strict=True)
        ]
        self._buffers.setdefault(table.name, []).extend(rows)
        self._pending += len(rows)
        if self._pending >= self.batch_rows and self.failure is None:
            self.flush()

    def flush(self, then: Callable[[Connection], object] | None = None) -> None:
        """Write the buffered rows, and run ``then`` (e.g. a checkpoint insert), in one transaction."""
        if not self._pending and then is None:
            return
        counts = ", ".join(f"{len(rows)} {name}" for name, rows in self._buffers.items() if rows)
        with self._transaction(f"writing rows ({counts or 'none'})") as conn:
            for name in TABLE_ORDER:
                rows = self._buffers.get(name)
                if not rows:
                    continue
                keys = list(rows[0])
                row_values = itemgetter(*keys)  # a tuple per row, in C
                values: list[Any] = [row_values(r) for r in rows]
                js = [i for i, k in enumerate(keys) if k in JSON_COLUMNS[name]]
                if js:
                    for n, v in enumerate(values):
                        v = list(v)
                        for i in js:
                            v[i] = json.dumps(v[i])
                        values[n] = tuple(v)
                conn.exec_driver_sql(_insert_sql(conn.dialect, name, keys), values)
            if then is not None:
                then(conn)
        self._buffers.clear()
        self._pending = 0

    def finish(
        self,
        status: str,
        funnel: dict[str, Any] | None,
        error: str | None,
        timings: dict[str, float] | None = None,
    ) -> None:
        """Write the last rows and the run's status in one transaction. After a failed write the run is
        marked failed with that error instead (its unwritten rows are dropped: a resume computes them
        again from the last checkpoint) and the StorageError is raised."""
        if self.failure is None:
            values = {"status": status, "funnel": funnel, "error": error, "timings": timings}
            try:
                self.flush(lambda conn: conn.execute(self._run_update(**values)))
                return
            except StorageError:
                pass
        failure = self.failure
        assert failure is not None
        cause = f"StorageError: {failure}"
        self._mark_failed(funnel, cause if not error or str(failure) in error else f"{error}; then {cause}")
        raise failure

    def _run_update(self, **values: Any) -> Any:
        return update(db.runs).where(db.runs.c.run_id == self.run_id).values(finished_at=_now(), **values)

    def _mark_failed(self, funnel: dict[str, Any] | None, error: str) -> None:
        """Best effort on a database that just refused a write: the status with the funnel, else without
        (fewer bytes); a run left ``running`` can still be resumed."""
        for extra in ({"funnel": funnel}, {}):
            try:
                with self.engine.begin() as conn:
                    conn.execute(self._run_update(status="failed", error=error, **extra))
                return
            except SQLAlchemyError as e:
                last = e
        log.error(
            "run %s could not be marked failed: %s", self.run_id, db.describe(last, str(self.engine.url))
        )
