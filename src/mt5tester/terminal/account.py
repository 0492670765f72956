"""The simulated trading account: positions, deals, balance, margin, in the deposit currency.

Only this module mutates trading state (ARCHITECTURE 4). Prices come from a ``Market`` of M1 bid
bars with a per-bar spread. Rules cited from ../shared/spec/mt5_python_api.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mt5tester.errors import DataError
from mt5tester.model.bars import Bars
from mt5tester.model.symbol import CalcMode, SwapMode, SymbolSpec
from mt5tester.terminal import kernels

# MT5 constants used here (values from spec 4.2, 4.8).
DEAL_TYPE_BUY, DEAL_TYPE_SELL, DEAL_TYPE_BALANCE = 0, 1, 2
DEAL_ENTRY_IN, DEAL_ENTRY_OUT = 0, 1
DEAL_REASON_EXPERT, DEAL_REASON_SL, DEAL_REASON_TP = 3, 4, 5
TRADE_RETCODE_DONE, TRADE_RETCODE_INVALID_VOLUME, TRADE_RETCODE_INVALID_STOPS = 10009, 10014, 10016
TRADE_RETCODE_MARKET_CLOSED, TRADE_RETCODE_NO_MONEY = 10018, 10019


@dataclass
class Position:
    ticket: int
    symbol: str
    type: int  # POSITION_TYPE_BUY 0 / SELL 1
    volume: float
    price_open: float
    sl: float
    tp: float
    time: int
    strategy: str
    signal_id: int | None
    cursor: int  # next M1 index to scan for SL/TP
    swap: float = 0.0  # accumulated, realised in the closing deal (spec 5.10)


@dataclass
class Deal:
    ticket: int
    order: int
    time: int
    type: int
    entry: int
    reason: int
    position_id: int
    symbol: str
    volume: float
    price: float
    commission: float
    swap: float
    profit: float
    balance: float
    comment: str
    strategy: str
    signal_id: int | None


@dataclass
class SendResult:
    retcode: int
    order: int = 0
    deal: int = 0
    price: float = 0.0
    volume: float = 0.0
    comment: str = ""


class Market:
    """M1 bid bars per symbol with spreads in points: the prices the account trades at."""

    def __init__(self, m1: dict[str, Bars], specs: dict[str, SymbolSpec], fixed_spread: int | None) -> None:
        self.m1 = m1
        self.specs = specs
        self.spread: dict[str, np.ndarray] = {}
        for sym, bars in m1.items():
            spec = specs[sym]
            if fixed_spread is not None:
                sp = np.full(len(bars), fixed_spread, dtype=np.int32)
            elif len(bars) and int(bars.spread.max()) > 0:
                sp = bars.spread.astype(np.int32)
            else:  # data without spread: the symbol's configured spread (execution.spread)
                sp = np.full(len(bars), spec.spread, dtype=np.int32)
            self.spread[sym] = sp

    def index_at(self, symbol: str, t: int) -> int:
        """Index of the first M1 bar opening at or after t (the next tick after t)."""
        return int(np.searchsorted(self.m1[symbol].time, t, "left"))

    def bid_before(self, symbol: str, t: int) -> float:
        """Last known bid strictly before t (close of the last M1 bar that opened before t)."""
        i = self.index_at(symbol, t) - 1
        if i < 0:
            raise DataError(f"{symbol}: no price before {np.datetime64(t, 'ns')}")
        return float(self.m1[symbol].close[i])


@dataclass
class Account:
    market: Market
    currency: str
    leverage: int
    deposit: float
    hedging: bool = True
    commission_enabled: bool = True
    balance: float = 0.0
    positions: list[Position] = field(default_factory=list)
    deals: list[Deal] = field(default_factory=list)
    ambiguous_bars: int = 0
    rollovers: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rollover_days: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    _next_rollover: int = 0
    _next_order: int = 2
    _next_deal: int = 1

    def __post_init__(self) -> None:
        self.balance = 0.0
        self._add_deal(
            0, 0, DEAL_TYPE_BALANCE, DEAL_ENTRY_IN, 0, 0, "", 0.0, 0.0, 0.0, self.deposit, "deposit", "", None
        )

    # ------------------------------------------------------------------------------- conversion
    def rate(self, ccy: str, t: int) -> float:
        """Units of deposit currency per unit of ``ccy`` at time t, from the loaded pairs."""
        if ccy == self.currency:
            return 1.0
        direct, inverse = ccy + self.currency, self.currency + ccy
        if direct in self.market.m1:
            return self.market.bid_before(direct, t + 1)
        if inverse in self.market.m1:
            return 1.0 / self.market.bid_before(inverse, t + 1)
        raise DataError(
            f"no conversion pair for {ccy}->{self.currency}: load {direct} or {inverse} (add it to "
            "backtest.symbols)"
        )

    def profit(
        self, spec: SymbolSpec, is_buy: bool, volume: float, open_: float, close: float, t: int
    ) -> float:
        """Profit in deposit currency (spec 5.8), rounded to cents as MT5 does per deal."""
        raw = (close - open_) * spec.trade_contract_size * volume * (1 if is_buy else -1)
        if spec.currency_profit == self.currency:
            conv = 1.0
        elif spec.currency_base == self.currency:
            conv = 1.0 / close  # e.g. USDJPY on a USD account: divide by the closing rate
        else:
            conv = self.rate(spec.currency_profit, t)
        return round(float(raw * conv), 2)

    def margin_required(self, spec: SymbolSpec, volume: float, price: float, t: int) -> float:
        """Initial margin in deposit currency (spec 5.9)."""
        contracts = volume * spec.trade_contract_size
        if spec.trade_calc_mode == CalcMode.FOREX:
            m, ccy = contracts / self.leverage * spec.margin_rate, spec.currency_margin
            if ccy != self.currency and spec.currency_profit == self.currency:
                return m * price
        elif spec.trade_calc_mode == CalcMode.FOREX_NO_LEVERAGE:
            m, ccy = contracts * spec.margin_rate, spec.currency_margin
            if ccy != self.currency and spec.currency_profit == self.currency:
                return m * price
        elif spec.trade_calc_mode == CalcMode.CFDLEVERAGE:
            m, ccy = contracts * price / self.leverage * spec.margin_rate, spec.currency_profit
        else:
            m, ccy = contracts * price * spec.margin_rate, spec.currency_profit
        return m * self.rate(ccy, t)

    def commission(self, spec: SymbolSpec, volume: float, price: float, t: int) -> float:
        if not self.commission_enabled or spec.commission == 0:
            return 0.0
        if spec.commission_mode == "per_lot":
            return -round(spec.commission * volume, 2)
        value = volume * spec.trade_contract_size * price * self.rate(spec.currency_profit, t)
        return -round(value * spec.commission / 100.0, 2)

    # ---------------------------------------------------------------------------------- state
    def floating(self, t: int) -> float:
        total = 0.0
        for p in self.positions:
            spec = self.market.specs[p.symbol]
            bid = self.market.bid_before(p.symbol, t)
            i = self.market.index_at(p.symbol, t) - 1
            price = bid if p.type == 0 else bid + self.market.spread[p.symbol][i] * spec.point
            total += self.profit(spec, p.type == 0, p.volume, p.price_open, price, t) + p.swap
        return total

    def margin(self, t: int) -> float:
        return sum(
            self.margin_required(self.market.specs[p.symbol], p.volume, p.price_open, t)
            for p in self.positions
        )

    def equity(self, t: int) -> float:
        return self.balance + self.floating(t)

    # ---------------------------------------------------------------------------------- trading
    def _add_deal(
        self,
        order: int,
        t: int,
        type_: int,
        entry: int,
        reason: int,
        position_id: int,
        symbol: str,
        volume: float,
        price: float,
        commission: float,
        profit: float,
        comment: str,
        strategy: str,
        signal_id: int | None,
        swap: float = 0.0,
    ) -> Deal:
        self.balance = round(self.balance + profit + commission + swap, 2)
        d = Deal(
            self._next_deal,
            order,
            t,
            type_,
            entry,
            reason,
            position_id,
            symbol,
            volume,
            price,
            commission,
            swap,
            profit,
            self.balance,
            comment,
            strategy,
            signal_id,
        )
        self._next_deal += 1
        self.deals.append(d)
        return d

    def check_volume(self, spec: SymbolSpec, volume: float) -> bool:
        """spec 5.6: min <= v <= max and (v - min) a multiple of step."""
        if volume < spec.volume_min - 1e-12 or volume > spec.volume_max + 1e-12:
            return False
        steps = (volume - spec.volume_min) / spec.volume_step
        return abs(steps - round(steps)) < 1e-7

    def market_order(
        self,
        symbol: str,
        is_buy: bool,
        volume: float,
        t: int,
        sl: float,
        tp: float,
        strategy: str,
        signal_id: int | None,
        comment: str = "",
    ) -> SendResult:
        """Fill a market order at the first tick at or after t: Ask for a buy, Bid for a sell (spec 5.4)."""
        spec = self.market.specs[symbol]
        if not self.check_volume(spec, volume):
            return SendResult(TRADE_RETCODE_INVALID_VOLUME, comment="Invalid volume")
        k = self.market.index_at(symbol, t)
        bars = self.market.m1[symbol]
        if k >= len(bars):
            return SendResult(TRADE_RETCODE_MARKET_CLOSED, comment="Market closed")
        bid = float(bars.open[k])
        ask = round(bid + self.market.spread[symbol][k] * spec.point, spec.digits)
        price = ask if is_buy else bid
        fill_time = max(t, int(bars.time[k]))
        if (is_buy and ((sl and sl >= bid) or (tp and tp <= bid))) or (
            not is_buy and ((sl and sl <= ask) or (tp and tp >= ask))
        ):
            return SendResult(TRADE_RETCODE_INVALID_STOPS, comment="Invalid stops")
        need = self.margin_required(spec, volume, price, fill_time)
        if need > self.equity(fill_time) - self.margin(fill_time):
            return SendResult(TRADE_RETCODE_NO_MONEY, comment="No money")
        order = self._next_order
        self._next_order += 1
        commission = self.commission(spec, volume, price, fill_time)
        deal = self._add_deal(
            order,
            fill_time,
            DEAL_TYPE_BUY if is_buy else DEAL_TYPE_SELL,
            DEAL_ENTRY_IN,
            DEAL_REASON_EXPERT,
            order,
            symbol,
            volume,
            price,
            commission,
            0.0,
            comment,
            strategy,
            signal_id,
        )
        self.positions.append(
            Position(
                order, symbol, 0 if is_buy else 1, volume, price, sl, tp, fill_time, strategy, signal_id, k
            )
        )
        return SendResult(TRADE_RETCODE_DONE, order, deal.ticket, price, volume, "Request executed")

    def close_position(self, p: Position, t: int, price: float, reason: int, comment: str) -> Deal:
        spec = self.market.specs[p.symbol]
        is_buy = p.type == 0
        order = self._next_order
        self._next_order += 1
        profit = self.profit(spec, is_buy, p.volume, p.price_open, price, t)
        commission = self.commission(spec, p.volume, price, t)
        self.positions = [q for q in self.positions if q is not p]
        return self._add_deal(
            order,
            t,
            DEAL_TYPE_SELL if is_buy else DEAL_TYPE_BUY,
            DEAL_ENTRY_OUT,
            reason,
            p.ticket,
            p.symbol,
            p.volume,
            price,
            commission,
            profit,
            comment,
            p.strategy,
            p.signal_id,
            round(p.swap, 2),
        )

    def close_at_market(self, p: Position, t: int, reason: int, comment: str) -> Deal:
        """Close at the first tick at or after t (a buy at Bid, a sell at Ask); past the data, last close."""
        spec = self.market.specs[p.symbol]
        bars = self.market.m1[p.symbol]
        k = self.market.index_at(p.symbol, t)
        if k < len(bars):
            bid, when, sp = float(bars.open[k]), max(t, int(bars.time[k])), self.market.spread[p.symbol][k]
        else:
            k = len(bars) - 1
            bid, when, sp = float(bars.close[k]), t, self.market.spread[p.symbol][k]
        price = bid if p.type == 0 else round(bid + sp * spec.point, spec.digits)
        return self.close_position(p, when, price, reason, comment)

    def swap_charge(self, p: Position, t: int) -> float:
        """One night's swap for position p in deposit currency (spec 5.10), rounded to cents."""
        spec = self.market.specs[p.symbol]
        rate = spec.swap_long if p.type == 0 else spec.swap_short
        mode = spec.swap_mode
        if mode == SwapMode.DISABLED or rate == 0:
            return 0.0
        if mode == SwapMode.POINTS:
            amount, ccy = rate * spec.point * spec.trade_contract_size * p.volume, spec.currency_profit
        elif mode == SwapMode.CURRENCY_SYMBOL:
            amount, ccy = rate * p.volume, spec.currency_base
        elif mode == SwapMode.CURRENCY_MARGIN:
            amount, ccy = rate * p.volume, spec.currency_margin
        elif mode == SwapMode.CURRENCY_DEPOSIT:
            amount, ccy = rate * p.volume, self.currency
        else:  # INTEREST_CURRENT / INTEREST_OPEN: annual % of the price, 360-day year
            price = self.market.bid_before(p.symbol, t) if mode == SwapMode.INTEREST_CURRENT else p.price_open
            amount, ccy = (
                rate / 100.0 / 360.0 * price * spec.trade_contract_size * p.volume,
                spec.currency_profit,
            )
        return round(amount * self.rate(ccy, t), 2)

    def advance(self, t: int) -> list[Deal]:
        """Resolve SL/TP and swaps up to t in time order: stops before each rollover, then the swap charge.

        Rollovers are at server midnight (spec 5.10). ``rollover_days`` holds the DAY_OF_WEEK_* of the
        day each rollover ends: that night charges 3 days on the symbol's ``swap_rollover3days``
        (covering the weekend), none after Saturday and Sunday, 1 otherwise. Only positions still
        open at the rollover pay.
        """
        closed: list[Deal] = []
        while self._next_rollover < len(self.rollovers) and int(self.rollovers[self._next_rollover]) <= t:
            r = int(self.rollovers[self._next_rollover])
            weekday = int(self.rollover_days[self._next_rollover])
            self._next_rollover += 1
            closed += self._resolve_stops(r)
            for p in self.positions:
                spec = self.market.specs[p.symbol]
                days = 3 if weekday == spec.swap_rollover3days else (0 if weekday in (0, 6) else 1)
                if days:
                    p.swap = round(p.swap + days * self.swap_charge(p, r), 2)
        return closed + self._resolve_stops(t)

    def _resolve_stops(self, t: int) -> list[Deal]:
        """Resolve SL/TP on M1 bars opening before t, in time order across positions."""
        closed: list[Deal] = []
        pending = []
        for p in self.positions:
            if not (p.sl or p.tp):
                continue
            bars = self.market.m1[p.symbol]
            stop = self.market.index_at(p.symbol, t)
            i, kind, price, ambiguous = kernels.first_trigger(
                bars.open,
                bars.high,
                bars.low,
                self.market.spread[p.symbol],
                self.market.specs[p.symbol].point,
                p.cursor,
                stop,
                p.type == 0,
                p.sl,
                p.tp,
            )
            if kind == kernels.NONE:
                p.cursor = stop
            else:
                pending.append((int(bars.time[i]), p, kind, price, ambiguous))
        for when, p, kind, price, ambiguous in sorted(pending, key=lambda x: (x[0], x[1].ticket)):
            self.ambiguous_bars += int(ambiguous)
            spec = self.market.specs[p.symbol]
            price = round(price, spec.digits)
            if kind == kernels.SL:
                closed.append(
                    self.close_position(p, when, price, DEAL_REASON_SL, f"[sl {p.sl:.{spec.digits}f}]")
                )
            else:
                closed.append(
                    self.close_position(p, when, price, DEAL_REASON_TP, f"[tp {p.tp:.{spec.digits}f}]")
                )
        return closed


def rollover_schedule(start_ns: int, end_ns: int, server_tz: str) -> tuple[np.ndarray, np.ndarray]:
    """Server midnights in (start, end] as UTC ns, with the DAY_OF_WEEK_* (Sunday 0) of the day each ends."""
    import pandas as pd

    from mt5tester.data.resample import parse_server_tz

    tz = parse_server_tz(server_tz)
    lo = pd.Timestamp(start_ns, tz="UTC").tz_convert(tz).normalize()
    hi = pd.Timestamp(end_ns, tz="UTC").tz_convert(tz).normalize() + pd.Timedelta(days=1)
    days = pd.date_range(lo.tz_localize(None), hi.tz_localize(None), freq="D")
    midnights = days.tz_localize(tz, nonexistent="shift_forward", ambiguous=True)
    utc = midnights.tz_convert("UTC").as_unit("ns").asi8
    ended = (days - pd.Timedelta(days=1)).day_of_week  # Monday 0 .. Sunday 6
    dow = ((np.asarray(ended) + 1) % 7).astype(np.int64)  # MT5 DAY_OF_WEEK_*: Sunday 0 .. Saturday 6
    keep = (utc > start_ns) & (utc <= end_ns)
    return utc[keep].astype(np.int64), dow[keep]
