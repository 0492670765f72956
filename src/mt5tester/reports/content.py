"""Everything a report shows, read from the results database only (no market data, no engine objects).

The HTML and the PDF report render the same ``RunReport``: raw frames for the charts and ``Table`` values
(columns with a kind, raw cell values) for the tables, formatted by ``fmt`` in both.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, MetaData, Select, Text, create_engine, inspect, make_url, select, type_coerce
from sqlalchemy import Table as SaTable
from sqlalchemy.exc import SQLAlchemyError

from mt5tester.config import DEFAULT_DATABASE_URL
from mt5tester.errors import StorageError
from mt5tester.results import db
from mt5tester.results.metrics import (
    CLOSING_ENTRIES,
    DEAL_BUY,
    DEAL_SELL,
    ENTRY_IN,
    EPS,
    Mt5Metrics,
    compute_metrics,
    mt5_layout,
)

DEFAULT_DB_URL = DEFAULT_DATABASE_URL  # the one default of every command
DEAL_TYPES = {0: "buy", 1: "sell", 2: "balance"}
DEAL_ENTRIES = {0: "in", 1: "out", 2: "in/out", 3: "out by"}
DEAL_REASONS = {0: "client", 1: "mobile", 2: "web", 3: "expert", 4: "sl", 5: "tp", 6: "so", 7: "rollover"}
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
EXCURSIONS_TABLE = "positions"  # one row per position with its MFE/MAE (results.rows, schema 0003)


# --- tables: typed columns, raw values, one formatter for HTML and PDF -------------------------------------
@dataclass(frozen=True)
class Col:
    name: str
    kind: str = "text"  # text, int, money, price, pct, ratio, dur, time, json


@dataclass
class Table:
    title: str
    columns: list[Col]
    rows: list[list[Any]]
    note: str = ""
    total: list[Any] | None = None  # a totals row shown under the rows
    more: int = 0  # rows left out (shown as "… N more")

    def head(self, n: int) -> Table:
        """The first ``n`` rows; the rest counted in ``more`` (totals stay totals of everything)."""
        if len(self.rows) <= n:
            return self
        return Table(
            self.title, self.columns, self.rows[:n], self.note, self.total, self.more + len(self.rows) - n
        )


def _missing(v: Any) -> bool:
    # NaT: the close time of a position still open when the run ended
    return v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def fmt(kind: str, v: Any) -> str:
    """The text of one cell. Missing values print as '-' (as the MT5 report does)."""
    if _missing(v):
        return "-"
    if isinstance(v, str) and kind != "time":
        return v  # labels in numeric columns (totals rows)
    if kind == "money":
        return f"{float(v):.2f}"
    if kind == "ratio":
        return f"{float(v):.2f}"
    if kind == "pct":
        return f"{float(v):.2f}%"
    if kind == "price":
        return f"{float(v):.10g}"
    if kind == "int":
        return str(int(v))
    if kind == "num":
        return f"{v:.1f}" if isinstance(v, float) and not float(v).is_integer() else str(int(v))
    if kind == "dur":
        return str(timedelta(seconds=round(float(v))))
    if kind == "time":
        try:
            return pd.Timestamp(v).strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:
            return str(v)  # a label in a time column (totals rows)
    if kind == "json":
        return json.dumps(v, sort_keys=True, default=str) if isinstance(v, dict | list) else str(v)
    return str(v)


def sort_value(kind: str, v: Any) -> float | None:
    """A number to sort a cell by (None: sort by text)."""
    if _missing(v) or isinstance(v, str):
        return None
    if kind in ("money", "ratio", "pct", "price", "int", "num", "dur"):
        return float(v)
    if kind == "time":
        return float(pd.Timestamp(v).value)
    return None


# --- the database ---------------------------------------------------------------------------------------
def open_results_db(url: str | None = None) -> Engine:
    """Open an existing results database for reading. StorageError when it is missing or unreachable.

    Unlike ``db.connect`` nothing is created: a report on a mistyped path must fail, not make an empty DB.
    """
    url = url or os.environ.get("MT5TESTER_DB_URL") or DEFAULT_DB_URL
    try:
        parsed = make_url(url)
    except Exception as e:
        raise StorageError(f"not a valid SQLAlchemy URL: {db.redact(url)}: {e}") from None
    local = parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")
    if local and not Path(str(parsed.database)).is_file():
        raise StorageError(f"no results database at {parsed.database}; pass --db URL or set MT5TESTER_DB_URL")
    try:
        engine = create_engine(url, future=True)
        with engine.connect() as conn:
            conn.execute(select(db.runs.c.run_id).limit(1)).all()
    except SQLAlchemyError as e:
        raise StorageError(
            f"results database {db.redact(url)} is not readable: {e.__class__.__name__}: "
            f"{str(getattr(e, 'orig', e)).strip()}"
        ) from None
    return engine


SIGNAL_COLUMNS = (
    "signal_id",
    "time",
    "strategy",
    "symbol",
    "status",
    "rule",
    "reason",
    "retcode",
    "trading_mode",
)


def _read_signals(engine: Engine, run_id: str) -> pd.DataFrame:
    """The signals columns the reports show, with ``regime``: the signal's ``tags["regime"]``. The tags
    come as JSON text and only those naming a regime are decoded (a 30k-signal run decodes none or few)."""
    t = db.signals
    cols = [t.c[c] for c in SIGNAL_COLUMNS] + [type_coerce(t.c.tags, Text).label("tags")]
    f = _fetch(engine, select(*cols).where(t.c.run_id == run_id).order_by(t.c.signal_id))
    if f.empty:
        return pd.DataFrame(columns=[*SIGNAL_COLUMNS, "regime"])
    text = f.pop("tags").astype(str)
    named = text.str.contains('"regime"', regex=False)
    regime = pd.Series([None] * len(f), index=f.index, dtype=object)
    if named.any():
        decoded = text[named].map(json.loads)
        value = decoded.map(lambda d: d.get("regime") if isinstance(d, dict) else None)
        regime[named] = value.map(lambda v: None if _missing(v) or v == "" else str(v))
    f["regime"] = regime
    return f


def _read(
    engine: Engine, table: SaTable, run_id: str, order: Any = None, columns: tuple[str, ...] = ()
) -> pd.DataFrame:
    """One run's rows of ``table`` (all columns, or ``columns``), built column-wise (fast for 100k rows)."""
    cols = [table.c[c] for c in columns] if columns else list(table.c)
    q = select(*cols).where(table.c.run_id == run_id)
    if order is not None:
        q = q.order_by(order)
    return _fetch(engine, q)


