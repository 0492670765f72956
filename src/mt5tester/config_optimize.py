"""The ``optimize:`` config section (``Config.optimize``) and the discrete search space it describes.

It sits beside config.py (the config layer, below everything that runs: import-linter's layers contract),
so the Config can hold it; ``mt5tester.optimize.space`` re-exports it for the optimizer. Models follow
config.py (pydantic v2, frozen, unknown keys refused). ``parse_optimize`` validates a raw ``optimize:``
mapping alone and raises ``ConfigError`` in config.py's style (``<source>: optimize.<key path>: ...``);
``check_targets`` checks the section against the rest of a Config.

Every parameter is a finite list of values (MT5's optimizer works the same way: each input is a
start/step/stop range), so every method searches the same discrete grid, and a point is a tuple of
value indices. A YAML example::

    optimize:
      method: genetic            # grid | random | genetic | tpe | cmaes | nsga2
      budget: 500                # passes; grid: the whole grid (budget, if given, must cover it)
      seed: 7
      criterion: complex         # see criteria.py; nsga2 takes `objectives: [balance, drawdown_min]`
      min_trades: 30
      max_drawdown_pct: 25
      forward: "1/4"             # none | 1/2 | 1/3 | 1/4 | a date (YYYY-MM-DD)
      parameters:
        strategies.ma_cross.params.fast: {start: 5, step: 5, stop: 50}
        strategies.ma_cross.params.kind: {choices: [sma, ema]}
        coordinator.max_positions: {start: 1, step: 1, stop: 5}
        strategies.ml.params.alpha: {low: 0.001, high: 1.0, count: 7}     # log range
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from mt5tester.errors import ConfigError

Method = Literal["grid", "random", "genetic", "tpe", "cmaes", "nsga2"]
CriterionName = Literal[
    "balance",
    "profit_factor",
    "expected_payoff",
    "drawdown_min",
    "recovery_factor",
    "sharpe_ratio",
    "complex",
    "custom",
]
ForwardSplit = Literal["none", "1/2", "1/3", "1/4"]
Scalar = int | float | str | bool

# A search larger than this is a typo (a step of 0.0001 over a wide range), not an intent.
MAX_VALUES_PER_PARAM = 100_000


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _dec(x: float) -> Decimal:
    # str() of a float is its shortest round-trip spelling: 0.1 -> "0.1", so the arithmetic below is
    # done on the decimal the user wrote, not on 0.1000000000000000055...
    return Decimal(str(x))


class RangeParam(_Section):
    """MT5's start/step/stop input: start, start+step, ... up to stop inclusive (never beyond it)."""

    start: float | int
    step: float | int = Field(gt=0)
    stop: float | int

    @model_validator(mode="after")
    def _order(self) -> RangeParam:
        if self.stop < self.start:
            raise ValueError(f"stop {self.stop} is below start {self.start}")
        if self.count() > MAX_VALUES_PER_PARAM:
            raise ValueError(f"{self.count()} values (more than {MAX_VALUES_PER_PARAM}); use a larger step")
        return self

    def count(self) -> int:
        return int((_dec(self.stop) - _dec(self.start)) // _dec(self.step)) + 1

    def values(self) -> tuple[Scalar, ...]:
        # Integer step i times the decimal step, then one rounding to float: 0.1 steps give exactly the
        # floats 0.1, 0.2, 0.3 that MT5 shows, never 0.30000000000000004 from repeated addition.
        start, step = _dec(self.start), _dec(self.step)
        exact = [start + i * step for i in range(self.count())]
        if all(isinstance(v, int) for v in (self.start, self.step, self.stop)):
            return tuple(int(v) for v in exact)
        return tuple(float(v) for v in exact)


class ChoiceParam(_Section):
    """An explicit list of values (strings, numbers, booleans), searched in the order given."""

    choices: list[Scalar] = Field(min_length=1)

    @field_validator("choices")
    @classmethod
    def _unique(cls, v: list[Scalar]) -> list[Scalar]:
        dupes = sorted({str(x) for x in v if v.count(x) > 1})
        if dupes:
            raise ValueError(f"choices listed twice: {', '.join(dupes)}")
        return v

    def values(self) -> tuple[Scalar, ...]:
        return tuple(self.choices)


class LogParam(_Section):
    """``count`` values spaced evenly on a log scale from ``low`` to ``high``, both included."""

    low: float = Field(gt=0)
    high: float = Field(gt=0)
    count: int = Field(ge=2, le=MAX_VALUES_PER_PARAM)
    integer: bool = Field(default=False, description="round to integers (duplicates after rounding dropped)")

    @model_validator(mode="after")
    def _order(self) -> LogParam:
        if self.high <= self.low:
            raise ValueError(f"high {self.high} must be above low {self.low}")
        return self

    def values(self) -> tuple[Scalar, ...]:
        ratio = math.log(self.high / self.low)
        raw = [self.low * math.exp(ratio * i / (self.count - 1)) for i in range(self.count)]
        raw[-1] = self.high  # the end point exactly, not exp(log(h/l)) rounding
        if not self.integer:
            return tuple(float(f"{v:.12g}") for v in raw)  # 12 significant digits: readable, stable
        return tuple(dict.fromkeys(round(v) for v in raw))


def _param_kind(v: Any) -> str | None:
    if isinstance(v, dict):
        if "choices" in v:
            return "choice"
        if {"low", "high", "count"} & v.keys():
            return "log"
        return "range"
    if isinstance(v, ChoiceParam | LogParam | RangeParam):
        return {ChoiceParam: "choice", LogParam: "log", RangeParam: "range"}[type(v)]
    return None


ParamSpec = Annotated[
    Annotated[RangeParam, Tag("range")]
    | Annotated[ChoiceParam, Tag("choice")]
    | Annotated[LogParam, Tag("log")],
    Discriminator(
        _param_kind,
        custom_error_type="param_spec",
        custom_error_message="a parameter is {start, step, stop}, {choices: [...]} or {low, high, count}",
    ),
]

# strategies.<name>.params.<p> | coordinator.<key>[.<sub>] | symbols.<SYM>.<key>
_TARGET = re.compile(r"^(strategies\.[^.]+\.params\.[^.]+|coordinator\.[A-Za-z_][\w.]*|symbols\.[^.]+\.\w+)$")


class WalkForwardConfig(_Section):
    """Walk-forward: ``folds`` in-sample searches, each followed by an out-of-sample run.

    Lengths are ``<n>d``, ``<n>w``, ``<n>m`` or ``<n>y`` (days, weeks, calendar months, years). Rolling
    windows keep the in-sample length; anchored windows all start at the backtest start. Without
    ``out_of_sample`` the out-of-sample windows share what follows the first in-sample window equally.
    """

    mode: Literal["rolling", "anchored"] = "rolling"
    folds: int = Field(ge=1, le=1000)
    in_sample: str = Field(pattern=r"^[1-9]\d*[dwmy]$")
    out_of_sample: str | None = Field(default=None, pattern=r"^[1-9]\d*[dwmy]$")


class GeneticConfig(_Section):
    """MT5-style genetic algorithm settings (defaults in the spirit of MT5's fast optimization)."""

    population: int = Field(default=32, ge=4)
    tournament: int = Field(default=3, ge=2, description="candidates per parent selection")
    crossover: float = Field(default=0.9, ge=0, le=1, description="probability a child mixes two parents")
    mutation: float = Field(default=0.1, ge=0, le=1, description="probability per gene of a new value")
    elite: int = Field(default=2, ge=0, description="best passes copied into every parent pool")


class OptimizeConfig(_Section):
    parameters: dict[str, ParamSpec] = Field(min_length=1, description="target path -> values")
    method: Method = "grid"
    budget: int | None = Field(default=None, ge=1, description="passes; default (grid only): the whole grid")
    seed: int = 42
    criterion: CriterionName = "balance"
    custom: str | None = Field(default=None, description="criterion custom: 'module:function' of metrics")
    objectives: list[CriterionName] | None = Field(default=None, description="nsga2: two or more criteria")
    min_trades: int = Field(default=0, ge=0, description="passes with fewer trades are discarded")
    max_drawdown_pct: float | None = Field(
        default=None, gt=0, le=100, description="passes whose equity drawdown % exceeds this are discarded"
    )
    forward: ForwardSplit | dt.date = Field(default="none", description="MT5's forward period")
    walk_forward: WalkForwardConfig | None = None
    genetic: GeneticConfig = GeneticConfig()

    @field_validator("parameters")
    @classmethod
    def _targets(cls, v: dict[str, Any]) -> dict[str, Any]:
        # imported here: config.py pulls in the regime detectors (scikit-learn, hmmlearn), seconds that a
        # worker importing the search space only to enumerate it should not pay
        from mt5tester.config import CoordinatorConfig

        for path in v:
            if not _TARGET.match(path):
                raise ValueError(
                    f"[{path}] not a target: use strategies.<name>.params.<param>, coordinator.<key> "
                    "or symbols.<SYMBOL>.<key>"
                )
            if path.startswith("coordinator."):
                key = path.split(".")[1]
                if key not in CoordinatorConfig.model_fields:
                    raise ValueError(f"[{path}] coordinator has no key '{key}'")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> OptimizeConfig:
        size = self.space().size
        if self.method == "grid" and self.budget is not None and self.budget < size:
            raise ValueError(
                f"[budget] {self.budget} is below the grid's {size} points; raise it or use method random, "
                "genetic or tpe"
            )
        if self.method != "grid" and self.budget is None:
            raise ValueError(f"[budget] method {self.method} needs a budget (passes)")
        if (self.criterion == "custom" or "custom" in (self.objectives or [])) and not self.custom:
            raise ValueError("[custom] criterion custom needs custom: 'module:function'")
        if self.custom and ":" not in self.custom:
            raise ValueError(f"[custom] '{self.custom}' must be 'module:function'")
        if self.method == "nsga2" and len(self.objectives or []) < 2:
            raise ValueError("[objectives] method nsga2 needs two or more criteria")
        if self.objectives is not None and self.method != "nsga2":
            raise ValueError(f"[objectives] are for method nsga2, not {self.method} (use criterion)")
        if self.walk_forward is not None and self.forward != "none":
            raise ValueError("[walk_forward] excludes forward: pick one")
        return self

    def space(self) -> Space:
        return Space(tuple(Dimension(path, spec.values()) for path, spec in self.parameters.items()))


# ------------------------------------------------------------------------------------------- the space


@dataclass(frozen=True)
class Dimension:
    path: str
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class Space:
    """The discrete grid: a point is a tuple of indices, one per dimension, in config order."""

    dims: tuple[Dimension, ...]

    @property
    def size(self) -> int:
        return math.prod(len(d.values) for d in self.dims)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(d.values) for d in self.dims)

    def grid(self) -> Iterator[tuple[int, ...]]:
        """Every point, the last parameter varying fastest (deterministic, as listed in the config)."""
        return itertools.product(*(range(n) for n in self.shape))

    def params(self, point: tuple[int, ...]) -> dict[str, Scalar]:
        return {d.path: d.values[i] for d, i in zip(self.dims, point, strict=True)}

    def point(self, params: dict[str, Any]) -> tuple[int, ...]:
        try:
            return tuple(d.values.index(params[d.path]) for d in self.dims)
        except (KeyError, ValueError):
            raise ValueError(f"params {params} are not a point of this space") from None

    def unflatten(self, flat: int) -> tuple[int, ...]:
        out = []
        for n in reversed(self.shape):
            flat, i = divmod(flat, n)
            out.append(i)
        return tuple(reversed(out))


