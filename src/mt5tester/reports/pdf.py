"""The PDF report of one run: the HTML report's content with static charts (matplotlib) on A4, from the DB.

reportlab lays out the pages (pure Python, no browser); tables repeat their header on every page and
long ones are cut to their first rows plus the totals of all. Text goes into reportlab's paragraph markup
only through ``xml_escape``, so names and comments are printed as they are.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    Flowable,
    Image,
    KeepTogether,
    PageBreak,
    Paragraph,
    Preformatted,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)
from reportlab.platypus import Table as RlTable
from sqlalchemy import Engine

from mt5tester.reports.content import (
    MFE_MAE_NOTE,
    MONTHS,
    RunReport,
    Table,
    breakdown,
    config_text,
    curve,
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
    strategies_table,
    summary_rows,
    trades_table,
)
from mt5tester.reports.html import safe_filename

PDF_TRADES_LIMIT = 200  # first trades printed; the totals row covers all of them
PDF_ERRORS_LIMIT = 100
CONFIG_LINES_LIMIT = 400
PAGE_W, PAGE_H = A4
MARGIN = 14 * mm
WIDTH = PAGE_W - 2 * MARGIN
NUMERIC = {"money", "ratio", "pct", "price", "int", "num", "dur"}


def _fonts() -> tuple[str, str]:
    """DejaVu Sans from matplotlib's own data (full Unicode: names in any script print), else Helvetica."""
    base = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    try:
        if "DejaVuSans" not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont("DejaVuSans", str(base / "DejaVuSans.ttf")))
            pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(base / "DejaVuSans-Bold.ttf")))
        return "DejaVuSans", "DejaVuSans-Bold"
    except Exception:
        return "Helvetica", "Helvetica-Bold"


class Styles:
    def __init__(self) -> None:
        self.font, self.bold = _fonts()
        ss = getSampleStyleSheet()
        self.h1 = ParagraphStyle("h1", parent=ss["Heading1"], fontName=self.bold, fontSize=16, spaceAfter=6)
        self.h2 = ParagraphStyle(
            "h2", parent=ss["Heading2"], fontName=self.bold, fontSize=12.5, spaceBefore=8
        )
        self.h3 = ParagraphStyle("h3", parent=ss["Heading3"], fontName=self.bold, fontSize=10, spaceBefore=6)
        self.body = ParagraphStyle(
            "body", parent=ss["BodyText"], fontName=self.font, fontSize=8.5, leading=10.5
        )
        self.note = ParagraphStyle(
            "note", parent=self.body, textColor=colors.HexColor("#555555"), fontSize=7.5
        )
        self.cell = ParagraphStyle("cell", parent=self.body, fontSize=6.8, leading=8)
        self.cell_r = ParagraphStyle("cell_r", parent=self.cell, alignment=2)
        self.cell_h = ParagraphStyle("cell_h", parent=self.cell, fontName=self.bold)
        self.mono = ParagraphStyle("mono", parent=self.body, fontName="Courier", fontSize=6.5, leading=7.6)


def P(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(xml_escape(text), style)


def table_flowables(t: Table, st: Styles, limit: int | None = None, heading: bool = True) -> list[Flowable]:
    shown = t.head(limit) if limit is not None else t
    out: list[Flowable] = [P(t.title, st.h3)] if heading else []
    if t.note:
        out.append(P(t.note, st.note))
    if not shown.rows and shown.total is None:
        if not t.note:
            out.append(P("none", st.note))
        return out
    head = [P(c.name, st.cell_h) for c in t.columns]

    def row(values: list[Any]) -> list[Paragraph]:
        return [
            P(fmt(c.kind, v), st.cell_r if c.kind in NUMERIC else st.cell)
            for c, v in zip(t.columns, values, strict=True)
        ]

    data = [head, *[row(r) for r in shown.rows]]
    if shown.total is not None:
        data.append(row(shown.total))
    tbl = RlTable(data, repeatRows=1, hAlign="LEFT", colWidths=_col_widths(t, st))
    style = [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#b8c2cc")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e6ecf2")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.2),
        ("LEFTPADDING", (0, 0), (-1, -1), 2.5),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2.5),
    ]
    if shown.total is not None:
        style.append(("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#f2f2f2")))
    tbl.setStyle(TableStyle(style))
    out.append(tbl)
    if shown.more:
        out.append(
            P(f"… {shown.more} more rows in the results database (the totals row covers all)", st.note)
        )
    return out