def _fetch(engine: Engine, q: Select[Any]) -> pd.DataFrame:
    """The rows of ``q`` as a frame, built column-wise. When no selected column's type converts what the
    driver returns (numbers, text: the deals, orders and equity tables), the driver's tuples are taken as
    they are, without a SQLAlchemy row object per row (half the time of a 30k-row table)."""
    plain = all(c.type.result_processor(engine.dialect, None) is None for c in q.selected_columns)
    with engine.connect() as conn:
        res = conn.execute(q)
        names = list(res.keys())
        rows = res.cursor.fetchall() if plain and res.cursor is not None else res.all()
        res.close()
    if not rows:
        return pd.DataFrame(columns=names)
    return pd.DataFrame(dict(zip(names, (list(c) for c in zip(*rows, strict=True)), strict=True)))


def _utc(ns: pd.Series) -> pd.Series:
    return pd.to_datetime(ns.astype("int64"), unit="ns", utc=True)


@dataclass
class RunReport:
    """One run as the reports show it: read once, derived once, shared by the HTML and the PDF."""

    run_id: str
    run: dict[str, Any]
    strategies: pd.DataFrame
    deals: pd.DataFrame  # the deals table, time as UTC datetimes
    equity: pd.DataFrame  # time, balance, equity, margin, open_positions
    signals: pd.DataFrame
    errors: pd.DataFrame
    health: pd.DataFrame
    metrics: Mt5Metrics
    trades: pd.DataFrame  # one row per position (see build_trades), with mfe/mae when recorded
    excursions: pd.DataFrame | None  # per-trade MFE/MAE when the positions table has them
    mt5_deals: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)  # MT5 layout + strategy
    orders: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)  # the orders table, UTC times
    _cache: dict[str, Any] = field(repr=False, default_factory=dict, compare=False)

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        """``make()`` once per report: what the HTML and the PDF of one run both need (the candles read
        from the M1 files) is computed for the first and reused by the second."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def funnel(self) -> dict[str, Any]:
        return dict(self.run.get("funnel") or {})

    @property
    def deposit(self) -> float:
        return float(self.run["deposit"])

    @property
    def currency(self) -> str:
        return str(self.run["currency"])

    @property
    def server_timezone(self) -> str:
        """The broker clock of the run (backtest.server_timezone): hours and weekdays are counted on it."""
        cfg = self.run.get("config") or {}
        bt = cfg.get("backtest", {}) if isinstance(cfg, dict) else {}
        return str(bt.get("server_timezone") or "UTC")


Phase = Callable[[str], None]


def _quiet(_phase: str) -> None:
    pass


def load_run(engine: Engine, run_id: str, on_phase: Phase = _quiet) -> RunReport:
    """Read one run (each table once) and derive what the reports show. StorageError for an unknown run."""
    on_phase("reading the run")
    try:
        with engine.connect() as conn:
            row = conn.execute(select(db.runs).where(db.runs.c.run_id == run_id)).mappings().first()
        if row is None:
            raise StorageError(f"no run {run_id!r} in the results database")
        run = dict(row)
        deals = _read(engine, db.deals, run_id, db.deals.c.ticket)
        equity = _read(engine, db.equity, run_id, db.equity.c.time)
        signals = _read_signals(engine, run_id)
        errors = _read(engine, db.strategy_errors, run_id, db.strategy_errors.c.seq)
        health = _read(engine, db.data_health, run_id)
        strategies = _read(engine, db.run_strategies, run_id)
        orders = _read(engine, db.orders, run_id, db.orders.c.ticket)
        excursions = _read_excursions(engine, run_id)
    except SQLAlchemyError as e:
        raise StorageError(f"cannot read run {run_id}: {e.__class__.__name__}: {e}") from None
    for frame in (deals, equity, signals, errors):
        if len(frame):
            frame["time"] = _utc(frame["time"])
    for col in ("time_setup", "time_done"):
        if len(orders):
            orders[col] = pd.to_datetime(orders[col].astype("Int64"), unit="ns", utc=True)
    on_phase("computing metrics and trades")
    funnel = run.get("funnel") or {}
    mt5_deals = mt5_layout(deals)
    metrics = compute_metrics(
        mt5_deals, float(run["deposit"]), equity[["time", "equity"]], funnel.get("margin_level_min")
    )
    mt5_deals["strategy"] = deals["strategy"].astype(str).to_numpy() if len(deals) else []
    trades = build_trades(deals, signals)
    if excursions is not None and len(trades):
        trades = trades.merge(excursions, on="position_id", how="left")
    else:
        trades = trades.assign(mfe=np.nan, mae=np.nan)
    mt5_deals["regime"] = (
        mt5_deals["position_id"].map(dict(zip(trades["position_id"], trades["regime"], strict=True)))
        if len(mt5_deals)
        else []
    )
    return RunReport(
        run_id,
        run,
        strategies,
        deals,
        equity,
        signals,
        errors,
        health,
        metrics,
        trades,
        excursions,
        mt5_deals,
        orders,
    )


def _read_excursions(engine: Engine, run_id: str) -> pd.DataFrame | None:
    """MFE/MAE per position from the ``positions`` table (position_id, mfe, mae), when recorded."""
    if not inspect(engine).has_table(EXCURSIONS_TABLE):
        return None
    table = SaTable(EXCURSIONS_TABLE, MetaData(), autoload_with=engine)
    if not {"run_id", "position_id", "mfe", "mae"} <= set(table.c.keys()):
        return None
    q = select(table.c.position_id, table.c.mfe, table.c.mae).where(
        table.c.run_id == run_id, table.c.mfe.is_not(None)
    )
    out = _fetch(engine, q)
    if out.empty:
        return None
    return out.astype({"position_id": "int64", "mfe": float, "mae": float})


# --- derived frames ---------------------------------------------------------------------------------------
TRADE_COLUMNS = [
    "position_id",
    "strategy",
    "symbol",
    "direction",
    "volume",
    "open_time",
    "open_price",
    "close_time",
    "close_price",
    "close_reason",
    "holding_s",
    "commission",
    "swap",
    "profit",
    "net",
    "regime",
    "comment",
]

# the printed trades table's columns (TRADE_COLUMNS as shown); the report's trades grid adds result, MFE, MAE
TRADE_TABLE_COLUMNS = [
    Col("position", "int"),
    Col("strategy"),
    Col("symbol"),
    Col("direction"),
    Col("volume", "price"),
    Col("open time", "time"),
    Col("open price", "price"),
    Col("close time", "time"),
    Col("close price", "price"),
    Col("closed by"),
    Col("holding", "dur"),
    Col("commission", "money"),
    Col("swap", "money"),
    Col("profit", "money"),
    Col("net", "money"),
    Col("regime"),
    Col("comment"),
]


def _signal_regime(signals: pd.DataFrame) -> pd.Series:
    """signal_id -> regime: a ``regime`` column when the table has one, else ``tags["regime"]``."""
    if signals.empty:
        return pd.Series([], dtype=object)
    if "regime" in signals.columns:
        value = signals["regime"]
    else:
        value = signals["tags"].map(lambda t: t.get("regime") if isinstance(t, dict) else None)
    value = value.where(value.notna() & (value.astype(str) != ""))
    out = pd.Series(value.to_numpy(), index=signals["signal_id"].astype("int64").to_numpy())
    return out.dropna().astype(str)


def _naive_utc(times: pd.Series) -> np.ndarray:
    """datetime64[ns] UTC values (NaT kept), not an object array of Timestamps (30k of them cost 0.2 s)."""
    return pd.DatetimeIndex(pd.to_datetime(times, utc=True)).tz_localize(None).to_numpy()


def build_trades(deals: pd.DataFrame, signals: pd.DataFrame) -> pd.DataFrame:
    """One row per position: entry (first IN deal), exit (closing deals, volume-weighted price), net result.

    ``net`` is profit + swap + commission of **all** the position's deals (entry commission included), so
    the trades' nets add up to Total Net Profit. ``holding_s`` is open → last closing deal, None while open.
    A reversal (in/out) ends the row of the position it reverses. Rows in the order positions opened.
    One grouped pass over the deals (no Python step per position): a 15k-trade run takes milliseconds.
    """
    if deals.empty:
        return pd.DataFrame(columns=TRADE_COLUMNS)
    d = deals[deals["type"].isin([DEAL_BUY, DEAL_SELL])].reset_index(drop=True)
    if d.empty:
        return pd.DataFrame(columns=TRADE_COLUMNS)
    pid = d["position_id"].astype("int64")
    vol = d["volume"].astype(float)
    price = d["price"].astype(float)
    is_in = (d["entry"] == ENTRY_IN).to_numpy()
    is_out = d["entry"].isin(CLOSING_ENTRIES).to_numpy()
    parts = pd.DataFrame(
        {
            "pid": pid,
            "in_v": vol.where(is_in, 0.0),
            "in_pv": (price * vol).where(is_in, 0.0),
            "out_v": vol.where(is_out, 0.0),
            "out_pv": (price * vol).where(is_out, 0.0),
            "n_in": is_in.astype(int),
            "n_out": is_out.astype(int),
            "commission": d["commission"].astype(float),
            "swap": d["swap"].astype(float),
            "profit": d["profit"].astype(float),
        }
    )
    sums = parts.groupby("pid", sort=False).sum()
    order = pd.Index(pid.unique())  # first appearance = opening order
    sums = sums.reindex(order)
    # the opening deal: the first IN of the position, else its first deal of any kind
    first_any = d.groupby(pid, sort=False).head(1).set_index(pid[d.groupby(pid, sort=False).cumcount() == 0])
    first_in = d[is_in].groupby(pid[is_in], sort=False).head(1)
    first_in = first_in.set_index(pid[first_in.index])
    first = first_in.reindex(order).combine_first(first_any.reindex(order))
    last_out = d[is_out].groupby(pid[is_out], sort=False).tail(1)
    last_out = last_out.set_index(pid[last_out.index]).reindex(order)
    closed = sums["n_out"].to_numpy() > 0
    in_v, out_v = sums["in_v"].to_numpy(), sums["out_v"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        open_price = np.where(in_v > 0, sums["in_pv"].to_numpy() / in_v, first["price"].to_numpy(float))
        close_price = np.where(closed & (out_v > 0), sums["out_pv"].to_numpy() / out_v, np.nan)
    open_time = first["time"]
    close_time = last_out["time"]
    reason = last_out["reason"]
    regimes = _signal_regime(signals)
    sid = pd.to_numeric(first["signal_id"], errors="coerce")
    out = pd.DataFrame(
        {
            "position_id": order.to_numpy(dtype="int64"),
            "strategy": first["strategy"].astype(str).to_numpy(),
            "symbol": first["symbol"].astype(str).to_numpy(),
            "direction": np.where(first["type"].to_numpy() == DEAL_BUY, "buy", "sell"),
            "volume": np.where(sums["n_in"].to_numpy() > 0, in_v, first["volume"].to_numpy(float)),
            "open_time": _naive_utc(open_time),
            "open_price": open_price,
            "close_time": _naive_utc(close_time),
            "close_price": close_price,
            "close_reason": np.where(
                closed,
                reason.map(
                    lambda r: "open" if _missing(r) else DEAL_REASONS.get(int(r), str(int(r)))
                ).to_numpy(),
                "open",
            ),
            "holding_s": ((close_time - open_time).dt.total_seconds()).to_numpy(),
            "commission": sums["commission"].to_numpy(),
            "swap": sums["swap"].to_numpy(),
            "profit": sums["profit"].to_numpy(),
            "net": (sums["profit"] + sums["swap"] + sums["commission"]).to_numpy(),
            "regime": sid.map(regimes).astype(object).where(sid.map(regimes).notna(), None).to_numpy(),
            "comment": first["comment"].astype(str).to_numpy(),
        }
    )
    out["open_time"] = pd.to_datetime(out["open_time"], utc=True)
    out["close_time"] = pd.to_datetime(out["close_time"], utc=True)
    return out[TRADE_COLUMNS]


def curve(rep: RunReport) -> pd.DataFrame:
    """time, balance, equity: the equity samples, else the balance after each deal (equity = balance)."""
    if len(rep.equity):
        return rep.equity[["time", "balance", "equity"]].reset_index(drop=True)
    if len(rep.deals):
        d = rep.deals
        return pd.DataFrame({"time": d["time"], "balance": d["balance"], "equity": d["balance"]})
    return pd.DataFrame({"time": pd.Series([], dtype="datetime64[ns, UTC]"), "balance": [], "equity": []})


def drawdown_pct(values: pd.Series, start: float) -> np.ndarray:
    """Fall from the running peak in % of that peak (≤ 0), the deposit being the first peak."""
    v = values.to_numpy(dtype=float)
    if len(v) == 0:
        return v
    peak = np.maximum.accumulate(np.concatenate(([start], v)))[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peak > 0, (v / peak - 1.0) * 100.0, 0.0)


def monthly_returns(rep: RunReport) -> pd.DataFrame:
    """year, month (1-12), return %: month-end equity over the previous month-end (the deposit first)."""
    c = curve(rep)
    if c.empty:
        return pd.DataFrame(columns=["year", "month", "pct"])
    t = c["time"].dt.tz_convert("UTC").dt.tz_localize(None)
    last = c.groupby(t.dt.to_period("M"))["equity"].last()
    prev = np.concatenate(([rep.deposit], last.to_numpy()[:-1]))
    pct = np.where(prev > 0, (last.to_numpy() / prev - 1.0) * 100.0, np.nan)
    return pd.DataFrame(
        {"year": [p.year for p in last.index], "month": [p.month for p in last.index], "pct": pct}
    )


def downsample(
    times: pd.Series, values: list[np.ndarray], max_points: int = 4000
) -> tuple[pd.Series, list[np.ndarray]]:
    """At most ~max_points points for plotting; each bucket keeps its first, last, min and max samples
    (of the first series) so drawdown troughs and peaks survive."""
    n = len(times)
    if n <= max_points:
        return times, values
    edges = np.linspace(0, n, max_points // 4 + 1).astype(int)
    keep: set[int] = set()
    base = values[0]
    for a, b in itertools.pairwise(edges):
        if b <= a:
            continue
        seg = base[a:b]
        keep.update((a, b - 1, a + int(np.argmin(seg)), a + int(np.argmax(seg))))
    idx = np.array(sorted(keep))
    return times.iloc[idx].reset_index(drop=True), [v[idx] for v in values]


# --- tables ------------------------------------------------------------------------------------------------
def summary_rows(rep: RunReport) -> list[tuple[str, str]]:
    m = rep.metrics
    cfg = rep.run.get("config") or {}
    bt = cfg.get("backtest", {}) if isinstance(cfg, dict) else {}
    return [
        ("run", rep.run_id),
        ("status", str(rep.run["status"])),
        ("period", f"{bt.get('start', '?')} .. {bt.get('end', '?')}"),
        ("symbols", ", ".join(str(s) for s in bt.get("symbols", []))),
        ("tester mode", str(bt.get("tester_mode", "-"))),
        ("strategies", ", ".join(rep.strategies["name"].astype(str)) if len(rep.strategies) else "-"),
        ("deposit", f"{rep.deposit:.2f} {rep.currency}"),
        ("net profit", f"{m.total_net_profit:.2f} {rep.currency}"),
        ("final balance", f"{m.final_balance:.2f} {rep.currency}"),
        ("trades / deals", f"{m.total_trades} / {m.total_deals}"),
        ("config hash", str(rep.run["config_hash"])),
        ("package version", str(rep.run["package_version"])),
        ("seed", str(rep.run["seed"])),
        ("started", str(rep.run["started_at"])),
        ("finished", str(rep.run["finished_at"] or "-")),
        *([("error", str(rep.run["error"]))] if rep.run.get("error") else []),
    ]


def metrics_rows(m: Mt5Metrics) -> list[tuple[str, str]]:
    """The MT5 report's Results block: order and number formats of the tester report (spec 6.6)."""
    from mt5tester.results.metrics_text import report_rows

    return report_rows(m)


