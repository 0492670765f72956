"""Sizing against hand computation with the terminal's tick values (spec 3.5, 5.6, 5.8).

USD account, equity 10,000; 1% risk = 100 USD; a 20-pip SL = 200 points.
"""

from __future__ import annotations

from mt5tester.config import SizingConfig
from mt5tester.model.timeframe import Timeframe
from mt5tester.risk.decision import Decision
from mt5tester.risk.exposure import Mt5View
from mt5tester.risk.sizing import SizeResult, atr, size
from test_risk_world import World, fx_world, review, sc, sig, world

RISK = SizingConfig(mode="risk", risk_pct=1.0)


def vol(w: World, cfg: SizingConfig | None, symbol: str, sl: float | None, mult: float = 1.0) -> SizeResult:
    return size(cfg, Mt5View(w.mt5), symbol, 0.1, sl, 10_000.0, mult)


def test_risk_sizing_on_four_symbols_hand_computed() -> None:
    w = fx_world()
    # EURUSD: SL 0.00200 = 200 ticks × 1.00 USD = 200 USD per lot -> 100 / 200 = 0.50 lots
    assert vol(w, RISK, "EURUSD", 0.00200).volume == 0.5
    # USDJPY at 150.000: SL 0.200 = 200 ticks × 0.66666222 = 133.332444 USD/lot -> 0.750002 -> 0.75
    r = vol(w, RISK, "USDJPY", 0.200)
    assert (r.volume, r.details["money_per_lot"], r.details["tick_value"]) == (0.75, 133.332444, 0.66666222)
    # EURGBP with GBPUSD 1.25: 200 ticks × 1.25 = 250 USD/lot -> 0.40
    assert vol(w, RISK, "EURGBP", 0.00200).volume == 0.4
    # XAUUSD at 2000.00 (contract 100, point 0.01): SL 2.00 = 200 ticks × 1.00 = 200 USD/lot -> 0.50
    assert vol(w, RISK, "XAUUSD", 2.00).volume == 0.5
    # XAUUSD SL 15.00 = 1500 ticks -> 1500 USD/lot -> 0.0667 -> rounded DOWN to 0.06
    assert vol(w, RISK, "XAUUSD", 15.00).volume == 0.06


def test_size_below_min_and_volume_max_clip() -> None:
    w = fx_world(symbols={"XAUUSD": {"volume_max": 0.3}})
    # 0.1% risk = 10 USD; 1500 USD/lot -> 0.00667 < volume_min 0.01
    r = vol(w, SizingConfig(mode="risk", risk_pct=0.1), "XAUUSD", 15.00)
    assert (r.volume, r.reason, r.details["raw"]) == (0.0, "size_below_min", 0.00666667)
    # 0.50 lots clipped to volume_max 0.3
    assert vol(w, RISK, "XAUUSD", 2.00).volume == 0.3
    # risk sizing without a stop loss cannot size
    assert vol(w, RISK, "EURUSD", None).reason == "no_stop_loss"


def test_fixed_lots_requested_volume_and_regime_multiplier() -> None:
    w = fx_world()
    assert vol(w, None, "EURUSD", None).volume == 0.1  # no sizing config: the requested volume as is
    assert vol(w, SizingConfig(lots=0.3), "EURUSD", None).volume == 0.3
    assert vol(w, SizingConfig(lots=0.3), "EURUSD", None, 0.5).volume == 0.15
    assert vol(w, None, "EURUSD", None, 0.25).volume == 0.02  # 0.1 × 0.25 = 0.025 -> 0.02
    assert vol(w, RISK, "EURUSD", 0.00200, 0.5).volume == 0.25  # 0.50 × 0.5


def test_volatility_sizing_uses_atr_of_closed_bars_only() -> None:
    # 20 closed M1 bars with high-low 0.00080 around a flat close: true range 0.00080; then, from the
    # forming bar on, ranges of 0.01000 that must not count.
    calm = [(1.1, 1.1004, 1.0996, 1.1)] * 20
    wild = [(1.1, 1.105, 1.095, 1.1)] * 20
    w = world({"EURUSD": calm + wild}, minute=20)
    cfg = SizingConfig(mode="volatility", risk_pct=1.0, atr_period=14, atr_timeframe=Timeframe.M1)
    r = vol(w, cfg, "EURUSD", None)
    # ATR 0.00080 = 80 ticks × 1 USD = 80 USD per lot -> 100 / 80 = 1.25 lots
    assert (r.volume, r.details["atr"], r.details["money_per_lot"]) == (1.25, 0.0008, 80.0)
    # not enough closed bars for the period
    r = vol(w, SizingConfig(mode="volatility", atr_period=30, atr_timeframe=Timeframe.M1), "EURUSD", None)
    assert r.reason == "no_atr"


def test_atr_true_range_uses_previous_close() -> None:
    import numpy as np

    rates = np.array(
        [(0, 1.0, 1.0, 1.0, 1.0), (0, 1.2, 1.3, 1.2, 1.25), (0, 1.0, 1.1, 1.0, 1.05)],
        dtype=[("time", "i8"), ("open", "f8"), ("high", "f8"), ("low", "f8"), ("close", "f8")],
    )
    # TR1 = max(0.1, |1.3 - 1.0|, |1.2 - 1.0|) = 0.3; TR2 = max(0.1, |1.1 - 1.25|, |1.0 - 1.25|) = 0.25
    assert round(atr(rates, 2) or 0.0, 10) == 0.275
    assert atr(rates, 3) is None


def test_coordinator_sizes_with_regime_risk_and_reports_size_below_min() -> None:
    w = fx_world()
    cfg = {"sizing": {"mode": "risk", "risk_pct": 1.0}, "regime_risk": {"range": 0.5}}
    d = review(
        w,
        cfg,
        [
            (sig("EURUSD"), sc(sl=0.00200, regime="trend")),  # 0.50 lots
            (sig("GBPUSD"), sc(sl=0.00200, regime="range")),  # 0.50 × 0.5 = 0.25
            (sig("USDJPY"), sc(sl=0.200, regime="range", mult=0.5)),  # 0.750002 × 0.5 × 0.5 -> 0.18
            (sig("XAUUSD"), sc(sl=150.00)),  # 15000 USD/lot -> 0.00667 -> size_below_min
        ],
    )
    assert [(x.status, x.volume) for x in d] == [
        ("approved", 0.5),
        ("approved", 0.25),
        ("approved", 0.18),
        ("rejected", 0.0),
    ]
    assert (d[3].rule, d[3].reason, d[3].details["raw"]) == ("sizing", "size_below_min", 0.00666667)
    assert d[1].details["sizing"]["multiplier"] == 0.5


def test_exits_are_approved_without_sizing() -> None:
    w = fx_world()
    assert review(w, {"sizing": {"mode": "risk"}}, [(sig("EURUSD", "flat"), sc())]) == [
        Decision("approved", 0.0)
    ]
