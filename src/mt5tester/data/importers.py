"""Importers for the market-data files users bring: MT5 exports, tick files and generic tables.

Everything returned is UTC int64 nanoseconds (ARCHITECTURE section 2): ``Bars`` for bars, ``Ticks`` for
ticks. Arrays are read-only (market data is a value, shared by every layer).

Formats
-------
* MT5 "Export bars" CSV (Symbols -> Bars -> Export): tab-separated, header
  ``<DATE> <TIME> <OPEN> <HIGH> <LOW> <CLOSE> <TICKVOL> <VOL> <SPREAD>``; D1 and higher exports have
  no ``<TIME>`` column. Header names are matched case-insensitively without ``<>`` and with the usual
  renames (``tickvolume``, ``tick_volume``, ``volume``...). Dates ``YYYY.MM.DD``, times ``HH:MM:SS`` or
  ``HH:MM``. CRLF or LF, optional UTF-8 BOM; UTF-16 files (some Windows tools re-save so) are decoded.
* MT5 "Export ticks" CSV: ``<DATE> <TIME> <BID> <ASK> <LAST> <VOLUME> <FLAGS>``, times ``HH:MM:SS.mmm``.
  MT5 leaves a price cell empty when that price did not change in the tick, so BID/ASK/LAST are
  forward-filled (a BID/ASK cell empty before any value is an error; LAST before any value is 0.0,
  which is what MT5 reports for FX); an empty VOLUME is 0; FLAGS is required.
* Tick Parquet (``time`` tz-aware, ``bid``, ``ask``; optional ``last``, ``volume``, ``flags``).
* Generic CSV/Parquet bars with a column mapping, bid-only or bid+ask.

Errors never drop rows: a malformed line (wrong column count, unparsable number, date or time, empty
required cell, NaN/inf price) raises ``DataError`` with the file, the 1-based line number and the line's
text, and nothing is returned. Semantic checks (high < low, gaps, order) belong to validation.

Source time zones (``tz``): "UTC", a fixed offset ("+02:00", "UTC+3") or an IANA zone
("Europe/Athens"), parsed by ``mt5tester.data.resample.parse_server_tz``. With a DST zone:

* a local time that does not exist (spring-forward gap) raises ``DataError``: an MT5 server clock never
  shows it, so the declared zone is wrong for the file (e.g. the broker follows US DST rules);
* a local time that occurs twice (fall-back hour) is resolved from the file order, like pandas'
  ``ambiguous="infer"``: a row is the *second* occurrence (standard time) only if an earlier row of the
  file already showed that wall time or a later one (the server clock went back); otherwise it is the
  first occurrence (summer time). A broker's history has each bar time once, and a server whose clock
  repeats an hour updates the bars it already has, so the single copy started at the first occurrence;
  this keeps the UTC times increasing wherever the file's times increase.

Speed: pyarrow.csv parses the numbers (multi-threaded, explicit types); dates and times are parsed with
numpy arithmetic on the fixed-width bytes of the text columns, which also yields the first bad row
directly. Only when pyarrow itself rejects the file does a slow line-by-line pass run, to find the line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from os import PathLike
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mt5tester.errors import ConfigError, DataError
from mt5tester.model.bars import F64, I32, I64, Bars
from mt5tester.model.symbol import symbol_name_problem
from mt5tester.model.ticks import Ticks
from mt5tester.model.time import DAY_NS, HOUR_NS, MINUTE_NS, SECOND_NS, parse_server_tz
from mt5tester.model.timeframe import Timeframe

__all__ = [
    "ReadReport",
    "parse_mt5_file_name",
    "read_bars_table",
    "read_bars_table_checked",
    "read_mt5_bars_csv",
    "read_mt5_bars_csv_checked",
    "read_mt5_ticks_csv",
    "read_ticks_parquet",
    "write_mt5_bars_csv",
]

PathArg = str | PathLike[str]
_A = TypeVar("_A", bound=npt.NDArray[Any])
U8 = npt.NDArray[np.uint8]
BoolArr = npt.NDArray[np.bool_]

_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)

_BLOCK_SIZE = 4 << 20
_PARQUET_SUFFIXES = frozenset({".parquet", ".pq", ".parq"})


# --------------------------------------------------------------------------------------------------
# Raw text: bytes, header, line lookup for error messages


class _Text:
    """A text file held in memory with what error messages need: its name and its lines."""

    def __init__(self, path: PathArg) -> None:
        self.path = Path(path)
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise DataError(f"{self.path}: cannot read file: {exc.strerror or exc}") from None
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            try:
                raw = raw.decode("utf-16").encode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{self.path}: invalid UTF-16 text: {exc}") from None
        elif raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        end = len(raw)
        while end and raw[end - 1] in (10, 13):  # trailing newlines are not rows
            end -= 1
        if end == 0:
            raise DataError(f"{self.path}: empty file")
        self.raw = raw
        self.end = end
        nl = raw.find(b"\n", 0, end)
        self.body_start = end if nl < 0 else nl + 1
        try:
            self.header = raw[: nl if nl >= 0 else end].decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            raise DataError(f"{self.path}: line 1: header is not text: {raw[:80]!r}") from None
        if self.body_start >= end:
            raise DataError(f"{self.path}: line 1: only a header, no data rows: {self.header!r}")
        self._newlines: npt.NDArray[np.intp] | None = None

    @property
    def delimiter(self) -> str:
        for d in ("\t", ";", ","):
            if d in self.header:
                return d
        return "\t"

    def line(self, lineno: int) -> str:
        """Text of a 1-based line, without its line ending."""
        if self._newlines is None:
            self._newlines = np.flatnonzero(np.frombuffer(self.raw, dtype=np.uint8, count=self.end) == 10)
        nls = self._newlines
        start = 0 if lineno <= 1 else int(nls[lineno - 2]) + 1
        stop = int(nls[lineno - 1]) if lineno - 1 < len(nls) else self.end
        return self.raw[start:stop].decode("utf-8", "replace").rstrip("\r")

    def row_error(self, row: int, reason: str) -> DataError:
        """Error for data row ``row`` (0-based, after the header line)."""
        lineno = row + 2
        return DataError(f"{self.path}: line {lineno}: {reason}: {self.line(lineno)!r}")

    def body(self) -> pa.Buffer:
        return pa.py_buffer(self.raw).slice(self.body_start, self.end - self.body_start)


def _norm(name: str) -> str:
    return re.sub(r"[<>\s\"']", "", name).lower()


def _canonical_columns(src: _Text, aliases: Mapping[str, str]) -> list[str]:
    """Canonical name per header cell (``aliases``: normalised header name -> canonical name)."""
    names: list[str] = []
    for i, cell in enumerate(src.header.split(src.delimiter)):
        canon = aliases.get(_norm(cell))
        if canon is not None and canon in names:
            raise DataError(f"{src.path}: line 1: column {canon!r} appears twice: {src.header!r}")
        names.append(canon if canon is not None else f"_ignored_{i}")
    return names


def _require(src_name: object, found: Sequence[str], wanted: Sequence[str], shown: Sequence[str]) -> None:
    missing = [w for w in wanted if w not in found]
    if missing:
        raise DataError(
            f"{src_name}: missing required column(s) {', '.join(missing)}; "
            f"found: {', '.join(shown) or '(none)'}"
        )


# --------------------------------------------------------------------------------------------------
# CSV parsing with pyarrow, slow pass to locate a bad line

_INT_RE = re.compile(r"[+-]?\d+")


def _cell_ok(typ: pa.DataType, text: str, nullable: bool) -> bool:
    if text == "":
        return nullable or pa.types.is_string(typ)
    if pa.types.is_string(typ):
        return True
    if pa.types.is_integer(typ):
        return _INT_RE.fullmatch(text) is not None
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() == text and "_" not in text


def _locate_bad_line(
    src: _Text, names: Sequence[str], types: Mapping[str, pa.DataType], nullable: set[str]
) -> None:
    """Slow pass after pyarrow refused the file: raise for the first line that cannot be parsed."""
    ncols = len(names)
    delim = src.delimiter
    checks = [(i, types[n], n in nullable) for i, n in enumerate(names) if n in types]
    for lineno, raw_line in enumerate(src.raw[src.body_start : src.end].split(b"\n"), start=2):
        try:
            line = raw_line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            raise DataError(f"{src.path}: line {lineno}: not UTF-8 text: {raw_line!r}") from None
        cells = line.split(delim)
        if len(cells) != ncols:
            raise DataError(
                f"{src.path}: line {lineno}: expected {ncols} columns, got {len(cells)}: {line!r}"
            )
        for i, typ, can_be_empty in checks:
            if not _cell_ok(typ, cells[i], can_be_empty):
                what = "empty" if cells[i] == "" else "unparsable"
                raise DataError(
                    f"{src.path}: line {lineno}: {what} {names[i]} value {cells[i]!r} "
                    f"(expected {typ}): {line!r}"
                )


def _read_csv(
    src: _Text, names: list[str], types: Mapping[str, pa.DataType], nullable: set[str] | None = None
) -> pa.Table:
    """Parse the body with fixed column names/types; every line must have ``len(names)`` cells."""
    nullable = nullable or set()
    read = pacsv.ReadOptions(column_names=names, block_size=_BLOCK_SIZE, use_threads=True)
    parse = pacsv.ParseOptions(
        delimiter=src.delimiter,
        quote_char=False,
        double_quote=False,
        escape_char=False,
        newlines_in_values=False,
        ignore_empty_lines=False,  # keeps data row i on line i + 2, and makes blank lines errors
    )
    convert = pacsv.ConvertOptions(
        column_types=dict(types),
        include_columns=list(types),
        null_values=[""] if nullable else [],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        check_utf8=True,
    )
    try:
        table = pacsv.read_csv(pa.BufferReader(src.body()), read, parse, convert)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        _locate_bad_line(src, names, types, nullable)
        raise DataError(f"{src.path}: cannot parse: {exc}") from None
    for name in types:
        if name in nullable:
            continue
        col = table.column(name)
        if col.null_count:
            row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise src.row_error(row, f"empty {name} value")
    return table


# --------------------------------------------------------------------------------------------------
# Dates and times: numpy arithmetic on fixed-width bytes

_DIM = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _groups(arr: pa.Array | pa.ChunkedArray) -> list[tuple[npt.NDArray[np.intp] | None, U8]]:
    """Split a string column into (row indices or None for all, bytes matrix) per string length."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if arr.type != pa.string():
        arr = arr.cast(pa.string())
    n = len(arr)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=n + 1, offset=arr.offset * 4).astype(np.int64)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    if n and (lengths == lengths[0]).all():
        w = int(lengths[0])
        start = int(offsets[0])
        return [(None, data[start : start + n * w].reshape(n, w))]
    out: list[tuple[npt.NDArray[np.intp] | None, U8]] = []
    for w in np.unique(lengths):
        idx = np.flatnonzero(lengths == w)
        mat = data[offsets[idx][:, None] + np.arange(int(w))] if w else np.zeros((len(idx), 0), np.uint8)
        out.append((idx, mat))
    return out


