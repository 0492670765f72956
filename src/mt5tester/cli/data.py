"""``mt5tester data``: import market-data files into the local catalog, list, inspect, validate, resample,
export, delete. Thin: every command calls ``mt5tester.data.catalog`` / importers / health and prints a
rich table or, with ``--json``, JSON on stdout. Errors are ``Mt5TesterError`` subclasses, mapped to exit
codes by ``mt5tester.cli.main`` (2 config, 3 data).

Catalog folder: ``--catalog DIR``, else ``$MT5TESTER_CATALOG``, else ``./catalog``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from mt5tester.data.catalog import TICKS, Catalog, ImportResult, OnConflict
from mt5tester.data.health import SESSIONS, HealthReport, format_report, validate
from mt5tester.data.importers import (
    ReadReport,
    parse_mt5_file_name,
    read_bars_table_checked,
    read_mt5_bars_csv_checked,
    read_mt5_ticks_csv,
    read_ticks_parquet,
    write_mt5_bars_csv,
)
from mt5tester.data.resample import resample
from mt5tester.errors import ConfigError, DataError
from mt5tester.model.bars import Bars
from mt5tester.model.ticks import Ticks
from mt5tester.model.time import parse_server_tz
from mt5tester.model.timeframe import Timeframe

F = TypeVar("F", bound=Callable[..., Any])

_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
FORMATS = ("auto", "mt5", "ticks", "parquet")


def _console() -> Console:
    return Console(highlight=False, markup=False, emoji=False, soft_wrap=True)


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2))


def catalog_option(f: F) -> F:
    return click.option(
        "--catalog",
        "catalog_dir",
        type=click.Path(path_type=Path, file_okay=False),
        envvar="MT5TESTER_CATALOG",
        default=Path("catalog"),
        show_default="$MT5TESTER_CATALOG or ./catalog",
        help="catalog folder",
    )(f)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="print JSON for machines")(f)


def _existing_catalog(folder: Path) -> Catalog:
    if not folder.is_dir():
        raise DataError(
            f"no catalog at {folder}: pass --catalog DIR or set MT5TESTER_CATALOG, or create it with "
            "mt5tester data import FILE --symbol SYMBOL"
        )
    return Catalog(folder)


def _timeframe(name: str) -> Timeframe:
    try:
        return Timeframe.parse(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _zone(name: str, option: str) -> str:
    try:
        parse_server_tz(name)
    except ValueError as exc:
        raise ConfigError(f"{option} {name!r}: {exc}") from None
    return name


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


@click.group(
    help="Market data: import files into a local catalog, list, inspect, validate, resample, export, delete."
)
def data() -> None:
    pass


# --------------------------------------------------------------------------------------------------
# import


def _csv_header(path: Path) -> list[str]:
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise DataError(f"{path}: cannot read file: {exc.strerror or exc}") from None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", "replace")
    else:
        text = head.decode("utf-8", "replace").lstrip("\ufeff")
    line = text.splitlines()[0] if text else ""
    delim = next((d for d in ("\t", ";", ",") if d in line), "\t")
    return [c.strip().strip("<>\"'").lower() for c in line.split(delim)]


def _parquet_schema(path: Path) -> pa.Schema:
    try:
        return pq.read_schema(path)
    except FileNotFoundError:
        raise DataError(f"{path}: cannot read file: not found") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file: {exc}") from None


def detect_format(path: Path, fmt: str = "auto") -> str:
    """One of ``mt5_bars``, ``mt5_ticks``, ``tick_parquet``, ``bar_parquet`` for ``path``."""
    is_parquet = path.suffix.lower() in _PARQUET_SUFFIXES
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if is_parquet:
        names = [n.lower() for n in _parquet_schema(path).names]
        ticks = "bid" in names and "ask" in names
        bars = "open" in names or "bid_open" in names
        if fmt == "mt5":
            raise ConfigError(f"{path}: --format mt5 is for MT5 CSV exports, this is a Parquet file")
        if fmt == "ticks" or (fmt in ("auto", "parquet") and ticks and not bars):
            return "tick_parquet"
        if bars:
            return "bar_parquet"
        raise DataError(
            f"{path}: cannot tell what this Parquet file holds: columns {', '.join(names)}; expected "
            "bid/ask (ticks) or open/high/low/close or bid_open.. (bars)"
        )
    if fmt == "parquet":
        raise ConfigError(f"{path}: --format parquet, but the file name does not end in .parquet/.pq")
    names = _csv_header(path)
    if fmt == "ticks" or (fmt == "auto" and "bid" in names):
        return "mt5_ticks"
    if fmt == "mt5" or "date" in names or "open" in names:
        return "mt5_bars"
    raise DataError(
        f"{path}: cannot detect the format from the header {names}; expected an MT5 bars export "
        "(<DATE> <TIME> <OPEN> ...) or ticks export (<DATE> <TIME> <BID> <ASK> ...); pass --format"
    )


def _parquet_meta(path: Path) -> dict[str, str]:
    md = pq.read_metadata(path).metadata or {}
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in md.items()}


def _infer_parquet_timeframe(path: Path, time_col: str) -> Timeframe:
    t = pq.read_table(path, columns=[time_col]).column(time_col)
    if not pa.types.is_timestamp(t.type):
        raise ConfigError(f"{path}: pass --timeframe (column {time_col!r} is not a timestamp)")
    ns = np.asarray(t.cast(pa.timestamp("ns", tz=t.type.tz)).cast(pa.int64()).to_numpy(), np.int64)
    d = np.diff(ns)
    d = d[d > 0]
    if len(d):
        med = int(np.median(d))
        for tf in Timeframe:
            if tf.is_fixed and tf.period_ns == med:
                return tf
    raise ConfigError(f"{path}: cannot infer the timeframe from the bar spacing; pass --timeframe")


_TZ_HOW = (
    "pass --tz with the broker's server time zone (e.g. --tz Europe/Athens, --tz +02:00, or --tz UTC if "
    "the server really runs on UTC), or --config FILE whose data.source_timezone or "
    "backtest.server_timezone names it"
)


def _config_tz(config: Path) -> str | None:
    """data.source_timezone, else backtest.server_timezone when the file sets it, else None."""
    from mt5tester.config import load_config

    cfg = load_config(config)
    if cfg.data.source_timezone is not None:
        return _zone(cfg.data.source_timezone, f"{config}: data.source_timezone")
    if "server_timezone" in cfg.backtest.model_fields_set:
        return _zone(cfg.backtest.server_timezone, f"{config}: backtest.server_timezone")
    return None


def _clock(tz: str | None, config: Path | None) -> tuple[str | None, str | None]:
    """(--tz, the config's zone): --tz applies to every file, the config's only to undeclared clocks."""
    if tz is not None:
        _zone(tz, "--tz")
    return tz, _config_tz(config) if config is not None else None


def _aware_times(path: Path) -> bool:
    """Whether a Parquet file's ``time`` column carries a time zone (then its instants are known)."""
    schema = _parquet_schema(path)
    typ = schema.field("time").type if "time" in schema.names else None
    return typ is not None and pa.types.is_timestamp(typ) and typ.tz is not None


def _read_file(
    path: Path,
    symbol: str | None,
    timeframe: Timeframe | None,
    clock: tuple[str | None, str | None],
    fmt: str,
    point: float | None,
    check_grid: bool = True,
) -> tuple[str, Bars | Ticks, ReadReport, str]:
    """Format, contents, row-order report and the clock used (a zone name) of one file, in UTC.
    ``clock``: (--tz, the config's zone); the config's zone only applies to files whose times carry
    no zone. Bars stay in file order; ``check_grid=False`` leaves off-grid bars to validation."""
    kind = detect_format(path, fmt)
    meta = _parquet_meta(path) if kind.endswith("parquet") else {}
    given, configured = clock
    aware = kind.endswith("parquet") and _aware_times(path)
    tz = given if aware else (given or configured)
    name_symbol, name_tf = parse_mt5_file_name(path)
    sym = symbol or meta.get("symbol") or name_symbol
    if not sym:
        raise ConfigError(
            f"{path}: pass --symbol: the file does not name its symbol and its name is not an MT5 export "
            "name like EURUSD_H1.csv or US30m_Daily_202401010000_202509080000.csv"
        )
    if kind in ("mt5_bars", "mt5_ticks") and tz is None:
        # MT5 writes its exports in the broker's server time, almost never UTC (spec 5.2): guessing
        # UTC would shift every bar by the server's offset without a word.
        raise ConfigError(f"{path}: MT5 exports are in the broker's server time, not UTC; {_TZ_HOW}")
    used = tz or "UTC"  # None here: tz-aware times, stored as the UTC instants they are
    if kind == "mt5_bars":
        assert tz is not None
        return kind, *read_mt5_bars_csv_checked(path, sym, timeframe or name_tf, tz, check_grid), used
    if kind == "mt5_ticks":
        assert tz is not None
        ticks = read_mt5_ticks_csv(path, sym, tz)
        return kind, ticks, ReadReport(out_of_order=_ticks_out_of_order(ticks.time)), used
    if kind == "tick_parquet":
        ticks = read_ticks_parquet(path, sym, tz)
        return kind, ticks, ReadReport(unit="row", out_of_order=_ticks_out_of_order(ticks.time, 1)), used
    tf = timeframe
    if tf is None and meta.get("timeframe"):
        tf = _timeframe(meta["timeframe"])
    if tf is None:
        tf = name_tf
    if tf is None:
        names = _parquet_schema(path).names
        tf = _infer_parquet_timeframe(path, "time" if "time" in names else names[0])
    bars, report = read_bars_table_checked(path, sym, tf, tz=tz, point=point, check_grid=check_grid)
    return kind, bars, report, used


def _ticks_out_of_order(time: np.ndarray, first_number: int = 2) -> tuple[tuple[int, int], ...]:
    """Ticks earlier than a tick above them (equal times are normal for ticks), numbered from the file."""
    if len(time) < 2:
        return ()
    back = np.flatnonzero(time[1:] < np.maximum.accumulate(time)[:-1]) + 1
    return tuple((int(i) + first_number, int(time[i])) for i in back)


def _import_one(
    cat: Catalog,
    path: Path,
    symbol: str | None,
    timeframe: Timeframe | None,
    clock: tuple[str | None, str | None],
    fmt: str,
    point: float | None,
    on_conflict: str,
) -> tuple[str, ImportResult, ReadReport]:
    kind, content, report, tz = _read_file(path, symbol, timeframe, clock, fmt, point)
    source = str(path.resolve())
    mode: OnConflict = "replace" if on_conflict == "replace" else "error"
    if isinstance(content, Ticks):
        return kind, cat.import_ticks(content, source, tz=tz, on_conflict=mode), report
    return kind, cat.import_bars(content, source, tz=tz, on_conflict=mode), report


@data.command("import", help="Import MT5 bar/tick CSV exports or Parquet bars/ticks into the catalog.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--symbol",
    help="symbol to store the data under (default: from the Parquet metadata or the MT5 file name, "
    "e.g. EURUSD_H1.csv)",
)
@click.option(
    "--timeframe", help="bar timeframe (default: from the file name or metadata, else the bar spacing)"
)
@click.option(
    "--tz",
    help="time zone of the file's clock (MT5 exports: the broker's server time): UTC, +02:00, IANA name; "
    "default: from --config",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="take the time zone from data.source_timezone or backtest.server_timezone of this config",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True)
@click.option(
    "--point", type=float, help="symbol point (e.g. 0.00001) to turn bid/ask bars into spread points"
)
@click.option(
    "--on-conflict",
    type=click.Choice(["error", "replace"]),
    default="error",
    show_default=True,
    help="stored bars at the same time with different values: stop, or replace the file's whole range",
)
@catalog_option
@json_option
def import_cmd(
    paths: tuple[Path, ...],
    symbol: str | None,
    timeframe: str | None,
    tz: str | None,
    config_path: Path | None,
    fmt: str,
    point: float | None,
    on_conflict: str,
    catalog_dir: Path,
    as_json: bool,
) -> None:
    tf = _timeframe(timeframe) if timeframe else None
    clock = _clock(tz, config_path)
    cat = Catalog(catalog_dir)
    rows: list[dict[str, Any]] = []
    for path in paths:
        kind, res, report = _import_one(cat, path, symbol, tf, clock, fmt, point, on_conflict)
        rows.append({"file": str(path), "format": kind, **res.to_dict(), **report.to_dict()})
    if as_json:
        _echo_json(rows)
        return
    t = Table(title=f"Imported into {catalog_dir}")
    for col in ("file", "format", "symbol", "tf", "rows", "new", "duplicates", "replaced", "partitions"):
        t.add_column(
            col, justify="right" if col in ("rows", "new", "duplicates", "replaced", "partitions") else "left"
        )
    for r in rows:
        t.add_row(
            Path(r["file"]).name,
            r["format"],
            r["symbol"],
            r["timeframe"],
            f"{r['rows_in']:,}",
            f"{r['rows_new']:,}",
            f"{r['duplicates']:,}",
            f"{r['replaced']:,}",
            str(len(r["partitions_written"])),
        )
    console = _console()
    console.print(t)
    for r in rows:
        for line in _import_notes(r):
            console.print(f"{Path(r['file']).name}: {line}", markup=False)


_NOTES_SHOWN = 5


def _import_notes(row: dict[str, Any]) -> list[str]:
    """Lines saying what the import found besides new rows: order, repeats, stored duplicates, removals."""

    def few(items: list[str]) -> str:
        more = len(items) - _NOTES_SHOWN
        return ", ".join(items[:_NOTES_SHOWN]) + (f" and {more} more" if more > 0 else "")

    def at(entries: list[dict[str, Any]]) -> list[str]:
        return [f"{k} {e[k]} ({e['time']})" for e in entries for k in e if k != "time"]

    notes = []
    if row.get("out_of_order"):
        notes.append(
            f"{len(row['out_of_order'])} row(s) out of time order (stored sorted by time): "
            + few(at(row["out_of_order"]))
        )
    if row.get("repeated_in_file"):
        notes.append(
            f"{len(row['repeated_in_file'])} row(s) repeat an earlier time with the same values "
            "(stored once): " + few(at(row["repeated_in_file"]))
        )
    if row.get("duplicate_ranges"):
        notes.append(
            "already stored with identical values: "
            + few([f"{d['first']} .. {d['last']} ({d['rows']:,} rows)" for d in row["duplicate_ranges"]])
        )
    if row.get("removed"):
        notes.append(f"{row['removed']:,} stored row(s) in the replaced range were not in the file: removed")
    return notes


# --------------------------------------------------------------------------------------------------
# list / info


def _infos(cat: Catalog, symbol: str, timeframe: str | None) -> list[dict[str, Any]]:
    if timeframe is not None:
        tf = timeframe if timeframe.strip().upper() in (TICKS, "TICK") else _timeframe(timeframe)
        return [cat.info(symbol, tf)]
    out = [cat.info(symbol, tf) for tf in cat.timeframes(symbol)]
    if cat.has_ticks(symbol):
        out.append(cat.info(symbol, TICKS))
    if not out:
        cat.info(symbol, Timeframe.M1)  # raises the "missing symbol" error listing what exists
    return out


def _summary_table(title: str, infos: list[dict[str, Any]]) -> Table:
    t = Table(title=title)
    for col in ("symbol", "tf", "rows", "first (UTC)", "last (UTC)", "years", "size"):
        t.add_column(col, justify="right" if col in ("rows", "size") else "left")
    for i in infos:
        t.add_row(
            i["symbol"],
            i["timeframe"],
            f"{i['rows']:,}",
            (i["first"] or "-")[:19],
            (i["last"] or "-")[:19],
            ", ".join(map(str, i["years"])),
            _mb(i["bytes"]),
        )
    return t


@data.command("list", help="List the catalog: symbols, timeframes, rows and ranges.")
@catalog_option
@json_option
def list_cmd(catalog_dir: Path, as_json: bool) -> None:
    cat = _existing_catalog(catalog_dir)
    infos = [i for s in cat.symbols() for i in _infos(cat, s, None)]
    if as_json:
        _echo_json([{k: v for k, v in i.items() if k != "sources"} for i in infos])
        return
    if not infos:
        _console().print(
            f"catalog {catalog_dir} is empty; add data with: mt5tester data import FILE --symbol S"
        )
        return
    _console().print(_summary_table(f"Catalog {catalog_dir}", infos))


@data.command("info", help="Details of one symbol: rows, range, years, size and source files per timeframe.")
@click.argument("symbol")
@click.option("--timeframe", help="one timeframe (or TICKS); default: all stored")
@catalog_option
@json_option
def info_cmd(symbol: str, timeframe: str | None, catalog_dir: Path, as_json: bool) -> None:
    infos = _infos(_existing_catalog(catalog_dir), symbol, timeframe)
    if as_json:
        _echo_json(infos)
        return
    console = _console()
    console.print(_summary_table(f"{symbol} in {catalog_dir}", infos))
    src = Table(title="Sources")
    for col in ("tf", "source", "sha256", "imported at", "tz"):
        src.add_column(col)
    for i in infos:
        for s in i["sources"]:
            src.add_row(i["timeframe"], s["source"], (s.get("sha256") or "-")[:16], s["imported_at"], s["tz"])
    console.print(src)


# --------------------------------------------------------------------------------------------------
# validate / resample / export


def _with_lines(report: HealthReport, first_number: int, unit: str) -> dict[str, Any]:
    """The report as JSON, each finding of a run of rows with its file lines (or Parquet rows)."""
    out = report.to_dict()
    for f, d in zip(report.findings, out["findings"], strict=True):
        if f.rows is not None:
            d[f"{unit}s"] = [f.rows[0] + first_number, f.rows[1] + first_number]
    return out


def _finding_text(f: dict[str, Any]) -> str:
    """'non_monotonic line 4 2024-01-02T11:00:00+00:00 x1: time earlier than a previous row'."""
    where = ""
    for unit in ("line", "row"):
        if f"{unit}s" in f:
            a, b = f[f"{unit}s"]
            where = f" {unit} {a}" if a == b else f" {unit}s {a}-{b}"
    return f"{f['kind']}{where} {f['start']} x{f['count']}: {f['detail']}"


def _validate_file(
    path: Path, symbol: str | None, timeframe: str | None, clock: tuple[str | None, str | None], session: str
) -> tuple[HealthReport, dict[str, Any]]:
    tf = _timeframe(timeframe) if timeframe else None
    kind, content, report, _ = _read_file(path, symbol, tf, clock, "auto", None, check_grid=False)
    if not isinstance(content, Bars):
        raise ConfigError(f"{path}: data validate checks bars; this is a {kind} file")
    health = validate(content, session=session)  # in file order: rows out of order are findings
    return health, _with_lines(health, 1 if report.unit == "row" else 2, report.unit)


@data.command(
    "validate",
    help="Health check of stored bars, or of bar files before importing them (findings with their "
    "lines): a 0-100 score each.",
)
@click.argument("targets", nargs=-1, required=True, metavar="SYMBOL|FILE...")
@click.option("--timeframe", help="catalog: the timeframe checked (default M1); files: default inferred")
@click.option("--session", type=click.Choice(SESSIONS), default="fx", show_default=True,
              help="trading calendar for gaps (XAU*/XAG* use the metals calendar automatically)")  # fmt: skip
@click.option("--min-health", type=float, default=0.0, show_default=True, help="exit 3 if any score is below")
@click.option("--symbol", help="files: the symbol (default: from the file name or metadata)")
@click.option("--tz", help="files: the zone of the file's clock (MT5 exports: broker server time)")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              help="files: take --tz from data.source_timezone / backtest.server_timezone")  # fmt: skip
@catalog_option
@json_option
def validate_cmd(
    targets: tuple[str, ...],
    timeframe: str | None,
    session: str,
    min_health: float,
    symbol: str | None,
    tz: str | None,
    config_path: Path | None,
    catalog_dir: Path,
    as_json: bool,
) -> None:
    clock = _clock(tz, config_path)
    reports: list[HealthReport] = []
    rows: list[dict[str, Any]] = []
    for target in targets:
        # A file path is checked as the file (rows in file order, findings with lines); else a symbol.
        if Path(target).is_file():
            health, row = _validate_file(Path(target), symbol, timeframe, clock, session)
            row["file"] = target
        else:
            health = validate(_existing_catalog(catalog_dir).load(target, _timeframe(timeframe or "M1")),
                              session=session)  # fmt: skip
            row = health.to_dict()
        reports.append(health)
        rows.append(row)
    if as_json:
        _echo_json(rows)
    else:
        console = _console()
        console.print(format_report(reports))
        for row in (r for r in rows if "file" in r):
            for f in row["findings"]:
                console.print(f"{Path(row['file']).name}: {_finding_text(f)}", markup=False)
    low = [r for r in reports if r.score < min_health]
    if low:
        raise DataError(
            f"health below --min-health {min_health:g}: "
            + ", ".join(f"{r.symbol} {r.timeframe.name} {r.score:.1f}" for r in low)
            + "; see the findings in the report"
        )