def _group_rows(trading: pd.DataFrame, keys: pd.Series) -> dict[str, list[Any]]:
    """Per key: trades, net, gross profit, gross loss, PF, win %, expected payoff, long, short, with the MT5
    definitions of ``compute_metrics`` (spec 6.6 confirmed 1-5) in one grouped pass: a trade is a closing
    deal, its result that deal's profit + swap + commission, 0.00 a win; gross profit / loss sum the net of
    every trading deal, entries included; a closing sell ends a long."""
    net = (
        trading["profit"].astype(float) + trading["swap"].astype(float) + trading["commission"].astype(float)
    )
    closing = trading["direction"].isin(CLOSING_ENTRIES)
    f = pd.DataFrame(
        {
            "key": keys.to_numpy(),
            "trades": closing.astype(int).to_numpy(),
            "gp": net.where(net > 0, 0.0).to_numpy(),
            "gl": net.where(net < 0, 0.0).to_numpy(),
            "wins": (closing & (net >= -EPS)).astype(int).to_numpy(),
            "long": (closing & (trading["type"] == DEAL_SELL)).astype(int).to_numpy(),
        }
    )
    g = f.groupby("key", sort=True).sum()
    out: dict[str, list[Any]] = {}
    columns = (g[c].tolist() for c in ("trades", "gp", "gl", "wins", "long"))
    for name, n, gp, gl, wins, longs in zip(g.index, *columns, strict=True):
        total = float(gp) + float(gl)
        out[str(name)] = [
            int(n),
            total,
            float(gp),
            float(gl),
            float(gp) / -float(gl) if gl < -EPS else None,
            int(wins) / int(n) * 100.0 if n else None,
            total / int(n) if n else None,
            int(longs),
            int(n) - int(longs),
        ]
    return out


