"""A self-contained HTML report of one run (plotly inlined, works offline), read from the database."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from sqlalchemy import Engine, select

from mt5tester.errors import StorageError
from mt5tester.results import db
from mt5tester.results.metrics import run_metrics

DEAL_TYPES = {0: "buy", 1: "sell", 2: "balance"}
DEAL_ENTRIES = {0: "in", 1: "out", 2: "in/out", 3: "out by"}
DEAL_REASONS = {0: "client", 3: "expert", 4: "sl", 5: "tp", 6: "so"}


def _read(engine: Engine, table: Any, run_id: str) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(select(table).where(table.c.run_id == run_id)).mappings().all()
    return pd.DataFrame([dict(r) for r in rows])


def _table(df: pd.DataFrame, cols: list[str], limit: int | None = None) -> str:
    if df.empty:
        return "<p class='empty'>none</p>"
    shown = df[cols] if limit is None else df[cols].head(limit)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in shown.itertuples(index=False)
    )
    more = (
        f"<p>… {len(df) - limit} more rows in the database</p>"
        if limit is not None and len(df) > limit
        else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def _text(v: Any) -> str:
    return json.dumps(v) if isinstance(v, dict | list) else str(v)


def _kv(d: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_text(v))}</td></tr>" for k, v in d.items()
    )
    return f"<table class='kv'>{rows}</table>"


def write_html_report(engine: Engine, run_id: str, out_dir: Path) -> Path:
    with engine.connect() as conn:
        run = conn.execute(select(db.runs).where(db.runs.c.run_id == run_id)).mappings().first()
    if run is None:
        raise StorageError(f"no run {run_id} in the results database")
    deals = _read(engine, db.deals, run_id)
    eq = _read(engine, db.equity, run_id)
    sigs = _read(engine, db.signals, run_id)
    errs = _read(engine, db.strategy_errors, run_id)
    funnel: dict[str, Any] = run["funnel"] or {}
    health = _read(engine, db.data_health, run_id)
    metrics = run_metrics(engine, run_id, float(run["deposit"]), funnel.get("margin_level_min")).to_dict()

    fig = go.Figure()
    if not eq.empty:
        t = pd.to_datetime(eq["time"], utc=True)
        fig.add_trace(go.Scatter(x=t, y=eq["balance"], name="balance", line={"shape": "hv"}))
        fig.add_trace(go.Scatter(x=t, y=eq["equity"], name="equity"))
    fig.update_layout(title="Balance and equity", height=420, margin={"l": 40, "r": 20, "t": 40, "b": 30})
    chart = fig.to_html(full_html=False, include_plotlyjs=True, div_id="equity-chart")

    closing = deals[deals["entry"] == 1] if not deals.empty else deals
    net = (
        float(closing["profit"].sum() + deals["commission"].sum() + deals["swap"].sum())
        if not deals.empty
        else 0.0
    )
    summary = {
        "run": run_id,
        "status": run["status"],
        "deposit": f"{run['deposit']:.2f} {run['currency']}",
        "net profit": f"{net:.2f}",
        "trades": len(closing),
        "final balance": f"{deals['balance'].iloc[-1]:.2f}" if not deals.empty else "",
        "config hash": run["config_hash"],
        "started": run["started_at"],
        "finished": run["finished_at"],
    }
    if not deals.empty:
        deals = deals.assign(
            time=pd.to_datetime(deals["time"], utc=True).dt.strftime("%Y-%m-%d %H:%M"),
            type=deals["type"].map(DEAL_TYPES),
            entry=deals["entry"].map(DEAL_ENTRIES),
            reason=deals["reason"].map(DEAL_REASONS),
        )
    if not sigs.empty:
        sigs = sigs.assign(time=pd.to_datetime(sigs["time"], utc=True).dt.strftime("%Y-%m-%d %H:%M"))
    if not errs.empty:
        errs = errs.assign(time=pd.to_datetime(errs["time"], utc=True).dt.strftime("%Y-%m-%d %H:%M"))
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>mt5tester run {
        html.escape(run_id)
    }</title>
<style>body{{font-family:sans-serif;margin:2em}}
table{{border-collapse:collapse;margin:1em 0;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}} th{{background:#f3f3f3}}</style></head><body>
<h1>Backtest report <code>{html.escape(run_id)}</code></h1>
<h2>Summary</h2>{_kv(summary)}
<h2>Equity</h2>{chart}
<h2>MT5 report metrics</h2>{_kv(metrics)}
<h2>Lifecycle funnel</h2>{_kv(funnel)}
<h2>Deals</h2>{
        _table(
            deals,
            [
                "ticket",
                "time",
                "symbol",
                "type",
                "entry",
                "volume",
                "price",
                "commission",
                "swap",
                "profit",
                "balance",
                "reason",
                "strategy",
                "comment",
            ],
            2000,
        )
    }
<h2>Signals</h2>{
        _table(
            sigs,
            [
                "signal_id",
                "time",
                "strategy",
                "symbol",
                "direction",
                "status",
                "reason",
                "volume",
                "sl",
                "tp",
                "retcode",
                "comment",
            ],
            2000,
        )
    }
<h2>Data health</h2>{_table(health, ["symbol", "timeframe", "bars", "score"]) if not health.empty else ""}
<h2>Strategy errors</h2>{_table(errs, ["time", "strategy", "symbol", "error_type", "message"], 500)}
<h2>Effective config</h2><pre>{html.escape(json.dumps(run["config"], indent=2))}</pre>
</body></html>"""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"report_{run_id}.html"
    path.write_text(body, encoding="utf-8")
    return path
