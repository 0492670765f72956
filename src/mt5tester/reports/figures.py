"""Every chart of the run report, defined once as a plotly figure spec (the ``{"data", "layout"}`` dict that
plotly.js draws): the HTML shows them interactively and the PDF is the same page printed by headless
Chromium, so the two cannot drift apart.

The specs are plain dicts built directly (plotly's Python figure objects validate and deep-copy every
property and array, which cost a 15k-trade report most of its time); ``reports.charts`` serialises them
(numbers as typed arrays, times as text) and one script draws them in the page.

Text from users (strategy names, symbols, regimes) is escaped before it reaches a figure: plotly shows
``&lt;`` as ``<`` but never interprets it.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

from mt5tester.reports.analysis import by_period, group_equity, regime_segments
from mt5tester.reports.content import (
    MONTHS,
    RunReport,
    Table,
    curve,
    downsample,
    drawdown_pct,
    excursion_frame,
    funnel_stages,
    holding_times_s,
    monthly_returns,
)
from mt5tester.reports.prices import Candles

Figure = dict[str, Any]  # {"data": [trace, ...], "layout": {...}}: what Plotly.newPlot takes

# points of a line chart: the screen zooms (4000 keep each drawdown trough and peak); a printed chart is
# ~1000 px wide, so 1200 points draw the same line at a fraction of the work
SCREEN_POINTS, PRINT_POINTS = 4000, 1200
GREEN, RED, BLUE, PURPLE = "#2ca02c", "#d62728", "#1f77b4", "#9467bd"
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]


def esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def figure(data: list[dict[str, Any]], title: str, **layout: Any) -> Figure:
    return {"data": data, "layout": {"title": {"text": title}, **layout}}


def subplots(rows: int, cols: int, titles: list[str], vspace: float | None = None) -> dict[str, Any]:
    """The layout of a rows x cols grid of charts as plotly's ``make_subplots`` lays it out (its default
    spacings, a title above each cell); cell (r, c) draws on axes ``x{k}``/``y{k}``, k = (r-1)*cols + c."""
    hs = 0.2 / cols
    vs = 0.3 / rows if vspace is None else vspace
    w, h = (1.0 - hs * (cols - 1)) / cols, (1.0 - vs * (rows - 1)) / rows
    layout: dict[str, Any] = {"annotations": []}
    for r in range(rows):
        y0 = 1.0 - (r + 1) * h - r * vs
        for c in range(cols):
            k = r * cols + c + 1
            x0 = c * (w + hs)
            n = "" if k == 1 else str(k)
            layout[f"xaxis{n}"] = {"domain": [x0, x0 + w], "anchor": f"y{n}"}
            layout[f"yaxis{n}"] = {"domain": [y0, y0 + h], "anchor": f"x{n}"}
            if k <= len(titles):
                layout["annotations"].append(
                    {
                        "text": titles[k - 1],
                        "x": x0 + w / 2,
                        "y": y0 + h,
                        "xref": "paper",
                        "yref": "paper",
                        "xanchor": "center",
                        "yanchor": "bottom",
                        "showarrow": False,
                        "font": {"size": 16},
                    }
                )
    return layout


def _axes(k: int) -> dict[str, str]:
    n = "" if k == 1 else str(k)
    return {"xaxis": f"x{n}", "yaxis": f"y{n}"}


def equity_figure(rep: RunReport, max_points: int = SCREEN_POINTS) -> Figure:
    c = curve(rep)
    t, (eq, bal) = downsample(
        c["time"], [c["equity"].to_numpy(float), c["balance"].to_numpy(float)], max_points
    )
    data = [
        {
            "type": "scatter",
            "x": t,
            "y": bal,
            "name": "balance",
            "line": {"shape": "hv", "width": 1.5, "color": BLUE},
        },
        {"type": "scatter", "x": t, "y": eq, "name": "equity", "line": {"width": 1, "color": GREEN}},
    ]
    return figure(
        data, f"Balance and equity ({esc(rep.currency)})", yaxis={"title": {"text": esc(rep.currency)}}
    )


def drawdown_figure(rep: RunReport, max_points: int = SCREEN_POINTS) -> Figure:
    c = curve(rep)
    dd = drawdown_pct(c["equity"], rep.deposit)
    t, (dds,) = downsample(c["time"], [dd], max_points)
    trace = {
        "type": "scatter",
        "x": t,
        "y": dds,
        "name": "drawdown %",
        "fill": "tozeroy",
        "line": {"color": RED, "width": 1},
    }
    return figure(
        [trace], "Equity drawdown from the running peak (%)", yaxis={"title": {"text": "%"}}, showlegend=False
    )


def monthly_figure(rep: RunReport) -> Figure:
    m = monthly_returns(rep)
    years = sorted(m["year"].unique().tolist()) if len(m) else []
    z = np.full((len(years), 12), np.nan)
    for year, month, pct in zip(m["year"].tolist(), m["month"].tolist(), m["pct"].tolist(), strict=True):
        z[years.index(year), int(month) - 1] = pct
    text = [["" if np.isnan(v) else f"{v:.2f}%" for v in row] for row in z]
    trace = {
        "type": "heatmap",
        "z": [[None if np.isnan(v) else float(v) for v in row] for row in z],
        "x": MONTHS,
        "y": [str(y) for y in years],
        "text": text,
        "texttemplate": "%{text}",
        "colorscale": "RdYlGn",
        "zmid": 0,
        "hovertemplate": "%{y} %{x}: %{z:.2f}%<extra></extra>",
        "colorbar": {"title": {"text": "%"}},
    }
    return figure([trace], "Monthly returns (% of the previous month-end equity)", yaxis={"type": "category"})


def breakdown_figure(by_strategy: Table, by_symbol: Table) -> Figure:
    layout = subplots(1, 2, ["net profit per strategy", "net profit per symbol"])
    data = []
    for k, t in ((1, by_strategy), (2, by_symbol)):
        nets = [float(r[2]) for r in t.rows]
        data.append(
            {
                "type": "bar",
                "x": [esc(r[0]) for r in t.rows],
                "y": nets,
                "marker": {"color": [GREEN if v >= 0 else RED for v in nets]},
                "showlegend": False,
                **_axes(k),
            }
        )
    return figure(data, "Net profit breakdown", hovermode="closest", **layout)


def group_equity_figure(rep: RunReport, key: str, max_points: int = SCREEN_POINTS) -> Figure:
    """Cumulative net result per strategy or per symbol (closed trades, at their close times)."""
    data = []
    for i, (name, g) in enumerate(group_equity(rep, key).items()):
        t, (net,) = downsample(pd.Series(g["time"]), [g["net"].to_numpy(float)], max_points)
        data.append(
            {
                "type": "scatter",
                "x": t,
                "y": net,
                "name": esc(name),
                "line": {"shape": "hv", "width": 1.3, "color": PALETTE[i % len(PALETTE)]},
            }
        )
    return figure(
        data,
        f"Cumulative net result per {key} ({esc(rep.currency)})",
        yaxis={"title": {"text": esc(rep.currency)}},
    )


def period_figure(rep: RunReport) -> Figure:
    """MT5's report charts: entries and profit/loss by hour, weekday and month (server time)."""
    periods = by_period(rep)
    titles = []
    for key in ("hours", "weekdays", "months"):
        titles += [f"entries by {key}", f"profit and loss by {key}"]
    layout = subplots(3, 2, titles, vspace=0.12)
    data = []
    bars = (
        (1, "buy", "buy entries", BLUE),
        (1, "sell", "sell entries", "#ff7f0e"),
        (2, "profit", "profit", GREEN),
        (2, "loss", "loss", RED),
    )
    for row, key in enumerate(("hour", "weekday", "month"), start=1):
        p = periods[key]
        x = p["label"].tolist()
        for col, column, name, color in bars:
            k = (row - 1) * 2 + col
            data.append(
                {
                    "type": "bar",
                    "x": x,
                    "y": p[column].to_numpy(float),
                    "name": name,
                    "marker": {"color": color},
                    "showlegend": row == 1,
                    "legendgroup": column,
                    **_axes(k),
                }
            )
            layout[f"xaxis{'' if k == 1 else k}"]["type"] = "category"
    return figure(
        data,
        f"Entries and profit by hour, weekday and month (server time, {esc(rep.server_timezone)})",
        barmode="relative",
        hovermode="closest",
        **layout,
    )


