"""The ``optimize:`` section and its search space, for the optimizer: defined in ``mt5tester.config_optimize``
(the config layer, so that ``Config.optimize`` can hold it) and re-exported here."""

from mt5tester.config_optimize import (
    MAX_VALUES_PER_PARAM,
    ChoiceParam,
    CriterionName,
    Dimension,
    ForwardSplit,
    GeneticConfig,
    LogParam,
    Method,
    OptimizeConfig,
    ParamSpec,
    RangeParam,
    Scalar,
    Space,
    WalkForwardConfig,
    check_targets,
    parse_optimize,
)

__all__ = [
    "MAX_VALUES_PER_PARAM",
    "ChoiceParam",
    "CriterionName",
    "Dimension",
    "ForwardSplit",
    "GeneticConfig",
    "LogParam",
    "Method",
    "OptimizeConfig",
    "ParamSpec",
    "RangeParam",
    "Scalar",
    "Space",
    "WalkForwardConfig",
    "check_targets",
    "parse_optimize",
]
