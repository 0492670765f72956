"""One quote per simulated time (ARCHITECTURE 2): between minute boundaries the trade server and the
terminal use the price known at t, and nothing replayed at t reaches a later tick (issue 12, point 9)."""

from __future__ import annotations

import numpy as np

from mt5tester.config import parse_config
from mt5tester.data.resample import resample
from mt5tester.model import constants as C
from mt5tester.model.structs import TradeRequest
from mt5tester.model.ticks import Ticks
from mt5tester.model.timeframe import Timeframe
from mt5tester.terminal.market import MarketData
from mt5tester.terminal.server import TradeServer
from test_server import MIN, T0, bars, buy, flat, server

SEC = 1_000_000_000
# A bullish M1 bar seen through the 1-minute OHLC ticks: Open +0 s, Low +20 s, High +40 s, Close +59 s.
BULL = (1.10000, 1.10100, 1.09900, 1.10050)


def test_quote_between_minutes_is_the_last_ohlc_tick_for_server_and_terminal() -> None:
    srv = server({"EURUSD": bars("EURUSD", [BULL, *flat(1.10050, 3)], spread=10)})
    expected = {0: 1.10000, 5: 1.10000, 19: 1.10000, 20: 1.09900, 39: 1.09900, 40: 1.10100, 58: 1.10100}
    expected |= {59: 1.10050, 60: 1.10050}
    for s, bid in expected.items():
        t = T0 + s * SEC
        srv.market.set_time(t)  # type: ignore[attr-defined]
        tick = srv.market.tick("EURUSD")  # type: ignore[attr-defined]
        srv.now = t
        assert srv.quote("EURUSD")[:2] == (bid, round(bid + 0.00010, 5)), s
        assert (tick.bid, tick.ask) == (bid, round(bid + 0.00010, 5)), s
        r = srv.send(buy("EURUSD", 0.1))
        assert (r.price, r.bid, r.ask) == (round(bid + 0.00010, 5), bid, round(bid + 0.00010, 5)), s


def test_conversion_rate_is_the_pair_quote_at_t_not_its_bar_close() -> None:
    srv = server(
        {
            "EURGBP": bars("EURGBP", flat(0.86000, 4)),
            "GBPUSD": bars("GBPUSD", [(1.27000, 1.27500, 1.26500, 1.27300), *flat(1.27300, 3)]),
        }
    )
    assert srv.rate("GBP", T0) == 1.27000  # the bar opening at t: its open, the close comes 59 s later
    assert srv.rate("GBP", T0 + 30 * SEC) == 1.26500  # bearish bar: High at +20 s, Low at +40 s
    assert srv.rate("GBP", T0 + MIN) == 1.27300


def _stopped_buy(srv: TradeServer, sl: float) -> None:
    srv.send(buy("EURUSD", 0.1, sl=sl))  # at T0, the open of a flat bar


def test_sl_inside_the_forming_m1_bar_waits_for_its_tick() -> None:
    srv = server({"EURUSD": bars("EURUSD", [*flat(1.10000, 1), BULL, *flat(1.10050, 3)])})
    _stopped_buy(srv, 1.09950)
    assert srv.advance(T0 + MIN + 10 * SEC) == []  # the Low comes at +20 s: not known at +10 s
    assert len(srv.positions) == 1
    deals = srv.advance(T0 + MIN + 25 * SEC)
    assert [(d.time, d.price, d.reason) for d in deals] == [(T0 + MIN + 20 * SEC, 1.09950, C.DEAL_REASON_SL)]


def test_pending_limit_inside_the_forming_m1_bar_fills_at_its_level_when_reached() -> None:
    srv = server({"EURUSD": bars("EURUSD", [*flat(1.10000, 1), BULL, *flat(1.10050, 3)])})
    req = TradeRequest(
        action=C.TRADE_ACTION_PENDING, symbol="EURUSD", volume=0.1, type=C.ORDER_TYPE_BUY_LIMIT, price=1.09920
    )
    assert srv.send(req).retcode == C.TRADE_RETCODE_PLACED
    assert srv.advance(T0 + MIN + 19 * SEC) == [] and len(srv.orders) == 1
    deals = srv.advance(T0 + MIN + 21 * SEC)
    assert [(d.time, d.price, d.entry) for d in deals] == [(T0 + MIN + 20 * SEC, 1.09920, C.DEAL_ENTRY_IN)]


def test_open_prices_mode_resolves_only_closed_bars_of_the_tested_timeframe() -> None:
    rows = [*flat(1.10000, 60), BULL, *flat(1.10050, 119)]  # the H1 bar 11:00 holds the dip at 11:00:20
    srv = server({"EURUSD": bars("EURUSD", rows)})
    srv.trigger_bars = {"EURUSD": resample(srv.market.m1["EURUSD"], Timeframe.H1, "UTC")}
    _stopped_buy(srv, 1.09950)
    hour = 60 * MIN
    assert srv.advance(T0 + hour + 30 * MIN) == []  # the 11:00 bar is still forming at 11:30
    deals = srv.advance(T0 + 2 * hour)
    assert [(d.time, d.price, d.reason) for d in deals] == [(T0 + hour, 1.09950, C.DEAL_REASON_SL)]