BREAKDOWN_COLS = [
    Col("trades", "int"),
    Col("net profit", "money"),
    Col("gross profit", "money"),
    Col("gross loss", "money"),
    Col("profit factor", "ratio"),
    Col("win %", "pct"),
    Col("expected payoff", "money"),
    Col("long", "int"),
    Col("short", "int"),
]


def breakdown(rep: RunReport, key: str, title: str) -> Table:
    """Per ``key`` (symbol, strategy or regime) of the trading deals, MT5 metric definitions per group."""
    d = rep.mt5_deals
    trading = d[d["type"].isin([DEAL_BUY, DEAL_SELL])] if len(d) else d
    rows: list[list[Any]] = []
    total = None
    if len(trading):
        groups = _group_rows(trading, trading[key].fillna("(none)").astype(str))
        rows = [[name, *values] for name, values in groups.items()]
        total = ["all", *_group_rows(trading, pd.Series("all", index=trading.index))["all"]]
    return Table(title, [Col(key), *BREAKDOWN_COLS], rows, total=total)


def regime_breakdown(rep: RunReport) -> Table:
    if rep.trades.empty or rep.trades["regime"].isna().all():
        return Table(
            "Per regime",
            [Col("regime"), *BREAKDOWN_COLS],
            [],
            note="no regime data: no signal of this run carries a regime (tags['regime'])",
        )
    return breakdown(rep, "regime", "Per regime")


