"""Optimizer studies in the results database: one row per study, per pass (trial) and per fold.

A pass is inserted (and committed) as soon as it finishes, so a study killed at any point keeps every
finished pass and ``mt5tester optimize --resume STUDY`` skips them.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
from sqlalchemy import Engine, delete, func, select, update

from mt5tester.errors import StorageError
from mt5tester.results import db

TRIAL_KEY = ("fold", "phase", "number")


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN and infinities to None (PostgreSQL's JSON refuses them)."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None
    return value


def create_study(engine: Engine, row: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(db.studies.insert().values(**clean(row)))


def set_status(engine: Engine, study_id: str, status: str, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(db.studies)
            .where(db.studies.c.study_id == study_id)
            .values(status=status, **{k: clean(v) for k, v in values.items()})
        )


def insert_trial(engine: Engine, row: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(db.study_trials.insert().values(**clean(row)))


def set_trial_run(engine: Engine, study_id: str, key: tuple[int, str, int], run_id: str) -> None:
    t = db.study_trials
    with engine.begin() as conn:
        conn.execute(
            update(t)
            .where(t.c.study_id == study_id, t.c.fold == key[0], t.c.phase == key[1], t.c.number == key[2])
            .values(run_id=run_id)
        )


def save_fold(engine: Engine, row: dict[str, Any]) -> None:
    f = db.study_folds
    with engine.begin() as conn:
        conn.execute(delete(f).where(f.c.study_id == row["study_id"], f.c.fold == row["fold"]))
        conn.execute(f.insert().values(**clean(row)))


def study_ids(engine: Engine) -> list[str]:
    s = db.studies
    with engine.connect() as conn:
        q = select(s.c.study_id).order_by(s.c.started_at.desc(), s.c.study_id)
        return [r[0] for r in conn.execute(q)]


def resolve_study(engine: Engine, study_id: str) -> str:
    """The full id of ``study_id`` (an id or a unique prefix). StorageError naming the studies stored."""
    ids = study_ids(engine)
    if study_id in ids:
        return study_id
    matches = [i for i in ids if study_id and i.startswith(study_id)]
    if len(matches) == 1:
        return matches[0]
    where = engine.url.render_as_string(hide_password=True)
    what = f"study id prefix '{study_id}' is ambiguous" if matches else f"no study '{study_id}'"
    shown = ", ".join((matches or ids)[:20])
    raise StorageError(f"{what} in {where}; studies there: {shown or 'none'} (mt5tester optimize list)")


def study_row(engine: Engine, study_id: str) -> dict[str, Any]:
    s = db.studies
    with engine.connect() as conn:
        return dict(conn.execute(select(s).where(s.c.study_id == study_id)).mappings().one())


def trials(engine: Engine, study_id: str) -> list[dict[str, Any]]:
    """Every stored pass of a study, ordered by fold, phase and number."""
    t = db.study_trials
    with engine.connect() as conn:
        rows = conn.execute(
            select(t).where(t.c.study_id == study_id).order_by(t.c.fold, t.c.phase, t.c.number)
        ).mappings()
        return [dict(r) for r in rows]


def folds(engine: Engine, study_id: str) -> list[dict[str, Any]]:
    f = db.study_folds
    with engine.connect() as conn:
        rows = conn.execute(select(f).where(f.c.study_id == study_id).order_by(f.c.fold)).mappings()
        return [dict(r) for r in rows]


def list_studies(engine: Engine) -> list[dict[str, Any]]:
    """Every study, newest first, with its pass count and best score."""
    s, t = db.studies, db.study_trials
    counts = (
        select(t.c.study_id, func.count().label("passes"), func.max(t.c.score).label("best_score"))
        .where(t.c.phase == "is")
        .group_by(t.c.study_id)
        .subquery()
    )
    q = (
        select(
            s.c.study_id,
            s.c.status,
            s.c.started_at,
            s.c.method,
            s.c.criterion,
            s.c.space_size,
            s.c.budget,
            func.coalesce(counts.c.passes, 0).label("passes"),
            counts.c.best_score,
        )
        .select_from(s.outerjoin(counts, counts.c.study_id == s.c.study_id))
        .order_by(s.c.started_at.desc(), s.c.study_id)
    )
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def trials_of_runs(engine: Engine, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The passes that ``run_ids`` re-ran in full (``optimize rerun``), by run id; runs that re-ran no
    pass are absent."""
    t = db.study_trials
    if not run_ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(select(t).where(t.c.run_id.in_(run_ids))).mappings()
        return {r["run_id"]: dict(r) for r in rows}
