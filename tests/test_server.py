"""Scenario tests of the trade server: hand-written M1 bars, exact deals (spec 5.3-5.11)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mt5tester.config import parse_config
from mt5tester.model import constants as C
from mt5tester.model.bars import Bars
from mt5tester.model.structs import TradeRequest
from mt5tester.model.timeframe import Timeframe
from mt5tester.terminal.market import MarketData
from mt5tester.terminal.server import ServerSettings, TradeServer, rollover_schedule

T0 = pd.Timestamp("2024-01-02T10:00Z").value
MIN = 60_000_000_000


def bars(
    symbol: str, rows: list[tuple[float, float, float, float]], spread: int = 0, start: int = T0
) -> Bars:
    """Consecutive M1 bid bars from ``start``: (open, high, low, close)."""
    a = np.array(rows, dtype=np.float64)
    n = len(rows)
    return Bars(
        symbol,
        Timeframe.M1,
        start + np.arange(n, dtype=np.int64) * MIN,
        a[:, 0].copy(),
        a[:, 1].copy(),
        a[:, 2].copy(),
        a[:, 3].copy(),
        np.ones(n, np.int64),
        np.full(n, spread, np.int32),
    )


def flat(price: float, n: int) -> list[tuple[float, float, float, float]]:
    return [(price, price, price, price)] * n


def server(m1: dict[str, Bars], symbols: dict[str, dict] | None = None, **settings: object) -> TradeServer:
    cfg = parse_config(
        {
            "backtest": {"start": "2024-01-01", "end": "2024-02-01", "symbols": list(m1)},
            "symbols": symbols or {},
        }
    )
    specs = {s: cfg.symbol_spec(s) for s in m1}
    fixed = None if any(b.spread.any() for b in m1.values()) else 0  # all-zero spreads mean zero here
    market = MarketData(m1, specs, "UTC", fixed)
    market.set_time(T0)
    srv = TradeServer(market, ServerSettings(**settings))  # type: ignore[arg-type]
    srv.now = T0
    return srv


def buy(symbol: str, volume: float, **kw: object) -> TradeRequest:
    return TradeRequest(action=C.TRADE_ACTION_DEAL, symbol=symbol, volume=volume, type=C.ORDER_TYPE_BUY, **kw)  # type: ignore[arg-type]


def sell(symbol: str, volume: float, **kw: object) -> TradeRequest:
    return TradeRequest(
        action=C.TRADE_ACTION_DEAL, symbol=symbol, volume=volume, type=C.ORDER_TYPE_SELL, **kw
    )  # type: ignore[arg-type]


def test_market_buy_fills_at_ask_sell_at_bid() -> None:
    srv = server({"EURUSD": bars("EURUSD", flat(1.10000, 5), spread=12)})
    r1 = srv.send(buy("EURUSD", 0.1))
    r2 = srv.send(sell("EURUSD", 0.1))
    assert (r1.retcode, r1.price, r1.bid, r1.ask) == (10009, 1.10012, 1.10000, 1.10012)
    assert (r2.retcode, r2.price) == (10009, 1.10000)
    assert r1.order == 2 and r1.deal == 2  # deal #1 is the deposit
    assert len(srv.positions) == 2  # hedging: two positions


def test_invalid_volume_and_stops_and_unknown_symbol_retcodes() -> None:
    srv = server(
        {"EURUSD": bars("EURUSD", flat(1.10000, 5), spread=10)}, {"EURUSD": {"trade_stops_level": 20}}
    )
    assert srv.send(buy("EURUSD", 0.015)).retcode == C.TRADE_RETCODE_INVALID_VOLUME
    assert srv.send(buy("EURUSD", 1000.0)).retcode == C.TRADE_RETCODE_INVALID_VOLUME
    # stops level 20 points: Bid - SL must be >= 0.00020 (spec 5.5)
    assert srv.send(buy("EURUSD", 0.1, sl=1.09990)).retcode == C.TRADE_RETCODE_INVALID_STOPS
    assert srv.send(buy("EURUSD", 0.1, sl=1.09980)).retcode == C.TRADE_RETCODE_DONE
    assert srv.send(buy("EURUSD", 0.1, tp=1.09000)).retcode == C.TRADE_RETCODE_INVALID_STOPS
    assert srv.send(buy("GBPUSD", 0.1)).retcode == C.TRADE_RETCODE_INVALID


def test_no_money_when_margin_exceeds_equity() -> None:
    # 1:100, EURUSD at 1.10000: 1 lot needs 1100 USD margin; 10 lots 11000 > 10000 equity.
    srv = server({"EURUSD": bars("EURUSD", flat(1.10000, 5))}, leverage=100, deposit=10_000.0)
    assert srv.send(buy("EURUSD", 10.0)).retcode == C.TRADE_RETCODE_NO_MONEY
    assert srv.send(buy("EURUSD", 9.0)).retcode == C.TRADE_RETCODE_DONE
    assert srv.margin() == 9900.0
    # a hedge does not raise the margin (larger leg only), so it is allowed
    assert srv.send(sell("EURUSD", 9.0)).retcode == C.TRADE_RETCODE_DONE
    assert srv.margin() == 9900.0


def test_partial_close_hedging_by_position_ticket() -> None:
    srv = server({"EURUSD": bars("EURUSD", flat(1.10000, 2) + flat(1.10100, 5))})
    r = srv.send(buy("EURUSD", 0.3))
    srv.now = T0 + 2 * MIN
    out = srv.send(sell("EURUSD", 0.1, position=r.order))
    d = srv.deals[-1]
    assert out.retcode == 10009 and (d.entry, d.volume, d.profit, d.position_id) == (1, 0.1, 10.0, r.order)
    assert srv.positions[0].volume == pytest.approx(0.2)
    assert srv.send(sell("EURUSD", 0.3, position=r.order)).retcode == C.TRADE_RETCODE_INVALID_CLOSE_VOLUME


def test_netting_add_reduce_and_reversal_inout_deal() -> None:
    srv = server(
        {"EURUSD": bars("EURUSD", flat(1.10000, 1) + flat(1.10200, 1) + flat(1.10100, 5))}, hedging=False
    )
    first = srv.send(buy("EURUSD", 0.1))
    srv.now = T0 + MIN
    srv.send(buy("EURUSD", 0.1))  # adds: average open (1.10000 + 1.10200) / 2
    assert len(srv.positions) == 1
    p = srv.positions[0]
    assert (p.volume, p.price_open, p.identifier) == (0.2, pytest.approx(1.10100), first.order)
    srv.now = T0 + 2 * MIN
    srv.send(sell("EURUSD", 0.5))  # closes 0.2 at 1.10100 (profit 0) and opens 0.3 sell
    d = srv.deals[-1]
    assert (d.entry, d.volume, d.type, d.profit) == (C.DEAL_ENTRY_INOUT, 0.5, C.DEAL_TYPE_SELL, 0.0)
    p = srv.positions[0]
    assert (p.type, p.volume, p.price_open, p.identifier) == (1, pytest.approx(0.3), 1.10100, first.order)


def test_close_by_two_opposite_positions_out_by_deals() -> None:
    srv = server({"EURUSD": bars("EURUSD", flat(1.10000, 1) + flat(1.10300, 5), spread=10)})
    a = srv.send(buy("EURUSD", 0.2))  # at ask 1.10010
    srv.now = T0 + MIN
    b = srv.send(sell("EURUSD", 0.1))  # at bid 1.10300
    req = TradeRequest(action=C.TRADE_ACTION_CLOSE_BY, position=a.order, position_by=b.order)
    assert srv.send(req).retcode == 10009
    da, db_ = srv.deals[-2:]
    assert (da.entry, db_.entry) == (C.DEAL_ENTRY_OUT_BY, C.DEAL_ENTRY_OUT_BY)
    # both close at b's open 1.10300: a gains (1.10300 - 1.10010) x 0.1 lot = 29.00, b gains 0.00
    assert (da.price, db_.price, da.profit, db_.profit) == (1.10300, 1.10300, 29.0, 0.0)
    assert da.position_id == a.order and db_.position_id == b.order
    assert [p.volume for p in srv.positions] == [pytest.approx(0.1)]


def test_sl_tp_triggers_and_gap_through_sl() -> None:
    m1 = bars(
        "EURUSD",
        flat(1.10000, 2)
        + [(1.10000, 1.10060, 1.09990, 1.10050), (1.09900, 1.09950, 1.09880, 1.09900)]
        + flat(1.09900, 3),
    )
    srv = server({"EURUSD": m1})
    a = srv.send(buy("EURUSD", 1.0, tp=1.10050))
    b = srv.send(buy("EURUSD", 1.0, sl=1.09950))
    deals = srv.advance(T0 + 6 * MIN)
    assert [(d.position_id, d.reason, d.price, d.time) for d in deals] == [
        (a.order, C.DEAL_REASON_TP, 1.10050, T0 + 2 * MIN),
        (b.order, C.DEAL_REASON_SL, 1.09900, T0 + 3 * MIN),  # opened below the SL: filled at the open
    ]
    assert deals[1].comment == "[sl 1.09950]" and deals[1].profit == -100.0


def test_pending_orders_activate_at_level_or_gap_price() -> None:
    rows = (
        flat(1.10000, 2)
        + [(1.10000, 1.10020, 1.09940, 1.09960), (1.10100, 1.10150, 1.10080, 1.10100)]
        + flat(1.101, 3)
    )
    srv = server({"EURUSD": bars("EURUSD", rows)})
    lim = srv.send(
        TradeRequest(
            action=C.TRADE_ACTION_PENDING,
            symbol="EURUSD",
            volume=0.1,
            type=C.ORDER_TYPE_BUY_LIMIT,
            price=1.09950,
        )
    )
    stop = srv.send(
        TradeRequest(
            action=C.TRADE_ACTION_PENDING,
            symbol="EURUSD",
            volume=0.1,
            type=C.ORDER_TYPE_BUY_STOP,
            price=1.10050,
        )
    )
    assert (lim.retcode, stop.retcode) == (C.TRADE_RETCODE_PLACED, C.TRADE_RETCODE_PLACED)
    bad = srv.send(
        TradeRequest(
            action=C.TRADE_ACTION_PENDING,
            symbol="EURUSD",
            volume=0.1,
            type=C.ORDER_TYPE_BUY_LIMIT,
            price=1.10050,
        )
    )
    assert bad.retcode == C.TRADE_RETCODE_INVALID_PRICE  # a buy limit must be below Ask
    deals = srv.advance(T0 + 6 * MIN)
    assert [(d.order, d.price, d.time) for d in deals] == [
        (lim.order, 1.09950, T0 + 2 * MIN),  # low 1.09940 crosses the limit: filled at the limit
        (stop.order, 1.10100, T0 + 3 * MIN),  # opened above the stop: filled at the open
    ]
    assert srv.orders == [] and [o.state for o in srv.history_orders[-2:]] == [C.ORDER_STATE_FILLED] * 2


def test_pending_order_expires_specified_and_remove_cancels() -> None:
    srv = server({"EURUSD": bars("EURUSD", flat(1.10000, 10))})
    o = srv.send(
        TradeRequest(
            action=C.TRADE_ACTION_PENDING,
            symbol="EURUSD",
            volume=0.1,
            type=C.ORDER_TYPE_SELL_LIMIT,
            price=1.10500,
            type_time=C.ORDER_TIME_SPECIFIED,
            expiration=(T0 + 3 * MIN) // 10**9,
        )
    )
    o2 = srv.send(
        TradeRequest(
            action=C.TRADE_ACTION_PENDING,
            symbol="EURUSD",
            volume=0.1,
            type=C.ORDER_TYPE_SELL_LIMIT,
            price=1.10500,
        )
    )
    assert srv.send(TradeRequest(action=C.TRADE_ACTION_REMOVE, order=o2.order)).retcode == 10009
    srv.advance(T0 + 8 * MIN)
    states = {x.ticket: (x.state, x.time_done) for x in srv.history_orders}
    assert states[o.order] == (C.ORDER_STATE_EXPIRED, T0 + 3 * MIN)
    assert states[o2.order][0] == C.ORDER_STATE_CANCELED


def test_sltp_modify_freeze_level_and_no_changes() -> None:
    srv = server({"EURUSD": bars("EURUSD", flat(1.10000, 5))}, {"EURUSD": {"trade_freeze_level": 30}})
    r = srv.send(buy("EURUSD", 0.1, sl=1.09900))
    req = TradeRequest(action=C.TRADE_ACTION_SLTP, position=r.order, sl=1.09900)
    assert srv.send(req).retcode == C.TRADE_RETCODE_NO_CHANGES
    assert srv.send(req._replace(sl=1.09800, tp=1.10500)).retcode == 10009
    assert srv.send(req._replace(sl=1.10010)).retcode == C.TRADE_RETCODE_INVALID_STOPS  # above Bid
    r2 = srv.send(buy("EURUSD", 0.1, sl=1.09980))  # SL within 30 points of Bid: frozen
    assert srv.send(TradeRequest(action=C.TRADE_ACTION_SLTP, position=r2.order, sl=1.09900)).retcode == (
        C.TRADE_RETCODE_FROZEN
    )


def test_stop_out_closes_largest_loss_first() -> None:
    # 1:100, deposit 1100: 0.5 lot EURUSD (margin 550) and 0.4 lot GBPUSD (margin 500 @1.25).
    # Prices fall; stop out at margin level <= 30 %: equity <= 315.
    eur = bars("EURUSD", flat(1.10000, 1) + [(1.10000, 1.10000, 1.08800, 1.08800)] + flat(1.088, 5))
    gbp = bars("GBPUSD", flat(1.25000, 1) + [(1.25000, 1.25000, 1.24500, 1.24500)] + flat(1.245, 5))
    srv = server({"EURUSD": eur, "GBPUSD": gbp}, deposit=1100.0, leverage=100)
    srv.send(buy("EURUSD", 0.5))
    srv.send(buy("GBPUSD", 0.4))
    assert srv.margin() == 1050.0
    deals = srv.advance(T0 + 4 * MIN)
    # at bar 1 worst prices: EURUSD -600.00, GBPUSD -200.00 -> equity 300 <= 315: close EURUSD (largest loss)
    assert [(d.reason, d.symbol, d.profit, d.time) for d in deals] == [
        (C.DEAL_REASON_SO, "EURUSD", -600.0, T0 + MIN)
    ]
    # after it: balance 500, margin 500, equity 300 -> 60 % > 30 %: GBPUSD stays open
    assert srv.stop_outs == 1 and [p.symbol for p in srv.positions] == ["GBPUSD"]


def test_cross_currency_profit_eurgbp_converted_with_gbpusd() -> None:
    m1 = {
        "EURGBP": bars("EURGBP", flat(0.85000, 1) + flat(0.85500, 3)),
        "GBPUSD": bars("GBPUSD", flat(1.26000, 4)),
        "EURUSD": bars("EURUSD", flat(1.10000, 4)),
    }
    srv = server(m1)
    r = srv.send(buy("EURGBP", 1.0))
    # margin of 1 lot EURGBP: 100000 EUR / 100 = 1000 EUR x EURUSD 1.10000 = 1100.00 USD (spec 5.9)
    assert srv.margin() == 1100.0
    srv.now = T0 + MIN
    srv.send(sell("EURGBP", 1.0, position=r.order))
    # spec 5.8: 0.005 x 100000 = 500 GBP x 1.26000 = 630.00 USD
    assert srv.deals[-1].profit == 630.0


def test_profit_raw_many_converts_each_row_at_its_own_time_like_profit_raw() -> None:
    """The array form (MFE/MAE of the positions table) takes the conversion kind without asking for a
    rate at time 0 (regression: "GBPUSD: no price at or before 1970-01-01" on an EURGBP position), and
    each row's rate at that row's time, as ``profit_raw`` does."""
    m1 = {
        "EURGBP": bars("EURGBP", flat(0.85000, 4)),
        "GBPUSD": bars("GBPUSD", flat(1.26000, 2) + flat(1.30000, 2)),
        "USDJPY": bars("USDJPY", flat(150.000, 4)),
    }
    srv = server(m1)
    t = np.array([T0, T0 + 2 * MIN, T0 + 3 * MIN], np.int64)
    is_buy, vol = np.array([True, False, True]), np.array([1.0, 0.5, 2.0])
    open_, close = np.array([0.85, 0.85, 0.85]), np.array([0.855, 0.845, 0.84])
    many = srv.profit_raw_many(srv.inputs.specs["EURGBP"], is_buy, vol, open_, close, t)
    one = [
        srv.profit_raw(srv.inputs.specs["EURGBP"], bool(b), float(v), float(o), float(c), int(x))
        for b, v, o, c, x in zip(is_buy, vol, open_, close, t, strict=True)
    ]
    assert many.tolist() == one
    # 0.005 x 100000 = 500 GBP x 1.26 = 630 USD; 0.005 x 50000 = 250 GBP x 1.30 = 325 USD; -0.01 x 200000 = -2000 GBP x 1.30
    assert [round(x, 6) for x in one] == [630.0, 325.0, -2600.0]
    jpy = srv.inputs.specs["USDJPY"]  # the deposit is the base: divided by the closing price, no rate asked
    assert srv.profit_raw_many(jpy, np.array([True]), np.array([1.0]), np.array([150.0]), np.array([151.5]),
                               np.array([T0], np.int64)).tolist() == [
        srv.profit_raw(jpy, True, 1.0, 150.0, 151.5, T0)
    ]  # fmt: skip


def test_rollover_schedule_counts_weekdays_for_triple_swap() -> None:
    utc, dow = rollover_schedule(pd.Timestamp("2024-01-01").value, pd.Timestamp("2024-01-08").value, "UTC")
    assert dow.tolist() == [1, 2, 3, 4, 5, 6, 0]  # nights ending Mon .. Sun
    assert len(utc) == 7


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["buy", "sell", "close", "limit"]), st.integers(1, 300), st.integers(0, 3)),
        min_size=1,
        max_size=25,
    ),
    seed=st.integers(0, 10_000),
    hedging=st.booleans(),
)
def test_property_balance_equity_and_margin_invariants(
    steps: list[tuple[str, int, int]], seed: int, hedging: bool
) -> None:
    rng = np.random.default_rng(seed)
    n = 200
    close = 1.1 + np.cumsum(rng.normal(0, 0.0004, n))
    open_ = np.concatenate([[1.1], close[:-1]])
    high = np.maximum(open_, close) + rng.uniform(0, 0.0003, n)
    low = np.minimum(open_, close) - rng.uniform(0, 0.0003, n)
    m1 = bars("EURUSD", [tuple(np.round(x, 5)) for x in zip(open_, high, low, close, strict=True)], spread=8)
    srv = server(
        {"EURUSD": m1},
        {"EURUSD": {"commission": 3.5, "swap_long": -5.0}},
        deposit=2000.0,
        leverage=50,
        hedging=hedging,
    )
    t = T0
    for i, (action, lots, sl_pts) in enumerate(steps):
        t = T0 + (i * 7 + 1) * MIN
        srv.advance(t)
        srv.now = t
        vol = lots / 100
        margin_before, equity_before = srv.margin(), srv.equity()
        bid, ask, _ = srv.quote("EURUSD")  # type: ignore[misc]
        if action in ("buy", "sell"):
            sl = (
                (bid - sl_pts * 0.001)
                if action == "buy" and sl_pts
                else (ask + sl_pts * 0.001 if sl_pts else 0.0)
            )
            req = (
                buy("EURUSD", vol, sl=round(sl, 5))
                if action == "buy"
                else sell("EURUSD", vol, sl=round(sl, 5))
            )
            res = srv.send(req)
            if res.retcode == C.TRADE_RETCODE_NO_MONEY:
                assert srv.margin() == margin_before
            elif res.retcode == 10009 and srv.margin() > margin_before:
                assert srv.equity() - srv.margin() >= -1e-6 or equity_before - srv.margin() >= -1e-6
        elif action == "close" and srv.positions:
            p = srv.positions[0]
            srv.send((sell if p.type == 0 else buy)("EURUSD", p.volume, position=p.ticket))
        elif action == "limit":
            srv.send(
                TradeRequest(
                    action=C.TRADE_ACTION_PENDING,
                    symbol="EURUSD",
                    volume=vol,
                    type=C.ORDER_TYPE_BUY_LIMIT,
                    price=round(ask - 0.0005, 5),
                )
            )
        # balance = deposit + sum of every deal's profit, commission and swap (spec 5.9)
        total = sum(d.profit + d.commission + d.swap for d in srv.deals)
        assert srv.balance == pytest.approx(total, abs=1e-6)
        assert srv.equity() == pytest.approx(srv.balance + srv.floating(), abs=0.011)
        assert srv.margin() >= 0
    srv.advance(T0 + (n - 1) * MIN)
    assert srv.balance == pytest.approx(sum(d.profit + d.commission + d.swap for d in srv.deals), abs=1e-6)


def test_fixed_slippage_moves_fills_against_the_trader() -> None:
    srv = server(
        {"EURUSD": bars("EURUSD", flat(1.10000, 5), spread=10)}, slippage_model="fixed", slippage_points=3
    )
    assert srv.send(buy("EURUSD", 0.1)).price == 1.10013  # ask 1.10010 + 3 points
    assert srv.send(sell("EURUSD", 0.1)).price == 1.09997  # bid 1.10000 - 3 points


def test_random_slippage_is_seeded_and_bounded() -> None:
    def fills(seed: int) -> list[float]:
        srv = server(
            {"EURUSD": bars("EURUSD", flat(1.10000, 5))},
            slippage_model="random",
            slippage_points=5,
            seed=seed,
        )
        return [srv.send(buy("EURUSD", 0.01)).price for _ in range(20)]

    a, b = fills(1), fills(1)
    assert a == b and all(1.10000 <= p <= 1.10005 for p in a) and len(set(a)) > 1


def test_market_closed_when_no_quote_for_15_minutes() -> None:
    srv = server({"EURUSD": bars("EURUSD", flat(1.10000, 5))})
    srv.now = T0 + 30 * MIN  # the last bar opened at T0 + 4 min
    assert srv.send(buy("EURUSD", 0.1)).retcode == C.TRADE_RETCODE_MARKET_CLOSED


def test_commission_per_value_percent_per_side() -> None:
    srv = server(
        {"EURUSD": bars("EURUSD", flat(1.10000, 5))},
        {"EURUSD": {"commission": 0.002, "commission_mode": "percent_of_value"}},
    )
    srv.send(buy("EURUSD", 1.0))
    # 1 lot x 100000 x 1.10000 USD = 110000 USD x 0.002 % = 2.20 USD
    assert srv.deals[-1].commission == -2.2


def test_netting_reversal_profit_on_closed_part_and_identifier_kept() -> None:
    srv = server({"EURUSD": bars("EURUSD", flat(1.10000, 1) + flat(1.10300, 5))}, hedging=False)
    first = srv.send(sell("EURUSD", 0.2))
    srv.now = T0 + MIN
    srv.send(buy("EURUSD", 0.3))
    d = srv.deals[-1]
    # closes the 0.2 sell at 1.10300: -60.00; opens 0.1 buy at 1.10300
    assert (d.entry, d.profit, d.position_id) == (C.DEAL_ENTRY_INOUT, -60.0, first.order)
    assert (srv.positions[0].type, srv.positions[0].volume) == (0, pytest.approx(0.1))


def test_m1_from_ticks_bid_ohlc_volume_and_min_spread() -> None:
    from mt5tester.data.store import m1_from_ticks

    t = np.array([0, 10, 59_000, 60_000, 61_000], np.int64) * 1_000_000 + T0
    bid = np.array([1.1, 1.2, 1.05, 1.3, 1.31])
    ask = bid + np.array([0.0002, 0.0001, 0.0003, 0.0001, 0.0001])
    m1 = m1_from_ticks("EURUSD", t, bid, ask, 0.00001)
    assert m1.time.tolist() == [T0, T0 + MIN]
    assert (m1.open.tolist(), m1.high.tolist(), m1.low.tolist(), m1.close.tolist()) == (
        [1.1, 1.3],
        [1.2, 1.31],
        [1.05, 1.3],
        [1.05, 1.31],
    )
    assert m1.tick_volume.tolist() == [3, 2] and m1.spread.tolist() == [10, 10]


def test_quiet_book_skips_replay_only_while_stop_out_is_out_of_reach() -> None:
    # 1:100, deposit 10,000, 0.1 lot EURUSD without SL/TP (margin 110). Even the lowest price of the
    # whole history (1.05000) leaves equity far above the stop-out floor: the book is quiet, and advance
    # does nothing until the book changes.
    eur = bars("EURUSD", flat(1.10000, 2) + [(1.10000, 1.10000, 1.05000, 1.05000)] + flat(1.05, 4))
    srv = server({"EURUSD": eur}, deposit=10_000.0, leverage=100)
    srv.send(buy("EURUSD", 0.1))
    assert srv.state.memo.quiet is None  # a new book: not proved quiet yet
    assert srv.advance(T0 + MIN) == [] and srv.state.memo.quiet == (len(srv.deals), srv.state.next_rollover)
    assert srv.advance(T0 + 5 * MIN) == [] and srv.now == T0 + 5 * MIN
    # An SL on the position ends the quiet path: the SL at 1.06000 is hit at bar 2 (gap: its open 1.1).
    srv.positions[0].sl = 1.06
    deals = srv.advance(T0 + 6 * MIN)
    assert [(d.reason, d.price, d.time) for d in deals] == [(C.DEAL_REASON_SL, 1.06, T0 + 2 * MIN)]


def test_book_within_reach_of_stop_out_is_never_quiet() -> None:
    # Same bars, deposit 600, 0.5 lot (margin 550): the history's low would take equity to
    # 600 - 2,500 < 30 % of 550, so the replay runs at every point and the stop-out happens at bar 2.
    eur = bars("EURUSD", flat(1.10000, 2) + [(1.10000, 1.10000, 1.05000, 1.05000)] + flat(1.05, 4))
    srv = server({"EURUSD": eur}, deposit=600.0, leverage=100)
    srv.send(buy("EURUSD", 0.5))
    assert srv.advance(T0 + MIN) == [] and srv.state.memo.quiet is None
    deals = srv.advance(T0 + 5 * MIN)
    assert [(d.reason, d.profit, d.time) for d in deals] == [(C.DEAL_REASON_SO, -2500.0, T0 + 2 * MIN)]
