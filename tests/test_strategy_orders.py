"""Orders a strategy sends itself (self.ctx.mt5.order_send, Buy, Sell, Close) meet the coordinator and
are recorded: every deal, order and position of the terminal is in the database, whatever sent it, and
the balance recomputed from the stored deals is the run's balance (issue 12 point 3)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from mt5tester.config import parse_config
from mt5tester.engine.build import build
from mt5tester.engine.loop import Runner
from mt5tester.model import constants as C
from mt5tester.results import db

from conftest import STRATEGIES_FILE, base_config, write_yaml

CALLS = 110  # H1 closes of EURUSD from 2024-01-02 to 2024-01-09 (weekdays)


def _config(data: Path, tmp: Path, plan: list[dict[str, Any]], **backtest: Any) -> dict[str, Any]:
    raw = base_config(data, tmp, start="2024-01-02", end="2024-01-09", **backtest)
    raw["strategies"] = [{"class": f"{STRATEGIES_FILE}:Planned", "name": "planner", "params": {"plan": plan}}]
    raw["symbols"] = {"EURUSD": {"commission": 3.5}}
    return raw


def _run(raw: dict[str, Any], tmp: Path) -> Runner:
    runner = Runner(build(parse_config(raw), tmp))
    runner.run()
    return runner


def _stored(runner: Runner) -> dict[str, list[Any]]:
    with runner.c.engine.connect() as conn:
        d, s, o, p = db.deals, db.signals, db.orders, db.positions
        where = runner.run_id
        return {
            "deals": conn.execute(
                select(
                    d.c.ticket,
                    d.c.type,
                    d.c.entry,
                    d.c.reason,
                    d.c.profit,
                    d.c.swap,
                    d.c.commission,
                    d.c.balance,
                    d.c.strategy,
                    d.c.signal_id,
                )
                .where(d.c.run_id == where)
                .order_by(d.c.ticket)
            ).all(),
            "signals": conn.execute(
                select(s.c.signal_id, s.c.status, s.c.reason, s.c.retcode, s.c.tags).where(
                    s.c.run_id == where
                )
            ).all(),
            "orders": conn.execute(select(o.c.ticket, o.c.strategy).where(o.c.run_id == where)).all(),
            "positions": conn.execute(select(p.c.position_id).where(p.c.run_id == where)).all(),
        }


def assert_everything_stored(runner: Runner) -> dict[str, list[Any]]:
    """The database holds the terminal's deals, orders and positions; the balance agrees on every path."""
    server = runner.c.server
    rows = _stored(runner)
    assert [r.ticket for r in rows["deals"]] == [d.ticket for d in server.deals]
    recomputed = round(sum(r.profit + r.swap + r.commission for r in rows["deals"]), 2)
    assert recomputed == pytest.approx(server.balance, abs=0.005)
    assert rows["deals"][-1].balance == pytest.approx(server.balance, abs=0.005)
    assert sorted(r.ticket for r in rows["orders"]) == sorted(
        o.ticket for o in [*server.history_orders, *server.orders]
    )
    trade = [d for d in server.deals if d.type in (C.DEAL_TYPE_BUY, C.DEAL_TYPE_SELL)]
    assert sorted(r.position_id for r in rows["positions"]) == sorted({d.position_id for d in trade})
    # whatever sent it, every trade deal and order belongs to the strategy
    assert {r.strategy for r in rows["deals"] if r.type in (C.DEAL_TYPE_BUY, C.DEAL_TYPE_SELL)} <= {"planner"}
    assert {r.strategy for r in rows["orders"]} <= {"planner"}
    # never around the coordinator: each deal that opens exposure comes from an approved signal row
    approved = {r.signal_id for r in rows["signals"] if r.status in ("approved", "resized")}
    for r in rows["deals"]:
        if r.type in (C.DEAL_TYPE_BUY, C.DEAL_TYPE_SELL) and r.entry in (C.DEAL_ENTRY_IN, C.DEAL_ENTRY_INOUT):
            assert r.signal_id in approved, r
    return rows


STEP = st.fixed_dictionaries(
    {
        "at": st.integers(0, CALLS - 1),
        "do": st.sampled_from(
            ["signal", "send", "send_pending", "buy_helper", "sell_helper", "close", "flat"]
        ),
        "direction": st.sampled_from(["buy", "sell"]),
        "order_type": st.sampled_from(["market", "limit", "stop"]),
        "volume": st.sampled_from([0.1, 0.3, 0.5, 1.0, 2.0]),
        "offset": st.sampled_from([20, 80, 200]),
        "sl_points": st.sampled_from([None, 60, 150, 400]),
        "tp_points": st.sampled_from([None, 60, 150, 400]),
        "exit_opposite": st.booleans(),
    }
)


