"""Contract tests of live/paper sessions: the live driver against our simulated terminal posing as the
MetaTrader5 module (the module object `terminal.shim` builds, as `import MetaTrader5` gives), with a
faulty connection standing between them where a test needs refusals, lost answers or a crash."""

from __future__ import annotations

import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import create_engine, select

import mt5tester
from mt5tester.config import parse_config
from mt5tester.errors import ConfigError
from mt5tester.live.start import paper
from mt5tester.model import constants as C
from mt5tester.model.structs import OrderSendResult, trade_request_from_dict
from mt5tester.results import db

from conftest import base_config

DEALS = ["time", "symbol", "type", "entry", "reason", "volume", "price", "profit", "commission", "swap"]


def config(data: Path, tmp: Path, **extra: Any) -> Any:
    raw = base_config(data, tmp, end="2024-01-15")
    raw["strategies"][0]["params"].update(sl_points=200, tp_points=400)
    raw["live"] = {"stop_file": str(tmp / "live.stop")}
    for key, value in extra.items():
        raw.setdefault(key, {}).update(value)
    return parse_config(raw)


def trades(deals: pd.DataFrame) -> pd.DataFrame:
    keep = deals[deals["type"].isin(["buy", "sell"])]
    return keep[[*DEALS, "strategy", "signal_id"]].reset_index(drop=True)


def rows(cfg: Any, table: str, run_id: str) -> list[dict[str, Any]]:
    engine = create_engine(cfg.results.database_url)
    t = db.metadata.tables[table]
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(t).where(t.c.run_id == run_id)).mappings()]


class Faulty:
    """A connection to the terminal: passes everything through, except the order_send calls a test
    scripts (``plan``: call number -> what happens). The module is what MetaTrader5 gives."""

    def __init__(self, plan: dict[int, Callable[[Any, dict[str, Any]], Any]]) -> None:
        self.plan, self.calls, self.inner = plan, 0, None
        self.error: tuple[int, str] | None = None

    def __call__(self, mt5: types.ModuleType) -> types.ModuleType:
        self.inner = mt5
        mod = types.ModuleType("MetaTrader5")
        for name in dir(mt5):
            if not name.startswith("__"):
                setattr(mod, name, getattr(mt5, name))
        mod.order_send = self.order_send  # type: ignore[attr-defined]
        mod.last_error = lambda: self.error or mt5.last_error()  # type: ignore[attr-defined]
        mod.initialize = self.initialize  # type: ignore[attr-defined]
        return mod

    def initialize(self, *a: Any, **k: Any) -> bool:
        self.error = None
        return bool(self.inner.initialize(*a, **k))  # type: ignore[union-attr]

    def order_send(self, request: dict[str, Any]) -> Any:
        self.calls += 1
        step = self.plan.get(self.calls)
        return step(self, request) if step else self.inner.order_send(request)  # type: ignore[union-attr]


def refuse(retcode: int) -> Callable[[Faulty, dict[str, Any]], Any]:
    def step(f: Faulty, request: dict[str, Any]) -> Any:
        req = trade_request_from_dict(request)
        return OrderSendResult(
            retcode, 0, 0, 0.0, 0.0, 0.0, 0.0, C.RETCODE_COMMENTS.get(retcode, ""), 0, 0, req
        )

    return step


