"""`mt5tester runs list|show|compare|export|delete`: the stored runs of a results database.

The database is --db URL, else MT5TESTER_DB_URL, else sqlite:///runs/mt5tester.sqlite (the config's
default, relative to the current folder). An unknown run id is a storage error (exit 6) listing the ids
that exist; a unique prefix of an id is enough.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

db_option = click.option(
    "--db",
    "db_url",
    metavar="URL",
    help="results database (default: MT5TESTER_DB_URL or sqlite:///runs/mt5tester.sqlite)",
)
json_option = click.option("--json", "as_json", is_flag=True, help="print JSON instead of tables")


def _console() -> Console:
    console = Console(highlight=False, markup=False, emoji=False, soft_wrap=True)
    if not console.is_terminal:  # piped: room for whole ids and times instead of 80 columns
        console = Console(highlight=False, markup=False, emoji=False, soft_wrap=True, width=200)
    return console


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    if isinstance(v, dict | list):
        return json.dumps(v, default=str)
    return str(v)


@click.group(help="Stored runs: list, show, compare, export, delete.")
def runs() -> None:
    pass


@runs.command("list", help="Every stored run, newest first, with net profit and trades.")
@db_option
@json_option
@click.option("--limit", type=click.IntRange(1), help="only the newest N runs")
def runs_list(db_url: str | None, as_json: bool, limit: int | None) -> None:
    from mt5tester.results.queries import list_runs, open_results

    rows = list_runs(open_results(db_url), limit)
    if as_json:
        _echo_json([r.to_dict() for r in rows])
        return
    t = Table(title=f"Runs ({len(rows)})")
    for col in ("id", "status", "started", "finished", "symbols", "strategies", "net profit", "trades"):
        right = col in ("net profit", "trades")
        t.add_column(col, justify="right" if right else "left", no_wrap=col in ("id", "status") or right)
    for r in rows:
        t.add_row(
            r.run_id,
            r.status,
            _when(r.started_at),
            _when(r.finished_at),
            ",".join(r.symbols),
            ",".join(r.strategies),
            f"{r.net_profit:.2f}",
            str(r.trades),
        )
    _console().print(t)


def _when(iso: str | None) -> str:
    """'2024-01-01T10:00:00+00:00' as '2024-01-01 10:00:00' (stored times are UTC)."""
    return "-" if not iso else iso.replace("T", " ")[:19]


def _funnel_rows(funnel: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """The funnel flattened to (stage, value) rows; nested counts become 'stage: key' rows."""
    out: list[tuple[str, str]] = []
    for k, v in funnel.items():
        name = f"{prefix}{k.replace('_', ' ')}"
        if isinstance(v, dict):
            out.extend(_funnel_rows(v, f"{name}: ") if v else [(name, "0")])
        else:
            out.append((name, _cell(v)))
    return out


@runs.command("show", help="One run: run row, lifecycle funnel, strategies, data health, MT5 metrics.")
@click.argument("run_id", metavar="RUN")
@db_option
@json_option
def runs_show(run_id: str, db_url: str | None, as_json: bool) -> None:
    from mt5tester.results.metrics import Mt5Metrics
    from mt5tester.results.metrics_text import report_rows
    from mt5tester.results.queries import open_results, run_details

    d = run_details(open_results(db_url), run_id)
    if as_json:
        _echo_json(d)
        return
    console = _console()
    run = d["run"]
    t = Table(title=f"Run {run['run_id']}", show_header=False)
    t.add_column("field")
    t.add_column("value")
    for k in ("run_id", "status", "started_at", "finished_at", "config_hash", "package_version", "seed"):
        t.add_row(k, _cell(run[k]))
    t.add_row("deposit", f"{run['deposit']:.2f} {run['currency']}")
    bt = (run.get("config") or {}).get("backtest") or {}
    t.add_row("symbols", ",".join(bt.get("symbols") or []))
    t.add_row("period", f"{bt.get('start', '?')} .. {bt.get('end', '?')}")
    t.add_row("rows", ", ".join(f"{k} {v}" for k, v in d["rows"].items()))
    t.add_row("schema revision", _cell(d["schema_revision"]))
    if run.get("error"):
        t.add_row("error", str(run["error"]))
    console.print(t)
    if d["funnel"]:
        f = Table(title="Lifecycle funnel")
        f.add_column("stage")
        f.add_column("value", justify="right")
        for stage, value in _funnel_rows(d["funnel"]):
            f.add_row(stage, value)
        console.print(f)
    s = Table(title="Strategies")
    for col in ("name", "category", "timeframe", "symbols", "params", "source", "hash"):
        s.add_column(col)
    for st in d["strategies"]:
        s.add_row(
            st["name"],
            st["category"],
            st["timeframe"],
            ",".join(st["symbols"]),
            _cell(st["params"]),
            st["source_file"],
            st["source_hash"],
        )
    console.print(s)
    if d["data_health"]:
        h = Table(title="Data health")
        for col in ("symbol", "timeframe", "score", "bars"):
            h.add_column(col, justify="right" if col in ("score", "bars") else "left")
        for row in d["data_health"]:
            h.add_row(row["symbol"], row["timeframe"], f"{row['score']:.1f}", str(row["bars"]))
        console.print(h)
    m = Table(title="MT5 report metrics")
    m.add_column("metric")
    m.add_column("value", justify="right")
    for label, text in report_rows(Mt5Metrics(**d["metrics"])):
        m.add_row(label, text)
    console.print(m)


@runs.command("compare", help="The MT5 report metrics of two or more runs side by side.")
@click.argument("run_ids", metavar="RUN RUN...", nargs=-1, required=True)
@db_option
@json_option
def runs_compare(run_ids: tuple[str, ...], db_url: str | None, as_json: bool) -> None:
    from mt5tester.results.metrics_text import report_rows
    from mt5tester.results.queries import compare_runs, open_results

    if len(run_ids) < 2:
        raise click.UsageError("compare needs at least two runs")
    metrics = compare_runs(open_results(db_url), list(run_ids))
    if as_json:
        _echo_json({r: m.to_dict() for r, m in metrics.items()})
        return
    t = Table(title="MT5 report metrics")
    t.add_column("metric")
    for r in metrics:
        t.add_column(r, justify="right")
    columns = [report_rows(m) for m in metrics.values()]
    for i, (label, _) in enumerate(columns[0]):
        t.add_row(label, *(col[i][1] for col in columns))
    _console().print(t)


@runs.command(
    "export",
    help="Write a run's deals (MT5 report layout: `mt5tester metrics deals.csv` reads them), positions "
    "(trades with MFE/MAE), orders, equity, signals, strategy errors and run.json to a folder.",
)
@click.argument("run_id", metavar="RUN")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet", "quantstats"]),
    default="csv",
    show_default=True,
    help="quantstats: only returns.csv (date,return: daily returns of the equity) for a tearsheet tool",
)
@click.option("--out", type=click.Path(path_type=Path), help="folder (default: export_<RUN>)")
@db_option
@json_option
def runs_export(run_id: str, fmt: str, out: Path | None, db_url: str | None, as_json: bool) -> None:
    from mt5tester.results.queries import export_run, open_results, resolve_run

    engine = open_results(db_url)
    full = resolve_run(engine, run_id)
    result = export_run(engine, full, out or Path(f"export_{full}"), fmt)
    if as_json:
        _echo_json(result)
        return
    console = _console()
    console.print(f"run {full} exported as {fmt} to {result['out']}")
    for name, path in result["files"].items():
        rows = result["rows"].get(name)
        console.print(f"  {path}" + (f" ({rows} rows)" if rows is not None else ""))


@runs.command("delete", help="Delete a run and its rows in every table.")
@click.argument("run_id", metavar="RUN")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@db_option
@json_option
def runs_delete(run_id: str, yes: bool, db_url: str | None, as_json: bool) -> None:
    from mt5tester.results.queries import delete_run, open_results, resolve_run

    engine = open_results(db_url)
    full = resolve_run(engine, run_id)
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError(f"deleting run {full} needs --yes when stdin is not a terminal")
        click.confirm(f"delete run {full} and all its rows?", abort=True)
    deleted = delete_run(engine, full)
    if as_json:
        _echo_json({"run_id": full, "deleted": deleted})
        return
    counts = ", ".join(f"{n} {t}" for t, n in deleted.items() if n)
    _console().print(f"run {full} deleted: {counts or 'no rows'}")
