"""Reports from the database: HTML (offline, rendered in headless Chromium), PDF (the HTML printed by
Chromium; checked with pdftoppm), compare, CLI."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mt5tester.config import parse_config
from mt5tester.engine.build import build
from mt5tester.engine.loop import Runner
from mt5tester.reports.compare import write_compare_report
from mt5tester.reports.content import breakdown, load_run, open_results_db
from mt5tester.reports.html import render_run_html, write_html_report
from mt5tester.reports.pdf import write_pdf_report

from conftest import STRATEGIES_FILE, base_config, require

EVIL = "<script>alert(1)</script>"
# would mark the page if any injected markup ever ran
PWN = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"
# equity, drawdown, monthly, by hour/weekday/month, breakdown, equity per strategy, equity per symbol,
# EURUSD prices with entries and exits, trade results, holding times, MFE/MAE, lifecycle funnel, regimes
RUN_CHARTS = 13


@dataclass
class Runs:
    db_url: str
    first: str
    second: str
    out: Path


def _run(raw: dict, base: Path) -> str:
    components = build(parse_config(raw), base)
    return Runner(components).run().run_id


@pytest.fixture(scope="module")
def runs(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """Two short runs in one DB: MA cross + a scripted strategy whose name, comment and tags are markup."""
    tmp = tmp_path_factory.mktemp("reports")
    raw = base_config(demo_data, tmp, end="2024-01-20")
    raw["report"] = {"html": False}
    raw["strategies"].append(
        {
            "class": f"{STRATEGIES_FILE}:Scripted",
            "name": f"x{EVIL}",
            "params": {
                "script": [
                    {
                        "at": "2024-01-02T10:00:00Z",
                        "direction": "buy",
                        "comment": EVIL,
                        "tags": {"t": EVIL, "regime": EVIL},
                    },
                    {"at": "2024-01-03T10:00:00Z", "direction": "sell", "comment": PWN, "tags": {"t": PWN}},
                ]
            },
        }
    )
    first = _run(raw, tmp)
    raw["strategies"] = [{"class": "ma_cross", "name": "ma_slow", "params": {"fast": 8, "slow": 30}}]
    second = _run(raw, tmp)
    return Runs(raw["results"]["database_url"], first, second, tmp / "out")


@pytest.fixture(scope="module")
def html_path(runs: Runs) -> Path:
    return write_html_report(open_results_db(runs.db_url), runs.first, runs.out)


def _chromium_dom(chromium: str, page: Path, tmp: Path) -> tuple[str, str]:
    """(DOM after the scripts ran, Chromium's stderr with the page's console messages)."""
    proc = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp / 'chromium-profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


def _console_problems(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]


@pytest.fixture(scope="module")
def rendered(chromium: str, html_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return _chromium_dom(chromium, html_path, tmp_path_factory.mktemp("chromium"))


def _chart_divs(dom: str) -> list[str]:
    """The inner HTML of each plotly chart div (up to the next chart)."""
    starts = [m.start() for m in re.finditer(r'<div id="chart-\d+" class="plotly-graph-div', dom)]
    return [dom[a:b] for a, b in zip(starts, [*starts[1:], len(dom)], strict=True)]


# --- HTML ---------------------------------------------------------------------------------------------------
def test_report_html_in_chromium_renders_every_chart_without_console_errors(
    html_path: Path, rendered: tuple[str, str]
) -> None:
    dom, stderr = rendered
    static = html_path.read_text()

    assert f"<meta name='mt5tester-charts' content='{RUN_CHARTS}'>" in static
    assert static.count('class="plotly-graph-div"') == RUN_CHARTS
    assert _console_problems(stderr) == []
    charts = _chart_divs(dom)
    assert len(charts) == RUN_CHARTS
    assert dom.count('class="plot-container plotly"') == RUN_CHARTS
    assert all('class="main-svg"' in c for c in charts)


def test_report_html_is_self_contained_and_offline(html_path: Path) -> None:
    text = html_path.read_text()

    assert re.findall(r"<script[^>]*\ssrc=", text, flags=re.I) == []
    assert re.findall(r"<link[^>]*href=[\"']?(?:https?:)?//", text, flags=re.I) == []
    assert re.findall(r"<(?:img|iframe)[^>]*src=[\"']?(?:https?:)?//", text, flags=re.I) == []
    assert text.count("plotly.js v") == 1  # the library inlined exactly once


def test_report_html_shows_markup_in_names_comments_tags_as_text_and_runs_none(
    html_path: Path, rendered: tuple[str, str]
) -> None:
    static = html_path.read_text()
    dom, stderr = rendered

    assert EVIL not in static and PWN not in static
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in static
    assert "&lt;img src=x onerror=" in static
    assert "data-pwned" not in dom.split("<body", 1)[1].split(">", 1)[0]
    assert '<img src="x"' not in dom and "<img src=x" not in dom
    assert _console_problems(stderr) == []  # alert() would not log, but the image error would


def test_report_sections_reconcile_with_the_mt5_metrics(runs: Runs) -> None:
    rep = load_run(open_results_db(runs.db_url), runs.first)

    net = rep.metrics.total_net_profit
    assert rep.trades["net"].sum() == pytest.approx(net, abs=0.005)
    by_strategy = breakdown(rep, "strategy", "Per strategy")
    assert [r[0] for r in by_strategy.rows] == ["ma", f"x{EVIL}"]
    assert sum(r[2] for r in by_strategy.rows) == pytest.approx(net, abs=0.005)
    assert by_strategy.total is not None and by_strategy.total[1] == rep.metrics.total_trades
    assert int((rep.trades["close_reason"] != "open").sum()) == rep.metrics.total_trades
    assert rep.trades["regime"].dropna().tolist() == [EVIL]


def test_report_html_mfe_mae_chart_from_positions_and_note_without_them(runs: Runs, tmp_path: Path) -> None:
    src = Path(runs.db_url.removeprefix("sqlite:///"))
    copy = tmp_path / "copy.sqlite"
    with sqlite3.connect(src) as a, sqlite3.connect(copy) as b:
        a.backup(b)  # the DB runs in WAL mode: a file copy could miss rows
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE positions SET mfe = NULL, mae = NULL")  # as a run recorded before schema 0003

    with_exc = render_run_html(load_run(open_results_db(runs.db_url), runs.first))
    without = render_run_html(load_run(open_results_db(f"sqlite:///{copy}"), runs.first))

    assert with_exc.count('class="plotly-graph-div"') == RUN_CHARTS
    assert "MFE and MAE per trade vs result" in with_exc
    assert without.count('class="plotly-graph-div"') == RUN_CHARTS - 1
    assert "MFE/MAE (maximum favourable" in without


# --- PDF ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pdftoppm() -> str:
    path = shutil.which("pdftoppm") or ""
    require(bool(path), "pdftoppm (poppler-utils) not installed; run .ci/services.sh")
    return path


def test_report_pdf_has_several_pages_none_blank(runs: Runs, pdftoppm: str, tmp_path: Path) -> None:
    pdf = write_pdf_report(open_results_db(runs.db_url), runs.first, tmp_path)
    subprocess.run(
        [pdftoppm, "-r", "40", "-gray", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=120
    )
    pages = sorted(tmp_path.glob("page-*.png"))

    assert pdf.read_bytes().startswith(b"%PDF")
    assert len(pages) >= 2
    # a page may hold only the end of a table (little ink), never nothing: some ink and some text on each
    pdftotext = shutil.which("pdftotext")
    require(bool(pdftotext), "pdftotext (poppler-utils) not installed")
    for i, p in enumerate(pages, start=1):
        pixels = np.asarray(Image.open(p).convert("L"), dtype=float)
        assert pixels.std() > 2.0, f"{p.name} looks blank (std {pixels.std():.2f})"
        text = subprocess.run(
            [str(pdftotext), "-f", str(i), "-l", str(i), str(pdf), "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert text.strip(), f"{p.name} has no text"


def test_report_pdf_prints_markup_as_text(runs: Runs, tmp_path: Path) -> None:
    pdftotext = shutil.which("pdftotext")
    require(bool(pdftotext), "pdftotext (poppler-utils) not installed")
    pdf = write_pdf_report(open_results_db(runs.db_url), runs.first, tmp_path)
    text = subprocess.run([str(pdftotext), str(pdf), "-"], capture_output=True, text=True, check=True).stdout

    assert "<script>alert(1)</script>" in text.replace("\n", "")


# --- compare ------------------------------------------------------------------------------------------------
def test_report_compare_two_runs_shows_both_ids_and_both_equity_traces(
    runs: Runs, chromium: str, tmp_path: Path
) -> None:
    path = write_compare_report(open_results_db(runs.db_url), [runs.first, runs.second], tmp_path)
    static = path.read_text()
    dom, stderr = _chromium_dom(chromium, path, tmp_path)

    assert runs.first in static and runs.second in static
    for rid in (runs.first, runs.second):
        assert static.count(f'"name":"{rid}"') == 2  # its equity and its drawdown trace
    assert "strategies[ma_slow]" in static  # the config difference
    assert _console_problems(stderr) == []
    assert dom.count('class="plot-container plotly"') == 2
    assert len(re.findall(r'class="legendtext[^"]*"[^>]*>' + runs.first, dom)) == 2


# --- CLI ----------------------------------------------------------------------------------------------------
def test_cli_report_pdf_writes_both_files(runs: Runs, run_cli, tmp_path: Path) -> None:
    code, _out, err = run_cli("report", runs.first, "--pdf", "--out", str(tmp_path), "--db", runs.db_url)

    assert code == 0, err
    assert (tmp_path / f"report_{runs.first}.html").is_file()
    assert (tmp_path / f"report_{runs.first}.pdf").is_file()


def test_cli_report_compare_exit_0(runs: Runs, run_cli, tmp_path: Path) -> None:
    code, _out, err = run_cli(
        "report", "compare", runs.first, runs.second, "--out", str(tmp_path), "--db", runs.db_url
    )

    assert code == 0, err
    assert (tmp_path / f"compare_{runs.first}_{runs.second}.html").is_file()


def test_cli_report_unknown_run_exits_6(runs: Runs, run_cli, tmp_path: Path) -> None:
    code, _, err = run_cli("report", "feedfeedfeed", "--out", str(tmp_path), "--db", runs.db_url)

    assert code == 6
    assert "no run 'feedfeedfeed'" in err
    assert not any(tmp_path.iterdir())


def test_cli_report_missing_database_exits_6_and_creates_nothing(run_cli, tmp_path: Path) -> None:
    db = tmp_path / "nope.sqlite"
    code, _, err = run_cli("report", "abc", "--db", f"sqlite:///{db}", "--out", str(tmp_path))

    assert code == 6
    assert "no results database" in err
    assert not db.exists()


def test_cli_report_db_defaults_to_mt5tester_db_url(
    runs: Runs, run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MT5TESTER_DB_URL", runs.db_url)
    code, _, err = run_cli("report", runs.second, "--out", str(tmp_path))

    assert code == 0, err
    assert (tmp_path / f"report_{runs.second}.html").is_file()