def lost(executed: bool) -> Callable[[Faulty, dict[str, Any]], Any]:
    """The connection drops in the middle of the order: the server got it (or not), no answer came."""

    def step(f: Faulty, request: dict[str, Any]) -> Any:
        if executed:
            f.inner.order_send(request)  # type: ignore[union-attr]
        f.error = (C.RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")
        return None

    return step


def test_paper_replay_gives_the_backtest_deals(demo_data: Path, tmp_path: Path) -> None:
    cfg = config(demo_data, tmp_path)
    backtest = mt5tester.run(cfg, sink=mt5tester.MemorySink())
    session = paper(cfg, tmp_path)
    assert session.status == "completed"
    stored = mt5tester.load_run(session.run_id, db=cfg.results.database_url)
    ours, theirs = trades(stored.deals), trades(backtest.deals)
    assert len(theirs) > 10
    pd.testing.assert_frame_equal(ours, theirs)
    signals = stored.signals.reset_index(drop=True)
    expected = backtest.signals.reset_index(drop=True)
    assert signals[["signal_id", "time", "direction", "status", "retcode"]].equals(
        expected[["signal_id", "time", "direction", "status", "retcode"]]
    )
    requests = rows(cfg, "live_requests", session.run_id)
    assert [r["outcome"] for r in requests] == ["done"] * len(requests)
    assert all(r["retcode"] == C.TRADE_RETCODE_DONE and r["magic"] == 770_000 for r in requests)


def test_paper_replay_two_weeks_of_shared_eurusd_equals_backtest(shared_data: Path, tmp_path: Path) -> None:
    raw = base_config(
        shared_data / "m1", tmp_path, start="2019-03-04", end="2019-03-18", primary_timeframe="M15"
    )
    raw["strategies"][0]["params"].update(fast=8, slow=21, sl_points=150, tp_points=300)
    raw["data"]["min_health"] = 0
    cfg = parse_config(raw)
    backtest = mt5tester.run(cfg, sink=mt5tester.MemorySink())
    session = paper(cfg, tmp_path)
    stored = mt5tester.load_run(session.run_id, db=cfg.results.database_url)
    assert len(trades(backtest.deals)) > 40
    pd.testing.assert_frame_equal(trades(stored.deals), trades(backtest.deals))


@pytest.mark.parametrize(
    "retcode",
    [
        C.TRADE_RETCODE_NO_MONEY,
        C.TRADE_RETCODE_INVALID_STOPS,
        C.TRADE_RETCODE_MARKET_CLOSED,
        C.TRADE_RETCODE_INVALID_VOLUME,
    ],
)
def test_refused_order_is_recorded_and_not_retried(demo_data: Path, tmp_path: Path, retcode: int) -> None:
    cfg = config(demo_data, tmp_path)
    faulty = Faulty({1: refuse(retcode)})
    session = paper(cfg, tmp_path, wrap=faulty)
    requests = rows(cfg, "live_requests", session.run_id)
    first = requests[0]
    assert (first["signal_id"], first["retcode"], first["outcome"]) == (1, retcode, "refused")
    assert requests[1]["signal_id"] == 2  # the next request is the next signal's: no retry
    signal = next(r for r in rows(cfg, "signals", session.run_id) if r["signal_id"] == 1)
    assert (signal["status"], signal["retcode"], signal["order_ticket"]) == ("approved", retcode, None)
    assert session.funnel["order_failed"] == {C.RETCODE_COMMENTS[retcode]: 1}
    stored = mt5tester.load_run(session.run_id, db=cfg.results.database_url)
    assert 1 not in set(stored.deals["signal_id"].dropna())


@pytest.mark.parametrize("retcode", [C.TRADE_RETCODE_REQUOTE, C.TRADE_RETCODE_PRICE_OFF])
def test_requote_is_resent_at_the_new_price(demo_data: Path, tmp_path: Path, retcode: int) -> None:
    cfg = config(demo_data, tmp_path)
    backtest = mt5tester.run(cfg, sink=mt5tester.MemorySink())
    session = paper(cfg, tmp_path, wrap=Faulty({1: refuse(retcode), 2: refuse(retcode)}))
    requests = rows(cfg, "live_requests", session.run_id)
    assert [(r["signal_id"], r["outcome"]) for r in requests[:3]] == [
        (1, "requote"),
        (1, "requote"),
        (1, "done"),
    ]
    stored = mt5tester.load_run(session.run_id, db=cfg.results.database_url)
    pd.testing.assert_frame_equal(trades(stored.deals), trades(backtest.deals))


def test_requotes_beyond_the_retries_refuse_the_order(demo_data: Path, tmp_path: Path) -> None:
    cfg = config(demo_data, tmp_path, live={"requote_retries": 1})
    session = paper(
        cfg, tmp_path, wrap=Faulty({1: refuse(C.TRADE_RETCODE_REQUOTE), 2: refuse(C.TRADE_RETCODE_REQUOTE)})
    )
    requests = rows(cfg, "live_requests", session.run_id)
    assert [(r["signal_id"], r["outcome"]) for r in requests[:3]] == [
        (1, "requote"),
        (1, "refused"),
        (2, "done"),
    ]
    assert session.funnel["order_failed"] == {"Requote": 1}


@pytest.mark.parametrize("executed", [True, False])
def test_disconnect_mid_order_sends_it_exactly_once(demo_data: Path, tmp_path: Path, executed: bool) -> None:
    cfg = config(demo_data, tmp_path)
    backtest = mt5tester.run(cfg, sink=mt5tester.MemorySink())
    session = paper(cfg, tmp_path, wrap=Faulty({1: lost(executed)}))
    requests = rows(cfg, "live_requests", session.run_id)
    first, second = requests[0], requests[1]
    assert (first["signal_id"], first["outcome"], first["retcode"]) == (1, "no_answer", None)
    assert first["last_error"] == [C.RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection"]
    assert (second["signal_id"], second["outcome"]) == (1, "found" if executed else "done")
    stored = mt5tester.load_run(session.run_id, db=cfg.results.database_url)
    pd.testing.assert_frame_equal(trades(stored.deals), trades(backtest.deals))  # one entry for signal 1


class Crash(Exception):
    pass


def test_restart_after_a_crash_reconciles_and_sends_no_order_twice(demo_data: Path, tmp_path: Path) -> None:
    """The process dies right after the broker executed signal 3's order; the restarted session repeats
    that point, finds the order in the terminal and does not send it again."""
    cfg = config(demo_data, tmp_path)
    backtest = mt5tester.run(cfg, sink=mt5tester.MemorySink())
    terminal: dict[str, Any] = {}

    def crash(f: Faulty, request: dict[str, Any]) -> Any:
        f.inner.order_send(request)  # type: ignore[union-attr]
        raise Crash("killed")

    def keep(mt5: types.ModuleType) -> types.ModuleType:
        terminal["mt5"] = mt5
        return Faulty({4: crash})(mt5)

    from mt5tester.engine.build import build
    from mt5tester.engine.preflight import day_ns
    from mt5tester.live.clock import ReplayClock
    from mt5tester.live.session import Session
    from mt5tester.terminal.shim import build_module

    c = build(cfg, tmp_path)
    mt5 = build_module(c.terminal)
    start, end = day_ns(cfg.backtest.start), day_ns(cfg.backtest.end)
    with pytest.raises(Crash):
        Session(c, keep(mt5), ReplayClock(c.terminal, start, end), "paper", c.regimes, end).run()
    first_id = rows_any(cfg, "live_sessions")[0]["run_id"]
    open_before = [p.comment for p in mt5.positions_get()]
    assert open_before == ["signal 3"]
    c2 = build(cfg, tmp_path)  # a new process: new strategies and coordinator, the same terminal
    c2.server, c2.terminal = c.server, c.terminal
    c2.coordinator = c.coordinator
    session = Session(c2, mt5, ReplayClock(c.terminal, start, end), "paper", c2.regimes, end).run()
    assert session.run_id == first_id
    requests = rows(cfg, "live_requests", first_id)
    # the process died before recording its request: the repeat finds the position and records that
    assert [(r["signal_id"], r["outcome"]) for r in requests if r["signal_id"] == 3] == [(3, "duplicate")]
    stored = mt5tester.load_run(first_id, db=cfg.results.database_url)
    pd.testing.assert_frame_equal(trades(stored.deals), trades(backtest.deals))
    # the funnel went on from the saved state: the repeated point is counted once
    for key in ("decision_points", "signals_generated", "approved", "executed", "strategy_calls"):
        assert session.funnel[key] == backtest.funnel[key], key


def test_restart_repeating_a_point_reviews_it_as_the_backtest_did(demo_data: Path, tmp_path: Path) -> None:
    """Two strategies enter at the same points under max_positions 2. The process dies right after the
    broker filled the first one's entry of a point; the restarted session repeats that point: the
    coordinator leaves out the position that point's own signal opened (it did not exist at the point's
    review), so the second entry is approved as in the backtest, not rejected for max_positions."""
    raw = base_config(demo_data, tmp_path, end="2024-01-15")
    raw["strategies"] = [
        {
            "class": "ma_cross",
            "name": name,
            "params": {"fast": 5, "slow": 20, "sl_points": 200, "tp_points": 400},
        }
        for name in ("a", "b")
    ]
    raw["live"] = {"stop_file": str(tmp_path / "live.stop")}
    raw["coordinator"] = {"max_positions": 2}
    cfg = parse_config(raw)
    backtest = mt5tester.run(cfg, sink=mt5tester.MemorySink())
    assert backtest.funnel["rejected"] == {} and backtest.funnel["executed"] >= 6
    entries_of_a: list[dict[str, Any]] = []

    def crash_on_second_entry_of_a(f: Faulty, request: dict[str, Any]) -> Any:
        is_entry = not request.get("position")
        if is_entry and request["magic"] == 770_000:
            entries_of_a.append(request)
        out = f.inner.order_send(request)  # type: ignore[union-attr]
        if is_entry and len(entries_of_a) == 2:
            raise Crash("killed")
        return out

    class Dies(Faulty):
        def order_send(self, request: dict[str, Any]) -> Any:
            return crash_on_second_entry_of_a(self, request)

    from mt5tester.engine.build import build
    from mt5tester.engine.preflight import day_ns
    from mt5tester.live.clock import ReplayClock
    from mt5tester.live.session import Session
    from mt5tester.terminal.shim import build_module

    c = build(cfg, tmp_path)
    mt5 = build_module(c.terminal)
    start, end = day_ns(cfg.backtest.start), day_ns(cfg.backtest.end)
    with pytest.raises(Crash):
        Session(c, Dies({})(mt5), ReplayClock(c.terminal, start, end), "paper", c.regimes, end).run()
    crashed_with = entries_of_a[1]["comment"]
    assert crashed_with in [p.comment for p in mt5.positions_get()]  # filled before the crash
    c2 = build(cfg, tmp_path)  # a new process: new strategies and coordinator, the same terminal
    c2.server, c2.terminal = c.server, c.terminal
    c2.coordinator = c.coordinator  # reads the same terminal
    session = Session(c2, mt5, ReplayClock(c.terminal, start, end), "paper", c2.regimes, end).run()
    assert session.funnel["rejected"] == {}
    for key in ("signals_generated", "approved", "executed"):
        assert session.funnel[key] == backtest.funnel[key], key
    stored = mt5tester.load_run(session.run_id, db=cfg.results.database_url)
    pd.testing.assert_frame_equal(trades(stored.deals), trades(backtest.deals))


def rows_any(cfg: Any, table: str) -> list[dict[str, Any]]:
    engine = create_engine(cfg.results.database_url)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(db.metadata.tables[table])).mappings()]


