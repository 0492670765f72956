"""Command line. Thin: parse, call, map Mt5TesterError to its exit code, anything else to 1 with a traceback.

Exit codes: 0 ok, 1 internal error (traceback printed), 2 config error, 3 data error,
4 strategy load error, 5 strategy runtime error, 6 storage error.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mt5tester import __version__
from mt5tester.cli.lazy import LazyCommand, LazyGroup
from mt5tester.errors import EXIT_CODES, Mt5TesterError, StorageError

# `mt5tester --help` imports no pandas, numpy, SQLAlchemy, numba, plotly, pydantic or rich (issue 14,
# tests/test_startup.py): the config, rich and the engine are imported inside the commands, and the
# commands of their own modules are lazy (LAZY below).
if TYPE_CHECKING:
    from rich.console import Console

    from mt5tester.config import Config
    from mt5tester.engine.build import Components

log = logging.getLogger("mt5tester")
EXIT_HELP = "\b\nExit codes:\n" + "\n".join(f"  {k}  {v}" for k, v in EXIT_CODES.items())


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """mt5tester.config.load_config, imported when a command reads a config (pydantic is not light)."""
    from mt5tester.config import load_config as load

    return load(path, overrides)


def json_schema() -> dict[str, Any]:
    from mt5tester.config import json_schema as schema

    return schema()


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False, markup=False, emoji=False, soft_wrap=True)


# Commands defined in modules of their own, imported when used (name -> module:attr and the summary the
# group's --help shows; tests/test_startup.py keeps the summary equal to the command's own).
LAZY = {
    "data": LazyCommand(
        "mt5tester.cli.live:data",  # the group of cli.data, with the `data download` cli.live adds to it
        "Market data: import files into a local catalog, list, inspect, validate, resample, export, delete.",
    ),
    "metrics": LazyCommand(
        "mt5tester.cli.metrics:metrics",
        "MT5 tester report metrics from a deals table (CSV in MT5 report layout).",
    ),
    "report": LazyCommand(
        "mt5tester.cli.report:report",
        "Reports from the results database: `report RUN_ID` writes the HTML report of one run "
        "(self-contained, offline; --pdf adds an A4 PDF); `report compare RUN_ID RUN_ID...` puts runs side "
        "by side.",
    ),
    "runs": LazyCommand("mt5tester.cli.runs:runs", "Stored runs: list, show, compare, export, delete."),
    "live": LazyCommand(
        "mt5tester.cli.live:live",
        "Trade the config's strategies live through a MetaTrader 5 terminal (the MetaTrader5 package, "
        "Windows).",
    ),
    "paper": LazyCommand(
        "mt5tester.cli.live:paper",
        "Paper trading: the config's strategies on our simulated terminal replaying the stored data "
        "(--from/--to override backtest.start/end) at --replay-speed times real time (0: at once), or fed "
        "by a live terminal's quotes (--quotes-from MetaTrader5; stop it with `mt5tester live stop`).",
    ),
    "optimize": LazyCommand(
        "mt5tester.cli.optimize:optimize",
        "Optimize a strategy (the config's optimize: section): complete grid, random, genetic or Optuna "
        "passes on a local process pool (default: one worker per CPU) or Dask; every pass stored; a killed "
        "study continues with --resume STUDY. Subcommands read stored studies.",
    ),
}


@click.group(
    cls=LazyGroup, lazy=LAZY, help="mt5tester: MetaTrader 5 faithful backtester.\n\n" + EXIT_HELP, epilog=None
)
@click.version_option(__version__, prog_name="mt5tester")
@click.option("-v", "--verbose", is_flag=True, help="log at INFO level")
def cli(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def print_funnel(console: Console, funnel: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table(title="Lifecycle funnel", show_header=True)
    t.add_column("stage")
    t.add_column("count", justify="right")
    t.add_row("decision points (bar closes)", str(funnel["decision_points"]))
    if "driver" in funnel:
        why = funnel.get("driver_reason")
        t.add_row("driver", "kernel (compiled whole run)" if funnel["driver"] == "kernel" else f"loop: {why}")
    t.add_row("strategy calls", str(funnel["strategy_calls"]))
    t.add_row("signals generated", str(funnel["signals_generated"]))
    if funnel.get("strategy_order_sends"):
        t.add_row("  orders sent by strategies (order_send)", str(funnel["strategy_order_sends"]))
    t.add_row("invalid signals", str(funnel["invalid_signals"]))
    for name, reasons in funnel["invalid_by_strategy"].items():
        for reason, n in reasons.items():
            t.add_row(f"  invalid: {name}: {reason}", str(n))
    t.add_row("fed to fusion (trade: false)", str(funnel["fed_to_fusion"]))
    t.add_row("approved", str(funnel["approved"]))
    t.add_row("  of which resized", str(funnel["resized"]))
    for reason, n in funnel["rejected"].items():
        t.add_row(f"rejected: {reason}", str(n))
    if not funnel["rejected"]:
        t.add_row("rejected", "0")
    t.add_row("executed", str(funnel["executed"]))
    for reason, n in funnel["order_failed"].items():
        t.add_row(f"order failed: {reason}", str(n))
    for how, n in funnel["closed"].items():
        t.add_row(f"closed by {how.replace('_', ' ')}", str(n))
    t.add_row("ambiguous M1 bars (SL and TP inside one bar)", str(funnel["ambiguous_bars"]))
    t.add_row("stop-outs", str(funnel["stop_outs"]))
    for name, n in funnel["strategy_errors"].items():
        t.add_row(f"strategy errors: {name}", str(n))
    if not funnel["strategy_errors"]:
        t.add_row("strategy errors", "0")
    for name, us in funnel["mean_call_us"].items():
        t.add_row(f"calls / mean µs: {name}", f"{funnel['calls'][name]} / {us:.1f}")
    console.print(t)


KEY_METRICS = [
    ("Total net profit", "total_net_profit"),
    ("Gross profit", "gross_profit"),
    ("Gross loss", "gross_loss"),
    ("Profit factor", "profit_factor"),
    ("Expected payoff", "expected_payoff"),
    ("Recovery factor", "recovery_factor"),
    ("Sharpe ratio", "sharpe_ratio"),
    ("Balance drawdown maximal", "balance_dd_maximal"),
    ("Equity drawdown maximal", "equity_dd_maximal"),
    ("Equity drawdown relative %", "equity_dd_relative_pct"),
    ("Total trades", "total_trades"),
    ("Profit trades %", "profit_trades_pct"),
    ("Margin level min %", "margin_level_min"),
]


def print_metrics(console: Console, m: Any) -> None:
    from rich.table import Table

    t = Table(title="MT5 report metrics (mt5tester metrics / report for all)", show_header=True)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for label, key in KEY_METRICS:
        v = getattr(m, key)
        t.add_row(label, "-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v)))
    console.print(t)


def speed_line(m1_bars: int, points: int, seconds: float) -> str:
    """How fast the loop ran (the loop only: not the build, report or metrics)."""
    rate = f"{m1_bars / seconds:,.0f} M1 bars/s" if seconds > 0 else "-"
    return f"loop: {m1_bars:,} M1 bars, {points:,} decision points in {seconds:.2f} s ({rate})"


class _ProgressBar:
    """The run's progress bar on a terminal: shown from the first progress call until ``close``."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar: Any = None  # a rich Progress, imported at the first call
        self.task: Any = None

    def __call__(self, n: int, total: int) -> None:
        if self.bar is None:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("backtest"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("run", total=None)
        self.bar.update(self.task, completed=n, total=total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def run_backtest(
    cfg: Config, base_dir: Path, console: Console, resume: tuple[str, dict[str, Any]] | None = None
) -> int:
    from mt5tester.data.health import format_report, history_quality
    from mt5tester.engine.run import SqlRows, run
    from mt5tester.reports.html import write_html_report

    quality: list[str] = []  # filled when the run starts: the history quality line printed at the end

    def announce(components: Components, run_id: str) -> None:
        console.print(format_report(components.health))
        if resume:
            console.print(f"resuming run {run_id} after {resume[1]['point'] + 1} decision points")
        print_strategies(console, components)
        console.print(
            f"run {run_id}: {', '.join(cfg.backtest.symbols)} {cfg.backtest.start} .. "
            f"{cfg.backtest.end}, {len(components.strategies)} strategies: "
            + ", ".join(
                f"{ls.strategy.name} ({ls.strategy.category}, {ls.strategy.timeframe.name})"
                for ls in components.strategies
            )
        )
        quality.extend(
            f"{h.symbol} {history_quality(components.m1[h.symbol], h):.2f}%" for h in components.health
        )

    bar = _ProgressBar(console) if console.is_terminal else None
    try:
        result = run(cfg, base_dir=base_dir, progress=bar, resume=resume, on_start=announce)
    finally:
        if bar is not None:
            bar.close()
    print_funnel(console, result.funnel)
    print_metrics(console, result.metrics)
    console.print(f"history quality (M1): {', '.join(quality)}")
    console.print(
        f"final balance {result.final_balance:.2f} {cfg.backtest.deposit_currency}, {result.deal_count} deals"
    )
    console.print(speed_line(result.m1_bars, result.funnel["decision_points"], result.loop_seconds))
    assert isinstance(result.source, SqlRows)  # the CLI records into the results database
    engine = result.source.engine
    report = None
    if cfg.report.html:
        with console.status("writing the report") as status:  # a spinner with the phase on a terminal
            report = write_html_report(
                engine, result.run_id, cfg.results.out_dir, on_phase=lambda p: status.update(f"report: {p}")
            )
    print_locations(console, engine, result.run_id, report)
    return 0


def print_strategies(console: Console, components: Components) -> None:
    from rich.table import Table

    loaded = Table(title="Strategies loaded")
    for col in ("name", "category", "timeframe", "symbols", "params", "source", "hash"):
        loaded.add_column(col)
    for ls in components.strategies:
        s = ls.strategy
        loaded.add_row(
            s.name,
            s.category,
            s.timeframe.name,
            ",".join(s.symbols),
            json.dumps(s.params.model_dump(mode="json")),
            ls.source_file,
            ls.source_hash,
        )
    console.print(loaded)


def print_locations(console: Console, engine: Any, run_id: str, report: Path | None) -> None:
    """Where a run is stored and its report, with the commands that read them (issue 12: every run
    says where it went, so `runs list` and `report` find it)."""
    from mt5tester.results.queries import resolve_url

    url = engine.url.render_as_string(hide_password=True)
    default = resolve_url(None)
    if default.startswith("sqlite:///") and not default.startswith("sqlite:////"):
        default = "sqlite:///" + str(Path(default[len("sqlite:///") :]).resolve())
    db = "" if url == default else f" --db '{url}'"
    console.print(f"results database: {url} (mt5tester runs show {run_id}{db})")
    if report is None:
        console.print(f"report: not written; mt5tester report {run_id}{db} writes it")
    else:
        console.print(f"report: {report}")


@cli.command(help="Run a backtest from a YAML config, or resume a killed one (--resume RUN_ID).")
@click.option("--config", "config_path", type=click.Path(path_type=Path))
@click.option("--resume", "resume_id", help="continue this run from its last checkpoint")
@click.option(
    "--db", "db_url", help="results database of --resume (default: MT5TESTER_DB_URL or the config's)"
)
@click.option("--symbols", help="comma-separated, overrides backtest.symbols")
@click.option("--start", help="YYYY-MM-DD, overrides backtest.start")
@click.option("--end", help="YYYY-MM-DD, overrides backtest.end")
@click.option("--out", type=click.Path(path_type=Path), help="report folder, overrides results.out_dir")
@click.option("--allow-unhealthy", is_flag=True, help="run even if data health is below data.min_health")
@click.option("--trading-mode", "trading_mode", help="a profile of trading_modes:, overrides trading_mode")
def backtest(
    config_path: Path,
    symbols: str | None,
    start: str | None,
    end: str | None,
    out: Path | None,
    allow_unhealthy: bool,
    resume_id: str | None,
    db_url: str | None,
    trading_mode: str | None,
) -> None:
    if resume_id:
        cfg, base_dir, state = _resume_target(resume_id, config_path, db_url)
        sys.exit(run_backtest(cfg, base_dir, _console(), (resume_id, state)))
    if config_path is None:
        raise click.UsageError("give --config FILE (or --resume RUN_ID)")
    overrides: dict[str, Any] = {
        "data.allow_unhealthy": True if allow_unhealthy else None,
        "backtest.start": start,
        "backtest.end": end,
        "results.out_dir": str(out.resolve()) if out else None,
        "trading_mode": trading_mode,
    }
    cfg = load_config(config_path, overrides)
    if symbols:  # narrows the strategies that list their own symbols too (README: flags override)
        from mt5tester.strategy.loader import narrow_symbols

        cfg = narrow_symbols(cfg, [s.strip() for s in symbols.split(",") if s.strip()])
    sys.exit(run_backtest(cfg, config_path.resolve().parent, _console()))


def _resume_target(
    run_id: str, config_path: Path | None, db_url: str | None
) -> tuple[Config, Path, dict[str, Any]]:
    """The stored effective config of a run and its last checkpoint; errors say why it cannot resume."""
    import os

    from sqlalchemy import select

    from mt5tester.config import ResultsConfig, parse_config
    from mt5tester.engine import checkpoint
    from mt5tester.errors import StorageError
    from mt5tester.results import db

    results = load_config(config_path).results if config_path else ResultsConfig()
    url = db_url or os.environ.get("MT5TESTER_DB_URL") or results.database_url
    engine = db.connect(
        url,
        connect_timeout=results.connect_timeout_seconds,
        statement_timeout=results.statement_timeout_seconds,
    )
    with engine.connect() as conn:
        row = conn.execute(
            select(db.runs.c.status, db.runs.c.config).where(db.runs.c.run_id == run_id)
        ).first()
    if row is None:
        raise StorageError(f"no run {run_id} in {db.redact(url)}")
    if row[0] == "completed":
        raise StorageError(f"run {run_id} is completed; nothing to resume")
    ck = checkpoint.latest(engine, run_id)
    if ck is None:
        raise StorageError(
            f"run {run_id} ({row[0]}) has no checkpoint to resume from (results.checkpoint_seconds); rerun it"
        )
    raw = dict(row[1])
    raw["results"] = {**raw["results"], "database_url": url}
    return parse_config(raw, f"run {run_id}"), Path(ck.state["base_dir"]), ck.state


@cli.command(help="Generate demo data and run a demo portfolio on it (no real data needed).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo_out"), show_default=True)
def demo(out: Path) -> None:
    from mt5tester.cli.demo import prepare_demo

    console = _console()
    config_path = prepare_demo(out.resolve())
    console.print(f"demo data and config in {out.resolve()}")
    cfg = load_config(config_path)
    code = run_backtest(cfg, config_path.parent, console)
    if code == 0:
        from mt5tester.cli.demo import prepare_paper_demo
        from mt5tester.live.start import paper

        paper_path = prepare_paper_demo(out.resolve())
        result = paper(load_config(paper_path), paper_path.parent)
        console.print(
            f"paper session {result.run_id} {result.status}: {paper_path.name} replayed through the "
            f"simulated terminal posing as MetaTrader5, {result.funnel['executed']} orders sent "
            f"(mt5tester paper --config {paper_path})"
        )
    if code == 0:  # the same per-bar strategy on both drivers (issue 14)
        from mt5tester.cli.demo import run_drivers_demo

        run_drivers_demo(out.resolve(), console)
    if code == 0:  # then a small optimization and a walk-forward on the same data (issue 15)
        from mt5tester.cli.demo import run_demo_studies

        run_demo_studies(out.resolve(), console)
    sys.exit(code)


@cli.command(
    "run-script", help="Run an unmodified MetaTrader5-package script against the simulated terminal."
)
@click.argument("script", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path))
@click.argument("script_args", nargs=-1)
def run_script_cmd(script: Path, config_path: Path, script_args: tuple[str, ...]) -> None:
    from mt5tester.engine.run import SqlRows, run
    from mt5tester.engine.script import Script
    from mt5tester.reports.html import write_html_report

    cfg = load_config(config_path)
    job = Script(script, tuple(script_args))
    base_dir = config_path.resolve().parent
    console = _console()
    if console.is_terminal:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(
            TextColumn("script (simulated time)"),
            BarColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("run", total=None)
            result = run(
                cfg,
                base_dir=base_dir,
                script=job,
                progress=lambda n, total: bar.update(task, completed=n, total=total),
            )
    else:
        result = run(cfg, base_dir=base_dir, script=job)
    # The same end of run as a backtest: funnel, metrics, report.
    print_funnel(console, result.funnel)
    print_metrics(console, result.metrics)
    equity = float(result.equity["equity"].iloc[-1]) if len(result.equity) else result.final_balance
    console.print(
        f"run {result.run_id}: script {script} {result.status}"
        f"{' (stopped at backtest.end)' if result.funnel.get('stopped_at_end') else ''}; "
        f"{result.deal_count} deals, balance {result.final_balance:.2f}, equity {equity:.2f} "
        f"{cfg.backtest.deposit_currency}"
    )
    assert isinstance(result.source, SqlRows)  # the CLI records into the results database
    engine = result.source.engine
    report = write_html_report(engine, result.run_id, cfg.results.out_dir) if cfg.report.html else None
    print_locations(console, engine, result.run_id, report)


@cli.command(
    "check-lookahead",
    help="Prove a strategy uses no future data: the full run vs runs whose data after seeded cuts is "
    "changed, each in a fresh process (exit 7 if a decision changes).",
)
@click.argument("strategy")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="config with the strategy (default: the demo data with the strategy on EURUSD H1)",
)
@click.option("--points", default=12, show_default=True, type=click.IntRange(1, 500), help="cut times")
@click.option("--seed", default=0, show_default=True, type=int, help="seed of the cut times and changed data")
@click.option("--jobs", default=None, type=click.IntRange(1, 64), help="processes at once (default: cores)")
@click.option("--json", "as_json", is_flag=True)
def check_lookahead_cmd(
    strategy: str, config_path: Path | None, points: int, seed: int, jobs: int | None, as_json: bool
) -> None:
    import shutil

    from mt5tester.cli.demo import lookahead_config
    from mt5tester.engine.lookahead import check_lookahead
    from mt5tester.errors import LookaheadFound

    made = config_path is None
    if config_path is None:
        config_path = lookahead_config(strategy)
    try:
        cfg = load_config(config_path)
        name = (cfg.strategies[-1].name or strategy) if made else strategy  # the demo config names it
        report = check_lookahead(cfg, config_path.resolve().parent, name, points, seed, jobs)
    finally:
        if made:
            shutil.rmtree(config_path.parent, ignore_errors=True)
    first = report.first
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        console = _console()
        console.print(
            f"{strategy}: {len(report.cuts)} cuts (seed {seed}), {report.signals_checked} decisions and "
            f"{report.values_checked} prepared values compared",
            markup=False,
        )
        for d in report.differences[:50]:
            console.print(f"  {d.describe()}", markup=False)
        console.print(
            "clean: no lookahead found"
            if first is None
            else f"LOOKAHEAD: first difference: {first.describe()}",
            markup=False,
        )
    if first is not None:
        raise LookaheadFound(f"{strategy}: lookahead: {first.describe()}")