def _col_widths(t: Table, st: Styles) -> list[float] | None:
    """Numbers get their full width; times the width of their date (the time wraps under it); text
    columns share what is left, the widest narrowed first (their paragraphs wrap), never below the
    widest word of their header."""
    if not t.columns:
        return None
    sample = t.rows[:200] + ([t.total] if t.total is not None else [])
    pad = 7.0
    size = st.cell.fontSize
    widths: list[float] = []
    floors: list[float] = []
    for i, c in enumerate(t.columns):
        head = max(pdfmetrics.stringWidth(w, st.bold, size) for w in c.name.split() or [""]) + pad
        texts = [fmt(c.kind, r[i]) for r in sample]
        if c.kind == "time":
            texts = [x.split(" ")[0] for x in texts]
        natural = max([head, *(pdfmetrics.stringWidth(x, st.font, size) + pad for x in texts)])
        widths.append(natural)
        floors.append(natural if c.kind != "text" and c.kind != "json" else head)
    cap = max(widths)
    while cap > 20 and sum(max(min(w, cap), f) for w, f in zip(widths, floors, strict=True)) > WIDTH:
        cap -= 2
    return [max(min(w, cap), f) for w, f in zip(widths, floors, strict=True)]


def kv_flowable(rows: list[tuple[str, str]], st: Styles, columns: int = 1) -> Flowable:
    """label/value pairs, in ``columns`` pairs per line (2 for the MT5 Results block, as MT5 lays it out)."""
    per = (len(rows) + columns - 1) // columns
    data = []
    for i in range(per):
        line: list[Paragraph] = []
        for c in range(columns):
            k = c * per + i
            label, value = rows[k] if k < len(rows) else ("", "")
            line += [P(label, st.cell_h), P(value, st.cell_r if columns > 1 else st.cell)]
        data.append(line)
    w = WIDTH / columns
    tbl = RlTable(
        data,
        colWidths=[w * 0.58, w * 0.42] * columns if columns > 1 else [50 * mm, WIDTH - 50 * mm],
        hAlign="LEFT",
    )
    tbl.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#b8c2cc")),
                ("TOPPADDING", (0, 0), (-1, -1), 1.2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.2),
                *[
                    ("BACKGROUND", (2 * c, 0), (2 * c, -1), colors.HexColor("#eef2f6"))
                    for c in range(columns)
                ],
            ]
        )
    )
    return tbl


# --- static charts ----------------------------------------------------------------------------------------
def _image(fig: Figure, height_mm: float) -> Image:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150)
    plt.close(fig)
    buf.seek(0)
    return Image(buf, width=WIDTH, height=height_mm * mm)


def _fig(height_mm: float) -> tuple[Figure, Any]:
    fig, ax = plt.subplots(figsize=(WIDTH / 72.0, height_mm / 25.4), layout="constrained")
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=7)
    return fig, ax


def _date_axis(ax: Any) -> None:
    loc = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))


