"""Scripts written for the real MetaTrader5 package run unchanged through `mt5tester run-script`."""

from __future__ import annotations

import re
import sqlite3
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import FIXTURES, base_config, write_yaml

SCRIPTS = FIXTURES / "scripts"


def test_run_script_open_close_rates_history_unchanged(demo_data: Path, tmp_path: Path, run_cli) -> None:
    cfg = write_yaml(
        tmp_path / "c.yaml", base_config(demo_data, tmp_path, start="2024-01-03", end="2024-01-05")
    )
    code, out, err = run_cli("run-script", str(SCRIPTS / "open_close.py"), "--config", str(cfg))
    assert code == 0, err
    lines = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    assert (
        lines["rates"]
        == "10 ['time', 'open', 'high', 'low', 'close', 'tick_volume', 'spread', 'real_volume']"
    )
    assert lines["open"] == "10009 0.1 True"
    assert lines["positions"] == "1 True 234000"
    assert lines["close"] == "10009"
    assert lines["deals"] == "3 [0, 0, 1] python script close"
    assert lines["positions_total"] == "0"
    assert lines["bad"] == "None (-2, 'Invalid \"foo\" argument')"
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        rows = conn.execute("SELECT entry, comment FROM deals ORDER BY ticket").fetchall()
        status = conn.execute("SELECT status FROM runs").fetchone()[0]
    assert rows == [(0, "deposit"), (0, "python script open"), (1, "python script close")]
    assert status == "completed"


def test_run_script_polling_loop_runs_through_history_until_end(
    demo_data: Path, tmp_path: Path, run_cli
) -> None:
    cfg = write_yaml(
        tmp_path / "c.yaml", base_config(demo_data, tmp_path, start="2024-01-02", end="2024-01-09")
    )
    code, out, err = run_cli("run-script", str(SCRIPTS / "poll_loop.py"), "--config", str(cfg))
    assert code == 0, err
    assert "(stopped at backtest.end)" in out
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        reasons = [r[0] for r in conn.execute("SELECT reason FROM deals WHERE entry = 1 ORDER BY ticket")]
        last = conn.execute("SELECT max(time) FROM deals").fetchone()[0]
    # every exit by SL (4) or TP (5); the position open at backtest.end is closed then (close_at_end)
    assert len(reasons) >= 5 and set(reasons[:-1]) <= {4, 5} and reasons[-1] == 3
    assert last < 1704758400 * 10**9  # nothing after backtest.end 2024-01-09


def test_terminal_api_before_initialize_fails_with_no_ipc(demo_data: Path, tmp_path: Path) -> None:
    from mt5tester.config import parse_config
    from mt5tester.engine.build import build

    c = build(parse_config(base_config(demo_data, tmp_path)), tmp_path, with_strategies=False)
    term = c.terminal
    assert term.account_info() is None and term.last_error() == (-10004, "No IPC connection")
    assert term.initialize() is True
    info = term.account_info()
    assert info is not None and (info.balance, info.currency, info.leverage, info.margin_mode) == (
        10000.0,
        "USD",
        100,
        2,
    )
    assert term.positions_get("EURUSD") is None and term.last_error() == (-2, "Unnamed arguments not allowed")
    assert term.symbol_info("NOPE") is None and term.last_error()[0] == -1
    assert [s.name for s in term.symbols_get("*,!GBP*")] == ["EURUSD"]
    assert term.market_book_add("EURUSD") is True
    assert term.order_calc_margin(0, "EURUSD", 1.0, 1.1) == 1100.0
    assert term.order_calc_profit(0, "EURUSD", 1.0, 1.1, 1.1010) == 100.0
    assert term.order_calc_profit(1, "USDJPY", 1.0, 150.0, 149.0) is None  # not loaded in this run


