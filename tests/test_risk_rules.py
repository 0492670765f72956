"""One scenario per coordinator rule: an entry that passes and one rejected or resized, with the exact
reason code and the numbers behind it. The market and account are read through a SimTerminal's
MetaTrader5 module over hand-made bars (tests/test_risk_world.py)."""

from __future__ import annotations

from typing import Any

import pytest

from mt5tester.config import CoordinatorConfig
from mt5tester.risk.coordinator import Coordinator, Decision
from test_risk_world import MIN, T0, Row, World, flat, fx_world, review, sc, sig, world

OK = ("approved", 0.1)


def brief(ds: list[Decision]) -> list[tuple[str, float] | tuple[str, float, str | None, str | None]]:
    return [
        (d.status, d.volume) if d.status == "approved" else (d.status, d.volume, d.rule, d.reason) for d in ds
    ]


# --------------------------------------------------------------------------------------------- counts
def test_max_positions_counts_open_positions_and_earlier_approvals() -> None:
    w = fx_world()
    w.open("EURUSD", 0.1)
    w.open("GBPUSD", 0.1)
    d = review(w, {"max_positions": 2}, [(sig("USDJPY"), sc())])
    assert d == [Decision("rejected", 0.0, "max_positions", "max_positions", {"limit": 2, "value": 2})]
    d = review(w, {"max_positions": 3}, [(sig("USDJPY"), sc()), (sig("EURGBP"), sc())])
    assert d[0] == Decision("approved", 0.1)  # 2 open < 3
    assert d[1].details == {"limit": 3, "value": 3}  # the first entry of this review counts


def test_max_positions_per_symbol() -> None:
    w = fx_world()
    w.open("EURUSD", 0.1)
    d = review(w, {"max_positions_per_symbol": 1}, [(sig("EURUSD"), sc()), (sig("GBPUSD"), sc())])
    assert d[0] == Decision(
        "rejected",
        0.0,
        "max_positions_per_symbol",
        "max_positions_per_symbol",
        {"limit": 1, "value": 1, "symbol": "EURUSD"},
    )
    assert brief(d[1:]) == [OK]


def test_max_positions_per_strategy_uses_engine_ownership() -> None:
    w = fx_world()
    ticket = w.open("EURUSD", 0.1)
    items = [(sig("GBPUSD", strategy="a"), sc("a")), (sig("GBPUSD", strategy="b"), sc("b"))]
    d = review(w, {"max_positions_per_strategy": 1}, items, owners={ticket: "a"})
    assert d[0] == Decision(
        "rejected",
        0.0,
        "max_positions_per_strategy",
        "max_positions_per_strategy",
        {"limit": 1, "value": 1, "strategy": "a"},
    )
    assert brief(d[1:]) == [OK]
    # a position the engine does not attribute belongs to no strategy
    assert brief(review(w, {"max_positions_per_strategy": 1}, items)) == [OK, OK]


def test_exits_pass_even_when_full() -> None:
    w = fx_world()
    w.open("EURUSD", 0.1)
    assert review(w, {"max_positions": 1}, [(sig("EURUSD", "flat"), sc())]) == [Decision("approved", 0.0)]


# ------------------------------------------------------------------------------------------ conflicts
def conflict(policy: str | None, buy_conf: float = 0.9, same: bool = False) -> list[Decision]:
    w = fx_world()
    items = [
        (sig("EURUSD", "buy", "a", buy_conf), sc("a", 0.3)),
        (sig("EURUSD", "sell", "a" if same else "b", 0.6), sc("a" if same else "b", 0.1)),
        (sig("GBPUSD", "sell", "c", 0.1), sc("c", 0.1)),
    ]
    return review(w, {"conflict_policy": policy}, items)


