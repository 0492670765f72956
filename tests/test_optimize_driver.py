"""The optimizer end to end over mt5tester.run(): known optimum, methods within a stated budget, the same
table on every executor, a killed worker, forward period and walk-forward, storage.

The synthetic case (tests/fixtures/optimize_strategies.py): EURUSD flat within each hour, falling to
1.0990 at hour 10 after 2024-01-02 00:00 UTC and rising to 1.1010 at hour 30. ``Window`` buys 0.1 lot at
the close of hour ``entry`` (filled at the next hour's price, spread 0) and closes at the close of hour
``exit``: the one best pass is entry 9, exit 29: +20 pips = +20.00 USD, final balance 10,020.00.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mt5tester.config import parse_config
from mt5tester.optimize.driver import optimize
from mt5tester.results import db
from mt5tester.results import studies as store

from conftest import IN_CI
from fixtures.optimize_strategies import write_tent_data

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "optimize_strategies.py"
E, X = "strategies.w.params.entry", "strategies.w.params.exit"
BEST = {E: 9, X: 29}


@pytest.fixture(scope="module")
def tent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tent_data(tmp_path_factory.mktemp("tent"))


def study_config(data: Path, tmp: Path, optimize_section: dict, cls: str = "Window", **bt: Any) -> dict:
    backtest = {
        "start": "2024-01-02",
        "end": "2024-01-04",
        "symbols": ["EURUSD"],
        "primary_timeframe": "H1",
        "warmup_bars": 5,
    } | bt
    return {
        "backtest": backtest,
        "data": {"path": str(data)},
        "symbols": {"EURUSD": {"swap_long": 0, "swap_short": 0, "commission": 0, "spread": 0}},
        "strategies": [{"class": f"{FIXTURE}:{cls}", "name": "w"}],
        "results": {
            "database_url": f"sqlite:///{tmp / 'results.sqlite'}",
            "out_dir": str(tmp / "reports"),
            "checkpoint_seconds": None,
        },
        "optimize": optimize_section,
    }


SMALL = {E: {"start": 5, "step": 2, "stop": 13}, X: {"start": 25, "step": 2, "stop": 33}}  # 25 points
LARGE = {E: {"start": 1, "step": 2, "stop": 19}, X: {"start": 21, "step": 2, "stop": 41}}  # 110 points


def run_study(data: Path, tmp: Path, section: dict, cls: str = "Window", **kw: Any):
    cfg = parse_config(study_config(data, tmp, section, cls), "study.yaml")
    return optimize(cfg, base_dir=tmp, **kw)


def table(url: str, study_id: str) -> list[tuple]:
    """What must be identical whatever ran the study: every pass but its duration and worker."""
    engine = db.connect(url, use_env=False)
    rows = store.trials(engine, study_id)
    engine.dispose()
    return [
        (
            r["fold"],
            r["phase"],
            r["number"],
            r["params"],
            r["metrics"],
            r["score"],
            r["seed"],
            r["curve"],
            r["trade_pnl"],
        )
        for r in rows
    ]


def test_grid_complete_finds_known_optimum_with_exact_balance(tent: Path, tmp_path: Path) -> None:
    result = run_study(tent, tmp_path, {"parameters": SMALL, "method": "grid"})

    assert result.status == "completed"
    assert (result.executed, result.skipped) == (25, 0)
    assert result.best is not None
    assert result.best["params"] == BEST
    assert result.best["number"] == 12  # (9, 29) is the middle of the 5 x 5 grid, last parameter fastest
    m = result.best["metrics"]
    assert (m["final_balance"], m["total_net_profit"], m["total_trades"]) == (10020.0, 20.0, 1)
    rows = table(f"sqlite:///{tmp_path / 'results.sqlite'}", result.study_id)
    assert len(rows) == 25
    by_params = {(r[3][E], r[3][X]): r[5] for r in rows}
    # every pass's balance is 10,000 + 10 USD per pip between the two fill prices
    assert by_params[(5, 25)] == 10012.0  # 1.0994 -> 1.1006
    assert by_params[(13, 33)] == 10012.0  # 1.0994 -> 1.1006 (4 hours past the peak)
    assert by_params[(9, 33)] == 10016.0  # 1.0990 -> 1.1006
    assert by_params[(9, 27)] == by_params[(11, 29)] == 10018.0


@pytest.mark.slow
# Stated budgets (seed 7, batches of 16) on the 110-point grid: genetic (population 8) reaches the optimum
# in 50 passes, TPE in 20.
@pytest.mark.parametrize(
    ("method", "budget", "extra"), [("genetic", 50, {"genetic": {"population": 8}}), ("tpe", 20, {})]
)
def test_method_reaches_known_optimum_within_stated_budget(
    tent: Path, tmp_path: Path, method: str, budget: int, extra: dict
) -> None:
    section = {"parameters": LARGE, "method": method, "budget": budget, "seed": 7, **extra}

    result = run_study(tent, tmp_path, section)

    assert result.executed == budget
    assert result.best is not None and result.best["params"] == BEST
    assert result.best["metrics"]["final_balance"] == 10020.0


GENETIC = {"parameters": SMALL, "method": "genetic", "budget": 12, "seed": 5, "genetic": {"population": 4}}


@pytest.fixture(scope="module")
def reference(tent: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple]:
    """The genetic study (3 generations) run in this process, one pass after the other."""
    tmp = tmp_path_factory.mktemp("reference")
    result = run_study(tent, tmp, GENETIC, workers=1)
    return table(f"sqlite:///{tmp / 'results.sqlite'}", result.study_id)


def test_reference_study_is_three_generations_with_distinct_passes(reference: list[tuple]) -> None:
    assert [r[2] for r in reference] == list(range(12))
    assert len({(r[3][E], r[3][X]) for r in reference}) == 12


@pytest.mark.slow
def test_two_local_workers_give_the_same_table(tent: Path, tmp_path: Path, reference: list[tuple]) -> None:
    result = run_study(tent, tmp_path, GENETIC, workers=2)

    assert table(f"sqlite:///{tmp_path / 'results.sqlite'}", result.study_id) == reference


@pytest.mark.slow
def test_killed_local_worker_loses_no_pass(
    tent: Path, tmp_path: Path, reference: list[tuple], monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "killed"
    monkeypatch.setenv("KILL_MARKER", str(marker))

    result = run_study(tent, tmp_path, GENETIC, cls="KillOnce", workers=2)

    assert marker.exists()  # a worker process was SIGKILLed in the middle of a pass with entry 5
    assert table(f"sqlite:///{tmp_path / 'results.sqlite'}", result.study_id) == reference


def _need_dask() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        if IN_CI:
            pytest.fail("CI=true but dask[distributed] is not installed")
        pytest.skip("dask[distributed] not installed")


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_table(tent: Path, tmp_path: Path, reference: list[tuple]) -> None:
    _need_dask()

    result = run_study(tent, tmp_path, GENETIC, workers=2, scheduler="local")

    assert table(f"sqlite:///{tmp_path / 'results.sqlite'}", result.study_id) == reference


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_dask_scheduler_and_two_workers_processes_give_the_same_table(
    tent: Path, tmp_path: Path, reference: list[tuple]
) -> None:
    """A cluster started the way a user starts one: `dask scheduler` and two `dask worker` processes."""
    _need_dask()
    dask = shutil.which("dask", path=str(Path(sys.executable).parent)) or shutil.which("dask")
    assert dask is not None, "the dask command is installed with dask[distributed]"
    address = f"tcp://127.0.0.1:{_free_port()}"
    env = dict(os.environ)
    procs = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        dask,
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--nworkers",
                        "1",
                        "--no-dashboard",
                        "--host",
                        "127.0.0.1",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)

        result = run_study(tent, tmp_path, GENETIC, scheduler=address)

        assert table(f"sqlite:///{tmp_path / 'results.sqlite'}", result.study_id) == reference
        workers = {
            r["worker"]
            for r in store.trials(
                db.connect(f"sqlite:///{tmp_path / 'results.sqlite'}", use_env=False), result.study_id
            )
        }
        assert len(workers) == 2  # both worker processes ran passes
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_forward_period_runs_best_passes_on_forward_window(tent: Path, tmp_path: Path) -> None:
    # in-sample 2024-01-02 (a position still open at its end is closed at the last price, hour 23's 1.1003);
    # forward 2024-01-03: no entry hour falls in it, so every forward pass is flat
    section = {"parameters": SMALL, "method": "grid", "forward": "1/2"}

    result = run_study(tent, tmp_path, section)

    [fold] = result.folds
    assert (fold["is_start"], fold["is_end"], fold["oos_start"], fold["oos_end"]) == (
        "2024-01-02",
        "2024-01-03",
        "2024-01-03",
        "2024-01-04",
    )
    assert fold["best_params"] == {E: 9, X: 25}  # +13 pips; every exit ties, the first pass wins
    assert fold["is_metrics"]["total_net_profit"] == 13.0
    assert fold["oos_metrics"]["total_net_profit"] == 0.0
    assert fold["wfe"] == 0.0
    rows = table(f"sqlite:///{tmp_path / 'results.sqlite'}", result.study_id)
    forward = [r for r in rows if r[1] == "forward"]
    assert len(forward) == 10  # FORWARD_TOP
    assert [r[2] for r in forward] == sorted(r[2] for r in forward)


def test_walk_forward_folds_stitched_equity_and_efficiency(tent: Path, tmp_path: Path) -> None:
    section = {
        "parameters": {E: {"choices": [9, 21]}, X: {"choices": [29, 33]}},
        "method": "grid",
        "walk_forward": {"mode": "rolling", "folds": 2, "in_sample": "1d", "out_of_sample": "1d"},
    }
    cfg = parse_config(study_config(tent, tmp_path, section, end="2024-01-05"), "wf.yaml")

    result = optimize(cfg, base_dir=tmp_path)

    assert [(f["is_start"], f["oos_start"], f["oos_end"]) for f in result.folds] == [
        ("2024-01-02", "2024-01-03", "2024-01-04"),
        ("2024-01-03", "2024-01-04", "2024-01-05"),
    ]
    # fold 0 in-sample (Jan 2): entry 9 then closed at the end, 1.0990 -> 1.1003 = +13; entry 21 at
    # 1.1002 -> 1.1003 = +1. Its out-of-sample day (Jan 3) has no entry hour: flat.
    assert result.folds[0]["best_params"] == {E: 9, X: 29}
    assert result.folds[0]["is_metrics"]["total_net_profit"] == 13.0
    assert result.folds[0]["oos_metrics"]["total_net_profit"] == 0.0
    # fold 1 in-sample (Jan 3): nothing trades; the first pass is best; out-of-sample flat too
    assert result.folds[1]["is_metrics"]["total_net_profit"] == 0.0
    assert [f["wfe"] for f in result.folds] == [0.0, None]  # no in-sample profit: no efficiency
    stitched = result.summary["stitched_oos"]
    assert [v for _, v in stitched] == [10000.0] * len(stitched)
    assert result.summary["oos_net_profit"] == 0.0
    from mt5tester.reports.optimize import study_html

    engine = db.connect(f"sqlite:///{tmp_path / 'results.sqlite'}", use_env=False)
    page = study_html(engine, result.study_id)
    for chart in ('id="heatmap"', 'id="isoos"', 'id="stitched"', "Walk-forward"):
        assert chart in page
    engine.dispose()


def test_study_without_optimize_section_config_error(tent: Path, tmp_path: Path) -> None:
    raw = study_config(tent, tmp_path, {"parameters": SMALL})
    del raw["optimize"]
    from mt5tester.errors import ConfigError

    with pytest.raises(ConfigError, match="no optimize: section"):
        optimize(parse_config(raw, "plain.yaml"), base_dir=tmp_path)


def test_param_value_the_strategy_refuses_fails_before_first_pass(tent: Path, tmp_path: Path) -> None:
    from mt5tester.errors import StrategyLoadError

    section = {"parameters": {E: {"choices": [9, "nine"]}}}

    with pytest.raises(StrategyLoadError) as info:
        run_study(tent, tmp_path, section)

    assert "entry" in str(info.value)
    engine = db.connect(f"sqlite:///{tmp_path / 'results.sqlite'}", use_env=False)
    assert store.list_studies(engine) == []  # refused before the study was created


def test_study_stored_on_postgresql(tent: Path, tmp_path: Path, pg_url: str) -> None:
    raw = study_config(tent, tmp_path, {"parameters": {E: {"choices": [9, 11]}, X: {"choices": [29]}}})
    raw["results"]["database_url"] = pg_url
    cfg = parse_config(raw, "pg.yaml")

    result = optimize(cfg, base_dir=tmp_path)

    engine = db.connect(pg_url, use_env=False)
    rows = store.trials(engine, result.study_id)
    assert [(r["params"], r["score"]) for r in rows] == [({E: 9, X: 29}, 10020.0), ({E: 11, X: 29}, 10018.0)]
    assert store.study_row(engine, result.study_id)["status"] == "completed"
    engine.dispose()


@pytest.mark.slow
def test_sigkilled_study_resumes_to_the_same_table(
    tent: Path, tmp_path: Path, reference: list[tuple]
) -> None:
    """A real SIGKILL of `mt5tester optimize` in the middle of the study, then --resume."""
    from conftest import write_yaml

    config = write_yaml(tmp_path / "study.yaml", study_config(tent, tmp_path, GENETIC, cls="Slow"))
    url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    exe = Path(sys.executable).parent / "mt5tester"
    env = dict(os.environ, SLOW_SECONDS="0.02")
    proc = subprocess.Popen(
        [str(exe), "optimize", "--config", str(config), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    engine = None
    deadline = time.monotonic() + 120
    stored = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if (tmp_path / "results.sqlite").exists():
            engine = engine or db.connect(url, use_env=False)
            ids = store.study_ids(engine)
            stored = len(store.trials(engine, ids[0])) if ids else 0
            if stored >= 5:
                break
    assert proc.poll() is None, f"the study ended before it could be killed: {proc.stderr.read()!r}"
    proc.kill()  # SIGKILL
    proc.wait()
    assert engine is not None
    [study_id] = store.study_ids(engine)
    before = len(store.trials(engine, study_id))
    assert 5 <= before < 12
    assert store.study_row(engine, study_id)["status"] == "running"  # killed: nobody marked it

    done = subprocess.run(
        [str(exe), "optimize", "--resume", study_id, "--db", url, "--workers", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    assert f"{12 - before} passes run, {before} found stored" in done.stdout
    assert table(url, study_id) == reference
    assert store.study_row(engine, study_id)["status"] == "completed"
    engine.dispose()


@pytest.mark.slow
def test_dask_worker_killed_mid_study_loses_no_pass(
    tent: Path, tmp_path: Path, reference: list[tuple], monkeypatch: pytest.MonkeyPatch
) -> None:
    _need_dask()
    marker = tmp_path / "killed"
    monkeypatch.setenv("KILL_MARKER", str(marker))  # LocalCluster workers inherit the environment

    result = run_study(tent, tmp_path, GENETIC, cls="KillOnce", workers=2, scheduler="local")

    assert marker.exists()
    assert table(f"sqlite:///{tmp_path / 'results.sqlite'}", result.study_id) == reference


def test_min_trades_constraint_discards_every_pass(tent: Path, tmp_path: Path) -> None:
    section = {
        "parameters": {E: {"choices": [9, 11]}, X: {"choices": [29]}},
        "min_trades": 2,
        "forward": "1/2",
    }

    result = run_study(tent, tmp_path, section)

    assert result.best is None
    assert (result.summary["passes"], result.summary["discarded"]) == (2, 2)
    rows = table(f"sqlite:///{tmp_path / 'results.sqlite'}", result.study_id)
    assert [(r[1], r[2], r[5]) for r in rows] == [("is", 0, None), ("is", 1, None)]  # no forward pass
    assert result.folds[0]["best_params"] is None and result.folds[0]["oos_metrics"] is None


def test_nsga2_two_objectives_and_coordinator_target(tent: Path, tmp_path: Path) -> None:
    section = {
        "parameters": {E: {"choices": [7, 9]}, "coordinator.max_positions": {"choices": [1, 2]}},
        "method": "nsga2",
        "objectives": ["balance", "drawdown_min"],
        "budget": 4,
        "genetic": {"population": 4},
    }

    result = run_study(tent, tmp_path, section)

    rows = table(f"sqlite:///{tmp_path / 'results.sqlite'}", result.study_id)
    assert sorted((r[3][E], r[3]["coordinator.max_positions"]) for r in rows) == [
        (7, 1),
        (7, 2),
        (9, 1),
        (9, 2),
    ]
    assert result.best is not None and result.best["params"][E] == 9
    assert result.best["score"] == 10012.0  # exit 21 (the default): 1.0990 -> 1.1002, scored by balance
