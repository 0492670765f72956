"""The coordinator's rules. Each is small: ``check(candidate, portfolio)`` returns None (pass), a rejection
or a resize (a smaller volume), always with a reason code and the numbers behind it.

Reason codes: weekend, blocked_window, outside_session, regime_not_allowed, daily_loss_limit,
max_drawdown, max_positions, max_positions_per_symbol, max_positions_per_strategy, no_stop_loss,
max_total_risk, max_currency_exposure, max_correlation, min_free_margin, order_check_failed,
size_below_min (a resize under volume_min), conflict_rejected, conflict_lower_confidence, conflict_tie,
conflict_netted.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from mt5tester.config import TimeWindowConfig
from mt5tester.model import constants as C
from mt5tester.model.signal import Signal
from mt5tester.model.timeframe import Timeframe
from mt5tester.risk import breaker, lots
from mt5tester.risk.context import SignalContext
from mt5tester.risk.decision import Decision, reject, resize
from mt5tester.risk.exposure import Exposure, Mt5View, round_volume

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Policy = Literal["reject", "resize"]


@dataclass
class Candidate:
    """An entry under review: signal, context, direction (+1/-1), entry price, current volume, and the
    review's view of the market, through which ``info`` (its symbol's ``symbol_info``) is read."""

    index: int
    signal: Signal
    ctx: SignalContext
    direction: int
    price: float
    volume: float
    view: Mt5View
    sizing: dict[str, Any] = field(default_factory=dict)

    @property
    def symbol(self) -> str:
        return self.signal.symbol

    @property
    def info(self) -> Any:
        """``mt5.symbol_info(symbol)``, asked only by a rule that reads it (a resize rounds to its volume
        step): an entry approved as sent builds no SymbolInfo. Cached by the view for the review."""
        return self.view.info(self.symbol)


@dataclass
class Portfolio:
    """The account as the rules see it: open positions plus entries approved earlier in this review."""

    equity: float
    currency: str
    server_time: int
    view: Mt5View
    exposures: list[Exposure]
    batch_margin: float = 0.0  # margin of the entries approved earlier in this review


class Rule(Protocol):
    name: str

    def check(self, c: Candidate, b: Portfolio) -> Decision | None: ...


def _fit(rule: str, reason: str, policy: Policy, c: Candidate, fit: float, **numbers: Any) -> Decision:
    """Reject, or resize to the largest valid volume <= ``fit`` (``size_below_min`` if none)."""
    if policy == "reject":
        return reject(rule, reason, **numbers)
    v = round_volume(min(fit, c.volume), c.info) if fit > 0 else 0.0
    return fitted(rule, reason, v, fit, c.volume, numbers)


def fitted(rule: str, reason: str, v: float, fit: float, before: float, numbers: dict[str, Any]) -> Decision:
    """The resize policy's decision: ``v`` lots (fitted down from ``before``), or none fits."""
    if v <= 0:
        return reject(rule, "size_below_min", **numbers, fit=round(fit, 8))
    return resize(rule, reason, v, **numbers, volume_before=before)


# ------------------------------------------------------------------------------------ time gates
def _in_window(w: TimeWindowConfig, day: int, minute: int) -> bool:
    h0, m0 = map(int, w.from_.split(":"))
    h1, m1 = map(int, w.to.split(":"))
    a, z = h0 * 60 + m0, h1 * 60 + m1
    days = {DAYS.index(d) for d in w.days} if w.days else set(range(7))
    if a < z:
        return day in days and a <= minute < z
    if a == z:
        return day in days
    return (day in days and minute >= a) or ((day - 1) % 7 in days and minute < z)


def _label(w: TimeWindowConfig) -> str:
    return f"{','.join(w.days) if w.days else 'daily'} {w.from_}-{w.to}"


