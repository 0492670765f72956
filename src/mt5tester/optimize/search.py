"""Search methods over a ``Space`` behind one ask/tell interface.

    search = make_search(cfg)              # cfg: OptimizeConfig
    while not search.done:
        batch = search.ask(n)              # up to n unseen points (params dicts); [] = wait for results
        for params in batch: search.tell(params, run(params).metrics)   # any order

Determinism: results are buffered and handed to the method in ask order, never in arrival order, so a
driver that asks a batch and tells the whole batch before asking again gets the same points for a seed
whatever order its workers finish in. No method proposes a point twice (a pass is never re-evaluated).
"""

from __future__ import annotations

import logging
import warnings
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mt5tester.optimize.criteria import WORST, Metrics, Objective
from mt5tester.optimize.space import GeneticConfig, OptimizeConfig, Scalar, Space

if TYPE_CHECKING:
    import optuna

Point = tuple[int, ...]


@dataclass(frozen=True)
class Trial:
    number: int  # ask order, from 0
    params: dict[str, Scalar]
    metrics: Metrics
    scores: tuple[float, ...]  # higher is better; WORST when discarded by a constraint

    @property
    def score(self) -> float:
        return self.scores[0]


class Search(ABC):
    def __init__(self, space: Space, objective: Objective, budget: int) -> None:
        self.space = space
        self.objective = objective
        self.budget = min(budget, space.size)
        self.seen: set[Point] = set()
        self._asked: list[Point] = []
        self._number: dict[Point, int] = {}
        self._results: dict[int, Metrics] = {}
        self.history: list[Trial] = []  # told results in ask order (a prefix of the asked points)
        self._exhausted = False

    # -- the interface ------------------------------------------------------------------------------
    def ask(self, n: int) -> list[dict[str, Scalar]]:
        room = min(n, self.budget - len(self._asked))
        points = self._propose(room) if room > 0 else []
        if room > 0 and not points and len(self.history) == len(self._asked):
            self._exhausted = True  # nothing pending and nothing new: the method has converged
        for p in points:
            if p in self.seen:
                raise AssertionError(f"{type(self).__name__} proposed {p} twice")
            self.seen.add(p)
            self._number[p] = len(self._asked)
            self._asked.append(p)
        return [self.space.params(p) for p in points]

    def tell(self, params: dict[str, Any], metrics: Metrics) -> None:
        number = self._number.get(self.space.point(params))
        if number is None:
            raise ValueError(f"params {params} were never asked")
        if number in self._results:
            raise ValueError(f"params {params} were already told")
        self._results[number] = metrics
        # release in ask order only: arrival order must not change what the method learns
        while len(self.history) in self._results:
            i = len(self.history)
            point, m = self._asked[i], self._results[i]
            trial = Trial(i, self.space.params(point), m, self.objective.scores(m))
            self.history.append(trial)
            self._observe(point, trial)

    @property
    def done(self) -> bool:
        all_told = len(self.history) == len(self._asked)
        return all_told and (len(self._asked) >= self.budget or self._exhausted)

    @property
    def best(self) -> Trial | None:
        """The best told pass by the first criterion (the earliest of equals)."""
        return max(self.history, key=lambda t: t.score, default=None)  # max keeps the first of equals

    # -- per method ---------------------------------------------------------------------------------
    @abstractmethod
    def _propose(self, n: int) -> list[Point]:
        """Up to n points never proposed before ([] while waiting for results, or when exhausted)."""

    def _observe(self, point: Point, trial: Trial) -> None:  # noqa: B027 (optional hook)
        """A result, in ask order."""

    def _random_unseen(self, rng: np.random.Generator, exclude: set[Point]) -> Point | None:
        # Rejection sampling is fast while the grid is mostly unexplored; once it is crowded, scan.
        for _ in range(100):
            p = self.space.unflatten(int(rng.integers(self.space.size)))
            if p not in self.seen and p not in exclude:
                return p
        start = int(rng.integers(self.space.size))
        for k in range(self.space.size):
            p = self.space.unflatten((start + k) % self.space.size)
            if p not in self.seen and p not in exclude:
                return p
        return None