def _real_market() -> MarketData:
    """M1 bars built from recorded ticks; the 10:01 bar's ticks: 10:01:05 (low), :30 (high), :50."""
    rows = [(1.10000, 1.10000, 1.10000, 1.10000), (1.10010, 1.10040, 1.09990, 1.10020)]
    m1 = bars("EURUSD", rows, spread=5)
    times = [T0 + 10 * SEC, T0 + MIN + 5 * SEC, T0 + MIN + 30 * SEC, T0 + MIN + 50 * SEC]
    bids = [1.10000, 1.09990, 1.10040, 1.10020]
    n = len(times)
    ticks = Ticks(
        "EURUSD",
        np.array(times, np.int64),
        np.array(bids),
        np.array(bids) + 0.00005,
        np.zeros(n),
        np.zeros(n, np.int64),
        np.full(n, 6, np.int32),
    )
    cfg = parse_config({"backtest": {"start": "2024-01-01", "end": "2024-02-01", "symbols": ["EURUSD"]}})
    return MarketData({"EURUSD": m1}, {"EURUSD": cfg.symbol_spec("EURUSD")}, "UTC", ticks={"EURUSD": ticks})


def test_real_ticks_forming_bar_is_built_from_the_recorded_ticks_so_far() -> None:
    md = _real_market()
    md.set_time(T0 + MIN + 2 * SEC)  # the 10:01 bar has no tick yet: index 0 is still the 10:00 bar
    assert md.copy_rates_from_pos("EURUSD", C.TIMEFRAME_M1, 0, 1)[-1]["time"] == T0 // SEC
    assert md.tick("EURUSD").bid == 1.10000
    md.set_time(T0 + MIN + 40 * SEC)
    bar = md.copy_rates_from_pos("EURUSD", C.TIMEFRAME_M1, 0, 1)[-1]
    tick = md.tick("EURUSD")
    assert (bar["time"], bar["high"], bar["low"], bar["close"], bar["tick_volume"]) == (
        (T0 + MIN) // SEC,
        1.10040,
        1.09990,
        1.10040,
        2,
    )
    assert tick.bid == bar["close"] == md.quote_at("EURUSD", T0 + MIN + 40 * SEC)[0]


def test_every_tick_quote_ticks_and_fill_are_the_generated_ticks_up_to_t() -> None:
    from mt5tester.terminal.server import ServerSettings
    from mt5tester.terminal.ticks import generate_ticks

    m1 = bars("EURUSD", [*flat(1.10000, 1), BULL, *flat(1.10050, 3)], spread=7)
    m1.tick_volume[1] = 40  # 40 generated ticks inside the 10:01 bar
    cfg = parse_config({"backtest": {"start": "2024-01-01", "end": "2024-02-01", "symbols": ["EURUSD"]}})
    md = MarketData({"EURUSD": m1}, {"EURUSD": cfg.symbol_spec("EURUSD")}, "UTC", tick_seed=42)
    srv = TradeServer(md, ServerSettings(tick_mode="every_tick", seed=42))
    gen = generate_ticks(m1, 1e-5, 42, 1, 2)
    for s in (0, 7, 31, 44, 59):
        t = T0 + MIN + s * SEC
        i = int(np.searchsorted(gen.time, t, "right")) - 1
        srv.advance(t)
        md.set_time(t)
        srv.now = t
        tick = md.tick("EURUSD")
        ticks = md.copy_ticks_range("EURUSD", (T0 + MIN) // SEC, t // SEC + 1, C.COPY_TICKS_ALL)
        assert (tick.bid, tick.ask, tick.time_msc) == (gen.bid[i], gen.ask[i], gen.time[i] // 1_000_000)
        assert list(ticks["bid"]) == list(gen.bid[: i + 1])  # every tick so far, none after t
        assert md.copy_rates_from_pos("EURUSD", C.TIMEFRAME_M1, 0, 1)[-1]["close"] == gen.bid[i]
        r = srv.send(buy("EURUSD", 0.1))
        assert (r.price, r.bid) == (gen.ask[i], gen.bid[i])


def test_position_opened_inside_a_bar_sees_that_bars_later_ticks_only() -> None:
    srv = server({"EURUSD": bars("EURUSD", [*flat(1.10000, 1), BULL, *flat(1.10050, 3)])})
    srv.advance(T0 + MIN + 5 * SEC)
    srv.now = T0 + MIN + 5 * SEC
    srv.send(buy("EURUSD", 0.1, sl=1.09950))  # at the open tick 1.10000; the Low 1.09900 comes at +20 s
    deals = srv.advance(T0 + MIN + 25 * SEC)
    assert [(d.time, d.price, d.reason) for d in deals] == [(T0 + MIN + 20 * SEC, 1.09950, C.DEAL_REASON_SL)]
    srv.now = T0 + MIN + 45 * SEC  # after the Low (+20 s) and the High (+40 s): bid 1.10100
    srv.send(buy("EURUSD", 0.1, sl=1.09950, tp=1.10120))
    assert (
        srv.advance(T0 + 3 * MIN) == []
    )  # the bar's earlier Low is not a trigger; the close 1.10050 is none


def test_sl_added_later_is_not_hit_by_prices_before_it_was_set() -> None:
    srv = server({"EURUSD": bars("EURUSD", [*flat(1.10000, 1), BULL, *flat(1.10050, 3)])})
    r = srv.send(buy("EURUSD", 0.1))  # no SL: the position is not replayed
    srv.advance(T0 + 3 * MIN)
    srv.now = T0 + 3 * MIN
    req = TradeRequest(action=C.TRADE_ACTION_SLTP, symbol="EURUSD", position=r.order, sl=1.09950)
    assert srv.send(req).retcode == C.TRADE_RETCODE_DONE
    assert srv.advance(T0 + 5 * MIN) == []  # the 10:01 Low (1.09900) was before the SL existed
    assert len(srv.positions) == 1
