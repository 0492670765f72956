"""The one entry point: ``run(config) -> RunResult``, and ``load_run(run_id)`` for a stored run.

``run`` builds the components (from preloaded ``data`` when given), runs the loop as a black box and
wraps what it returns in a ``RunResult``: a value a notebook works with (metrics, funnel, DataFrames).
Its records go to ``sink``: the SQL recorder by default, a ``MemorySink`` for tests and optimizer
trials (then no database is opened at all). Config, data and result pickle, so a run can be shipped to
another process.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import pandas as pd
from sqlalchemy import Engine, select

from mt5tester.config import Config, load_config
from mt5tester.engine.build import Components, build
from mt5tester.engine.dataset import Dataset
from mt5tester.errors import ConfigError, StorageError
from mt5tester.results import db, frames
from mt5tester.results.memory import MemorySink
from mt5tester.results.metrics import Mt5Metrics, compute_metrics
from mt5tester.results.recorder import Recorder
from mt5tester.results.sink import Sink
from mt5tester.results.trial_sink import MetricsSink

if TYPE_CHECKING:
    from mt5tester.engine.loop import Runner
    from mt5tester.engine.script import Script

Progress = Callable[[int, int], None]


class RowSource(Protocol):
    """Where a result's rows are read from, one table at a time."""

    def rows(self, table: str) -> list[dict[str, Any]]: ...


class SqlRows:
    """Rows of one run in a results database; the engine is opened on demand and not pickled."""

    def __init__(self, url: str, run_id: str, engine: Engine | None = None) -> None:
        self.url, self.run_id, self._engine = url, run_id, engine

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "run_id": self.run_id, "_engine": None}

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = db.connect(self.url, use_env=False)
        return self._engine

    def rows(self, table: str) -> list[dict[str, Any]]:
        t = db.metadata.tables[table]
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(t).where(t.c.run_id == self.run_id)).mappings()]


@dataclass
class RunResult:
    """A finished run. Frames and metrics are read from its rows on first use and kept.

    ``funnel``: the engine's counters with the ones computed from the stored rows (what the CLI prints).
    ``m1_bars`` (M1 bars simulated) is known only to the process that ran it (0 for ``load_run``).
    """

    run_id: str
    status: str
    funnel: dict[str, Any]
    final_balance: float
    deal_count: int
    deposit: float
    currency: str
    config: dict[str, Any] = field(repr=False)  # the effective config, database password redacted
    source: RowSource = field(repr=False, compare=False)
    loop_seconds: float = 0.0
    m1_bars: int = 0
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def _table(self, name: str) -> pd.DataFrame:
        if name not in self._cache:
            self._cache[name] = frames.table_frame(name, self.source.rows(name))
        frame: pd.DataFrame = self._cache[name]
        return frame

    @property
    def deals(self) -> pd.DataFrame:
        return self._table("deals")

    @property
    def orders(self) -> pd.DataFrame:
        return self._table("orders")

    @property
    def positions(self) -> pd.DataFrame:
        """Trades: one row per position, with its MFE/MAE in deposit currency."""
        return self._table("positions")

    @property
    def signals(self) -> pd.DataFrame:
        return self._table("signals")

    @property
    def equity(self) -> pd.DataFrame:
        return self._table("equity")

    @property
    def daily_equity(self) -> pd.DataFrame:
        """Per server day: the last equity sample (time, balance, equity) and the day's lowest equity."""
        return self._table("daily_equity")

    @property
    def metrics(self) -> Mt5Metrics:
        """The MT5 tester report's metrics (``results.metrics``)."""
        if "metrics" not in self._cache:
            self._cache["metrics"] = compute_metrics(
                frames.metrics_deals(self.source.rows("deals")),
                self.deposit,
                frames.metrics_equity(self.source.rows("equity")),
                self.funnel.get("margin_level_min"),
            )
        metrics: Mt5Metrics = self._cache["metrics"]
        return metrics


def _redacted(cfg: Config) -> dict[str, Any]:
    effective = cfg.effective()
    results = effective["results"] | {"database_url": db.redact(cfg.results.database_url)}
    return effective | {"results": results}


def _funnel(engine_counts: dict[str, Any], source: RowSource) -> dict[str, Any]:
    """The engine's counters with the ones computed from the stored rows (what the CLI prints); the
    decision points are the engine's: the stored count reads one equity row per point, which holds only
    with ``results.equity_sampling: point``."""
    points = (
        {"decision_points": engine_counts["decision_points"]} if "decision_points" in engine_counts else {}
    )
    return engine_counts | _stored_funnel(source) | points


def _stored_funnel(source: RowSource) -> dict[str, Any]:
    if isinstance(source, SqlRows):
        from mt5tester.results.funnel import funnel_from_db

        return funnel_from_db(source.engine, source.run_id)
    if isinstance(source, MemorySink | MetricsSink):  # counted over its columns' codes: no rows built
        return frames.funnel_from_columns(source.form, source.count("equity"))
    return frames.funnel_from_rows(
        source.rows("signals"), source.rows("deals"), source.rows("strategy_errors"), source.rows("equity")
    )


