"""Charts in a report page: each figure spec (``reports.figures``) embedded as JSON beside an empty div, and
one script, ``CHARTS_JS``, that draws them all with plotly.js. The HTML runs it when the page loads; the PDF
printer runs the same function on the same divs (``reports.pdf``), so there is one way to draw a chart.

The JSON is written here, not by plotly's Python figure objects: numeric arrays as plotly.js typed arrays
(``{"dtype": "f8", "bdata": base64}``, what plotly's own encoder writes), times as UTC text, and the
``plotly_white`` template once per page instead of a copy inside every figure.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

TEMPLATE = "plotly_white"
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
STATIC_CONFIG = {"staticPlot": True, "responsive": False}
PRINT_WIDTH = 1040  # px: an A4 landscape page at the print margins

# Draws every chart under ``root``; resolves when plotly has drawn them all (the PDF prints after that).
CHARTS_JS = """
window.mt5Charts = function (root) {
  var node = document.getElementById('plotly-template');
  var template = node ? JSON.parse(node.textContent) : undefined, drawn = [];
  (root || document).querySelectorAll('script.chart-data').forEach(function (data) {
    var f = JSON.parse(data.textContent), div = document.getElementById(data.getAttribute('data-chart'));
    if (template && !f.layout.template) { f.layout.template = template; }
    drawn.push(Plotly.newPlot(div, f.data, f.layout, f.config));
  });
  return Promise.all(drawn);
};
"""


def _safe(text: str) -> str:
    """JSON for a <script> element: no '<', '>' or '&' that could end it or open markup."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@functools.cache
def template_json() -> str:
    """plotly's ``plotly_white`` template, written once per page (each figure applies it in the page)."""
    return _safe(json.dumps(pio.templates[TEMPLATE].to_plotly_json(), separators=(",", ":")))


def _times(values: np.ndarray) -> list[str | None]:
    """UTC times as plotly.js reads them ('2024-01-02 10:00:00'); missing times as null (a gap)."""
    text = np.datetime_as_string(values.astype("datetime64[s]"), unit="s")
    out: list[str | None] = [s.replace("T", " ") for s in text.tolist()]
    if np.isnat(values).any():
        out = [None if m else s for s, m in zip(out, np.isnat(values).tolist(), strict=True)]
    return out


def _array(values: np.ndarray) -> Any:
    if values.dtype.kind == "M":
        return _times(values)
    if values.dtype.kind in "fiub" and values.ndim == 1:
        data = values.astype("<f8", copy=False)
        return {"dtype": "f8", "bdata": base64.b64encode(data.tobytes()).decode("ascii")}
    return [_plain(v) for v in values.tolist()]


def _plain(v: Any) -> Any:
    """A value of a figure spec as JSON can hold it."""
    if isinstance(v, pd.Series | pd.Index):
        if isinstance(v.dtype, pd.DatetimeTZDtype):
            return _times(pd.DatetimeIndex(v).tz_convert("UTC").tz_localize(None).to_numpy())
        return _array(v.to_numpy())
    if isinstance(v, np.ndarray):
        return _array(v)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, pd.Timestamp | dt.datetime):
        ts = pd.Timestamp(v)
        return (ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and v != v:
        return None
    return v


def figure_json(fig: dict[str, Any]) -> str:
    return _safe(json.dumps(_plain(fig), separators=(",", ":"), allow_nan=False))


class Charts:
    """Collects figures as divs with their JSON (plotly.js and the template are included once by ``page``).
    ``static``: the printed (PDF) page, charts at a fixed width without hover or zoom."""

    def __init__(self, static: bool = False) -> None:
        self.count = 0
        self.static = static

    def html(self, fig: dict[str, Any] | go.Figure, height: int = 380) -> str:
        """A figure spec (or a plotly Figure, drawn with the page's template) as a chart of the page."""
        self.count += 1
        spec: dict[str, Any] = fig.to_plotly_json() if isinstance(fig, go.Figure) else dict(fig)
        layout = dict(spec.get("layout") or {})
        layout.pop("template", None)
        layout.update(height=height, margin={"l": 60, "r": 20, "t": 50, "b": 40})
        layout.setdefault("hovermode", "x")
        config: dict[str, Any] = dict(PLOTLY_CONFIG)
        if self.static:
            layout["width"] = PRINT_WIDTH
            config = dict(STATIC_CONFIG)
        div_id = f"chart-{self.count}"
        text = figure_json({"data": spec.get("data") or [], "layout": layout, "config": config})
        return (
            f'<div class=\'chart\'><div id="{div_id}" class="plotly-graph-div" '
            f'style="height:{height}px; width:100%;"></div>'
            f"<script type='application/json' class='chart-data' data-chart='{div_id}'>{text}</script></div>"
        )
