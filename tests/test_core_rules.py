"""The compiled rules (terminal/core/rules.py): exact values, and rounding identical to Python's."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mt5tester.terminal.core import rules


@settings(max_examples=3000, deadline=None)
@given(
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=6),
)
def test_round_to_any_double_equals_python_round(x: float, digits: int) -> None:
    assert rules.round_to(x, digits) == round(x, digits)


def test_round_to_halves_and_near_halves_match_python() -> None:
    # Values whose scaled double lands on .5 but whose exact value does not (numba's round differs).
    for x in (-7793.845, 973.675, 5689.695, 2.675, 0.125, 0.375, 1.005, -0.5, 2.5, 1e-320):
        for d in (0, 1, 2, 3):
            assert rules.round_to(x, d) == round(x, d), (x, d)
    assert math.isnan(rules.round_to(float("nan"), 2))


def test_round_to_keeps_the_sign_of_zero_as_python_does() -> None:
    # -0.0 stays -0.0 and a small negative rounds to -0.0, as round() gives: one rounding for every layer
    # (the records round arrays with the same function: arith.round_array).
    from mt5tester.arith.rounding import round_array

    values = [-0.0, 0.0, -0.001, 0.004, -0.005, -1e-300, 0.005]
    for x in values:
        assert str(rules.round_to(x, 2)) == str(round(x, 2)), x
    assert [str(v) for v in round_array(np.array(values), 2).tolist()] == [str(round(x, 2)) for x in values]


def test_profit_conversions_exact() -> None:
    # EURUSD on USD: 1 lot, +10 pips = 100.00; USDJPY on USD divides by the close; EURGBP times GBP rate.
    assert rules.profit(True, 1.0, 1.1000, 1.1010, 100_000.0, rules.CONV_NONE, 1.0) == 100.0
    assert rules.profit(False, 0.5, 150.00, 149.50, 100_000.0, rules.CONV_DIVIDE_CLOSE, 1.0) == 167.22
    assert rules.profit(True, 1.0, 0.8500, 0.8490, 100_000.0, rules.CONV_RATE, 1.25) == -125.0


def test_margin_modes_exact() -> None:
    # forex 1:100, 1 lot, base valued at 1.1 -> 1100; no leverage at 1.25 -> 125000; CFD leverage 100 on gold
    assert rules.margin(rules.FOREX, 1.0, 100_000.0, 1.0, 100.0, 1.1, 1.1) == 1100.0
    assert rules.margin(rules.FOREX_NO_LEVERAGE, 1.0, 100_000.0, 1.0, 100.0, 1.25, 1.25) == 125000.0
    assert rules.margin(rules.CFDLEVERAGE, 2.0, 100.0, 1.0, 100.0, 2000.0, 1.0) == 4000.0
    assert rules.margin(rules.CFD, 1.0, 10.0, 0.1, 100.0, 5000.0, 0.5) == 2500.0


def test_commission_per_lot_and_percent() -> None:
    assert rules.commission(True, 3.5, True, 0.3, 100_000.0, 1.1, 1.0) == -1.05
    assert rules.commission(True, 0.01, False, 1.0, 100_000.0, 1.2345, 1.0) == -12.35
    assert rules.commission(False, 3.5, True, 1.0, 100_000.0, 1.1, 1.0) == 0.0


def test_swap_amount_each_mode() -> None:
    assert rules.swap_amount(rules.SWAP_POINTS, -5.0, 0.00001, 100_000.0, 2.0, 1.1) == -10.0
    assert rules.swap_amount(rules.SWAP_CURRENCY_DEPOSIT, -7.0, 0.00001, 100_000.0, 0.5, 1.1) == -3.5
    assert rules.swap_amount(rules.SWAP_INTEREST_OPEN, 3.6, 0.01, 100.0, 1.0, 2000.0) == pytest.approx(
        20.0, abs=1e-12
    )
    assert rules.swap_amount(rules.SWAP_DISABLED, 3.6, 0.01, 100.0, 1.0, 2000.0) == 0.0


def test_fill_and_request_checks() -> None:
    assert rules.slipped(1.10002, 3, True, 0.00001, 5) == 1.10005
    assert rules.slipped(1.10002, 3, False, 0.00001, 5) == 1.09999
    assert rules.volume_ok(0.03, 0.01, 100.0, 0.01) and not rules.volume_ok(0.015, 0.01, 100.0, 0.01)
    assert rules.stops_ok(True, 1.1, 1.099, 1.101, 0.0005) and not rules.stops_ok(
        True, 1.1, 1.0999, 0, 0.0005
    )
    assert rules.placement_ok(2, 1.09, 0.0, 1.0998, 1.1, 0.0) and not rules.placement_ok(
        2, 1.2, 0.0, 1.0998, 1.1, 0.0
    )
    assert rules.frozen(1.1, 1.1003, 0.0005) and not rules.frozen(1.1, 0.0, 0.0005)
    assert rules.netted_open(1.1, 1.0, 1.2, 1.0, 5) == 1.15