@data.command("resample", help="Build higher timeframes from the stored M1 bars and store them.")
@click.argument("symbol")
@click.option("--to", "targets", required=True, help="timeframes, comma-separated (e.g. H1,H4,D1)")
@click.option(
    "--server-tz", default="UTC", show_default=True, help="broker server time zone the bars align to"
)
@catalog_option
@json_option
def resample_cmd(symbol: str, targets: str, server_tz: str, catalog_dir: Path, as_json: bool) -> None:
    tfs = [_timeframe(x) for x in targets.split(",") if x.strip()]
    if not tfs or Timeframe.M1 in tfs:
        raise ConfigError("--to needs timeframes above M1, e.g. --to H1,H4")
    _zone(server_tz, "--server-tz")
    cat = _existing_catalog(catalog_dir)
    m1 = cat.load(symbol, Timeframe.M1)
    rows = []
    for tf in tfs:
        bars = resample(m1, tf, server_tz)
        # Derived data follows the stored M1: rebuilding replaces what an earlier resample stored.
        res = cat.rebuild_bars(
            bars, f"resample {symbol} M1 -> {tf.name} (server tz {server_tz})", tz=server_tz
        )
        rows.append({"server_tz": server_tz, "bars": len(bars), **res.to_dict()})
    if as_json:
        _echo_json(rows)
        return
    t = Table(title=f"{symbol}: resampled from M1 ({len(m1):,} bars), server tz {server_tz}")
    for col in ("tf", "bars", "new", "unchanged", "replaced", "removed", "partitions written"):
        t.add_column(col, justify="left" if col == "tf" else "right")
    for r in rows:
        t.add_row(
            r["timeframe"],
            f"{r['bars']:,}",
            f"{r['rows_new']:,}",
            f"{r['duplicates']:,}",
            f"{r['replaced']:,}",
            f"{r['removed']:,}",
            str(len(r["partitions_written"])),
        )
    _console().print(t)


