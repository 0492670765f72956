"""The HTML report of one run: one self-contained file (plotly.js inlined once, nothing fetched), from the DB.

Every text that comes from a user (strategy names, comments, tags, symbols, config values) passes through
``html.escape`` before it reaches the page, and through the same escaping before it reaches a chart (plotly
shows ``&lt;`` as ``<`` but never interprets it), so a ``<script>`` in a name is shown, never run.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots
from sqlalchemy import Engine

from mt5tester.reports.content import (
    MFE_MAE_NOTE,
    MONTHS,
    RunReport,
    Table,
    breakdown,
    config_text,
    curve,
    downsample,
    drawdown_pct,
    errors_table,
    excursion_frame,
    fmt,
    funnel_stages,
    funnel_table,
    health_table,
    holding_times_s,
    load_run,
    metrics_rows,
    monthly_returns,
    regime_breakdown,
    rejections_table,
    signal_status_table,
    sort_value,
    strategies_table,
    summary_rows,
    trades_table,
)

HTML_TRADES_LIMIT = 5000  # rows of the trades table in the page; the totals always cover every trade
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3b57;color:#fff;padding:14px 28px} header h1{margin:0;font-size:22px}
header code{color:#ffd479}
nav{padding:6px 28px;background:#eef2f6;font-size:13px;position:sticky;top:0;z-index:9}
nav a{margin-right:14px;color:#1f3b57;text-decoration:none} main{padding:8px 28px 40px}
h2{border-bottom:2px solid #1f3b57;padding-bottom:3px;margin-top:34px;font-size:18px}
h3{font-size:15px;margin:18px 0 4px}
table{border-collapse:collapse;margin:8px 0;font-size:12.5px;background:#fff}
td,th{border:1px solid #d5dbe1;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef2f6} td.n{text-align:right;font-variant-numeric:tabular-nums}
tfoot td{font-weight:600;background:#f6f6f6} table.sortable th{cursor:pointer}
table.sortable th:hover{background:#dde5ee} .note,.empty{color:#666;font-size:12.5px;font-style:italic}
.kv th{width:260px} .grid{display:flex;flex-wrap:wrap;gap:24px}
.chart{background:#fff;border:1px solid #d5dbe1;margin:10px 0;min-height:200px}
pre{background:#fff;border:1px solid #d5dbe1;padding:10px;font-size:12px;overflow:auto;max-height:600px}
.scroll{max-height:640px;overflow:auto;display:inline-block;max-width:100%}
"""