def test_run_script_bot_folder_login_logging_types_and_data_folders(
    demo_data: Path, tmp_path: Path, run_cli
) -> None:
    cfg = write_yaml(
        tmp_path / "c.yaml", base_config(demo_data, tmp_path, start="2024-01-03", end="2024-01-05")
    )
    code, out, err = run_cli("run-script", str(SCRIPTS / "bot" / "run_bot.py"), "--config", str(cfg))
    assert code == 0, err
    lines = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    assert lines["connect"] == "True (1, 'Success')"  # the script's own account, not "Authorization failed"
    assert lines["account"] == "51234567 Broker-Live True"
    assert lines["relogin"] == "True 7654321"
    assert lines["types"] == "True"
    assert lines["tick"] == "True"
    assert lines["check"] == (
        "True balance:float,equity:float,margin:float,margin_free:float,margin_level:float,profit:float,"
        "request:TradeRequest,retcode:int"
    )
    assert lines["folders"] == "True True"
    terminal = tmp_path / "reports" / "terminal"
    assert (terminal / "bot_state.txt").read_text() == "ok"
    assert (terminal / "Common" / "bot_state.txt").read_text() == "ok"
    assert "BOT INFO bot started on Broker-Live" in err  # the script's own logging.basicConfig applies
    assert str(SCRIPTS / "bot") not in sys.path  # the script's folder is removed again afterwards


def test_terminal_float_fields_are_floats_in_every_structure(demo_data: Path, tmp_path: Path) -> None:
    from typing import get_type_hints

    from mt5tester.config import parse_config
    from mt5tester.engine.build import build

    c = build(parse_config(base_config(demo_data, tmp_path)), tmp_path, with_strategies=False)
    term = c.terminal
    t = int(c.m1["EURUSD"].time[100])
    c.server.advance(t)
    term.set_time(t)
    assert term.initialize() is True
    req = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0}
    records = [term.account_info(), term.order_check(req), term.symbol_info("EURUSD"), term.terminal_info()]
    records += [term.symbol_info_tick("EURUSD"), term.order_send(req)]
    records += [*term.positions_get(), *term.history_deals_get(0, 2**40), *term.history_orders_get(0, 2**40)]
    term.market_book_add("EURUSD")
    records += list(term.market_book_get("EURUSD"))
    assert len(records) == 12  # 2 deals: the deposit and the entry
    for rec in records:
        for name, kind in get_type_hints(type(rec)).items():
            if kind in (float, int):
                value = getattr(rec, name)
                assert type(value) is kind, f"{type(rec).__name__}.{name} = {value!r} is not {kind.__name__}"


