"""Big tables (trades, deals, orders) as JSON in the page, drawn a page at a time by a small self-written
script: every row is in the file (no cut), filters per column, sorting, page sizes up to "all"; no network.

Cells reach the page through ``textContent`` only, and the JSON is embedded with ``<``, ``>`` and ``&``
escaped, so a name or comment holding markup is shown as text and cannot end the script element.

The page's address fragment drives it (for links and headless tests): ``#trades.size=all`` shows every
trade, ``#trades.symbol=EURUSD&trades.direction=buy`` filters, ``#only=trades`` shows one section.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from mt5tester.reports.content import Table

PAGE_SIZES = (50, 100, 500, 1000)
DEFAULT_PAGE = 100
NUMERIC = {"money", "ratio", "pct", "price", "int", "num", "dur"}


def _cell(kind: str, v: Any) -> Any:
    """A JSON value: numbers stay numbers (sorting, formatting in the page), times become text."""
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, str):
        return v  # a label in a numeric or time column (totals rows)
    if kind == "time":
        return pd.Timestamp(v).strftime("%Y-%m-%d %H:%M:%S")
    if kind in NUMERIC and not isinstance(v, str):
        f = float(v)
        return int(f) if kind == "int" else round(f, 10)
    if isinstance(v, np.generic):
        return v.item()
    return v if isinstance(v, str | int | float) else str(v)


def time_text(values: pd.Series) -> list[str | None]:
    """UTC times as 'YYYY-MM-DD HH:MM:SS' (missing: None), by numpy in one pass (pandas' strftime formats
    each time in Python: 30k deal times cost 35 ms that way, 5 ms this way)."""
    naive = pd.DatetimeIndex(pd.to_datetime(values, utc=True)).tz_localize(None).to_numpy()
    raw = np.datetime_as_string(naive.astype("datetime64[s]"), unit="s").astype("S19")
    raw.view("S1").reshape(-1, 19)[:, 10] = b" "  # the ISO 'T' between date and time
    text: list[str | None] = raw.astype(str).tolist()
    if np.isnat(naive).any():
        text = [None if m else t for t, m in zip(text, np.isnat(naive).tolist(), strict=True)]
    return text


def column_values(kind: str, values: pd.Series) -> pd.Series:
    """One column as the page reads it: times as text, numbers as numbers (missing: null), the rest text."""
    if kind == "time":
        return pd.Series(time_text(values), index=values.index, dtype=object)
    if kind in NUMERIC:
        f = pd.to_numeric(values, errors="coerce").astype(float)
        return f.round().astype("Int64") if kind == "int" else f
    missing = values.isna()
    return values.astype(str).astype(object).where(~missing, None)


def grid_payload(grid_id: str, t: Table, frame: pd.DataFrame | None, filters: list[str]) -> str:
    """The JSON of one grid. ``frame`` (columns in ``t.columns`` order) is the fast path for big tables:
    pandas writes its rows in one call; else ``t.rows`` are converted cell by cell."""
    cols = [{"name": c.name, "kind": c.kind} for c in t.columns]
    rows_json = "[]"
    rows: list[list[Any]] = []
    if frame is not None and len(frame):
        converted = pd.DataFrame(
            {i: column_values(c.kind, frame.iloc[:, i]) for i, c in enumerate(t.columns)}, index=frame.index
        )
        rows_json = converted.to_json(orient="values", double_precision=10)
    elif frame is None:
        rows = [[_cell(c.kind, v) for c, v in zip(t.columns, r, strict=True)] for r in t.rows]
        rows_json = json.dumps(rows, separators=(",", ":"), allow_nan=False, default=str)
    total = [_cell(c.kind, v) for c, v in zip(t.columns, t.total, strict=True)] if t.total else None
    payload = {"id": grid_id, "columns": cols, "rows": "@ROWS@", "filters": filters, "total": total}
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False, default=str)
    text = text.replace('"@ROWS@"', rows_json, 1)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def grid_html(
    grid_id: str, t: Table, frame: pd.DataFrame | None = None, filters: list[str] | None = None
) -> str:
    """A placeholder the script fills, with its data; the title and note are the caller's."""
    payload = grid_payload(grid_id, t, frame, filters or [])
    return (
        f"<div class='grid' id='grid-{grid_id}' data-grid='{grid_id}'></div>"
        f"<script type='application/json' class='grid-data'>{payload}</script>"
    )