class GridSearch(Search):
    """MT5's "slow complete algorithm": every point, in ``Space.grid`` order."""

    def __init__(self, space: Space, objective: Objective) -> None:
        super().__init__(space, objective, space.size)
        self._it: Iterator[Point] = space.grid()

    def _propose(self, n: int) -> list[Point]:
        return [p for _, p in zip(range(n), self._it, strict=False)]


class RandomSearch(Search):
    """Points drawn uniformly without replacement, seeded."""

    def __init__(self, space: Space, objective: Objective, budget: int, seed: int) -> None:
        super().__init__(space, objective, budget)
        self._rng = np.random.default_rng(seed)

    def _propose(self, n: int) -> list[Point]:
        out: list[Point] = []
        while len(out) < n and (p := self._random_unseen(self._rng, set(out))) is not None:
            out.append(p)
        return out


class GeneticSearch(Search):
    """MT5-style genetic algorithm over the grid's value indices, seeded.

    Generation 0 is ``population`` random points. Each later generation is bred from the best
    ``population`` passes so far (elitist pool: the ``elite`` best always stay in it) by tournament
    selection, uniform crossover and per-gene mutation to another value of that parameter. A child that was
    already evaluated is mutated again (up to 20 times), then replaced by a random unseen point, so no
    pass is ever run twice. A generation is bred only once the previous one is fully told.
    """

    def __init__(
        self, space: Space, objective: Objective, budget: int, seed: int, cfg: GeneticConfig
    ) -> None:
        super().__init__(space, objective, budget)
        self.cfg = cfg
        self._rng = np.random.default_rng(seed)
        self._queue: deque[Point] = deque()

    def _propose(self, n: int) -> list[Point]:
        out: list[Point] = []
        while len(out) < n:
            if not self._queue:
                if out or len(self.history) < len(self._asked):
                    break  # the current generation is not fully told yet: breed from all of it
                self._queue.extend(self._breed())
                if not self._queue:
                    break
            out.append(self._queue.popleft())
        return out

    def _breed(self) -> list[Point]:
        size = min(self.cfg.population, self.budget - len(self._asked))
        children: list[Point] = []
        taken: set[Point] = set()
        ranked = sorted(self.history, key=lambda t: -t.score)[: max(self.cfg.population, self.cfg.elite)]
        pool = [self.space.point(t.params) for t in ranked]
        while len(children) < size:
            child = self._child(pool, taken) if pool else None
            if child is None:
                child = self._random_unseen(self._rng, taken)
                if child is None:
                    break
            children.append(child)
            taken.add(child)
        return children

    def _child(self, pool: list[Point], taken: set[Point]) -> Point | None:
        a, b = self._select(pool), self._select(pool)
        genes = list(a)
        if self._rng.random() < self.cfg.crossover:
            mask = self._rng.random(len(genes)) < 0.5
            genes = [bi if m else ai for ai, bi, m in zip(a, b, mask, strict=True)]
        for g in range(len(genes)):
            if self._rng.random() < self.cfg.mutation:
                genes[g] = self._mutate_gene(g, genes[g])
        for _ in range(20):
            child = tuple(genes)
            if child not in self.seen and child not in taken:
                return child
            g = int(self._rng.integers(len(genes)))
            genes[g] = self._mutate_gene(g, genes[g])
        return None

    def _select(self, pool: list[Point]) -> Point:
        # tournament: the best of k random pool members; pool is sorted best first, so the lowest index wins
        picks = self._rng.integers(len(pool), size=min(self.cfg.tournament, len(pool)))
        return pool[int(picks.min())]

    def _mutate_gene(self, g: int, value: int) -> int:
        n = self.space.shape[g]
        if n == 1:
            return value
        new = int(self._rng.integers(n - 1))
        return new if new < value else new + 1  # any other value, uniformly