class SessionRule:
    """Weekends, trading sessions (allowed windows) and blocked windows, on the server clock."""

    name = "sessions"

    def __init__(
        self, block_weekends: bool, sessions: list[TimeWindowConfig], blocked: list[TimeWindowConfig]
    ) -> None:
        self.block_weekends, self.sessions, self.blocked = block_weekends, sessions, blocked

    def check(self, c: Candidate, b: Portfolio) -> Decision | None:
        return self.at(b.server_time)

    def at(self, server_time: int) -> Decision | None:
        """The gate at ``server_time`` (server-clock seconds): it depends on the clock alone, so the
        compiled driver reads it per signal before its run (engine/kernel.py)."""
        t = dt.datetime.fromtimestamp(server_time, dt.UTC)
        day, minute = t.weekday(), t.hour * 60 + t.minute
        when = f"{DAYS[day]} {t:%H:%M}"
        if self.block_weekends and day >= 5:
            return reject(self.name, "weekend", server_time=when)
        for w in self.blocked:
            if _in_window(w, day, minute):
                return reject(self.name, "blocked_window", window=_label(w), server_time=when)
        if self.sessions and not any(_in_window(w, day, minute) for w in self.sessions):
            return reject(
                self.name, "outside_session", sessions=[_label(w) for w in self.sessions], server_time=when
            )
        return None


class RegimeGateRule:
    """A strategy listed in ``regime_gate`` trades only in its regimes (no regime label: no trade)."""

    name = "regime_gate"

    def __init__(self, gate: dict[str, list[str]]) -> None:
        self.gate = gate

    def check(self, c: Candidate, b: Portfolio) -> Decision | None:
        return self.allows(c.ctx.strategy, c.ctx.regime)

    def allows(self, strategy: str, regime: str | None) -> Decision | None:
        """The gate of ``strategy`` in ``regime`` (the compiled driver reads it per signal before its run)."""
        allowed = self.gate.get(strategy)
        if allowed is not None and regime not in allowed:
            return reject(self.name, "regime_not_allowed", strategy=strategy, regime=regime, allowed=allowed)
        return None


class CircuitBreakerRule:
    """Daily loss limit (% below the equity at the server day's start) and max drawdown (% below the
    equity peak, latched for the rest of the run). Equity is sampled by ``observe`` (every review; the
    engine may call it at every decision point for an exact day start and peak)."""

    name = "circuit_breaker"

    def __init__(self, daily_loss_pct: float | None, max_drawdown_pct: float | None, close_all: bool) -> None:
        self.daily_loss_pct, self.max_drawdown_pct, self.close_all = (
            daily_loss_pct,
            max_drawdown_pct,
            close_all,
        )
        self.day: int | None = None
        self.day_start_equity = 0.0
        self.peak = 0.0
        self.latched: dict[str, Any] | None = None

    def observe(self, equity: float, server_time: int) -> None:
        day = breaker.NO_DAY if self.day is None else self.day
        limit = breaker.OFF if self.max_drawdown_pct is None else self.max_drawdown_pct
        day, self.day_start_equity, self.peak, dd = breaker.observe(
            day, self.day_start_equity, self.peak, self.latched is not None, equity, server_time, limit
        )
        self.day = int(day)
        if dd != breaker.OFF:
            self.latch(dd, self.peak, equity)

    def latch(self, drawdown: float, peak: float, equity: float) -> None:
        """The max-drawdown limit was reached at ``equity``: no more entries for the rest of the run."""
        self.latched = {
            "limit": self.max_drawdown_pct,
            "value": round(drawdown, 4),
            "peak": peak,
            "equity": equity,
        }

    def check(self, c: Candidate, b: Portfolio) -> Decision | None:
        return self.at(b.equity)

    def at(self, equity: float) -> Decision | None:
        """The breaker's decision on an entry at ``equity`` (after ``observe``)."""
        limit = breaker.OFF if self.daily_loss_pct is None else self.daily_loss_pct
        loss = breaker.daily_loss(self.day_start_equity, equity, limit)
        if loss != breaker.OFF:
            return self.daily_loss_decision(loss, self.day_start_equity, equity)
        if self.latched is not None:
            return self.max_drawdown_decision()
        return None

    def daily_loss_decision(self, loss: float, day_start_equity: float, equity: float) -> Decision:
        extra = {"close_all": True} if self.close_all else {}
        return reject(
            self.name,
            "daily_loss_limit",
            limit=self.daily_loss_pct,
            value=round(loss, 4),
            day_start_equity=day_start_equity,
            equity=equity,
            **extra,
        )

    def max_drawdown_decision(self) -> Decision:
        extra = {"close_all": True} if self.close_all else {}
        return reject(self.name, "max_drawdown", **(self.latched or {}), **extra)