def test_conflict_reject_both() -> None:
    d = conflict("reject_both")
    sides = {"symbol": "EURUSD", "buy_strategies": ["a"], "sell_strategies": ["b"]}
    assert d[:2] == [Decision("rejected", 0.0, "conflict", "conflict_rejected", sides)] * 2
    assert brief(d[2:]) == [OK]
    assert brief(conflict(None)) == [("approved", 0.3), OK, OK]  # off: both pass
    assert brief(conflict("reject_both", same=True)) == [
        ("approved", 0.3),
        OK,
        OK,
    ]  # one strategy: no conflict


def test_conflict_highest_confidence() -> None:
    d = conflict("highest_confidence")
    assert brief(d) == [("approved", 0.3), ("rejected", 0.0, "conflict", "conflict_lower_confidence"), OK]
    assert (d[1].details["confidence"], d[1].details["winner_confidence"]) == (0.6, 0.9)
    assert [x.reason for x in conflict("highest_confidence", buy_conf=0.6)[:2]] == ["conflict_tie"] * 2


def test_conflict_net() -> None:
    d = conflict("net")
    # buy 0.3 - sell 0.1 = net buy 0.2: the buy is resized to 0.2, the sell rejected
    numbers = {
        "symbol": "EURUSD",
        "buy_volume": 0.3,
        "sell_volume": 0.1,
        "net": 0.2,
        "buy_strategies": ["a"],
        "sell_strategies": ["b"],
    }
    assert d[0] == Decision("resized", 0.2, "conflict", "conflict_netted", numbers | {"volume_before": 0.3})
    assert d[1] == Decision("rejected", 0.0, "conflict", "conflict_netted", numbers)
    assert brief(d[2:]) == [OK]


# ------------------------------------------------------------------------------------------ total risk
def test_total_open_risk_reject_and_resize() -> None:
    w = fx_world()
    w.open("EURUSD", 0.5, sl=1.09900)  # 100 points × 1 USD × 0.5 lots = 50 USD at risk
    cfg: dict[str, Any] = {"max_total_risk_pct": 1.0}  # 100 USD of 10,000
    # GBPUSD SL 0.00200: 200 USD per lot; 0.25 lots -> 50 -> total 100 <= 100
    assert brief(review(w, cfg, [(sig("GBPUSD"), sc(volume=0.25, sl=0.002))])) == [("approved", 0.25)]
    d = review(w, cfg, [(sig("GBPUSD"), sc(volume=0.3, sl=0.002))])
    numbers = {
        "limit": 100.0,
        "value": 110.0,
        "open_risk": 50.0,
        "new_risk": 60.0,
        "unprotected_positions": 0,
    }
    assert d == [Decision("rejected", 0.0, "max_total_risk", "max_total_risk", numbers)]
    d = review(w, cfg | {"total_risk_policy": "resize"}, [(sig("GBPUSD"), sc(volume=0.3, sl=0.002))])
    # (100 - 50) / 200 = 0.25 lots
    assert d == [
        Decision("resized", 0.25, "max_total_risk", "max_total_risk", numbers | {"volume_before": 0.3})
    ]
    assert review(w, cfg, [(sig("GBPUSD"), sc())])[0].reason == "no_stop_loss"