def trades_table(rep: RunReport) -> Table:
    t = rep.trades
    cols = list(TRADE_TABLE_COLUMNS)
    rows = [list(r) for r in t[TRADE_COLUMNS].itertuples(index=False)] if len(t) else []
    total = None
    if len(t):
        total = ["total", f"{len(t)} trades", "", "", t["volume"].sum(), None, None, None, None, "", None]
        total += [t["commission"].sum(), t["swap"].sum(), t["profit"].sum(), t["net"].sum(), "", ""]
    note = "net = profit + swap + commission of all the position's deals (entry commission included)"
    return Table("Trades", cols, rows, note=note, total=total)


def funnel_table(rep: RunReport) -> Table:
    """The run's lifecycle funnel as the CLI prints it (runs.funnel)."""
    f = rep.funnel
    rows: list[list[Any]] = []

    def add(label: str, v: Any) -> None:
        rows.append([label, v])

    if not f:
        return Table("Lifecycle funnel", [Col("stage"), Col("count", "num")], [], note="no funnel recorded")
    add("decision points (bar closes)", f.get("decision_points"))
    add("strategy calls", f.get("strategy_calls"))
    add("signals generated", f.get("signals_generated"))
    add("invalid signals", f.get("invalid_signals"))
    for name, reasons in (f.get("invalid_by_strategy") or {}).items():
        for reason, n in reasons.items():
            add(f"  invalid: {name}: {reason}", n)
    add("fed to fusion (trade: false)", f.get("fed_to_fusion"))
    add("approved", f.get("approved"))
    for reason, n in (f.get("rejected") or {}).items():
        add(f"rejected: {reason}", n)
    add("executed", f.get("executed"))
    for reason, n in (f.get("order_failed") or {}).items():
        add(f"order failed: {reason}", n)
    for how, n in (f.get("closed") or {}).items():
        add(f"closed by {str(how).replace('_', ' ')}", n)
    add("ambiguous M1 bars (SL and TP inside one bar)", f.get("ambiguous_bars"))
    add("stop-outs", f.get("stop_outs"))
    for name, n in (f.get("strategy_errors") or {}).items():
        add(f"strategy errors: {name}", n)
    for name in f.get("disabled_strategies") or []:
        add(f"disabled: {name}", None)
    rows = [[label, v] for label, v in rows if v is not None or label.startswith("disabled")]
    rows += [[f"mean µs per call: {name}", float(us)] for name, us in (f.get("mean_call_us") or {}).items()]
    return Table("Lifecycle funnel (recorded by the run)", [Col("stage"), Col("count", "num")], rows)