def _quotes_expected(
    mode: str, data: Path, start: str, seed: int
) -> tuple[list[tuple[int, float, float]], list]:
    """(UTC ns, bid, ask) the tester knows at +2 s, +25 s and +45 s after the first bar at/after start,
    computed from the data files (independently of the terminal), and the bar's close (the future)."""
    import numpy as np
    import pandas as pd

    from mt5tester.data.importers import read_ticks_parquet
    from mt5tester.data.store import read_m1_parquet
    from mt5tester.terminal.ticks import generate_ticks

    t_start = pd.Timestamp(start, tz="UTC").value
    if mode == "real_ticks":
        ticks = read_ticks_parquet(next(data.glob("EURUSD_ticks*.parquet")), "EURUSD")
        t0 = (int(ticks.time[np.searchsorted(ticks.time, t_start)]) // MIN) * MIN
        out = []
        for s in (2, 25, 45):
            i = int(np.searchsorted(ticks.time, t0 + s * SEC, "right")) - 1
            out.append((t0 + s * SEC, float(ticks.bid[i]), float(ticks.ask[i])))
        return out, []
    bars = read_m1_parquet(next(data.glob("EURUSD_M1*.parquet")), "EURUSD")
    k = int(np.searchsorted(bars.time, t_start))
    t0 = int(bars.time[k])
    o, h, lo, c = bars.open[k], bars.high[k], bars.low[k], bars.close[k]
    assert c != o  # a directional bar: bullish visits the Low first (spec 6.2)
    if mode == "every_tick":
        gen = generate_ticks(bars, 1e-5, seed, k, k + 1)
        times, bids = gen.time, gen.bid
    else:  # 1-minute OHLC ticks at +0/20/40/59 s
        times = t0 + np.array([0, 20, 40, 59]) * SEC
        bids = np.array([o, lo, h, c] if c > o else [o, h, lo, c])
    out = []
    for s in (2, 25, 45):
        i = int(np.searchsorted(times, t0 + s * SEC, "right")) - 1
        bid = float(bids[i])
        out.append((t0 + s * SEC, bid, round(bid + int(bars.spread[k]) * 1e-5, 5)))
    return out, [float(c)]


SEC = 1_000_000_000
MIN = 60 * SEC


@pytest.mark.parametrize("mode", ["open_prices", "ohlc_m1", "every_tick", "real_ticks"])
def test_run_script_order_between_minutes_fills_at_the_quote_known_then(
    mode: str, demo_data: Path, shared_data: Path, tmp_path: Path, run_cli
) -> None:
    if mode == "real_ticks":
        data = tmp_path / "data"
        data.mkdir()
        src = shared_data / "ticks" / "EURUSD_ticks_2014-05-01_2014-05-15_oanda.parquet"
        (data / "EURUSD_ticks_oanda.parquet").symlink_to(src)
        raw = base_config(data, tmp_path, start="2014-05-06", end="2014-05-08", primary_timeframe="M5")
        raw["backtest"]["warmup_bars"] = 5
    else:
        data = demo_data
        raw = base_config(data, tmp_path, start="2024-01-03", end="2024-01-05")
    raw["backtest"]["tester_mode"] = mode
    cfg = write_yaml(tmp_path / "c.yaml", raw)
    code, out, err = run_cli("run-script", str(SCRIPTS / "sleep_and_trade.py"), "--config", str(cfg))
    assert code == 0, err
    rows = [line.split()[1:] for line in out.splitlines() if line.startswith("at ")]
    expected, future = _quotes_expected(mode, data, raw["backtest"]["start"], 42)
    assert len(rows) == 3
    for row, (t, bid, ask) in zip(rows, expected, strict=True):
        time_msc, tick_bid, tick_ask, close, buy, buy_bid, buy_ask, sell, sell_bid = row
        assert int(time_msc) <= t // 1_000_000  # the terminal's tick is not after now
        assert (float(tick_bid), float(tick_ask)) == (bid, ask)
        # the server fills at the very quote the terminal shows, and echoes it
        assert (float(buy), float(buy_bid), float(buy_ask)) == (ask, bid, ask)
        assert (float(sell), float(sell_bid)) == (bid, bid)
        assert float(close) == bid  # the forming M1 bar's close is the current bid
    if future:  # before the fix the fills were at the forming bar's close, 58 s ahead
        assert any(bid != future[0] for _, bid, _ in expected)
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        fills = conn.execute(
            "SELECT time, price FROM deals WHERE type IN (0, 1) AND entry = 0 ORDER BY ticket"
        ).fetchall()
    assert fills == [(t, p) for t, bid, ask in expected for p in (ask, bid)]


def test_run_script_is_a_full_run_funnel_metrics_report_and_close_at_end(
    demo_data: Path, tmp_path: Path, run_cli
) -> None:
    cfg = write_yaml(
        tmp_path / "c.yaml", base_config(demo_data, tmp_path, start="2024-01-03", end="2024-01-05")
    )
    code, out, err = run_cli("run-script", str(SCRIPTS / "sleep_and_trade.py"), "--config", str(cfg))
    assert code == 0, err
    assert "Lifecycle funnel" in out and "MT5 report metrics" in out
    assert re.search(r"closed by end of run\W+6\W", out)
    report = Path(out.split("report: ")[1].split()[0])
    assert report.is_file() and report.parent == tmp_path / "reports"
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        run_id, status, funnel = conn.execute("SELECT run_id, status, funnel FROM runs").fetchone()
        closes = conn.execute("SELECT time, comment, strategy FROM deals WHERE entry = 1").fetchall()
        positions = conn.execute("SELECT count(*), count(time_close) FROM positions").fetchone()
        last_entry = conn.execute("SELECT max(time) FROM deals WHERE entry = 0").fetchone()[0]
        equity = conn.execute("SELECT time, open_positions FROM equity ORDER BY time").fetchall()
    assert status == "completed" and '"end_of_run": 6' in funnel
    # the script returned with 6 positions open: closed at its last clock time, at the quote then
    assert closes == [(last_entry, "end of run", "script:sleep_and_trade.py")] * 6
    assert positions == (6, 6)
    assert equity[-1] == (last_entry, 0) and len(equity) == len({t for t, _ in equity}) == 4
    db_url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    code, _, err = run_cli("report", run_id, "--db", db_url, "--out", str(tmp_path / "again"))
    assert code == 0, err


def test_report_of_a_run_ending_with_open_positions(demo_data: Path, tmp_path: Path, run_cli) -> None:
    raw = base_config(demo_data, tmp_path, start="2024-01-02", end="2024-01-09", close_at_end=False)
    cfg = write_yaml(tmp_path / "c.yaml", raw)
    code, out, err = run_cli("run-script", str(SCRIPTS / "poll_loop.py"), "--config", str(cfg))
    assert code == 0, err
    assert "report: " in out  # the run's own report was written too
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        run_id = conn.execute("SELECT run_id FROM runs").fetchone()[0]
        total, closed = conn.execute("SELECT count(*), count(time_close) FROM positions").fetchone()
        end_of_run = conn.execute("SELECT count(*) FROM deals WHERE comment = 'end of run'").fetchone()[0]
    assert total == closed + 1 and closed >= 5 and end_of_run == 0  # close_at_end: false keeps it open
    db_url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    code, _, err = run_cli("report", run_id, "--db", db_url, "--out", str(tmp_path / "r"))
    assert code == 0, err  # was exit 1: "NaTType does not support strftime"
    page = next((tmp_path / "r").glob("*.html")).read_text()
    assert f"{closed + 1} trades" in page


@pytest.mark.parametrize(
    ("how", "status", "code", "error"),
    [
        ("ctrl-c", "interrupted", 1, "KeyboardInterrupt"),
        ("exit", "failed", 5, "StrategyRuntimeError: script"),
        ("error", "failed", 5, "StrategyRuntimeError: script"),
    ],
)
def test_run_script_stopped_by_ctrl_c_or_error_is_marked_never_left_running(
    how: str, status: str, code: int, error: str, demo_data: Path, tmp_path: Path, run_cli
) -> None:
    cfg = write_yaml(
        tmp_path / "c.yaml", base_config(demo_data, tmp_path, start="2024-01-03", end="2024-01-05")
    )
    got, _, err = run_cli("run-script", str(SCRIPTS / "interrupted.py"), "--config", str(cfg), how)
    assert got == code, err
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        row = conn.execute("SELECT status, error FROM runs").fetchone()
        positions = conn.execute("SELECT count(*) FROM positions").fetchone()[0]
        deals = conn.execute("SELECT count(*) FROM deals").fetchone()[0]
    assert row[0] == status and row[1].startswith(error)
    assert (positions, deals) == (1, 2)  # what happened before the stop is kept: deposit + the buy


def test_run_script_reports_progress_in_simulated_seconds(demo_data: Path, tmp_path: Path) -> None:
    import mt5tester
    from mt5tester.config import parse_config
    from mt5tester.engine.script import Script

    raw = base_config(demo_data, tmp_path, start="2024-01-03", end="2024-01-04")
    calls: list[tuple[int, int]] = []
    result = mt5tester.run(
        parse_config(raw),
        base_dir=tmp_path,
        script=Script(SCRIPTS / "poll_loop.py"),
        progress=lambda n, total: calls.append((n, total)),
    )
    assert result.funnel["stopped_at_end"] and calls[0] == (0, 86_400) and calls[-1] == (86_400, 86_400)
    # every 256 clock steps (1441 here: the start and 1440 sleeps of 60 s) and at the end
    assert [n for n, _ in calls] == [0, 256 * 60, 512 * 60, 768 * 60, 1024 * 60, 1280 * 60, 86_400]


def test_run_script_equity_rows_follow_results_equity_sampling(demo_data: Path, tmp_path: Path) -> None:
    import mt5tester
    from mt5tester.config import parse_config
    from mt5tester.engine.script import Script

    raw = base_config(demo_data, tmp_path, start="2024-01-03", end="2024-01-04")
    raw["results"]["equity_sampling"] = "H1"
    result = mt5tester.run(parse_config(raw), base_dir=tmp_path, script=Script(SCRIPTS / "poll_loop.py"))
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        times = [r[0] for r in conn.execute("SELECT time FROM equity WHERE run_id = ?", (result.run_id,))]
    hours = [(t - times[0]) // (3600 * 10**9) for t in times]
    assert hours == list(range(24)) + [24]  # the first minute of each hour, then the end


def test_terminal_initialize_and_login_take_the_scripts_account(demo_data: Path, tmp_path: Path) -> None:
    from mt5tester.config import parse_config
    from mt5tester.engine.build import build

    c = build(parse_config(base_config(demo_data, tmp_path)), tmp_path, with_strategies=False)
    term = c.terminal
    assert term.initialize("C:\\MT5\\terminal64.exe", login=87654321, password="pw", server="Demo-1") is True
    info = term.account_info()
    assert (info.login, info.server, info.balance) == (87654321, "Demo-1", 10000.0)
    assert term.login(11112222, password="pw") is True and term.account_info().login == 11112222
    assert term.account_info().server == "Demo-1"  # server falls back to the one already set (spec 2)
    assert term.login("11112222") is False and term.last_error() == (-2, 'Invalid "login" argument')
    term.shutdown()
    assert term.initialize(login="x") is False and term.account_info() is None


def test_run_script_through_run_with_a_memory_sink_attributes_its_foreign_magic(
    demo_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``mt5tester.run(config, script=Script(path))`` is what `run-script` calls: the script's orders
    (magic 234000, not one the run handed out) are recorded as the script's, whatever sink is used."""
    import pickle

    import mt5tester
    from mt5tester.config import parse_config
    from mt5tester.engine.script import Script

    raw = base_config(demo_data, tmp_path, start="2024-01-03", end="2024-01-05")
    job = Script(SCRIPTS / "open_close.py")
    assert pickle.loads(pickle.dumps(job)) == job
    result = mt5tester.run(parse_config(raw), base_dir=tmp_path, script=job, sink=mt5tester.MemorySink())
    assert "deals 3 [0, 0, 1] python script close" in capsys.readouterr().out
    rows = [(r.entry, r.comment, r.strategy, r.signal_id) for r in result.deals.itertuples()]
    assert [(e, c, s) for e, c, s, _ in rows] == [
        ("in", "deposit", ""),
        ("in", "python script open", "script:open_close.py"),
        ("out", "python script close", "script:open_close.py"),
    ]
    assert all(pd.isna(sid) for *_, sid in rows)  # a script's comment is not read as a signal
    assert list(result.orders["strategy"]) == ["script:open_close.py"] * 2
    assert result.status == "completed" and result.funnel["stopped_at_end"] is False
    assert not (tmp_path / "results.sqlite").exists()  # the memory sink: no database opened


def test_run_script_cannot_be_resumed(demo_data: Path, tmp_path: Path) -> None:
    import mt5tester
    from mt5tester.config import parse_config
    from mt5tester.engine.script import Script
    from mt5tester.errors import ConfigError

    raw = base_config(demo_data, tmp_path)
    with pytest.raises(ConfigError, match="a script run cannot be resumed"):
        mt5tester.run(parse_config(raw), script=Script(SCRIPTS / "open_close.py"), resume=("abc", {}))
