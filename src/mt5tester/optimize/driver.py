"""The optimizer's driver: a study = folds x (in-sample search, then forward / out-of-sample runs), every
pass a ``mt5tester.run()`` on an executor, every finished pass stored at once.

    result = optimize(cfg, base_dir=Path("."), workers=2)          # cfg.optimize is the study
    result = optimize(cfg, base_dir=..., resume="3f2a9c01b2de")      # a killed study: stored passes skipped

Determinism: the search is asked for fixed-size batches (independent of the number of workers) and told a
whole batch before it is asked again, in ask order (search.py), so the passes, their numbers and their
results are the same on one worker, a process pool or a Dask cluster, in any completion order. A resumed
study replays the same asks and finds the stored results in place of runs (the params asked must equal
the stored ones, or the study is refused: its config or code changed).

Folds: without forward or walk-forward, one fold (the backtest range, in-sample only). MT5's forward
period: one fold whose best ``FORWARD_TOP`` in-sample passes are also run on the forward window (phase
"forward"). Walk-forward: per fold an in-sample search, then its best pass on the out-of-sample window
(phase "oos"); the out-of-sample equity is stitched and the walk-forward efficiency computed per fold.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from mt5tester.config import Config, parse_config
from mt5tester.errors import ConfigError, StorageError
from mt5tester.optimize.apply import apply_params, check_windows, with_window
from mt5tester.optimize.criteria import WORST, Objective
from mt5tester.optimize.executors import Executor, make_executor
from mt5tester.optimize.search import Search, Trial, make_search
from mt5tester.optimize.space import ChoiceParam
from mt5tester.optimize.trial import TrialOutcome, TrialTask, worker_data
from mt5tester.optimize.walkforward import Window, forward_split, walk_forward_efficiency, walk_forward_folds
from mt5tester.results import db
from mt5tester.results import studies as store

FORWARD_TOP = 10  # in-sample passes also run on MT5's forward period (the best ones)
BATCH_ADAPTIVE = 16  # passes asked at once from genetic / Optuna methods (they learn between batches)
BATCH_FIXED = 256  # from grid / random (nothing to learn: large batches keep every worker busy)


@dataclass(frozen=True)
class StudyProgress:
    done: int
    total: int
    best_score: float | None
    best_params: dict[str, Any] | None


@dataclass(frozen=True)
class FoldPlan:
    index: int
    in_sample: Window
    out_of_sample: Window | None


@dataclass
class StudyResult:
    study_id: str
    status: str
    best: dict[str, Any] | None  # fold, number, params, metrics, score
    folds: list[dict[str, Any]]
    summary: dict[str, Any]
    executed: int = 0  # passes run by this call
    skipped: int = 0  # passes found stored (resume)
    url: str = field(default="", repr=False)


def fold_plan(cfg: Config) -> list[FoldPlan]:
    opt = cfg.optimize
    assert opt is not None
    start, end = cfg.backtest.start, cfg.backtest.end
    if opt.walk_forward is not None:
        return [
            FoldPlan(f.index, f.in_sample, f.out_of_sample)
            for f in walk_forward_folds(start, end, opt.walk_forward)
        ]
    fwd = forward_split(start, end, opt.forward)
    if fwd is not None:
        return [FoldPlan(0, fwd.in_sample, fwd.out_of_sample)]
    return [FoldPlan(0, Window(start, end), None)]


def check_study(cfg: Config, base_dir: Path) -> None:
    """Before the first pass: every choice and both ends of every range give a valid config whose
    strategies load (each tried with the other parameters at their first value), and the data loads."""
    from mt5tester.strategy.loader import load_strategies

    opt = cfg.optimize
    if opt is None:
        raise ConfigError(
            f"{cfg.where()}: no optimize: section; add one (parameters, method, criterion; README "
            "'Optimization')"
        )
    check_windows(cfg)
    space = opt.space()
    first = space.params(tuple(0 for _ in space.dims))
    for d in space.dims:
        # a range's values lie between its ends, and params are checked against bounds: its two ends
        # suffice (a 10,000-value range costs two checks); every choice is checked
        spec = opt.parameters[d.path]
        values = (
            d.values if isinstance(spec, ChoiceParam) else tuple(dict.fromkeys((d.values[0], d.values[-1])))
        )
        for v in values:
            trial = apply_params(cfg, first | {d.path: v})
            if d.path.startswith("strategies."):
                load_strategies(trial, base_dir)
    worker_data(cfg)


def _is_better(a: Trial, b: Trial | None) -> bool:
    return b is None or a.score > b.score


class _Study:
    def __init__(
        self,
        cfg: Config,
        base_dir: Path,
        engine: Engine,
        study_id: str,
        executor: Executor,
        progress: Callable[[StudyProgress], None] | None,
    ) -> None:
        assert cfg.optimize is not None
        self.cfg, self.opt, self.base_dir = cfg, cfg.optimize, base_dir
        self.engine, self.study_id, self.executor = engine, study_id, executor
        self.objective = Objective.from_config(self.opt)
        self.stored = {(r["fold"], r["phase"], r["number"]): r for r in store.trials(engine, study_id)}
        self.progress = progress
        self.plan = fold_plan(cfg)
        per_fold = min(self.opt.budget or self.opt.space().size, self.opt.space().size)
        extra = FORWARD_TOP if self.opt.forward != "none" else (1 if self.opt.walk_forward else 0)
        self.total = len(self.plan) * (per_fold + extra)
        self.done = self.executed = self.skipped = 0
        self.best: Trial | None = None
        method = self.opt.method
        self.batch = BATCH_FIXED if method in ("grid", "random") else BATCH_ADAPTIVE

    # -- bookkeeping ------------------------------------------------------------------------------------
    def _tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            b = self.best
            score = None if b is None or b.score == WORST else b.score
            self.progress(StudyProgress(self.done, self.total, score, None if b is None else b.params))

    def _save(self, out: TrialOutcome) -> None:
        score = self.objective.score(out.metrics)
        store.insert_trial(
            self.engine,
            {
                "study_id": self.study_id,
                "fold": out.fold,
                "phase": out.phase,
                "number": out.number,
                "params": out.params,
                "metrics": out.metrics,
                "score": None if score == WORST else score,
                "seed": out.seed,
                "duration": out.duration,
                "worker": out.worker,
                "curve": out.curve,
                "trade_pnl": out.trade_pnl,
            },
        )
        self.executed += 1

    def _task(self, fold: int, phase: str, number: int, params: dict[str, Any], window: Window) -> TrialTask:
        return TrialTask(
            fold,
            phase,
            number,
            params,
            with_window(self.cfg, window.start, window.end),
            self.cfg,
            str(self.base_dir),
        )

    def _known(self, key: tuple[int, str, int], params: dict[str, Any]) -> dict[str, Any] | None:
        row = self.stored.get(key)
        if row is None:
            return None
        if row["params"] != params:
            raise StorageError(
                f"study {self.study_id}: stored pass {key} has params {row['params']} but the search now "
                f"asks {params}: its config or mt5tester changed since; start a new study"
            )
        self.skipped += 1
        return dict(row["metrics"])

    # -- phases -----------------------------------------------------------------------------------------
    def search(self, fold: FoldPlan) -> Search:
        search = make_search(self.opt, self.objective)
        number = 0
        while not search.done:
            batch = search.ask(self.batch)
            if not batch:
                break
            todo = []
            for params in batch:
                metrics = self._known((fold.index, "is", number), params)
                if metrics is None:
                    todo.append(self._task(fold.index, "is", number, params, fold.in_sample))
                else:
                    search.tell(params, metrics)
                    self._observe(search)
                number += 1
            for out in self.executor.run(todo):
                self._save(out)
                search.tell(out.params, out.metrics)
                self._observe(search)
        return search

    def _observe(self, search: Search) -> None:
        if search.history and _is_better(search.history[-1], self.best):
            self.best = max(search.history, key=lambda t: t.score)
        self._tick()

    def run_passes(
        self, fold: FoldPlan, phase: str, passes: list[Trial], window: Window
    ) -> dict[int, dict[str, Any]]:
        """``passes`` (in-sample trials) run on ``window``; metrics by pass number."""
        results: dict[int, dict[str, Any]] = {}
        todo = []
        for t in passes:
            metrics = self._known((fold.index, phase, t.number), t.params)
            if metrics is None:
                todo.append(self._task(fold.index, phase, t.number, t.params, window))
            else:
                results[t.number] = metrics
                self._tick()
        for out in self.executor.run(todo):
            self._save(out)
            results[out.number] = out.metrics
            self._tick()
        return results

    def fold(self, fold: FoldPlan) -> dict[str, Any]:
        search = self.search(fold)
        kept = sorted((t for t in search.history if t.score != WORST), key=lambda t: -t.score)
        best = kept[0] if kept else None
        row: dict[str, Any] = {
            "study_id": self.study_id,
            "fold": fold.index,
            "is_start": fold.in_sample.start.isoformat(),
            "is_end": fold.in_sample.end.isoformat(),
            "oos_start": fold.out_of_sample.start.isoformat() if fold.out_of_sample else None,
            "oos_end": fold.out_of_sample.end.isoformat() if fold.out_of_sample else None,
            "best_number": None if best is None else best.number,
            "best_params": None if best is None else best.params,
            "is_metrics": None if best is None else dict(best.metrics),
            "oos_metrics": None,
            "wfe": None,
        }
        if fold.out_of_sample is not None and best is not None:
            phase = "oos" if self.opt.walk_forward is not None else "forward"
            chosen = [best] if phase == "oos" else kept[:FORWARD_TOP]
            oos = self.run_passes(fold, phase, chosen, fold.out_of_sample)
            row["oos_metrics"] = oos[best.number]
            row["wfe"] = _wfe(best.metrics, oos[best.number], self.cfg.backtest.initial_deposit, fold)
        store.save_fold(self.engine, row)
        return row


def _wfe(is_m: Any, oos_m: dict[str, Any], deposit: float, fold: FoldPlan) -> float | None:
    assert fold.out_of_sample is not None
    is_ret = float(is_m.get("total_net_profit") or 0.0) / deposit
    oos_ret = float(oos_m.get("total_net_profit") or 0.0) / deposit
    wfe = walk_forward_efficiency(is_ret, fold.in_sample.days, oos_ret, fold.out_of_sample.days)
    return None if wfe is None or not math.isfinite(wfe) else wfe


def open_study_db(cfg: Config, url: str | None = None) -> Engine:
    return db.connect(
        url or cfg.results.database_url,
        connect_timeout=cfg.results.connect_timeout_seconds,
        statement_timeout=cfg.results.statement_timeout_seconds,
    )


def load_study_config(engine: Engine, study_id: str) -> tuple[Config, Path]:
    """A stored study's config (its database URL replaced by the one it was read from) and base dir."""
    full = store.resolve_study(engine, study_id)
    row = store.study_row(engine, full)
    raw = dict(row["config"])
    raw["results"] = {**raw["results"], "database_url": engine.url.render_as_string(hide_password=False)}
    return parse_config(raw, f"study {full}"), Path(row["base_dir"])


