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

- conflicts (``risk.rules.resolve_conflicts``) between the entries of one point that pass the gates and
  sizing: with fixed sizing they depend on neither the book nor equity (a breaker that trips rejects
  every entry of its review before the conflicts, so the kernel checks it first). Risk-% sizing sizes
  and refuses entries at the review's equity, so ``conflict_policy`` with it stays in the Python loop;
- the correlations ``CorrelationRule`` reads (``risk.rules.correlation`` over the closed bars the API
  answers at each review's time): per signal, with every symbol of the run. Which symbols it compares
  with depends on the book, so the kernel picks them (engine/kernel.py's ``_correlation``).

The kernel compiles no copy of these rules: it reads their outcome (one volume and one flag per signal)
and applies the count rules to the signals that pass, as ``Coordinator.review`` does (gates, then
sizing, then the count rules). ``decisions`` and ``sizing`` give the signal rows the rule, reason and
details the Python review writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mt5tester.model.signal import Signal
from mt5tester.regime.detectors import LABELS, UNKNOWN, UNKNOWN_CODE
from mt5tester.risk.context import SignalContext
from mt5tester.risk.decision import Decision, reject
from mt5tester.risk.exposure import Mt5View
from mt5tester.risk.rules import (
    Candidate,
    CorrelationRule,
    RegimeGateRule,
    SessionRule,
    correlation,
    resolve_conflicts,
)
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
    conflict: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))  # sized in prereview()
    conflicts: dict[int, Decision] = field(default_factory=dict)  # signal index -> its conflict decision
    # (signals, symbols): CorrelationRule's correlation at each review (NaN: None); (0, 0) without the rule
    rho: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))


CONFLICT_REJECTED, CONFLICT_RESIZED = 1, 2


def uncompiled(cc: CoordinatorConfig) -> str | None:
    """Why sizing keeps a run in the Python loop: volatility sizing reads an ATR from closed bars at each
    entry (risk-% sizing is compiled in the kernel, but the conflicts between entries it sizes are not)."""
    if cc.sizing is not None and cc.sizing.mode == "volatility":
        return "coordinator.sizing mode volatility reads each entry's ATR from closed bars in Python"
    if cc.conflict_policy is not None and cc.sizing is not None and cc.sizing.mode == "risk":
        return "coordinator.conflict_policy with sizing mode risk (the entries in conflict depend on equity)"
    return None


