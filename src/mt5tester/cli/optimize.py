"""`mt5tester optimize --config FILE` (run or resume a study) and `optimize list|show|export|rerun|report`."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from mt5tester.optimize.driver import StudyProgress

DB_HELP = (
    "results database (default: MT5TESTER_DB_URL, else the config's, else sqlite:///runs/mt5tester.sqlite)"
)
SHOWN_METRICS = [
    ("net profit", "total_net_profit"),
    ("profit factor", "profit_factor"),
    ("expected payoff", "expected_payoff"),
    ("equity DD %", "equity_dd_relative_pct"),
    ("Sharpe", "sharpe_ratio"),
    ("trades", "total_trades"),
]


def _console() -> Console:
    console = Console(highlight=False, markup=False, emoji=False, soft_wrap=True)
    if not console.is_terminal:
        console = Console(highlight=False, markup=False, emoji=False, soft_wrap=True, width=200)
    return console


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


class _Bar:
    """The study's progress bar on a terminal: passes done, best so far, ETA."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("optimize"),
            BarColumn(),
            TextColumn("{task.fields[passes]} passes"),
            TextColumn("best {task.fields[best]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task = self.bar.add_task("study", total=None, best="-", passes="checking the study:")
        self.bar.start()

    def __call__(self, p: StudyProgress) -> None:
        short = " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in (p.best_params or {}).items())
        best = "-" if p.best_score is None else f"{p.best_score:.2f} ({short})"
        self.bar.update(self.task, completed=p.done, total=p.total, best=best, passes=f"{p.done}/{p.total}")

    def close(self) -> None:
        self.bar.stop()


def _engine(db_url: str | None) -> Engine:
    from mt5tester.results.queries import open_results

    return open_results(db_url)


@click.group(
    "optimize",
    invoke_without_command=True,
    help="Optimize a strategy (the config's optimize: section): complete grid, random, genetic or Optuna "
    "passes on a local process pool (default: one worker per CPU) or Dask; every pass stored; a killed "
    "study continues with --resume STUDY. Subcommands read stored studies.",
)
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="YAML config with optimize:")
@click.option("--workers", type=click.IntRange(1), help="worker processes (default: CPUs; 1: this process)")
@click.option(
    "--scheduler",
    metavar="URL",
    help="a Dask scheduler (tcp://HOST:PORT), or 'local' for a Dask LocalCluster of --workers processes",
)
@click.option(
    "--resume", "resume_id", metavar="STUDY", help="continue a killed study; finished passes skipped"
)
@click.option("--db", "db_url", metavar="URL", help="results database of --resume (" + DB_HELP + ")")
@click.option(
    "--rerun-best", type=click.IntRange(1), help="then re-run the K best passes in full (stored runs)"
)
@click.option("--trading-mode", "trading_mode", help="a profile of trading_modes:, overrides trading_mode")
@click.option("--json", "as_json", is_flag=True, help="print the study's summary as JSON")
@click.pass_context
def optimize(
    ctx: click.Context,
    config_path: Path | None,
    workers: int | None,
    scheduler: str | None,
    resume_id: str | None,
    db_url: str | None,
    rerun_best: int | None,
    trading_mode: str | None,
    as_json: bool,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from mt5tester.config import load_config
    from mt5tester.optimize.driver import load_study_config, open_study_db, optimize, rerun_best_passes

    console = _console()
    if resume_id and trading_mode:
        raise click.UsageError("--trading-mode cannot change a study being resumed (it keeps its own config)")
    if resume_id:
        cfg_db = load_config(config_path).results.database_url if config_path else None
        engine = _engine(db_url or os.environ.get("MT5TESTER_DB_URL") or cfg_db)
        cfg, base_dir = load_study_config(engine, resume_id)
    elif config_path is None:
        raise click.UsageError("give --config FILE (or --resume STUDY)")
    else:
        cfg = load_config(config_path, {"trading_mode": trading_mode} if trading_mode else None)
        base_dir = config_path.resolve().parent
        engine = open_study_db(cfg)
    bar = _Bar(console) if console.is_terminal and not as_json else None
    try:
        result = optimize(
            cfg,
            base_dir=base_dir,
            workers=workers or os.cpu_count() or 1,
            scheduler=scheduler,
            resume=resume_id,
            progress=bar,
            engine=engine,
        )
    finally:
        if bar is not None:
            bar.close()
    reruns = rerun_best_passes(engine, result.study_id, rerun_best) if rerun_best else []
    if as_json:
        _echo_json(
            {"study_id": result.study_id, "executed": result.executed, "skipped": result.skipped}
            | result.summary
            | {"reruns": [run_id for _, run_id in reruns]}
        )
        return
    _print_study(console, engine, result.study_id)
    console.print(
        f"{result.executed} passes run, {result.skipped} found stored; study {result.study_id} in "
        f"{result.url} (mt5tester optimize show {result.study_id})"
    )
    for trial, run_id in reruns:
        console.print(f"pass {trial['number']} re-run in full: run {run_id} (mt5tester report {run_id})")


def _trial_table(title: str, rows: list[dict[str, Any]], paths: list[str]) -> Table:
    t = Table(title=title)
    t.add_column("pass", justify="right")
    for p in paths:
        t.add_column(p.split(".")[-1], justify="right")
    t.add_column("criterion", justify="right")
    for label, _ in SHOWN_METRICS:
        t.add_column(label, justify="right")
    for r in rows:
        m = r["metrics"]
        t.add_row(
            str(r["number"]),
            *(_cell(r["params"].get(p)) for p in paths),
            _cell(r["score"]),
            *(_cell(m.get(k)) for _, k in SHOWN_METRICS),
        )
    return t


def _ranked(rows: list[dict[str, Any]], fold: int, phase: str = "is") -> list[dict[str, Any]]:
    mine = [r for r in rows if r["fold"] == fold and r["phase"] == phase]
    return sorted(mine, key=lambda r: (r["score"] is None, -(r["score"] or 0.0), r["number"]))


def _print_study(console: Console, engine: Engine, study_id: str, top: int = 10) -> None:
    from mt5tester.results import studies as store

    row = store.study_row(engine, study_id)
    summary = row["summary"] or {}
    rows = store.trials(engine, study_id)
    paths = list((row["config"].get("optimize") or {}).get("parameters", {}))
    head = Table(title=f"Study {study_id}", show_header=False)
    head.add_column("field")
    head.add_column("value")
    for k in ("status", "started_at", "finished_at", "method", "criterion", "seed", "space_size", "budget"):
        head.add_row(k, _cell(row[k]))
    head.add_row("passes", f"{summary.get('passes', len(rows))} ({summary.get('discarded', 0)} discarded)")
    if row.get("error"):
        head.add_row("error", str(row["error"]))
    console.print(head)
    last = max((r["fold"] for r in rows), default=0)
    console.print(
        _trial_table(f"Best {top} passes (fold {last}, in-sample)", _ranked(rows, last)[:top], paths)
    )
    folds = store.folds(engine, study_id)
    if any(f["oos_start"] for f in folds):
        t = Table(title="Folds (in-sample best -> out-of-sample)")
        for col in ("fold", "in-sample", "out-of-sample", "best params", "IS net", "OOS net", "WFE"):
            t.add_column(col)
        for f in folds:
            t.add_row(
                str(f["fold"]),
                f"{f['is_start']} .. {f['is_end']}",
                f"{f['oos_start']} .. {f['oos_end']}",
                json.dumps(f["best_params"]),
                _cell((f["is_metrics"] or {}).get("total_net_profit")),
                _cell((f["oos_metrics"] or {}).get("total_net_profit")),
                _cell(f["wfe"]),
            )
        console.print(t)
    rob = summary.get("robustness")
    if rob:
        t = Table(title="Robustness of the best pass", show_header=False)
        t.add_column("measure")
        t.add_column("value", justify="right")
        t.add_row("deflated Sharpe ratio (P[true SR > 0])", _cell(rob.get("dsr")))
        t.add_row("probability of backtest overfitting (CSCV)", _cell(rob.get("pbo")))
        t.add_row("stability (neighbours / best)", _cell(rob.get("stability")))
        for name, label in (("mc_order", "trade order"), ("mc_skip", "10% trades skipped")):
            mc = rob.get(name)
            if mc:
                q = mc["max_dd_pct"]
                t.add_row(f"Monte Carlo {label}: max DD % p50/p95/p99", " / ".join(_cell(q[k]) for k in q))
        console.print(t)


@optimize.command("list", help="Every stored study, newest first.")
@click.option("--db", "db_url", metavar="URL", help=DB_HELP)
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def optimize_list(db_url: str | None, as_json: bool) -> None:
    from mt5tester.results import studies as store

    rows = store.list_studies(_engine(db_url))
    if as_json:
        _echo_json(rows)
        return
    t = Table(title=f"Studies ({len(rows)})")
    for col in ("id", "status", "started", "method", "criterion", "passes", "space", "best"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            r["study_id"],
            r["status"],
            str(r["started_at"]).replace("T", " ")[:19],
            r["method"],
            r["criterion"],
            str(r["passes"]),
            str(r["space_size"]),
            _cell(r["best_score"]),
        )
    _console().print(t)


@optimize.command("show", help="One study: settings, best passes, folds, robustness.")
@click.argument("study_id", metavar="STUDY")
@click.option("--db", "db_url", metavar="URL", help=DB_HELP)
@click.option("--top", type=click.IntRange(1), default=10, show_default=True, help="passes shown")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of tables")
def optimize_show(study_id: str, db_url: str | None, top: int, as_json: bool) -> None:
    from mt5tester.results import studies as store

    engine = _engine(db_url)
    full = store.resolve_study(engine, study_id)
    if as_json:
        rows = store.trials(engine, full)
        last = max((r["fold"] for r in rows), default=0)
        _echo_json(
            {
                "study": store.study_row(engine, full),
                "folds": store.folds(engine, full),
                "best": [_public(r) for r in _ranked(rows, last)[:top]],
            }
        )
        return
    _print_study(_console(), engine, full, top)


def _public(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if k not in ("curve", "trade_pnl")}


@optimize.command("export", help="Every pass of a study as CSV (params and metrics as columns) or JSON.")
@click.argument("study_id", metavar="STUDY")
@click.option("--db", "db_url", metavar="URL", help=DB_HELP)
@click.option("--out", type=click.Path(path_type=Path), help="file to write (default: standard output)")
@click.option("--json", "as_json", is_flag=True, help="JSON (with curves and trade results) instead of CSV")
def optimize_export(study_id: str, db_url: str | None, out: Path | None, as_json: bool) -> None:
    from mt5tester.results import studies as store

    engine = _engine(db_url)
    rows = store.trials(engine, store.resolve_study(engine, study_id))
    text = json.dumps(rows, indent=2, default=str) + "\n" if as_json else _csv(rows)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"{len(rows)} passes written to {out}", err=True)


