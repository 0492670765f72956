"""The optimization page of a stored study: one self-contained offline HTML file.

Sections: the passes table (sortable by any column, as MT5's optimization results), the parameter heatmap
around the best pass (criterion over two parameters, the others at the best pass's values), the
in-sample / out-of-sample scatter (forward or walk-forward passes), the stitched out-of-sample equity of a
walk-forward, and the robustness numbers (deflated Sharpe, PBO, Monte Carlo drawdown quantiles, stability).
Read from the results database only.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from sqlalchemy import Engine

from mt5tester.reports.content import Col, Table
from mt5tester.reports.html import Charts, table_html
from mt5tester.results import studies as store

TABLE_ROWS = 2000  # passes listed in the table, best first
COLUMNS = [
    ("net profit", "total_net_profit"),
    ("profit factor", "profit_factor"),
    ("expected payoff", "expected_payoff"),
    ("recovery factor", "recovery_factor"),
    ("Sharpe", "sharpe_ratio"),
    ("equity DD %", "equity_dd_relative_pct"),
    ("trades", "total_trades"),
]

_SORT_JS = """
document.querySelectorAll('table.sortable th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0];
  const asc = th.dataset.dir !== 'asc';
  th.closest('tr').querySelectorAll('th').forEach(h => delete h.dataset.dir);
  th.dataset.dir = asc ? 'asc' : 'desc';
  const key = r => { const t = r.cells[col].textContent; const n = parseFloat(t); return isNaN(n) ? t : n; };
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); }).forEach(r => body.appendChild(r));
}));
"""

_CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;
font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee;
cursor:pointer}th[data-dir=asc]::after{content:' ▲'}th[data-dir=desc]::after{content:' ▼'}
.scroll{max-height:480px;overflow:auto;display:inline-block}"""


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-2 and v != 0 else f"{v:.2f}"
    return html.escape(str(v))