# click a header to sort its table (numbers by data-v, text otherwise); totals in <tfoot> stay put
SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('thead th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var asc = th.getAttribute('data-dir') !== 'asc';
      table.querySelectorAll('thead th').forEach(function (h) { h.removeAttribute('data-dir'); });
      th.setAttribute('data-dir', asc ? 'asc' : 'desc');
      rows.sort(function (a, b) {
        var x = a.cells[col], y = b.cells[col];
        var vx = x.getAttribute('data-v'), vy = y.getAttribute('data-v'), r;
        if (vx !== null && vy !== null) { r = parseFloat(vx) - parseFloat(vy); }
        else if (vx !== null) { r = -1; } else if (vy !== null) { r = 1; }
        else { r = x.textContent.localeCompare(y.textContent); }
        return asc ? r : -r;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def safe_filename(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)


# --- HTML pieces ------------------------------------------------------------------------------------------
def table_html(t: Table, sortable: bool = False, limit: int | None = None, heading: bool = True) -> str:
    shown = t.head(limit) if limit is not None else t
    out = [f"<h3>{esc(t.title)}</h3>"] if heading else []
    if t.note:
        out.append(f"<p class='note'>{esc(t.note)}</p>")
    if not shown.rows and shown.total is None:
        if not t.note:
            out.append("<p class='empty'>none</p>")
        return "".join(out)
    numeric = {"money", "ratio", "pct", "price", "int", "num", "dur"}
    head = "".join(f"<th>{esc(c.name)}</th>" for c in t.columns)

    def cells(row: list[Any], with_sort: bool) -> str:
        parts = []
        for c, v in zip(t.columns, row, strict=True):
            cls = " class='n'" if c.kind in numeric else ""
            key = sort_value(c.kind, v) if with_sort else None
            data = f" data-v='{key!r}'" if key is not None else ""
            parts.append(f"<td{cls}{data}>{esc(fmt(c.kind, v))}</td>")
        return "".join(parts)

    body = "".join(f"<tr>{cells(r, sortable)}</tr>" for r in shown.rows)
    foot = f"<tfoot><tr>{cells(shown.total, False)}</tr></tfoot>" if shown.total is not None else ""
    cls = " class='sortable'" if sortable else ""
    out.append(
        f"<div class='scroll'><table{cls}><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody>{foot}</table></div>"
    )
    if shown.more:
        out.append(f"<p class='note'>… {shown.more} more rows in the results database (totals cover all)</p>")
    return "".join(out)


def kv_html(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return f"<table class='kv'>{body}</table>"


def metrics_html(rows: list[tuple[str, str]]) -> str:
    """MT5's Results block laid out in two label/value column pairs, in report order."""
    half = (len(rows) + 1) // 2
    left, right = rows[:half], rows[half:]
    body = []
    for i in range(half):
        a = left[i]
        b = right[i] if i < len(right) else ("", "")
        body.append(
            f"<tr><th>{esc(a[0])}</th><td class='n'>{esc(a[1])}</td>"
            f"<th>{esc(b[0])}</th><td class='n'>{esc(b[1])}</td></tr>"
        )
    return f"<table class='metrics'>{''.join(body)}</table>"


class Charts:
    """Collects plotly figures as divs (plotly.js itself is inlined once by ``page``)."""

    def __init__(self) -> None:
        self.count = 0

    def html(self, fig: go.Figure, height: int = 380) -> str:
        self.count += 1
        fig.update_layout(
            height=height, template="plotly_white", margin={"l": 60, "r": 20, "t": 50, "b": 40}, hovermode="x"
        )
        div = fig.to_html(
            full_html=False, include_plotlyjs=False, div_id=f"chart-{self.count}", config=PLOTLY_CONFIG
        )
        return f"<div class='chart'>{div}</div>"


def page(title: str, header: str, nav: list[tuple[str, str]], body: str, charts: int) -> str:
    links = "".join(f"<a href='#{a}'>{esc(label)}</a>" for a, label in nav)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<meta name='mt5tester-charts' content='{charts}'>"
        f"<title>{esc(title)}</title><style>{CSS}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
        f"<header><h1>{header}</h1></header><nav>{links}</nav><main>{body}</main>"
        f"<script>{SORT_JS}</script></body></html>"
    )


# --- the figures ------------------------------------------------------------------------------------------
def equity_figure(rep: RunReport) -> go.Figure:
    c = curve(rep)
    t, (eq, bal) = downsample(c["time"], [c["equity"].to_numpy(float), c["balance"].to_numpy(float)])
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=t, y=bal, name="balance", line={"shape": "hv", "width": 1.5, "color": "#1f77b4"})
    )
    fig.add_trace(go.Scatter(x=t, y=eq, name="equity", line={"width": 1, "color": "#2ca02c"}))
    fig.update_layout(title=f"Balance and equity ({esc(rep.currency)})", yaxis_title=esc(rep.currency))
    return fig


def drawdown_figure(rep: RunReport) -> go.Figure:
    c = curve(rep)
    dd = drawdown_pct(c["equity"], rep.deposit)
    t, (dds,) = downsample(c["time"], [dd])
    fig = go.Figure(
        go.Scatter(x=t, y=dds, name="drawdown %", fill="tozeroy", line={"color": "#d62728", "width": 1})
    )
    fig.update_layout(title="Equity drawdown from the running peak (%)", yaxis_title="%", showlegend=False)
    return fig


def monthly_figure(rep: RunReport) -> go.Figure:
    m = monthly_returns(rep)
    years = sorted(m["year"].unique().tolist()) if len(m) else []
    z = np.full((len(years), 12), np.nan)
    for year, month, pct in zip(m["year"].tolist(), m["month"].tolist(), m["pct"].tolist(), strict=True):
        z[years.index(year), int(month) - 1] = pct
    text = [["" if np.isnan(v) else f"{v:.2f}%" for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=MONTHS,
            y=[str(y) for y in years],
            text=text,
            texttemplate="%{text}",
            colorscale="RdYlGn",
            zmid=0,
            hovertemplate="%{y} %{x}: %{z:.2f}%<extra></extra>",
            colorbar={"title": "%"},
        )
    )
    fig.update_layout(
        title="Monthly returns (% of the previous month-end equity)", yaxis={"type": "category"}
    )
    return fig


def breakdown_figure(by_strategy: Table, by_symbol: Table) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("net profit per strategy", "net profit per symbol"))
    for col, t in ((1, by_strategy), (2, by_symbol)):
        names = [esc(r[0]) for r in t.rows]
        nets = [float(r[2]) for r in t.rows]
        colors = ["#2ca02c" if v >= 0 else "#d62728" for v in nets]
        fig.add_trace(go.Bar(x=names, y=nets, marker_color=colors, showlegend=False), row=1, col=col)
    fig.update_layout(title="Net profit breakdown", hovermode="closest")
    return fig


