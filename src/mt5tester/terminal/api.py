"""The simulated terminal with the ``MetaTrader5`` package's functions (spec section 2).

``SimTerminal`` answers as the real terminal would at the simulated time: market data from
``MarketData`` (nothing after ``now``), trading through ``TradeServer``. Failures return ``None``
(or ``False``/``0`` for the bool/int functions) and set ``last_error()``; trading refusals are
results with a retcode. Times are server-clock seconds (spec 5.2). ``terminal.shim`` exposes an
instance as an importable ``MetaTrader5`` module so unmodified scripts run against it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mt5tester.model import constants as C
from mt5tester.model.structs import (
    AccountInfo,
    BookInfo,
    OrderCheckResult,
    OrderSendResult,
    SymbolInfo,
    TerminalInfo,
    Tick,
    TradeDeal,
    TradeOrder,
    TradePosition,
    TradeRequest,
    trade_request_from_dict,
)
from mt5tester.model.time import MS_NS
from mt5tester.model.trade import BUY_TYPES, Deal, Order, Position
from mt5tester.terminal.core import rules
from mt5tester.terminal.market import MarketData
from mt5tester.terminal.server import TradeServer

PACKAGE_VERSION = "5.0.6231"
TERMINAL_BUILD = 4755


_SI = SymbolInfo._fields
_SI_SELECT, _SI_TIME, _SI_SPREAD, _SI_BID, _SI_ASK = (
    _SI.index(f) for f in ("select", "time", "spread", "bid", "ask")
)
_SI_TICK_VALUE, _SI_TICK_VALUE_PROFIT, _SI_TICK_VALUE_LOSS = (
    _SI.index(f) for f in ("trade_tick_value", "trade_tick_value_profit", "trade_tick_value_loss")
)


def _match(name: str, group: str) -> bool:
    """MT5 group filter: comma-separated masks with ``*``; ``!`` excludes; applied left to right."""
    selected = False
    for mask in (m.strip() for m in group.split(",") if m.strip()):
        if mask.startswith("!"):
            if fnmatch.fnmatchcase(name, mask[1:]):
                selected = False
        elif fnmatch.fnmatchcase(name, mask):
            selected = True
    return selected


class SimTerminal:
    """One simulated MetaTrader 5 terminal bound to one account."""

    def __init__(
        self,
        market: MarketData,
        server: TradeServer,
        login: int = 1000001,
        account_name: str = "mt5tester",
        server_name: str = "mt5tester-Sim",
        company: str = "mt5tester",
        data_path: Path | None = None,
    ) -> None:
        self.market = market
        self.server = server
        self.login_id = login
        self.account_name = account_name
        self.server_name = server_name
        self.company = company
        # The terminal's data folder (a script writes files under it) and the shared "Common" folder;
        # created when terminal_info() is first asked, so a script can use them at once.
        self.data_path = (data_path or Path.cwd() / "mt5tester_terminal").resolve()
        self.connected = False
        self.selected: set[str] = set(market.m1)
        self._error: tuple[int, str] = (C.RES_S_OK, "Success")
        self._books: set[str] = set()
        self._symbol_cache: dict[str, tuple[tuple[str, int], SymbolInfo]] = {}
        self._symbol_static: dict[str, SymbolInfo] = {}
        self._pos_times: dict[int, tuple[tuple[int, int], tuple[int, int, int, int]]] = {}
        self._pos_now: dict[int, tuple[tuple[Any, ...], TradePosition]] = {}  # _position's structures
        # The engine routes every trading request through its router (coordinator review, records,
        # strategy attribution from magic / comment) so nothing sent through this API bypasses them, its
        # own approved signals included; None (a plain script run): straight to the server.
        self.router: Callable[[TradeRequest], OrderSendResult] | None = None

    # ------------------------------------------------------------------------------- plumbing
    def set_time(self, t: int) -> None:
        """Move the simulated clock to t (UTC ns); the engine calls ``server.advance(t)`` first.

        Once per decision point, so in one frame: the market's clock (an int moving forward is all
        ``MarketData.set_time`` would do with it; anything else goes there, to be converted or refused)
        and the trade state's."""
        market = self.market
        if type(t) is int and t >= market._now:
            market._now = t
        else:
            market.set_time(t)
        self.server.state.now = t

    def _ok(self) -> None:
        self._error = (C.RES_S_OK, "Success")

    def _err(self, code: int, text: str | None = None) -> None:
        self._error = (code, text or C.LAST_ERROR_MESSAGES.get(code, ""))

    def _ready(self) -> bool:
        if not self.connected:
            self._err(C.RES_E_INTERNAL_FAIL_CONNECT)
            return False
        return True

    def _from_market(self, value: Any) -> Any:
        self._error = self.market.last_error()
        return value

    def _s(self, utc_ns: int) -> int:
        return self.market.to_server_s(utc_ns) if utc_ns else 0

    def _ms(self, utc_ns: int) -> int:
        return self._s(utc_ns) * 1000 + (utc_ns // MS_NS) % 1000 if utc_ns else 0

    # ---------------------------------------------------------------------------- connection
    def initialize(
        self,
        path: str | None = None,
        *,
        login: int | None = None,
        password: str | None = None,
        server: str | None = None,
        timeout: int = 60000,
        portable: bool = False,
    ) -> bool:
        if login is not None and not self._take_account(login, server):
            return False
        self.connected = True
        self._ok()
        return True

    def login(
        self, login: int, *, password: str | None = None, server: str | None = None, timeout: int = 60000
    ) -> bool:
        if not self._ready():
            return False
        if not self._take_account(login, server):
            return False
        self._ok()
        return True

    def _take_account(self, login: Any, server: str | None) -> bool:
        """A script connects with its own account number and server: the one simulated account takes
        them (the tester has no credentials to check; the password is ignored)."""
        if isinstance(login, bool) or not isinstance(login, int | np.integer):
            self._err(C.RES_E_INVALID_PARAMS, 'Invalid "login" argument')
            return False
        self.login_id = int(login)
        if server:
            self.server_name = str(server)
        return True

    def shutdown(self) -> None:
        self.connected = False

    def version(self) -> tuple[int, int, str] | None:
        if not self._ready():
            return None
        self._ok()
        return (500, TERMINAL_BUILD, "20 Nov 2026")

    def last_error(self) -> tuple[int, str]:
        return self._error

    # ------------------------------------------------------------------------------- account
    def account_info(self) -> AccountInfo | None:
        if not self._ready():
            return None
        s = self.server
        st = s.settings
        margin = s.margin()
        equity = s.equity()
        self._ok()
        return AccountInfo(
            login=self.login_id,
            trade_mode=C.ACCOUNT_TRADE_MODE_DEMO,
            leverage=st.leverage,
            limit_orders=0,
            margin_so_mode=C.ACCOUNT_STOPOUT_MODE_PERCENT
            if st.stop_out_mode == "percent"
            else C.ACCOUNT_STOPOUT_MODE_MONEY,
            trade_allowed=True,
            trade_expert=True,
            margin_mode=C.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING
            if st.hedging
            else C.ACCOUNT_MARGIN_MODE_RETAIL_NETTING,
            currency_digits=2,
            fifo_close=False,
            balance=s.balance,
            credit=0.0,
            profit=rules.round_to(equity - s.balance, 2),
            equity=equity,
            margin=margin,
            margin_free=rules.round_to(equity - margin, 2),
            margin_level=rules.round_to(equity / margin * 100, 2) if margin > 0 else 0.0,
            margin_so_call=st.margin_call,
            margin_so_so=st.stop_out,
            margin_initial=0.0,
            margin_maintenance=0.0,
            assets=0.0,
            liabilities=0.0,
            commission_blocked=0.0,
            name=self.account_name,
            server=self.server_name,
            currency=st.currency,
            company=self.company,
        )

    def terminal_info(self) -> TerminalInfo | None:
        if not self._ready():
            return None
        common = self.data_path / "Common"
        try:
            for folder in (self.data_path / "MQL5" / "Files", common / "Files"):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            self._err(C.RES_E_FAIL)
            return None
        self._ok()
        return TerminalInfo(
            community_account=False,
            community_connection=False,
            connected=True,
            dlls_allowed=False,
            trade_allowed=True,
            tradeapi_disabled=False,
            email_enabled=False,
            ftp_enabled=False,
            notifications_enabled=False,
            mqid=False,
            build=TERMINAL_BUILD,
            maxbars=100_000_000,
            codepage=0,
            ping_last=0,
            community_balance=0.0,
            retransmission=0.0,
            company=self.company,
            name="mt5tester simulated terminal",
            language="English",
            path=str(self.data_path),
            data_path=str(self.data_path),
            commondata_path=str(common),
        )

    # ------------------------------------------------------------------------------- symbols
    def symbols_total(self) -> int:
        if not self._ready():
            return 0
        self._ok()
        return len(self.market.m1)

    def symbols_get(self, group: str = "*") -> tuple[SymbolInfo, ...] | None:
        if not self._ready():
            return None
        if not isinstance(group, str):
            self._err(C.RES_E_INVALID_PARAMS, 'Invalid "group" argument')
            return None
        out = tuple(info for name in self.market.m1 if _match(name, group) and (info := self._symbol(name)))
        self._ok()
        return out

    def symbol_info(self, symbol: str) -> SymbolInfo | None:
        if not self._ready():
            return None
        info = self._symbol(symbol)
        if info is None:
            self._err(C.RES_E_FAIL)
            return None
        self._ok()
        return info

    def _symbol(self, name: str) -> SymbolInfo | None:
        """SymbolInfo at the current time; built once per (symbol, time): it depends on nothing else."""
        key = (name, self.market.now)
        cached = self._symbol_cache.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        info = self._build_symbol(name)
        if info is not None:
            self._symbol_cache[name] = (key, info)
        return info

    def _build_symbol(self, name: str) -> SymbolInfo | None:
        spec = self.market.specs.get(name)
        if spec is None:
            return None
        tick = self.market.tick(name)
        bid, ask, tsec = (tick.bid, tick.ask, tick.time) if tick is not None else (0.0, 0.0, 0)
        tick_value = self._tick_value(name, tick)
        static = self._symbol_static.get(name)
        if static is None:
            static = self._symbol_static[name] = self._static_symbol(name, spec)
        # Only the quote, its time, the tick value and `select` move: the rest is the spec's.
        values = list(static)
        values[_SI_SELECT] = name in self.selected
        values[_SI_TIME] = tsec
        values[_SI_SPREAD] = round((ask - bid) / spec.point) if tick else 0
        values[_SI_BID], values[_SI_ASK] = bid, ask
        values[_SI_TICK_VALUE] = values[_SI_TICK_VALUE_PROFIT] = values[_SI_TICK_VALUE_LOSS] = tick_value
        return SymbolInfo._make(values)

    @staticmethod
    def _static_symbol(name: str, spec: Any) -> SymbolInfo:
        return SymbolInfo(
            custom=False,
            chart_mode=C.SYMBOL_CHART_MODE_BID,
            visible=True,
            digits=spec.digits,
            spread_float=True,
            trade_calc_mode=int(spec.trade_calc_mode),
            trade_mode=C.SYMBOL_TRADE_MODE_FULL,
            trade_stops_level=spec.trade_stops_level,
            trade_freeze_level=spec.trade_freeze_level,
            trade_exemode=C.SYMBOL_TRADE_EXECUTION_MARKET,
            swap_mode=int(spec.swap_mode),
            swap_rollover3days=spec.swap_rollover3days,
            expiration_mode=15,
            filling_mode=1,
            order_mode=127,
            point=spec.point,
            trade_tick_size=spec.point,
            trade_contract_size=spec.trade_contract_size,
            volume_min=spec.volume_min,
            volume_max=spec.volume_max,
            volume_step=spec.volume_step,
            swap_long=spec.swap_long,
            swap_short=spec.swap_short,
            margin_hedged=spec.trade_contract_size,
            currency_base=spec.currency_base,
            currency_profit=spec.currency_profit,
            currency_margin=spec.currency_margin,
            description=name,
            name=name,
            path=f"Sim\\{name}",
        )

    def _tick_value(self, symbol: str, tick: Tick | None) -> float:
        """Value of one tick for 1 lot in the deposit currency (spec 3.5, 5.8), at the current bid."""
        spec = self.market.specs[symbol]
        if tick is None:
            return 0.0
        conv, rate = self.server.conversion(spec, self.market.now)
        return float(rules.tick_value(tick.bid, spec.point, spec.trade_contract_size, conv, rate))

    def symbol_info_tick(self, symbol: str) -> Tick | None:
        if not self._ready():
            return None
        return self._from_market(self.market.tick(symbol))

    def symbol_select(self, symbol: str, enable: bool = True) -> bool:
        if not self._ready():
            return False
        if symbol not in self.market.m1:
            self._err(C.RES_E_FAIL)
            return False
        if not enable and (
            any(p.symbol == symbol for p in self.server.positions)
            or any(o.symbol == symbol for o in self.server.orders)
        ):
            self._err(C.RES_E_FAIL)
            return False
        (self.selected.add if enable else self.selected.discard)(symbol)
        self._symbol_cache.pop(symbol, None)  # `select` is part of SymbolInfo
        self._ok()
        return True

    # ------------------------------------------------------------------------ depth of market
    def market_book_add(self, symbol: str) -> bool:
        if not self._ready():
            return False
        if symbol not in self.market.m1:
            self._err(C.RES_E_FAIL)
            return False
        self._books.add(symbol)
        self._ok()
        return True

    def market_book_release(self, symbol: str) -> bool:
        if not self._ready():
            return False
        if symbol not in self._books:
            self._err(C.RES_E_FAIL)
            return False
        self._books.discard(symbol)
        self._ok()
        return True

    def market_book_get(self, symbol: str) -> tuple[BookInfo, ...] | None:
        """The tester has no depth of market: the answer is the current best ask and bid, volume 0 [U]."""
        if not self._ready():
            return None
        if symbol not in self._books:
            self._err(C.RES_E_FAIL)
            return None
        tick = self.market.tick(symbol)
        if tick is None:
            self._error = self.market.last_error()
            return None
        self._ok()
        return (BookInfo(C.BOOK_TYPE_SELL, tick.ask, 0, 0.0), BookInfo(C.BOOK_TYPE_BUY, tick.bid, 0, 0.0))

    # -------------------------------------------------------------------------- market data
    def copy_rates_from(self, symbol: str, timeframe: int, date_from: Any, count: int) -> np.ndarray | None:
        if not self._ready():
            return None
        return self._from_market(self.market.copy_rates_from(symbol, timeframe, date_from, count))

    def copy_rates_from_pos(
        self, symbol: str, timeframe: int, start_pos: int, count: int
    ) -> np.ndarray | None:
        if not self._ready():
            return None
        return self._from_market(self.market.copy_rates_from_pos(symbol, timeframe, start_pos, count))

    def copy_rates_range(
        self, symbol: str, timeframe: int, date_from: Any, date_to: Any
    ) -> np.ndarray | None:
        if not self._ready():
            return None
        return self._from_market(self.market.copy_rates_range(symbol, timeframe, date_from, date_to))

    def copy_ticks_from(self, symbol: str, date_from: Any, count: int, flags: int) -> np.ndarray | None:
        if not self._ready():
            return None
        return self._from_market(self.market.copy_ticks_from(symbol, date_from, count, flags))

    def copy_ticks_range(self, symbol: str, date_from: Any, date_to: Any, flags: int) -> np.ndarray | None:
        if not self._ready():
            return None
        return self._from_market(self.market.copy_ticks_range(symbol, date_from, date_to, flags))

    # --------------------------------------------------------------------- orders, positions
    def _per_position(self, cache: dict[int, tuple[Any, Any]], p: Position, key: Any, make: Any) -> Any:
        """``make()`` for position p, kept per ticket while ``key`` is unchanged; the closed positions'
        entries are dropped when the cache outgrows the open positions."""
        hit = cache.get(p.ticket)
        if hit is not None and hit[0] == key:
            return hit[1]
        if len(cache) > 4 * len(self.server.positions) + 64:  # keep the open ones only
            open_ = {q.ticket for q in self.server.positions}
            for ticket in [k for k in cache if k not in open_]:
                del cache[ticket]
        value = make()
        cache[p.ticket] = (key, value)
        return value

    def _position_times(self, p: Position) -> tuple[int, int, int, int]:
        """(time, time_msc, time_update, time_update_msc) of a position on the server clock, kept per
        ticket while they do not change (a review reads every open position: the zone lookups were
        most of it)."""
        times: tuple[int, int, int, int] = self._per_position(
            self._pos_times, p, (p.time, p.time_update),
            lambda: (self._s(p.time), self._ms(p.time), self._s(p.time_update), self._ms(p.time_update)),
        )  # fmt: skip
        return times

    def _position(self, p: Position) -> TradePosition:
        """The package's structure of p at the current time, built once per time while p is unchanged:
        a point's reviews and strategies read the same positions several times (key: the time and
        every field that can change; a structure is immutable, so handing it out again is safe)."""
        now = self.market.now
        key = (now, p.time_update, p.type, p.volume, p.price_open, p.sl, p.tp, p.swap)
        made: TradePosition = self._per_position(self._pos_now, p, key, lambda: self._position_now(p, now))
        return made

    def _position_now(self, p: Position, now: int) -> TradePosition:
        profit, price = self.server.position_profit(p, now)
        time_s, time_msc, update_s, update_msc = self._position_times(p)
        return TradePosition(
            ticket=p.ticket,
            time=time_s,
            time_msc=time_msc,
            time_update=update_s,
            time_update_msc=update_msc,
            type=p.type,
            magic=p.magic,
            identifier=p.identifier,
            reason=p.reason,
            volume=p.volume,
            price_open=p.price_open,
            sl=p.sl,
            tp=p.tp,
            price_current=price,
            swap=p.swap,
            profit=profit,
            symbol=p.symbol,
            comment=p.comment,
            external_id="",
        )

    def _order(self, o: Order) -> TradeOrder:
        if o.state == C.ORDER_STATE_PLACED:
            tick = self.market.tick(o.symbol)
            current = (tick.ask if o.type in BUY_TYPES else tick.bid) if tick else 0.0
        else:
            current = o.price_done
        return TradeOrder(
            ticket=o.ticket,
            time_setup=self._s(o.time_setup),
            time_setup_msc=self._ms(o.time_setup),
            time_done=self._s(o.time_done),
            time_done_msc=self._ms(o.time_done),
            time_expiration=self._s(o.time_expiration),
            type=o.type,
            type_time=o.type_time,
            type_filling=o.type_filling,
            state=o.state,
            magic=o.magic,
            position_id=o.position_id,
            position_by_id=o.position_by_id,
            reason=o.reason,
            volume_initial=o.volume_initial,
            volume_current=o.volume_current,
            price_open=o.price_open,
            sl=o.sl,
            tp=o.tp,
            price_current=current,
            price_stoplimit=o.price_stoplimit,
            symbol=o.symbol,
            comment=o.comment,
            external_id="",
        )

    def _deal(self, d: Deal) -> TradeDeal:
        return TradeDeal(
            ticket=d.ticket,
            order=d.order,
            time=self._s(d.time),
            time_msc=self._ms(d.time),
            type=d.type,
            entry=d.entry,
            magic=d.magic,
            position_id=d.position_id,
            reason=d.reason,
            volume=d.volume,
            price=d.price,
            commission=d.commission,
            swap=d.swap,
            profit=d.profit,
            fee=d.fee,
            symbol=d.symbol,
            comment=d.comment,
            external_id="",
        )

    def _filter(
        self,
        items: list[Any],
        args: tuple[Any, ...],
        symbol: str | None,
        group: str | None,
        ticket: int | None,
    ) -> list[Any] | None:
        if args:
            self._err(C.RES_E_INVALID_PARAMS, "Unnamed arguments not allowed")
            return None
        if symbol is not None:
            return [x for x in items if x.symbol == symbol]
        if group is not None:
            return [x for x in items if _match(x.symbol, group)]
        if ticket is not None:
            return [x for x in items if x.ticket == ticket]
        return items

    def _get(
        self,
        items: list[Any],
        convert: Any,
        args: tuple[Any, ...],
        symbol: str | None,
        group: str | None,
        ticket: int | None,
    ) -> tuple[Any, ...] | None:
        """positions_get / orders_get: keyword filters, records in the package's structures."""
        if not self._ready():
            return None
        found = self._filter(items, args, symbol, group, ticket)
        if found is None:
            return None
        self._ok()
        return tuple(convert(x) for x in found)

    def positions_total(self) -> int:
        if not self._ready():
            return 0
        self._ok()
        return len(self.server.positions)

    def positions_get(
        self, *args: Any, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[TradePosition, ...] | None:
        return self._get(self.server.positions, self._position, args, symbol, group, ticket)

    def orders_total(self) -> int:
        if not self._ready():
            return 0
        self._ok()
        return len(self.server.orders)

    def orders_get(
        self, *args: Any, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[TradeOrder, ...] | None:
        return self._get(self.server.orders, self._order, args, symbol, group, ticket)

    # -------------------------------------------------------------------------------- history
    def _history(
        self,
        items: Sequence[Any],
        time_of: str,
        date_from: Any,
        date_to: Any,
        group: str | None,
        ticket: int | None,
        position: int | None,
        ticket_field: str,
    ) -> list[Any] | None:
        if ticket is not None:
            return [x for x in items if getattr(x, ticket_field) == ticket]
        if position is not None:
            return [x for x in items if x.position_id == position]
        if date_from is None or date_to is None:
            self._err(C.RES_E_INVALID_PARAMS, "Invalid number of arguments")
            return None
        try:
            lo, hi = self.market.from_server(date_from), self.market.from_server(date_to)
        except TypeError:
            self._err(C.RES_E_INVALID_PARAMS, 'Invalid "date_from" argument')
            return None
        out = [x for x in items if lo <= getattr(x, time_of) <= hi]
        return [x for x in out if _match(x.symbol, group)] if group else out

    def history_orders_total(self, date_from: Any, date_to: Any) -> int | None:
        if not self._ready():
            return None
        found = self._history(
            self.server.history_orders, "time_setup", date_from, date_to, None, None, None, "ticket"
        )
        self._ok()
        return None if found is None else len(found)

    def history_orders_get(
        self,
        date_from: Any = None,
        date_to: Any = None,
        *,
        group: str | None = None,
        ticket: int | None = None,
        position: int | None = None,
    ) -> tuple[TradeOrder, ...] | None:
        if not self._ready():
            return None
        found = self._history(
            self.server.history_orders, "time_setup", date_from, date_to, group, ticket, position, "ticket"
        )
        if found is None:
            return None
        self._ok()
        return tuple(self._order(o) for o in found)

    def history_deals_total(self, date_from: Any, date_to: Any) -> int | None:
        if not self._ready():
            return None
        found = self._history(self.server.deals, "time", date_from, date_to, None, None, None, "order")
        self._ok()
        return None if found is None else len(found)

    def history_deals_get(
        self,
        date_from: Any = None,
        date_to: Any = None,
        *,
        group: str | None = None,
        ticket: int | None = None,
        position: int | None = None,
    ) -> tuple[TradeDeal, ...] | None:
        """``ticket=`` is an ORDER ticket: the deals whose DEAL_ORDER equals it (spec section 2)."""
        if not self._ready():
            return None
        found = self._history(self.server.deals, "time", date_from, date_to, group, ticket, position, "order")
        if found is None:
            return None
        self._ok()
        return tuple(self._deal(d) for d in found)

    # ------------------------------------------------------------------------------- trading
    def order_calc_margin(self, action: int, symbol: str, volume: float, price: float) -> float | None:
        if not self._ready():
            return None
        spec = self.market.specs.get(symbol)
        if spec is None or action not in (
            C.ORDER_TYPE_BUY,
            C.ORDER_TYPE_SELL,
            *BUY_TYPES[1:],
            C.ORDER_TYPE_SELL_LIMIT,
            C.ORDER_TYPE_SELL_STOP,
            C.ORDER_TYPE_SELL_STOP_LIMIT,
        ):
            self._err(C.RES_E_INVALID_PARAMS, 'Invalid "action" argument' if spec else None)
            return None
        self._ok()
        return float(
            rules.round_to(self.server.margin_for(spec, float(volume), float(price), self.market.now), 2)
        )

    def order_calc_profit(
        self, action: int, symbol: str, volume: float, price_open: float, price_close: float
    ) -> float | None:
        if not self._ready():
            return None
        spec = self.market.specs.get(symbol)
        if spec is None or action not in (C.ORDER_TYPE_BUY, C.ORDER_TYPE_SELL):
            self._err(C.RES_E_INVALID_PARAMS, 'Invalid "action" argument' if spec else None)
            return None
        self._ok()
        return self.server.profit(
            spec,
            action == C.ORDER_TYPE_BUY,
            float(volume),
            float(price_open),
            float(price_close),
            self.market.now,
        )

    def _request(self, request: Any) -> TradeRequest | None:
        try:
            return trade_request_from_dict(request)
        except ValueError as e:
            self._err(C.RES_E_INVALID_PARAMS, str(e))
            return None

    def order_check(self, request: dict[str, Any]) -> OrderCheckResult | None:
        if not self._ready():
            return None
        req = self._request(request)
        if req is None:
            return None
        self._ok()
        return self.server.check(req)

    def order_send(self, request: dict[str, Any]) -> OrderSendResult | None:
        if not self._ready():
            return None
        req = self._request(request)
        if req is None:
            return None
        self._ok()
        if self.router is not None:
            return self.router(req)
        return self.server.send(req)

    # ------------------------------------------------------ the package's undocumented helpers
    def Buy(
        self,
        symbol: str,
        volume: float,
        price: float | None = None,
        *,
        comment: str | None = None,
        ticket: int | None = None,
    ) -> OrderSendResult | None:
        return self._market_helper(symbol, volume, C.ORDER_TYPE_BUY, comment, ticket)

    def Sell(
        self,
        symbol: str,
        volume: float,
        price: float | None = None,
        *,
        comment: str | None = None,
        ticket: int | None = None,
    ) -> OrderSendResult | None:
        return self._market_helper(symbol, volume, C.ORDER_TYPE_SELL, comment, ticket)

    def _market_helper(
        self, symbol: str, volume: float, type_: int, comment: str | None, ticket: int | None
    ) -> OrderSendResult | None:
        """spec 1: a DEAL with deviation 10, retried up to 10 times on REQUOTE/PRICE_OFF."""
        tick = self.symbol_info_tick(symbol)
        if tick is None:
            return None
        req: dict[str, Any] = {
            "action": C.TRADE_ACTION_DEAL,
            "symbol": symbol,
            "volume": float(volume),
            "type": type_,
            "deviation": 10,
            "price": tick.ask if type_ == C.ORDER_TYPE_BUY else tick.bid,
        }
        if comment is not None:
            req["comment"] = comment
        if ticket is not None:
            req["position"] = ticket
        result = None
        for _ in range(10):
            result = self.order_send(req)
            if result is None or result.retcode not in (C.TRADE_RETCODE_REQUOTE, C.TRADE_RETCODE_PRICE_OFF):
                break
        return result

    def Close(
        self, symbol: str, *, comment: str | None = None, ticket: int | None = None
    ) -> bool | str | None:
        """Close the symbol's positions (or one ticket): True, "Partially", False or None (spec 1)."""
        positions = (
            self.positions_get(ticket=ticket) if ticket is not None else self.positions_get(symbol=symbol)
        )
        if positions is None:
            return None
        if not positions:
            return False
        done = 0
        for p in positions:
            helper = self.Sell if p.type == C.POSITION_TYPE_BUY else self.Buy
            r = helper(p.symbol, p.volume, comment=comment, ticket=p.ticket)
            done += int(r is not None and r.retcode == C.TRADE_RETCODE_DONE)
        return True if done == len(positions) else ("Partially" if done else False)


if TYPE_CHECKING:
    from mt5tester.model.mt5api import Mt5Api

    def _is_mt5_api(terminal: SimTerminal) -> Mt5Api:
        """mypy checks here that SimTerminal answers every call of the Mt5Api Protocol with its types."""
        return terminal