def week_minute(server_s: np.ndarray) -> np.ndarray:
    """Minute of the server week (Monday 00:00 = 0) of server-clock seconds."""
    minutes = server_s // 60
    out: np.ndarray = ((minutes // 1440 + _EPOCH_WEEKDAY) % 7) * 1440 + minutes % 1440
    return out


def prereview(
    runner: Runner, times: np.ndarray, ev_si: np.ndarray, ev_sym: np.ndarray, symbols: list[str],
    volume: np.ndarray, ev_dir: np.ndarray, signals: list[Signal] | None = None,
) -> PreReview:  # fmt: skip
    """The gates, sizing and conflicts of every signal and the correlations it may meet (``times``: each
    signal's decision point, UTC ns; ``ev_dir``: +1 buy, -1 sell; ``signals``: a signal pass's Signals,
    None for column strategies)."""
    c = runner.c
    co = c.coordinator
    n = len(ev_si)
    out = PreReview(volume.copy(), np.zeros(n, np.bool_), {}, {}, {}, np.ones(n))
    out.conflict = np.zeros(n, np.int8)  # per signal: 0, CONFLICT_REJECTED or CONFLICT_RESIZED
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
    _sizes(runner, out, ev_si, ev_sym, code, labels, symbols, volume)
    if cc.conflict_policy is not None and n:
        _conflicts(runner, out, times, ev_si, ev_sym, ev_dir, symbols, signals)
    rule = next((r for r in co.rules if isinstance(r, CorrelationRule)), None)
    if rule is not None:
        out.rho = correlations(runner, rule, times, ev_sym, ~out.rejected, symbols)
    return out


def _sizes(
    runner: Runner, out: PreReview, ev_si: np.ndarray, ev_sym: np.ndarray, code: np.ndarray,
    labels: list[str | None], symbols: list[str], volume: np.ndarray,
) -> None:  # fmt: skip
    """Fixed sizing and the multipliers of every signal (risk-% sizing: the multiplier alone)."""
    co = runner.c.coordinator
    cc = co.cfg
    if cc.sizing is None and cc.risk_multiplier == 1.0 and cc.regime_risk is None:
        return
    names = [slot[0].name for slot in runner.host.slots]
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


def _conflicts(
    runner: Runner, out: PreReview, times: np.ndarray, ev_si: np.ndarray, ev_sym: np.ndarray,
    ev_dir: np.ndarray, symbols: list[str], signals: list[Signal] | None,
) -> None:  # fmt: skip
    """``resolve_conflicts`` on the entries of each point and symbol with both a buy and a sell that pass
    the gates and sizing, as ``Coordinator._review`` calls it (the others are never in conflict)."""
    co = runner.c.coordinator
    assert co.mt5 is not None and co.cfg.conflict_policy is not None
    names = [slot[0].name for slot in runner.host.slots]
    live = np.flatnonzero(~out.rejected)
    if not len(live):
        return
    # the points and symbols with entries both ways: (time, symbol) groups holding a buy and a sell
    _, group = np.unique(np.stack([times[live], ev_sym[live]]), axis=1, return_inverse=True)
    group = group.reshape(-1)
    buys = np.bincount(group, ev_dir[live] > 0)
    sells = np.bincount(group, ev_dir[live] < 0)
    both = np.flatnonzero((buys > 0) & (sells > 0))
    view = Mt5View(co.mt5)  # read for volume_min/max/step alone (a netted volume's rounding)
    for g in both.tolist():
        cands = []
        for k in live[group == g].tolist():
            sym = symbols[int(ev_sym[k])]
            who = names[ev_si[k]]
            signal = (  # a column strategy's signal: a market entry of confidence 1.0
                Signal(symbol=sym, direction="buy" if ev_dir[k] > 0 else "sell", strategy=who)
                if signals is None
                else signals[k]
            )
            ctx = SignalContext(who, float(out.volume[k]))
            cands.append(Candidate(k, signal, ctx, int(ev_dir[k]), 0.0, float(out.volume[k]), view))
        for k, d in resolve_conflicts(co.cfg.conflict_policy, cands).items():
            out.conflicts[k] = d
            if d.status == "rejected":
                out.conflict[k] = CONFLICT_REJECTED
            else:
                out.conflict[k], out.volume[k] = CONFLICT_RESIZED, d.volume


def correlations(
    runner: Runner, rule: CorrelationRule, times: np.ndarray, ev_sym: np.ndarray, todo: np.ndarray,
    symbols: list[str],
) -> np.ndarray:  # fmt: skip
    """(signals, symbols): ``risk.rules.correlation`` of each ``todo`` signal's symbol with each symbol of
    the run, on the closed bars the MetaTrader5 API answers at the signal's review (NaN: None).

    The market's clock is moved to each review's time and back: bars become visible at their close, so
    the bars read are the ones the review reads. Each pair is computed once per pair of closed-bar sets
    (the correlation timeframe's bars close less often than the decision points)."""
    co = runner.c.coordinator
    assert co.mt5 is not None
    market = runner.c.terminal.market
    ns, tf, count = len(symbols), int(rule.timeframe), rule.window + 1
    out = np.full((len(ev_sym), ns), np.nan)
    known: dict[tuple[int, int, int, int], float | None] = {}
    rows = np.flatnonzero(todo)
    at, first = np.unique(times[rows], return_index=True)
    ends = np.append(first[1:], len(rows))
    was = market.now
    try:
        for t, a, z in zip(at.tolist(), first.tolist(), ends.tolist(), strict=True):
            market.rewind(t)  # read-only: the caches of the market are keyed by their clock
            view = Mt5View(co.mt5)
            last = [_last_closed(view.closed_rates(s, tf, count)) for s in symbols]
            for k in rows[a:z].tolist():
                i = int(ev_sym[k])
                for j in range(ns):
                    key = (i, j, last[i], last[j])
                    if key not in known:
                        known[key] = correlation(view, symbols[i], symbols[j], tf, rule.window)
                    rho = known[key]
                    if rho is not None:
                        out[k, j] = rho
    finally:
        market.rewind(was)
    return out


def _last_closed(rates: np.ndarray | None) -> int:
    """The time of the newest bar of ``rates`` (-1: none): with the count, all that sets the bars read."""
    return -1 if rates is None or not len(rates) else int(rates["time"][-1])


def _groups(*keys: np.ndarray) -> dict[tuple[int, ...], np.ndarray]:
    """The signals of each distinct combination of ``keys`` (one array per key, a value per signal)."""
    if not len(keys[0]):
        return {}
    rows, which = np.unique(np.stack(keys), axis=1, return_inverse=True)
    which = which.reshape(-1)
    return {tuple(int(v) for v in rows[:, j]): which == j for j in range(rows.shape[1])}
