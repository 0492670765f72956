"""What the terminal keeps between calls to skip work gives the values it would compute afresh: the
floating profit per (time, deals, rollovers), each symbol's mark per time, the stop-out bound's
worst-of-history profit per position (rate-free symbols only), the stretch of bars a position's
levels are known not to touch (the replay skips its scan there)."""

from __future__ import annotations

import pandas as pd

from mt5tester.model import constants as C
from mt5tester.model.structs import TradeRequest
from mt5tester.terminal import money
from mt5tester.terminal.server import rollover_schedule
from test_server import MIN, T0, bars, buy, flat, sell, server


def test_floating_follows_deals_and_the_rollover_swap_at_one_time() -> None:
    # 0.1 lot EURUSD bought at 1.10000 (spread 0), priced 1.10100 from bar 1: +10.00 floating. A second
    # buy at the same time is a deal: the kept value is not reused. The swap of the server's midnight
    # (-5 points x 0.1 lot x 100,000 x 0.00001 = -0.50 each) enters the equity at the rollover.
    eur = bars("EURUSD", flat(1.1, 1) + flat(1.101, 60 * 24))
    srv = server(
        {"EURUSD": eur}, {"EURUSD": {"swap_long": -5.0, "swap_short": 0.0}}, deposit=10_000.0, leverage=100
    )
    srv.rollovers, srv.rollover_days = rollover_schedule(T0, pd.Timestamp("2024-01-08").value, "UTC")
    assert srv.send(buy("EURUSD", 0.1)).retcode == C.TRADE_RETCODE_DONE
    t = T0 + 2 * MIN
    srv.advance(t)
    srv.now = t
    assert (srv.floating(), srv.equity()) == (10.0, 10_010.0)
    assert srv.send(buy("EURUSD", 0.1)).retcode == C.TRADE_RETCODE_DONE  # at 1.10100: 0 floating
    assert (srv.floating(), srv.equity()) == (10.0, 10_010.0)
    assert srv.send(sell("EURUSD", 0.1)).retcode == C.TRADE_RETCODE_DONE  # a hedge at the bid: 0 too
    assert srv.floating() == 10.0 and len(srv.positions) == 3
    midnight = pd.Timestamp("2024-01-03T00:00Z").value
    assert srv.advance(midnight) == []
    srv.now = midnight
    swaps = [p.swap for p in srv.positions]
    assert swaps == [-0.5, -0.5, 0.0]  # swap_short 0: the hedge pays none
    assert (srv.floating(), srv.equity()) == (9.0, 10_009.0)


def test_mark_kept_per_time_equals_a_fresh_one() -> None:
    eur = bars("EURUSD", [(1.1, 1.1, 1.1, 1.1), (1.2, 1.2, 1.2, 1.2), (1.3, 1.3, 1.3, 1.3)], spread=10)
    srv = server({"EURUSD": eur})
    m = srv.inputs
    for k in (0, 1, 2, 1):
        kept = money._mark(m, "EURUSD", T0 + k * MIN + 1)
        m.memo.marks.clear()
        assert kept == money._mark(m, "EURUSD", T0 + k * MIN + 1)
    assert money._mark(m, "EURUSD", T0 + MIN + 1)[:2] == (1.2, 1.2001)


def test_stop_out_bound_keeps_only_rate_free_positions() -> None:
    # EURUSD's profit is in USD (rate-free: kept); EURGBP's needs GBPUSD at the time (never kept).
    eur = bars("EURUSD", flat(1.1, 10))
    egb = bars("EURGBP", flat(0.85, 10))
    gbp = bars("GBPUSD", flat(1.25, 10))
    srv = server({"EURUSD": eur, "EURGBP": egb, "GBPUSD": gbp}, deposit=10_000.0, leverage=100)
    assert srv.send(buy("EURUSD", 0.1)).retcode == C.TRADE_RETCODE_DONE
    assert srv.send(sell("EURGBP", 0.1, sl=0.9)).retcode == C.TRADE_RETCODE_DONE
    assert srv.advance(T0 + 3 * MIN) == []
    kept = srv.inputs.memo.worst_profit
    assert list(kept) == [("EURUSD", 0, 0.1, 1.1)]
    assert kept[("EURUSD", 0, 0.1, 1.1)] == money.profit_raw(
        srv.inputs, srv.inputs.specs["EURUSD"], True, 0.1, 1.1, 1.1, T0
    )


def test_sl_found_after_points_that_skipped_the_scan_and_after_a_modification() -> None:
    # Bid 1.1 for 100 minutes, then a bar down to 1.095. The first scan (at T0 + 10 min) runs past t
    # and finds the SL 1.096 at bar 100: the points before it skip the scan; the hit is the same deal.
    rows = flat(1.1, 100) + [(1.1, 1.1, 1.095, 1.095)] + flat(1.095, 100)
    srv = server({"EURUSD": bars("EURUSD", rows)}, deposit=10_000.0, leverage=100)
    assert srv.send(buy("EURUSD", 0.1, sl=1.096)).retcode == C.TRADE_RETCODE_DONE
    (p,) = srv.positions
    assert srv.advance(T0 + 10 * MIN) == []
    assert srv.state.memo.clear[p.ticket][1:] == (0, False, 100)  # bars 0..99 hold no hit for its levels
    assert srv.advance(T0 + 50 * MIN) == [] and p.cursor == 50  # the cursor moves on the bars closed
    assert srv.state.memo.clear[p.ticket][1:] == (0, False, 100)  # without a scan: the stretch is kept
    deals = srv.advance(T0 + 150 * MIN)
    assert [(d.reason, d.price, d.time) for d in deals] == [(C.DEAL_REASON_SL, 1.096, T0 + 100 * MIN)]
    # No hit at all within reach (SL 1.09): the stretch ends with the data; a modification to 1.097
    # is new levels, scanned afresh from its time.
    srv = server({"EURUSD": bars("EURUSD", rows)}, deposit=10_000.0, leverage=100)
    assert srv.send(buy("EURUSD", 0.1, sl=1.09)).retcode == C.TRADE_RETCODE_DONE
    (p,) = srv.positions
    assert srv.advance(T0 + 10 * MIN) == [] and srv.state.memo.clear[p.ticket][3] == len(rows)
    srv.now = T0 + 10 * MIN
    sltp = TradeRequest(action=C.TRADE_ACTION_SLTP, symbol="EURUSD", position=p.ticket, sl=1.097)
    assert srv.send(sltp).retcode == C.TRADE_RETCODE_DONE
    deals = srv.advance(T0 + 150 * MIN)
    assert [(d.reason, d.price, d.time) for d in deals] == [(C.DEAL_REASON_SL, 1.097, T0 + 100 * MIN)]
