"""The lifecycle funnel computed from the recorded rows (signals, deals, strategy errors, equity).

Each signal's life is a chain of rows: the signal row (generated, the coordinator's decision with its
rule and reason, the order ticket and retcode), the deals that carry its signal id, and the position
they opened or closed (with the close reason). The funnel printed after a run is this computation, so
what is shown is what was stored.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Engine, func, select

from mt5tester.model import constants as C
from mt5tester.results import db

CLOSE_KEYS = {C.DEAL_REASON_SL: "sl", C.DEAL_REASON_TP: "tp", C.DEAL_REASON_SO: "stop_out"}


def funnel_from_db(engine: Engine, run_id: str) -> dict[str, Any]:
    s, d, e = db.signals, db.deals, db.strategy_errors
    with engine.connect() as conn:
        status: Counter[str] = Counter(
            dict(
                conn.execute(
                    select(s.c.status, func.count()).where(s.c.run_id == run_id).group_by(s.c.status)
                ).all()
            )
        )
        rejected: dict[str, int] = dict(
            conn.execute(
                select(s.c.reason, func.count())
                .where(s.c.run_id == run_id, s.c.status == "rejected")
                .group_by(s.c.reason)
                .order_by(s.c.reason)
            ).all()
        )
        executed = conn.execute(
            select(func.count()).where(
                s.c.run_id == run_id, s.c.retcode.in_([C.TRADE_RETCODE_DONE, C.TRADE_RETCODE_PLACED])
            )
        ).scalar()
        closes = conn.execute(
            select(d.c.reason, d.c.comment).where(
                d.c.run_id == run_id,
                d.c.entry != C.DEAL_ENTRY_IN,
                d.c.type.in_([C.DEAL_TYPE_BUY, C.DEAL_TYPE_SELL]),
            )
        ).all()
        errors: dict[str, int] = dict(
            conn.execute(
                select(e.c.strategy, func.count())
                .where(e.c.run_id == run_id, e.c.error_type != "InvalidSignal")
                .group_by(e.c.strategy)
                .order_by(e.c.strategy)
            ).all()
        )
        invalid = conn.execute(
            select(func.count()).where(e.c.run_id == run_id, e.c.error_type == "InvalidSignal")
        ).scalar()
        points = conn.execute(select(func.count()).where(db.equity.c.run_id == run_id)).scalar()
    closed: Counter[str] = Counter()
    for reason, comment in closes:
        key = CLOSE_KEYS.get(reason)
        if key is None:
            key = {"end of run": "end_of_run", "circuit breaker": "circuit_breaker"}.get(comment, "signal")
        closed[key] += 1
    return {
        "decision_points": max(int(points or 0) - 1, 0),  # one equity row per point, plus the end
        "signals_generated": sum(status.values()),
        "fed_to_fusion": status["to_fusion"],
        "invalid_signals": int(invalid or 0),
        "approved": status["approved"] + status["resized"],
        "resized": status["resized"],
        "rejected": rejected,
        "executed": int(executed or 0),
        "closed": {
            k: closed.get(k, 0) for k in ("sl", "tp", "signal", "end_of_run", "stop_out", "circuit_breaker")
        },
        "strategy_errors": errors,
    }