def _csv(rows: list[dict[str, Any]]) -> str:
    params = list(dict.fromkeys(p for r in rows for p in r["params"]))
    metrics = list(dict.fromkeys(m for r in rows for m in r["metrics"]))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    fixed = ["fold", "phase", "number", "score", "seed", "duration", "worker", "run_id"]
    w.writerow([*fixed, *params, *metrics])
    for r in rows:
        w.writerow(
            [*(r[k] for k in fixed), *(r["params"].get(p) for p in params)]
            + [r["metrics"].get(m) for m in metrics]
        )
    return buf.getvalue()


@optimize.command("rerun", help="Re-run the K best passes of a study in full, stored as normal runs.")
@click.argument("study_id", metavar="STUDY")
@click.option("--best", "k", type=click.IntRange(1), default=1, show_default=True, help="how many passes")
@click.option("--db", "db_url", metavar="URL", help=DB_HELP)
def optimize_rerun(study_id: str, k: int, db_url: str | None) -> None:
    from mt5tester.optimize.driver import rerun_best_passes

    for trial, run_id in rerun_best_passes(_engine(db_url), study_id, k):
        click.echo(f"pass {trial['number']} {json.dumps(trial['params'])}: run {run_id}")


@optimize.command("report", help="Write the study's HTML page (results table, heatmap, IS/OOS, robustness).")
@click.argument("study_id", metavar="STUDY")
@click.option("--db", "db_url", metavar="URL", help=DB_HELP)
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs"), show_default=True)
def optimize_report(study_id: str, db_url: str | None, out: Path) -> None:
    from mt5tester.reports.optimize import write_study_report

    path = write_study_report(_engine(db_url), study_id, out)
    click.echo(f"report: {path}")
    sys.stdout.flush()
