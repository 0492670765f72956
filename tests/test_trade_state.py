"""The trade server's state is one picklable object: a state pickled mid-run and restored into a fresh
server continues exactly as the uninterrupted run; and the server is composed, not mixed in."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pickle
import pkgutil

import numpy as np
import pandas as pd
import pytest

import mt5tester.terminal
from mt5tester.config import parse_config
from mt5tester.model import constants as C
from mt5tester.model.bars import Bars
from mt5tester.model.structs import TradeRequest
from mt5tester.model.timeframe import Timeframe
from mt5tester.terminal.market import MarketData
from mt5tester.terminal.server import PythonCore, ServerSettings, TradeServer, rollover_schedule
from mt5tester.terminal.state import Market, TradeState

T0 = pd.Timestamp("2024-01-02T00:00Z").value
MIN = 60_000_000_000
DAYS = 4
STEP = 15 * MIN  # a decision point every 15 minutes
SYMBOLS = {"EURUSD": (1.10000, 0.00005), "USDJPY": (145.000, 0.007)}


def _walk(symbol: str, start: float, vol: float, seed: int) -> Bars:
    """DAYS of M1 bid bars of a seeded random walk, with a varying spread."""
    rng = np.random.default_rng(seed)
    n = DAYS * 1440
    close = start + np.cumsum(rng.normal(0.0, vol, n))
    open_ = np.concatenate([[start], close[:-1]])
    wick = np.abs(rng.normal(0.0, vol, (2, n)))
    return Bars(
        symbol,
        Timeframe.M1,
        T0 + np.arange(n, dtype=np.int64) * MIN,
        open_,
        np.maximum(open_, close) + wick[0],
        np.minimum(open_, close) - wick[1],
        close,
        np.ones(n, np.int64),
        rng.integers(5, 20, n).astype(np.int32),
    )


def _server(**settings: object) -> TradeServer:
    """A server as the engine builds one, from the same inputs every time (a resumed run rebuilds it)."""
    m1 = {s: _walk(s, p, v, seed) for seed, (s, (p, v)) in enumerate(SYMBOLS.items())}
    cfg = parse_config({"backtest": {"start": "2024-01-02", "end": "2024-01-06", "symbols": list(m1)}})
    market = MarketData(m1, {s: cfg.symbol_spec(s) for s in m1}, "UTC")
    srv = TradeServer(market, ServerSettings(**settings))  # type: ignore[arg-type]
    srv.rollovers, srv.rollover_days = rollover_schedule(T0, T0 + DAYS * 1440 * MIN, "UTC")
    srv.now = T0 + MIN
    return srv


def _requests(srv: TradeServer, i: int) -> list[TradeRequest]:
    """What a trader does at point i: drawn from (seed, i), so a resumed run asks the same."""
    rng = np.random.default_rng([7, i])
    out: list[TradeRequest] = []
    for symbol in SYMBOLS:
        q = srv.quote(symbol)
        if q is None:
            continue
        bid, ask, _ = q
        point = srv.specs[symbol].point
        move = rng.random()
        if move < 0.25:  # a market order with SL/TP
            buy = rng.random() < 0.5
            sl, tp = rng.integers(50, 300, 2) * point
            price = ask if buy else bid
            naked = rng.random() < 0.3  # no SL/TP: only a close, the end or a stop-out ends it
            out.append(
                TradeRequest(
                    action=C.TRADE_ACTION_DEAL,
                    symbol=symbol,
                    volume=float(rng.choice([0.1, 0.5, 1.0])),
                    type=C.ORDER_TYPE_BUY if buy else C.ORDER_TYPE_SELL,
                    sl=0.0 if naked else round(price - sl if buy else price + sl, 5),
                    tp=0.0 if naked else round(price + tp if buy else price - tp, 5),
                    magic=i,
                )
            )
        elif move < 0.4:  # a pending limit or stop order that expires at the server day's end
            kind = int(rng.integers(0, 4))
            type_ = (
                C.ORDER_TYPE_BUY_LIMIT,
                C.ORDER_TYPE_SELL_LIMIT,
                C.ORDER_TYPE_BUY_STOP,
                C.ORDER_TYPE_SELL_STOP,
            )[kind]
            away = float(rng.integers(30, 150)) * point
            price = {0: ask - away, 1: bid + away, 2: ask + away, 3: bid - away}[kind]
            out.append(
                TradeRequest(
                    action=C.TRADE_ACTION_PENDING,
                    symbol=symbol,
                    volume=0.2,
                    type=type_,
                    price=round(price, 5),
                    type_time=C.ORDER_TIME_DAY,
                )
            )
        elif move < 0.5 and srv.positions:  # close the oldest position of the symbol without SL/TP
            p = next((p for p in srv.positions if p.symbol == symbol), None)
            if p is not None:
                out.append(
                    TradeRequest(
                        action=C.TRADE_ACTION_DEAL,
                        symbol=symbol,
                        volume=p.volume,
                        type=C.ORDER_TYPE_SELL if p.type == 0 else C.ORDER_TYPE_BUY,
                        position=p.ticket,
                    )
                )
    return out


def _run(srv: TradeServer, points: range) -> None:
    for i in points:
        t = T0 + (i + 1) * STEP
        srv.advance(t)
        srv.now = t
        srv.market.set_time(t)  # type: ignore[attr-defined]
        for req in _requests(srv, i):
            srv.send(req._replace(magic=770_000 + i % 3))


def _book(srv: TradeServer) -> tuple[list[tuple], list[tuple], list[tuple], float]:
    return (
        [dataclasses.astuple(d) for d in srv.deals],
        [dataclasses.astuple(o) for o in srv.history_orders],
        [dataclasses.astuple(p) for p in srv.positions],
        srv.balance,
    )


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"hedging": False, "slippage_model": "random", "slippage_points": 5},
        {"tick_mode": "every_tick", "seed": 3},
        {"deposit": 300.0, "leverage": 1000, "intrabar": "ohlc_path"},  # a stop-out after the split
    ],
    ids=["hedging", "netting-random-slippage", "every-tick", "stop-out"],
)
def test_state_pickled_mid_run_continues_like_the_uninterrupted_run(settings: dict[str, object]) -> None:
    points = DAYS * 1440 * MIN // STEP - 1
    half = points // 2 + 5  # mid-day, after two rollovers

    whole = _server(**settings)
    _run(whole, range(points))

    first = _server(**settings)
    _run(first, range(half))
    blob = pickle.dumps(first.state)
    assert first.positions or first.orders, "the checkpoint should carry an open book"
    deals_before = len(first.deals)

    resumed = _server(**settings)
    resumed.state = pickle.loads(blob)
    resumed.market.set_time(first.now)  # type: ignore[attr-defined]
    _run(resumed, range(half, points))

    assert deals_before > 10 and len(whole.deals) > deals_before + 10
    assert _book(resumed) == _book(whole)
    assert (resumed.ambiguous_bars, resumed.stop_outs) == (whole.ambiguous_bars, whole.stop_outs)
    if settings.get("deposit"):
        assert whole.stop_outs > first.stop_outs


def test_state_holds_no_market_data() -> None:
    """The pickled state is what changes: no bars, ticks or specs ride along (a checkpoint stays small)."""
    srv = _server()
    _run(srv, range(50))
    fields = vars(srv.state).values()
    assert not any(isinstance(v, (Market, MarketData, Bars, dict)) for v in fields)
    assert len(pickle.dumps(srv.state)) < 50_000
    assert isinstance(pickle.loads(pickle.dumps(srv.state)), TradeState)


def test_trade_core_is_the_boundary() -> None:
    """The facade delegates advance/send/check to its core over the state (where a compiled core plugs in)."""
    calls: list[str] = []

    class Spy:
        def __init__(self, market: Market) -> None:
            self.inner = PythonCore(market)

        def advance(self, state: TradeState, t: int) -> list:
            calls.append("advance")
            return self.inner.advance(state, t)

        def send(self, state: TradeState, request: TradeRequest):  # type: ignore[no-untyped-def]
            calls.append("send")
            return self.inner.send(state, request)

        def check(self, state: TradeState, request: TradeRequest):  # type: ignore[no-untyped-def]
            calls.append("check")
            return self.inner.check(state, request)

    srv = _server()
    spied = TradeServer(srv.market, srv.settings, core=Spy)
    spied.now = srv.now
    req = TradeRequest(action=C.TRADE_ACTION_DEAL, symbol="EURUSD", volume=0.1, type=C.ORDER_TYPE_BUY)
    assert spied.check(req).retcode == 0 and spied.send(req).retcode == C.TRADE_RETCODE_DONE
    spied.advance(spied.now + MIN)
    assert calls == ["check", "send", "advance"]


def test_no_mixins_in_the_terminal() -> None:
    """The server is composed of data and functions: no class of terminal/ inherits from another."""
    assert TradeServer.__mro__ == (TradeServer, object)
    own = set()
    for info in pkgutil.iter_modules(mt5tester.terminal.__path__, "mt5tester.terminal."):
        module = importlib.import_module(info.name)
        own |= {c for _, c in inspect.getmembers(module, inspect.isclass) if c.__module__ == info.name}
    assert own, "no classes found"
    for cls in own:
        inherited = [b.__qualname__ for b in cls.__mro__[1:] if b in own]
        assert not inherited, f"{cls.__module__}.{cls.__qualname__} inherits {inherited}"


def test_checkpoint_of_the_old_format_is_read_into_a_trade_state() -> None:
    """A run checkpointed before the TradeState (a dict of the server's fields) can still resume."""
    from mt5tester.engine import checkpoint

    srv = _server()
    _run(srv, range(50))
    s = srv.state
    old = {
        "balance": s.balance,
        "positions": s.positions,
        "orders": s.orders,
        "history_orders": s.history_orders,
        "deals": s.deals,
        "ambiguous_bars": s.ambiguous_bars,
        "stop_outs": s.stop_outs,
        "now": s.now,
        "server_offset_ns": s.server_offset_ns,
        "_next_rollover": s.next_rollover,
        "_next_ticket": s.next_ticket,
        "_next_deal": s.next_deal,
        "_rng": s.rng,
    }
    read = checkpoint._server_state(pickle.loads(pickle.dumps(old)))
    assert pickle.dumps(read) == pickle.dumps(s)
    assert checkpoint._next_deal({"server": old}) == s.next_deal == checkpoint._next_deal({"server": s})
    assert (
        checkpoint._next_deal({"server": {"_next_deal": 0}}) == 0 == checkpoint._next_deal({"server": None})
    )