# ------------------------------------------------------------------------------------ currency exposure
def test_currency_exposure_reject_and_resize() -> None:
    w = fx_world()
    w.open("EURUSD", 0.5)  # long EUR 0.5 × 100,000 × 1.10 = 55,000 USD
    cfg: dict[str, Any] = {"max_currency_exposure": {"EUR": 120_000}}
    # EURGBP 1 lot = 0.85 × 1.25 / 0.00001 = 106,250 USD; 0.5 lots -> EUR 55,000 + 53,125 = 108,125
    assert brief(review(w, cfg, [(sig("EURGBP"), sc(volume=0.5))])) == [("approved", 0.5)]
    d = review(w, cfg, [(sig("EURGBP"), sc(volume=0.7))])  # 55,000 + 74,375 = 129,375 > 120,000
    numbers = {"currency": "EUR", "limit": 120_000, "value": 129_375.0, "before": 55_000.0}
    assert d == [Decision("rejected", 0.0, "max_currency_exposure", "max_currency_exposure", numbers)]
    d = review(w, cfg | {"exposure_policy": "resize"}, [(sig("EURGBP"), sc(volume=0.7))])
    # (120,000 - 55,000) / 106,250 = 0.6118 -> 0.61 lots
    assert (d[0].status, d[0].volume, d[0].details["volume_before"]) == ("resized", 0.61, 0.7)
    # selling EUR reduces the exposure: allowed at any size under the limit
    assert brief(review(w, cfg, [(sig("EURGBP", "sell"), sc(volume=1.5))])) == [("approved", 1.5)]
    # '*' applies to every currency but the deposit currency: selling 1 lot EURGBP leaves EUR at
    # 55,000 - 106,250 = -51,250 (inside) but makes GBP +106,250 > 100,000
    d = review(w, {"max_currency_exposure": {"*": 100_000}}, [(sig("EURGBP", "sell"), sc(volume=1.0))])
    assert (d[0].reason, d[0].details["currency"], d[0].details["value"]) == (
        "max_currency_exposure",
        "GBP",
        106_250.0,
    )


# ------------------------------------------------------------------------------------------ correlation
R = 0.001
X = [R, -R, R, -R, R, -R, R, -R, R, -R]  # EURUSD returns
Y = [R, -R, R, -R, R, -R, R, -R, -R, R]  # GBPUSD returns: corr(X, Y) = (8 - 2) / 10 = 0.6


def path(start: float, returns: list[float], after: float) -> list[Row]:
    """Closed bars at minutes 0..10 following ``returns`` (from minute 1), then ``after`` from minute 11."""
    closes = [start, start]
    for r in returns[:-1]:
        closes.append(closes[-1] * (1 + r))
    rows = [(c, c, c, c) for c in closes]
    last = closes[-1] * (1 + returns[-1])
    return rows + [(last, last, last, last)] + flat(after, 20)


def corr_world() -> World:
    # window 10 needs 11 closed bars: minutes 1..11 at the clock T0 + 12 min. The forming bar (minute 12)
    # jumps to a far price, which would change every correlation if it were read.
    bars = {
        "EURUSD": path(1.1, X, 1.3),
        "GBPUSD": path(1.25, Y, 1.0),
        "USDJPY": path(150.0, [-r for r in X], 100.0),
    }
    return world(bars, minute=12)


def test_correlation_filter_on_closed_bars() -> None:
    w = corr_world()
    w.open("EURUSD", 0.1)
    cfg: dict[str, Any] = {"max_correlation": 0.5, "correlation_window": 10, "correlation_timeframe": "M1"}
    d = review(
        w,
        cfg,
        [
            (sig("GBPUSD", "buy"), sc()),  # +0.6 with a long EURUSD: rejected
            (sig("GBPUSD", "sell"), sc()),  # -0.6: passes
        ],
    )
    numbers = {
        "symbol": "EURUSD",
        "value": 0.6,
        "correlation": 0.6,
        "limit": 0.5,
        "window": 10,
        "timeframe": "M1",
    }
    assert d[0] == Decision("rejected", 0.0, "max_correlation", "max_correlation", numbers)
    assert brief(d[1:]) == [OK]
    # USDJPY moves against EURUSD (corr -1): buying it hedges, selling it doubles the USD short
    d = review(w, cfg, [(sig("USDJPY", "buy"), sc()), (sig("USDJPY", "sell"), sc())])
    assert brief(d[:1]) == [OK]
    assert (d[1].reason, d[1].details["value"], d[1].details["correlation"]) == ("max_correlation", 1.0, -1.0)
    # resize: 1.0 lot × (1 - 0.6) / (1 - 0.5) = 0.8
    d = review(w, cfg | {"correlation_policy": "resize"}, [(sig("GBPUSD"), sc(volume=1.0))])
    assert d == [
        Decision("resized", 0.8, "max_correlation", "max_correlation", numbers | {"volume_before": 1.0})
    ]