def results_figure(rep: RunReport) -> go.Figure:
    net = rep.trades["net"].to_numpy(float) if len(rep.trades) else np.empty(0)
    fig = go.Figure(go.Histogram(x=net, nbinsx=50, marker_color="#1f77b4", name="trades"))
    fig.update_layout(
        title="Trade results (net per trade)", xaxis_title=esc(rep.currency), yaxis_title="trades"
    )
    return fig


def holding_figure(rep: RunReport) -> go.Figure:
    hours = holding_times_s(rep) / 3600.0
    fig = go.Figure(go.Histogram(x=hours, nbinsx=50, marker_color="#9467bd", name="trades"))
    fig.update_layout(title="Holding time distribution", xaxis_title="hours", yaxis_title="trades")
    return fig


def excursion_figure(rep: RunReport) -> go.Figure | None:
    x = excursion_frame(rep)
    if x is None:
        return None
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x["mfe"], y=x["net"], mode="markers", name="MFE", marker={"color": "#2ca02c"}))
    fig.add_trace(
        go.Scatter(x=-x["mae"].abs(), y=x["net"], mode="markers", name="MAE", marker={"color": "#d62728"})
    )
    fig.update_layout(
        title="MFE and MAE per trade vs result", xaxis_title="excursion", yaxis_title="net result"
    )
    return fig


def funnel_figure(rep: RunReport) -> go.Figure | None:
    stages = funnel_stages(rep)
    if not stages:
        return None
    fig = go.Figure(
        go.Funnel(y=[s for s, _ in stages], x=[n for _, n in stages], textinfo="value+percent initial")
    )
    fig.update_layout(title="Signal lifecycle", hovermode="closest")
    return fig


# --- the report -------------------------------------------------------------------------------------------
def render_run_html(rep: RunReport) -> str:
    ch = Charts()
    by_strategy = breakdown(rep, "strategy", "Per strategy")
    by_symbol = breakdown(rep, "symbol", "Per symbol")
    sections: list[tuple[str, str, str]] = []  # (anchor, title, html)
    sections.append(("summary", "Summary", kv_html(summary_rows(rep))))
    sections.append(("metrics", "MT5 report metrics", metrics_html(metrics_rows(rep.metrics))))
    sections.append(
        (
            "equity",
            "Balance, equity, drawdown",
            ch.html(equity_figure(rep), 420) + ch.html(drawdown_figure(rep), 300),
        )
    )
    sections.append(
        (
            "monthly",
            "Monthly returns",
            ch.html(monthly_figure(rep), 260 + 40 * monthly_returns(rep)["year"].nunique()),
        )
    )
    sections.append(
        (
            "breakdown",
            "Per strategy, symbol and regime",
            ch.html(breakdown_figure(by_strategy, by_symbol), 340)
            + table_html(by_strategy, sortable=True)
            + table_html(by_symbol, sortable=True)
            + table_html(regime_breakdown(rep), sortable=True),
        )
    )
    exc = excursion_figure(rep)
    trade_charts = ch.html(results_figure(rep), 320) + ch.html(holding_figure(rep), 320)
    if exc is not None:
        trade_charts += ch.html(exc, 380)
    else:
        trade_charts += f"<p class='note'>{esc(MFE_MAE_NOTE)}</p>"
    sections.append(
        (
            "trades",
            "Trades",
            trade_charts + table_html(trades_table(rep), sortable=True, limit=HTML_TRADES_LIMIT),
        )
    )
    fun = funnel_figure(rep)
    sections.append(
        (
            "lifecycle",
            "Lifecycle",
            (ch.html(fun, 320) if fun is not None else "")
            + table_html(funnel_table(rep))
            + table_html(signal_status_table(rep))
            + table_html(rejections_table(rep), sortable=True),
        )
    )
    sections.append(("health", "Data health", table_html(health_table(rep), heading=False)))
    sections.append(
        ("errors", "Strategy errors", table_html(errors_table(rep), sortable=True, limit=1000, heading=False))
    )
    sections.append(
        (
            "config",
            "Strategies and effective config",
            table_html(strategies_table(rep))
            + f"<h3>Effective config</h3><pre>{esc(config_text(rep))}</pre>",
        )
    )
    body = "".join(
        f"<section id='{a}'><h2>{esc(title)}</h2>{content}</section>" for a, title, content in sections
    )
    return page(
        f"mt5tester run {rep.run_id}",
        f"Backtest report <code>{esc(rep.run_id)}</code>",
        [(a, title) for a, title, _ in sections],
        body,
        ch.count,
    )


def write_html_report(engine: Engine, run_id: str, out_dir: Path) -> Path:
    """Write ``report_<run_id>.html`` into ``out_dir`` from the database; StorageError for an unknown run."""
    rep = load_run(engine, run_id)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"report_{safe_filename(run_id)}.html"
    path.write_text(render_run_html(rep), encoding="utf-8")
    return path
