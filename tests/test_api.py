"""The Python API: run() with its sinks and preloaded data, RunResult frames, load_run, the notebook."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import re
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import mt5tester

from conftest import base_config, write_yaml

FRAMES = ("deals", "orders", "positions", "signals", "equity", "daily_equity")


def _config(data: Path, tmp: Path, **backtest: Any) -> Any:
    return mt5tester.load_config(write_yaml(tmp / "c.yaml", base_config(data, tmp, **backtest)))


def assert_same_run(a: Any, b: Any) -> None:
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), obj=name)
    assert a.metrics == b.metrics
    assert a.funnel | {"mean_call_us": None} == b.funnel | {"mean_call_us": None}  # timings differ
    assert (a.final_balance, a.deal_count, a.status) == (b.final_balance, b.deal_count, b.status)


def test_run_result_frames_have_times_and_names(demo_data: Path, tmp_path: Path) -> None:
    result = mt5tester.run(_config(demo_data, tmp_path), base_dir=tmp_path, sink=mt5tester.MemorySink())
    deals, positions = result.deals, result.positions
    assert result.status == "completed" and len(deals) == result.deal_count > 1
    assert str(deals["time"].dt.tz) == "UTC" and str(result.equity["time"].dt.tz) == "UTC"
    assert deals["type"].iloc[0] == "balance" and set(deals["type"].iloc[1:]) <= {"buy", "sell"}
    assert set(deals["entry"].iloc[1:]) <= {"in", "out"} and "sl" in set(deals["reason"])
    assert set(positions["type"]) <= {"buy", "sell"} and positions["mfe"].notna().all()
    assert set(result.orders["state"]) <= {"filled", "canceled", "placed", "expired"}
    assert result.signals["status"].isin(["approved", "rejected", "resized"]).all()
    assert result.metrics.total_trades == (deals["entry"] == "out").sum()
    assert result.final_balance == pytest.approx(deals["balance"].iloc[-1])
    assert not (tmp_path / "results.sqlite").exists()  # a memory sink opens no database
    # A result is a value: it pickles with its rows and reads the same on the other side.
    assert_same_run(pickle.loads(pickle.dumps(result)), result)


def test_memory_sink_and_sql_sink_give_equal_frames(demo_data: Path, tmp_path: Path) -> None:
    cfg = _config(demo_data, tmp_path, symbols=["EURUSD", "GBPUSD"])
    in_memory = mt5tester.run(cfg, base_dir=tmp_path, sink=mt5tester.MemorySink())
    in_sql = mt5tester.run(cfg, base_dir=tmp_path)
    assert in_memory.run_id != in_sql.run_id
    assert_same_run(in_memory, in_sql)
    loaded = mt5tester.load_run(in_sql.run_id, db=f"sqlite:///{tmp_path / 'results.sqlite'}")
    assert_same_run(loaded, in_sql)
    assert loaded.config == in_sql.config and loaded.run_id == in_sql.run_id


def test_daily_equity_is_folded_from_the_equity_rows_in_any_sink(demo_data: Path, tmp_path: Path) -> None:
    """Per server day (a DST zone, across its change on 2023-11-05): the last equity sample and the day's
    lowest equity, the same from a MemorySink (no database opened at all) as from SQL."""
    cfg = _config(
        demo_data, tmp_path, start="2023-11-04", end="2023-11-10", server_timezone="America/New_York"
    )
    engines: list[Any] = []
    in_memory = mt5tester.run(
        cfg, base_dir=tmp_path, sink=mt5tester.MemorySink(), on_start=lambda c, _: engines.append(c.engine)
    )
    assert engines == [None]  # no throwaway database behind a memory sink
    in_sql = mt5tester.run(cfg, base_dir=tmp_path)
    daily = in_memory.daily_equity
    pd.testing.assert_frame_equal(daily, in_sql.daily_equity)
    eq = in_memory.equity
    local = eq["time"].dt.tz_convert("America/New_York").dt.strftime("%Y-%m-%d")
    expected = eq.groupby(local).agg(
        time=("time", "last"), balance=("balance", "last"), equity=("equity", "last"), low=("equity", "min")
    )
    assert list(daily["day"]) == list(expected.index) and len(daily) >= 5
    assert list(daily["time"]) == list(expected["time"])
    assert list(daily["equity"]) == list(expected["equity"]) and list(daily["balance"]) == list(
        expected["balance"]
    )
    assert list(daily["equity_min"]) == list(expected["low"])
    assert (daily["equity_min"] <= daily["equity"]).all()


def test_memory_sink_equals_postgresql(demo_data: Path, tmp_path: Path, pg_url: str) -> None:
    raw = base_config(demo_data, tmp_path)
    raw["results"]["database_url"] = pg_url
    cfg = mt5tester.load_config(write_yaml(tmp_path / "c.yaml", raw))
    in_sql = mt5tester.run(cfg, base_dir=tmp_path)
    assert_same_run(mt5tester.run(cfg, base_dir=tmp_path, sink=mt5tester.MemorySink()), in_sql)
    assert_same_run(mt5tester.load_run(in_sql.run_id, db=pg_url), in_sql)


def test_run_takes_a_config_path(demo_data: Path, tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", base_config(demo_data, tmp_path))
    by_path = mt5tester.run(path, sink=mt5tester.MemorySink())
    assert_same_run(by_path, mt5tester.run(mt5tester.load_config(path), sink=mt5tester.MemorySink()))


# --- workers: data loaded once per process, four configs run in a spawned pool -----------------------------
_DATA: Any = None


def _init_worker(data: Any) -> None:
    global _DATA
    _DATA = data


def _run_in_worker(cfg: Any, base_dir: Path) -> Any:
    return mt5tester.run(cfg, data=_DATA, sink=mt5tester.MemorySink(), base_dir=base_dir)


def test_four_configs_in_a_process_pool_match_four_cli_runs(
    demo_data: Path, tmp_path: Path, run_cli: Any
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(demo_data, data_dir)
    variants = [
        {"symbols": ["EURUSD"]},
        {"symbols": ["GBPUSD"], "start": "2024-01-15"},
        {"symbols": ["EURUSD", "GBPUSD"], "end": "2024-01-20"},
        {"symbols": ["EURUSD"], "primary_timeframe": "H4", "warmup_bars": 30},
    ]
    configs, stored = [], []
    for k, variant in enumerate(variants):
        folder = tmp_path / f"run{k}"
        folder.mkdir()
        path = write_yaml(folder / "c.yaml", base_config(data_dir, folder, **variant))
        code, _, err = run_cli("backtest", "--config", str(path))
        assert code == 0, err
        url = f"sqlite:///{folder / 'results.sqlite'}"
        (run_id,) = _run_ids(url)
        stored.append(mt5tester.load_run(run_id, db=url))
        configs.append(mt5tester.load_config(path))
    union = configs[2]  # EURUSD and GBPUSD: every symbol the four need
    data = mt5tester.load_data(union)
    shutil.rmtree(data_dir)  # the workers can only use the preloaded data
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=spawn, initializer=_init_worker, initargs=(data,)) as pool:
        results = list(pool.map(_run_in_worker, configs, [tmp_path] * len(configs)))
    for got, want in zip(results, stored, strict=True):
        assert_same_run(got, want)


def _run_ids(url: str) -> list[str]:
    from mt5tester.results.queries import open_results, run_ids

    return run_ids(open_results(url))


# --- the notebook -------------------------------------------------------------------------------------------
def test_notebook_runs_loads_and_plots(demo_data: Path, tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    write_yaml(tmp_path / "config.yaml", base_config(demo_data, tmp_path))
    notebook = nbformat.read(Path(__file__).parent / "notebooks" / "api.ipynb", as_version=4)
    env = {"MPLBACKEND": "Agg", "PYTHONPATH": os.pathsep.join(sys.path)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        nbclient.NotebookClient(
            notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    outputs = "".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        for o in cell.get("outputs", [])
    )
    assert "same run: True" in outputs and "equity points:" in outputs
    assert (tmp_path / "equity.png").stat().st_size > 0


def test_import_is_lazy() -> None:
    """`import mt5tester` (and so `mt5tester --help`) loads no engine, pandas or database code."""
    import subprocess

    code = "import sys, mt5tester; print(sorted(m for m in ('pandas', 'sqlalchemy', 'mt5tester.engine') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert mt5tester.run.__module__ == "mt5tester.engine.run" and "RunResult" in dir(mt5tester)


# --- preloaded data is a cache: used only where it is what the run would read -------------------------------
def test_dataset_is_used_only_for_the_same_source_mode_and_window(demo_data: Path, tmp_path: Path) -> None:
    from mt5tester.engine.dataset import Dataset, history_window

    cfg = _config(demo_data, tmp_path, symbols=["EURUSD", "GBPUSD"])
    data = mt5tester.load_data(cfg)
    assert set(data.symbols) == {"EURUSD", "GBPUSD"} and data.window is None
    assert data.lookup(cfg, "EURUSD") is data.symbols["EURUSD"]
    assert data.lookup(cfg, "USDJPY") is None  # not loaded: the run reads it
    elsewhere = cfg.model_copy(update={"data": cfg.data.model_copy(update={"path": tmp_path})})
    assert data.lookup(elsewhere, "EURUSD") is None
    real = cfg.model_copy(update={"backtest": cfg.backtest.model_copy(update={"tester_mode": "real_ticks"})})
    assert data.lookup(real, "EURUSD") is None  # loaded without recorded ticks
    # A catalog preload covering a wider window is cut to the run's window (what a catalog read returns).
    catalog = cfg.model_copy(update={"data": cfg.data.model_copy(update={"source": "catalog"})})
    want = history_window(catalog)
    assert want is not None
    m1 = data.symbols["EURUSD"].m1
    wide = Dataset(f"catalog:{catalog.data.catalog}", (want[0] - 1, int(m1.time[-1]) + 1), data.symbols)
    got = wide.lookup(catalog, "EURUSD")
    assert got is not None and got.m1.time[0] >= want[0] and got.m1.time[-1] < want[1]
    assert len(got.m1) == len(m1.between(*want))
    narrow = Dataset(wide.source, (want[0] + 1, want[1]), data.symbols)
    assert narrow.lookup(catalog, "EURUSD") is None
    assert pickle.loads(pickle.dumps(data)).symbols["GBPUSD"].m1.time.tolist() == (
        data.symbols["GBPUSD"].m1.time.tolist()
    )


def test_run_with_data_equals_run_from_files(demo_data: Path, tmp_path: Path) -> None:
    cfg = _config(demo_data, tmp_path)
    with_data = mt5tester.run(
        cfg, base_dir=tmp_path, data=mt5tester.load_data(cfg), sink=mt5tester.MemorySink()
    )
    assert_same_run(with_data, mt5tester.run(cfg, base_dir=tmp_path, sink=mt5tester.MemorySink()))


def test_everything_run_takes_and_returns_pickles(demo_data: Path, tmp_path: Path) -> None:
    """Config, Dataset, a Script and the sink go into run() through pickle (as to a worker process); the
    RunResult comes back through pickle (memory rows ride along; a stored run carries its database URL,
    not an open engine) and reads the same as the original, daily equity included."""
    from mt5tester.engine.script import Script

    cfg = _config(demo_data, tmp_path, symbols=["EURUSD", "GBPUSD"])
    data = mt5tester.load_data(cfg)
    cfg2, data2, sink2 = pickle.loads(pickle.dumps((cfg, data, mt5tester.MemorySink())))
    assert cfg2 == cfg and cfg2.config_hash() == cfg.config_hash()
    assert set(data2.symbols) == set(data.symbols) and (data2.source, data2.window) == (
        data.source,
        data.window,
    )
    for sym, entry in data.symbols.items():
        for col in ("time", "open", "high", "low", "close", "spread"):
            assert getattr(data2.symbols[sym].m1, col).tolist() == getattr(entry.m1, col).tolist()
        assert data2.symbols[sym].spec == entry.spec
    job = Script(tmp_path / "x.py", ("--a", "1"))
    assert pickle.loads(pickle.dumps(job)) == job

    in_memory = mt5tester.run(cfg2, base_dir=tmp_path, data=data2, sink=sink2)
    back = pickle.loads(pickle.dumps(in_memory))
    assert_same_run(back, in_memory)
    assert (back.run_id, back.config, back.loop_seconds) == (
        in_memory.run_id,
        in_memory.config,
        in_memory.loop_seconds,
    )

    stored = mt5tester.run(cfg, base_dir=tmp_path, data=data)
    assert_same_run(stored, in_memory)
    blob = pickle.dumps(stored)
    assert b"Engine" not in blob  # the database URL travels, the connection pool does not
    assert_same_run(pickle.loads(blob), stored)


def test_every_caller_runs_through_run() -> None:
    """The CLI, run-script, check-lookahead and the bench call ``mt5tester.run()``; only run() builds the
    components of a backtest and makes the Runner (issue 13: none wires the parts its own way)."""
    root = Path(__file__).resolve().parents[1]
    allowed = {Path("src/mt5tester/engine/run.py")}
    offenders = []
    for path in [*(root / "src").rglob("*.py"), *(root / "bench").rglob("*.py")]:
        rel = path.relative_to(root)
        text = path.read_text()
        if rel in allowed or rel.parts[:3] == ("src", "mt5tester", "live"):
            continue  # live/ is the other driver (a session against a terminal), not a backtest
        if "Runner(" in text or re.search(r"(?<![\w.])build\(", text.replace("def build(", "")):
            offenders.append(str(rel))
    assert offenders == []