def test_correlation_window_counts_only_the_last_returns() -> None:
    w = corr_world()
    w.open("EURUSD", 0.1)
    # last 4 returns: X = R,-R,R,-R; Y = R,-R,-R,R -> sum of products 0 -> corr 0
    d = review(
        w,
        {"max_correlation": 0.5, "correlation_window": 4, "correlation_timeframe": "M1"},
        [(sig("GBPUSD"), sc())],
    )
    assert brief(d) == [OK]


# ------------------------------------------------------------------------------------------ free margin
def test_free_margin_floor_via_order_check() -> None:
    w = fx_world()  # EURUSD 1.10000, 1:100: 1 lot = 1,100 USD margin; equity 10,000
    cfg: dict[str, Any] = {"min_free_margin_pct": 50.0}  # floor 5,000
    assert brief(review(w, cfg, [(sig("EURUSD"), sc(volume=4.0))])) == [("approved", 4.0)]  # free 5,600
    d = review(w, cfg, [(sig("EURUSD"), sc(volume=5.0))])  # free 4,500
    assert d == [
        Decision(
            "rejected",
            0.0,
            "min_free_margin",
            "min_free_margin",
            {"floor": 5000.0, "value": 4500.0, "margin": 5500.0},
        )
    ]
    # two entries in one review: GBPUSD 4 lots at 1.25 needs 5,000; order_check says 5,000 free, less
    # the 4,400 of the EURUSD entry approved before it = 600
    d = review(w, cfg, [(sig("EURUSD"), sc(volume=4.0)), (sig("GBPUSD"), sc(volume=4.0))])
    assert brief(d[:1]) == [("approved", 4.0)] and d[1].details["value"] == 600.0
    # a money floor: 6,000 > 5,600
    d = review(w, {"min_free_margin": 6000.0}, [(sig("EURUSD"), sc(volume=4.0))])
    assert (d[0].reason, d[0].details["floor"], d[0].details["value"]) == ("min_free_margin", 6000.0, 5600.0)


# -------------------------------------------------------------------------------------- circuit breaker
def breaker_world() -> World:
    # EURUSD 1.10000 for 10 minutes, then 1.09700: a 1-lot buy loses 300 USD (3% of 10,000)
    w = world({"EURUSD": flat(1.1, 10) + flat(1.097, 30), "GBPUSD": flat(1.25, 40)}, minute=1)
    w.open("EURUSD", 1.0)
    return w


def test_daily_loss_limit_from_the_server_day_start() -> None:
    w = breaker_world()
    coord = Coordinator(CoordinatorConfig(daily_loss_limit_pct=2.0, close_all_on_breach=True), w.mt5)
    coord.observe(w.server_time)  # day start equity 10,000
    assert brief(review(w, coord, [(sig("GBPUSD"), sc())])) == [OK]
    w.at(12)
    d = review(w, coord, [(sig("GBPUSD"), sc())])
    numbers = {"limit": 2.0, "value": 3.0, "day_start_equity": 10000.0, "equity": 9700.0, "close_all": True}
    assert d == [Decision("rejected", 0.0, "circuit_breaker", "daily_loss_limit", numbers)]
    # the next server day starts from 9,700
    assert brief(review(w, coord, [(sig("GBPUSD"), sc())], server_time=w.server_time + 86_400)) == [OK]
    loose = Coordinator(CoordinatorConfig(daily_loss_limit_pct=5.0), w.mt5)
    loose.observe(w.server_time - 11 * 60)
    assert brief(review(w, loose, [(sig("GBPUSD"), sc())])) == [OK]