# ------------------------------------------------------------------------------------ counts
class MaxPositionsRule:
    name = "max_positions"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def check(self, c: Candidate, b: Portfolio) -> Decision | None:
        n = len(b.exposures)
        return reject(self.name, "max_positions", limit=self.limit, value=n) if n >= self.limit else None


class MaxPositionsPerSymbolRule:
    name = "max_positions_per_symbol"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def check(self, c: Candidate, b: Portfolio) -> Decision | None:
        n = sum(1 for e in b.exposures if e.symbol == c.symbol)
        if n >= self.limit:
            return reject(self.name, "max_positions_per_symbol", limit=self.limit, value=n, symbol=c.symbol)
        return None


class MaxPositionsPerStrategyRule:
    """Positions owned by the signal's strategy (``ReviewContext.owners``; unknown tickets own none)."""

    name = "max_positions_per_strategy"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def check(self, c: Candidate, b: Portfolio) -> Decision | None:
        n = sum(1 for e in b.exposures if e.strategy == c.ctx.strategy)
        if n >= self.limit:
            return reject(
                self.name, "max_positions_per_strategy", limit=self.limit, value=n, strategy=c.ctx.strategy
            )
        return None


# ------------------------------------------------------------------------------------ money
def open_risk(b: Portfolio) -> tuple[float, int]:
    """Σ max(0, distance from the current price to the SL) / tick_size × tick_value × volume, in deposit
    currency, and the number of positions without a stop loss (counted as 0 risk)."""
    total, unprotected = 0.0, 0
    for e in b.exposures:
        if e.sl <= 0:
            unprotected += 1
            continue
        total += e.volume * b.view.money_per_lot(e.symbol, max(0.0, e.direction * (e.price_current - e.sl)))
    return total, unprotected


class TotalRiskRule:
    """Open risk (every SL hit) plus this entry's risk <= max_total_risk_pct of equity."""

    name = "max_total_risk"

    def __init__(self, pct: float, policy: Policy) -> None:
        self.pct, self.policy = pct, policy

    def check(self, c: Candidate, b: Portfolio) -> Decision | None:
        if c.ctx.sl_distance is None or c.ctx.sl_distance <= 0:
            return reject(self.name, "no_stop_loss", symbol=c.symbol)
        held, unprotected = open_risk(b)
        per_lot = b.view.money_per_lot(c.symbol, c.ctx.sl_distance)
        limit = b.equity * self.pct / 100
        value = held + c.volume * per_lot
        if value <= limit + 1e-9:
            return None
        numbers = self.numbers(limit, value, held, c.volume * per_lot, unprotected)
        return _fit(self.name, "max_total_risk", self.policy, c, (limit - held) / per_lot, **numbers)

    @staticmethod
    def numbers(limit: float, value: float, held: float, new: float, unprotected: int) -> dict[str, Any]:
        """What a max_total_risk decision records (the compiled driver's too)."""
        return {
            "limit": round(limit, 2),
            "value": round(value, 2),
            "open_risk": round(held, 2),
            "new_risk": round(new, 2),
            "unprotected_positions": unprotected,
        }


def _notional_per_lot(view: Mt5View, symbol: str, price: float) -> float:
    """Deposit-currency value of 1 lot's base amount (``lots.notional_per_lot``, the kernel's too)."""
    i = view.info(symbol)
    return float(lots.notional_per_lot(price, float(i.trade_tick_size), view.tick_value_loss(symbol)))


def currency_exposure(b: Portfolio) -> dict[str, float]:
    """Net exposure per currency in deposit currency: a buy is long the base and short the profit
    currency by the same value; a sell the opposite."""
    out: dict[str, float] = defaultdict(float)
    for e in b.exposures:
        i = b.view.info(e.symbol)
        n = e.direction * e.volume * _notional_per_lot(b.view, e.symbol, e.price_current)
        out[i.currency_base] += n
        out[i.currency_profit] -= n
    return dict(out)