def results_figure(rep: RunReport) -> Figure:
    net = rep.trades["net"].to_numpy(float) if len(rep.trades) else np.empty(0)
    trace = {"type": "histogram", "x": net, "nbinsx": 50, "marker": {"color": BLUE}, "name": "trades"}
    return figure(
        [trace],
        "Trade results (net per trade)",
        xaxis={"title": {"text": esc(rep.currency)}},
        yaxis={"title": {"text": "trades"}},
    )


def holding_figure(rep: RunReport) -> Figure:
    hours = holding_times_s(rep) / 3600.0
    trace = {"type": "histogram", "x": hours, "nbinsx": 50, "marker": {"color": PURPLE}, "name": "trades"}
    return figure(
        [trace],
        "Holding time distribution",
        xaxis={"title": {"text": "hours"}},
        yaxis={"title": {"text": "trades"}},
    )


def thin(frame: pd.DataFrame, max_rows: int | None) -> tuple[pd.DataFrame, str]:
    """Every k-th row so that at most ``max_rows`` remain (None: all), and a title note saying so. The
    printed report draws dense marker clouds thinned: tens of thousands of vector markers make a PDF slow
    and huge, not clearer; the HTML draws every one."""
    if max_rows is None or len(frame) <= max_rows:
        return frame, ""
    step = -(-len(frame) // max_rows)
    return frame.iloc[::step], f" (every {step}th of {len(frame)} trades)"


def excursion_figure(rep: RunReport, max_points: int | None = None) -> Figure | None:
    full = excursion_frame(rep)
    if full is None:
        return None
    x, note = thin(full, max_points)
    net = x["net"].to_numpy(float)
    marker = {"size": 4, "opacity": 0.6}
    data = [
        {
            "type": "scatter",
            "x": x["mfe"].to_numpy(float),
            "y": net,
            "mode": "markers",
            "name": "MFE",
            "marker": marker | {"color": GREEN},
        },
        {
            "type": "scatter",
            "x": -np.abs(x["mae"].to_numpy(float)),
            "y": net,
            "mode": "markers",
            "name": "MAE",
            "marker": marker | {"color": RED},
        },
    ]
    return figure(
        data,
        f"MFE and MAE per trade vs result ({esc(rep.currency)}){note}",
        xaxis={"title": {"text": "excursion"}},
        yaxis={"title": {"text": "net result"}},
        hovermode="closest",
    )


def funnel_figure(rep: RunReport) -> Figure | None:
    stages = funnel_stages(rep)
    if not stages:
        return None
    trace = {
        "type": "funnel",
        "y": [s for s, _ in stages],
        "x": [n for _, n in stages],
        "textinfo": "value+percent initial",
    }
    return figure([trace], "Signal lifecycle", hovermode="closest")


def regime_figure(rep: RunReport) -> Figure | None:
    """One row per symbol; each stretch coloured by the regime its signals carried."""
    seg = regime_segments(rep)
    if seg.empty:
        return None
    data = []
    for i, (regime, g) in enumerate(seg.groupby("regime", sort=True)):
        start = pd.to_datetime(g["start"], utc=True)
        span = (pd.to_datetime(g["end"], utc=True) - start).dt.total_seconds() * 1000.0
        data.append(
            {
                "type": "bar",
                "y": [esc(s) for s in g["symbol"]],
                "x": span.to_numpy(float),
                "base": start.dt.strftime("%Y-%m-%dT%H:%M:%S").tolist(),
                "orientation": "h",
                "name": esc(regime),
                "marker": {"color": PALETTE[i % len(PALETTE)]},
            }
        )
    return figure(
        data,
        "Regime timeline (label of each symbol's signals)",
        barmode="overlay",
        xaxis={"type": "date"},
        hovermode="closest",
    )


def price_figure(c: Candles, trades: pd.DataFrame, max_trades: int | None = None) -> Figure:
    """Candles with every entry (triangle: up buy, down sell) and exit (x: green win, red loss)."""
    data: list[dict[str, Any]] = [
        {
            "type": "candlestick",
            "x": c.time,
            "open": c.open,
            "high": c.high,
            "low": c.low,
            "close": c.close,
            "name": f"{c.timeframe} bid",
            "increasing": {"line": {"color": "#26a69a"}},
            "decreasing": {"line": {"color": "#ef5350"}},
        }
    ]
    t, note = thin(trades[trades["symbol"] == c.symbol], max_trades)
    for side, symbol, color in (("buy", "triangle-up", BLUE), ("sell", "triangle-down", "#ff7f0e")):
        s = t[t["direction"] == side]
        data.append(
            {
                "type": "scatter",
                "x": s["open_time"],
                "y": s["open_price"].to_numpy(float),
                "mode": "markers",
                "name": f"{side} entry",
                "marker": {"symbol": symbol, "color": color, "size": 7},
            }
        )
    done = t[t["close_time"].notna()]
    win = done["net"].astype(float) >= 0
    for label, part, color in (("exit win", done[win], GREEN), ("exit loss", done[~win], RED)):
        data.append(
            {
                "type": "scatter",
                "x": part["close_time"],
                "y": part["close_price"].to_numpy(float),
                "mode": "markers",
                "name": label,
                "marker": {"symbol": "x", "color": color, "size": 6},
            }
        )
    return figure(
        data,
        f"{esc(c.symbol)}: {c.timeframe} candles with entries and exits{note} (drag to zoom)",
        xaxis={"rangeslider": {"visible": False}},
        hovermode="closest",
    )