def optimize(
    cfg: Config,
    *,
    base_dir: Path,
    workers: int = 1,
    scheduler: str | None = None,
    resume: str | None = None,
    progress: Callable[[StudyProgress], None] | None = None,
    engine: Engine | None = None,
) -> StudyResult:
    """Run (or, with ``resume``, continue) the study ``cfg.optimize`` describes; store it and return it."""
    from mt5tester.optimize.summary import summarize

    check_study(cfg, base_dir)
    opt = cfg.optimize
    assert opt is not None
    engine = engine or open_study_db(cfg)
    # before the study is stored: a bad --scheduler stores nothing
    executor = make_executor(workers, scheduler)
    if resume is not None:
        study_id = store.resolve_study(engine, resume)
        if store.study_row(engine, study_id)["status"] == "completed":
            raise StorageError(f"study {study_id} is completed; nothing to resume (mt5tester optimize show)")
        store.set_status(engine, study_id, "running", error=None, finished_at=None)
    else:
        study_id = uuid.uuid4().hex[:12]
        effective = cfg.effective()
        effective["results"]["database_url"] = db.redact(cfg.results.database_url)
        store.create_study(
            engine,
            {
                "study_id": study_id,
                "status": "running",
                "started_at": store.now(),
                "config": effective,
                "config_hash": cfg.config_hash(),
                "base_dir": str(base_dir.resolve()),
                "method": opt.method,
                "criterion": ",".join(opt.objectives or [opt.criterion]),
                "seed": opt.seed,
                "space_size": opt.space().size,
                "budget": min(opt.budget or opt.space().size, opt.space().size),
            },
        )
    try:
        study = _Study(cfg, base_dir, engine, study_id, executor, progress)
        if progress is not None:
            progress(StudyProgress(0, study.total, None, None))
        folds = [study.fold(f) for f in study.plan]
        summary = summarize(engine, study_id, cfg, folds)
    except BaseException as e:
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        store.set_status(engine, study_id, status, error=f"{type(e).__name__}: {e}", finished_at=store.now())
        raise
    finally:
        executor.close()
    store.set_status(engine, study_id, "completed", summary=summary, finished_at=store.now())
    return StudyResult(
        study_id,
        "completed",
        summary.get("best"),
        folds,
        summary,
        study.executed,
        study.skipped,
        engine.url.render_as_string(hide_password=True),
    )


def rerun_best_passes(engine: Engine, study_id: str, k: int = 1) -> list[tuple[dict[str, Any], str]]:
    """The ``k`` best in-sample passes of the study's last fold re-run in full (every record stored, a
    normal run in the study's database); each trial row links its run. Returns (trial, run_id) pairs."""
    from mt5tester.engine.run import run

    study_id = store.resolve_study(engine, study_id)
    cfg, base_dir = load_study_config(engine, study_id)
    rows = store.trials(engine, study_id)
    last = max((r["fold"] for r in rows), default=0)
    ranked = sorted(
        (r for r in rows if r["fold"] == last and r["phase"] == "is" and r["score"] is not None),
        key=lambda r: (-r["score"], r["number"]),
    )[:k]
    plan = {f.index: f for f in fold_plan(cfg)}[last]
    out = []
    for r in ranked:
        trial_cfg = apply_params(with_window(cfg, plan.in_sample.start, plan.in_sample.end), r["params"])
        result = run(trial_cfg, base_dir=base_dir)
        store.set_trial_run(engine, study_id, (r["fold"], "is", r["number"]), result.run_id)
        out.append((r, result.run_id))
    return out
