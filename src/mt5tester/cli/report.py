"""`mt5tester report RUN_ID [--pdf]` and `mt5tester report compare RUN_ID RUN_ID...`: reports from the DB."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from mt5tester.reports.content import DEFAULT_DB_URL

DB_OPTION = click.option(
    "--db",
    "db_url",
    envvar="MT5TESTER_DB_URL",
    default=DEFAULT_DB_URL,
    show_default=True,
    help="results database (SQLAlchemy URL); MT5TESTER_DB_URL sets the default",
)
OUT_OPTION = click.option(
    "--out", type=click.Path(path_type=Path), default=Path("runs"), show_default=True, help="report folder"
)


class _RunOrSubcommand(click.Group):
    """`report RUN_ID ...` (the form README and --help show) is the hidden `report run RUN_ID ...`;
    `report compare ...` stays a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in self.get_help_option_names(ctx):
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "RUN_ID [--pdf] [--plotlyjs M] [--out DIR] [--db URL]")
        formatter.write_usage(
            ctx.command_path, "compare RUN_ID RUN_ID... [--study STUDY]... [--out DIR] [--db URL]", "   or: "
        )


class _ReportRun(click.Command):
    """Shows its usage as `mt5tester report RUN_ID [OPTIONS]`, the form users type."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        parent = ctx.parent.command_path if ctx.parent else "mt5tester report"
        formatter.write_usage(parent, "RUN_ID [OPTIONS]")


def _console() -> Console:
    return Console(highlight=False, markup=False, emoji=False, soft_wrap=True)


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.2f} MB"


@click.group(
    "report",
    cls=_RunOrSubcommand,
    help="Reports from the results database: `report RUN_ID` writes the HTML report of one run "
    "(self-contained, offline; --pdf adds an A4 PDF); `report compare RUN_ID RUN_ID...` puts runs side by "
    "side. `mt5tester report RUN_ID --help` lists its options.",
)
def report() -> None:
    pass


@report.command(
    "run",
    cls=_ReportRun,
    hidden=True,
    help="The HTML report of one run (self-contained and offline by default); --pdf adds the same report "
    "printed to an A4 PDF by headless Chromium.",
)
@click.argument("run_id")
@click.option("--pdf", is_flag=True, help="also write the PDF report (needs chromium on PATH)")
@click.option(
    "--plotlyjs",
    type=click.Choice(["inline", "directory", "cdn"]),
    help="plotly.js inlined (offline), one shared plotly.min.js beside the reports, or from the CDN "
    "[default: the run's report.plotlyjs, else inline]",
)
@OUT_OPTION
@DB_OPTION
def report_run(run_id: str, pdf: bool, plotlyjs: str | None, out: Path, db_url: str) -> None:
    from mt5tester.reports.content import load_run, open_results_db
    from mt5tester.reports.html import write_run_html

    engine = open_results_db(db_url)
    console = _console()
    t0 = time.perf_counter()
    printer = None
    if pdf:
        from mt5tester.reports.pdf import PdfPrinter

        # a missing browser fails before any work; a found one starts now and loads the printed page's
        # shell (plotly.js) while the run is read and the HTML written
        printer = PdfPrinter()
    # a spinner with the phase on a terminal (rich prints nothing of it when piped)
    try:
        with console.status("reading the run") as status:

            def phase(name: str) -> None:
                status.update(f"report {run_id}: {name}")

            rep = load_run(engine, run_id, phase)  # read and derived once, shared by the HTML and the PDF
            path = write_run_html(rep, out, plotlyjs, phase)
            html_s = time.perf_counter() - t0
            console.print(f"html: {path} ({_size(path)}, {html_s:.1f} s)")
            if printer is not None:
                from mt5tester.reports.pdf import write_run_pdf

                t1 = time.perf_counter()
                path = write_run_pdf(rep, out, phase, printer)
                console.print(f"pdf: {path} ({_size(path)}, {time.perf_counter() - t1:.1f} s)")
    finally:
        if printer is not None:
            printer.close()


@report.command(
    "compare",
    help="Runs side by side: metrics, overlaid equity curves, config differences; an optimization section "
    "for runs that re-ran an optimizer pass and for each --study (its best pass and robustness).",
)
@click.argument("run_ids", metavar="RUN_ID RUN_ID...", nargs=-1)
@click.option("--study", "study_ids", multiple=True, metavar="STUDY", help="an optimizer study to compare")
@OUT_OPTION
@DB_OPTION
def report_compare(run_ids: tuple[str, ...], study_ids: tuple[str, ...], out: Path, db_url: str) -> None:
    from mt5tester.reports.compare import write_compare_report
    from mt5tester.reports.content import open_results_db

    if len(run_ids) + len(study_ids) < 2:
        raise click.UsageError("compare needs at least two run ids or --study ids")
    engine = open_results_db(db_url)
    path = write_compare_report(engine, list(run_ids), out, study_ids)
    _console().print(f"compare: {path} ({_size(path)})")
    _live_gap(engine, list(run_ids), out)


def _live_gap(engine: Any, run_ids: list[str], out: Path) -> None:
    """A live/paper session and one backtest: also the trade-by-trade gap (reports/live_compare.py)."""
    from mt5tester.reports.live_compare import session_ids, write_live_compare

    live = session_ids(engine, run_ids)
    others = [r for r in run_ids if r not in live]
    if len(run_ids) != 2 or len(live) != 1:
        return
    path, gap = write_live_compare(engine, live[0], others[0], out)
    console = _console()
    for key, value in gap.summary.items():
        console.print(f"{key}: {'-' if value is None else value}")
    console.print(f"live vs backtest: {path} ({_size(path)})")