@pytest.mark.parametrize("mode", ["close", "freeze"])
def test_kill_switch_stop_file_closes_or_freezes(demo_data: Path, tmp_path: Path, mode: str) -> None:
    cfg = config(demo_data, tmp_path, live={"kill_switch": mode})
    stop_file = tmp_path / "live.stop"

    def send_then_stop(f: Faulty, request: dict[str, Any]) -> Any:
        stop_file.write_text("stop")  # `mt5tester live stop` writes this file
        return f.inner.order_send(request)  # type: ignore[union-attr]

    faulty = Faulty({1: send_then_stop})
    session = paper(cfg, tmp_path, wrap=faulty)
    assert (session.status, session.stopped_by) == ("stopped", f"stop file {stop_file}")
    stored = mt5tester.load_run(session.run_id, db=cfg.results.database_url)
    deals = trades(stored.deals)
    assert list(deals["entry"]) == (["in", "out"] if mode == "close" else ["in"])
    assert stored.status == "stopped"
    positions = faulty.inner.positions_get()  # type: ignore[union-attr]
    assert len(positions) == (0 if mode == "close" else 1)
    if mode == "close":
        assert stored.deals["comment"].iloc[-1] == "kill switch"


def test_preflight_lists_symbol_differences_and_refuses_missing_symbols(
    demo_data: Path, tmp_path: Path
) -> None:
    cfg = config(demo_data, tmp_path)

    def broker(mt5: types.ModuleType) -> types.ModuleType:
        mod = Faulty({})(mt5)
        mod.symbol_info = lambda s: mt5.symbol_info(s)._replace(volume_step=0.1, trade_stops_level=10)  # type: ignore[attr-defined]
        return mod

    session = paper(cfg, tmp_path, wrap=broker)
    assert session.preflight.differences == [
        "EURUSD: volume_step broker 0.1, config 0.01",
        "EURUSD: trade_stops_level broker 10, config 0",
    ]

    def no_symbol(mt5: types.ModuleType) -> types.ModuleType:
        mod = Faulty({})(mt5)
        mod.symbol_info = lambda s: None  # type: ignore[attr-defined]
        return mod

    with pytest.raises(ConfigError, match="preflight: symbol EURUSD is not offered by mt5tester-Sim"):
        paper(cfg, tmp_path, wrap=no_symbol)


def test_live_without_metatrader5_package_is_a_preflight_error(
    demo_data: Path, tmp_path: Path, run_cli: Any
) -> None:
    import yaml

    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(config(demo_data, tmp_path).effective() | {}, sort_keys=False))
    code, _out, err = run_cli("live", "--config", str(path), "--module", "MetaTrader5_absent")
    assert code == 2
    assert "preflight: cannot import the MetaTrader5-API module 'MetaTrader5_absent'" in err
    assert "pip install MetaTrader5" in err


def test_report_compare_paper_with_backtest_shows_the_gap(
    demo_data: Path, tmp_path: Path, run_cli: Any
) -> None:
    """Same period and strategies; the paper session pays 3 points of slippage per market fill."""
    cfg = config(demo_data, tmp_path)
    backtest = mt5tester.run(cfg)
    slipped = config(demo_data, tmp_path, execution={"slippage": {"model": "fixed", "points": 3}})
    session = paper(slipped, tmp_path)
    code, out, err = run_cli(
        "report",
        "compare",
        backtest.run_id,
        session.run_id,
        "--db",
        cfg.results.database_url,
        "--out",
        str(tmp_path),
    )
    assert code == 0, err
    from mt5tester.reports.live_compare import trade_gap

    engine = create_engine(cfg.results.database_url)
    gap = trade_gap(engine, session.run_id, backtest.run_id)
    n = len(trades(backtest.deals)[lambda d: d["entry"] == "in"])
    s = gap.summary
    assert (s["trades_live"], s["trades_backtest"], s["matched"], s["only_live"], s["only_backtest"]) == (
        n,
        n,
        n,
        0,
        0,
    )
    assert (s["entry_delay_mean_s"], s["entry_delay_max_s"], s["entry_slippage_mean_points"]) == (
        0.0,
        0.0,
        3.0,
    )
    assert s["costs_gap"] == 0.0
    assert set(gap.trades["entry_slippage_points"]) == {3.0}
    assert s["net_gap"] == round(s["net_live"] - s["net_backtest"], 2) < 0
    assert f"matched: {n}" in out and "entry_slippage_mean_points: 3.0" in out
    assert (tmp_path / f"live_vs_backtest_{session.run_id}_{backtest.run_id}.html").is_file()


