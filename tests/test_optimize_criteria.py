import math
import sys
import types

import pandas as pd
import pytest

from mt5tester.optimize.criteria import (
    CRITERIA,
    WORST,
    Objective,
    complex_criterion,
    pareto_front,
    rank,
)
from mt5tester.results.metrics import compute_metrics


def _m(**kw):
    base = {
        "final_balance": 11_000.0,
        "total_net_profit": 1000.0,
        "gross_profit": 3000.0,
        "profit_factor": 1.5,
        "expected_payoff": 10.0,
        "recovery_factor": 2.0,
        "sharpe_ratio": 1.2,
        "equity_dd_relative_pct": 8.0,
        "total_trades": 100,
    }
    return base | kw


def test_criteria_read_the_metrics_module_keys():
    deals = pd.DataFrame(
        {
            "time": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]),
            "type": ["balance", "buy", "sell", "buy", "sell"],
            "direction": ["", "in", "out", "in", "out"],
            "profit": [10_000.0, 0.0, 300.0, 0.0, -100.0],
        }
    )
    m = compute_metrics(deals).to_dict()
    values = {name: fn(m) for name, (fn, _) in CRITERIA.items()}
    assert values["balance"] == pytest.approx(10_200.0)
    assert values["profit_factor"] == pytest.approx(3.0)
    assert values["expected_payoff"] == pytest.approx(100.0)
    assert values["recovery_factor"] == pytest.approx(2.0)  # 200 net / 100 maximal drawdown
    assert values["drawdown_min"] == pytest.approx(100 / 10_300 * 100)
    assert values["sharpe_ratio"] is not None and values["complex"] > 0


def test_infinite_profit_and_recovery_factor_without_losses():
    m = _m(profit_factor=None, recovery_factor=None)
    assert CRITERIA["profit_factor"][0](m) == math.inf
    assert CRITERIA["recovery_factor"][0](m) == math.inf
    assert CRITERIA["profit_factor"][0](_m(profit_factor=None, gross_profit=0.0)) is None


def test_complex_criterion_formula():
    # c = 1 - exp(-100/30) = 0.96433; p = (1.5-1)/2 = 0.25; r = 2/5 = 0.4; s = 1.2/3 = 0.4; d = 1 - 8/50 = 0.84
    # 100 * 0.96433 * (0.25 + 0.4 + 0.4 + 0.84) / 4 = 45.564
    assert complex_criterion(_m()) == pytest.approx(100 * (1 - math.exp(-100 / 30)) * 1.89 / 4)
    assert complex_criterion(_m(total_trades=0)) == 0.0
    best = _m(
        profit_factor=5.0,
        recovery_factor=9.0,
        sharpe_ratio=4.0,
        equity_dd_relative_pct=0.0,
        total_trades=10**6,
    )
    assert complex_criterion(best) == pytest.approx(100.0)


def test_drawdown_is_minimised_and_undefined_is_worst():
    obj = Objective(("drawdown_min",))
    assert obj.score(_m(equity_dd_relative_pct=3.0)) > obj.score(_m(equity_dd_relative_pct=9.0))
    assert Objective(("sharpe_ratio",)).score(_m(sharpe_ratio=None)) == WORST


def test_constraints_min_trades_and_max_drawdown():
    obj = Objective(("balance",), min_trades=50, max_drawdown_pct=10.0)
    assert obj.violation(_m()) is None
    assert obj.violation(_m(total_trades=49)) == "49 trades < min_trades 50"
    assert "max_drawdown_pct 10.0" in obj.violation(_m(equity_dd_relative_pct=10.5))
    assert obj.scores(_m(total_trades=3)) == (WORST,)


def test_rank_best_first_ties_in_pass_order_discarded_last():
    obj = Objective(("balance",), min_trades=10)
    results = [
        _m(final_balance=100.0),
        _m(final_balance=300.0),
        _m(final_balance=900.0, total_trades=1),
        _m(final_balance=300.0),
    ]
    assert rank(results, obj) == [1, 3, 0, 2]


def test_custom_criterion_module_function(monkeypatch):
    mod = types.ModuleType("my_criteria")
    mod.score = lambda m: m["final_balance"] / m["total_trades"]
    monkeypatch.setitem(sys.modules, "my_criteria", mod)
    obj = Objective(("custom",), custom="my_criteria:score")
    assert obj.score(_m()) == pytest.approx(110.0)
    with pytest.raises(ValueError, match="has no function nope"):
        Objective(("custom",), custom="my_criteria:nope").score(_m())


def test_pareto_front_of_two_objectives():
    obj = Objective(("balance", "drawdown_min"))
    results = [
        _m(final_balance=100.0, equity_dd_relative_pct=5.0),  # dominated by 1
        _m(final_balance=200.0, equity_dd_relative_pct=5.0),
        _m(final_balance=300.0, equity_dd_relative_pct=9.0),
        _m(final_balance=150.0, equity_dd_relative_pct=2.0),
    ]
    assert pareto_front(results, obj) == [1, 2, 3]
