"""The HTML report of one run, from the DB: offline and self-contained by default (plotly.js inlined once,
nothing fetched); ``report.plotlyjs: directory`` shares one plotly.min.js beside many reports, ``cdn``
loads it from the plotly CDN.

Every text that comes from a user (strategy names, comments, tags, symbols, config values) passes through
``html.escape`` before it reaches the page, and through the same escaping before it reaches a chart (plotly
shows ``&lt;`` as ``<`` but never interprets it), so a ``<script>`` in a name is shown, never run.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plotly.offline import get_plotlyjs, get_plotlyjs_version
from sqlalchemy import Engine

from mt5tester.reports import figures
from mt5tester.reports.analysis import deals_grid, health_rows, orders_grid, trades_grid
from mt5tester.reports.charts import CHARTS_JS, Charts, template_json
from mt5tester.reports.content import (
    MFE_MAE_NOTE,
    RunReport,
    Table,
    breakdown,
    config_text,
    errors_table,
    fmt,
    funnel_table,
    load_run,
    metrics_rows,
    monthly_returns,
    regime_breakdown,
    rejections_table,
    signal_status_table,
    sort_value,
    strategies_table,
    summary_rows,
)
from mt5tester.reports.grid import GRID_JS, grid_html
from mt5tester.reports.prices import load_candles

# The printed page is a summary: the first PRINT_ROWS rows of the trades / deals / orders tables (totals
# cover all; every row is in the HTML and in `runs export`) and PRINT_MARKERS trades marked per chart (the
# HTML marks all). Chromium's drawing and printing time grows with both (bench/README.md, report.py).
PRINT_ROWS = 50
NO_REGIMES = "no regime data: no signal of this run carries a regime (config section regime:)"
PRINT_MARKERS = 300
PLOTLYJS_MODES = ("inline", "directory", "cdn")
PLOTLY_FILE = "plotly.min.js"

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
.grid-bar{font-size:12.5px;margin:6px 0;display:flex;flex-wrap:wrap;gap:10px;align-items:center}
.grid-bar select,.grid-bar button{font-size:12.5px} .grid-count{color:#444} .grid td{white-space:nowrap}
nav .pages{float:right} nav .pages a{font-weight:600}
@media print{nav,.grid-bar{display:none} body{background:#fff} .chart{break-inside:avoid}
 .scroll{max-height:none;overflow:visible} section{break-before:auto} h2{break-after:avoid}}
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


def plotly_script(mode: str) -> str:
    """The script element that brings plotly.js: inlined, the shared file beside the page, or the CDN."""
    if mode == "inline":
        return f"<script type='text/javascript'>{get_plotlyjs()}</script>"
    if mode == "directory":
        return f"<script src='{PLOTLY_FILE}' charset='utf-8'></script>"
    if mode == "cdn":
        url = f"https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js"
        return f"<script src='{url}' charset='utf-8'></script>"
    raise ValueError(f"report.plotlyjs must be one of {', '.join(PLOTLYJS_MODES)}, not {mode!r}")


def write_plotly_file(out_dir: Path) -> Path:
    """The one plotly.min.js that every report in ``out_dir`` loads (``plotlyjs: directory``); rewritten
    only when missing or from another plotly version."""
    path = Path(out_dir) / PLOTLY_FILE
    js = get_plotlyjs()
    if not path.is_file() or path.stat().st_size != len(js.encode("utf-8")):
        path.write_text(js, encoding="utf-8")
    return path


def page(
    title: str,
    header: str,
    nav: list[tuple[str, str]],
    body: str,
    charts: int,
    plotlyjs: str = "inline",
    pages: list[tuple[str, str]] | None = None,
) -> str:
    """A report page. ``pages``: links to sibling pages (href, label) at the right of the navigation, the
    place of the optimization page and others."""
    links = "".join(f"<a href='#{a}'>{esc(label)}</a>" for a, label in nav)
    others = "".join(f"<a href='{esc(href)}'>{esc(label)}</a>" for href, label in pages or [])
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<meta name='mt5tester-charts' content='{charts}'>"
        f"<title>{esc(title)}</title><style>{CSS}</style>"
        f"{plotly_script(plotlyjs)}{_charts_head(charts)}</head><body>"
        f"<header><h1>{header}</h1></header><nav><span class='pages'>{others}</span>{links}</nav>"
        f"<main>{body}</main><script>{SORT_JS}</script><script>{GRID_JS}</script>"
        f"{'<script>mt5Charts(document);</script>' if charts else ''}</body></html>"
    )


def _charts_head(charts: int) -> str:
    """The chart template and drawing function, in pages that have charts."""
    if not charts:
        return ""
    return (
        f"<script type='application/json' id='plotly-template'>{template_json()}</script>"
        f"<script>{CHARTS_JS}</script>"
    )


Phase = Callable[[str], None]


def _quiet(_phase: str) -> None:
    pass


def _big_table(grid_id: str, table: Table, frame: Any, filters: list[str], static: bool) -> str:
    """Every row in a filterable grid; in print, the first PRINT_ROWS rows as a plain table."""
    if not static:
        note = f"<p class='note'>{esc(table.note)}</p>" if table.note else ""
        return f"<h3>{esc(table.title)} ({len(frame)})</h3>{note}" + grid_html(grid_id, table, frame, filters)
    rows = [list(r) for r in frame.head(PRINT_ROWS).itertuples(index=False)]
    shown = Table(table.title, table.columns, rows, table.note, table.total, max(0, len(frame) - PRINT_ROWS))
    return table_html(shown)


@dataclass(frozen=True)
class PageParts:
    """What ``page`` lays out: the HTML page and the printed PDF are made of the same parts."""

    title: str
    header: str
    nav: list[tuple[str, str]]
    body: str
    charts: int


def run_page_parts(rep: RunReport, on_phase: Phase = _quiet, static: bool = False) -> PageParts:
    """The run report's sections. ``static``: the printed (PDF) page (static charts, first rows of big
    tables)."""
    on_phase("charts")
    ch = Charts(static)
    points = figures.PRINT_POINTS if static else figures.SCREEN_POINTS
    by_strategy = breakdown(rep, "strategy", "Per strategy")
    by_symbol = breakdown(rep, "symbol", "Per symbol")
    sections: list[tuple[str, str, str]] = []  # (anchor, title, html)
    sections.append(("summary", "Summary", kv_html(summary_rows(rep))))
    sections.append(("metrics", "MT5 report metrics", metrics_html(metrics_rows(rep.metrics))))
    sections.append(
        (
            "equity",
            "Balance, equity, drawdown",
            ch.html(figures.equity_figure(rep, points), 420)
            + ch.html(figures.drawdown_figure(rep, points), 300),
        )
    )
    sections.append(
        (
            "monthly",
            "Monthly returns",
            ch.html(figures.monthly_figure(rep), 260 + 40 * monthly_returns(rep)["year"].nunique()),
        )
    )
    sections.append(("periods", "By hour, weekday and month", ch.html(figures.period_figure(rep), 820)))
    sections.append(
        (
            "breakdown",
            "Per strategy, symbol and regime",
            ch.html(figures.breakdown_figure(by_strategy, by_symbol), 340)
            + ch.html(figures.group_equity_figure(rep, "strategy", points), 380)
            + ch.html(figures.group_equity_figure(rep, "symbol", points), 380)
            + table_html(by_strategy, sortable=True)
            + table_html(by_symbol, sortable=True)
            + table_html(regime_breakdown(rep), sortable=True),
        )
    )
    on_phase("price charts")
    symbols = sorted(rep.trades["symbol"].astype(str).unique().tolist()) if len(rep.trades) else []
    candles, candle_note = rep.cached("candles", lambda: load_candles(rep, symbols))
    markers = PRINT_MARKERS if static else None
    price_html = "".join(ch.html(figures.price_figure(c, rep.trades, markers), 460) for c in candles.values())
    if candle_note:
        price_html += f"<p class='note'>{esc(candle_note)}</p>"
    if not symbols:
        price_html = "<p class='note'>no trades: nothing to mark on a price chart</p>"
    sections.append(("prices", "Prices with entries and exits", price_html))
    exc = figures.excursion_figure(rep, PRINT_MARKERS if static else None)
    trade_charts = ch.html(figures.results_figure(rep), 320) + ch.html(figures.holding_figure(rep), 320)
    trade_charts += ch.html(exc, 420) if exc is not None else f"<p class='note'>{esc(MFE_MAE_NOTE)}</p>"
    on_phase("tables")
    trades_t, trades_f = trades_grid(rep)
    filters = ["symbol", "strategy", "direction", "result"]
    sections.append(
        ("trades", "Trades", trade_charts + _big_table("trades", trades_t, trades_f, filters, static))
    )
    deals_t, deals_f = deals_grid(rep)
    orders_t, orders_f = orders_grid(rep)
    sections.append(
        (
            "deals",
            "Deals and orders",
            _big_table(
                "deals", deals_t, deals_f, ["symbol", "strategy", "type", "direction", "reason"], static
            )
            + _big_table("orders", orders_t, orders_f, ["symbol", "strategy", "type", "state"], static),
        )
    )
    fun = figures.funnel_figure(rep)
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
    reg = figures.regime_figure(rep)
    sections.append(
        (
            "regimes",
            "Regime timeline",
            ch.html(reg, 120 + 40 * rep.trades["symbol"].nunique())
            if reg is not None
            else f"<p class='note'>{esc(NO_REGIMES)}</p>",
        )
    )
    sections.append(
        ("health", "Data health and history quality", table_html(health_rows(rep), heading=False))
    )
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
    on_phase("writing the page")
    body = "".join(
        f"<section id='{a}'><h2>{esc(title)}</h2>{content}</section>" for a, title, content in sections
    )
    return PageParts(
        f"mt5tester run {rep.run_id}",
        f"Backtest report <code>{esc(rep.run_id)}</code>",
        [(a, title) for a, title, _ in sections],
        body,
        ch.count,
    )


def render_run_html(
    rep: RunReport, plotlyjs: str = "inline", on_phase: Phase = _quiet, static: bool = False
) -> str:
    """The run report page. ``static``: the page printed to PDF (static charts, first rows of big tables)."""
    p = run_page_parts(rep, on_phase, static)
    return page(p.title, p.header, p.nav, p.body, p.charts, plotlyjs)


def run_plotlyjs(rep: RunReport) -> str:
    """``report.plotlyjs`` of the run's stored config (inline when absent: runs recorded before the key)."""
    cfg = rep.run.get("config") or {}
    rcfg = cfg.get("report", {}) if isinstance(cfg, dict) else {}
    mode = rcfg.get("plotlyjs", "inline") if isinstance(rcfg, dict) else "inline"
    return str(mode) if mode in PLOTLYJS_MODES else "inline"


def write_run_html(
    rep: RunReport, out_dir: Path, plotlyjs: str | None = None, on_phase: Phase = _quiet
) -> Path:
    """Write ``report_<run_id>.html`` of a loaded run into ``out_dir`` (and plotly.min.js beside it in
    ``directory`` mode). ``plotlyjs`` None: the run's ``report.plotlyjs``."""
    mode = plotlyjs or run_plotlyjs(rep)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = render_run_html(rep, mode, on_phase)
    if mode == "directory":
        write_plotly_file(out_dir)
    path = out_dir / f"report_{safe_filename(rep.run_id)}.html"
    path.write_text(text, encoding="utf-8")
    return path


def write_html_report(
    engine: Engine, run_id: str, out_dir: Path, plotlyjs: str | None = None, on_phase: Phase = _quiet
) -> Path:
    """Write ``report_<run_id>.html`` into ``out_dir`` from the database; StorageError for an unknown run."""
    return write_run_html(load_run(engine, run_id, on_phase), out_dir, plotlyjs, on_phase)