@example(  # a stop-out of the strategy's own position
    plan=[{"at": 1, "do": "send", "direction": "buy", "volume": 2.0}],
    account_mode="hedging",
    deposit=300.0,
    leverage=1000,
    close_at_end=True,
    max_positions=50,
)
@example(  # netting: own pending orders filled into a signal's position, a reversal by Sell, a flat signal
    plan=[
        {"at": 1, "do": "signal", "direction": "buy", "volume": 0.3, "sl_points": 400},
        {"at": 2, "do": "send_pending", "direction": "sell", "order_type": "limit", "offset": 20},
        {"at": 3, "do": "send_pending", "direction": "buy", "order_type": "stop", "offset": 20},
        {"at": 9, "do": "sell_helper", "volume": 1.0},
        {"at": 30, "do": "flat"},
        {"at": 31, "do": "send", "direction": "sell", "volume": 0.5, "tp_points": 60},
    ],
    account_mode="netting",
    deposit=2_000.0,
    leverage=100,
    close_at_end=False,
    max_positions=2,
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    plan=st.lists(STEP, min_size=1, max_size=30),
    account_mode=st.sampled_from(["hedging", "netting"]),
    deposit=st.sampled_from([300.0, 2_000.0, 100_000.0]),
    leverage=st.sampled_from([100, 1000]),  # 1000: a small deposit is stopped out by a few pips
    close_at_end=st.booleans(),
    max_positions=st.sampled_from([2, 50]),
)
def test_property_every_deal_stored_and_balance_agrees_on_every_entry_path(
    demo_data: Path,
    plan: list[dict[str, Any]],
    account_mode: str,
    deposit: float,
    leverage: int,
    close_at_end: bool,
    max_positions: int,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = _config(
            demo_data,
            Path(tmp),
            plan,
            account_mode=account_mode,
            initial_deposit=deposit,
            leverage=leverage,
            close_at_end=close_at_end,
        )
        raw["coordinator"] = {"max_positions": max_positions, "max_positions_per_symbol": max_positions}
        runner = _run(raw, Path(tmp))
        assert_everything_stored(runner)
        for d in runner.c.server.deals:  # which paths this example took (--hypothesis-show-statistics)
            event(
                PATHS.get(d.reason, "expert") if d.entry != C.DEAL_ENTRY_IN else f"entry {d.comment or '-'}"
            )
        runner.c.engine.dispose()


PATHS = {C.DEAL_REASON_SL: "sl", C.DEAL_REASON_TP: "tp", C.DEAL_REASON_SO: "stop-out"}


# Every path in one deterministic plan (the property above draws them at random).
EVERY_PATH = [
    {"at": 2, "do": "signal", "direction": "buy", "volume": 0.1, "sl_points": 150, "tp_points": 150},
    {"at": 3, "do": "send", "direction": "buy", "volume": 0.2, "sl_points": 100, "tp_points": 100},
    {"at": 4, "do": "send_pending", "direction": "sell", "order_type": "limit", "offset": 20, "volume": 0.1},
    {"at": 5, "do": "buy_helper", "volume": 0.1},
    {"at": 6, "do": "signal", "direction": "sell", "order_type": "stop", "offset": 20, "volume": 0.1},
    {"at": 20, "do": "close"},
    {"at": 21, "do": "sell_helper", "volume": 0.1},
    {"at": 30, "do": "send", "direction": "buy", "volume": 0.3},
    {"at": 40, "do": "flat"},
    {"at": 41, "do": "send", "direction": "sell", "volume": 0.5},  # open at the end of the run
]


@pytest.mark.parametrize(("account_mode", "sends"), [("hedging", 9), ("netting", 6)])
def test_strategy_sent_orders_are_reviewed_recorded_and_attributed(
    demo_data: Path, tmp_path: Path, account_mode: str, sends: int
) -> None:
    runner = _run(_config(demo_data, tmp_path, EVERY_PATH, account_mode=account_mode), tmp_path)
    rows = assert_everything_stored(runner)
    f = runner.funnel.as_dict()
    # send x3, the pending order, Buy, Sell, and on hedging Close's three closing orders (on netting
    # the position was already closed by its SL: Close sends nothing)
    assert f["strategy_order_sends"] == sends
    own = sorted(r.signal_id for r in rows["signals"] if (r.tags or {}).get("source") == "order_send")
    assert own == [2, 3, 4, 6, 7, 9]  # the six entries, reviewed in order with the signals 1, 5, 8
    assert f["signals_generated"] == 9 and f["approved"] == 9
    own_deals = [d for d in rows["deals"] if d.signal_id in own]
    assert own_deals and all(d.strategy == "planner" for d in own_deals)
    assert f["closed"]["end_of_run"] == 1


def test_strategy_sent_entry_rejected_by_the_coordinator_gets_retcode_reject(
    demo_data: Path, tmp_path: Path
) -> None:
    plan = [
        {"at": 2, "do": "send", "direction": "buy", "volume": 0.1},
        {"at": 3, "do": "buy_helper", "volume": 0.1},
        {"at": 4, "do": "send_pending", "direction": "sell", "order_type": "stop", "offset": 50},
    ]
    raw = _config(demo_data, tmp_path, plan)
    raw["coordinator"] = {"max_positions": 1}
    runner = _run(raw, tmp_path)
    planner = runner.c.strategies[0].strategy
    assert planner.sent == [  # type: ignore[attr-defined]
        (C.TRADE_RETCODE_DONE, "Request executed"),
        (C.TRADE_RETCODE_REJECT, "Request rejected by the risk coordinator: max_positions"),
        (C.TRADE_RETCODE_REJECT, "Request rejected by the risk coordinator: max_positions"),
    ]
    rows = assert_everything_stored(runner)
    assert [(r.status, r.reason, r.retcode) for r in sorted(rows["signals"])] == [
        ("approved", None, C.TRADE_RETCODE_DONE),
        ("rejected", "max_positions", C.TRADE_RETCODE_REJECT),
        ("rejected", "max_positions", C.TRADE_RETCODE_REJECT),
    ]
    assert runner.funnel.rejected == {"max_positions": 2}
    assert len([d for d in runner.c.server.deals if d.type in (0, 1)]) == 2  # the one buy, closed at the end


def test_strategy_orders_refuse_is_a_strategy_error_exit_5(demo_data: Path, tmp_path: Path, run_cli) -> None:
    raw = _config(demo_data, tmp_path, [{"at": 2, "do": "send", "direction": "buy", "volume": 0.1}])
    raw["backtest"]["strategy_orders"] = "refuse"
    code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
    assert code == 5
    assert (
        "strategy planner raised StrategyRuntimeError: strategy planner sent an order through self.ctx.mt5 "
        "(TRADE_ACTION_DEAL ORDER_TYPE_BUY 0.1 EURUSD) and backtest.strategy_orders is 'refuse'. Return "
        "Signals instead, or set backtest.strategy_orders: review" in err
    )
    raw["backtest"]["on_strategy_error"] = "continue"
    runner = _run(raw, tmp_path)
    assert runner.funnel.errors == {"planner": 1} and len(runner.c.server.deals) == 1  # the deposit only


def test_stop_out_of_a_position_the_strategy_opened_itself_is_stored(demo_data: Path, tmp_path: Path) -> None:
    plan = [{"at": 1, "do": "send", "direction": "buy", "volume": 0.8}]  # margin 87 of equity 100
    runner = _run(_config(demo_data, tmp_path, plan, initial_deposit=100.0, leverage=1000), tmp_path)
    rows = assert_everything_stored(runner)
    assert runner.funnel.as_dict()["stop_outs"] >= 1
    assert [r.reason for r in rows["deals"] if r.entry == C.DEAL_ENTRY_OUT] == [C.DEAL_REASON_SO]
    assert runner.c.server.balance < 100.0


def test_printed_deals_and_balance_are_the_stored_ones(demo_data: Path, tmp_path: Path, run_cli) -> None:
    import re
    import sqlite3

    raw = _config(demo_data, tmp_path, EVERY_PATH)
    code, out, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", raw)))
    assert code == 0, err
    balance, deals = re.search(r"final balance ([\d.]+) USD, (\d+) deals", out).groups()  # type: ignore[union-attr]
    with sqlite3.connect(tmp_path / "results.sqlite") as con:
        query = "SELECT count(*), round(sum(profit + swap + commission), 2) FROM deals"
        n, total = con.execute(query).fetchone()
    assert (int(deals), float(balance)) == (n, total)
    assert n > 10
