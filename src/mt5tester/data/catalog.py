"""A local on-disk market-data catalog: Parquet partitions that can be read one year (or month) at a time.

Layout under ``root``::

    bars/symbol=EURUSD/timeframe=M1/year=2018.parquet     time, open, high, low, close, tick_volume, spread
    ticks/symbol=EURUSD/year=2014/month=05.parquet        time, bid, ask, last, volume, flags

``time`` is ``timestamp[ns, tz=UTC]`` (the bar's open time, ARCHITECTURE section 2), prices float64,
``tick_volume``/``volume`` int64, ``spread``/``flags`` int32. A partition holds the rows whose UTC time
falls in its year (month), sorted by time. Each file carries key/value metadata ``mt5tester`` (JSON): kind,
symbol, timeframe, partition, rows, first/last time (ns), ``tz`` (always "UTC": what the stored times
are in) and ``sources``: every file that contributed rows, with its sha256, the import time and the time
zone its clock was read in. ``info`` answers from these footers without reading any data.

Merging (``import_bars``/``import_ticks``)
------------------------------------------
Rows are keyed by time. For bars an incoming time that is already stored with bit-identical values is a
*duplicate* (counted, not an error); with different values it is a *conflict*: the import stops with a
``DataError`` listing the first conflicting times and writes nothing, unless ``on_conflict="replace"``:
then the import owns its whole time range [first, last], and also the range an earlier import of the
same file (same path or sha256, recorded in ``sources``) covered; stored rows there that the file does
not hold are removed (``removed``), so a file re-read with the right time zone leaves no stale bar.
Duplicates are reported as runs (``duplicate_ranges``).
Ticks can legitimately share a millisecond, so for ticks the unit is the *group* of ticks at one time: an
identical group (same count, same values, same order) is a duplicate, a different one a conflict.
Re-importing a file is therefore idempotent: 0 new rows, every row a duplicate, no file touched.

Atomicity: every affected partition is computed in memory and checked first, then written to a temp
file next to its target, and only when all temp files exist are they moved into place with
``os.replace`` (atomic per file on POSIX and Windows). A failure before that phase leaves the catalog
exactly as it was and removes the temp files. An advisory lock (``root/.lock``, POSIX ``flock``)
serialises writers, so two imports cannot lose each other's rows; readers take no lock and see each
partition either before or after an import.

Loading: ``load`` reads only the partitions overlapping ``[start_ns, end_ns)``, sizes the output from the
footers, and copies each partition's columns straight into preallocated contiguous numpy arrays (one
copy, no concatenation), so the resident cost is the arrays themselves: 52 bytes per bar.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from mt5tester.data.health import iso
from mt5tester.errors import ConfigError, DataError
from mt5tester.model.bars import Bars
from mt5tester.model.symbol import check_symbol_name
from mt5tester.model.ticks import Ticks
from mt5tester.model.timeframe import Timeframe

__all__ = ["TICKS", "Catalog", "ImportResult", "OnConflict"]

OnConflict = Literal["error", "replace"]
Cols = dict[str, npt.NDArray[Any]]
I64 = npt.NDArray[np.int64]

TICKS = "TICKS"  # the pseudo-timeframe name ticks are listed under
FORMAT_VERSION = 1
_META_KEY = b"mt5tester"
_TIME_TYPE = pa.timestamp("ns", tz="UTC")
_BAR_COLUMNS: dict[str, type[np.generic]] = {
    "time": np.int64,
    "open": np.float64,
    "high": np.float64,
    "low": np.float64,
    "close": np.float64,
    "tick_volume": np.int64,
    "spread": np.int32,
}
_TICK_COLUMNS: dict[str, type[np.generic]] = {
    "time": np.int64,
    "bid": np.float64,
    "ask": np.float64,
    "last": np.float64,
    "volume": np.int64,
    "flags": np.int32,
}
_YEAR_RE = re.compile(r"^year=(\d{4})\.parquet$")
_MONTH_RE = re.compile(r"^month=(\d{2})\.parquet$")
_MAX_LISTED = 5
_MAX_RANGES = 50


@dataclass(frozen=True)
class ImportResult:
    """What one import did. ``partitions_written`` are paths relative to the catalog root."""

    symbol: str
    timeframe: str
    rows_in: int
    rows_new: int
    duplicates: int
    partitions_written: tuple[str, ...]
    replaced: int = 0  # conflicting times overwritten (on_conflict="replace" or a rebuild)
    removed: int = 0  # stored rows dropped by a rebuild or a replace (in the replaced range, not re-sent)
    duplicate_ranges: tuple[tuple[int, int, int], ...] = ()  # (first ns, last ns, rows) already stored

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "rows_in": self.rows_in,
            "rows_new": self.rows_new,
            "duplicates": self.duplicates,
            "replaced": self.replaced,
            "removed": self.removed,
            "partitions_written": list(self.partitions_written),
            "duplicate_ranges": [
                {"first": iso(a), "last": iso(b), "rows": n}
                for a, b, n in self.duplicate_ranges[:_MAX_RANGES]
            ],
            "duplicate_ranges_total": len(self.duplicate_ranges),
        }


# --------------------------------------------------------------------------------------------------
# Pure helpers: partition keys, merging


def _month_index(time: I64) -> I64:
    """Months since 1970-01 of each UTC ns time."""
    return time.view("datetime64[ns]").astype("datetime64[M]").astype(np.int64)


def _year_bounds_ns(year: int) -> tuple[int, int]:
    lo = np.datetime64(f"{year:04d}-01-01", "ns").astype(np.int64)
    hi = np.datetime64(f"{year + 1:04d}-01-01", "ns").astype(np.int64)
    return int(lo), int(hi)


def _month_bounds_ns(month_index: int) -> tuple[int, int]:
    lo = np.datetime64(month_index, "M").astype("datetime64[ns]").astype(np.int64)
    hi = np.datetime64(month_index + 1, "M").astype("datetime64[ns]").astype(np.int64)
    return int(lo), int(hi)


def _groups(time: I64) -> tuple[I64, I64, I64]:
    """Distinct times of a sorted array, the first row of each and the rows per time."""
    n = len(time)
    if n == 0:
        e = np.zeros(0, np.int64)
        return e, e, e
    flag = np.empty(n, bool)
    flag[0] = True
    np.not_equal(time[1:], time[:-1], out=flag[1:])
    starts = np.flatnonzero(flag).astype(np.int64)
    counts = np.diff(np.append(starts, n))
    return time[starts], starts, counts


def _bits(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Values compared bit for bit (NaN equals NaN, 0.0 differs from -0.0): identity, not arithmetic."""
    a = np.ascontiguousarray(a)
    return a.view(np.int64) if a.dtype == np.float64 else a


