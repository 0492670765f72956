"""Every chart of the run report, defined once as a plotly figure: the HTML shows them interactively and the
PDF is that same HTML printed by headless Chromium, so the two cannot drift apart.

Text from users (strategy names, symbols, regimes) is escaped before it reaches a figure: plotly shows
``&lt;`` as ``<`` but never interprets it.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

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

# points of a line chart: the screen zooms (4000 keep each drawdown trough and peak); a printed chart is
# ~1000 px wide, so 1200 points draw the same line at a fraction of the work
SCREEN_POINTS, PRINT_POINTS = 4000, 1200
GREEN, RED, BLUE, PURPLE = "#2ca02c", "#d62728", "#1f77b4", "#9467bd"
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]


def esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def equity_figure(rep: RunReport, max_points: int = SCREEN_POINTS) -> go.Figure:
    c = curve(rep)
    t, (eq, bal) = downsample(
        c["time"], [c["equity"].to_numpy(float), c["balance"].to_numpy(float)], max_points
    )
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=t, y=bal, name="balance", line={"shape": "hv", "width": 1.5, "color": BLUE}))
    fig.add_trace(go.Scatter(x=t, y=eq, name="equity", line={"width": 1, "color": GREEN}))
    fig.update_layout(title=f"Balance and equity ({esc(rep.currency)})", yaxis_title=esc(rep.currency))
    return fig


def drawdown_figure(rep: RunReport, max_points: int = SCREEN_POINTS) -> go.Figure:
    c = curve(rep)
    dd = drawdown_pct(c["equity"], rep.deposit)
    t, (dds,) = downsample(c["time"], [dd], max_points)
    fig = go.Figure(
        go.Scatter(x=t, y=dds, name="drawdown %", fill="tozeroy", line={"color": RED, "width": 1})
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
        colors = [GREEN if v >= 0 else RED for v in nets]
        fig.add_trace(go.Bar(x=names, y=nets, marker_color=colors, showlegend=False), row=1, col=col)
    fig.update_layout(title="Net profit breakdown", hovermode="closest")
    return fig


def group_equity_figure(rep: RunReport, key: str, max_points: int = SCREEN_POINTS) -> go.Figure:
    """Cumulative net result per strategy or per symbol (closed trades, at their close times)."""
    fig = go.Figure()
    for i, (name, g) in enumerate(group_equity(rep, key).items()):
        t, (net,) = downsample(pd.Series(g["time"]), [g["net"].to_numpy(float)], max_points)
        fig.add_trace(
            go.Scatter(
                x=t,
                y=net,
                name=esc(name),
                line={"shape": "hv", "width": 1.3, "color": PALETTE[i % len(PALETTE)]},
            )
        )
    fig.update_layout(
        title=f"Cumulative net result per {key} ({esc(rep.currency)})", yaxis_title=esc(rep.currency)
    )
    return fig


def period_figure(rep: RunReport) -> go.Figure:
    """MT5's report charts: entries and profit/loss by hour, weekday and month (server time)."""
    periods = by_period(rep)
    titles = []
    for key in ("hours", "weekdays", "months"):
        titles += [f"entries by {key}", f"profit and loss by {key}"]
    fig = make_subplots(rows=3, cols=2, subplot_titles=titles, vertical_spacing=0.12)
    for row, key in enumerate(("hour", "weekday", "month"), start=1):
        p = periods[key]
        x = p["label"].tolist()
        legend = row == 1
        fig.add_trace(
            go.Bar(
                x=x, y=p["buy"], name="buy entries", marker_color=BLUE, showlegend=legend, legendgroup="buy"
            ),
            row=row,
            col=1,
        )
        fig.add_trace(
            go.Bar(
                x=x,
                y=p["sell"],
                name="sell entries",
                marker_color="#ff7f0e",
                showlegend=legend,
                legendgroup="sell",
            ),
            row=row,
            col=1,
        )
        fig.add_trace(
            go.Bar(
                x=x, y=p["profit"], name="profit", marker_color=GREEN, showlegend=legend, legendgroup="profit"
            ),
            row=row,
            col=2,
        )
        fig.add_trace(
            go.Bar(x=x, y=p["loss"], name="loss", marker_color=RED, showlegend=legend, legendgroup="loss"),
            row=row,
            col=2,
        )
        fig.update_xaxes(type="category", row=row)
    fig.update_layout(
        title=f"Entries and profit by hour, weekday and month (server time, {esc(rep.server_timezone)})",
        barmode="relative",
        hovermode="closest",
    )
    return fig


