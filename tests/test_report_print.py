"""Chart specs as the page embeds them (reports.charts), the subplot grid laid out as plotly's make_subplots
lays it out, and the PDF printer over the DevTools pipe failing loudly (reports.pdf, reports.chromium)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

from mt5tester.errors import ConfigError
from mt5tester.reports.charts import Charts, figure_json
from mt5tester.reports.chromium import BrowserError
from mt5tester.reports.figures import subplots
from mt5tester.reports.grid import time_text
from mt5tester.reports.html import PageParts
from mt5tester.reports.pdf import PdfPrinter


def test_figure_json_numbers_as_plotly_typed_arrays_times_as_utc_text_and_markup_escaped() -> None:
    times = pd.Series(pd.to_datetime(["2024-07-01 21:30:00+03:00", None], utc=True))
    spec = {
        "data": [{"type": "scatter", "x": times, "y": np.array([1.5, 2.5]), "name": "a</script><b>&"}],
        "layout": {"title": {"text": "t"}, "z": np.float64(2.0), "gap": float("nan")},
    }

    text = figure_json(spec)

    plotly_y = json.loads(go.Figure(go.Scatter(y=np.array([1.5, 2.5]))).to_json())["data"][0]["y"]
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {
        "data": [
            {
                "type": "scatter",
                "x": ["2024-07-01 18:30:00", None],
                "y": plotly_y,  # what plotly's own encoder writes: {"dtype": "f8", "bdata": ...}
                "name": "a</script><b>&",
            }
        ],
        "layout": {"title": {"text": "t"}, "z": 2.0, "gap": None},
    }
    assert plotly_y == {"dtype": "f8", "bdata": "AAAAAAAA+D8AAAAAAAAEQA=="}


def test_charts_embed_one_div_and_its_json_per_figure_fixed_width_in_print() -> None:
    screen, printed = Charts(), Charts(static=True)
    fig = {"data": [], "layout": {"title": {"text": "x"}}}

    a = screen.html(dict(fig), 300)
    b = printed.html(go.Figure(layout={"title": {"text": "x"}}), 300)  # a plotly Figure is taken too

    assert a.startswith(
        '<div class=\'chart\'><div id="chart-1" class="plotly-graph-div" style="height:300px;'
    )
    spec_a = json.loads(a.split("data-chart='chart-1'>", 1)[1].split("</script>", 1)[0])
    spec_b = json.loads(b.split("data-chart='chart-1'>", 1)[1].split("</script>", 1)[0])
    assert spec_a["config"] == {"displaylogo": False, "responsive": True}
    assert spec_b["config"] == {"staticPlot": True, "responsive": False}
    assert "width" not in spec_a["layout"] and spec_b["layout"]["width"] == 1040
    assert spec_a["layout"]["height"] == spec_b["layout"]["height"] == 300
    assert "template" not in spec_b["layout"]  # the page applies the template once for all charts


@pytest.mark.parametrize(("rows", "cols", "vspace"), [(1, 2, None), (3, 2, 0.12)])
def test_subplots_lay_out_the_grid_as_plotly_make_subplots(
    rows: int, cols: int, vspace: float | None
) -> None:
    titles = [f"t{i}" for i in range(rows * cols)]
    kwargs = {} if vspace is None else {"vertical_spacing": vspace}
    expected = make_subplots(rows=rows, cols=cols, subplot_titles=titles, **kwargs).to_plotly_json()["layout"]

    ours = subplots(rows, cols, titles, vspace)

    for k in range(1, rows * cols + 1):
        n = "" if k == 1 else str(k)
        for axis in (f"xaxis{n}", f"yaxis{n}"):
            assert ours[axis]["domain"] == pytest.approx(list(expected[axis]["domain"]))
            assert ours[axis]["anchor"] == expected[axis]["anchor"]
    got = [(a["text"], a["x"], a["y"]) for a in ours["annotations"]]
    want = [(a["text"], a["x"], a["y"]) for a in expected["annotations"]]
    assert [g[0] for g in got] == [w[0] for w in want]
    assert [g[1:] for g in got] == [pytest.approx(w[1:]) for w in want]


# --- the printer ------------------------------------------------------------------------------------------
def _parts(body: str, charts: int) -> PageParts:
    return PageParts("t", "h", [], body, charts)


def test_printer_refuses_a_page_whose_charts_were_not_all_drawn(chromium: str, tmp_path: Path) -> None:
    with pytest.raises(BrowserError, match="0 of the 1 charts were drawn for print"):
        PdfPrinter(chromium).print(_parts("<p>no chart here</p>", 1), tmp_path / "x.pdf")
    assert not (tmp_path / "x.pdf").exists()


def test_printer_raises_the_pages_exception(chromium: str, tmp_path: Path) -> None:
    broken = (
        "<div id='c'></div><script type='application/json' class='chart-data' data-chart='c'>{oops</script>"
    )

    with pytest.raises(BrowserError, match="the printed page failed: SyntaxError"):
        PdfPrinter(chromium).print(_parts(broken, 1), tmp_path / "x.pdf")


def test_printer_prints_the_parts_into_the_shell(chromium: str, tmp_path: Path) -> None:
    chart = Charts(static=True).html({"data": [{"type": "bar", "x": ["a"], "y": [1]}], "layout": {}}, 200)
    printer = PdfPrinter(chromium)

    pdf = printer.print(PageParts("title", "Header", [], f"<p>hello print</p>{chart}", 1), tmp_path / "x.pdf")

    assert pdf.read_bytes().startswith(b"%PDF")
    assert list(printer.timings) == ["browser ready", "draw", "print"]
    assert printer.chromium.closed  # one page per printer; the browser is gone
    with pytest.raises(BrowserError, match="prints one page"):
        printer.print(_parts("", 0), tmp_path / "y.pdf")


def test_a_browser_that_exits_is_a_config_error_naming_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MT5TESTER_CHROMIUM", "false")  # an executable that exits at once

    with pytest.raises(BrowserError, match=r"false: the browser (exited|does not read its commands)"):
        PdfPrinter().print(_parts("", 0), tmp_path / "x.pdf")
    assert issubclass(BrowserError, ConfigError)  # exit 2 with the message, no traceback


def test_a_browser_that_cannot_start_is_a_browser_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-chromium"

    with pytest.raises(BrowserError, match=f"cannot start {missing}: No such file or directory"):
        PdfPrinter(str(missing))


def test_grid_time_text_is_utc_to_the_second_and_none_when_missing() -> None:
    times = pd.Series(
        pd.to_datetime(["2024-01-02 02:01:00.9+02:00", None, "1999-12-31 23:59:59.0+00:00"], utc=True)
    )

    assert time_text(times) == ["2024-01-02 00:01:00", None, "1999-12-31 23:59:59"]
    assert time_text(times.iloc[:0]) == []