def charts(rep: RunReport, by_strategy: Table, by_symbol: Table) -> dict[str, Flowable]:
    out: dict[str, Flowable] = {}
    c = curve(rep)
    t = c["time"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()

    fig, ax = _fig(70)
    ax.step(t, c["balance"], where="post", lw=0.9, label="balance", color="#1f77b4")
    ax.plot(t, c["equity"], lw=0.6, label="equity", color="#2ca02c")
    ax.set_title(f"Balance and equity ({rep.currency})", fontsize=9)
    ax.legend(fontsize=7)
    _date_axis(ax)
    out["equity"] = _image(fig, 70)

    fig, ax = _fig(45)
    dd = drawdown_pct(c["equity"], rep.deposit)
    ax.fill_between(t, dd, 0, color="#d62728", alpha=0.45, lw=0)
    ax.plot(t, dd, color="#d62728", lw=0.5)
    ax.set_title("Equity drawdown from the running peak (%)", fontsize=9)
    _date_axis(ax)
    out["drawdown"] = _image(fig, 45)

    m = monthly_returns(rep)
    years = sorted(m["year"].unique().tolist()) if len(m) else []
    z = np.full((max(len(years), 1), 12), np.nan)
    for year, month, pct in zip(m["year"].tolist(), m["month"].tolist(), m["pct"].tolist(), strict=True):
        z[years.index(year), int(month) - 1] = pct
    h = 18 + 9 * max(len(years), 1)
    fig, ax = _fig(h)
    ax.grid(False)
    lim = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    ax.imshow(z, cmap="RdYlGn", vmin=-lim, vmax=lim, aspect="auto")
    for (i, j), v in np.ndenumerate(z):
        if not np.isnan(v):
            ax.text(j, i, f"{v:.2f}%", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(12), MONTHS)
    ax.set_yticks(range(len(years)), [str(y) for y in years])
    ax.set_title("Monthly returns (% of the previous month-end equity)", fontsize=9)
    out["monthly"] = _image(fig, h)

    fig, axes = plt.subplots(1, 2, figsize=(WIDTH / 72.0, 55 / 25.4), layout="constrained")
    for ax, tbl, title in (
        (axes[0], by_strategy, "net profit per strategy"),
        (axes[1], by_symbol, "per symbol"),
    ):
        names = [str(r[0]) for r in tbl.rows]
        nets = [float(r[2]) for r in tbl.rows]
        ax.bar(range(len(names)), nets, color=["#2ca02c" if v >= 0 else "#d62728" for v in nets])
        ax.set_xticks(range(len(names)), names, fontsize=6.5, rotation=20, ha="right")
        ax.tick_params(labelsize=7)
        ax.set_title(title, fontsize=9)
        ax.grid(True, alpha=0.3, axis="y")
    out["breakdown"] = _image(fig, 55)

    fig, axes = plt.subplots(1, 2, figsize=(WIDTH / 72.0, 50 / 25.4), layout="constrained")
    net = rep.trades["net"].to_numpy(float) if len(rep.trades) else np.empty(0)
    axes[0].hist(net, bins=50, color="#1f77b4")
    axes[0].set_title(f"trade results (net, {rep.currency})", fontsize=9)
    axes[1].hist(holding_times_s(rep) / 3600.0, bins=50, color="#9467bd")
    axes[1].set_title("holding time (hours)", fontsize=9)
    for ax in axes:
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
    out["trades"] = _image(fig, 50)

    x = excursion_frame(rep)
    if x is not None:
        fig, ax = _fig(55)
        ax.scatter(x["mfe"], x["net"], s=5, color="#2ca02c", label="MFE")
        ax.scatter(-x["mae"].abs(), x["net"], s=5, color="#d62728", label="MAE")
        ax.set_title("MFE and MAE per trade vs result", fontsize=9)
        ax.legend(fontsize=7)
        out["excursions"] = _image(fig, 55)

    stages = funnel_stages(rep)
    if stages:
        fig, ax = _fig(40)
        labels = [s for s, _ in stages][::-1]
        values = [n for _, n in stages][::-1]
        ax.barh(labels, values, color="#636efa")
        for i, v in enumerate(values):
            ax.text(v, i, f" {v}", va="center", fontsize=7)
        ax.set_title("Signal lifecycle", fontsize=9)
        out["funnel"] = _image(fig, 40)
    return out


def _compact_trades(rep: RunReport) -> Table:
    """The trades table without commission and swap (kept in net) and without an empty regime column,
    so it fits portrait A4."""
    t = trades_table(rep)
    drop = {"commission", "swap"} | ({"regime"} if rep.trades["regime"].isna().all() else set())
    keep = [i for i, c in enumerate(t.columns) if c.name not in drop]

    def pick(row: list[Any]) -> list[Any]:
        return [row[i] for i in keep]

    return Table(
        t.title,
        [t.columns[i] for i in keep],
        [pick(r) for r in t.rows],
        note=t.note + "; commission and swap are in the HTML report",
        total=pick(t.total) if t.total is not None else None,
    )


# --- the document -----------------------------------------------------------------------------------------
def build_story(rep: RunReport, st: Styles) -> list[Flowable]:
    by_strategy = breakdown(rep, "strategy", "Per strategy")
    by_symbol = breakdown(rep, "symbol", "Per symbol")
    img = charts(rep, by_strategy, by_symbol)
    s: list[Flowable] = [P(f"Backtest report {rep.run_id}", st.h1)]
    s += [P("Summary", st.h2), kv_flowable(summary_rows(rep), st)]
    s += [P("MT5 report metrics", st.h2), kv_flowable(metrics_rows(rep.metrics), st, columns=2)]
    s += [PageBreak(), P("Balance, equity, drawdown", st.h2), img["equity"], img["drawdown"]]
    s += [KeepTogether([P("Monthly returns", st.h2), img["monthly"]])]
    s += [PageBreak(), P("Per strategy, symbol and regime", st.h2), img["breakdown"]]
    s += (
        table_flowables(by_strategy, st)
        + table_flowables(by_symbol, st)
        + table_flowables(regime_breakdown(rep), st)
    )
    s += [P("Trades", st.h2), img["trades"]]
    s += [img["excursions"]] if "excursions" in img else [P(MFE_MAE_NOTE, st.note)]
    s += [Spacer(1, 4), *table_flowables(_compact_trades(rep), st, limit=PDF_TRADES_LIMIT)]
    s += [PageBreak(), P("Lifecycle", st.h2)] + ([img["funnel"]] if "funnel" in img else [])
    s += table_flowables(funnel_table(rep), st) + table_flowables(signal_status_table(rep), st)
    s += table_flowables(rejections_table(rep), st)
    s += [P("Data health", st.h2), *table_flowables(health_table(rep), st, heading=False)]
    s += [
        P("Strategy errors", st.h2),
        *table_flowables(errors_table(rep), st, limit=PDF_ERRORS_LIMIT, heading=False),
    ]
    s += [P("Strategies and effective config", st.h2), *table_flowables(strategies_table(rep), st)]
    lines = config_text(rep).splitlines()
    shown = "\n".join(lines[:CONFIG_LINES_LIMIT]) + (
        f"\n… {len(lines) - CONFIG_LINES_LIMIT} more lines" if len(lines) > CONFIG_LINES_LIMIT else ""
    )
    s += [P("Effective config", st.h3), Preformatted(shown, st.mono, maxLineLength=150)]
    return s


def _footer(run_id: str, font: str) -> Any:
    def draw(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(font, 7)
        canvas.setFillColor(colors.HexColor("#666666"))
        canvas.drawString(MARGIN, 8 * mm, f"mt5tester run {run_id}")
        canvas.drawRightString(PAGE_W - MARGIN, 8 * mm, f"page {doc.page}")
        canvas.restoreState()

    return draw


def write_pdf_report(engine: Engine, run_id: str, out_dir: Path) -> Path:
    """Write ``report_<run_id>.pdf`` (A4) into ``out_dir`` from the DB; StorageError for an unknown run."""
    rep = load_run(engine, run_id)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"report_{safe_filename(run_id)}.pdf"
    st = Styles()
    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + 4 * mm,
        title=f"mt5tester run {run_id}",
        author="mt5tester",
    )
    footer = _footer(run_id, st.font)
    doc.build(build_story(rep, st), onFirstPage=footer, onLaterPages=footer)
    return path
