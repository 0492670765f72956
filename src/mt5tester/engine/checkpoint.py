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
import io
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from mt5tester.errors import StorageError
from mt5tester.results import db
from mt5tester.terminal.state import TradeState

_FIX = "Fix the database (results.database_url, MT5TESTER_DB_URL or --db) and resume again"


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
        "server": c.server.state,  # the whole TradeState: book, history, tickets, RNG, counters
        "market_now": c.terminal.market.now,
        "terminal": {"selected": c.terminal.selected, "books": c.terminal._books},
        "strategies": [_strategy_state(ls.strategy) for ls in c.strategies],
        "breaker": {k: v for k, v in vars(c.coordinator.breaker).items()},
        # each trading mode's coordinator has its own breaker (engine/modes.py)
        "mode_breakers": [dict(vars(co.breaker)) for co in (c.modes.coordinators() if c.modes else [])],
        "runner": {
            "funnel": runner.journal.funnel,
            "disabled": runner.host.disabled,
            "signal_seq": runner.journal.signal_seq,
            "error_seq": runner.journal.error_seq,
            "logged_tb": runner.journal.logged_tb,
            "sent": runner.journal.owners.sent,  # orders strategies sent themselves (attribution)
            "daily": runner.journal.daily,  # the daily equity folded so far
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
    c.server.state = _server_state(state["server"])
    c.terminal.market.set_time(state["market_now"])
    c.terminal.selected, c.terminal._books = state["terminal"]["selected"], state["terminal"]["books"]
    for ls, st in zip(c.strategies, state["strategies"], strict=True):
        _restore_strategy(ls.strategy, st)
    vars(c.coordinator.breaker).update(state["breaker"])
    for co, breaker in zip(
        c.modes.coordinators() if c.modes else [], state.get("mode_breakers", []), strict=False
    ):
        vars(co.breaker).update(breaker)
    r = state["runner"]
    journal = runner.journal
    journal.funnel, runner.host.disabled = r["funnel"], r["disabled"]
    journal.signal_seq, journal.error_seq, journal.logged_tb = r["signal_seq"], r["error_seq"], r["logged_tb"]
    journal.recorded = len(c.server.deals)  # the checkpoint is taken with every deal recorded
    journal.owners.reset(r.get("sent", {}))
    if "daily" in r:
        journal.daily = r["daily"]
    runner.ctx.now = r["ctx_now"]
    return int(state["point"]) + 1


def save(runner: Any, point: int, t: int) -> None:
    """Store the checkpoint and the rows recorded up to it in one transaction, so the two agree."""
    runner.host.fold_calls()  # the funnel's call counts up to this point go into the snapshot
    blob = snapshot(runner, point, t)
    position = {
        "signal_seq": runner.journal.signal_seq,
        "error_seq": runner.journal.error_seq,
        "next_deal": runner.c.server.state.next_deal,
        "time": t,
    }
    runner.rec.flush(lambda conn: _insert(conn, runner.run_id, t, blob, position))


class Timer:
    """Saves a checkpoint of ``runner`` when ``results.checkpoint_seconds`` have passed since the last
    one (never when it is None)."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.every = runner.c.cfg.results.checkpoint_seconds
        self.last = time.monotonic()

    def tick(self, point: int, t: int) -> None:
        if self.every is not None and time.monotonic() - self.last >= self.every:
            save(self.runner, point, t)
            self.last = time.monotonic()


def ticker(
    runner: Any, base: int, progress: Callable[[int, int], None] | None, total: int, saves: bool = True
) -> tuple[Callable[[int, int], None] | None, int]:
    """What follows point (n, t) when checkpoints or a progress bar are on (None otherwise), and the mask
    of the points it follows (``not n & mask``): the funnel's count of points made current (``base`` +
    points done: the loop counts them at its end), the checkpoint timer, the progress bar every 256
    points. The clock is read every 64 points when checkpoints are a second or more apart (a checkpoint
    lands at most 63 points late), at every point otherwise."""
    timer = Timer(runner)
    if not saves:  # the strategies' state is not the points' (a signal pass called them all already)
        timer.every = None
    if timer.every is None and progress is None:
        return None, 0
    funnel = runner.funnel

    def tick(n: int, t: int) -> None:
        funnel.decision_points = base + n + 1
        timer.tick(n, t)
        if progress is not None and not n & 255:
            progress(n, total)

    return tick, 63 if timer.every is None or timer.every >= 1 else 0


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
        "server": None,  # no state: truncate_after deletes every row, the deposit deal is recorded again
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
    return Checkpoint(int(row[0]), int(row[1]), loads(row[2]))


# Value types that moved to model/ (and RegimeParams to config): a checkpoint written before names them
# by their old modules, so a run checkpointed then can still be resumed.
_MOVED_MODULES = {"mt5tester.terminal.structs": "mt5tester.model.structs"}
_MOVED_CLASSES = {
    ("mt5tester.terminal.records", "Position"): "mt5tester.model.trade",
    ("mt5tester.terminal.records", "Order"): "mt5tester.model.trade",
    ("mt5tester.terminal.records", "Deal"): "mt5tester.model.trade",
    ("mt5tester.data.importers", "Ticks"): "mt5tester.model.ticks",
    ("mt5tester.regime.detectors", "RegimeParams"): "mt5tester.config",
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        module = _MOVED_CLASSES.get((module, name), _MOVED_MODULES.get(module, module))
        return super().find_class(module, name)


def loads(blob: bytes) -> Any:
    """A checkpoint's state from its pickle, reading classes saved under their old modules."""
    return _Unpickler(io.BytesIO(blob)).load()


def _server_state(saved: TradeState | dict[str, Any]) -> TradeState:
    """The saved TradeState; a checkpoint written before it existed (a dict of the server's fields,
    private ones with a leading underscore) is read into one, so such a run can still be resumed."""
    if isinstance(saved, TradeState):
        return saved
    return TradeState(**{k.lstrip("_"): v for k, v in saved.items()})


def _next_deal(state: dict[str, Any]) -> int:
    """Ticket of the first deal made after the checkpoint (0 before bar 1: every deal goes)."""
    server: TradeState | dict[str, Any] | None = state["server"]
    if isinstance(server, dict):  # written before the TradeState, as _server_state reads it
        return int(server["_next_deal"])
    return 0 if server is None else server.next_deal


def truncate_after(engine: Any, run_id: str, state: dict[str, Any]) -> None:
    """Delete what a killed run recorded after the checkpoint, and mark the run running again."""
    r = state["runner"]
    t = int(state["time"])
    next_deal = _next_deal(state)
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