class OptunaSearch(Search):
    """Optuna's TPE, CMA-ES or NSGA-II over the value indices (ordered ints; choices categorical)."""

    def __init__(
        self,
        space: Space,
        objective: Objective,
        budget: int,
        seed: int,
        method: str,
        population: int = 32,
    ) -> None:
        super().__init__(space, objective, budget)
        import optuna  # here: grid, random and genetic searches never pay its import

        # one log line per trial from optuna would drown the optimizer's own progress output
        optuna.logging.set_verbosity(logging.WARNING)
        sampler: optuna.samplers.BaseSampler
        if method == "tpe":
            sampler = optuna.samplers.TPESampler(seed=seed)
        elif method == "cmaes":
            with warnings.catch_warnings():  # with_margin (CMA-ES for integer grids) is "experimental"
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                sampler = optuna.samplers.CmaEsSampler(
                    seed=seed, warn_independent_sampling=False, with_margin=True
                )
        elif method == "nsga2":
            sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=max(population, 2))
        else:
            raise ValueError(f"not an optuna method: {method}")
        self._study = optuna.create_study(sampler=sampler, directions=["maximize"] * len(objective.criteria))
        self._trials: dict[Point, optuna.trial.Trial] = {}
        self._fail = optuna.trial.TrialState.FAIL
        self._rng = np.random.default_rng(seed)

    def _suggest(self, trial: optuna.trial.Trial) -> Point:
        out = []
        for d in self.space.dims:
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in d.values)
            if numeric:
                out.append(trial.suggest_int(d.path, 0, len(d.values) - 1))
            else:
                out.append(int(trial.suggest_categorical(d.path, list(range(len(d.values))))))
        return tuple(out)

    def _propose(self, n: int) -> list[Point]:
        out: list[Point] = []
        for _ in range(n):
            point = self._ask_unseen(set(out))
            if point is None:
                break
            out.append(point)
        return out

    def _ask_unseen(self, batch: set[Point]) -> Point | None:
        # few retries: a converged sampler repeats itself and each retry costs a model fit
        for _ in range(5):
            trial = self._study.ask()
            p = self._suggest(trial)
            if p not in self.seen and p not in batch:
                self._trials[p] = trial
                return p
            # a repeat: the sampler learns the known result (or, if still running, nothing) and asks again
            number = self._number.get(p)
            if number is not None and number < len(self.history):
                self._tell_study(trial, self.history[number].scores)
            else:
                self._study.tell(trial, state=self._fail)
        # still repeating: an unseen point at random, enqueued so the study holds it as its own trial
        fallback = self._random_unseen(self._rng, batch)
        if fallback is not None:
            self._study.enqueue_trial({d.path: i for d, i in zip(self.space.dims, fallback, strict=True)})
            trial = self._study.ask()
            self._suggest(trial)
            self._trials[fallback] = trial
        return fallback

    def _tell_study(self, trial: optuna.trial.Trial, scores: tuple[float, ...]) -> None:
        if any(s == WORST for s in scores):
            # discarded passes (constraints, undefined criterion) carry no value a sampler can model
            self._study.tell(trial, state=self._fail)
        else:
            self._study.tell(trial, list(scores))

    def _observe(self, point: Point, trial: Trial) -> None:
        self._tell_study(self._trials.pop(point), trial.scores)


def make_search(cfg: OptimizeConfig, objective: Objective | None = None) -> Search:
    """The search ``cfg`` describes (``objective`` defaults to its criterion and constraints)."""
    space, obj = cfg.space(), objective or Objective.from_config(cfg)
    budget = cfg.budget or space.size
    if cfg.method == "grid":
        return GridSearch(space, obj)
    if cfg.method == "random":
        return RandomSearch(space, obj, budget, cfg.seed)
    if cfg.method == "genetic":
        return GeneticSearch(space, obj, budget, cfg.seed, cfg.genetic)
    return OptunaSearch(space, obj, budget, cfg.seed, cfg.method, cfg.genetic.population)