def _rows_equal(a: Cols, ia: I64, b: Cols, ib: I64) -> npt.NDArray[np.bool_]:
    eq = np.ones(len(ia), bool)
    for name in a:
        eq &= _bits(a[name][ia]) == _bits(b[name][ib])
    return eq


def _take(cols: Cols, idx: npt.NDArray[Any]) -> Cols:
    return {k: v[idx] for k, v in cols.items()}


def _sorted_by_time(cols: Cols) -> Cols:
    t = cols["time"]
    if len(t) < 2 or bool((t[1:] >= t[:-1]).all()):
        return cols
    return _take(cols, np.argsort(t, kind="stable"))


@dataclass
class _Merge:
    merged: Cols | None  # None: the stored partition stays as it is
    new: int = 0
    duplicates: int = 0
    conflict_times: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    replaced: int = 0
    removed: int = 0
    dup_rows: npt.NDArray[np.bool_] | None = None  # incoming rows already stored identically


def _in_ranges(t: I64, ranges: Sequence[tuple[int, int]]) -> npt.NDArray[np.bool_]:
    out = np.zeros(len(t), bool)
    for lo, hi in ranges:
        out |= (t >= lo) & (t <= hi)
    return out


def _merge(
    stored: Cols | None,
    incoming: Cols,
    mode: Literal["error", "replace", "rebuild"],
    clear: Sequence[tuple[int, int]] = (),
) -> _Merge:
    """Merge time-sorted ``incoming`` rows into time-sorted ``stored`` rows, group by group (module doc).
    ``clear`` (replace): inclusive time ranges whose stored rows all go, except those sent again."""
    n_in = len(incoming["time"])
    if stored is None or len(stored["time"]) == 0:
        return _Merge(merged=incoming if n_in else None, new=n_in)
    ku, su, cu = _groups(incoming["time"])
    ks, ss, cs = _groups(stored["time"])
    common, ia, ib = np.intersect1d(ku, ks, assume_unique=True, return_indices=True)
    equal = np.zeros(len(common), bool)
    same_count = np.flatnonzero(cu[ia] == cs[ib])
    if len(same_count):
        cnt = cu[ia[same_count]]
        first = np.cumsum(cnt) - cnt
        offs = np.arange(int(cnt.sum()), dtype=np.int64) - np.repeat(first, cnt)
        row_eq = _rows_equal(
            incoming,
            np.repeat(su[ia[same_count]], cnt) + offs,
            stored,
            np.repeat(ss[ib[same_count]], cnt) + offs,
        )
        equal[same_count] = np.logical_and.reduceat(row_eq, first)
    in_common = np.zeros(len(ku), bool)
    in_common[ia] = True
    in_conflict = np.zeros(len(ku), bool)
    in_conflict[ia[~equal]] = True
    duplicates = int(cu[ia[equal]].sum())
    new = int(cu[~in_common].sum())
    conflict_times = common[~equal]
    if mode == "rebuild":
        st_common = np.zeros(len(ks), bool)
        st_common[ib] = True
        removed = int(cs[~st_common].sum())
        changed = new > 0 or len(conflict_times) > 0 or removed > 0
        return _Merge(
            incoming if changed else None, new, duplicates, conflict_times, len(conflict_times), removed
        )
    dup_rows = np.repeat(in_common & ~in_conflict, cu)
    if len(conflict_times) and mode == "error":
        return _Merge(None, new, duplicates, conflict_times, dup_rows=dup_rows)
    take_groups = ~in_common | in_conflict
    keep_groups = np.ones(len(ks), bool)
    keep_groups[ib[~equal]] = False
    removed = 0
    if clear:  # replace: the whole imported range is the file's, stale stored rows in it go
        st_common = np.zeros(len(ks), bool)
        st_common[ib] = True
        stale = _in_ranges(ks, clear) & ~st_common
        keep_groups &= ~stale
        removed = int(cs[stale].sum())
    if not take_groups.any() and keep_groups.all():
        return _Merge(None, 0, duplicates, dup_rows=dup_rows)
    keep_stored = np.repeat(keep_groups, cs)
    take_in = np.repeat(take_groups, cu)
    both = {k: np.concatenate([stored[k][keep_stored], incoming[k][take_in]]) for k in stored}
    # Stable sort with the stored rows first: groups never overlap, so each keeps its own order.
    merged = _take(both, np.argsort(both["time"], kind="stable"))
    return _Merge(merged, new, duplicates, conflict_times, len(conflict_times), removed, dup_rows)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_parquet(table: pa.Table, path: Path) -> None:
    """Write one partition file (a module function so tests can inject a failure)."""
    prices = [n for n in table.column_names if n != "time"]
    pq.write_table(
        table,
        path,
        compression="zstd",
        use_dictionary=prices,
        column_encoding={"time": "DELTA_BINARY_PACKED"},
        write_statistics=True,
    )
    with path.open("rb+") as fh:
        os.fsync(fh.fileno())


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("a+b") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory lock, one writer is assumed
            yield
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _np_column(
    table: pa.Table, name: str, dtype: type[np.generic], out: npt.NDArray[Any], where: Path
) -> None:
    """Copy a null-free fixed-width Arrow column into ``out`` (one copy per chunk, no temporaries)."""
    col = table.column(name)
    pos = 0
    width = np.dtype(dtype).itemsize
    for chunk in col.chunks:
        n = len(chunk)
        if chunk.null_count:
            raise DataError(f"catalog file {where}: column {name} has nulls; delete the file and re-import")
        if n:
            buf = chunk.buffers()[1]
            out[pos : pos + n] = np.frombuffer(buf, dtype=dtype, count=n, offset=chunk.offset * width)
        pos += n


