"""`mt5tester live`, `live stop`, `paper` and `data download`: sessions through a MetaTrader5-API module."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from mt5tester.cli.data import catalog_option, data, json_option
from mt5tester.config import load_config


def _console() -> Console:
    return Console(highlight=False, markup=False, emoji=False, soft_wrap=True)


def _report(console: Console, result: Any) -> None:
    from mt5tester.cli.app import print_funnel

    for line in result.preflight.differences:
        console.print(f"preflight: config differs from the broker: {line}")
    print_funnel(console, result.funnel)
    why = f" ({result.stopped_by})" if result.stopped_by else ""
    console.print(f"session {result.run_id} {result.status}{why}; records in {result.database}")


def _overrides(start: str | None, end: str | None, mode: str | None = None) -> dict[str, Any]:
    return {k: v for k, v in (("backtest.start", start), ("backtest.end", end), ("trading_mode", mode)) if v}


trading_mode_option = click.option(
    "--trading-mode", "trading_mode", help="a profile of trading_modes:, overrides trading_mode"
)


@click.group(
    "live",
    invoke_without_command=True,
    help="Trade the config's strategies live through a MetaTrader 5 terminal (the MetaTrader5 package, "
    "Windows). `live stop --config FILE` stops a running session (live.kill_switch: close | freeze).",
)
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--module", help="the MetaTrader5-API module to import (default live.module: MetaTrader5)")
@trading_mode_option
@click.pass_context
def live(ctx: click.Context, config_path: Path | None, module: str | None, trading_mode: str | None) -> None:
    if ctx.invoked_subcommand is not None:
        return
    if config_path is None:
        raise click.UsageError("mt5tester live needs --config FILE")
    from mt5tester.live.start import live as run_live

    cfg = load_config(config_path, _overrides(None, None, trading_mode))
    result = run_live(cfg, config_path.resolve().parent, module)
    _report(_console(), result)


@live.command("stop", help="Stop the session of a config: writes its live.stop_file.")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path, dir_okay=False))
def live_stop(config_path: Path) -> None:
    cfg = load_config(config_path)
    path = config_path.resolve().parent / cfg.live.stop_file
    path.write_text(dt.datetime.now(dt.UTC).isoformat(timespec="seconds") + "\n")
    click.echo(f"stop requested: {path}")


@click.command(
    "paper",
    help="Paper trading: the config's strategies on our simulated terminal replaying the stored data "
    "(--from/--to override backtest.start/end) at --replay-speed times real time (0: at once), or fed by "
    "a live terminal's quotes (--quotes-from MetaTrader5; stop it with `mt5tester live stop`).",
)
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--replay-speed", default=0.0, show_default=True, type=click.FloatRange(min=0.0))
@click.option("--from", "start", help="YYYY-MM-DD, overrides backtest.start")
@click.option("--to", "end", help="YYYY-MM-DD, overrides backtest.end")
@click.option(
    "--quotes-from",
    "quotes_from",
    help="instead of a replay: the live quotes of this MetaTrader5-API module (e.g. MetaTrader5)",
)
@trading_mode_option
def paper(
    config_path: Path,
    replay_speed: float,
    start: str | None,
    end: str | None,
    quotes_from: str | None,
    trading_mode: str | None,
) -> None:
    from mt5tester.live.start import paper as run_paper
    from mt5tester.live.start import paper_on_quotes

    cfg = load_config(config_path, _overrides(start, end, trading_mode))
    if quotes_from:
        result = paper_on_quotes(cfg, config_path.resolve().parent, quotes_from)
    else:
        result = run_paper(cfg, config_path.resolve().parent, replay_speed)
    _report(_console(), result)


@data.command("download", help="Download bars (and TICKS) from a MetaTrader 5 terminal into the catalog.")
@click.option("--symbols", required=True, help="comma-separated, as the broker spells them")
@click.option("--timeframes", default="M1", show_default=True, help="comma-separated; TICKS for ticks")
@click.option("--start", required=True, help="YYYY-MM-DD (UTC)")
@click.option("--end", required=True, help="YYYY-MM-DD (UTC), not included")
@click.option("--tz", "tz", default="UTC", show_default=True, help="the terminal's server time zone")
@click.option("--module", default="MetaTrader5", show_default=True, help="the MetaTrader5-API module")
@catalog_option
@json_option
def download_cmd(
    symbols: str,
    timeframes: str,
    start: str,
    end: str,
    tz: str,
    module: str,
    catalog_dir: Path,
    as_json: bool,
) -> None:
    from mt5tester.data.catalog import Catalog
    from mt5tester.engine.preflight import day_ns
    from mt5tester.errors import ConfigError
    from mt5tester.live.download import download
    from mt5tester.live.terminal import import_module

    try:
        lo, hi = day_ns(dt.date.fromisoformat(start)), day_ns(dt.date.fromisoformat(end))
    except ValueError as e:
        raise ConfigError(f"data download --start/--end: {e} (expected YYYY-MM-DD)") from None
    if hi <= lo:
        raise ConfigError(f"data download: --end {end} is not after --start {start}")
    rows = download(
        import_module(module),
        Catalog(catalog_dir),
        [s.strip() for s in symbols.split(",") if s.strip()],
        [t.strip() for t in timeframes.split(",") if t.strip()],
        lo,
        hi,
        tz,
    )
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        resumed = " (resumed)" if r["resumed_from"] else ""
        click.echo(
            f"{r['symbol']} {r['timeframe']}: {r['fetched']} fetched, {r['new']} new, "
            f"{r['duplicates']} already stored{resumed}"
        )
