"""Runs side by side in one self-contained HTML file: MT5 metrics, overlaid equity curves, config diffs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import plotly.graph_objects as go
from sqlalchemy import Engine

from mt5tester.reports.content import (
    Col,
    RunReport,
    Table,
    config_diff,
    curve,
    downsample,
    drawdown_pct,
    load_run,
    metrics_rows,
)
from mt5tester.reports.html import Charts, esc, kv_html, page, safe_filename, table_html
from mt5tester.results import studies as store


def _label(rep: RunReport) -> str:
    names = ", ".join(rep.strategies["name"].astype(str)) if len(rep.strategies) else "-"
    return f"{rep.run_id} ({names})"


def metrics_side_by_side(reps: list[RunReport]) -> str:
    """MT5's Results block (report order and formats), one value column per run."""
    columns = [metrics_rows(r.metrics) for r in reps]
    head = "<th>metric</th>" + "".join(f"<th>{esc(r.run_id)}</th>" for r in reps)
    body = []
    for i, (label, _) in enumerate(columns[0]):
        cells = "".join(f"<td class='n'>{esc(col[i][1])}</td>" for col in columns)
        body.append(f"<tr><th>{esc(label)}</th>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def mode_table(reps: list[RunReport]) -> Table:
    """Per run and trading mode (signals.trading_mode): signals, approved, rejected and the net of the
    deals those signals made, so two modes' runs on the same data show where they differ."""
    rows: list[list[object]] = []
    for rep in reps:
        sig = rep.signals
        if sig.empty:
            continue
        modes = sig["trading_mode"] if "trading_mode" in sig.columns else None
        label = (
            modes.fillna("(none)").astype(str)
            if modes is not None
            else sig["signal_id"].map(lambda _: "(none)")
        )
        by_signal = dict(zip(sig["signal_id"], label, strict=True))
        deals = rep.deals
        net: dict[str, float] = {}
        if len(deals) and "signal_id" in deals.columns:
            money = deals["profit"] + deals["commission"] + deals["swap"]
            net = {
                str(k): float(v) for k, v in money.groupby(deals["signal_id"].map(by_signal)).sum().items()
            }
        for mode in dict.fromkeys(label):
            part = sig[label == mode]
            rows.append(
                [
                    rep.run_id,
                    (rep.run.get("config") or {}).get("trading_mode") or "(none)",
                    mode,
                    len(part),
                    int((part["status"] != "rejected").sum()),
                    int((part["status"] == "rejected").sum()),
                    float(net.get(mode, 0.0)),
                ]
            )
    columns = ["run", "trading_mode", "mode of the signal", "signals", "approved", "rejected", "net"]
    kinds = ["text", "text", "text", "int", "int", "int", "money"]
    return Table("Trading modes", [Col(n, k) for n, k in zip(columns, kinds, strict=True)], rows)


def render_compare_html(
    reps: list[RunReport], optimization: Callable[[Charts], str | None] | None = None
) -> str:
    """``optimization(charts)``: the optimization section (reports/optimize.py ``compare_section``), or
    None when no compared run comes from a study; with no runs (``--study`` only) it is the page."""
    ch = Charts()
    eq = go.Figure()
    dd = go.Figure()
    for rep in reps:
        c = curve(rep)
        t, (e, d) = downsample(
            c["time"], [c["equity"].to_numpy(float), drawdown_pct(c["equity"], rep.deposit)]
        )
        eq.add_trace(go.Scatter(x=t, y=e, name=esc(rep.run_id), line={"width": 1.2}))
        dd.add_trace(go.Scatter(x=t, y=d, name=esc(rep.run_id), line={"width": 1}))
    eq.update_layout(title="Equity (overlaid)")
    dd.update_layout(title="Equity drawdown from the running peak (%)")
    runs = kv_html(
        [(r.run_id, f"{r.run['status']}, {_label(r)}, started {r.run['started_at']}") for r in reps]
    )
    sections = (
        [
            ("runs", "Runs", runs),
            ("metrics", "MT5 report metrics", metrics_side_by_side(reps)),
            ("equity", "Equity", ch.html(eq, 440) + ch.html(dd, 320)),
            ("modes", "Trading modes", table_html(mode_table(reps), heading=False)),
            ("config", "Config differences", table_html(config_diff(reps), heading=False)),
        ]
        if reps
        else []
    )
    opt = optimization(ch) if optimization is not None else None
    if opt is not None:
        sections.append(("optimization", "Optimization", opt))
    body = "".join(f"<section id='{a}'><h2>{esc(t)}</h2>{c}</section>" for a, t, c in sections)
    ids = " vs ".join(r.run_id for r in reps) or "studies"
    return page(
        f"mt5tester compare {ids}",
        f"Run comparison <code>{esc(ids)}</code>",
        [(a, t) for a, t, _ in sections],
        body,
        ch.count,
    )


def write_compare_report(
    engine: Engine, run_ids: list[str], out_dir: Path, study_ids: Sequence[str] = ()
) -> Path:
    """Write ``compare_<ids>.html``; StorageError if any run or study is unknown. Runs that re-ran an
    optimizer pass, and ``study_ids``, add the optimization section."""
    from mt5tester.reports.optimize import compare_section

    studies = [store.resolve_study(engine, s) for s in study_ids]
    reps = [load_run(engine, r) for r in run_ids]
    name = "_".join([*(safe_filename(r) for r in run_ids), *(f"study_{s}" for s in studies)])
    if len(name) > 120:
        name = f"{len(run_ids)}runs_" + hashlib.sha1(name.encode()).hexdigest()[:12]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"compare_{name}.html"
    section = partial(compare_section, engine, [r.run_id for r in reps], studies)
    path.write_text(render_compare_html(reps, section), encoding="utf-8")
    return path
