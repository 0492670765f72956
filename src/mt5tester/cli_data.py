"""``mt5tester data``: import market-data files into the local catalog, list, inspect, validate, resample,
export. Thin: every command calls ``mt5tester.data.catalog`` / importers / health and prints a rich table
or, with ``--json``, JSON on stdout. Errors are ``Mt5TesterError`` subclasses, mapped to exit codes by
``mt5tester.cli.main`` (2 config, 3 data).

Catalog folder: ``--catalog DIR``, else ``$MT5TESTER_CATALOG``, else ``./catalog``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from mt5tester.data.catalog import TICKS, Catalog, ImportResult, OnConflict
from mt5tester.data.health import SESSIONS, format_report, validate
from mt5tester.data.importers import (
    read_bars_table,
    read_mt5_bars_csv,
    read_mt5_ticks_csv,
    read_ticks_parquet,
    write_mt5_bars_csv,
)
from mt5tester.data.resample import parse_server_tz, resample
from mt5tester.errors import ConfigError, DataError
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
    help="Market data: import files into a local catalog, list, inspect, validate, resample, export."
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


def _import_one(
    cat: Catalog,
    path: Path,
    symbol: str | None,
    timeframe: Timeframe | None,
    tz: str,
    fmt: str,
    point: float | None,
    on_conflict: str,
) -> tuple[str, ImportResult]:
    kind = detect_format(path, fmt)
    meta = _parquet_meta(path) if kind.endswith("parquet") else {}
    sym = symbol or meta.get("symbol")
    if not sym:
        raise ConfigError(f"{path}: pass --symbol (the file does not name its symbol)")
    source = str(path.resolve())
    mode: OnConflict = "replace" if on_conflict == "replace" else "error"
    if kind == "mt5_bars":
        bars = read_mt5_bars_csv(path, sym, timeframe, tz)
        return kind, cat.import_bars(bars, source, tz=tz, on_conflict=mode)
    if kind == "mt5_ticks":
        return kind, cat.import_ticks(read_mt5_ticks_csv(path, sym, tz), source, tz=tz, on_conflict=mode)
    if kind == "tick_parquet":
        if tz.strip().upper() not in ("UTC", "GMT", "Z"):
            raise ConfigError(
                f"{path}: Parquet tick times are time-zone aware; --tz applies to CSV files only"
            )
        return kind, cat.import_ticks(read_ticks_parquet(path, sym), source, tz="UTC", on_conflict=mode)
    tf = timeframe
    if tf is None and meta.get("timeframe"):
        tf = _timeframe(meta["timeframe"])
    if tf is None:
        names = _parquet_schema(path).names
        tf = _infer_parquet_timeframe(path, "time" if "time" in names else names[0])
    bars = read_bars_table(path, sym, tf, tz=tz, point=point)
    return kind, cat.import_bars(bars, source, tz=tz, on_conflict=mode)


@data.command("import", help="Import MT5 bar/tick CSV exports or Parquet bars/ticks into the catalog.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--symbol", help="symbol to store the data under (Parquet files may name it in their metadata)")
@click.option("--timeframe", help="bar timeframe (default: inferred from the bar spacing or file metadata)")
@click.option(
    "--tz", default="UTC", show_default=True, help="time zone of the file's clock (CSV): UTC, +02:00, IANA"
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
    help="stored bars at the same time with different values: stop, or overwrite them",
)
@catalog_option
@json_option
def import_cmd(
    paths: tuple[Path, ...],
    symbol: str | None,
    timeframe: str | None,
    tz: str,
    fmt: str,
    point: float | None,
    on_conflict: str,
    catalog_dir: Path,
    as_json: bool,
) -> None:
    tf = _timeframe(timeframe) if timeframe else None
    _zone(tz, "--tz")
    cat = Catalog(catalog_dir)
    rows: list[dict[str, Any]] = []
    for path in paths:
        kind, res = _import_one(cat, path, symbol, tf, tz, fmt, point, on_conflict)
        rows.append({"file": str(path), "format": kind, **res.to_dict()})
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
    _console().print(t)


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


@data.command("validate", help="Health check of stored bars: findings and a 0-100 score per symbol.")
@click.argument("symbols", nargs=-1, required=True)
@click.option("--timeframe", default="M1", show_default=True)
@click.option("--session", type=click.Choice(SESSIONS), default="fx", show_default=True,
              help="trading calendar for gaps (XAU*/XAG* use the metals calendar automatically)")  # fmt: skip
@click.option("--min-health", type=float, default=0.0, show_default=True, help="exit 3 if any score is below")
@catalog_option
@json_option
def validate_cmd(
    symbols: tuple[str, ...],
    timeframe: str,
    session: str,
    min_health: float,
    catalog_dir: Path,
    as_json: bool,
) -> None:
    cat = _existing_catalog(catalog_dir)
    tf = _timeframe(timeframe)
    reports = [validate(cat.load(s, tf), session=session) for s in symbols]
    if as_json:
        _echo_json([r.to_dict() for r in reports])
    else:
        _console().print(format_report(reports))
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
