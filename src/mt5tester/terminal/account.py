"""The account side of the trade server: quotes, currency conversion, profit, margin, commission,
swap, equity (spec 5.4, 5.7-5.10). A mixin of ``TradeServer``, which holds the state read here."""

from __future__ import annotations

import numpy as np

from mt5tester.errors import DataError
from mt5tester.model.symbol import CalcMode, SwapMode, SymbolSpec
from mt5tester.terminal import constants as C
from mt5tester.terminal.records import (
    MARKET_CLOSED_AFTER_NS,
    Deal,
    Position,
    PriceSource,
    ServerSettings,
    TickStream,
)


class Account:
    # State of TradeServer read here (declared for the type checker; TradeServer defines the fields).
    market: PriceSource
    settings: ServerSettings
    real_ticks: dict[str, TickStream]
    balance: float
    positions: list[Position]
    deals: list[Deal]
    now: int
    _margin_cache: tuple[tuple[int, int], float]
    _quote_cache: dict[str, tuple[int, tuple[float, float, int] | None]]

    # ----------------------------------------------------------------------------------- prices
    @property
    def specs(self) -> dict[str, SymbolSpec]:
        return self.market.specs

    def quote(self, symbol: str, t: int | None = None) -> tuple[float, float, int] | None:
        """(bid, ask, index of the M1 bar) of the current tick at t, or None when no quote is recent.

        The current tick is ``market.quote_at(t)``, the one the terminal shows: the last tick at or
        before t of the tester mode's path (spec 6.1: Ask = Bid + the M1 bar's spread).
        """
        t = self.now if t is None else t
        cached = self._quote_cache.get(symbol)
        if cached is not None and cached[0] == t:
            return cached[1]
        q = self._quote(symbol, t)
        self._quote_cache[symbol] = (t, q)
        return q

    def _quote(self, symbol: str, t: int) -> tuple[float, float, int] | None:
        q = self.market.quote_at(symbol, t)  # the terminal's quote: fills never use a later price
        if q is None:
            return None
        bid, ask, k, tick_time = q
        last = tick_time if self.settings.tick_mode == "real_ticks" else int(self.market.m1[symbol].time[k])
        if t - last > MARKET_CLOSED_AFTER_NS:
            return None
        return bid, ask, k

    # ------------------------------------------------------------------------------- conversion
    def rate(self, ccy: str, t: int) -> float:
        """Units of deposit currency per unit of ``ccy`` at time t, from the loaded pairs (spec 5.8)."""
        dep = self.settings.currency
        if ccy == dep:
            return 1.0
        direct, inverse = ccy + dep, dep + ccy
        if direct in self.market.m1:
            return self._bid_at(direct, t)
        if inverse in self.market.m1:
            return 1.0 / self._bid_at(inverse, t)
        raise DataError(f"no conversion pair for {ccy}->{dep}: add {direct} or {inverse} to backtest.symbols")

    def _bid_at(self, symbol: str, t: int) -> float:
        """The pair's bid known at t (its quote, however old), never a later one."""
        q = self.market.quote_at(symbol, t)
        if q is None:
            raise DataError(f"{symbol}: no price at or before {np.datetime64(t, 'ns')}")
        return q[0]

    def profit_raw(
        self, spec: SymbolSpec, is_buy: bool, volume: float, open_: float, close: float, t: int
    ) -> float:
        """Profit in deposit currency (spec 5.8), unrounded."""
        raw = (close - open_) * spec.trade_contract_size * volume * (1 if is_buy else -1)
        dep = self.settings.currency
        if spec.currency_profit == dep:
            conv = 1.0
        elif spec.currency_base == dep:
            conv = 1.0 / close  # USDJPY on a USD account: divide by the closing rate (spec 5.8)
        else:
            conv = self.rate(spec.currency_profit, t)
        return float(raw * conv)

    def profit(
        self, spec: SymbolSpec, is_buy: bool, volume: float, open_: float, close: float, t: int
    ) -> float:
        """Profit in deposit currency, rounded to cents as MT5 does per deal."""
        return round(self.profit_raw(spec, is_buy, volume, open_, close, t), 2)

    def margin_for(self, spec: SymbolSpec, volume: float, price: float, t: int) -> float:
        """Initial margin in deposit currency for ``volume`` lots (spec 5.9)."""
        contracts = volume * spec.trade_contract_size
        lev = self.settings.leverage
        mode = spec.trade_calc_mode
        if mode in (CalcMode.FOREX, CalcMode.FOREX_NO_LEVERAGE):
            m = contracts * spec.margin_rate / (lev if mode == CalcMode.FOREX else 1)
            ccy = spec.currency_margin
            if ccy != self.settings.currency and spec.currency_profit == self.settings.currency:
                return m * price  # base currency margin valued at the symbol's own price
            return m * self.rate(ccy, t)
        if mode == CalcMode.CFDLEVERAGE:
            m = contracts * price / lev * spec.margin_rate
        else:  # CFD, CFDINDEX (tick price = tick size here), FUTURES approximated as CFD
            m = contracts * price * spec.margin_rate
        return m * self.rate(spec.currency_profit, t)

    def commission(self, spec: SymbolSpec, volume: float, price: float, t: int) -> float:
        if not self.settings.commission_enabled or spec.commission == 0:
            return 0.0
        if spec.commission_mode == "per_lot":
            return -round(spec.commission * volume, 2)
        value = volume * spec.trade_contract_size * price * self.rate(spec.currency_profit, t)
        return -round(value * spec.commission / 100.0, 2)

    # ----------------------------------------------------------------------------------- account
    def position_profit(self, p: Position, t: int) -> tuple[float, float]:
        """(floating profit without swap, current close price) of a position at t."""
        q = self.quote(p.symbol, t)
        if q is None:  # market closed: valued at its last quote
            last = self.market.quote_at(p.symbol, t)
            if last is None:
                raise DataError(f"{p.symbol}: no price at or before {np.datetime64(t, 'ns')}")
            bid, ask = last[0], last[1]
        else:
            bid, ask, _ = q
        price = bid if p.type == C.POSITION_TYPE_BUY else ask
        return self.profit(self.specs[p.symbol], p.type == 0, p.volume, p.price_open, price, t), price

    def floating(self, t: int | None = None) -> float:
        t = self.now if t is None else t
        return round(sum((self.position_profit(p, t)[0] + p.swap for p in self.positions), 0.0), 2)

    def margin(self, t: int | None = None, positions: list[Position] | None = None) -> float:
        """Margin of the open positions. Hedged (opposite) volume of a symbol is margined once, on the
        larger leg (spec 5.7: margin_hedged_use_leg; the exact formula is [U])."""
        t = self.now if t is None else t
        if positions is None:
            if not self.positions:
                return 0.0
            # The open positions change only through deals (and volume through partial-close deals), so
            # (t, deals so far) identifies the book: the same margin is not recomputed within a point.
            key = (t, len(self.deals))
            if self._margin_cache[0] == key:
                return self._margin_cache[1]
            value = self._margin_of(t, self.positions)
            self._margin_cache = (key, value)
            return value
        return self._margin_of(t, positions)

    def _margin_of(self, t: int, positions: list[Position]) -> float:
        total = 0.0
        by_symbol: dict[str, list[Position]] = {}
        for p in positions:
            by_symbol.setdefault(p.symbol, []).append(p)
        for sym, ps in by_symbol.items():
            spec = self.specs[sym]
            legs = {0: 0.0, 1: 0.0}
            value = {0: 0.0, 1: 0.0}
            for p in ps:
                legs[p.type] += p.volume
                value[p.type] += self.margin_for(spec, p.volume, p.price_open, t)
            if self.settings.hedging:
                total += max(value[0], value[1])
            else:
                total += value[0] + value[1]
        return round(total, 2)

    def equity(self, t: int | None = None) -> float:
        return round(self.balance + self.floating(t), 2)

    def margin_level(self, t: int | None = None) -> float:
        m = self.margin(t)
        return round(self.equity(t) / m * 100.0, 2) if m > 0 else 0.0

    # ---------------------------------------------------------------------------------- swaps
    def swap_charge(self, p: Position, t: int) -> float:
        """One night's swap for position p in deposit currency (spec 5.10), rounded to cents."""
        spec = self.specs[p.symbol]
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
            amount, ccy = rate * p.volume, self.settings.currency
        else:  # INTEREST_CURRENT / INTEREST_OPEN: annual % of the price, 360-day year
            price = self.market.bid_before(p.symbol, t) if mode == SwapMode.INTEREST_CURRENT else p.price_open
            amount, ccy = (
                rate / 100.0 / 360.0 * price * spec.trade_contract_size * p.volume,
                spec.currency_profit,
            )
        return round(amount * self.rate(ccy, t), 2)