def test_max_drawdown_latches() -> None:
    w = breaker_world()
    coord = Coordinator(CoordinatorConfig(max_drawdown_pct=2.5), w.mt5)
    coord.observe(w.server_time)  # peak 10,000
    assert brief(review(w, coord, [(sig("GBPUSD"), sc())])) == [OK]
    w.at(12)
    numbers = {"limit": 2.5, "value": 3.0, "peak": 10000.0, "equity": 9700.0}
    expected = [Decision("rejected", 0.0, "circuit_breaker", "max_drawdown", numbers)]
    assert review(w, coord, [(sig("GBPUSD"), sc())]) == expected
    assert review(w, coord, [(sig("GBPUSD"), sc())], server_time=w.server_time + 86_400) == expected


# ------------------------------------------------------------------------------------------- sessions
def at_1000(cfg: dict[str, Any], server_time: int | None = None) -> Decision:
    w = fx_world(minute=0)  # Tuesday 10:00 server time
    return review(w, cfg, [(sig("EURUSD"), sc())], server_time=server_time)[0]


def test_blocked_windows_sessions_and_weekends() -> None:
    blocked = {"blocked": [{"days": ["tue"], "from": "09:55", "to": "10:10"}]}
    assert at_1000(blocked) == Decision(
        "rejected",
        0.0,
        "sessions",
        "blocked_window",
        {"window": "tue 09:55-10:10", "server_time": "tue 10:00"},
    )
    assert at_1000({"blocked": [{"days": ["mon"], "from": "09:55", "to": "10:10"}]}).status == "approved"
    # a window past midnight belongs to the day it starts: Monday 22:00 -> Tuesday 10:05
    assert (
        at_1000({"blocked": [{"days": ["mon"], "from": "22:00", "to": "10:05"}]}).reason == "blocked_window"
    )
    assert (
        at_1000({"sessions": [{"from": "08:00", "to": "10:00"}]}).reason == "outside_session"
    )  # `to` excluded
    assert at_1000({"sessions": [{"from": "08:00", "to": "10:01"}]}).status == "approved"
    saturday = int(T0 / 1e9) + 4 * 86_400  # 2024-01-06 10:00
    d = at_1000({"block_weekends": True}, server_time=saturday)
    assert (d.reason, d.details) == ("weekend", {"server_time": "sat 10:00"})
    assert at_1000({"block_weekends": True}).status == "approved"
    assert MIN == 60 * 10**9


# ----------------------------------------------------------------------------------------------- regime
def test_regime_gate_and_regime_risk() -> None:
    w = fx_world()
    cfg = {"regime_gate": {"a": ["trend"]}, "regime_risk": {"range": 0.5}}
    d = review(
        w,
        cfg,
        [
            (sig("EURUSD"), sc("a", 0.3, regime="trend")),
            (sig("EURUSD"), sc("a", 0.3, regime="range")),
            (sig("EURUSD"), sc("a", 0.3)),
            (sig("EURUSD", strategy="b"), sc("b", 0.3, regime="range")),  # ungated; 0.3 × 0.5
        ],
    )
    assert brief([d[0], d[3]]) == [("approved", 0.3), ("approved", 0.15)]
    assert d[1] == Decision(
        "rejected",
        0.0,
        "regime_gate",
        "regime_not_allowed",
        {"strategy": "a", "regime": "range", "allowed": ["trend"]},
    )
    assert d[2].details["regime"] is None and d[2].reason == "regime_not_allowed"


@pytest.mark.parametrize("policy", ["reject", "resize"])
def test_a_resize_below_min_is_a_rejection(policy: str) -> None:
    w = fx_world()
    w.open("EURUSD", 0.5, sl=1.09900)  # 50 USD at risk; limit 50.5 USD leaves 0.0025 lots
    d = review(w, {"max_total_risk_pct": 0.505, "total_risk_policy": policy}, [(sig("GBPUSD"), sc(sl=0.002))])
    assert (d[0].rule, d[0].reason) == (
        "max_total_risk",
        "max_total_risk" if policy == "reject" else "size_below_min",
    )