def results_figure(rep: RunReport) -> go.Figure:
    net = rep.trades["net"].to_numpy(float) if len(rep.trades) else np.empty(0)
    fig = go.Figure(go.Histogram(x=net, nbinsx=50, marker_color=BLUE, name="trades"))
    fig.update_layout(
        title="Trade results (net per trade)", xaxis_title=esc(rep.currency), yaxis_title="trades"
    )
    return fig


def holding_figure(rep: RunReport) -> go.Figure:
    hours = holding_times_s(rep) / 3600.0
    fig = go.Figure(go.Histogram(x=hours, nbinsx=50, marker_color=PURPLE, name="trades"))
    fig.update_layout(title="Holding time distribution", xaxis_title="hours", yaxis_title="trades")
    return fig


def thin(frame: pd.DataFrame, max_rows: int | None) -> tuple[pd.DataFrame, str]:
    """Every k-th row so that at most ``max_rows`` remain (None: all), and a title note saying so. The
    printed report draws dense marker clouds thinned: tens of thousands of vector markers make a PDF slow
    and huge, not clearer; the HTML draws every one."""
    if max_rows is None or len(frame) <= max_rows:
        return frame, ""
    step = -(-len(frame) // max_rows)
    return frame.iloc[::step], f" (every {step}th of {len(frame)} trades)"


def excursion_figure(rep: RunReport, max_points: int | None = None) -> go.Figure | None:
    full = excursion_frame(rep)
    if full is None:
        return None
    x, note = thin(full, max_points)
    fig = go.Figure()
    marker = {"size": 4, "opacity": 0.6}
    fig.add_trace(
        go.Scatter(x=x["mfe"], y=x["net"], mode="markers", name="MFE", marker=marker | {"color": GREEN})
    )
    fig.add_trace(
        go.Scatter(x=-x["mae"].abs(), y=x["net"], mode="markers", name="MAE", marker=marker | {"color": RED})
    )
    fig.update_layout(
        title=f"MFE and MAE per trade vs result ({esc(rep.currency)}){note}",
        xaxis_title="excursion",
        yaxis_title="net result",
        hovermode="closest",
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


def regime_figure(rep: RunReport) -> go.Figure | None:
    """One row per symbol; each stretch coloured by the regime its signals carried."""
    seg = regime_segments(rep)
    if seg.empty:
        return None
    fig = go.Figure()
    for i, (regime, g) in enumerate(seg.groupby("regime", sort=True)):
        start = pd.to_datetime(g["start"], utc=True)
        span = (pd.to_datetime(g["end"], utc=True) - start).dt.total_seconds() * 1000.0
        fig.add_trace(
            go.Bar(
                y=[esc(s) for s in g["symbol"]],
                x=span,
                base=start.dt.strftime("%Y-%m-%dT%H:%M:%S").tolist(),
                orientation="h",
                name=esc(regime),
                marker_color=PALETTE[i % len(PALETTE)],
            )
        )
    fig.update_layout(
        title="Regime timeline (label of each symbol's signals)",
        barmode="overlay",
        xaxis={"type": "date"},
        hovermode="closest",
    )
    return fig


def price_figure(c: Candles, trades: pd.DataFrame, max_trades: int | None = None) -> go.Figure:
    """Candles with every entry (triangle: up buy, down sell) and exit (x: green win, red loss)."""
    fig = go.Figure(
        go.Candlestick(
            x=c.time,
            open=c.open,
            high=c.high,
            low=c.low,
            close=c.close,
            name=f"{c.timeframe} bid",
            increasing_line_color="#26a69a",
            decreasing_line_color="#ef5350",
        )
    )
    t, note = thin(trades[trades["symbol"] == c.symbol], max_trades)
    for side, symbol, color in (("buy", "triangle-up", BLUE), ("sell", "triangle-down", "#ff7f0e")):
        s = t[t["direction"] == side]
        fig.add_trace(
            go.Scatter(
                x=s["open_time"],
                y=s["open_price"],
                mode="markers",
                name=f"{side} entry",
                marker={"symbol": symbol, "color": color, "size": 7},
            )
        )
    done = t[t["close_time"].notna()]
    win = done["net"].astype(float) >= 0
    for label, part, color in (("exit win", done[win], GREEN), ("exit loss", done[~win], RED)):
        fig.add_trace(
            go.Scatter(
                x=part["close_time"],
                y=part["close_price"],
                mode="markers",
                name=label,
                marker={"symbol": "x", "color": color, "size": 6},
            )
        )
    fig.update_layout(
        title=f"{esc(c.symbol)}: {c.timeframe} candles with entries and exits{note} (drag to zoom)",
        xaxis_rangeslider_visible=False,
        hovermode="closest",
    )
    return fig