@data.command("export", help="Write stored bars as an MT5 'Export bars' CSV (tab, CRLF), re-importable.")
@click.argument("symbol")
@click.option("--timeframe", required=True)
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--tz", default="UTC", show_default=True, help="time zone of the written clock (server time)")
@catalog_option
def export_cmd(symbol: str, timeframe: str, out: Path, tz: str, catalog_dir: Path) -> None:
    _zone(tz, "--tz")
    bars = _existing_catalog(catalog_dir).load(symbol, _timeframe(timeframe))
    try:
        write_mt5_bars_csv(bars, out, tz)
    except OSError as exc:
        raise DataError(f"{out}: cannot write: {exc.strerror or exc}; check the folder exists") from None
    _console().print(f"wrote {len(bars):,} {symbol} {bars.timeframe.name} bars to {out} (times in {tz})")


# --------------------------------------------------------------------------------------------------
# delete


def _utc_ns(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    try:
        ts = pd.Timestamp(text)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected YYYY-MM-DD or YYYY-MM-DD HH:MM (UTC)") from None
    if ts is pd.NaT:
        raise ConfigError(f"{option} {text!r}: expected YYYY-MM-DD or YYYY-MM-DD HH:MM (UTC)")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.as_unit("ns").value)


@data.command(
    "delete", help="Delete a symbol's stored bars/ticks: one timeframe or all, optionally a time range."
)
@click.argument("symbol")
@click.option("--timeframe", help="one timeframe (or TICKS); default: every stored timeframe and the ticks")
@click.option("--start", help="first time deleted, UTC (YYYY-MM-DD[ HH:MM]); default: the first stored")
@click.option("--end", help="end, not included, UTC (YYYY-MM-DD[ HH:MM]); default: after the last stored")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@catalog_option
@json_option
def delete_cmd(
    symbol: str,
    timeframe: str | None,
    start: str | None,
    end: str | None,
    yes: bool,
    catalog_dir: Path,
    as_json: bool,
) -> None:
    lo, hi = _utc_ns(start, "--start"), _utc_ns(end, "--end")
    if lo is not None and hi is not None and hi <= lo:
        raise ConfigError(f"--end {end} is not after --start {start}")
    cat = _existing_catalog(catalog_dir)
    infos = _infos(cat, symbol, timeframe)  # names what is missing before anything is asked
    what = f"{symbol} {', '.join(i['timeframe'] for i in infos)}"
    span = f" from {start or 'the first'} to {end or 'the last'} (UTC)" if start or end else " (all rows)"
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError(
                f"deleting {what}{span} from {catalog_dir} needs --yes when stdin is not a terminal"
            )
        click.confirm(f"delete {what}{span} from catalog {catalog_dir}?", abort=True)
    removed = cat.delete(symbol, timeframe, lo, hi)
    if as_json:
        _echo_json({"symbol": symbol, "removed": removed})
        return
    counts = ", ".join(f"{n:,} {tf}" for tf, n in removed.items())
    _console().print(f"deleted from {catalog_dir}: {symbol} {counts} row(s)", markup=False)
