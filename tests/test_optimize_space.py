import datetime as dt

import pytest

from mt5tester.errors import ConfigError
from mt5tester.optimize.space import (
    ChoiceParam,
    LogParam,
    OptimizeConfig,
    RangeParam,
    parse_optimize,
)

P = "strategies.ma.params.fast"


def _cfg(**kw):
    raw = {"parameters": {P: {"start": 1, "step": 1, "stop": 3}}}
    raw.update(kw)
    return raw


def test_range_float_step_gives_exact_mt5_values():
    values = RangeParam(start=0.1, step=0.1, stop=1.0).values()
    # repeated addition would give 0.30000000000000004 and 0.7999999999999999
    assert values == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def test_range_step_not_dividing_stops_below_stop():
    assert RangeParam(start=0, step=3, stop=10).values() == (0, 3, 6, 9)
    assert RangeParam(start=1.5, step=0.25, stop=2.2).values() == (1.5, 1.75, 2.0)


def test_range_integers_stay_integers_and_single_value_range():
    values = RangeParam(start=5, step=5, stop=50).values()
    assert values == (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
    assert all(type(v) is int for v in values)
    assert RangeParam(start=7, step=2, stop=7).values() == (7,)


def test_range_negative_and_tiny_steps_exact():
    assert RangeParam(start=-0.3, step=0.1, stop=0.0).values() == (-0.3, -0.2, -0.1, 0.0)
    assert RangeParam(start=0.0001, step=0.0001, stop=0.0005).values() == (
        0.0001,
        0.0002,
        0.0003,
        0.0004,
        0.0005,
    )


def test_log_range_includes_both_ends_and_is_geometric():
    values = LogParam(low=0.001, high=1.0, count=4).values()
    assert values == (0.001, 0.01, 0.1, 1.0)


def test_log_range_integer_rounds_and_drops_duplicates():
    # 1 * 10^(i/4): 1, 1.78, 3.16, 5.62, 10 -> 1, 2, 3, 6, 10; count 8 over 1..4 collides after rounding
    assert LogParam(low=1, high=10, count=5, integer=True).values() == (1, 2, 3, 6, 10)
    assert LogParam(low=1, high=4, count=8, integer=True).values() == (1, 2, 3, 4)


def test_choices_keep_order():
    assert ChoiceParam(choices=["sma", "ema", True, 3]).values() == ("sma", "ema", True, 3)


def test_grid_enumerates_last_parameter_fastest():
    cfg = parse_optimize(
        {
            "parameters": {
                P: {"start": 1, "step": 1, "stop": 2},
                "coordinator.max_positions": {"choices": [5, 9]},
            }
        }
    )
    space = cfg.space()
    assert space.size == 4
    assert [space.params(p) for p in space.grid()] == [
        {P: 1, "coordinator.max_positions": 5},
        {P: 1, "coordinator.max_positions": 9},
        {P: 2, "coordinator.max_positions": 5},
        {P: 2, "coordinator.max_positions": 9},
    ]
    assert [space.unflatten(i) for i in range(4)] == list(space.grid())
    assert space.point({P: 2, "coordinator.max_positions": 9}) == (1, 1)


def test_defaults_and_model_is_frozen():
    cfg = parse_optimize(_cfg())
    assert (cfg.method, cfg.criterion, cfg.forward, cfg.seed) == ("grid", "balance", "none", 42)
    with pytest.raises(Exception):  # noqa: B017 (pydantic's frozen error)
        cfg.seed = 1  # type: ignore[misc]
    assert "optimize" not in OptimizeConfig.model_fields  # a section model, to become Config.optimize


def test_forward_accepts_fractions_and_dates():
    assert parse_optimize(_cfg(forward="1/3")).forward == "1/3"
    assert parse_optimize(_cfg(forward=dt.date(2024, 3, 1))).forward == dt.date(2024, 3, 1)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            _cfg(parameters={P: {"start": 1, "step": 0, "stop": 3}}),
            f"c.yaml: optimize.parameters.{P}.step: Input should be greater than 0",
        ),
        (
            _cfg(parameters={P: {"start": 3, "step": 1, "stop": 1}}),
            f"c.yaml: optimize.parameters.{P}: stop 1 is below start 3",
        ),
        (
            _cfg(parameters={P: {"start": 1, "stpe": 1, "stop": 3}}),
            f"c.yaml: unknown key 'optimize.parameters.{P}.stpe'",
        ),
        (_cfg(parameters={P: 5}), f"c.yaml: optimize.parameters.{P}: a parameter is"),
        (
            _cfg(parameters={P: {"low": 0, "high": 1, "count": 3}}),
            f"c.yaml: optimize.parameters.{P}.low: Input should be greater than 0",
        ),
        (
            _cfg(parameters={P: {"choices": [1, 1]}}),
            f"c.yaml: optimize.parameters.{P}.choices: choices listed twice: 1",
        ),
        (
            _cfg(parameters={"coordinator.max_pos": {"choices": [1]}}),
            "c.yaml: optimize.parameters.coordinator.max_pos: coordinator has no key 'max_pos'",
        ),
        (
            _cfg(parameters={"backtest.leverage": {"choices": [1]}}),
            "c.yaml: optimize.parameters.backtest.leverage: not a target",
        ),
        (_cfg(method="tpe"), "c.yaml: optimize.budget: method tpe needs a budget"),
        (_cfg(budget=2), "c.yaml: optimize.budget: 2 is below the grid's 3 points"),
        (_cfg(method="nsga2", budget=5), "c.yaml: optimize.objectives: method nsga2 needs two or more"),
        (_cfg(objectives=["balance", "drawdown_min"]), "c.yaml: optimize.objectives: are for method nsga2"),
        (_cfg(criterion="custom"), "c.yaml: optimize.custom: criterion custom needs"),
        (_cfg(criterion="custom", custom="nocolon"), "c.yaml: optimize.custom: 'nocolon' must be"),
        (_cfg(criterion="sharpe"), "c.yaml: optimize.criterion: Input should be"),
        (_cfg(forward="1/5"), "c.yaml: optimize.forward"),
        (
            _cfg(forward="1/2", walk_forward={"folds": 3, "in_sample": "6m"}),
            "c.yaml: optimize.walk_forward: excludes forward",
        ),
        (
            _cfg(walk_forward={"folds": 3, "in_sample": "6 months"}),
            "c.yaml: optimize.walk_forward.in_sample: String should match",
        ),
        (_cfg(genetic={"population": 2}), "c.yaml: optimize.genetic.population: Input should be greater"),
    ],
)
def test_validation_errors_name_the_key_path(raw, expected):
    with pytest.raises(ConfigError) as e:
        parse_optimize(raw, "c.yaml")
    assert str(e.value).startswith("config error in c.yaml\n")
    assert expected in str(e.value)
