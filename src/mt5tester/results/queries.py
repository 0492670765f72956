"""Read, export and delete stored runs (the data behind ``mt5tester runs ...``). Read-only except delete.

Every function takes an Engine from ``open_results`` (or ``db.connect``) and a run id; an unknown id is
a StorageError that lists the ids the database holds. A unique prefix of an id is accepted (as git does).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, case, delete, func, select
from sqlalchemy.engine import make_url

from mt5tester.config import DEFAULT_DATABASE_URL
from mt5tester.errors import StorageError
from mt5tester.results import db
from mt5tester.results.metrics import (
    DEAL_BUY,
    DEAL_SELL,
    DEAL_TYPE_NAMES,
    ENTRY_IN,
    ENTRY_INOUT,
    ENTRY_OUT,
    ENTRY_OUT_BY,
    Mt5Metrics,
    run_metrics,
)

DEFAULT_DB_URL = DEFAULT_DATABASE_URL  # the one default of every command
EXPORT_FORMATS = ("csv", "parquet", "quantstats")
TIME_COLUMNS = ("time", "time_ns", "time_open", "time_close", "time_setup", "time_done")  # UTC ns
# the words MT5's report prints in the Type and Direction columns (read back by metrics.read_deals_csv)
TYPE_WORDS = {v: k for k, v in DEAL_TYPE_NAMES.items()}
ENTRY_WORDS = {ENTRY_IN: "in", ENTRY_OUT: "out", ENTRY_INOUT: "in/out", ENTRY_OUT_BY: "out by"}
# MT5 tester report "Deals" columns, in report order; Position and Strategy are ours (the reader keeps
# Position for holding times and ignores Strategy)
MT5_DEAL_HEADER = [
    "Time",
    "Deal",
    "Symbol",
    "Type",
    "Direction",
    "Volume",
    "Price",
    "Order",
    "Commission",
    "Swap",
    "Profit",
    "Balance",
    "Comment",
    "Position",
    "Strategy",
]
MT5_TIME_FORMAT = "%Y.%m.%d %H:%M:%S"


def resolve_url(url: str | None) -> str:
    """--db, else MT5TESTER_DB_URL, else the config default (sqlite:///runs/mt5tester.sqlite)."""
    return url or os.environ.get("MT5TESTER_DB_URL") or DEFAULT_DB_URL


def open_results(url: str | None) -> Engine:
    """Connect to an existing results database (migrated to head). A missing SQLite file is an error,
    not a new empty database."""
    url = resolve_url(url)
    try:
        parsed = make_url(url)
    except Exception:
        parsed = None  # db.connect reports it (without echoing the URL)
    if (
        parsed is not None
        and parsed.get_backend_name() == "sqlite"
        and parsed.database
        and parsed.database != ":memory:"
        and not Path(parsed.database).is_file()
    ):
        raise StorageError(
            f"no results database at {parsed.database}: run a backtest first or pass --db URL "
            "(or set MT5TESTER_DB_URL)"
        )
    return db.connect(url, use_env=False)


# --- run ids ----------------------------------------------------------------------------------------------
def run_ids(engine: Engine) -> list[str]:
    """Every stored run id, newest first."""
    r = db.runs
    with engine.connect() as conn:
        return [
            row[0] for row in conn.execute(select(r.c.run_id).order_by(r.c.started_at.desc(), r.c.run_id))
        ]


def _unknown(engine: Engine, what: str, ids: list[str]) -> StorageError:
    shown = ", ".join(ids[:20]) + (f", ... ({len(ids)} in all)" if len(ids) > 20 else "")
    where = engine.url.render_as_string(hide_password=True)
    return StorageError(f"{what} in {where}; runs there: {shown or 'none'}")


def resolve_run(engine: Engine, run_id: str) -> str:
    """The full id of ``run_id`` (an id or a unique prefix of one). StorageError naming the ids that exist."""
    ids = run_ids(engine)
    if run_id in ids:
        return run_id
    matches = [i for i in ids if run_id and i.startswith(run_id)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise StorageError(f"run id prefix {run_id!r} is ambiguous: {', '.join(matches)}")
    raise _unknown(engine, f"no run {run_id!r}", ids)


# --- list ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSummary:
    run_id: str
    status: str
    started_at: str
    finished_at: str | None
    symbols: list[str]
    strategies: list[str]
    net_profit: float  # sum of profit + swap + commission of trading deals (= the report's Total Net Profit)
    trades: int  # closing deals (in/out, out, out by) = the report's Total Trades
    deals: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_runs(engine: Engine, limit: int | None = None) -> list[RunSummary]:
    """Stored runs, newest first, with their net profit and trade count (two aggregate queries)."""
    r, d, s = db.runs, db.deals, db.run_strategies
    trading = d.c.type.in_((DEAL_BUY, DEAL_SELL))
    closing = trading & d.c.entry.in_((ENTRY_OUT, ENTRY_INOUT, ENTRY_OUT_BY))
    per_run = (
        select(
            d.c.run_id,
            func.coalesce(func.sum(case((trading, d.c.profit + d.c.swap + d.c.commission), else_=0.0)), 0.0),
            func.coalesce(func.sum(case((closing, 1), else_=0)), 0),
            func.count(),
        )
        .group_by(d.c.run_id)
        .subquery()
    )
    q = (
        select(r.c.run_id, r.c.status, r.c.started_at, r.c.finished_at, r.c.config, *list(per_run.c)[1:])
        .outerjoin(per_run, per_run.c.run_id == r.c.run_id)
        .order_by(r.c.started_at.desc(), r.c.run_id)
    )
    if limit is not None:
        q = q.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
        names: dict[str, list[str]] = {}
        for run_id, name in conn.execute(select(s.c.run_id, s.c.name).order_by(s.c.run_id, s.c.name)):
            names.setdefault(run_id, []).append(name)
    out = []
    for run_id, status, started, finished, config, net, trades, n_deals in rows:
        symbols = ((config or {}).get("backtest") or {}).get("symbols") or []
        out.append(
            RunSummary(
                run_id=run_id,
                status=status,
                started_at=started,
                finished_at=finished,
                symbols=list(symbols),
                strategies=names.get(run_id, []),
                net_profit=round(float(net or 0.0), 2),
                trades=int(trades or 0),
                deals=int(n_deals or 0),
            )
        )
    return out


# --- show / compare -----------------------------------------------------------------------------------------
def row_counts(engine: Engine, run_id: str) -> dict[str, int]:
    """Rows of ``run_id`` in every table of the schema."""
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for t in db.metadata.sorted_tables:
            counts[t.name] = int(
                conn.execute(select(func.count()).select_from(t).where(t.c.run_id == run_id)).scalar_one()
            )
    return counts


def metrics_of(engine: Engine, run_id: str) -> Mt5Metrics:
    """The MT5 report metrics of a stored run (deposit and margin level minimum from its run row)."""
    r = db.runs
    with engine.connect() as conn:
        deposit, funnel = conn.execute(select(r.c.deposit, r.c.funnel).where(r.c.run_id == run_id)).one()
    return run_metrics(engine, run_id, float(deposit), (funnel or {}).get("margin_level_min"))


def run_details(engine: Engine, run_id: str) -> dict[str, Any]:
    """Everything ``runs show`` prints: run row, funnel, strategies, data health, row counts, metrics."""
    run_id = resolve_run(engine, run_id)
    r, s, h = db.runs, db.run_strategies, db.data_health
    with engine.connect() as conn:
        run = dict(conn.execute(select(r).where(r.c.run_id == run_id)).mappings().one())
        strategies = [
            dict(m) for m in conn.execute(select(s).where(s.c.run_id == run_id).order_by(s.c.name)).mappings()
        ]
        health = [
            dict(m)
            for m in conn.execute(
                select(h).where(h.c.run_id == run_id).order_by(h.c.symbol, h.c.timeframe)
            ).mappings()
        ]
    for row in [*strategies, *health]:
        row.pop("run_id", None)
    funnel = run.pop("funnel")
    return {
        "run": run,
        "funnel": funnel,
        "strategies": strategies,
        "data_health": health,
        "rows": row_counts(engine, run_id),
        "schema_revision": db.schema_revision(engine),
        "metrics": metrics_of(engine, run_id).to_dict(),
    }


def compare_runs(engine: Engine, run_ids_: list[str]) -> dict[str, Mt5Metrics]:
    """Metrics of each run, keyed by full run id, in the order given."""
    full = [resolve_run(engine, r) for r in run_ids_]
    return {r: metrics_of(engine, r) for r in full}


# --- export -------------------------------------------------------------------------------------------------
def deals_report(engine: Engine, run_id: str) -> pd.DataFrame:
    """A run's deals in the MT5 tester report layout (MT5_DEAL_HEADER), ticket order.

    Type and Direction are the report's words (buy/sell/balance, in/out/in/out/out by; blank for balance
    operations). Time is UTC (MT5 prints server time; UTC keeps the metrics' day boundaries identical to
    the ones computed from the database).
    """
    d = db.deals
    with engine.connect() as conn:
        rows = conn.execute(select(d).where(d.c.run_id == run_id).order_by(d.c.ticket)).mappings().all()
    trading = (DEAL_BUY, DEAL_SELL)
    return pd.DataFrame(
        {
            "Time": pd.to_datetime(pd.Series([r["time"] for r in rows], dtype="int64"), unit="ns", utc=True),
            "Deal": pd.Series([r["ticket"] for r in rows], dtype="int64"),
            "Symbol": [r["symbol"] for r in rows],
            "Type": [TYPE_WORDS.get(r["type"], str(r["type"])) for r in rows],
            "Direction": [ENTRY_WORDS.get(r["entry"], "") if r["type"] in trading else "" for r in rows],
            "Volume": pd.Series([r["volume"] for r in rows], dtype=float),
            "Price": pd.Series([r["price"] for r in rows], dtype=float),
            "Order": pd.Series([r["order"] for r in rows], dtype="int64"),
            "Commission": pd.Series([r["commission"] for r in rows], dtype=float),
            "Swap": pd.Series([r["swap"] for r in rows], dtype=float),
            "Profit": pd.Series([r["profit"] for r in rows], dtype=float),
            "Balance": pd.Series([r["balance"] for r in rows], dtype=float),
            "Comment": [r["comment"] for r in rows],
            "Position": pd.Series([r["position_id"] for r in rows], dtype="int64"),
            "Strategy": [r["strategy"] for r in rows],
        },
        columns=MT5_DEAL_HEADER,
    )


def _table_frame(engine: Engine, name: str, run_id: str, order: list[str]) -> pd.DataFrame:
    """All columns of one table for one run (run_id dropped); ns times as UTC timestamps, JSON as text."""
    t = db.metadata.tables[name]
    cols = [c for c in t.columns if c.name != "run_id"]
    with engine.connect() as conn:
        rows = conn.execute(
            select(*cols).where(t.c.run_id == run_id).order_by(*(t.c[o] for o in order))
        ).all()
    df = pd.DataFrame([tuple(r) for r in rows], columns=[c.name for c in cols])
    for c in cols:
        if c.name in TIME_COLUMNS:  # nullable ones (a position still open) stay empty
            df[c.name] = pd.to_datetime(df[c.name].astype("Int64"), unit="ns", utc=True)
        elif c.type.__class__.__name__ == "JSON":
            df[c.name] = [json.dumps(v, sort_keys=True) if v is not None else None for v in df[c.name]]
    return df


def _write_csv_mt5_deals(df: pd.DataFrame, path: Path) -> None:
    """Deals CSV as MT5's report prints it: 'YYYY.MM.DD HH:MM:SS', money with 2 decimals, prices and
    volumes exactly (shortest repr that reads back to the same float)."""
    out = df.copy()
    out["Time"] = out["Time"].dt.strftime(MT5_TIME_FORMAT)
    for c in ("Commission", "Swap", "Profit", "Balance"):
        out[c] = [f"{v:.2f}" for v in out[c]]
    for c in ("Volume", "Price"):
        out[c] = [repr(float(v)) for v in out[c]]
    out.to_csv(path, index=False)


def export_run(engine: Engine, run_id: str, out_dir: Path, fmt: str = "csv") -> dict[str, Any]:
    """Write a run's deals (MT5 report layout), equity, signals and strategy errors to ``out_dir``
    (``<table>.csv`` or ``.parquet``) plus ``run.json`` (run row, strategies, data health).

    ``mt5tester metrics out_dir/deals.csv`` reads the CSV back and gives the run's metrics (its equity
    drawdowns then come from the balance curve: equity samples are in equity.csv).
    """
    if fmt not in EXPORT_FORMATS:
        raise StorageError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    run_id = resolve_run(engine, run_id)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(f"cannot create the export folder {out_dir}: {e}") from None
    if fmt == "quantstats":
        return _export_returns(engine, run_id, out_dir)
    frames = {
        "deals": deals_report(engine, run_id),
        "positions": _table_frame(engine, "positions", run_id, ["position_id"]),  # trades with MFE/MAE
        "orders": _table_frame(engine, "orders", run_id, ["ticket"]),
        "equity": _table_frame(engine, "equity", run_id, ["time"]),
        "signals": _table_frame(engine, "signals", run_id, ["signal_id"]),
        "strategy_errors": _table_frame(engine, "strategy_errors", run_id, ["seq"]),
    }
    files: dict[str, str] = {}
    rows: dict[str, int] = {}
    try:
        for name, df in frames.items():
            path = out_dir / f"{name}.{fmt}"
            if fmt == "parquet":
                df.to_parquet(path, index=False)
            elif name == "deals":
                _write_csv_mt5_deals(df, path)
            else:
                df.to_csv(path, index=False)
            files[name] = str(path)
            rows[name] = len(df)
        details = run_details(engine, run_id)
        details.pop("metrics")
        meta = out_dir / "run.json"
        meta.write_text(json.dumps(details, indent=2, default=str) + "\n")
        files["run"] = str(meta)
    except OSError as e:
        raise StorageError(f"cannot write the export of run {run_id} to {out_dir}: {e}") from None
    return {"run_id": run_id, "format": fmt, "out": str(out_dir), "files": files, "rows": rows}


def daily_returns(engine: Engine, run_id: str) -> pd.DataFrame:
    """date (server day), return: each day's closing equity over the previous one (the first day over the
    deposit), the series quant tearsheet tools take (quantstats ``qs.reports.html(returns)``). From the
    run's per-day equity rows; a run recorded without them uses its equity samples per UTC day."""
    with engine.connect() as conn:
        deposit = conn.execute(select(db.runs.c.deposit).where(db.runs.c.run_id == run_id)).scalar_one()
        t = db.daily_equity
        rows: list[tuple[Any, Any]] = [
            tuple(r)
            for r in conn.execute(select(t.c.day, t.c.equity).where(t.c.run_id == run_id).order_by(t.c.day))
        ]
        if not rows:
            e = db.equity
            samples = conn.execute(
                select(e.c.time, e.c.equity).where(e.c.run_id == run_id).order_by(e.c.time)
            ).all()
            if samples:
                f = pd.DataFrame(samples, columns=["time", "equity"])
                day = pd.to_datetime(f["time"].astype("int64"), unit="ns", utc=True).dt.strftime("%Y-%m-%d")
                last = f.groupby(day, sort=True)["equity"].last()
                rows = list(zip(last.index, last.to_numpy(), strict=True))
    days = [str(r[0]) for r in rows]
    equity = pd.Series([float(r[1]) for r in rows], dtype=float)
    previous = pd.concat([pd.Series([float(deposit)]), equity.iloc[:-1]], ignore_index=True)
    ret = (equity / previous - 1.0).where(previous > 0)
    return pd.DataFrame({"date": days, "return": ret.round(12).to_numpy()})


def _export_returns(engine: Engine, run_id: str, out_dir: Path) -> dict[str, Any]:
    path = out_dir / "returns.csv"
    returns = daily_returns(engine, run_id)
    try:
        returns.to_csv(path, index=False)
    except OSError as e:
        raise StorageError(f"cannot write the export of run {run_id} to {out_dir}: {e}") from None
    return {
        "run_id": run_id,
        "format": "quantstats",
        "out": str(out_dir),
        "files": {"returns": str(path)},
        "rows": {"returns": len(returns)},
    }


# --- delete -------------------------------------------------------------------------------------------------
def delete_run(engine: Engine, run_id: str) -> dict[str, int]:
    """Delete a run and its rows in every table, in one transaction (children first, so it does not
    depend on ON DELETE CASCADE being enforced). Returns the rows deleted per table."""
    run_id = resolve_run(engine, run_id)
    deleted: dict[str, int] = {}
    with engine.begin() as conn:
        for t in reversed(db.metadata.sorted_tables):
            deleted[t.name] = int(conn.execute(delete(t).where(t.c.run_id == run_id)).rowcount or 0)
    return deleted