def _digits(mat: U8, cols: Sequence[int]) -> tuple[npt.NDArray[np.int64], BoolArr]:
    """Integer value of the digit columns ``cols`` and a per-row "all were digits" mask."""
    d = mat[:, list(cols)].astype(np.int64) - 48
    ok: BoolArr = np.asarray(((d >= 0) & (d <= 9)).all(axis=1), dtype=bool)
    val = np.zeros(len(mat), np.int64)
    for j in range(d.shape[1]):
        val = val * 10 + d[:, j]
    return val, ok


def _days_from_civil(y: npt.NDArray[np.int64], m: npt.NDArray[np.int64], d: npt.NDArray[np.int64]) -> I64:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm, vectorised)."""
    y = y - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _parse_date(mat: U8) -> tuple[I64, BoolArr]:
    """``YYYY.MM.DD`` (also ``-`` or ``/`` separators) -> ns of midnight; second item = bad rows."""
    if mat.shape[1] != 10:
        return np.zeros(len(mat), np.int64), np.ones(len(mat), bool)
    y, ok1 = _digits(mat, (0, 1, 2, 3))
    m, ok2 = _digits(mat, (5, 6))
    d, ok3 = _digits(mat, (8, 9))
    sep = mat[:, 4]
    ok = ok1 & ok2 & ok3 & np.isin(sep, np.frombuffer(b".-/", np.uint8)) & (mat[:, 7] == sep)
    ok &= (m >= 1) & (m <= 12) & (d >= 1) & (y >= 1)
    mc = np.clip(m, 1, 12)
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    ok &= d <= _DIM[mc] + ((mc == 2) & leap)
    return _days_from_civil(y, mc, d) * DAY_NS, ~ok


def _parse_time(mat: U8) -> tuple[I64, BoolArr]:
    """``HH:MM``, ``HH:MM:SS`` or ``HH:MM:SS.f`` (1-9 fraction digits) -> ns of day; second = bad rows."""
    n, w = mat.shape
    if w not in (5, 8) and not 10 <= w <= 18:
        return np.zeros(n, np.int64), np.ones(n, bool)
    h, ok = _digits(mat, (0, 1))
    mi, ok2 = _digits(mat, (3, 4))
    ok &= ok2 & (mat[:, 2] == ord(":")) & (h < 24) & (mi < 60)
    ns = h * HOUR_NS + mi * MINUTE_NS
    if w >= 8:
        s, ok3 = _digits(mat, (6, 7))
        ok &= ok3 & (mat[:, 5] == ord(":")) & (s < 60)
        ns += s * SECOND_NS
    if w >= 10:
        k = w - 9
        frac, ok4 = _digits(mat, range(9, w))
        ok &= ok4 & (mat[:, 8] == ord("."))
        ns += frac * 10 ** (9 - k)
    return ns, ~ok


def _parse_datetime(mat: U8) -> tuple[I64, BoolArr]:
    """``DATE``, ``DATE TIME`` or ``DATETTIME`` with an optional trailing ``Z``."""
    n, w = mat.shape
    if w and n and (mat[:, -1] == ord("Z")).all():
        mat, w = mat[:, :-1], w - 1
    days, bad = _parse_date(mat[:, :10])
    if w == 10:
        return days, bad
    if w < 16:
        return days, np.ones(n, bool)
    tod, bad_t = _parse_time(mat[:, 11:])
    sep_ok = (mat[:, 10] == ord(" ")) | (mat[:, 10] == ord("T"))
    return days + tod, bad | bad_t | ~sep_ok


def _apply_groups(
    arr: pa.Array | pa.ChunkedArray, parse: Callable[[U8], tuple[I64, BoolArr]], n: int
) -> tuple[I64, int]:
    """Parse a string column group by group; returns the values and the first bad row (-1 if none)."""
    out = np.empty(n, np.int64)
    first_bad = -1
    for idx, mat in _groups(arr):
        vals, bad = parse(mat)
        if idx is None:
            out[:] = vals
            rows = np.flatnonzero(bad)
        else:
            out[idx] = vals
            rows = idx[bad]
        if len(rows) and (first_bad < 0 or int(rows[0]) < first_bad):
            first_bad = int(rows.min())
    return out, first_bad


def _date_time_column(
    table: pa.Table, fail: Callable[[int, str], DataError], date: str, time: str | None
) -> I64:
    n = table.num_rows
    days, bad_d = _apply_groups(table.column(date), _parse_date, n)
    if time is None:
        if bad_d >= 0:
            raise fail(bad_d, f"bad {date} (expected YYYY.MM.DD)")
        return days
    tod, bad_t = _apply_groups(table.column(time), _parse_time, n)
    bad = min((b for b in (bad_d, bad_t) if b >= 0), default=-1)
    if bad >= 0:
        what = (
            f"bad {date} (expected YYYY.MM.DD)" if bad == bad_d else f"bad {time} (expected HH:MM[:SS[.mmm]])"
        )
        raise fail(bad, what)
    return days + tod


# --------------------------------------------------------------------------------------------------
# Time zones


def _tz(tz: str | tzinfo) -> tzinfo:
    try:
        return parse_server_tz(tz)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _fixed_offset_ns(zone: tzinfo) -> int | None:
    if isinstance(zone, timezone):
        off = zone.utcoffset(None)
        return int(off.total_seconds()) * SECOND_NS
    return None


def _local_to_utc(local: I64, zone: tzinfo, fail: Callable[[int, str], DataError]) -> I64:
    """Wall-clock ns in ``zone`` -> UTC ns, with the DST policy of the module docstring."""
    fixed = _fixed_offset_ns(zone)
    if fixed is not None:
        return local - np.int64(fixed) if fixed else local
    idx = pd.DatetimeIndex(local.view("datetime64[ns]"))
    utc = idx.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").as_unit("ns").asi8.copy()
    problem = np.flatnonzero(utc == np.iinfo(np.int64).min)  # NaT: ambiguous or nonexistent wall time
    if len(problem) == 0:
        return utc
    # Rows in a DST transition: few, resolved one by one with zoneinfo.
    seen_max = np.maximum.accumulate(local)
    for i in problem:
        t = int(local[i])
        wall = datetime(1970, 1, 1) + timedelta(microseconds=t // 1000)
        candidates = []
        for fold in (0, 1):
            off = wall.replace(tzinfo=zone, fold=fold).utcoffset()
            if off is None:
                raise fail(int(i), f"time zone {zone} gives no UTC offset")
            u = t - int(off.total_seconds()) * SECOND_NS
            back = (_EPOCH_UTC + timedelta(microseconds=u // 1000)).astimezone(zone).replace(tzinfo=None)
            if back == wall:  # this fold is a real occurrence of the wall time
                candidates.append(u)
        if not candidates:
            raise fail(
                int(i),
                f"local time does not exist in {zone} (skipped by a DST change); the file's clock does not "
                "follow this zone: declare the broker's real zone or a fixed offset",
            )
        second = i > 0 and seen_max[i - 1] >= t and len(candidates) == 2
        utc[i] = max(candidates) if second else min(candidates)
    return utc


def _utc_to_local(utc: I64, zone: tzinfo) -> I64:
    fixed = _fixed_offset_ns(zone)
    if fixed is not None:
        return utc + np.int64(fixed) if fixed else utc
    idx = pd.DatetimeIndex(utc.view("datetime64[ns]")).tz_localize("UTC").tz_convert(zone)
    return idx.tz_localize(None).as_unit("ns").asi8.copy()


# --------------------------------------------------------------------------------------------------
# Helpers shared by the readers


def _frozen(a: _A) -> _A:
    out = cast(_A, np.ascontiguousarray(a))
    out.flags.writeable = False
    return out


def _frozen_bars(
    symbol: str, timeframe: Timeframe, utc: I64, prices: list[F64], tick_volume: I64, spread: np.ndarray
) -> Bars:
    """Bars from the parsed columns (prices: open, high, low, close), every array read-only."""
    o, h, lo, c = prices
    return Bars(
        symbol,
        timeframe,
        _frozen(utc),
        _frozen(o),
        _frozen(h),
        _frozen(lo),
        _frozen(c),
        _frozen(tick_volume),
        _frozen(spread),
    )


def _float_col(table: pa.Table, name: str, fail: Callable[[int, str], DataError], label: str = "") -> F64:
    col = table.column(name)
    if col.null_count:
        row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise fail(row, f"empty {label or name} value")
    vals = np.asarray(col.cast(pa.float64()).to_numpy(), dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(vals))
    if len(bad):
        raise fail(int(bad[0]), f"{label or name} is not a finite number")
    return vals


def _int_col(table: pa.Table, name: str, fail: Callable[[int, str], DataError], dtype: type) -> npt.NDArray:
    col = table.column(name)
    if pa.types.is_integer(col.type):
        if col.null_count:
            row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise fail(row, f"empty {name} value")
        return np.asarray(col.to_numpy(), dtype=dtype)
    vals = _float_col(table, name, fail)
    bad = np.flatnonzero(vals != np.round(vals))
    if len(bad):
        raise fail(int(bad[0]), f"{name} is not a whole number")
    return vals.astype(dtype)


_TF_BY_PERIOD = {tf.period_ns: tf for tf in Timeframe if tf.is_fixed}


def _infer_timeframe(local: I64, has_time: bool, where: object) -> Timeframe:
    """Timeframe from the median spacing of the (wall-clock) bar times."""
    if len(local) < 2:
        if not has_time:
            return Timeframe.D1
        raise DataError(f"{where}: cannot infer the timeframe from {len(local)} bar; pass --timeframe TF")
    pos = np.diff(np.unique(local))  # rows out of order or repeated do not change the spacing
    if len(pos) == 0:
        raise DataError(
            f"{where}: cannot infer the timeframe: bar times do not increase; pass --timeframe TF"
        )
    k = len(pos) // 2
    med = int(np.partition(pos, k)[k])
    tf = _TF_BY_PERIOD.get(med)
    if tf is None and 28 * DAY_NS <= med <= 31 * DAY_NS:
        tf = Timeframe.MN1
    if tf is None:
        raise DataError(
            f"{where}: cannot infer the timeframe: median bar spacing {med / MINUTE_NS:g} min is not an "
            "MT5 timeframe; pass --timeframe TF"
        )
    return tf


@dataclass(frozen=True)
class ReadReport:
    """What a bar reader found in the file's row order: rows out of time order and exact repeats of a
    time (both are stored faithfully, sorted and once, but said), as 1-based line (CSV) or row numbers."""

    unit: str = "line"
    out_of_order: tuple[tuple[int, int], ...] = ()  # (line, UTC ns): earlier than a row above it
    repeated: tuple[tuple[int, int], ...] = ()  # (line, UTC ns): same time as a row above it

    def to_dict(self) -> dict[str, Any]:
        def listed(rows: tuple[tuple[int, int], ...]) -> list[dict[str, Any]]:
            return [{self.unit: n, "time": _iso(t)} for n, t in rows]

        return {"out_of_order": listed(self.out_of_order), "repeated_in_file": listed(self.repeated)}


def _iso(ns: int) -> str:
    return (_EPOCH_UTC + timedelta(microseconds=int(ns) // 1000)).isoformat()


def _order_report(utc: I64, first_number: int, unit: str) -> ReadReport:
    """Rows out of time order and repeated times, numbered from ``first_number`` (the first row)."""
    if len(utc) < 2:
        return ReadReport(unit)
    back = np.flatnonzero(utc[1:] < np.maximum.accumulate(utc)[:-1]) + 1
    order = np.argsort(utc, kind="stable")
    st = utc[order]
    rep = np.sort(order[1:][st[1:] == st[:-1]])
    return ReadReport(
        unit,
        tuple((int(i) + first_number, int(utc[i])) for i in back),
        tuple((int(i) + first_number, int(utc[i])) for i in rep),
    )


_GRID_SHOWN = 5


def _check_repeats(
    utc: I64, columns: Sequence[npt.NDArray[Any]], where: object, first_number: int, unit: str
) -> None:
    """Refuse a time that appears twice with different values: which row is right cannot be known."""
    order = np.argsort(utc, kind="stable")
    st = utc[order]
    same = np.flatnonzero(st[1:] == st[:-1]) + 1
    if len(same) == 0:
        return
    later = order[same]
    first = order[np.searchsorted(st, st[same], "left")]
    differs = np.zeros(len(later), bool)
    for col in columns:
        differs |= col[later] != col[first]
    bad = np.flatnonzero(differs)
    if len(bad) == 0:
        return
    shown = ", ".join(
        f"{unit}s {int(first[i]) + first_number} and {int(later[i]) + first_number} "
        f"({_iso(int(utc[later[i]]))[:19]} UTC)"
        for i in bad[:_GRID_SHOWN]
    )
    more = f" and {len(bad) - _GRID_SHOWN} more" if len(bad) > _GRID_SHOWN else ""
    raise DataError(
        f"{where}: {len(bad)} time(s) appear more than once with different values: {shown}{more}. "
        "Only one bar can be stored per time: remove the wrong rows and import again"
    )


def _check_grid(
    local: I64, utc: I64, tf: Timeframe, wall_clock: bool, where: object, first_number: int, unit: str
) -> None:
    """Refuse bars whose open time is off the timeframe's grid (an H1 bar at :17): stored among the H1
    bars they would be wrong for every H1 strategy and every resample. MT5 opens a bar at a multiple of
    its period in the server clock (spec 5.1); D1/W1/MN1 at server midnight, MN1 on the 1st."""
    if wall_clock:
        step = min(tf.period_ns, DAY_NS) if tf.is_fixed else DAY_NS
        off = local % step != 0
        if tf is Timeframe.MN1:
            month = local.view("datetime64[ns]").astype("datetime64[M]").astype("datetime64[ns]")
            off |= month.view(np.int64) != local
    else:
        # tz-aware times without the server zone: at least the minute-of-hour grid (whole-hour zones) and
        # the phase most bars share (+05:30 servers put H1 bars at :30 UTC).
        step = min(tf.period_ns if tf.is_fixed else HOUR_NS, HOUR_NS)
        phases, counts = np.unique(utc % step, return_counts=True)
        off = utc % step != phases[int(np.argmax(counts))]
    bad = np.flatnonzero(off)
    if len(bad) == 0:
        return
    shown = ", ".join(
        f"{unit} {int(i) + first_number} ({_iso(int(utc[i]))[:19]} UTC)" for i in bad[:_GRID_SHOWN]
    )
    more = f" and {len(bad) - _GRID_SHOWN} more" if len(bad) > _GRID_SHOWN else ""
    raise DataError(
        f"{where}: {len(bad)} bar(s) are not on the {tf.name} grid of the file's clock (an {tf.name} bar "
        f"opens at a whole multiple of its period): {shown}{more}. They cannot be stored as {tf.name} "
        "bars: pass the right --timeframe, or fix or remove these rows"
    )


# --------------------------------------------------------------------------------------------------
# MT5 bars CSV

_BAR_ALIASES = {
    "date": "date",
    "time": "time",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "tickvol": "tickvol",
    "tickvolume": "tickvol",
    "tick_volume": "tickvol",
    "tick_vol": "tickvol",
    "ticks": "tickvol",
    "vol": "vol",
    "volume": "vol",
    "realvolume": "vol",
    "real_volume": "vol",
    "spread": "spread",
}
_BAR_REQUIRED = ("date", "open", "high", "low", "close", "tickvol", "spread")


def read_mt5_bars_csv(
    path: PathArg, symbol: str, timeframe: Timeframe | None = None, tz: str | tzinfo = "UTC"
) -> Bars:
    """Read an MT5 "Export bars" CSV whose times are wall-clock times in ``tz``; store them as UTC.

    ``timeframe=None`` infers it from the median bar spacing (no ``<TIME>`` column and one bar: D1).
    ``<VOL>`` (real volume) is not kept: it is 0 for OTC FX and ``Bars`` has no field for it.
    Bars off the timeframe's grid are refused (``DataError`` with their lines); rows out of time order
    are kept in file order and reported by ``read_mt5_bars_csv_checked``.
    """
    return read_mt5_bars_csv_checked(path, symbol, timeframe, tz)[0]


def read_mt5_bars_csv_checked(
    path: PathArg,
    symbol: str,
    timeframe: Timeframe | None = None,
    tz: str | tzinfo = "UTC",
    check_grid: bool = True,
) -> tuple[Bars, ReadReport]:
    """``read_mt5_bars_csv`` plus what the file's row order showed (lines out of order, repeats).
    ``check_grid=False`` keeps off-grid bars (for validation, which reports them as findings)."""
    zone = _tz(tz)
    src = _Text(path)
    names = _canonical_columns(src, _BAR_ALIASES)
    shown = src.header.split(src.delimiter)
    _require(src.path, names, _BAR_REQUIRED, shown)
    has_time = "time" in names
    types: dict[str, pa.DataType] = {"date": pa.string()}
    if has_time:
        types["time"] = pa.string()
    types.update({p: pa.float64() for p in ("open", "high", "low", "close")})
    types["tickvol"] = pa.int64()
    types["spread"] = pa.int32()
    table = _read_csv(src, names, types)
    local = _date_time_column(table, src.row_error, "date", "time" if has_time else None)
    prices = [_float_col(table, p, src.row_error) for p in ("open", "high", "low", "close")]
    tick_volume = np.asarray(table.column("tickvol").to_numpy(), dtype=np.int64)
    spread = np.asarray(table.column("spread").to_numpy(), dtype=np.int32)
    tf = timeframe if timeframe is not None else _infer_timeframe(local, has_time, src.path)
    utc = _local_to_utc(local, zone, src.row_error)
    if check_grid:
        _check_grid(local, utc, tf, True, src.path, 2, "line")
        _check_repeats(utc, [*prices, tick_volume, spread], src.path, 2, "line")
    return _frozen_bars(symbol, tf, utc, prices, tick_volume, spread), _order_report(utc, 2, "line")


def write_mt5_bars_csv(
    bars: Bars, path: PathArg, tz: str | tzinfo = "UTC", digits: int | None = None
) -> None:
    """Write ``bars`` as an MT5 "Export bars" CSV (tab, CRLF, times as wall clock in ``tz``).

    D1/W1/MN1 files have no ``<TIME>`` column, like MT5's. Prices are written with ``digits`` decimals,
    or (None) with the shortest text that reads back to the identical float. ``<VOL>`` is written as 0.
    """
    zone = _tz(tz)
    local = _utc_to_local(np.asarray(bars.time, dtype=np.int64), zone)
    if (local % SECOND_NS != 0).any():
        raise DataError(f"{bars.symbol}: MT5 bar files hold whole seconds; bar times have fractions")
    ts = pa.array((local // SECOND_NS).view("datetime64[s]"), type=pa.timestamp("s"))
    daily = bars.timeframe in (Timeframe.D1, Timeframe.W1, Timeframe.MN1)
    cols: dict[str, pa.Array] = {"<DATE>": pc.strftime(ts, format="%Y.%m.%d")}
    if not daily:
        cols["<TIME>"] = pc.strftime(ts, format="%H:%M:%S")
    for name, arr in (
        ("<OPEN>", bars.open),
        ("<HIGH>", bars.high),
        ("<LOW>", bars.low),
        ("<CLOSE>", bars.close),
    ):
        if digits is None:
            cols[name] = pc.cast(pa.array(arr, type=pa.float64()), pa.string())
        else:
            cols[name] = pa.array([f"{v:.{digits}f}" for v in arr.tolist()], type=pa.string())
    cols["<TICKVOL>"] = pa.array(bars.tick_volume, type=pa.int64())
    cols["<VOL>"] = pa.array(np.zeros(len(bars), np.int64))
    cols["<SPREAD>"] = pa.array(bars.spread, type=pa.int32())
    table = pa.table(cols)
    out = Path(path)
    with out.open("wb") as fh:
        fh.write(("\t".join(cols) + "\r\n").encode("ascii"))
        opts = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none", eol="\r\n")
        pacsv.write_csv(table, fh, opts)


# --------------------------------------------------------------------------------------------------
# Ticks

_TICK_ALIASES = {
    "date": "date",
    "time": "time",
    "bid": "bid",
    "ask": "ask",
    "last": "last",
    "volume": "volume",
    "vol": "volume",
    "flags": "flags",
}


def _ffill(vals: F64, present: BoolArr) -> tuple[F64, int]:
    """Forward-fill the cells where ``present`` is False; returns the values and the count of leading gaps."""
    pos = np.where(present, np.arange(len(vals)), 0)
    np.maximum.accumulate(pos, out=pos)
    filled = vals[pos]
    lead = int(np.argmax(present)) if present.any() else len(vals)
    return filled, lead


def read_mt5_ticks_csv(path: PathArg, symbol: str, tz: str | tzinfo = "UTC") -> Ticks:
    """Read an MT5 "Export ticks" CSV (wall-clock times in ``tz``), forward-filling unchanged prices."""
    zone = _tz(tz)
    src = _Text(path)
    names = _canonical_columns(src, _TICK_ALIASES)
    _require(src.path, names, ("date", "time", "bid", "ask", "flags"), src.header.split(src.delimiter))
    types: dict[str, pa.DataType] = {"date": pa.string(), "time": pa.string(), "bid": pa.float64()}
    types["ask"] = pa.float64()
    if "last" in names:
        types["last"] = pa.float64()
    if "volume" in names:
        types["volume"] = pa.float64()
    types["flags"] = pa.int32()
    table = _read_csv(src, names, types, nullable={"bid", "ask", "last", "volume"})
    n = table.num_rows
    local = _date_time_column(table, src.row_error, "date", "time")
    prices: dict[str, F64] = {}
    for name in ("bid", "ask", "last"):
        if name not in types:
            prices[name] = np.zeros(n, np.float64)
            continue
        col = table.column(name)
        present = ~col.is_null().to_numpy(zero_copy_only=False)
        vals = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
        bad = np.flatnonzero(present & ~np.isfinite(vals))
        if len(bad):
            raise src.row_error(int(bad[0]), f"{name} is not a finite number")
        filled, lead = _ffill(vals, present)
        if lead:
            if name != "last":
                raise src.row_error(0, f"empty {name} before any {name} value (nothing to carry forward)")
            filled[:lead] = 0.0
        prices[name] = filled
    if "volume" in types:
        col = table.column("volume")
        present = ~col.is_null().to_numpy(zero_copy_only=False)
        vol = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
        vol[~present] = 0.0  # an empty VOLUME cell: no volume in this tick
        bad = np.flatnonzero(~np.isfinite(vol) | (vol != np.round(vol)) | (vol < 0))
        if len(bad):
            raise src.row_error(int(bad[0]), "volume is not a whole non-negative number")
        volume = vol.astype(np.int64)
    else:
        volume = np.zeros(n, np.int64)
    flags = np.asarray(table.column("flags").to_numpy(), dtype=np.int32)
    utc = _local_to_utc(local, zone, src.row_error)
    return Ticks(
        symbol,
        _frozen(utc),
        _frozen(prices["bid"]),
        _frozen(prices["ask"]),
        _frozen(prices["last"]),
        _frozen(volume),
        _frozen(flags),
    )


def _row_fail(path: Path) -> Callable[[int, str], DataError]:
    def fail(row: int, reason: str) -> DataError:
        return DataError(f"{path}: row {row + 1}: {reason}")

    return fail


def _aware_time_ns(col: pa.ChunkedArray, path: Path, name: str) -> I64:
    if not pa.types.is_timestamp(col.type) or col.type.tz is None:
        raise DataError(
            f"{path}: column {name!r} must be a time-zone-aware timestamp (naive times are ambiguous), "
            f"found {col.type}"
        )
    if col.null_count:
        row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{path}: row {row + 1}: empty {name}")
    ns = col.cast(pa.timestamp("ns", tz=col.type.tz))
    return np.asarray(ns.cast(pa.int64()).to_numpy(), dtype=np.int64)


def _tick_flags(bid: F64, ask: F64) -> I32:
    """TICK_FLAG_BID (2) / TICK_FLAG_ASK (4) where the price changed; the first tick has both (spec 4.9)."""
    flags = np.zeros(len(bid), np.int32)
    if len(bid):
        flags[0] = 6
        flags[1:] = np.where(bid[1:] != bid[:-1], 2, 0) | np.where(ask[1:] != ask[:-1], 4, 0)
    return flags


def read_ticks_parquet(path: PathArg, symbol: str, tz: str | tzinfo | None = None) -> Ticks:
    """Read Parquet ticks: ``time``, ``bid``, ``ask``; optional ``last``, ``volume``, ``flags``.

    ``time`` is tz-aware, or naive wall clock in ``tz`` (naive times without ``tz`` are refused: they
    are never assumed to be UTC); with tz-aware times ``tz`` must be None or UTC.

    Without a ``flags`` column the flags are derived as MT5 sets them for quote ticks: BID|ASK bits for
    the prices that changed from the previous tick (an exact repeat gets 0).
    """
    p = Path(path)
    table = _read_parquet(p)
    _require(p, table.column_names, ("time", "bid", "ask"), table.column_names)
    fail = _row_fail(p)
    n = table.num_rows
    if n == 0:
        raise DataError(f"{p}: no rows")
    col = table.column("time")
    if pa.types.is_timestamp(col.type) and col.type.tz is None and tz is not None:
        naive = col.cast(pa.timestamp("ns")).cast(pa.int64()).to_numpy(zero_copy_only=False)
        if col.null_count:
            raise fail(int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0]), "empty time")
        time = _local_to_utc(np.asarray(naive, np.int64), _tz(tz), fail)
    elif pa.types.is_timestamp(col.type) and col.type.tz is None:
        raise ConfigError(
            f"{p}: column 'time' holds times without a time zone ({col.type}): pass --tz with the zone of "
            "the file's clock (e.g. --tz UTC); naive times are never assumed to be UTC"
        )
    else:
        if tz is not None and _fixed_offset_ns(_tz(tz)) != 0:
            raise ConfigError(f"{p}: tick times are already time-zone aware ({col.type}); leave out --tz")
        time = _aware_time_ns(col, p, "time")
    bid = _float_col(table, "bid", fail)
    ask = _float_col(table, "ask", fail)
    last = _float_col(table, "last", fail) if "last" in table.column_names else np.zeros(n, np.float64)
    volume = (
        _int_col(table, "volume", fail, np.int64) if "volume" in table.column_names else np.zeros(n, np.int64)
    )
    flags = (
        _int_col(table, "flags", fail, np.int32) if "flags" in table.column_names else _tick_flags(bid, ask)
    )
    return Ticks(
        symbol, _frozen(time), _frozen(bid), _frozen(ask), _frozen(last), _frozen(volume), _frozen(flags)
    )


def _read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    try:
        return pq.read_table(path, columns=columns)
    except FileNotFoundError:
        raise DataError(f"{path}: cannot read file: not found") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file: {exc}") from None


# --------------------------------------------------------------------------------------------------
# Generic tables

_PRICE_FIELDS = ("open", "high", "low", "close")


def read_bars_table(
    path: PathArg,
    symbol: str,
    timeframe: Timeframe,
    columns: Mapping[str, str] | None = None,
    tz: str | tzinfo | None = "UTC",
    point: float | None = None,
) -> Bars:
    """``read_bars_table_checked`` without the report."""
    return read_bars_table_checked(path, symbol, timeframe, columns, tz, point)[0]


def read_bars_table_checked(
    path: PathArg,
    symbol: str,
    timeframe: Timeframe,
    columns: Mapping[str, str] | None = None,
    tz: str | tzinfo | None = "UTC",
    point: float | None = None,
    check_grid: bool = True,
) -> tuple[Bars, ReadReport]:
    """Read bars from a CSV or Parquet table (by suffix: .parquet/.pq -> Parquet, else CSV).

    ``columns`` maps our names to the file's column names; unmapped names are looked up as is. Our names:
    ``time`` (timestamp, or text ``YYYY-MM-DD[ HH:MM[:SS[.f]]]``; with ``date`` it is the time of day),
    ``date``, ``open high low close`` (bid) or ``bid_open .. bid_close``, ``ask_close`` (with ``bid_*``),
    ``tick_volume`` (default 0), ``spread`` in points.

    Spread: a ``spread`` column if there is one; else, with bid+ask bars, ``round((ask_close -
    bid_close) / point)`` (``point`` required); else 0, meaning "take the spread from the symbol
    config". Text times and tz-naive timestamps are wall clock in ``tz`` (``tz=None``: undeclared, which
    such times refuse); tz-aware timestamps are converted to UTC and then ``tz`` must be None or "UTC".
    Off-grid bars are refused and the row order reported, as by ``read_mt5_bars_csv_checked``.
    """
    p = Path(path)
    mapping = dict(columns or {})
    zone = _tz(tz if tz is not None else "UTC")
    is_parquet = p.suffix.lower() in _PARQUET_SUFFIXES
    found: list[str]
    src: _Text | None = None
    if is_parquet:
        try:
            found = pq.read_schema(p).names
        except FileNotFoundError:
            raise DataError(f"{p}: cannot read file: not found") from None
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{p}: not a readable Parquet file: {exc}") from None
    else:
        src = _Text(p)
        found = [c.strip() for c in src.header.split(src.delimiter)]

    def col(name: str) -> str | None:
        if name in mapping:
            if mapping[name] not in found:
                raise DataError(
                    f"{p}: missing column {mapping[name]!r} (mapped from {name!r}); found: {', '.join(found)}"
                )
            return mapping[name]
        return name if name in found else None

    unknown = set(mapping) - {
        "time", "date", "tick_volume", "spread", *_PRICE_FIELDS,
        *(f"{s}_{f}" for s in ("bid", "ask") for f in _PRICE_FIELDS),
    }  # fmt: skip
    if unknown:
        raise ConfigError(f"read_bars_table: unknown target name(s) {sorted(unknown)} in the column mapping")
    wanted: dict[str, str] = {}  # our name -> file column
    missing: list[str] = []
    for our in ("time", *_PRICE_FIELDS):
        c = col(our) if our == "time" else (col(our) or col(f"bid_{our}"))
        if c is None:
            missing.append(our if our == "time" else f"{our} (or bid_{our})")
        else:
            wanted[our] = c
    if missing:
        raise DataError(f"{p}: missing required column(s) {', '.join(missing)}; found: {', '.join(found)}")
    for our in ("date", "tick_volume", "spread", "ask_close"):
        c = col(our)
        if c is not None:
            wanted[our] = c
    if "spread" not in wanted and "ask_close" in wanted and point is None:
        raise DataError(
            f"{p}: bid+ask bars need --point (the symbol's point, e.g. 0.00001) to turn ask - bid into "
            "spread points"
        )
    if point is not None and not point > 0:
        raise ConfigError(f"read_bars_table: point must be > 0, got {point}")

    if src is not None:
        file_to_our = {v: k for k, v in wanted.items()}
        names = [file_to_our.get(c, f"_ignored_{i}") for i, c in enumerate(found)]
        text_cols = {"time", "date"}
        types = {our: (pa.string() if our in text_cols else pa.float64()) for our in wanted}
        table = _read_csv(src, names, types)
        fail: Callable[[int, str], DataError] = src.row_error
    else:
        raw = _read_parquet(p, columns=list(dict.fromkeys(wanted.values())))
        table = pa.table({our: raw.column(c) for our, c in wanted.items()})
        fail = _row_fail(p)
    if table.num_rows == 0:
        raise DataError(f"{p}: no data rows")

    time_type = table.column("time").type
    first_number, unit = (2, "line") if src is not None else (1, "row")
    wall_clock = not (pa.types.is_timestamp(time_type) and time_type.tz is not None)
    if wall_clock and tz is None:
        raise ConfigError(
            f"{p}: column {wanted['time']!r} holds times without a time zone ({time_type}): pass --tz with "
            "the zone of the file's clock (e.g. --tz UTC, --tz Europe/Athens); naive times are never "
            "assumed to be UTC"
        )
    if not wall_clock:
        if _fixed_offset_ns(zone) != 0:
            raise DataError(
                f"{p}: column {wanted['time']!r} is already time-zone aware ({time_type.tz}); "
                "leave out --tz (or pass --tz UTC): the stored times are UTC already"
            )
        utc = _aware_time_ns(table.column("time"), p, wanted["time"])
        local = utc
    else:
        if pa.types.is_timestamp(time_type):
            local = np.asarray(
                table.column("time").cast(pa.timestamp("ns")).cast(pa.int64()).to_numpy(), np.int64
            )
        elif pa.types.is_string(time_type) or pa.types.is_large_string(time_type):
            if "date" in wanted:
                local = _date_time_column(table, fail, "date", "time")
            else:
                local, bad = _apply_groups(table.column("time"), _parse_datetime, table.num_rows)
                if bad >= 0:
                    raise fail(bad, f"bad {wanted['time']} (expected YYYY-MM-DD HH:MM[:SS])")
        else:
            raise DataError(
                f"{p}: column {wanted['time']!r} has type {time_type}; expected timestamps or text"
            )
        utc = _local_to_utc(local, zone, fail)

    prices = [_float_col(table, f, fail, wanted[f]) for f in _PRICE_FIELDS]
    n = table.num_rows
    tick_volume = (
        _int_col(table, "tick_volume", fail, np.int64) if "tick_volume" in wanted else np.zeros(n, np.int64)
    )
    if "spread" in wanted:
        spread = _int_col(table, "spread", fail, np.int32)
    elif "ask_close" in wanted:
        assert point is not None
        ask_close = _float_col(table, "ask_close", fail, wanted["ask_close"])
        spread = np.rint((ask_close - prices[3]) / point).astype(np.int32)
    else:
        spread = np.zeros(n, np.int32)
    if check_grid:
        _check_grid(local, utc, timeframe, wall_clock, p, first_number, unit)
        _check_repeats(utc, [*prices, tick_volume, spread], p, first_number, unit)
    report = _order_report(utc, first_number, unit)
    return _frozen_bars(symbol, timeframe, utc, prices, tick_volume, spread), report


# --------------------------------------------------------------------------------------------------
# MT5 export file names

# MT5's export dialog names files SYMBOL_PERIOD[_FROM_TO] (EURUSD_H1.csv,
# US30m_Daily_202401010000_202509080000.csv) and ticks SYMBOL_FROM_TO; periods above H12 are words.
_NAME_PERIODS = {tf.name: tf for tf in Timeframe} | {
    "DAILY": Timeframe.D1,
    "WEEKLY": Timeframe.W1,
    "MONTHLY": Timeframe.MN1,
}
_BARS_NAME_RE = re.compile(r"^(?P<symbol>.+?)_(?P<period>[A-Za-z]+\d*)(?:_\d{12}_\d{12})?$")
_TICKS_NAME_RE = re.compile(r"^(?P<symbol>.+?)_\d{12}_\d{12}$")


def parse_mt5_file_name(path: PathArg) -> tuple[str | None, Timeframe | None]:
    """Symbol and timeframe from an MT5 export's file name; (None, None) when the name does not parse."""
    stem = Path(path).stem
    m = _BARS_NAME_RE.match(stem)
    tf = _NAME_PERIODS.get(m.group("period").upper()) if m else None
    if m is not None and tf is not None:
        symbol: str | None = m.group("symbol")
    else:
        tm = _TICKS_NAME_RE.match(stem)
        symbol, tf = (tm.group("symbol"), None) if tm else (None, None)
    if symbol is None or symbol_name_problem(symbol) is not None:
        return None, None
    return symbol, tf