def _table(headers: list[str], rows: list[list[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _chart(fig: go.Figure, div_id: str) -> str:
    fig.update_layout(height=420, margin={"l": 60, "r": 20, "t": 40, "b": 50})
    return str(fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id))


def _heatmap(data: dict[str, Any]) -> str:
    if "y" in data:
        fig = go.Figure(go.Heatmap(z=data["z"], x=data["xs"], y=data["ys"], colorscale="Viridis"))
        fig.update_layout(
            title="Criterion around the best pass", xaxis_title=data["x"], yaxis_title=data["y"]
        )
    else:
        fig = go.Figure(go.Scatter(x=data["xs"], y=data["z"], mode="lines+markers"))
        fig.update_layout(title="Criterion by parameter", xaxis_title=data["x"], yaxis_title="criterion")
    return _chart(fig, "heatmap")


def study_html(engine: Engine, study_id: str) -> str:
    study_id = store.resolve_study(engine, study_id)
    row = store.study_row(engine, study_id)
    summary = row["summary"] or {}
    rows = store.trials(engine, study_id)
    last = max((r["fold"] for r in rows), default=0)
    ins = sorted(
        (r for r in rows if r["fold"] == last and r["phase"] == "is"),
        key=lambda r: (r["score"] is None, -(r["score"] or 0.0), r["number"]),
    )
    paths = list((row["config"].get("optimize") or {}).get("parameters", {}))
    parts = [
        f"<h1>Optimization {html.escape(study_id)}</h1>",
        _table(
            ["status", "method", "criterion", "passes", "discarded", "space", "seed"],
            [
                [
                    row["status"],
                    row["method"],
                    row["criterion"],
                    summary.get("passes"),
                    summary.get("discarded"),
                    row["space_size"],
                    row["seed"],
                ]
            ],
        ),
        f"<h2>Passes (fold {last}, in-sample; click a column to sort)</h2>",
        "<div class='scroll'>"
        + _table(
            ["pass", *(p.split(".")[-1] for p in paths), "criterion", *(c for c, _ in COLUMNS)],
            [
                [
                    r["number"],
                    *(r["params"].get(p) for p in paths),
                    r["score"],
                    *(r["metrics"].get(k) for _, k in COLUMNS),
                ]
                for r in ins[:TABLE_ROWS]
            ],
            "sortable",
        )
        + "</div>",
    ]
    if summary.get("heatmap"):
        parts += ["<h2>Parameter heatmap</h2>", _heatmap(summary["heatmap"])]
    by_key = {(r["fold"], r["number"]): r for r in rows if r["phase"] == "is"}
    later = [r for r in rows if r["phase"] in ("forward", "oos")]
    if later:
        xs = [by_key[(r["fold"], r["number"])]["metrics"].get("total_net_profit") for r in later]
        ys = [r["metrics"].get("total_net_profit") for r in later]
        text = [f"fold {r['fold']} pass {r['number']} {json.dumps(r['params'])}" for r in later]
        fig = go.Figure(go.Scatter(x=xs, y=ys, mode="markers", text=text))
        fig.update_layout(
            title="In-sample vs out-of-sample net profit",
            xaxis_title="in-sample",
            yaxis_title="out-of-sample",
        )
        parts += ["<h2>In-sample / out-of-sample</h2>", _chart(fig, "isoos")]
    stitched = summary.get("stitched_oos")
    if stitched:
        t = pd.to_datetime([p[0] for p in stitched], utc=True)
        fig = go.Figure(go.Scatter(x=t, y=[p[1] for p in stitched], mode="lines"))
        fig.update_layout(title=f"Stitched out-of-sample equity (mean WFE {_fmt(summary.get('wfe_mean'))})")
        parts += ["<h2>Walk-forward</h2>", _chart(fig, "stitched")]
        folds = store.folds(engine, study_id)
        parts.append(
            _table(
                ["fold", "in-sample", "out-of-sample", "best params", "IS net", "OOS net", "WFE"],
                [
                    [
                        f["fold"],
                        f"{f['is_start']} .. {f['is_end']}",
                        f"{f['oos_start']} .. {f['oos_end']}",
                        json.dumps(f["best_params"]),
                        (f["is_metrics"] or {}).get("total_net_profit"),
                        (f["oos_metrics"] or {}).get("total_net_profit"),
                        f["wfe"],
                    ]
                    for f in folds
                ],
            )
        )
    rob = summary.get("robustness") or {}
    rrows: list[list[Any]] = [
        ["deflated Sharpe ratio (probability the true Sharpe > 0)", rob.get("dsr")],
        ["probability of backtest overfitting (CSCV)", rob.get("pbo")],
        ["stability: neighbours' mean criterion / best", rob.get("stability")],
    ]
    for name, label in (("mc_order", "trade order shuffled"), ("mc_skip", "10% of trades skipped")):
        for q, v in ((rob.get(name) or {}).get("max_dd_pct") or {}).items():
            rrows.append([f"Monte Carlo, {label}: max equity DD % at quantile {q}", v])
    parts += ["<h2>Robustness of the best pass</h2>", _table(["measure", "value"], rrows)]
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>Optimization {html.escape(study_id)}</title><style>{_CSS}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
        + "\n".join(parts)
        + f"<script>{_SORT_JS}</script></body></html>"
    )


def write_study_report(engine: Engine, study_id: str, out_dir: Path) -> Path:
    study_id = store.resolve_study(engine, study_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"study_{study_id}.html"
    path.write_text(study_html(engine, study_id), encoding="utf-8")
    return path


# -- the optimization section of `report compare` ---------------------------------------------------------
def _compared_passes(
    engine: Engine, run_ids: list[str], study_ids: list[str]
) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(study id, run id or None, pass row) per compared item: the pass each run re-ran in full, then
    the best pass (last fold, in-sample) of each ``--study``."""
    out: list[tuple[str, str | None, dict[str, Any]]] = []
    linked = store.trials_of_runs(engine, run_ids)
    for run_id in run_ids:
        if run_id in linked:
            out.append((linked[run_id]["study_id"], run_id, linked[run_id]))
    for sid in study_ids:
        full = store.resolve_study(engine, sid)
        rows = store.trials(engine, full)
        last = max((r["fold"] for r in rows), default=0)
        ranked = sorted(
            (r for r in rows if r["fold"] == last and r["phase"] == "is" and r["score"] is not None),
            key=lambda r: (-r["score"], r["number"]),
        )
        if ranked:
            out.append((full, None, ranked[0]))
    return out


def compare_table(engine: Engine, run_ids: list[str], study_ids: list[str]) -> tuple[Table, list[dict]]:
    """One row per compared pass: its study (method, criterion, passes), the pass and its params, its
    in-sample criterion and net profit, its forward / out-of-sample net profit when the study ran it
    there, and the study's robustness numbers. Also the pass rows (for their daily equity)."""
    rows: list[list[Any]] = []
    passes: list[dict] = []
    for sid, run_id, trial in _compared_passes(engine, run_ids, study_ids):
        study = store.study_row(engine, sid)
        summary = study["summary"] or {}
        rob = summary.get("robustness") or {}
        later = [
            r
            for r in store.trials(engine, sid)
            if r["fold"] == trial["fold"] and r["number"] == trial["number"] and r["phase"] != "is"
        ]
        m = trial["metrics"] or {}
        rows.append(
            [
                sid,
                run_id or "-",
                study["method"],
                study["criterion"],
                summary.get("passes"),
                f"{trial['fold']}/{trial['number']}",
                trial["params"],
                trial["score"],
                m.get("total_net_profit"),
                m.get("equity_dd_relative_pct"),
                m.get("total_trades"),
                (later[0]["metrics"] or {}).get("total_net_profit") if later else None,
                rob.get("dsr"),
                rob.get("pbo"),
                rob.get("stability"),
                summary.get("wfe_mean"),
            ]
        )
        passes.append(
            trial | {"label": f"{sid} pass {trial['number']}" + (f" (run {run_id})" if run_id else "")}
        )
    cols = [
        ("study", "text"),
        ("run", "text"),
        ("method", "text"),
        ("criterion", "text"),
        ("passes", "int"),
        ("fold/pass", "text"),
        ("params", "json"),
        ("criterion value", "ratio"),
        ("IS net profit", "money"),
        ("IS equity DD %", "pct"),
        ("IS trades", "int"),
        ("forward/OOS net profit", "money"),
        ("deflated Sharpe", "ratio"),
        ("PBO", "ratio"),
        ("stability", "ratio"),
        ("mean WFE", "ratio"),
    ]
    return Table("Optimization", [Col(n, k) for n, k in cols], rows), passes


def compare_section(engine: Engine, run_ids: list[str], study_ids: list[str], charts: Charts) -> str | None:
    """The optimization section of ``report compare``: the passes the compared runs re-ran and the best
    pass of each ``--study``, side by side, with their in-sample daily equity overlaid. None when no
    compared run comes from a study and no study is given."""
    table, passes = compare_table(engine, run_ids, study_ids)
    if not table.rows:
        return None
    fig = go.Figure()
    for p in passes:
        curve = p["curve"] or []
        t = pd.to_datetime([c[0] for c in curve], utc=True)
        fig.add_trace(go.Scatter(x=t, y=[c[1] for c in curve], name=p["label"], mode="lines"))
    fig.update_layout(title="In-sample daily equity of each pass")
    return table_html(table, sortable=True, heading=False) + charts.html(fig, 380)
