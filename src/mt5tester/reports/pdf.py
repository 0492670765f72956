"""The PDF report of one run: the HTML report's page, printed by headless Chromium (A4 landscape).

One definition of every chart and table: the printed page is ``run_page_parts(static=True)`` laid out by
the same ``page`` (the same figure specs drawn by the same script without hover or zoom at a fixed width,
the big tables cut to their first rows plus the totals of all), so the PDF cannot drift from the HTML.

A ``PdfPrinter`` starts Chromium on the page's shell (CSS, plotly.js, the drawing script) when it is made,
so the browser starts and compiles plotly.js while Python reads the run; ``print`` then puts the report's
body into that page, draws the charts, waits until plotly has drawn them all and prints. Chromium is the
browser the tests already render the report in; ``MT5TESTER_CHROMIUM`` names another binary.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from mt5tester.errors import ConfigError
from mt5tester.reports.chromium import TIMEOUT_S, BrowserError, Chromium
from mt5tester.reports.content import RunReport, load_run
from mt5tester.reports.html import PageParts, page, run_page_parts, safe_filename

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
PRINT_CSS = "<style>@page{size:A4 landscape;margin:9mm} body{font-size:11px}</style>"

# Puts the printed body into the shell and draws its charts; the promise gives the number of charts drawn
# once plotly has drawn every one and the fonts are ready (printing earlier would print empty boxes).
FILL_JS = """
(function (title, header, body) {
  document.title = title;
  document.querySelector('header h1').innerHTML = header;
  var main = document.querySelector('main');
  main.innerHTML = body;
  return mt5Charts(main).then(function () { return document.fonts.ready; }).then(function () {
    return main.querySelectorAll('.js-plotly-plot').length;
  });
})
"""
# The shell is ready when its own document (not the blank one a new tab starts with) has loaded.
READY_JS = "location.href === %s && document.readyState === 'complete' && typeof mt5Charts === 'function'"


def _quiet(_phase: str) -> None:
    pass


def find_chromium() -> str:
    """The headless browser that prints the PDF: MT5TESTER_CHROMIUM, else the first of BROWSERS on PATH."""
    named = os.environ.get("MT5TESTER_CHROMIUM")
    if named:
        path = shutil.which(named)
        if not path:
            raise ConfigError(f"MT5TESTER_CHROMIUM={named!r} is not an executable; unset it or fix the path")
        return path
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    raise ConfigError(
        "the PDF report is the HTML report printed by headless Chromium, and none was found on PATH "
        f"(tried {', '.join(BROWSERS)}): install it (Debian/Ubuntu: apt-get install chromium) or set "
        "MT5TESTER_CHROMIUM to its path; the HTML report needs nothing"
    )


def shell_page() -> str:
    """The printed page without its body: the report's CSS, the print CSS, plotly.js and the drawing
    script (``page`` with an empty main)."""
    return page("mt5tester report", "", [], "", 1, "inline").replace("</head>", PRINT_CSS + "</head>", 1)


def _page_errors(events: list[dict[str, Any]]) -> list[str]:
    """Exceptions and console errors the page reported."""
    out = []
    for e in events:
        params = e.get("params", {})
        if e.get("method") == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            out.append(str(d.get("exception", {}).get("description") or d.get("text")))
        elif e.get("method") == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            out.append(
                " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            )
    return out


class PdfPrinter:
    """Headless Chromium holding the printed page's shell, started at construction (no waiting); ``print``
    fills and prints it. ``timings``: wall seconds of the last print's steps (ready, draw, print)."""

    def __init__(self, browser: str | None = None) -> None:
        binary = browser or find_chromium()
        self._dir = tempfile.TemporaryDirectory(prefix="mt5tester-pdf-", ignore_cleanup_errors=True)
        shell = Path(self._dir.name) / "print.html"
        shell.write_text(shell_page(), encoding="utf-8")
        self._url = shell.as_uri()
        self.chromium = Chromium(binary, self._url)
        self.timings: dict[str, float] = {}
        self._used = False

    def _evaluate(self, session: str, expression: str) -> Any:
        result = self.chromium.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            session,
        )
        if "exceptionDetails" in result:
            d = result["exceptionDetails"]
            raise BrowserError(f"the printed page failed: {d.get('exception', {}).get('description') or d}")
        return result["result"].get("value")

    def _wait_ready(self, session: str) -> None:
        """Poll until the shell has loaded (a load event is missed when the tab's first, blank document is
        still the one attached to)."""
        deadline = time.monotonic() + TIMEOUT_S
        while not self._evaluate(session, READY_JS % json.dumps(self._url)):
            if time.monotonic() > deadline:
                raise BrowserError(f"the printed page's shell {self._url} did not load in {TIMEOUT_S:.0f} s")
            time.sleep(0.02)

    def print(self, parts: PageParts, pdf_path: Path, on_phase: Callable[[str], None] = _quiet) -> Path:
        """Print ``parts`` (``static`` parts of a report page) to ``pdf_path``; once per printer."""
        if self._used:
            raise BrowserError("a PdfPrinter prints one page; make another for the next")
        self._used = True
        try:
            t0 = time.perf_counter()
            session = self.chromium.page_session()
            self.chromium.call("Runtime.enable", session=session)
            self._wait_ready(session)
            t1 = time.perf_counter()
            on_phase("drawing the charts for print")
            args = ", ".join(json.dumps(v) for v in (parts.title, parts.header, parts.body))
            drawn = self._evaluate(session, f"({FILL_JS})({args})")
            errors = _page_errors(self.chromium.events)
            if errors:
                raise BrowserError("the printed page reported errors: " + "; ".join(errors[:5]))
            if drawn != parts.charts:
                raise BrowserError(f"{drawn} of the {parts.charts} charts were drawn for print")
            t2 = time.perf_counter()
            on_phase("printing the PDF")
            pdf = self.chromium.call("Page.printToPDF", {"preferCSSPageSize": True}, session)
            pdf_path = Path(pdf_path)
            pdf_path.write_bytes(base64.b64decode(pdf["data"]))
            t3 = time.perf_counter()
            self.timings = {"browser ready": t1 - t0, "draw": t2 - t1, "print": t3 - t2}
        finally:
            self.close()
        return pdf_path

    def close(self) -> None:
        self.chromium.close()
        self._dir.cleanup()

    def __enter__(self) -> PdfPrinter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def write_run_pdf(
    rep: RunReport,
    out_dir: Path,
    on_phase: Callable[[str], None] = _quiet,
    printer: PdfPrinter | None = None,
) -> Path:
    """Write ``report_<run_id>.pdf`` of a loaded run into ``out_dir``. ``printer``: one started earlier
    (it starts the browser while the run is read); else one is started here."""
    printer = printer or PdfPrinter()  # before any work: a missing browser fails fast
    with printer:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        parts = run_page_parts(rep, on_phase, static=True)
        return printer.print(parts, out_dir / f"report_{safe_filename(rep.run_id)}.pdf", on_phase)


def write_pdf_report(
    engine: Engine, run_id: str, out_dir: Path, on_phase: Callable[[str], None] = _quiet
) -> Path:
    """Write ``report_<run_id>.pdf`` into ``out_dir`` from the database; StorageError for an unknown run.
    The browser starts first and loads while the run is read."""
    with PdfPrinter() as printer:
        return write_run_pdf(load_run(engine, run_id, on_phase), out_dir, on_phase, printer)