def parse_optimize(raw: Any, source: str = "<config>") -> OptimizeConfig:
    """Validate a raw ``optimize:`` mapping; errors name the key path as config.py's do."""
    try:
        return OptimizeConfig.model_validate(raw)
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            loc = [str(p) for p in err["loc"]]
            if loc[:1] == ["parameters"] and len(loc) > 2 and loc[2] in ("range", "choice", "log"):
                del loc[2]  # the union's tag, not a key the user wrote
            path = ".".join(["optimize", *loc])
            if err["type"] == "extra_forbidden":
                msgs.append(f"{source}: unknown key '{path}'")
            else:
                msg = err["msg"].removeprefix("Value error, ")
                # model-level checks say which key they are about as "[key] message"
                m = re.match(r"^\[([^\]]+)\] (.*)$", msg, re.S)
                if m:
                    path, msg = f"{path}.{m.group(1)}", m.group(2)
                msgs.append(f"{source}: {path}: {msg}")
        raise ConfigError("config error in " + source + "\n  " + "\n  ".join(msgs)) from None


def check_targets(cfg: Any) -> None:
    """Every target of ``cfg.optimize`` names something the Config has: a strategy (by name, or class if
    unnamed), a tested symbol and a SymbolSpec setting. Raises ValueError("[optimize.<key path>] ...")
    which config.py turns into ``file:line: optimize.<key path>: message``. (The forward period and
    walk-forward windows are checked against the backtest range when a study starts.)"""
    from mt5tester.model.symbol import SymbolSpec

    opt = cfg.optimize
    if opt is None:
        return
    names = [s.name or s.class_ for s in cfg.strategies]
    for path in opt.parameters:
        parts = path.split(".")
        where = f"[optimize.parameters.{path}]"
        if parts[0] == "strategies" and parts[1] not in names:
            raise ValueError(f"{where} no strategy named '{parts[1]}' (strategies: {', '.join(names)})")
        if parts[0] == "symbols":
            if parts[1] not in cfg.backtest.symbols:
                raise ValueError(
                    f"{where} '{parts[1]}' is not a tested symbol (backtest.symbols: "
                    f"{', '.join(cfg.backtest.symbols)})"
                )
            if parts[2] not in SymbolSpec.model_fields or parts[2] == "name":
                raise ValueError(f"{where} a symbol has no setting '{parts[2]}'")
