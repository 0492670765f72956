"""Checkpoint and resume: the full state of a run at a decision point, stored in the results database.

A checkpoint holds everything that changes during a run: the trade server (account, book, history,
counters, random generator), the terminal's clock, every strategy (``state_dict()`` when it has one,
e.g. the ML models, else its attributes), the coordinator's circuit breaker, the runner's funnel and
sequence numbers, and the position in the timeline. Market data, prepared indicators and regimes are
rebuilt from the same config and data, which gives the same arrays. On resume the rows written after
the checkpoint (by a run that was killed) are deleted, then the loop continues from the next point,
so the deals and the equity curve are exactly those of an uninterrupted run. Every run also has a
checkpoint before bar 1 (``start_marker``), so a run that failed before its first timed checkpoint
(e.g. its database filled up) can be resumed too.
"""

from __future__ import annotations

import datetime as dt
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from mt5tester.errors import StorageError
from mt5tester.results import db

_FIX = "Fix the database (results.database_url, MT5TESTER_DB_URL or --db) and resume again"

SERVER_FIELDS = (
    "balance",
    "positions",
    "orders",
    "history_orders",
    "deals",
    "ambiguous_bars",
    "stop_outs",
    "now",
    "server_offset_ns",
    "_next_rollover",
    "_next_ticket",
    "_next_deal",
    "_rng",
)


@dataclass
class Checkpoint:
    seq: int
    time_ns: int
    state: dict[str, Any]


def _strategy_state(strategy: Any) -> dict[str, Any]:
    if hasattr(strategy, "state_dict"):
        return {"state_dict": strategy.state_dict()}
    return {"attrs": {k: v for k, v in vars(strategy).items() if k != "ctx"}}


def _restore_strategy(strategy: Any, state: dict[str, Any]) -> None:
    if "state_dict" in state:
        strategy.load_state(state["state_dict"])
    else:
        ctx = strategy.ctx
        vars(strategy).update(state["attrs"])
        strategy.ctx = ctx


def snapshot(runner: Any, point: int, t: int) -> bytes:
    """Serialize the runner's state after decision point ``point`` (time ``t``)."""
    c = runner.c
    state = {
        "point": point,
        "time": t,
        "base_dir": str(c.base_dir),
        "server": {f: getattr(c.server, f) for f in SERVER_FIELDS},
        "market_now": c.terminal.market.now,
        "terminal": {"selected": c.terminal.selected, "books": c.terminal._books},
        "strategies": [_strategy_state(ls.strategy) for ls in c.strategies],
        "breaker": {k: v for k, v in vars(c.coordinator.breaker).items()},
        "runner": {
            "funnel": runner.funnel,
            "disabled": runner.disabled,
            "signal_seq": runner._signal_seq,
            "error_seq": runner._error_seq,
            "logged_tb": runner._logged_tb,
            "ctx_now": runner.ctx.now,
        },
    }
    try:
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:  # an unpicklable strategy attribute: say which, fail loudly
        raise StorageError(
            f"cannot checkpoint the run: {type(e).__name__}: {e}. Give the strategy state_dict() and "
            "load_state()"
            " or set results.checkpoint_seconds: null"
        ) from e


def restore(runner: Any, state: dict[str, Any]) -> int:
    """Put a snapshot back into a freshly built runner; return the index of the next point to run."""
    c = runner.c
    for f, v in state["server"].items():
        setattr(c.server, f, v)
    c.terminal.market.set_time(state["market_now"])
    c.terminal.selected, c.terminal._books = state["terminal"]["selected"], state["terminal"]["books"]
    for ls, st in zip(c.strategies, state["strategies"], strict=True):
        _restore_strategy(ls.strategy, st)
    vars(c.coordinator.breaker).update(state["breaker"])
    r = state["runner"]
    runner.funnel, runner.disabled = r["funnel"], r["disabled"]
    runner._signal_seq, runner._error_seq, runner._logged_tb = r["signal_seq"], r["error_seq"], r["logged_tb"]
    runner.ctx.now = r["ctx_now"]
    return int(state["point"]) + 1


