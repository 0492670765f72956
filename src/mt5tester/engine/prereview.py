"""The coordinator's decisions that read the clock and the symbol but not the book, taken per signal
before driver (b) runs, by the rules' own code:

- the clock's gates (weekends, blocked windows, trading sessions: ``risk.rules.SessionRule.at``), taken
  once per distinct server minute of the week;
- sizing: fixed lots and the risk multiplier (``risk.sizing.size`` with the coordinator's multiplier),
  taken once per (strategy, symbol): without risk-% or volatility sizing it depends on neither equity
  nor the market.

The kernel compiles no copy of these rules: it reads their outcome (one volume and one flag per signal)
and applies the count rules to the signals that pass, as ``Coordinator.review`` does (gates, then
sizing, then the count rules). ``decisions`` and ``sizing`` give the signal rows the rule, reason and
details the Python review writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mt5tester.risk.context import SignalContext
from mt5tester.risk.decision import Decision, reject
from mt5tester.risk.exposure import Mt5View
from mt5tester.risk.rules import SessionRule
from mt5tester.risk.sizing import size

if TYPE_CHECKING:
    from mt5tester.config import CoordinatorConfig
    from mt5tester.engine.loop import Runner

_WEEK_MINUTES = 7 * 1440
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


@dataclass
class PreReview:
    volume: np.ndarray  # per signal: the lots after sizing (the strategy's volume without sizing)
    rejected: np.ndarray  # per signal: a gate or sizing rejected it (the count rules do not see it)
    decisions: dict[int, Decision]  # signal index -> that rejection
    sizing: dict[tuple[int, int], dict[str, Any]]  # (strategy, symbol index) -> the sizing details


def uncompiled(cc: CoordinatorConfig) -> str | None:
    """Why sizing keeps a run in the Python loop: risk-% and volatility sizing read equity and bars."""
    if cc.sizing is not None and cc.sizing.mode != "fixed":
        return f"coordinator.sizing mode {cc.sizing.mode} reads equity at each entry"
    return None


def week_minute(server_s: np.ndarray) -> np.ndarray:
    """Minute of the server week (Monday 00:00 = 0) of server-clock seconds."""
    minutes = server_s // 60
    out: np.ndarray = ((minutes // 1440 + _EPOCH_WEEKDAY) % 7) * 1440 + minutes % 1440
    return out


def prereview(
    runner: Runner, times: np.ndarray, ev_si: np.ndarray, ev_sym: np.ndarray, symbols: list[str],
    volume: np.ndarray,
) -> PreReview:  # fmt: skip
    """The gates and sizing of every signal (``times``: each signal's decision point, UTC ns)."""
    c = runner.c
    co = c.coordinator
    n = len(ev_si)
    out = PreReview(volume.copy(), np.zeros(n, np.bool_), {}, {})
    gate = next((g for g in co.gates if isinstance(g, SessionRule)), None)
    if gate is not None and n:
        at, first = np.unique(times, return_inverse=True)
        server = np.array([c.terminal.market.to_server_s(int(t)) for t in at.tolist()], np.int64)
        _, one, which = np.unique(week_minute(server), return_index=True, return_inverse=True)
        by_key = [gate.at(int(server[j])) for j in one.tolist()]
        for k, key in enumerate(which[first].tolist()):
            d = by_key[key]
            if d is not None:
                out.rejected[k], out.decisions[k] = True, d
    cc = co.cfg
    names = [slot[0].name for slot in runner.host.slots]
    if cc.sizing is None and cc.risk_multiplier == 1.0:
        return out
    assert co.mt5 is not None  # a backtest's coordinator reads the simulated terminal
    view = Mt5View(co.mt5)
    pairs = np.unique(np.stack([ev_si, ev_sym]), axis=1).T.tolist() if n else []
    for si, sym in pairs:
        mask = (ev_si == si) & (ev_sym == sym)
        requested = float(volume[mask][0])
        mult = co.multiplier(SignalContext(names[si], requested))
        sized = size(cc.sizing, view, symbols[sym], requested, None, 0.0, mult)  # fixed: no equity
        if sized.reason is not None:
            d = reject("sizing", sized.reason, **sized.details)
            for k in np.flatnonzero(mask & ~out.rejected).tolist():
                out.rejected[k], out.decisions[k] = True, d
            continue
        out.volume[mask] = sized.volume
        out.sizing[(si, sym)] = sized.details
    return out
