"""The risk coordinator: the rules a live account runs, reading the market and the account only
through a MetaTrader5-shaped object (our ``terminal.shim`` module, or the real ``MetaTrader5`` package).

``Coordinator(cfg, mt5).review(signals, context)`` returns one Decision per signal, in order:

1. exits (``flat``) are always approved (volume 0);
2. gates, per signal: sessions (weekend / blocked_window / outside_session), regime_gate
   (regime_not_allowed), circuit_breaker (daily_loss_limit / max_drawdown, ``close_all`` in details);
3. sizing (risk/sizing.py) × regime multiplier (size_below_min, no_stop_loss, no_atr);
4. conflicts between the surviving entries of this review (``conflict_policy``);
5. per entry in order, against the open positions plus the entries approved before it in this
   review: max_positions, max_positions_per_symbol, max_positions_per_strategy, max_total_risk,
   max_currency_exposure, max_correlation, min_free_margin. The first rejection wins; a resize lowers
   the volume and the next rules see the new volume.

A signal whose volume was lowered by a rule (or by netting) is ``resized``: approved with that volume,
``rule``/``reason``/``details`` naming the last rule that cut it. With every optional key off the
result equals the old coordinator's: the requested volume, approved or rejected by the two count rules.
"""

from __future__ import annotations

from mt5tester.config import CoordinatorConfig
from mt5tester.model.mt5api import Mt5Api
from mt5tester.model.signal import Signal
from mt5tester.risk.context import ReviewContext, SignalContext
from mt5tester.risk.decision import Decision, reject
from mt5tester.risk.exposure import Exposure, Mt5View
from mt5tester.risk.rules import (
    Candidate,
    CircuitBreakerRule,
    CorrelationRule,
    CurrencyExposureRule,
    FreeMarginRule,
    MaxPositionsPerStrategyRule,
    MaxPositionsPerSymbolRule,
    MaxPositionsRule,
    Portfolio,
    RegimeGateRule,
    Rule,
    SessionRule,
    TotalRiskRule,
    resolve_conflicts,
)
from mt5tester.risk.sizing import size

__all__ = ["Coordinator", "Decision", "ReviewContext", "SignalContext"]


