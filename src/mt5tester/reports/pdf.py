"""The PDF report of one run: the HTML report itself, printed by headless Chromium (A4 landscape).

One definition of every chart and table: the page is ``render_run_html(static=True)`` (the same plotly
figures drawn without hover or zoom at a fixed width, the big tables cut to their first rows plus the
totals of all), so the PDF cannot drift from the HTML. Chromium is the browser the tests already render
the report in; ``MT5TESTER_CHROMIUM`` names another binary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from mt5tester.errors import ConfigError
from mt5tester.reports.content import RunReport, load_run
from mt5tester.reports.html import render_run_html, safe_filename

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
PRINT_TIMEOUT_S = 300
PRINT_CSS = "<style>@page{size:A4 landscape;margin:9mm} body{font-size:11px}</style>"


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


def print_to_pdf(html_path: Path, pdf_path: Path, browser: str | None = None) -> Path:
    """Print a local HTML page (its scripts run first) to ``pdf_path`` with headless Chromium."""
    browser = browser or find_chromium()
    with tempfile.TemporaryDirectory(prefix="mt5tester-chromium-") as profile:
        proc = subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--run-all-compositor-stages-before-draw",
                "--virtual-time-budget=10000",
                "--no-pdf-header-footer",
                f"--print-to-pdf={pdf_path}",
                html_path.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=PRINT_TIMEOUT_S,
            check=False,
        )
    if proc.returncode != 0 or not pdf_path.is_file():
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise ConfigError(f"{browser} could not print {html_path} to PDF (exit {proc.returncode}): {tail}")
    return pdf_path


def write_run_pdf(rep: RunReport, out_dir: Path, on_phase: Callable[[str], None] = _quiet) -> Path:
    """Write ``report_<run_id>.pdf`` of a loaded run into ``out_dir``."""
    browser = find_chromium()  # before any work: a missing browser fails fast
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    page = render_run_html(rep, "inline", on_phase, static=True).replace("</head>", PRINT_CSS + "</head>", 1)
    pdf = out_dir / f"report_{safe_filename(rep.run_id)}.pdf"
    on_phase("printing the PDF")
    with tempfile.TemporaryDirectory(prefix="mt5tester-pdf-") as tmp:
        html_path = Path(tmp) / "print.html"
        html_path.write_text(page, encoding="utf-8")
        print_to_pdf(html_path, pdf, browser)
    return pdf


def write_pdf_report(
    engine: Engine, run_id: str, out_dir: Path, on_phase: Callable[[str], None] = _quiet
) -> Path:
    """Write ``report_<run_id>.pdf`` into ``out_dir`` from the database; StorageError for an unknown run."""
    return write_run_pdf(load_run(engine, run_id, on_phase), out_dir, on_phase)