def test_data_download_round_trip_through_the_simulated_terminal(
    demo_data: Path, tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our terminal posing as the MetaTrader5 module: downloaded bars equal the source's, in UTC from
    the server clock; a second download resumes after the last bar and stores nothing twice."""
    import numpy as np

    from mt5tester.data.catalog import Catalog
    from mt5tester.engine.build import build
    from mt5tester.engine.preflight import day_ns
    from mt5tester.model.timeframe import Timeframe
    from mt5tester.terminal.shim import build_module

    cfg = config(demo_data, tmp_path, backtest={"server_timezone": "Europe/Athens", "end": "2024-02-01"})
    c = build(cfg, tmp_path)
    c.terminal.set_time(day_ns("2024-01-20") + 30 * 60 * 10**9)  # mid-bar: the forming bar is not stored
    monkeypatch.setitem(__import__("sys").modules, "MetaTrader5", build_module(c.terminal))
    catalog = tmp_path / "catalog"
    args = ["data", "download", "--symbols", "EURUSD", "--timeframes", "M1,H1", "--start", "2024-01-02"]
    args += ["--tz", "Europe/Athens", "--catalog", str(catalog), "--json"]
    code, out, err = run_cli(*args, "--end", "2024-01-10")
    assert code == 0, err
    code, out, err = run_cli(*args, "--end", "2024-01-25")
    assert code == 0, err
    import json

    second = json.loads(out)
    assert [(r["timeframe"], r["duplicates"], r["resumed_from"] is not None) for r in second] == [
        ("M1", 0, True),
        ("H1", 0, True),
    ]
    code, out, err = run_cli(*args, "--end", "2024-01-25")
    assert [r["new"] for r in json.loads(out)] == [0, 0]  # idempotent
    cat = Catalog(catalog)
    lo, now = day_ns("2024-01-02"), c.terminal.market.now
    for tf in (Timeframe.M1, Timeframe.H1):
        got = cat.load("EURUSD", tf)
        src = c.tf_bars[("EURUSD", tf)] if tf is not Timeframe.M1 else c.m1["EURUSD"]
        # the bar of the terminal's last tick is never stored (it may still change): index 0 of copy_rates
        forming = src.time[np.searchsorted(src.time, now, "right") - 1]
        closed = (src.time >= lo) & (src.time < forming)
        assert int(closed.sum()) > (19 * 24 * 60 * 0.6 if tf is Timeframe.M1 else 19 * 24 * 0.6)
        assert np.array_equal(got.time, src.time[closed])
        for col in ("open", "high", "low", "close", "tick_volume"):
            assert np.array_equal(getattr(got, col), getattr(src, col)[closed]), col
    assert cat.info("EURUSD", "M1")["sources"][0]["tz"] == "Europe/Athens"


CLI = "import sys; from mt5tester.cli import main; sys.exit(main(sys.argv[1:]))"
FAKE_MT5 = '''
"""A MetaTrader5 module for the subprocess tests: our simulated terminal, stopped at a moment, with a
position our strategy opened before the session (as a terminal left running over a restart)."""
import os, sys
from pathlib import Path
from mt5tester.config import load_config
from mt5tester.engine.build import build
from mt5tester.engine.preflight import day_ns
from mt5tester.terminal.shim import build_module

path = Path(os.environ["FAKE_MT5_CONFIG"])
c = build(load_config(path), path.parent)
t = day_ns("2024-01-10") + 30 * 60 * 10**9
c.server.advance(t)
c.terminal.set_time(t)
c.terminal.connected = True
mt5 = build_module(c.terminal)
mt5.order_send({"action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.1, "type": mt5.ORDER_TYPE_BUY,
                "magic": 770000, "comment": "signal 1"})
sys.modules[__name__] = mt5
'''


def _live_process(demo_data: Path, tmp_path: Path, kill_switch: str) -> tuple[Any, Path, Any]:
    import os
    import subprocess
    import sys
    import time

    import yaml

    cfg = config(demo_data, tmp_path, live={"kill_switch": kill_switch, "poll_seconds": 0.05})
    path = tmp_path / "live.yaml"
    effective = cfg.effective()
    path.write_text(yaml.safe_dump(effective, sort_keys=False))
    (tmp_path / "fake_mt5.py").write_text(FAKE_MT5)
    env = os.environ | {
        "FAKE_MT5_CONFIG": str(path),
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "live", "--config", str(path), "--module", "fake_mt5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if rows_any(cfg, "live_sessions"):
                break
        except Exception:
            pass
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    return proc, path, cfg


def test_live_cli_stop_closes_what_the_session_reconciled(demo_data: Path, tmp_path: Path) -> None:
    """`mt5tester live --module` trades a MetaTrader5-API module; on start it reconciles the position
    its strategy had open; `mt5tester live stop` makes it close it (kill_switch: close) and exit 0."""
    import subprocess
    import sys

    proc, path, cfg = _live_process(demo_data, tmp_path, "close")
    stop = subprocess.run(
        [sys.executable, "-c", CLI, "live", "stop", "--config", str(path)],
        capture_output=True,
        text=True,
    )
    assert stop.returncode == 0 and f"stop requested: {tmp_path / 'live.stop'}" in stop.stdout
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    run_id = rows_any(cfg, "live_sessions")[0]["run_id"]
    assert f"session {run_id} stopped (stop file {tmp_path / 'live.stop'})" in out
    deals = mt5tester.load_run(run_id, db=cfg.results.database_url).deals
    assert list(zip(deals["entry"], deals["comment"], deals["signal_id"], strict=True)) == [
        ("in", "signal 1", 1),
        ("out", "kill switch", 1),
    ]


def test_live_sigterm_freezes_and_shuts_down_gracefully(demo_data: Path, tmp_path: Path) -> None:
    import signal

    proc, _path, cfg = _live_process(demo_data, tmp_path, "freeze")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    run_id = rows_any(cfg, "live_sessions")[0]["run_id"]
    assert f"session {run_id} stopped (SIGTERM)" in out
    stored = mt5tester.load_run(run_id, db=cfg.results.database_url)
    assert stored.status == "stopped"
    assert list(stored.deals["entry"]) == ["in"]  # frozen: the position stays open
    assert stored.positions["time_close"].isna().all()


def test_paper_cli_replays_at_speed(demo_data: Path, tmp_path: Path, run_cli: Any) -> None:
    import yaml

    cfg = config(demo_data, tmp_path)
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(cfg.effective(), sort_keys=False))
    code, out, err = run_cli("paper", "--config", str(path), "--from", "2024-01-08", "--to", "2024-01-10")
    assert code == 0, err
    run_id = rows_any(cfg, "live_sessions")[0]["run_id"]
    assert f"session {run_id} completed; records in {cfg.results.database_url}" in out
    assert "Lifecycle funnel" in out
    window = parse_config(
        cfg.effective()
        | {"backtest": cfg.effective()["backtest"] | {"start": "2024-01-08", "end": "2024-01-10"}}
    )
    backtest = mt5tester.run(window, sink=mt5tester.MemorySink())
    stored = mt5tester.load_run(run_id, db=cfg.results.database_url)
    pd.testing.assert_frame_equal(trades(stored.deals), trades(backtest.deals))


def test_paper_replay_with_coordinator_breakers_and_regimes_equals_backtest(
    demo_data: Path, tmp_path: Path
) -> None:
    """Two symbols, two strategies on two timeframes, risk sizing, a regime gate and the daily loss /
    drawdown breakers (closing everything on a breach): the same decisions and deals as the backtest."""
    raw = base_config(demo_data, tmp_path, end="2024-02-01", symbols=["EURUSD", "GBPUSD"])
    raw["strategies"] = [
        {
            "class": "ma_cross",
            "name": "fast",
            "params": {"fast": 5, "slow": 20, "sl_points": 150, "tp_points": 300},
        },
        {"class": "donchian_trend", "name": "don", "timeframe": "M30", "symbols": ["GBPUSD"]},
    ]
    raw["coordinator"] = {
        "sizing": {"mode": "risk", "risk_pct": 2.0},
        "daily_loss_limit_pct": 0.5,
        "max_drawdown_pct": 3.0,
        "close_all_on_breach": True,
        "regime_gate": {"fast": ["trending_up", "trending_down", "ranging"]},
    }
    raw["regime"] = {"enabled": True, "timeframe": "H1", "atr_pct_window": 50}
    raw["live"] = {"stop_file": str(tmp_path / "live.stop")}
    cfg = parse_config(raw)
    backtest = mt5tester.run(cfg, sink=mt5tester.MemorySink())
    session = paper(cfg, tmp_path)
    stored = mt5tester.load_run(session.run_id, db=cfg.results.database_url)
    decided = [
        "signal_id",
        "time",
        "strategy",
        "symbol",
        "direction",
        "status",
        "rule",
        "reason",
        "volume",
        "retcode",
    ]
    assert set(backtest.signals["status"]) >= {"approved", "rejected"}
    assert backtest.funnel["circuit_breaker_closes"] > 0
    pd.testing.assert_frame_equal(
        stored.signals[decided].reset_index(drop=True), backtest.signals[decided].reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(trades(stored.deals), trades(backtest.deals))
    assert session.funnel["circuit_breaker_closes"] == backtest.funnel["circuit_breaker_closes"]


def test_strategy_own_orders_are_reviewed_and_traded_as_in_the_backtest(
    demo_data: Path, tmp_path: Path
) -> None:
    """order_send, Buy, Sell and Close through self.ctx.mt5: reviewed like signals (a rejection by
    max_positions included), the same deals as the backtest's, each entry idempotent by its comment."""
    from conftest import STRATEGIES_FILE

    plan = [
        {"at": 3, "do": "send", "sl_points": 150, "tp_points": 300},
        {"at": 6, "do": "send_pending", "order_type": "limit", "offset": 30},
        {"at": 9, "do": "buy_helper"},
        {"at": 10, "do": "sell_helper"},
        {"at": 14, "do": "close"},
        {"at": 20, "do": "send", "direction": "sell"},
    ]
    raw = base_config(demo_data, tmp_path, end="2024-01-10")
    raw["strategies"] = [{"class": f"{STRATEGIES_FILE}:Planned", "name": "planner", "params": {"plan": plan}}]
    raw["coordinator"] = {"max_positions": 2}
    raw["live"] = {"stop_file": str(tmp_path / "live.stop")}
    cfg = parse_config(raw)
    backtest = mt5tester.run(cfg, sink=mt5tester.MemorySink())
    session = paper(cfg, tmp_path)
    stored = mt5tester.load_run(session.run_id, db=cfg.results.database_url)
    assert "rejected" in set(backtest.signals["status"])
    decided = ["signal_id", "time", "direction", "order_type", "status", "reason", "volume", "retcode"]
    pd.testing.assert_frame_equal(
        stored.signals[decided].reset_index(drop=True), backtest.signals[decided].reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(trades(stored.deals), trades(backtest.deals))
    entries = stored.deals[stored.deals["entry"] == "in"]
    assert list(entries["comment"]) == [f"signal {i}" for i in entries["signal_id"]]
    assert session.funnel["strategy_order_sends"] == backtest.funnel["strategy_order_sends"]


def test_wall_clock_reconnects_a_lost_terminal_or_gives_up(demo_data: Path, tmp_path: Path) -> None:
    from mt5tester.engine.build import build
    from mt5tester.engine.preflight import day_ns
    from mt5tester.live.clock import WallClock
    from mt5tester.live.terminal import ServerClock
    from mt5tester.terminal.shim import build_module

    cfg = config(demo_data, tmp_path)
    c = build(cfg, tmp_path)
    t = day_ns("2024-01-10") + 10 * 60 * 10**9
    c.server.advance(t)
    c.terminal.set_time(t)
    mt5 = build_module(c.terminal)
    mt5.initialize()
    server = ServerClock("UTC")
    clock = WallClock(mt5, lambda s: int(server.to_utc_ns([s])[0]), poll=0.0, sleep=lambda s: None)
    clock.start(["EURUSD"])
    assert clock.now() == t
    tries: list[int] = []

    def reconnect() -> bool:
        tries.append(1)
        return bool(mt5.initialize())

    clock.reconnect = reconnect
    mt5.shutdown()
    assert clock.wait({"EURUSD": t}, lambda: False) == t
    assert tries == [1]
    mt5.shutdown()
    clock.reconnect = lambda: False
    assert clock.wait({"EURUSD": t + 1}, lambda: False) is None
    assert (
        clock.lost
        == f"connection lost ({C.RES_E_INTERNAL_FAIL_CONNECT}: {C.LAST_ERROR_MESSAGES[C.RES_E_INTERNAL_FAIL_CONNECT]})"
    )


def test_server_clock_reads_a_repeated_dst_hour_in_order() -> None:
    """Europe/Athens falls back at 04:00 on 2023-10-29: 03:00-03:59 happens twice; M1 bars in order."""
    import numpy as np

    from mt5tester.live.terminal import ServerClock

    clock = ServerClock("Europe/Athens")
    utc = pd.date_range("2023-10-29 00:00", "2023-10-29 01:59", freq="min", tz="UTC")
    server_s = np.array([clock.to_server_s(int(x.value)) for x in utc])
    assert int(np.diff(server_s).min()) < 0  # the wall clock goes back an hour
    assert np.array_equal(clock.to_utc_ns(server_s), utc.as_unit("ns").asi8)


def test_a_stop_file_left_by_an_earlier_stop_does_not_stop_the_next_session(
    demo_data: Path, tmp_path: Path
) -> None:
    cfg = config(demo_data, tmp_path)
    (tmp_path / "live.stop").write_text("old")
    session = paper(cfg, tmp_path)
    assert (session.status, session.stopped_by) == ("completed", None)
    assert not (tmp_path / "live.stop").exists()


def test_paper_on_live_quotes_trades_as_the_backtest(demo_data: Path, tmp_path: Path) -> None:
    """A live terminal (our simulated one, minute by minute) feeds the quotes; the session trades our
    simulated terminal rebuilt on them and makes the backtest's deals (positions left open: freeze)."""
    from mt5tester.engine.build import build
    from mt5tester.engine.preflight import day_ns
    from mt5tester.live.session import StopSwitch
    from mt5tester.live.start import paper_on_quotes
    from mt5tester.terminal.shim import build_module

    start, end_day = "2024-01-08", "2024-01-12"
    cfg = config(demo_data, tmp_path, backtest={"start": start, "end": end_day, "close_at_end": False})
    cfg = parse_config(
        cfg.effective() | {"live": cfg.effective()["live"] | {"kill_switch": "freeze", "poll_seconds": 0.001}}
    )
    source = build(cfg, tmp_path)
    t0, end = day_ns(start) - 1, day_ns(end_day)
    source.server.advance(t0)
    source.terminal.set_time(t0)
    live_quotes = build_module(source.terminal)
    stop_file = tmp_path / "live.stop"
    now = {"t": day_ns(start) - 60 * 10**9}

    def minute_passes(_seconds: float) -> None:
        now["t"] += 60 * 10**9
        if now["t"] >= end:
            stop_file.write_text("end")
            return
        source.server.advance(now["t"])
        source.terminal.set_time(now["t"])

    minute_passes(0)
    session = paper_on_quotes(
        cfg, tmp_path, stop=StopSwitch(stop_file), source=live_quotes, sleep=minute_passes
    )
    backtest = mt5tester.run(cfg, sink=mt5tester.MemorySink())
    stored = mt5tester.load_run(session.run_id, db=cfg.results.database_url)
    assert len(trades(backtest.deals)) > 4
    pd.testing.assert_frame_equal(trades(stored.deals), trades(backtest.deals))


@pytest.mark.parametrize("filling_mode, expected", [(1, 0), (2, 1), (3, 0), (0, 2)])
def test_market_orders_use_a_filling_the_symbol_allows(
    demo_data: Path, tmp_path: Path, filling_mode: int, expected: int
) -> None:
    cfg = config(demo_data, tmp_path, backtest={"end": "2024-01-04"})

    def broker(mt5: types.ModuleType) -> types.ModuleType:
        mod = Faulty({})(mt5)
        mod.symbol_info = lambda s: mt5.symbol_info(s)._replace(filling_mode=filling_mode)  # type: ignore[attr-defined]
        return mod

    session = paper(cfg, tmp_path, wrap=broker)
    requests = rows(cfg, "live_requests", session.run_id)
    assert requests and {r["request"]["type_filling"] for r in requests} == {expected}


def test_paper_session_and_its_restart_on_postgresql(demo_data: Path, tmp_path: Path, pg_url: str) -> None:
    """The live tables on PostgreSQL: requests written at once, the state a restart continues from."""
    import uuid

    from sqlalchemy import make_url, text

    name = f"mt5tester_live_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
        cfg = config(demo_data, tmp_path, results={"database_url": url})
        backtest = mt5tester.run(cfg, sink=mt5tester.MemorySink())
        session = paper(cfg, tmp_path, wrap=Faulty({1: lost(True)}))
        stored = mt5tester.load_run(session.run_id, db=url)
        pd.testing.assert_frame_equal(trades(stored.deals), trades(backtest.deals))
        requests = rows(cfg, "live_requests", session.run_id)
        assert [r["outcome"] for r in requests[:2]] == ["no_answer", "found"]
        state = rows(cfg, "live_sessions", session.run_id)[0]["state"]
        assert state["signal_seq"] == len(backtest.signals)
        create_engine(url).dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_terminal_refusals_match_the_backtest(demo_data: Path, tmp_path: Path) -> None:
    """No mock in between: the simulated terminal itself refuses for lack of money (5 lots on 100 USD)
    and for an invalid volume (0.015 lots, step 0.01), as the backtest's router saw it."""
    for volume, retcode in ((5.0, C.TRADE_RETCODE_NO_MONEY), (0.015, C.TRADE_RETCODE_INVALID_VOLUME)):
        folder = tmp_path / str(volume)
        folder.mkdir()
        cfg = config(demo_data, folder, backtest={"initial_deposit": 100, "end": "2024-01-05"})
        cfg = parse_config(
            cfg.effective() | {"strategies": [cfg.effective()["strategies"][0] | {"volume": volume}]}
        )
        backtest = mt5tester.run(cfg, sink=mt5tester.MemorySink())
        session = paper(cfg, folder)
        stored = mt5tester.load_run(session.run_id, db=cfg.results.database_url)
        assert set(backtest.signals["retcode"]) == {retcode}
        columns = ["signal_id", "time", "direction", "status", "retcode", "order_ticket"]
        pd.testing.assert_frame_equal(
            stored.signals[columns].reset_index(drop=True), backtest.signals[columns].reset_index(drop=True)
        )
        assert {r["outcome"] for r in rows(cfg, "live_requests", session.run_id)} == {"refused"}
        assert session.funnel["order_failed"] == backtest.funnel["order_failed"]


def test_data_download_ticks_round_trip(demo_data: Path, tmp_path: Path) -> None:
    import numpy as np

    from mt5tester.data.catalog import Catalog
    from mt5tester.engine.build import build
    from mt5tester.engine.preflight import day_ns
    from mt5tester.live.download import download
    from mt5tester.terminal.shim import build_module

    cfg = config(demo_data, tmp_path, backtest={"server_timezone": "+02:00"})
    c = build(cfg, tmp_path)
    c.terminal.set_time(day_ns("2024-01-12"))
    mt5 = build_module(c.terminal)
    lo, hi = day_ns("2024-01-09"), day_ns("2024-01-11")
    cat = Catalog(tmp_path / "catalog")
    rows_ = download(mt5, cat, ["EURUSD"], ["TICKS"], lo, hi, "+02:00")
    again = download(mt5, cat, ["EURUSD"], ["TICKS"], lo, hi, "+02:00")
    source = mt5.copy_ticks_range("EURUSD", lo // 10**9 + 7200, hi // 10**9 + 7200, mt5.COPY_TICKS_ALL)
    got = cat.load_ticks("EURUSD")
    want_time = (source["time_msc"] - 7_200_000) * 1_000_000
    assert rows_[0]["new"] == int((want_time < hi).sum()) > 2000 and again[0]["new"] == 0
    assert np.array_equal(got.time, want_time[want_time < hi])
    assert np.array_equal(got.bid, source["bid"][want_time < hi])
    assert np.array_equal(got.ask, source["ask"][want_time < hi])


def test_restarted_session_continues_its_daily_equity(demo_data: Path, tmp_path: Path) -> None:
    """A session dies days into its run; the restarted one's daily_equity rows are exactly those of an
    uninterrupted session (the days before the crash folded again from the stored equity rows)."""
    from mt5tester.engine.build import build
    from mt5tester.engine.preflight import day_ns
    from mt5tester.live.clock import ReplayClock
    from mt5tester.live.session import Session
    from mt5tester.terminal.shim import build_module

    cfg = config(demo_data, tmp_path)
    whole = paper(cfg, tmp_path)
    expected = sorted(rows(cfg, "daily_equity", whole.run_id), key=lambda r: r["day"])

    def crash(f: Faulty, request: dict[str, Any]) -> Any:
        f.inner.order_send(request)  # type: ignore[union-attr]
        raise Crash("killed")

    c = build(cfg, tmp_path)
    mt5 = build_module(c.terminal)
    start, end = day_ns(cfg.backtest.start), day_ns(cfg.backtest.end)
    with pytest.raises(Crash):
        Session(
            c, Faulty({12: crash})(mt5), ReplayClock(c.terminal, start, end), "paper", c.regimes, end
        ).run()
    first_id = next(r["run_id"] for r in rows_any(cfg, "live_sessions") if r["run_id"] != whole.run_id)
    crashed_at = max(r["time"] for r in rows(cfg, "equity", first_id))
    days_before = {r["day"] for r in expected if r["time"] < crashed_at}
    assert len(days_before) >= 3  # the crash is days into the run
    c2 = build(cfg, tmp_path)  # a new process: the same terminal
    c2.server, c2.terminal, c2.coordinator = c.server, c.terminal, c.coordinator
    session = Session(c2, mt5, ReplayClock(c.terminal, start, end), "paper", c2.regimes, end).run()
    assert session.run_id == first_id and session.status == "completed"
    daily = sorted(rows(cfg, "daily_equity", first_id), key=lambda r: r["day"])
    assert len(expected) >= 8
    assert [r | {"run_id": ""} for r in daily] == [r | {"run_id": ""} for r in expected]


def test_paper_positions_have_the_backtest_mfe_and_mae(demo_data: Path, tmp_path: Path) -> None:
    """MFE/MAE of a session's positions, measured on the M1 bars its terminal gave over their lives and
    priced by the terminal's order_calc_profit, are the backtest's (results/rows.py on trigger bars)."""
    cfg = config(demo_data, tmp_path)
    backtest = mt5tester.run(cfg, sink=mt5tester.MemorySink())
    session = paper(cfg, tmp_path)
    keep = ["symbol", "type", "volume", "time_open", "time_close", "price_open", "price_close", "net"]
    keep += ["mfe", "mae", "close_reason", "strategy", "signal_id"]
    ours = sorted(rows(cfg, "positions", session.run_id), key=lambda r: r["time_open"])
    theirs = backtest.positions.sort_values("time_open").reset_index(drop=True)
    assert len(ours) == len(theirs) > 10
    assert all(r["mfe"] is not None and r["mae"] is not None for r in ours)
    assert any(r["mfe"] > 0 for r in ours) and any(r["mae"] < 0 for r in ours)
    got = pd.DataFrame([{k: r[k] for k in keep} for r in ours])
    want = theirs[keep]
    for k in ("time_open", "time_close"):
        assert pd.to_datetime(got[k], utc=True).tolist() == want[k].tolist(), k
    for k in ("price_open", "price_close", "net", "mfe", "mae", "signal_id"):
        assert got[k].tolist() == want[k].tolist(), k


def switch_config(demo_data: Path, tmp_path: Path) -> Any:
    raw = base_config(demo_data, tmp_path, symbols=["EURUSD", "GBPUSD"], warmup_bars=40, end="2024-01-20")
    raw["strategies"] = [
        {"class": "ma_cross", "name": "fast", "params": {"fast": 5, "slow": 20, "sl_points": 200}},
        {"class": "ma_cross", "name": "slow", "params": {"fast": 8, "slow": 30}},
    ]
    # max_drawdown_pct far from reached: each mode's breaker tracks its equity peak (never latches)
    raw["coordinator"] = {
        "blocked": [{"from": "12:00", "to": "13:00"}],
        "max_positions": 3,
        "max_drawdown_pct": 50.0,
    }
    raw["regime"] = {"enabled": True, "timeframe": "H1"}
    raw["trading_modes"] = {
        "news": {"strategies": ["slow"], "coordinator": {"max_positions": 1, "blocked": []}},
        "calm": {"risk_multiplier": 0.5},
    }
    raw["trading_mode_switch"] = [
        {"mode": "news", "windows": "blocked", "margin_minutes": 60},
        {"mode": "calm", "regimes": ["ranging"]},
    ]
    raw["live"] = {"stop_file": str(tmp_path / "live.stop")}
    return parse_config(raw)


MODE_COLS = ["signal_id", "time", "strategy", "symbol", "direction", "status", "rule", "reason", "volume"]
MODE_COLS += ["retcode", "trading_mode"]


def test_paper_replay_with_a_trading_mode_switch_makes_the_backtests_decisions(
    demo_data: Path, tmp_path: Path
) -> None:
    """trading_mode_switch in a session, as in a backtest: per signal the mode in force (a schedule
    around the blocked window, else a regime), that mode's coordinator, entries the mode does not select
    rejected with rule trading_mode; the same decisions, modes and deals as the backtest."""
    cfg = switch_config(demo_data, tmp_path)
    backtest = mt5tester.run(cfg, base_dir=tmp_path, sink=mt5tester.MemorySink())
    session = paper(cfg, tmp_path)
    assert session.status == "completed"
    stored = mt5tester.load_run(session.run_id, db=cfg.results.database_url)
    cols = MODE_COLS
    ours = stored.signals[cols].reset_index(drop=True)
    theirs = backtest.signals[cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, theirs)
    modes = set(ours["trading_mode"])
    assert {"news", "calm", None} <= modes  # every switch held somewhere
    news = ours[
        (ours["trading_mode"] == "news") & (ours["strategy"] == "fast") & (ours["direction"] != "flat")
    ]
    assert len(news) > 0 and set(news["rule"]) == {"trading_mode"} and set(news["reason"]) == {"not_in_mode"}
    calm = ours[(ours["trading_mode"] == "calm") & (ours["status"] == "approved")]
    assert len(calm) > 0 and set(calm["volume"]) == {0.05}
    assert len(trades(backtest.deals)) > 10
    pd.testing.assert_frame_equal(trades(stored.deals), trades(backtest.deals))


def test_positions_without_terminal_bars_store_no_mfe_mae(demo_data: Path, tmp_path: Path) -> None:
    """A terminal that gives no M1 bars for the positions' lives (history beyond its "Max bars in
    chart"): MFE/MAE are unknown (NULL), never made up from the exit price; the rest as the backtest."""
    cfg = config(demo_data, tmp_path)
    backtest = mt5tester.run(cfg, sink=mt5tester.MemorySink())

    def no_history(mt5: types.ModuleType) -> types.ModuleType:
        mod = types.ModuleType("MetaTrader5")
        for name in dir(mt5):
            if not name.startswith("__"):
                setattr(mod, name, getattr(mt5, name))
        mod.copy_rates_range = lambda *a, **k: None  # type: ignore[attr-defined]
        return mod

    session = paper(cfg, tmp_path, wrap=no_history)
    ours = sorted(rows(cfg, "positions", session.run_id), key=lambda r: r["time_open"])
    theirs = backtest.positions.sort_values("time_open").reset_index(drop=True)
    assert len(ours) == len(theirs) > 10
    assert {(r["mfe"], r["mae"]) for r in ours} == {(None, None)}
    assert [r["net"] for r in ours] == theirs["net"].tolist()
    assert [r["price_close"] for r in ours] == theirs["price_close"].tolist()


CRASH_AT = 14  # an order_send of a point with one signal (see the report about points with several)


def test_restart_with_a_trading_mode_switch_continues_each_modes_breaker(
    demo_data: Path, tmp_path: Path
) -> None:
    """A session with a switch dies mid-run; the new process (new mode coordinators) restores each mode's
    breaker from the saved state and ends with the backtest's decisions and modes."""
    from mt5tester.engine.build import build
    from mt5tester.engine.modes import ModeSwitch
    from mt5tester.engine.preflight import day_ns
    from mt5tester.live.clock import ReplayClock
    from mt5tester.live.session import Session
    from mt5tester.terminal.shim import build_module

    cfg = switch_config(demo_data, tmp_path)
    backtest = mt5tester.run(cfg, base_dir=tmp_path, sink=mt5tester.MemorySink())
    ref = build(cfg, tmp_path)  # an uninterrupted session: each mode's breaker at the end
    start, end = day_ns(cfg.backtest.start), day_ns(cfg.backtest.end)
    Session(
        ref, build_module(ref.terminal), ReplayClock(ref.terminal, start, end), "paper", ref.regimes, end
    ).run()
    assert ref.modes is not None
    expected = {name: vars(m.coordinator.breaker) for name, m in ref.modes.modes.items()}
    assert all(b["peak"] for b in expected.values())

    def crash(f: Faulty, request: dict[str, Any]) -> Any:
        f.inner.order_send(request)  # type: ignore[union-attr]
        raise Crash("killed")

    c = build(cfg, tmp_path)
    mt5 = build_module(c.terminal)
    clock = ReplayClock(c.terminal, start, end)
    with pytest.raises(Crash):
        Session(c, Faulty({CRASH_AT: crash})(mt5), clock, "paper", c.regimes, end).run()
    c2 = build(cfg, tmp_path)  # a new process on the same terminal: fresh coordinators
    c2.server, c2.terminal, c2.coordinator = c.server, c.terminal, c.coordinator
    c2.modes = ModeSwitch(c2.cfg, c2.strategies, c.coordinator, mt5)
    # the profiles' coordinators are new (no profile, None, is the config's coordinator, shared here)
    assert all(not m.coordinator.breaker.peak for name, m in c2.modes.modes.items() if name is not None)
    session = Session(c2, mt5, ReplayClock(c.terminal, start, end), "paper", c2.regimes, end).run()
    got = {name: vars(m.coordinator.breaker) for name, m in c2.modes.modes.items()}
    assert got == expected
    stored = mt5tester.load_run(session.run_id, db=cfg.results.database_url)
    pd.testing.assert_frame_equal(
        stored.signals[MODE_COLS].reset_index(drop=True), backtest.signals[MODE_COLS].reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(trades(stored.deals), trades(backtest.deals))
