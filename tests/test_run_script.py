"""Scripts written for the real MetaTrader5 package run unchanged through `mt5tester run-script`."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

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
        reasons = [r[0] for r in conn.execute("SELECT reason FROM deals WHERE entry = 1")]
        last = conn.execute("SELECT max(time) FROM deals").fetchone()[0]
    assert len(reasons) >= 5 and set(reasons) <= {4, 5}  # every exit by SL (4) or TP (5)
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