def _check_symbol(symbol: str) -> str:
    try:
        return check_symbol_name(symbol)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


# --------------------------------------------------------------------------------------------------
# The catalog


@dataclass(frozen=True)
class _Part:
    """One planned partition write."""

    path: Path
    table: pa.Table | None  # None: delete the file (a rebuild dropped every row of it)


class Catalog:
    """Market data stored under ``root`` (module docstring: layout, merge rules, atomicity)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Catalog({str(self.root)!r})"

    # ---- paths -----------------------------------------------------------------------------------

    def _bars_dir(self, symbol: str, timeframe: Timeframe) -> Path:
        return self.root / "bars" / f"symbol={_check_symbol(symbol)}" / f"timeframe={timeframe.name}"

    def _ticks_dir(self, symbol: str) -> Path:
        return self.root / "ticks" / f"symbol={_check_symbol(symbol)}"

    def _bar_path(self, symbol: str, timeframe: Timeframe, year: int) -> Path:
        return self._bars_dir(symbol, timeframe) / f"year={year:04d}.parquet"

    def _tick_path(self, symbol: str, month_index: int) -> Path:
        year, month = divmod(month_index, 12)
        return self._ticks_dir(symbol) / f"year={year + 1970:04d}" / f"month={month + 1:02d}.parquet"

    def _bar_partitions(self, symbol: str, timeframe: Timeframe) -> dict[int, Path]:
        folder = self._bars_dir(symbol, timeframe)
        out: dict[int, Path] = {}
        if folder.is_dir():
            for p in folder.iterdir():
                m = _YEAR_RE.match(p.name)
                if m:
                    out[int(m.group(1))] = p
        return dict(sorted(out.items()))

    def _tick_partitions(self, symbol: str) -> dict[int, Path]:
        """Month index (months since 1970-01) -> file."""
        folder = self._ticks_dir(symbol)
        out: dict[int, Path] = {}
        if folder.is_dir():
            for ydir in folder.iterdir():
                ym = re.match(r"^year=(\d{4})$", ydir.name)
                if not ym or not ydir.is_dir():
                    continue
                for p in ydir.iterdir():
                    mm = _MONTH_RE.match(p.name)
                    if mm and 1 <= int(mm.group(1)) <= 12:
                        out[(int(ym.group(1)) - 1970) * 12 + int(mm.group(1)) - 1] = p
        return dict(sorted(out.items()))

    # ---- listing ---------------------------------------------------------------------------------

    def _symbol_dirs(self, kind: str) -> list[str]:
        folder = self.root / kind
        if not folder.is_dir():
            return []
        return sorted(
            p.name.split("=", 1)[1]
            for p in folder.iterdir()
            if p.name.startswith("symbol=") and any(p.rglob("*.parquet"))
        )

    def symbols(self) -> list[str]:
        """Symbols with stored bars or ticks, sorted."""
        return sorted(set(self._symbol_dirs("bars")) | set(self._symbol_dirs("ticks")))

    def timeframes(self, symbol: str) -> list[Timeframe]:
        """Bar timeframes stored for ``symbol``, shortest first (ticks: see ``has_ticks``)."""
        folder = self.root / "bars" / f"symbol={symbol}"
        if not folder.is_dir():
            return []
        out = []
        for p in folder.iterdir():
            name = p.name.split("=", 1)[-1]
            if p.name.startswith("timeframe=") and name in Timeframe.__members__:
                tf = Timeframe[name]
                if self._bar_partitions(symbol, tf):
                    out.append(tf)
        return sorted(out, key=lambda t: (t.minutes, int(t)))

    def has_ticks(self, symbol: str) -> bool:
        return bool(self._tick_partitions(symbol))

    def _what_exists(self) -> str:
        parts = []
        for s in self.symbols():
            names = [t.name for t in self.timeframes(s)] + ([TICKS] if self.has_ticks(s) else [])
            parts.append(f"{s} ({', '.join(names)})")
        return "; ".join(parts) if parts else "nothing (the catalog is empty)"

    def _missing_symbol(self, symbol: str, what: str) -> DataError:
        # The same letters in other case, or the broker's spelling with a suffix (EURUSD -> EURUSD.a).
        near = [s for s in self.symbols() if s != symbol and s.lower().startswith(symbol.lower())]
        hint = f" (did you mean {' or '.join(near[:3])}?)" if near else ""
        return DataError(
            f"no {what} for symbol {symbol} in catalog {self.root}{hint}; the catalog holds: "
            f"{self._what_exists()}. Import it with: mt5tester data import FILE --symbol {symbol}"
        )

    def _require_bars(self, symbol: str, timeframe: Timeframe) -> dict[int, Path]:
        parts = self._bar_partitions(symbol, timeframe)
        if parts:
            return parts
        stored = self.timeframes(symbol)
        if not stored:
            raise self._missing_symbol(symbol, "bars")
        hint = (
            f"build it from M1 with: mt5tester data resample {symbol} --to {timeframe.name}"
            if Timeframe.M1 in stored and timeframe is not Timeframe.M1
            else f"import it with: mt5tester data import FILE --symbol {symbol} --timeframe {timeframe.name}"
        )
        raise DataError(
            f"no {timeframe.name} bars for {symbol} in catalog {self.root}; stored timeframes: "
            f"{', '.join(t.name for t in stored)}; {hint}"
        )

    @staticmethod
    def _meta(path: Path) -> tuple[dict[str, Any], int]:
        """The partition's ``mt5tester`` metadata and its row count, from the footer only."""
        try:
            md = pq.read_metadata(path)
        except (OSError, pa.ArrowInvalid) as exc:
            raise DataError(
                f"catalog file {path} is not readable Parquet ({exc}); delete it and re-import"
            ) from None
        raw = (md.metadata or {}).get(_META_KEY)
        meta = json.loads(raw) if raw else {}
        return meta, md.num_rows

    def _summary(self, symbol: str, timeframe: str, parts: Mapping[int, Path], label: str) -> dict[str, Any]:
        rows = 0
        first: int | None = None
        last: int | None = None
        size = 0
        sources: dict[tuple[str, str | None], dict[str, Any]] = {}
        for path in parts.values():
            meta, n = self._meta(path)
            rows += n
            size += path.stat().st_size
            if n:
                f, la = int(meta.get("first_ns", 0)), int(meta.get("last_ns", 0))
                first = f if first is None else min(first, f)
                last = la if last is None else max(last, la)
            for src in meta.get("sources", []):
                sources.setdefault((src.get("source", ""), src.get("sha256")), src)
        keys = list(parts)
        return {
            "symbol": symbol,
            "timeframe": timeframe,
            "rows": rows,
            "first": iso(first) if first is not None else None,
            "last": iso(last) if last is not None else None,
            "years": sorted({k if label == "year" else k // 12 + 1970 for k in keys}),
            "partitions": len(keys),
            "bytes": size,
            "sources": sorted(
                sources.values(), key=lambda s: (s.get("imported_at", ""), s.get("source", ""))
            ),
        }

    def info(self, symbol: str, timeframe: Timeframe | str) -> dict[str, Any]:
        """Rows, first/last (ISO UTC), years, partitions, bytes and sources of one symbol/timeframe.

        ``timeframe`` may be ``"TICKS"`` for the stored ticks.
        """
        if isinstance(timeframe, str) and timeframe.strip().upper() in (TICKS, "TICK"):
            parts = self._tick_partitions(symbol)
            if not parts:
                raise self._missing_symbol(symbol, "ticks")
            return self._summary(symbol, TICKS, parts, "month")
        tf = _parse_tf(timeframe)
        return self._summary(symbol, tf.name, self._require_bars(symbol, tf), "year")

    # ---- loading ---------------------------------------------------------------------------------

    def _read(
        self,
        parts: Mapping[int, Path],
        bounds: Mapping[int, tuple[int, int]],
        columns: Mapping[str, type[np.generic]],
        start_ns: int | None,
        end_ns: int | None,
    ) -> Cols:
        lo = -(2**63) if start_ns is None else start_ns
        hi = 2**63 - 1 if end_ns is None else end_ns
        plan: list[tuple[Path, int, int, int]] = []  # path, first row, last row + 1, rows in file
        for key, path in parts.items():
            p_lo, p_hi = bounds[key]
            if p_hi <= lo or p_lo >= hi:
                continue
            meta, n = self._meta(path)
            i, j = 0, n
            if n and not (lo <= int(meta.get("first_ns", p_lo)) and int(meta.get("last_ns", p_hi)) < hi):
                t = np.empty(n, np.int64)
                _np_column(self._read_table(path, ["time"]), "time", np.int64, t, path)
                i, j = int(np.searchsorted(t, lo, "left")), int(np.searchsorted(t, hi, "left"))
            if j > i:
                plan.append((path, i, j, n))
        total = sum(j - i for _, i, j, _ in plan)
        out: Cols = {name: np.empty(total, dtype) for name, dtype in columns.items()}
        pos = 0
        for path, i, j, n in plan:
            table = self._read_table(path, list(columns))
            if table.num_rows != n:
                raise DataError(f"catalog file {path} changed while it was read; retry")
            if (i, j) != (0, n):
                table = table.slice(i, j - i)
            for name, dtype in columns.items():
                _np_column(table, name, dtype, out[name][pos : pos + j - i], path)
            pos += j - i
            del table
        pa.default_memory_pool().release_unused()
        for arr in out.values():
            arr.flags.writeable = False
        return out

    @staticmethod
    def _read_table(path: Path, columns: list[str]) -> pa.Table:
        try:
            table = pq.read_table(path, columns=columns)
        except (OSError, pa.ArrowInvalid) as exc:
            raise DataError(f"catalog file {path} is not readable ({exc}); delete it and re-import") from None
        if table.column_names != columns:
            raise DataError(f"catalog file {path}: expected columns {columns}, found {table.column_names}")
        time_type = table.schema.field("time").type
        if not pa.types.is_timestamp(time_type) or time_type.unit != "ns":
            raise DataError(f"catalog file {path}: time column is {time_type}, expected timestamp[ns, UTC]")
        return table

    def load(
        self, symbol: str, timeframe: Timeframe | str, start_ns: int | None = None, end_ns: int | None = None
    ) -> Bars:
        """Bars of ``symbol``/``timeframe`` with open time in ``[start_ns, end_ns)`` (None: unbounded).

        Only the year partitions overlapping the range are opened. Arrays are contiguous and read-only.
        Raises ``DataError`` when the symbol, the timeframe or any bar in the range is missing.
        """
        tf = _parse_tf(timeframe)
        if start_ns is not None and end_ns is not None and end_ns <= start_ns:
            raise ValueError(f"load {symbol} {tf.name}: end {iso(end_ns)} is not after start {iso(start_ns)}")
        parts = self._require_bars(symbol, tf)
        bounds = {y: _year_bounds_ns(y) for y in parts}
        cols = self._read(parts, bounds, _BAR_COLUMNS, start_ns, end_ns)
        if len(cols["time"]) == 0:
            info = self.info(symbol, tf)
            raise DataError(
                f"no {symbol} {tf.name} bars in [{_fmt(start_ns)}, {_fmt(end_ns)}) in catalog {self.root}; "
                f"stored: {info['first']} .. {info['last']} ({info['rows']} bars, years "
                f"{', '.join(map(str, info['years']))}); choose a range inside it or import more data"
            )
        return Bars(symbol, tf, **cols)

    def load_ticks(self, symbol: str, start_ns: int | None = None, end_ns: int | None = None) -> Ticks:
        """Ticks of ``symbol`` with time in ``[start_ns, end_ns)``, reading only the months needed."""
        if start_ns is not None and end_ns is not None and end_ns <= start_ns:
            raise ValueError(f"load_ticks {symbol}: end {iso(end_ns)} is not after start {iso(start_ns)}")
        parts = self._tick_partitions(symbol)
        if not parts:
            raise self._missing_symbol(symbol, "ticks")
        bounds = {m: _month_bounds_ns(m) for m in parts}
        cols = self._read(parts, bounds, _TICK_COLUMNS, start_ns, end_ns)
        if len(cols["time"]) == 0:
            info = self.info(symbol, TICKS)
            raise DataError(
                f"no {symbol} ticks in [{_fmt(start_ns)}, {_fmt(end_ns)}) in catalog {self.root}; "
                f"stored: {info['first']} .. {info['last']} ({info['rows']} ticks)"
            )
        return Ticks(symbol, **cols)

    # ---- deleting --------------------------------------------------------------------------------

    def delete(
        self,
        symbol: str,
        timeframe: Timeframe | str | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> dict[str, int]:
        """Remove the rows of ``symbol`` with time in ``[start_ns, end_ns)`` (None: unbounded) from one
        timeframe (``"TICKS"`` for ticks) or, with None, from every stored timeframe and the ticks.
        Returns the rows removed per timeframe name; atomic like an import. Nothing stored: DataError."""
        lo = -(2**63) if start_ns is None else start_ns
        hi = 2**63 - 1 if end_ns is None else end_ns
        if hi <= lo:
            raise ConfigError(f"delete {symbol}: end {_fmt(end_ns)} is not after start {_fmt(start_ns)}")
        targets: list[tuple[str, dict[int, Path], Mapping[str, type[np.generic]]]] = []
        if isinstance(timeframe, str) and timeframe.strip().upper() in (TICKS, "TICK"):
            parts = self._tick_partitions(symbol)
            if not parts:
                raise self._missing_symbol(symbol, "ticks")
            targets.append((TICKS, parts, _TICK_COLUMNS))
        elif timeframe is not None:
            tf = _parse_tf(timeframe)
            targets.append((tf.name, self._require_bars(symbol, tf), _BAR_COLUMNS))
        else:
            targets += [
                (tf.name, self._bar_partitions(symbol, tf), _BAR_COLUMNS) for tf in self.timeframes(symbol)
            ]
            if self.has_ticks(symbol):
                targets.append((TICKS, self._tick_partitions(symbol), _TICK_COLUMNS))
            if not targets:
                raise self._missing_symbol(symbol, "data")
        removed: dict[str, int] = {}
        with _locked(self.root):
            plans: list[_Part] = []
            for name, parts, columns in targets:
                removed[name] = 0
                for path in parts.values():
                    meta, n = self._meta(path)
                    first, last = int(meta.get("first_ns", lo)), int(meta.get("last_ns", hi - 1))
                    if n == 0 or last < lo or first >= hi:
                        continue
                    cols = self._read_all(path, columns)
                    keep = (cols["time"] < lo) | (cols["time"] >= hi)
                    removed[name] += int(n - keep.sum())
                    if not keep.any():
                        plans.append(_Part(path, None))
                    elif not keep.all():
                        kept = _take(cols, np.flatnonzero(keep))
                        plans.append(_Part(path, self._table(kept, meta, None, symbol, name, path)))
            self._commit(plans)
        for _name, parts, _ in targets:  # empty partition folders would list the timeframe as stored
            for path in parts.values():
                for folder in (path.parent, path.parent.parent):
                    with contextlib.suppress(OSError):
                        folder.rmdir()
        return removed

    # ---- importing -------------------------------------------------------------------------------

    def import_bars(
        self,
        bars: Bars,
        source: str,
        *,
        tz: str = "UTC",
        on_conflict: OnConflict = "error",
        sha256: str | None = None,
    ) -> ImportResult:
        """Merge ``bars`` into the catalog (module docstring). ``source``: the file (its sha256 is recorded
        when it exists) or a label; ``tz``: the zone the source's clock was read in (recorded only)."""
        _check_mode(on_conflict)
        return self._store_bars(bars, source, on_conflict, self._source_entry(source, tz, sha256))

    def import_ticks(
        self,
        ticks: Ticks,
        source: str,
        *,
        tz: str = "UTC",
        on_conflict: OnConflict = "error",
        sha256: str | None = None,
    ) -> ImportResult:
        """Merge ``ticks`` into the catalog; the ticks at one time are compared as a group (module doc)."""
        _check_mode(on_conflict)
        symbol = _check_symbol(ticks.symbol)
        cols = _sorted_by_time(
            {name: np.asarray(getattr(ticks, name), dtype) for name, dtype in _TICK_COLUMNS.items()}
        )
        return self._import(
            symbol,
            TICKS,
            cols,
            len(ticks),
            0,
            _month_index,
            lambda m: self._tick_path(symbol, int(m)),
            _TICK_COLUMNS,
            on_conflict,
            self._source_entry(source, tz, sha256),
            existing=lambda: self._tick_partitions(symbol),
        )

    def rebuild_bars(self, bars: Bars, source: str, *, tz: str = "UTC") -> ImportResult:
        """Make the stored ``bars.symbol``/``bars.timeframe`` exactly ``bars`` (derived data, e.g. resampled
        from the stored M1): changed rows are replaced, rows and partitions absent from ``bars`` removed,
        unchanged partitions left untouched. Same atomicity as an import."""
        return self._store_bars(bars, source, "rebuild", self._source_entry(source, tz, None))

    def _store_bars(
        self,
        bars: Bars,
        source: str,
        mode: Literal["error", "replace", "rebuild"],
        entry: dict[str, Any],
    ) -> ImportResult:
        """import_bars / rebuild_bars: sorted, de-duplicated columns into yearly partitions; a rebuild
        also removes the stored partitions that ``bars`` no longer has."""
        symbol = _check_symbol(bars.symbol)
        cols = _sorted_by_time(
            {name: np.asarray(getattr(bars, name), dtype) for name, dtype in _BAR_COLUMNS.items()}
        )
        cols, in_dups = _dedupe_bars(cols, f"{symbol} {bars.timeframe.name} from {source}")
        return self._import(
            symbol,
            bars.timeframe.name,
            cols,
            len(bars),
            in_dups,
            lambda t: _month_index(t) // 12 + 1970,
            lambda y: self._bar_path(symbol, bars.timeframe, int(y)),
            _BAR_COLUMNS,
            mode,
            entry,
            existing=lambda: self._bar_partitions(symbol, bars.timeframe),
        )

    @staticmethod
    def _source_entry(source: str, tz: str, sha256: str | None) -> dict[str, Any]:
        path = Path(source)
        if sha256 is None and path.is_file():
            sha256 = _sha256(path)
        return {
            "source": str(source),
            "sha256": sha256,
            "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "tz": tz,
        }

    def _import(
        self,
        symbol: str,
        timeframe: str,
        cols: Cols,
        rows_in: int,
        in_dups: int,
        key_of: Any,
        path_of: Any,
        columns: Mapping[str, type[np.generic]],
        mode: Literal["error", "replace", "rebuild"],
        source: dict[str, Any],
        existing: Any = None,
    ) -> ImportResult:
        keys = np.asarray(key_of(cols["time"]), np.int64)
        cuts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
        starts = np.concatenate([[0], cuts]).astype(np.int64) if len(keys) else np.zeros(0, np.int64)
        stops = np.append(cuts, len(keys)).astype(np.int64) if len(keys) else np.zeros(0, np.int64)
        if len(cols["time"]):  # the range this source covers: a later replace of it clears it all
            source = {**source, "first_ns": int(cols["time"][0]), "last_ns": int(cols["time"][-1])}
        with _locked(self.root):
            stored_parts: list[Path] = list(existing().values()) if existing is not None else []
            clear: list[tuple[int, int]] = []
            if mode == "replace" and len(cols["time"]):
                # Replace means the file's whole range, plus what an earlier import of the same file
                # covered (read with another --tz, its bars sit at other times): no stale bar survives.
                clear = [(source["first_ns"], source["last_ns"]), *self._earlier_ranges(stored_parts, source)]
            plans: list[_Part] = []
            new = dups = replaced = removed = 0
            conflicts: list[I64] = []
            dup_rows: list[npt.NDArray[np.bool_]] = []
            touched: set[Path] = set()
            for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
                path = path_of(keys[a])
                touched.add(path)
                stored = self._read_all(path, columns) if path.exists() else None
                old_meta = self._meta(path)[0] if stored is not None else {}
                m = _merge(stored, {k: v[a:b] for k, v in cols.items()}, mode, clear)
                new += m.new
                dups += m.duplicates
                replaced += m.replaced
                removed += m.removed
                conflicts.append(m.conflict_times)
                dup_rows.append(m.dup_rows if m.dup_rows is not None else np.zeros(b - a, bool))
                if m.merged is not None:
                    plans.append(
                        _Part(path, self._table(m.merged, old_meta, source, symbol, timeframe, path))
                    )
            for path in stored_parts:
                if path in touched:
                    continue
                if mode == "rebuild":  # partitions with no incoming rows go away
                    removed += self._meta(path)[1]
                    plans.append(_Part(path, None))
                elif clear:  # replace: stale rows of the cleared ranges in partitions the file misses
                    m = _merge(
                        self._read_all(path, columns), {k: v[:0] for k, v in cols.items()}, mode, clear
                    )
                    if m.merged is not None:
                        removed += m.removed
                        keep = m.merged if len(m.merged["time"]) else None
                        plans.append(_Part(path, keep and self._table(
                            keep, self._meta(path)[0], None, symbol, timeframe, path)))  # fmt: skip
            if mode == "error":
                bad = np.concatenate(conflicts) if conflicts else np.zeros(0, np.int64)
                if len(bad):
                    raise DataError(
                        f"{symbol} {timeframe}: {len(bad)} time(s) from {source['source']} are already in "
                        f"catalog {self.root} with different values: "
                        f"{_listed(bad)}. Nothing was written. Check the "
                        "source time zone (--tz) and symbol; to overwrite the stored rows pass "
                        "--on-conflict replace"
                    )
            self._commit(plans)
        return ImportResult(
            symbol,
            timeframe,
            rows_in,
            new,
            dups + in_dups,
            tuple(str(p.path.relative_to(self.root)) for p in plans),
            replaced,
            removed,
            _ranges(cols["time"], np.concatenate(dup_rows) if dup_rows else np.zeros(0, bool)),
        )

    def _earlier_ranges(self, parts: Sequence[Path], source: Mapping[str, Any]) -> list[tuple[int, int]]:
        """Time ranges that earlier imports of the same file (same path or same content) covered."""
        out: set[tuple[int, int]] = set()
        for path in parts:
            for s in self._meta(path)[0].get("sources", []):
                same = s.get("source") == source["source"] or (
                    source.get("sha256") is not None and s.get("sha256") == source["sha256"]
                )
                if same and "first_ns" in s and "last_ns" in s:
                    out.add((int(s["first_ns"]), int(s["last_ns"])))
        return sorted(out)

    def _read_all(self, path: Path, columns: Mapping[str, type[np.generic]]) -> Cols:
        table = self._read_table(path, list(columns))
        out: Cols = {}
        for name, dtype in columns.items():
            arr = np.empty(table.num_rows, dtype)
            _np_column(table, name, dtype, arr, path)
            out[name] = arr
        return out

    @staticmethod
    def _table(
        cols: Cols,
        old_meta: Mapping[str, Any],
        source: dict[str, Any] | None,
        symbol: str,
        timeframe: str,
        path: Path,
    ) -> pa.Table:
        arrays = {
            name: pa.array(v.view("datetime64[ns]"), type=_TIME_TYPE) if name == "time" else pa.array(v)
            for name, v in cols.items()
        }
        sources = list(old_meta.get("sources", []))
        if source is not None:  # None: rows only removed, the contributors stay as they were
            sources = [s for s in sources if (s.get("source"), s.get("sha256")) != (
                source["source"], source["sha256"])]  # fmt: skip
            sources.append(source)
        meta = {
            "format_version": FORMAT_VERSION,
            "kind": "ticks" if timeframe == TICKS else "bars",
            "symbol": symbol,
            "timeframe": timeframe,
            "partition": path.stem if timeframe != TICKS else f"{path.parent.name}/{path.stem}",
            "rows": len(cols["time"]),
            "first_ns": int(cols["time"][0]),
            "last_ns": int(cols["time"][-1]),
            "tz": "UTC",
            "sources": sources,
        }
        return pa.table(arrays).replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})

    @staticmethod
    def _commit(plans: Sequence[_Part]) -> None:
        """Phase 1: every table to a temp file; phase 2: ``os.replace`` them all (module docstring)."""
        staged: list[tuple[Path, Path]] = []
        try:
            for part in plans:
                if part.table is None:
                    continue
                part.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = part.path.with_name(f".{part.path.name}.{uuid.uuid4().hex}.tmp")
                staged.append((tmp, part.path))
                _write_parquet(part.table, tmp)
        except BaseException:
            for tmp, _ in staged:
                with contextlib.suppress(OSError):
                    tmp.unlink()
            raise
        for tmp, target in staged:
            os.replace(tmp, target)
        for part in plans:
            if part.table is None:
                part.path.unlink(missing_ok=True)


def _check_mode(on_conflict: str) -> None:
    if on_conflict not in ("error", "replace"):
        raise ConfigError(f"on_conflict must be 'error' or 'replace', got {on_conflict!r}")


def _dedupe_bars(cols: Cols, what: str) -> tuple[Cols, int]:
    """Drop exact repeats of a time inside one input; a repeated time with different bars is an error."""
    ku, su, cu = _groups(cols["time"])
    if len(ku) == len(cols["time"]):
        return cols, 0
    multi = np.flatnonzero(cu > 1)
    cnt = cu[multi] - 1
    first = np.repeat(su[multi], cnt)
    later = first + (np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)) + 1
    same = _rows_equal(cols, first, cols, later)
    if not same.all():
        bad = np.unique(cols["time"][later[~same]])
        raise DataError(
            f"{what}: {len(bad)} time(s) appear more than once with different values: "
            f"{_listed(bad)}; "
            "fix the file (mt5tester data validate shows such rows) and import again"
        )
    return _take(cols, su), len(later)


def _ranges(time: I64, flag: npt.NDArray[np.bool_]) -> tuple[tuple[int, int, int], ...]:
    """(first time, last time, rows) of each run of flagged rows in the sorted ``time``."""
    d = np.diff(np.concatenate(([0], flag.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return tuple(
        (int(time[a]), int(time[b - 1]), int(b - a))
        for a, b in zip(starts.tolist(), stops.tolist(), strict=True)
    )


def _listed(times: I64) -> str:
    shown = ", ".join(iso(int(t)) for t in times[:_MAX_LISTED])
    more = len(times) - _MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def _parse_tf(timeframe: Timeframe | str) -> Timeframe:
    if isinstance(timeframe, Timeframe):
        return timeframe
    try:
        return Timeframe.parse(timeframe)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _fmt(ns: int | None) -> str:
    return "-inf" if ns is None else iso(ns)
