"""`mt5tester metrics DEALS.csv`: MT5 tester report metrics from a deals table (spec 6.6)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from mt5tester.results.metrics import compute_metrics, read_deals_csv
from mt5tester.results.metrics_text import report_rows


@click.command("metrics", help="MT5 tester report metrics from a deals table (CSV in MT5 report layout).")
@click.argument("deals_file", metavar="DEALS.csv", type=click.Path(path_type=Path))
@click.option("--deposit", type=float, help="initial deposit (default: the first balance deal)")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def metrics(deals_file: Path, deposit: float | None, as_json: bool) -> None:
    m = compute_metrics(read_deals_csv(deals_file), deposit=deposit)
    if as_json:
        click.echo(json.dumps(m.to_dict(), indent=2))
        return
    table = Table(title=f"MT5 report metrics: {deals_file.name}", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for label, text in report_rows(m):
        table.add_row(label, text)
    Console(highlight=False, markup=False, emoji=False, soft_wrap=True).print(table)