def funnel_stages(rep: RunReport) -> list[tuple[str, int]]:
    """generated → approved → executed → closed, for the funnel chart."""
    f = rep.funnel
    if not f:
        return []
    closed = sum(int(v) for v in (f.get("closed") or {}).values())
    return [
        ("signals generated", int(f.get("signals_generated") or 0)),
        ("approved", int(f.get("approved") or 0)),
        ("executed", int(f.get("executed") or 0)),
        ("closed", closed),
    ]


def signal_status_table(rep: RunReport) -> Table:
    """Counted from the signals rows: status, reason, order retcode."""
    s = rep.signals
    cols = [Col("status"), Col("reason"), Col("retcode"), Col("signals", "int")]
    if s.empty:
        return Table("Signals by status (signals table)", cols, [], note="no signals recorded")
    g = (
        s.assign(
            reason=s["reason"].fillna("-").astype(str),
            retcode=s["retcode"].map(lambda v: "-" if _missing(v) else str(int(v))),
        )
        .groupby(["status", "reason", "retcode"], dropna=False)
        .size()
        .reset_index(name="n")
    )
    rows = [[r.status, r.reason, r.retcode, r.n] for r in g.itertuples(index=False)]
    return Table("Signals by status (signals table)", cols, rows, total=["all", "", "", len(s)])


