"""`mt5tester optimize` through the real entry point: run, list, show, export, rerun, report, exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from test_optimize_driver import BEST, E, X, study_config

from conftest import write_yaml
from fixtures.optimize_strategies import write_tent_data

SECTION = {"parameters": {E: {"choices": [7, 9]}, X: {"choices": [27, 29]}}, "method": "grid"}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict]:
    """One study run by `mt5tester optimize --config ... --rerun-best 1 --json`."""
    from mt5tester.cli import main

    tmp = tmp_path_factory.mktemp("cli_study")
    data = write_tent_data(tmp / "data")
    config = write_yaml(tmp / "study.yaml", study_config(data, tmp, SECTION))
    out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out):
        code = main(["optimize", "--config", str(config), "--workers", "1", "--rerun-best", "1", "--json"])
    assert code == 0
    return tmp, f"sqlite:///{tmp / 'results.sqlite'}", json.loads(out.getvalue())


def test_optimize_json_summary_has_best_pass_and_rerun(study: tuple[Path, str, dict]) -> None:
    _, _, summary = study
    assert (summary["executed"], summary["skipped"], summary["passes"], summary["discarded"]) == (4, 0, 4, 0)
    assert summary["best"]["params"] == BEST
    assert summary["best"]["number"] == 3
    assert summary["best"]["metrics"]["final_balance"] == 10020.0
    assert len(summary["reruns"]) == 1
    assert set(summary["robustness"]) == {"dsr", "pbo", "pbo_splits", "stability", "mc_order", "mc_skip"}
    # one trade of +20: shuffling or skipping it never draws the balance down
    assert summary["robustness"]["mc_order"]["max_dd_pct"] == {"0.5": 0.0, "0.95": 0.0, "0.99": 0.0}


def test_rerun_best_is_a_normal_stored_run_linked_to_its_pass(study: tuple[Path, str, dict], run_cli) -> None:
    _, url, summary = study
    [run_id] = summary["reruns"]

    code, out, _ = run_cli("runs", "show", run_id, "--db", url, "--json")

    assert code == 0
    shown = json.loads(out)
    assert shown["run"]["status"] == "completed"
    assert shown["rows"]["deals"] == 3  # the deposit, the buy at 1.0990 and the sell at 1.1010
    assert shown["run"]["config"]["strategies"][0]["params"] == {"entry": 9, "exit": 29}
    assert shown["run"]["config"]["optimize"] is None
    code, out, _ = run_cli("optimize", "export", summary["study_id"], "--db", url, "--json")
    linked = [r for r in json.loads(out) if r["run_id"]]
    assert [(r["number"], r["run_id"]) for r in linked] == [(3, run_id)]


def test_optimize_list_and_show_json(study: tuple[Path, str, dict], run_cli) -> None:
    _, url, summary = study

    code, out, _ = run_cli("optimize", "list", "--db", url, "--json")
    assert code == 0
    [row] = json.loads(out)
    assert (
        row["study_id"],
        row["status"],
        row["method"],
        row["passes"],
        row["space_size"],
        row["best_score"],
    ) == (summary["study_id"], "completed", "grid", 4, 4, 10020.0)

    code, out, _ = run_cli("optimize", "show", summary["study_id"][:6], "--db", url, "--json", "--top", "2")
    assert code == 0
    shown = json.loads(out)
    assert shown["study"]["status"] == "completed"
    assert [(r["number"], r["params"], r["score"]) for r in shown["best"]] == [
        (3, BEST, 10020.0),
        (1, {E: 7, X: 29}, 10018.0),
    ]


def test_optimize_show_table_and_export_csv(study: tuple[Path, str, dict], run_cli) -> None:
    _, url, summary = study

    code, out, _ = run_cli("optimize", "show", summary["study_id"], "--db", url)
    assert code == 0
    assert f"Study {summary['study_id']}" in out
    assert "Robustness of the best pass" in out

    code, out, _ = run_cli("optimize", "export", summary["study_id"], "--db", url)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["number"], r[E], r[X], r["final_balance"]) for r in rows] == [
        ("0", "7", "27", "10016.0"),
        ("1", "7", "29", "10018.0"),
        ("2", "9", "27", "10018.0"),
        ("3", "9", "29", "10020.0"),
    ]


def test_optimize_report_writes_study_page(study: tuple[Path, str, dict], run_cli, tmp_path: Path) -> None:
    _, url, summary = study

    code, out, _ = run_cli("optimize", "report", summary["study_id"], "--db", url, "--out", str(tmp_path))

    assert code == 0
    page = tmp_path / f"study_{summary['study_id']}.html"
    assert out.strip() == f"report: {page}"
    text = page.read_text()
    for section in ("Passes (fold 0", "Parameter heatmap", "Robustness of the best pass", "class='sortable'"):
        assert section in text
    assert "cdn." not in text.split("<body>")[1]  # offline: plotly is inline


def test_optimize_unknown_study_exit_6(study: tuple[Path, str, dict], run_cli) -> None:
    _, url, _ = study

    code, _, err = run_cli("optimize", "show", "nosuchstudy", "--db", url)

    assert code == 6
    assert "no study 'nosuchstudy'" in err


def test_optimize_resume_completed_study_exit_6(study: tuple[Path, str, dict], run_cli) -> None:
    _, url, summary = study

    code, _, err = run_cli("optimize", "--resume", summary["study_id"], "--db", url)

    assert code == 6
    assert f"study {summary['study_id']} is completed; nothing to resume" in err


def test_optimize_config_without_section_exit_2(tmp_path: Path, run_cli) -> None:
    raw = study_config(tmp_path / "data", tmp_path, SECTION)
    del raw["optimize"]
    config = write_yaml(tmp_path / "plain.yaml", raw)

    code, _, err = run_cli("optimize", "--config", str(config), "--workers", "1")

    assert code == 2
    assert "no optimize: section" in err
    assert "Traceback" not in err


def test_optimize_bad_scheduler_address_exit_2(tmp_path: Path, run_cli) -> None:
    pytest.importorskip("distributed")
    data = write_tent_data(tmp_path / "data")
    config = write_yaml(tmp_path / "s.yaml", study_config(data, tmp_path, SECTION))

    code, _, err = run_cli("optimize", "--config", str(config), "--scheduler", "tcp://127.0.0.1:9")

    assert code == 2
    assert "--scheduler tcp://127.0.0.1:9: no Dask scheduler answers there" in err


def test_study_page_renders_in_headless_chromium_without_console_errors(
    study: tuple[Path, str, dict], chromium: str, tmp_path: Path
) -> None:
    from mt5tester.reports.optimize import write_study_report
    from mt5tester.results.queries import open_results
    from test_reports import _chromium_dom, _console_problems

    _, url, summary = study
    page = write_study_report(open_results(url), summary["study_id"], tmp_path)

    dom, stderr = _chromium_dom(chromium, page, tmp_path)

    assert _console_problems(stderr) == []
    assert 'id="heatmap"' in dom
    assert "main-svg" in dom  # plotly drew the heatmap (its SVG exists only after the script ran)
    # 4 passes, the study row, 9 robustness rows (DSR, PBO, stability, 2 x 3 Monte Carlo quantiles)
    assert dom.count("<tr><td>") == 4 + 1 + 9


def test_optimize_trading_mode_profile_applies_to_every_pass(tmp_path: Path, run_cli) -> None:
    """--trading-mode on optimize: each pass runs under the profile (half volume: half the best profit)."""
    data = write_tent_data(tmp_path / "data")
    raw = study_config(data, tmp_path, SECTION) | {"trading_modes": {"half": {"risk_multiplier": 0.5}}}
    config = write_yaml(tmp_path / "modes.yaml", raw)

    code, out, err = run_cli(
        "optimize", "--config", str(config), "--workers", "1", "--trading-mode", "half", "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["best"]["params"] == BEST
    assert summary["best"]["metrics"]["final_balance"] == 10010.0  # 10,020 at full volume

    code, _, err = run_cli("optimize", "--config", str(config), "--workers", "1", "--trading-mode", "nope")
    assert code == 2
    assert "nope" in err and "trading_mode" in err
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def two_studies(
    study: tuple[Path, str, dict], tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str, dict]:
    """A copy of the study's database with a second study (entry 5 or 9, exit 29: best 9/29 again)."""
    import contextlib
    import shutil

    from mt5tester.cli import main

    tmp0, _, summary = study
    tmp = tmp_path_factory.mktemp("two_studies")
    for f in tmp0.glob("results.sqlite*"):  # with its write-ahead log
        shutil.copy(f, tmp / f.name)
    section = {"parameters": {E: {"choices": [5, 9]}, X: {"choices": [29]}}, "method": "grid"}
    config = write_yaml(tmp / "second.yaml", study_config(tmp0 / "data", tmp, section))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["optimize", "--config", str(config), "--workers", "1", "--json"]) == 0
    return f"sqlite:///{tmp / 'results.sqlite'}", summary["study_id"], json.loads(out.getvalue())