@cli.group(help="The strategies available: built-ins and installed plug-ins.")
def strategies() -> None:
    pass


@strategies.command("list", help="Each strategy with its category, params (defaults) and docstring.")
@click.option("--json", "as_json", is_flag=True)
def strategies_list(as_json: bool) -> None:
    import inspect

    from rich.table import Table

    from mt5tester.strategy.loader import BUILTINS, plugin_targets, resolve_class

    rows: list[dict[str, Any]] = []
    for name, target in [*sorted(BUILTINS.items()), *sorted(plugin_targets().items())]:
        cls, source = resolve_class(name, Path.cwd(), name)
        params = {
            k: {
                "default": None if f.is_required() else f.get_default(call_default_factory=True),
                "description": f.description or "",
            }
            for k, f in cls.Params.model_fields.items()
        }
        rows.append(
            {
                "name": name,
                "class": target,
                "category": cls.category,
                "source": source,
                "plugin": name not in BUILTINS,
                "params": params,
                "doc": inspect.getdoc(cls) or "",
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    t = Table(title="Strategies", show_lines=True)
    for col in ("name", "category", "params (default)", "description"):
        t.add_column(col)
    for r in rows:
        shown = "\n".join(f"{k}={v['default']!r}" for k, v in r["params"].items())
        t.add_row(str(r["name"]), str(r["category"]), shown, str(r["doc"]).split("\n\n")[0])
    _console().print(t)


@cli.group(help="Validate a config or print its JSON Schema.")
def config() -> None:
    pass


@config.command(
    "check",
    help="Validate a config file and its strategies (import, params, names, fusion members) without "
    "data or database; exit 0 when valid, 2 otherwise.",
)
@click.argument("file", type=click.Path(path_type=Path))
def config_check(file: Path) -> None:
    from mt5tester.errors import ConfigError, StrategyLoadError
    from mt5tester.strategy.loader import load_strategies
    from mt5tester.strategy.modes import prepare_config

    cfg = load_config(file)
    cfg.check_symbol_specs()
    if cfg.strategies or cfg.strategy_folders:  # none is valid here: a run-script config has none
        try:
            cfg = prepare_config(cfg, file.resolve().parent)
            load_strategies(cfg, file.resolve().parent)
        except StrategyLoadError as e:
            raise ConfigError(str(e)) from None
    _console().print(
        f"{file}: valid (hash {cfg.config_hash()}, {len(cfg.strategies)} strategies, "
        f"symbols {', '.join(cfg.backtest.symbols)})"
    )


@config.command("schema", help="Print the config's JSON Schema (for editors).")
def config_schema() -> None:
    click.echo(json.dumps(json_schema(), indent=2))


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="mt5tester", standalone_mode=False)
    except SystemExit as e:
        return int(e.code or 0) if not isinstance(e.code, str) else 1
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except click.ClickException as e:
        e.show()
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except Mt5TesterError as e:
        click.echo(f"error ({type(e).__name__}, exit {e.exit_code}): {e}", err=True)
        return e.exit_code
    except Exception as e:
        from sqlalchemy.exc import OperationalError

        if isinstance(e, OperationalError):  # the database failed: disk full, timeout, connection lost
            cause = e.orig if e.orig is not None else e
            click.echo(
                f"error (StorageError, exit 6): the results database failed: {type(cause).__name__}: "
                f"{str(cause).strip()}. Fix the database (results.database_url, MT5TESTER_DB_URL or --db).",
                err=True,
            )
            return StorageError.exit_code
        click.echo("internal error (a bug in mt5tester, please report it):", err=True)
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