class CurrencyExposureRule:
    name = "max_currency_exposure"

    def __init__(self, limits: dict[str, float], policy: Policy) -> None:
        self.limits, self.policy = limits, policy

    def limit_of(self, ccy: str, deposit: str) -> float | None:
        if ccy in self.limits:
            return self.limits[ccy]
        return self.limits.get("*") if ccy != deposit else None

    def check(self, c: Candidate, b: Portfolio) -> Decision | None:
        i = b.view.info(c.symbol)
        per_lot = c.direction * _notional_per_lot(b.view, c.symbol, c.price)
        held = currency_exposure(b)
        worst: tuple[float, str, float, float, float] | None = None  # (fit, currency, before, limit, after)
        for ccy, delta in ((i.currency_base, per_lot), (i.currency_profit, -per_lot)):
            limit = self.limit_of(ccy, b.currency)
            if limit is None or delta == 0:
                continue
            before = held.get(ccy, 0.0)
            after, fit = lots.exposure_fit(before, delta, c.volume, limit)  # the kernel's too
            if math.isnan(fit):
                continue
            if worst is None or fit < worst[0]:
                worst = (fit, ccy, before, limit, after)
        if worst is None:
            return None
        fit, ccy, before, limit, after = worst
        return _fit(self.name, self.name, self.policy, c, fit, **self.numbers(ccy, limit, after, before))

    @staticmethod
    def numbers(ccy: str, limit: float, after: float, before: float) -> dict[str, Any]:
        """What a max_currency_exposure decision records (the compiled driver's too)."""
        return {"currency": ccy, "limit": limit, "value": round(after, 2), "before": round(before, 2)}


def correlation(view: Mt5View, a: str, b: str, timeframe: int, window: int) -> float | None:
    """Pearson correlation of simple returns of the last ``window`` closed bars, aligned on bar time;
    None with fewer than 3 common returns or a flat series."""
    if a == b:
        return 1.0
    ra, rb = view.closed_rates(a, timeframe, window + 1), view.closed_rates(b, timeframe, window + 1)
    if ra is None or rb is None:
        return None
    if np.array_equal(ra["time"], rb["time"]):  # the same bars (the usual case): intersect1d's every index
        ca, cb = ra["close"].astype(np.float64), rb["close"].astype(np.float64)
    else:
        _, ia, ib = np.intersect1d(ra["time"], rb["time"], return_indices=True)
        ca, cb = ra["close"][ia].astype(np.float64), rb["close"][ib].astype(np.float64)
    if len(ca) < 4:
        return None
    xa, xb = np.diff(ca) / ca[:-1], np.diff(cb) / cb[:-1]
    if xa.std() == 0 or xb.std() == 0:
        return None
    return float(np.corrcoef(xa, xb)[0, 1])


class CorrelationRule:
    """Sign-adjusted correlation (corr × this direction × the open net direction on the other symbol)
    above ``max_correlation`` rejects, or scales the volume by (1 - corr) / (1 - max_correlation)."""

    name = "max_correlation"

    def __init__(self, limit: float, window: int, timeframe: Timeframe, policy: Policy) -> None:
        self.limit, self.window, self.timeframe, self.policy = limit, window, timeframe, policy

    def check(self, c: Candidate, b: Portfolio) -> Decision | None:
        net: dict[str, float] = defaultdict(float)
        for e in b.exposures:
            net[e.symbol] += e.direction * e.volume
        worst: tuple[float, str, float] | None = None
        for sym, v in sorted(net.items()):
            if abs(v) < 1e-12:
                continue
            rho = correlation(b.view, c.symbol, sym, int(self.timeframe), self.window)
            if rho is None:
                continue
            adj = rho * c.direction * (1 if v > 0 else -1)
            if worst is None or adj > worst[0]:
                worst = (adj, sym, rho)
        if worst is None or worst[0] <= self.limit:
            return None
        adj, sym, rho = worst
        fit = lots.correlation_fit(c.volume, adj, self.limit)  # the kernel's too
        return _fit(self.name, self.name, self.policy, c, fit, **self.numbers(sym, adj, rho))

    def numbers(self, symbol: str, adj: float, rho: float) -> dict[str, Any]:
        """What a max_correlation decision records (the compiled driver's too)."""
        return {
            "symbol": symbol,
            "value": round(adj, 4),
            "correlation": round(rho, 4),
            "limit": self.limit,
            "window": self.window,
            "timeframe": self.timeframe.name,
        }