def test_compare_table_rerun_run_and_study_best_pass_exact(two_studies: tuple[str, str, dict]) -> None:
    from mt5tester.reports.optimize import compare_table
    from mt5tester.results import studies as store
    from mt5tester.results.queries import open_results

    url, first, second = two_studies
    engine = open_results(url)
    [run_id] = [r["run_id"] for r in store.trials(engine, first) if r["run_id"]]

    table, passes = compare_table(engine, [run_id, "not-a-rerun"], [second["study_id"][:6]])

    assert [c.name for c in table.columns][:12] == [
        "study", "run", "method", "criterion", "passes", "fold/pass", "params", "criterion value",
        "IS net profit", "IS equity DD %", "IS trades", "forward/OOS net profit",
    ]  # fmt: skip
    assert [r[:12] for r in table.rows] == [
        [first, run_id, "grid", "balance", 4, "0/3", BEST, 10020.0, 20.0, 0.0, 1, None],
        [second["study_id"], "-", "grid", "balance", 2, "0/1", BEST, 10020.0, 20.0, 0.0, 1, None],
    ]
    rob = second["robustness"]
    assert table.rows[1][12:15] == [rob["dsr"], rob["pbo"], rob["stability"]]
    assert [p["curve"][-1][1] for p in passes] == [10020.0, 10020.0]