# Reads every .grid-data JSON, builds filters, pager and table. Formatting mirrors data.fmt.
GRID_JS = r"""
(function () {
  var hash = {};
  (location.hash || '').replace(/^#/, '').split('&').forEach(function (kv) {
    if (!kv) { return; }
    var i = kv.indexOf('=');
    hash[decodeURIComponent(i < 0 ? kv : kv.slice(0, i))] = i < 0 ? '' : decodeURIComponent(kv.slice(i + 1));
  });
  if (hash.only) {
    document.querySelectorAll('main > section').forEach(function (s) {
      if (s.id !== hash.only) { s.style.display = 'none'; }
    });
  }
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function fmt(kind, v) {
    if (v === null || v === undefined) { return '-'; }
    if (typeof v === 'string') { return v; }
    if (kind === 'money' || kind === 'ratio') { return v.toFixed(2); }
    if (kind === 'pct') { return v.toFixed(2) + '%'; }
    if (kind === 'price') { return String(parseFloat(v.toPrecision(10))); }
    if (kind === 'int') { return String(Math.round(v)); }
    if (kind === 'dur') {
      var s = Math.round(v), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600);
      var t = h + ':' + pad(Math.floor(s % 3600 / 60)) + ':' + pad(s % 60);
      return d ? d + (d === 1 ? ' day, ' : ' days, ') + t : t;
    }
    return String(v);
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  document.querySelectorAll('script.grid-data').forEach(function (node) {
    var g = JSON.parse(node.textContent), box = node.previousElementSibling, id = g.id;
    var numeric = {money: 1, ratio: 1, pct: 1, price: 1, int: 1, num: 1, dur: 1};
    var state = {page: 0, size: __PAGE__, sort: -1, asc: true, filters: {}};
    var size = hash[id + '.size'];
    if (size === 'all') { state.size = 0; } else if (size) { state.size = parseInt(size, 10) || state.size; }
    var bar = el('div', 'grid-bar'), selects = {};
    g.filters.forEach(function (name) {
      var col = g.columns.findIndex(function (c) { return c.name === name; });
      if (col < 0) { return; }
      var seen = {}, values = [];
      g.rows.forEach(function (r) {
        var v = r[col] === null ? '-' : String(r[col]);
        if (!seen[v]) { seen[v] = 1; values.push(v); }
      });
      values.sort();
      var label = el('label', 'grid-filter', name + ' '), sel = el('select');
      sel.setAttribute('data-filter', name);
      sel.appendChild(el('option', '', 'all')).value = '';
      values.forEach(function (v) { sel.appendChild(el('option', '', v)).value = v; });
      var wanted = hash[id + '.' + name];
      if (wanted !== undefined) { sel.value = wanted; state.filters[col] = wanted; }
      sel.addEventListener('change', function () {
        if (sel.value) { state.filters[col] = sel.value; } else { delete state.filters[col]; }
        state.page = 0; draw();
      });
      label.appendChild(sel); bar.appendChild(label); selects[name] = sel;
    });
    var sizeSel = el('select', 'grid-size');
    [__SIZES__].concat([0]).forEach(function (n) {
      sizeSel.appendChild(el('option', '', n ? String(n) : 'all')).value = String(n);
    });
    sizeSel.value = String(state.size);
    sizeSel.addEventListener('change', function () {
      state.size = parseInt(sizeSel.value, 10); state.page = 0; draw();
    });
    var sizeLabel = el('label', 'grid-filter', 'rows per page ');
    sizeLabel.appendChild(sizeSel); bar.appendChild(sizeLabel);
    var prev = el('button', '', '\u2039 prev'), next = el('button', '', 'next \u203a');
    var count = el('span', 'grid-count');
    prev.addEventListener('click', function () { state.page -= 1; draw(); });
    next.addEventListener('click', function () { state.page += 1; draw(); });
    bar.appendChild(prev); bar.appendChild(next); bar.appendChild(count);
    box.appendChild(bar);
    var wrap = el('div', 'scroll'), table = el('table', 'sortable'), thead = el('thead'), hr = el('tr');
    g.columns.forEach(function (c, i) {
      var th = el('th', '', c.name);
      th.addEventListener('click', function () {
        state.asc = state.sort === i ? !state.asc : true; state.sort = i; state.page = 0; draw();
      });
      hr.appendChild(th);
    });
    thead.appendChild(hr); table.appendChild(thead);
    var tbody = el('tbody'); table.appendChild(tbody);
    if (g.total) {
      var tf = el('tfoot'), tr = el('tr');
      g.columns.forEach(function (c, i) {
        tr.appendChild(el('td', numeric[c.kind] ? 'n' : '', fmt(c.kind, g.total[i])));
      });
      tf.appendChild(tr); table.appendChild(tf);
    }
    wrap.appendChild(table); box.appendChild(wrap);
    function rowsNow() {
      var keys = Object.keys(state.filters), out = g.rows;
      if (keys.length) {
        out = out.filter(function (r) {
          return keys.every(function (k) {
            return (r[k] === null ? '-' : String(r[k])) === state.filters[k];
          });
        });
      }
      if (state.sort >= 0) {
        var k = state.sort, sign = state.asc ? 1 : -1;
        out = out.slice().sort(function (a, b) {
          var x = a[k], y = b[k];
          if (x === y) { return 0; }
          if (x === null) { return 1; }
          if (y === null) { return -1; }
          return (x < y ? -1 : 1) * sign;
        });
      }
      return out;
    }
    function draw() {
      var rows = rowsNow(), n = rows.length, size = state.size || n || 1;
      var pages = Math.max(1, Math.ceil(n / size));
      state.page = Math.min(Math.max(0, state.page), pages - 1);
      var a = state.page * size, b = Math.min(n, a + size), frag = document.createDocumentFragment();
      for (var i = a; i < b; i++) {
        var tr = el('tr');
        for (var j = 0; j < g.columns.length; j++) {
          var c = g.columns[j];
          tr.appendChild(el('td', numeric[c.kind] ? 'n' : '', fmt(c.kind, rows[i][j])));
        }
        frag.appendChild(tr);
      }
      tbody.textContent = '';
      tbody.appendChild(frag);
      prev.disabled = state.page === 0; next.disabled = state.page >= pages - 1;
      count.textContent = (n ? (a + 1) + '\u2013' + b : '0') + ' of ' + n +
        (n !== g.rows.length ? ' (filtered from ' + g.rows.length + ')' : '');
      box.setAttribute('data-shown', String(b - a));
      box.setAttribute('data-matching', String(n));
    }
    draw();
  });
})();
""".replace("__PAGE__", str(DEFAULT_PAGE)).replace("__SIZES__", ", ".join(str(n) for n in PAGE_SIZES))
