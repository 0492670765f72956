"""The coordinator's decisions that read the clock and the symbol but not the book, taken per signal
before driver (b) runs, by the rules' own code:

- the clock's gates (weekends, blocked windows, trading sessions: ``risk.rules.SessionRule.at``), taken
  once per distinct server minute of the week;
- the regime gate (``RegimeGateRule.allows``) on the regime labels, which are precomputed from closed
  bars (``RegimeTracker``: the label at ``t`` is the last closed bar's), once per strategy and label;
- sizing: fixed lots, the risk multiplier and ``regime_risk`` (``risk.sizing.size`` with
  ``Coordinator.multiplier``), once per (strategy, symbol, regime, requested volume): without risk-% or
  volatility sizing it depends on neither equity nor the market. Risk-% sizing reads the equity at the review:
  the kernel sizes those entries itself with the compiled ``risk.lots`` functions ``size`` uses, from
  the multiplier taken here.

The kernel compiles no copy of these rules: it reads their outcome (one volume and one flag per signal)
and applies the count rules to the signals that pass, as ``Coordinator.review`` does (gates, then
sizing, then the count rules). ``decisions`` and ``sizing`` give the signal rows the rule, reason and
details the Python review writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mt5tester.regime.detectors import LABELS, UNKNOWN, UNKNOWN_CODE
from mt5tester.risk.context import SignalContext
from mt5tester.risk.decision import Decision, reject
from mt5tester.risk.exposure import Mt5View
from mt5tester.risk.rules import RegimeGateRule, SessionRule
from mt5tester.risk.sizing import size

if TYPE_CHECKING:
    from mt5tester.config import CoordinatorConfig
    from mt5tester.engine.loop import Runner

_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


@dataclass
class PreReview:
    volume: np.ndarray  # per signal: the lots after sizing (the strategy's volume without sizing)
    rejected: np.ndarray  # per signal: a gate or sizing rejected it (the count rules do not see it)
    decisions: dict[int, Decision]  # signal index -> that rejection
    sizing: dict[int, dict[str, Any]]  # signal index -> the sizing details (when sizing applies)
    tags: dict[int, dict[str, Any]]  # signal index -> its tags ({"regime": label} with regimes)
    multiplier: np.ndarray  # per signal: Coordinator.multiplier (risk-% sizing reads it in the kernel)


def uncompiled(cc: CoordinatorConfig) -> str | None:
    """Why sizing keeps a run in the Python loop: volatility sizing reads an ATR from closed bars at each
    entry (risk-% sizing is compiled in the kernel)."""
    if cc.sizing is not None and cc.sizing.mode == "volatility":
        return "coordinator.sizing mode volatility reads each entry's ATR from closed bars in Python"
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
    out = PreReview(volume.copy(), np.zeros(n, np.bool_), {}, {}, {}, np.ones(n))
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
    names = [slot[0].name for slot in runner.host.slots]
    code = np.zeros(n, np.int64)  # per signal: its regime label's index in ``labels``
    labels: list[str | None] = [None]  # no regimes: every signal's regime is None
    if c.regimes is not None:
        labels = [*LABELS, UNKNOWN]
        for sym in np.unique(ev_sym).tolist():
            at = ev_sym == sym
            code[at] = c.regimes.codes_at(symbols[sym], times[at])
        code[code == UNKNOWN_CODE] = len(LABELS)
        for k, c_ in enumerate(code.tolist()):
            out.tags[k] = {"regime": labels[c_]}
    gate2 = next((g for g in co.gates if isinstance(g, RegimeGateRule)), None)
    if gate2 is not None and n:
        for (si, c_), at in _groups(ev_si, code).items():
            d = gate2.allows(names[si], labels[c_])
            if d is not None:
                for k in np.flatnonzero(at & ~out.rejected).tolist():
                    out.rejected[k], out.decisions[k] = True, d
    cc = co.cfg
    if cc.sizing is None and cc.risk_multiplier == 1.0 and cc.regime_risk is None:
        return out
    assert co.mt5 is not None  # a backtest's coordinator reads the simulated terminal
    view = Mt5View(co.mt5)
    # the requested volume is a key too: a signal pass's signals may each ask their own (signal_pass.py)
    asked = np.unique(volume, return_inverse=True)[1].reshape(-1)
    for (si, sym, c_, _), at in _groups(ev_si, ev_sym, code, asked).items():
        requested = float(volume[at][0])
        mult = co.multiplier(SignalContext(names[si], requested, None, labels[c_]))
        out.multiplier[at] = mult
        if cc.sizing is not None and cc.sizing.mode == "risk":
            continue  # sized in the kernel at the review's equity
        sized = size(cc.sizing, view, symbols[sym], requested, None, 0.0, mult)  # fixed: no equity
        todo = np.flatnonzero(at & ~out.rejected).tolist()
        if sized.reason is not None:
            d = reject("sizing", sized.reason, **sized.details)
            for k in todo:
                out.rejected[k], out.decisions[k] = True, d
            continue
        out.volume[at] = sized.volume
        if cc.sizing is not None or mult != 1.0:  # Coordinator._review keeps the details then
            for k in todo:
                out.sizing[k] = sized.details
    return out


def _groups(*keys: np.ndarray) -> dict[tuple[int, ...], np.ndarray]:
    """The signals of each distinct combination of ``keys`` (one array per key, a value per signal)."""
    if not len(keys[0]):
        return {}
    rows, which = np.unique(np.stack(keys), axis=1, return_inverse=True)
    which = which.reshape(-1)
    return {tuple(int(v) for v in rows[:, j]): which == j for j in range(rows.shape[1])}