def test_report_compare_with_study_shows_optimization_section_in_chromium(
    two_studies: tuple[str, str, dict], run_cli, chromium: str, tmp_path: Path
) -> None:
    from test_reports import _chromium_dom, _console_problems

    url, first, second = two_studies

    code, out, err = run_cli(
        "report",
        "compare",
        "--study",
        first,
        "--study",
        second["study_id"],
        "--db",
        url,
        "--out",
        str(tmp_path),
    )

    assert code == 0, err
    page = tmp_path / f"compare_study_{first}_study_{second['study_id']}.html"
    assert f"compare: {page}" in out
    dom, stderr = _chromium_dom(chromium, page, tmp_path)
    assert _console_problems(stderr) == []
    assert '<section id="optimization">' in dom and '<section id="runs">' not in dom
    assert dom.count("main-svg") >= 1  # plotly drew the overlaid equity
    section = dom[dom.index('<section id="optimization">') :]
    assert section.count("<tr><td") == 2
    assert "10020.00" in section and "20.00" in section


def test_report_compare_needs_two_items_exit_2(two_studies: tuple[str, str, dict], run_cli) -> None:
    url, first, _ = two_studies

    code, _, err = run_cli("report", "compare", "--study", first, "--db", url)

    assert code == 2
    assert "at least two run ids or --study ids" in err