class Coordinator:
    def __init__(self, cfg: CoordinatorConfig, mt5: Mt5Api | None = None) -> None:
        self.cfg = cfg
        self.mt5 = mt5
        self.breaker = CircuitBreakerRule(
            cfg.daily_loss_limit_pct, cfg.max_drawdown_pct, cfg.close_all_on_breach
        )
        self.gates: list[Rule] = []
        if cfg.block_weekends or cfg.sessions or cfg.blocked:
            self.gates.append(SessionRule(cfg.block_weekends, cfg.sessions, cfg.blocked))
        if cfg.regime_gate is not None:
            self.gates.append(RegimeGateRule(cfg.regime_gate))
        if cfg.daily_loss_limit_pct is not None or cfg.max_drawdown_pct is not None:
            self.gates.append(self.breaker)
        self.rules: list[Rule] = [
            MaxPositionsRule(cfg.max_positions),
            MaxPositionsPerSymbolRule(cfg.max_positions_per_symbol),
        ]
        if cfg.max_positions_per_strategy is not None:
            self.rules.append(MaxPositionsPerStrategyRule(cfg.max_positions_per_strategy))
        if cfg.max_total_risk_pct is not None:
            self.rules.append(TotalRiskRule(cfg.max_total_risk_pct, cfg.total_risk_policy))
        if cfg.max_currency_exposure is not None:
            self.rules.append(CurrencyExposureRule(cfg.max_currency_exposure, cfg.exposure_policy))
        if cfg.max_correlation is not None:
            self.rules.append(
                CorrelationRule(
                    cfg.max_correlation,
                    cfg.correlation_window,
                    cfg.correlation_timeframe,
                    cfg.correlation_policy,
                )
            )
        if cfg.min_free_margin_pct is not None or cfg.min_free_margin is not None:
            self.rules.append(FreeMarginRule(cfg.min_free_margin_pct, cfg.min_free_margin))
        self._free_margin_rule = any(isinstance(r, FreeMarginRule) for r in self.rules)

    # ------------------------------------------------------------------------------------ state
    def observe(self, server_time: int) -> None:
        """Sample equity for the daily loss limit (day start) and the drawdown peak. ``review`` does it
        too; call it at every decision point so the day start and the peak are exact."""
        acc = self.mt5.account_info() if self.mt5 is not None else None
        if acc is not None:
            self.breaker.observe(float(acc.equity), int(server_time))

    # ----------------------------------------------------------------------------------- review
    def review(self, signals: list[Signal], context: ReviewContext) -> list[Decision]:
        """One Decision per signal (see the module doc), with one SignalContext per signal."""
        if len(context.signals) != len(signals):
            raise ValueError(f"{len(signals)} signals but {len(context.signals)} signal contexts")
        return self._review(signals, context)

    def _review(self, signals: list[Signal], ctx: ReviewContext) -> list[Decision]:
        if self.mt5 is None:
            raise ValueError("Coordinator needs a MetaTrader5-shaped object to review with a ReviewContext")
        out: list[Decision | None] = [
            Decision("approved", 0.0) if s.direction == "flat" else None for s in signals
        ]
        if all(d is not None for d in out):
            return [d for d in out if d is not None]
        view = Mt5View(self.mt5)
        acc = self.mt5.account_info()
        if acc is None:
            err = list(self.mt5.last_error())
            return [d or reject("account", "no_account", last_error=err) for d in out]
        equity = float(acc.equity)
        server_time = ctx.server_time
        if server_time is None:
            ticks = [view.tick(s.symbol) for s in signals]
            server_time = max((int(t.time) for t in ticks if t is not None), default=0)
        self.breaker.observe(equity, server_time)
        portfolio = Portfolio(equity, str(acc.currency), server_time, view, self._exposures(view, ctx))

        cands: list[Candidate] = []
        for i, (sig, sc) in enumerate(zip(signals, ctx.signals, strict=True)):
            if out[i] is not None:
                continue
            direction = 1 if sig.direction == "buy" else -1
            # A symbol with a tick is one the terminal knows (no tick: unknown, or no quote yet), so its
            # symbol_info is read only by what needs it (sizing, a resize's rounding): see Candidate.
            price = view.entry_price(sig.symbol, direction)
            if price is None:
                out[i] = reject("market", "no_quote", symbol=sig.symbol)
                continue
            c = Candidate(i, sig, sc, direction, price, sc.volume, view)
            d = next((d for g in self.gates if (d := g.check(c, portfolio)) is not None), None)
            if d is not None:
                out[i] = d
                continue
            mult = self.multiplier(sc)
            sized = size(self.cfg.sizing, view, sig.symbol, sc.volume, sc.sl_distance, equity, mult)
            if sized.reason is not None:
                out[i] = reject("sizing", sized.reason, **sized.details)
                continue
            c.volume = sized.volume
            if self.cfg.sizing is not None or mult != 1.0:
                c.sizing = sized.details
            cands.append(c)

        last_cut: dict[int, Decision] = {}
        if self.cfg.conflict_policy is not None:
            for i, d in resolve_conflicts(self.cfg.conflict_policy, cands).items():
                if d.status == "rejected":
                    out[i] = d
                else:
                    last_cut[i] = d
            for c in cands:
                if c.index in last_cut:
                    c.volume = last_cut[c.index].volume
        for c in cands:
            if out[c.index] is not None:
                continue
            out[c.index] = self._pipeline(c, portfolio, last_cut.get(c.index))
        return [d if d is not None else reject("coordinator", "internal") for d in out]

    def _pipeline(self, c: Candidate, portfolio: Portfolio, cut: Decision | None) -> Decision:
        for rule in self.rules:
            d = rule.check(c, portfolio)
            if d is None:
                continue
            if d.status == "rejected":
                return (
                    d
                    if not c.sizing
                    else Decision(d.status, 0.0, d.rule, d.reason, d.details | {"sizing": c.sizing})
                )
            c.volume, cut = d.volume, d
        portfolio.exposures.append(
            Exposure(
                None,
                c.symbol,
                c.ctx.strategy,
                c.direction,
                c.volume,
                c.price,
                c.price - c.direction * c.ctx.sl_distance if c.ctx.sl_distance else 0.0,
            )
        )
        if self._free_margin_rule:
            portfolio.batch_margin += portfolio.view.margin(c.symbol, c.direction, c.volume, c.price)
        extra = {"sizing": c.sizing} if c.sizing else {}
        if cut is not None:
            return Decision("resized", c.volume, cut.rule, cut.reason, cut.details | extra)
        return Decision("approved", c.volume, None, None, extra)

    def multiplier(self, sc: SignalContext) -> float:
        """The regime detector's multiplier × ``regime_risk[label]`` (each 1.0 when absent)."""
        m = sc.regime_multiplier if sc.regime_multiplier is not None else 1.0
        m *= self.cfg.risk_multiplier  # a trading mode's (strategy/modes.py); 1.0 by default
        if self.cfg.regime_risk is not None and sc.regime is not None:
            m *= self.cfg.regime_risk.get(sc.regime, 1.0)
        return m

    def _exposures(self, view: Mt5View, ctx: ReviewContext) -> list[Exposure]:
        out = []
        for p in view.mt5.positions_get() or ():
            if ctx.exclude and int(p.ticket) in ctx.exclude:
                continue  # opened by this point's own signals before a restart: not there at its review
            out.append(
                Exposure(
                    int(p.ticket),
                    str(p.symbol),
                    ctx.owners.get(int(p.ticket)),
                    1 if p.type == 0 else -1,
                    float(p.volume),
                    float(p.price_current),
                    float(p.sl),
                )
            )
        return out