class Watch(Protocol):
    """Sees a run from inside, for tools that check the engine: the lookahead checker records every
    strategy call, order and deal with one. ``attach(runner)`` is called once the run's parts are built,
    before the first decision point; it may wrap the host's calls, the terminal's ``order_send`` and the
    server's ``advance``, and set ``runner.stop_ns`` (no decision point after that time)."""

    def attach(self, runner: Runner) -> None: ...


def run(
    config: Config | str | Path,
    *,
    data: Dataset | None = None,
    sink: Sink | None = None,
    progress: Progress | None = None,
    base_dir: Path | None = None,
    resume: tuple[str, dict[str, Any]] | None = None,
    on_start: Callable[[Components, str], None] | None = None,
    script: Script | None = None,
    watch: Watch | None = None,
    driver: str = "auto",
) -> RunResult:
    """Run one backtest and return its result.

    ``config``: a Config, or the path of a YAML config. Strategy files are found under ``base_dir``:
    by default the config file's folder, or the working directory for a Config. ``data``: preloaded
    market data (``load_data``). ``sink``: where the records go (default: the SQL database of
    ``results.database_url``). ``progress(n, total)`` is called as decision points pass (a script:
    simulated seconds). ``resume`` (run id, checkpoint state) continues a stored run;
    ``on_start(components, run_id)`` is called once everything is built, before the first point (the
    CLI prints its tables there). ``script``: run an unmodified MetaTrader5-package script instead of
    the config's strategies (``mt5tester run-script``). ``watch``: see ``Watch``. All of them pickle
    (callbacks as far as the caller's functions do), so a run can be shipped to another process.
    ``driver``: "auto" runs the points inside the compiled kernel when every strategy and rule allows
    it (the funnel's ``driver``/``driver_reason`` say which ran and why), "loop" always in Python,
    "kernel" or a ConfigError naming the first reason it cannot.
    """
    from mt5tester.engine.loop import Runner
    from mt5tester.engine.script import run_script

    if script is not None:
        script.check()
        if resume:
            raise ConfigError("a script run cannot be resumed: run the script again")
    if not isinstance(config, Config):
        path = Path(config)
        config, base_dir = load_config(path), base_dir or path.resolve().parent
    base_dir = base_dir if base_dir is not None else Path.cwd()
    run_id = resume[0] if resume else getattr(sink, "run_id", "") or uuid.uuid4().hex[:12]
    if isinstance(sink, MemorySink):
        sink.run_id = run_id
    engine = sink.engine if isinstance(sink, Recorder) else None
    # A sink of its own (MemorySink, an optimizer's): no results database is opened at all.
    components = build(
        config,
        base_dir,
        with_strategies=script is None,
        data=data,
        engine=engine,
        open_results=sink is None or engine is not None,
    )
    # Runner annotates its sink as the Recorder; any Sink does (results/sink.py).
    runner = Runner(components, run_id=run_id, sink=cast(Recorder, sink))
    runner.driver = driver
    if watch is not None:
        watch.attach(runner)
    stored = components.engine  # None: the records went to a sink of their own
    if resume:
        from mt5tester.engine import checkpoint

        if stored is None:
            raise StorageError(f"run {run_id} can only be resumed into the results database it is stored in")
        checkpoint.truncate_after(stored, run_id, resume[1])
    if on_start is not None:
        on_start(components, run_id)
    if script is not None:
        done = run_script(runner, script, progress)
    else:
        done = runner.run(progress, resume[1] if resume else None)
    source: RowSource = (
        cast(RowSource, sink)
        if stored is None
        else SqlRows(stored.url.render_as_string(hide_password=False), run_id, stored)
    )
    return RunResult(
        run_id=run_id,
        status=done.status,
        funnel=_funnel(done.funnel, source),
        final_balance=done.final_balance,
        deal_count=done.deals,
        deposit=config.backtest.initial_deposit,
        currency=config.backtest.deposit_currency,
        config=_redacted(components.cfg),  # with strategy folders expanded and the trading mode applied
        loop_seconds=done.loop_seconds,
        m1_bars=done.m1_bars,
        source=source,
    )


def load_run(run_id: str, db: str | None = None) -> RunResult:
    """A stored run as a ``RunResult``, from the results database ``db`` (a URL; default
    MT5TESTER_DB_URL, else the config default). ``run_id`` may be a unique prefix."""
    from mt5tester.results import db as tables
    from mt5tester.results.queries import open_results, resolve_run, resolve_url

    engine = open_results(db)
    full = resolve_run(engine, run_id)
    r = tables.runs
    with engine.connect() as conn:
        run_row = dict(conn.execute(select(r).where(r.c.run_id == full)).mappings().one())
    source = SqlRows(resolve_url(db), full, engine)
    deals = frames.table_frame("deals", source.rows("deals"))
    balance = float(deals["balance"].iloc[-1]) if len(deals) else float(run_row["deposit"])
    timings = run_row["timings"] or {}
    result = RunResult(
        run_id=full,
        status=run_row["status"],
        funnel=_funnel(run_row["funnel"] or {}, source),
        final_balance=balance,
        deal_count=len(deals),
        deposit=float(run_row["deposit"]),
        currency=run_row["currency"],
        config=run_row["config"],
        loop_seconds=float(timings.get("loop_seconds", 0.0)),
        source=source,
    )
    result._cache["deals"] = deals
    return result