def rejections_table(rep: RunReport) -> Table:
    s = rep.signals
    cols = [Col("strategy"), Col("rule"), Col("reason"), Col("signals", "int")]
    rej = s[s["status"] != "approved"] if len(s) else s
    if rej.empty:
        return Table("Rejection reasons", cols, [], note="no signal was rejected")
    g = (
        rej.assign(rule=rej["rule"].fillna("-").astype(str), reason=rej["reason"].fillna("-").astype(str))
        .groupby(["strategy", "rule", "reason"])
        .size()
        .reset_index(name="n")
        .sort_values("n", ascending=False, kind="stable")
    )
    rows = [[r.strategy, r.rule, r.reason, r.n] for r in g.itertuples(index=False)]
    return Table("Rejection reasons", cols, rows, total=["all", "", "", len(rej)])


def health_table(rep: RunReport) -> Table:
    cols = [Col("symbol"), Col("timeframe"), Col("bars", "int"), Col("score", "ratio"), Col("findings")]
    rows: list[list[Any]] = []
    for r in (
        rep.health.sort_values(["symbol", "timeframe"]).itertuples(index=False) if len(rep.health) else []
    ):
        report: dict[str, Any] = r.report if isinstance(r.report, dict) else {}
        counts = {k: v for k, v in (report.get("counts") or {}).items() if v}
        rows.append(
            [
                r.symbol,
                r.timeframe,
                r.bars,
                r.score,
                ", ".join(f"{k} {v}" for k, v in counts.items()) or "none",
            ]
        )
    return Table("Data health", cols, rows, note="" if rows else "no data health recorded")