class FreeMarginRule:
    """``order_check``'s free margin after the trade, less the margin of entries approved earlier in
    the same review, must stay >= max(min_free_margin, equity × min_free_margin_pct / 100)."""

    name = "min_free_margin"

    def __init__(self, pct: float | None, money: float | None) -> None:
        self.pct, self.money = pct, money

    def check(self, c: Candidate, b: Portfolio) -> Decision | None:
        floor = max(self.money or 0.0, b.equity * (self.pct or 0.0) / 100)
        r = b.view.order_check(c.symbol, c.direction, c.volume, c.price)
        if r is None:
            return reject(self.name, "order_check_failed", last_error=list(b.view.mt5.last_error()))
        if r.retcode not in (0, C.TRADE_RETCODE_DONE, C.TRADE_RETCODE_NO_MONEY):
            return reject(self.name, "order_check_failed", retcode=r.retcode, comment=r.comment)
        free = float(r.margin_free) - b.batch_margin
        if free < floor - 1e-9:
            return self.short(floor, free, r.margin)
        return None

    @classmethod
    def short(cls, floor: float, free: float, margin: float) -> Decision:
        """The rejection: ``free`` margin after the entry under ``floor`` (the compiled driver's too)."""
        return reject(cls.name, "min_free_margin", floor=round(floor, 2), value=round(free, 2), margin=margin)


# ------------------------------------------------------------------------------------ conflicts
def resolve_conflicts(policy: str, cands: list[Candidate]) -> dict[int, Decision]:
    """Opposite entries on one symbol in one review from different strategies.

    reject_both: every entry on that symbol is rejected (conflict_rejected). highest_confidence: the
    highest confidence wins, entries opposite to it are rejected (conflict_lower_confidence); a tie
    between a buy and a sell rejects all (conflict_tie). net: the smaller side is rejected and the larger
    side keeps the difference, each entry scaled pro rata and rounded down (conflict_netted); equal
    sides reject all. Returns decisions by candidate index (resizes carry the new volume).
    """
    out: dict[int, Decision] = {}
    by_symbol: dict[str, list[Candidate]] = defaultdict(list)
    for c in cands:
        by_symbol[c.symbol].append(c)
    rule = "conflict"
    for sym, group in by_symbol.items():
        buys = [c for c in group if c.direction > 0]
        sells = [c for c in group if c.direction < 0]
        if (
            not buys
            or not sells
            or {c.ctx.strategy for c in buys} == {c.ctx.strategy for c in sells} == {buys[0].ctx.strategy}
        ):
            continue
        sides = {
            "buy_strategies": sorted({c.ctx.strategy for c in buys}),
            "sell_strategies": sorted({c.ctx.strategy for c in sells}),
        }
        if policy == "reject_both":
            for c in group:
                out[c.index] = reject(rule, "conflict_rejected", symbol=sym, **sides)
        elif policy == "highest_confidence":
            top_buy = max(c.signal.confidence for c in buys)
            top_sell = max(c.signal.confidence for c in sells)
            if top_buy == top_sell:
                for c in group:
                    out[c.index] = reject(rule, "conflict_tie", symbol=sym, confidence=top_buy, **sides)
                continue
            losers, top = (sells, top_buy) if top_buy > top_sell else (buys, top_sell)
            for c in losers:
                out[c.index] = reject(
                    rule,
                    "conflict_lower_confidence",
                    symbol=sym,
                    confidence=c.signal.confidence,
                    winner_confidence=top,
                    **sides,
                )
        else:  # net
            vb, vs = sum(c.volume for c in buys), sum(c.volume for c in sells)
            numbers = {
                "symbol": sym,
                "buy_volume": round(vb, 8),
                "sell_volume": round(vs, 8),
                "net": round(vb - vs, 8),
                **sides,
            }
            if abs(vb - vs) < 1e-9:
                for c in group:
                    out[c.index] = reject(rule, "conflict_netted", **numbers)
                continue
            winners, losers, total = (buys, sells, vb) if vb > vs else (sells, buys, vs)
            for c in losers:
                out[c.index] = reject(rule, "conflict_netted", **numbers)
            for c in winners:
                v = round_volume(c.volume * abs(vb - vs) / total, c.info)
                out[c.index] = (
                    resize(rule, "conflict_netted", v, volume_before=c.volume, **numbers)
                    if v > 0
                    else reject(rule, "size_below_min", **numbers)
                )
    return out
