"""Batched writer of a run's rows: columnar buffers written in bulk, one transaction per batch.

Each table's rows are buffered in columnar form (``Columns``: one list per column, run_id excepted: it
is one value for the whole run; single rows staged as tuples, arrays added column by column) and reach
the database every ``batch_rows`` rows (bounded memory) and with each checkpoint, in one transaction:
``COPY ... FROM STDIN`` on PostgreSQL through psycopg 3, one ``executemany`` per table elsewhere
(SQLite). A write that fails (disk full, server gone, timeout) raises StorageError (exit 6) and the
recorder stays failed: later writes raise that error again, and ``finish`` marks the run failed with it,
so the run keeps what was written and can be resumed from its last checkpoint.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import repeat
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Engine, Table, insert, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from mt5tester import __version__
from mt5tester.errors import ConfigError, StorageError
from mt5tester.results import db

log = logging.getLogger(__name__)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# Buffered tables in insert order. Their JSON columns are serialised here as SQLAlchemy's JSON type does
# (json.dumps, None as JSON null), once per column at the flush, so every table goes straight to the
# driver (COPY or executemany) without SQLAlchemy's per-row processing.
TABLE_ORDER = ("signals", "deals", "equity", "strategy_errors", "orders", "positions", "daily_equity")


def _dumps(value: Any) -> str:
    """json.dumps, with the empty object (most signals' tags and details) spelled without encoding it."""
    return "{}" if type(value) is dict and not value else json.dumps(value)


class Columns:
    """The buffered rows of one table, one list per column (the table's columns but run_id, in order).

    A single row is staged as one tuple (one C call per row: the loop's per-trade cost) and moved into
    the columns, transposed in C, when columns are added (``extend``) or a JSON column is serialised;
    a table written from staged rows only skips the columns.
    """

    __slots__ = ("_getter", "_staged", "cols", "json", "names", "table")

    def __init__(self, table: Table) -> None:
        self.table = table
        self.names = tuple(c.name for c in table.columns if c.name != "run_id")
        self.json = frozenset(i for i, c in enumerate(table.columns[1:]) if isinstance(c.type, JSON))
        assert table.columns[0].name == "run_id" and len(self.names) == len(table.columns) - 1
        self.cols: list[list[Any]] = [[] for _ in self.names]
        self._staged: list[tuple[Any, ...]] = []
        self._getter = itemgetter(*self.names)

    def __len__(self) -> int:
        return len(self.cols[0]) + len(self._staged)

    def append(self, row: Mapping[str, Any]) -> None:
        """One row; a column it lacks is NULL, a key that is no column of the table is an error."""
        try:
            values = self._getter(row)
        except KeyError:
            self._check(row)
            values = tuple(row.get(n) for n in self.names)
        else:
            if len(row) > len(self.names):
                self._check(row)
        self._staged.append(values)

    def _settle(self) -> None:
        if self._staged:
            for col, values in zip(self.cols, zip(*self._staged, strict=True), strict=True):
                col.extend(values)
            self._staged.clear()

    def extend(self, columns: Mapping[str, Sequence[Any]]) -> int:
        """Many rows at once, given column by column (lists or numpy arrays, all of one length); a
        column not given is NULL. Returns the number of rows."""
        self._check(columns)
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"{self.table.name}: columns of different lengths {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        self._settle()
        for name, col in zip(self.names, self.cols, strict=True):
            values = columns.get(name)
            if values is None:
                col.extend(repeat(None, n))
            else:  # numpy arrays become Python values, as a row would hold them
                col.extend(values.tolist() if hasattr(values, "tolist") else values)
        return n

    def _check(self, keys: Iterable[str]) -> None:
        unknown = sorted(set(keys) - set(self.names) - {"run_id"})
        if unknown:
            raise ValueError(f"{self.table.name} has no column {', '.join(unknown)}")

    def rows(self, run_id: str) -> Iterator[tuple[Any, ...]]:
        """The rows as tuples in table order, run_id first, JSON columns serialised."""
        if not self.json and not self.cols[0]:  # single rows only: run_id prefixed in C, no transposing
            return map((run_id,).__add__, self._staged)
        self._settle()
        cols: list[Iterable[Any]] = list(self.cols)
        for i in self.json:
            cols[i] = map(_dumps, self.cols[i])
        return zip(repeat(run_id), *cols)

    def clear(self) -> None:
        self._staged.clear()
        for col in self.cols:
            col.clear()


def _columns_sql(conn: Connection, buf: Columns) -> tuple[str, str]:
    quote = conn.dialect.identifier_preparer.quote
    return quote(buf.table.name), ", ".join(quote(k) for k in ("run_id", *buf.names))


def _write(conn: Connection, buf: Columns, run_id: str) -> None:
    """One table's buffered rows: COPY on PostgreSQL with psycopg 3, executemany otherwise."""
    table, columns = _columns_sql(conn, buf)
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        sql = f"COPY {table} ({columns}) FROM STDIN"
        raw: Any = conn.connection.driver_connection
        try:
            with raw.cursor() as cur, cur.copy(sql) as copy:
                for row in buf.rows(run_id):
                    copy.write_row(row)
        except raw.Error as e:  # a driver error, as SQLAlchemy raises it for its own statements
            raise DBAPIError.instance(sql, None, e, raw.Error, dialect=conn.dialect) from e
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    marks = ", ".join([mark] * (len(buf.names) + 1))
    conn.exec_driver_sql(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(buf.rows(run_id)))


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
        self._buffers: dict[str, Columns] = {}
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
        """One row of ``table`` (its run_id is the recorder's)."""
        buf = self._buffers.get(table.name)
        if buf is None:
            buf = self._buffers[table.name] = Columns(table)
        buf.append(row)
        self._pending += 1
        if self._pending >= self.batch_rows and self.failure is None:
            self.flush()

    def add_columns(self, table: Table, columns: Mapping[str, Sequence[Any]]) -> None:
        """Many rows of ``table`` given column by column (lists or numpy arrays of one length), e.g. the
        deals a compiled driver made: no dict per row."""
        buf = self._buffers.get(table.name)
        if buf is None:
            buf = self._buffers[table.name] = Columns(table)
        self._pending += buf.extend(columns)
        if self._pending >= self.batch_rows and self.failure is None:
            self.flush()

    def flush(self, then: Callable[[Connection], object] | None = None) -> None:
        """Write the buffered rows, and run ``then`` (e.g. a checkpoint insert), in one transaction."""
        if not self._pending and then is None:
            return
        counts = ", ".join(f"{len(buf)} {name}" for name, buf in self._buffers.items() if len(buf))
        with self._transaction(f"writing rows ({counts or 'none'})") as conn:
            for name in TABLE_ORDER:
                buf = self._buffers.get(name)
                if buf is not None and len(buf):
                    _write(conn, buf, self.run_id)
            if then is not None:
                then(conn)
        for buf in self._buffers.values():
            buf.clear()
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
