"""model/: the trade records' Side, and the Mt5Api Protocol listing exactly the calls the engine's parts make."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mt5tester.model import constants as C
from mt5tester.model.mt5api import Mt5Api
from mt5tester.model.trade import Deal, Order, Position, Side
from mt5tester.terminal.shim import FUNCTIONS

SRC = Path(__file__).resolve().parents[1] / "src" / "mt5tester"


def _position(type_: int) -> Position:
    return Position(1, 1, "EURUSD", type_, 0.1, 1.1, 0.0, 0.0, 0, 0)


def _order(type_: int) -> Order:
    return Order(2, "EURUSD", type_, 0.1, 0.1, 1.1, 0.0, 0.0, 0.0, 0)


def _deal(type_: int) -> Deal:
    return Deal(3, 2, 0, type_, C.DEAL_ENTRY_IN, 3, 1, "EURUSD", 0.1, 1.1, 0.0, 0.0, 0.0, 0.0, "", "", None)


def test_side_of_positions() -> None:
    assert _position(C.POSITION_TYPE_BUY).side is Side.BUY
    assert _position(C.POSITION_TYPE_SELL).side is Side.SELL


@pytest.mark.parametrize(
    ("type_", "side"),
    [
        (C.ORDER_TYPE_BUY, Side.BUY),
        (C.ORDER_TYPE_BUY_LIMIT, Side.BUY),
        (C.ORDER_TYPE_BUY_STOP, Side.BUY),
        (C.ORDER_TYPE_BUY_STOP_LIMIT, Side.BUY),
        (C.ORDER_TYPE_SELL, Side.SELL),
        (C.ORDER_TYPE_SELL_LIMIT, Side.SELL),
        (C.ORDER_TYPE_SELL_STOP, Side.SELL),
        (C.ORDER_TYPE_SELL_STOP_LIMIT, Side.SELL),
    ],
)
def test_side_of_orders(type_: int, side: Side) -> None:
    assert _order(type_).side is side


def test_side_of_deals() -> None:
    assert _deal(C.DEAL_TYPE_BUY).side is Side.BUY
    assert _deal(C.DEAL_TYPE_SELL).side is Side.SELL
    assert _deal(C.DEAL_TYPE_BALANCE).side is None
    assert _deal(C.DEAL_TYPE_COMMISSION).side is None
    assert (int(Side.BUY), int(Side.SELL)) == (1, -1)


PROTOCOL_CALLS = {
    "last_error",
    "account_info",
    "positions_get",
    "symbol_info",
    "symbol_info_tick",
    "copy_rates_from_pos",
    "order_calc_margin",
    "order_check",
    "order_send",
}


def test_mt5api_lists_exactly_the_calls_the_code_makes() -> None:
    declared = {n for n in vars(Mt5Api) if not n.startswith("_")}
    assert declared == PROTOCOL_CALLS
    # strategies (library), the coordinator and the router: every `mt5.<call>(` they make
    files = [
        *(SRC / "risk").glob("*.py"),
        *(SRC / "strategy" / "library").glob("*.py"),
        SRC / "engine/router.py",
    ]
    made = {m for f in files for m in re.findall(r"\bmt5\.([a-z_]+)\(", f.read_text())}
    assert made == PROTOCOL_CALLS


def test_the_metatrader5_module_we_build_has_every_call() -> None:
    assert set(FUNCTIONS) >= PROTOCOL_CALLS