def errors_table(rep: RunReport) -> Table:
    cols = [Col("time", "time"), Col("strategy"), Col("symbol"), Col("error"), Col("message")]
    e = rep.errors
    rows = (
        [[r.time, r.strategy, r.symbol, r.error_type, r.message] for r in e.itertuples(index=False)]
        if len(e)
        else []
    )
    return Table("Strategy errors", cols, rows, note="" if rows else "no strategy errors")


def _join(values: Any) -> str:
    return ", ".join(str(v) for v in values or [])


def strategies_table(rep: RunReport) -> Table:
    cols = [
        Col("name"),
        Col("category"),
        Col("timeframe"),
        Col("symbols"),
        Col("params", "json"),
        Col("source"),
        Col("hash"),
    ]
    rows = [
        [
            r.name,
            r.category,
            r.timeframe,
            _join(r.symbols),
            r.params,
            r.spec,
            r.source_hash,
        ]
        for r in rep.strategies.itertuples(index=False)
    ]
    return Table("Strategies", cols, rows)


def holding_times_s(rep: RunReport) -> np.ndarray:
    t = rep.trades
    return t["holding_s"].dropna().to_numpy(dtype=float) if len(t) else np.empty(0)


def excursion_frame(rep: RunReport) -> pd.DataFrame | None:
    """position_id, mfe, mae, net joined with the trades, or None when MFE/MAE were not recorded."""
    if rep.excursions is None or rep.excursions.empty or rep.trades.empty:
        return None
    return rep.excursions.merge(rep.trades[["position_id", "net", "symbol"]], on="position_id", how="inner")


MFE_MAE_NOTE = (
    "MFE/MAE (maximum favourable / adverse excursion per trade) need the price path inside each trade, "
    "recorded with each position (positions table); this run has none (it predates schema 0003 or closed "
    "no trade), so the holding-time distribution is shown."
)


# --- config ---------------------------------------------------------------------------------------------
def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested config; lists of dicts keyed by their ``name`` when they have one."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            label = v.get("name", i) if isinstance(v, dict) else i
            out.update(flatten(v, f"{prefix}[{label}]"))
    else:
        out[prefix] = value
    return out


def config_text(rep: RunReport) -> str:
    return json.dumps(rep.run.get("config"), indent=2, sort_keys=False, default=str)


def config_diff(reps: list[RunReport]) -> Table:
    flats = [flatten(r.run.get("config") or {}) for r in reps]
    keys = sorted(set().union(*flats))
    absent = object()
    rows: list[list[Any]] = []
    for k in keys:
        vals = [f.get(k, absent) for f in flats]
        if any(
            json.dumps(v, default=str) != json.dumps(vals[0], default=str) for v in vals if v is not absent
        ) or (any(v is absent for v in vals)):
            rows.append([k, *["(absent)" if v is absent else fmt("json", v) for v in vals]])
    return Table(
        "Config differences",
        [Col("key"), *[Col(r.run_id) for r in reps]],
        rows,
        note="" if rows else "the effective configs are identical",
    )