def save(runner: Any, point: int, t: int) -> None:
    """Store the checkpoint and the rows recorded up to it in one transaction, so the two agree."""
    blob = snapshot(runner, point, t)
    position = {
        "signal_seq": runner._signal_seq,
        "error_seq": runner._error_seq,
        "next_deal": runner.c.server._next_deal,
        "time": t,
    }
    runner.rec.flush(lambda conn: _insert(conn, runner.run_id, t, blob, position))


def start_marker(run_id: str, base_dir: str, start_ns: int) -> Callable[[Connection], None]:
    """The statements of the checkpoint "before bar 1" (joined to the transaction that stores the run).

    It holds no state: a run is a function of its config and data, so a resume from it rebuilds the run
    as new and starts at the first decision point. With it every run can be resumed, even one whose
    first write of rows failed.
    """
    state = {
        "point": -1,
        "time": start_ns - 1,
        "base_dir": base_dir,
        "fresh": True,
        "server": {"_next_deal": 0},  # truncate_after: every row goes, the deposit deal is recorded again
        "runner": {"signal_seq": 0, "error_seq": 0},
    }
    blob = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    position = {"signal_seq": 0, "error_seq": 0, "next_deal": 0, "time": start_ns - 1}
    return lambda conn: _insert(conn, run_id, start_ns - 1, blob, position)


def _insert(conn: Connection, run_id: str, t: int, blob: bytes, position: dict[str, Any]) -> None:
    seq = (
        conn.execute(
            select(db.checkpoints.c.seq)
            .where(db.checkpoints.c.run_id == run_id)
            .order_by(db.checkpoints.c.seq.desc())
            .limit(1)
        ).scalar()
        or 0
    )
    conn.execute(
        insert(db.checkpoints).values(
            run_id=run_id,
            seq=seq + 1,
            time_ns=t,
            created_at=dt.datetime.now(dt.UTC).isoformat(),
            state=blob,
            recorder_position=position,
        )
    )


def latest(engine: Any, run_id: str) -> Checkpoint | None:
    with (
        db.storage_errors(engine, f"reading the checkpoints of run {run_id}", _FIX),
        engine.connect() as conn,
    ):
        row = conn.execute(
            select(db.checkpoints.c.seq, db.checkpoints.c.time_ns, db.checkpoints.c.state)
            .where(db.checkpoints.c.run_id == run_id)
            .order_by(db.checkpoints.c.seq.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    return Checkpoint(int(row[0]), int(row[1]), pickle.loads(row[2]))


def truncate_after(engine: Any, run_id: str, state: dict[str, Any]) -> None:
    """Delete what a killed run recorded after the checkpoint, and mark the run running again."""
    r = state["runner"]
    t = int(state["time"])
    next_deal = int(state["server"]["_next_deal"])
    with (
        db.storage_errors(engine, f"deleting what run {run_id} wrote after its checkpoint", _FIX),
        engine.begin() as conn,
    ):
        conn.execute(delete(db.deals).where(db.deals.c.run_id == run_id, db.deals.c.ticket >= next_deal))
        conn.execute(
            delete(db.signals).where(db.signals.c.run_id == run_id, db.signals.c.signal_id > r["signal_seq"])
        )
        conn.execute(
            delete(db.strategy_errors).where(
                db.strategy_errors.c.run_id == run_id, db.strategy_errors.c.seq > r["error_seq"]
            )
        )
        conn.execute(delete(db.equity).where(db.equity.c.run_id == run_id, db.equity.c.time > t))
        conn.execute(delete(db.orders).where(db.orders.c.run_id == run_id))  # written at the end only
        conn.execute(delete(db.positions).where(db.positions.c.run_id == run_id))
        conn.execute(delete(db.daily_equity).where(db.daily_equity.c.run_id == run_id))
        conn.execute(
            update(db.runs)
            .where(db.runs.c.run_id == run_id)
            .values(status="running", finished_at=None, error=None, funnel=None)
        )
