"""Every documented coordinator key has an effect: for each key, two configs differing only in that key
give different decisions on one fixed scenario. A new key without a case here fails the test."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mt5tester.config import CoordinatorConfig, SizingConfig, TimeWindowConfig
from mt5tester.risk.coordinator import Coordinator, Decision
from test_risk_rules import X, Y, path
from test_risk_world import Row, review, sc, sig, world

H = 0.0001


def ranged(rows: list[Row]) -> list[Row]:
    """Give bar i a high/low of close ± H × (i % 4), so ATRs of different periods differ."""
    return [(o, max(o, c) + H * (i % 4), min(o, c) - H * (i % 4), c) for i, (o, _, _, c) in enumerate(rows)]


def scenario(cfg: dict[str, Any]) -> list[Decision]:
    """EURUSD falls to 1.09 at the forming bar; a 0.5-lot EURUSD buy of strategy 'a' (SL 1.05) is open
    since minute 1 (equity then 10,000, now 9,500). Four entries at Tuesday 10:12, then the same four
    with the server clock on Saturday 10:12."""
    w = world(
        {
            "EURUSD": ranged(path(1.1, X, 1.09)),
            "GBPUSD": ranged(path(1.25, Y, 1.25)),
            "USDJPY": ranged(path(150.0, [-r for r in X], 150.0)),
        },
        minute=1,
    )
    ticket = w.open("EURUSD", 0.5, sl=1.05)
    coord = Coordinator(CoordinatorConfig.model_validate(cfg), w.mt5)
    coord.observe(w.server_time)
    w.at(12)
    items = [
        (sig("EURUSD", "buy", "a", 0.9), sc("a", 0.3, 0.002, "trend")),
        (sig("EURUSD", "sell", "b", 0.6), sc("b", 0.1, 0.002, "range")),
        (sig("GBPUSD", "buy", "a"), sc("a", 0.5, 0.002, "trend")),
        (sig("USDJPY", "sell", "c"), sc("c", 0.2, 0.2)),
    ]
    owners = {ticket: "a"}
    return review(w, coord, items, owners) + review(w, coord, items, owners, w.server_time + 4 * 86_400)


WINDOW = [{"from": "10:00", "to": "11:00"}]
CORR = {"max_correlation": 0.5, "correlation_window": 10, "correlation_timeframe": "M1"}
VOLA = {"mode": "volatility", "atr_timeframe": "M1", "atr_period": 10}

# key -> (base config, value of that key in the other config)
CASES: dict[str, tuple[dict[str, Any], Any]] = {
    "max_positions": ({}, 1),
    "max_positions_per_symbol": ({}, 1),
    "max_positions_per_strategy": ({}, 1),
    "conflict_policy": ({}, "reject_both"),
    "sizing": ({}, {"mode": "risk"}),
    "sizing.mode": ({"sizing": {"mode": "fixed"}}, "risk"),
    "sizing.lots": ({"sizing": {}}, 0.05),
    "sizing.risk_pct": ({"sizing": {"mode": "risk"}}, 0.5),
    "sizing.atr_period": ({"sizing": VOLA}, 3),
    "sizing.atr_timeframe": ({"sizing": VOLA | {"atr_period": 3}}, "M5"),
    "max_total_risk_pct": ({}, 0.5),
    "total_risk_policy": ({"max_total_risk_pct": 22.0}, "resize"),
    "max_currency_exposure": ({}, {"EUR": 10_000}),
    "exposure_policy": ({"max_currency_exposure": {"EUR": 80_000}}, "resize"),
    "max_correlation": ({k: v for k, v in CORR.items() if k != "max_correlation"}, 0.5),
    "correlation_window": ({k: v for k, v in CORR.items() if k != "correlation_window"}, 4),
    "correlation_timeframe": ({k: v for k, v in CORR.items() if k != "correlation_timeframe"}, "M1"),
    "correlation_policy": (CORR, "resize"),
    "min_free_margin_pct": ({}, 99.0),
    "min_free_margin": ({}, 9_000.0),
    "daily_loss_limit_pct": ({}, 1.0),
    "max_drawdown_pct": ({}, 1.0),
    "close_all_on_breach": ({"daily_loss_limit_pct": 1.0}, True),
    "block_weekends": ({}, True),
    "sessions": ({}, [{"from": "00:00", "to": "01:00"}]),
    "sessions[].days": ({"sessions": WINDOW}, ["mon"]),
    "sessions[].from": ({"sessions": WINDOW}, "10:30"),
    "sessions[].to": ({"sessions": WINDOW}, "10:05"),
    "blocked": ({}, WINDOW),
    "blocked[].days": ({"blocked": WINDOW}, ["mon"]),
    "blocked[].from": ({"blocked": WINDOW}, "10:30"),
    "blocked[].to": ({"blocked": WINDOW}, "10:05"),
    "regime_gate": ({}, {"a": ["range"]}),
    "regime_risk": ({}, {"trend": 0.5}),
    "risk_multiplier": ({}, 0.5),
}


def documented_keys() -> list[str]:
    keys = []
    for name, f in CoordinatorConfig.model_fields.items():
        assert f.description, f"coordinator.{name} has no description"
        keys.append(name)
    for prefix, model in (
        ("sizing.", SizingConfig),
        ("sessions[].", TimeWindowConfig),
        ("blocked[].", TimeWindowConfig),
    ):
        for name, f in model.model_fields.items():
            assert f.description, f"{prefix}{name} has no description"
            keys.append(prefix + (f.alias or name))
    return keys


def with_key(base: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    if "[]." in key:
        section, field = key.split("[].")
        out[section][0][field] = value
    elif "." in key:
        section, field = key.split(".")
        out[section][field] = value
    else:
        out[key] = value
    return out


def test_every_documented_key_has_a_case() -> None:
    assert sorted(documented_keys()) == sorted(CASES)


@pytest.mark.parametrize("key", sorted(CASES))
def test_key_changes_decisions(key: str) -> None:
    base, value = CASES[key]
    other = with_key(base, key, value)
    assert other != base
    a, b = scenario(base), scenario(other)
    assert a != b, f"coordinator.{key} = {value!r} changed no decision"


def test_defaults_approve_the_requested_volumes() -> None:
    assert [(d.status, d.volume) for d in scenario({})] == [
        ("approved", 0.3),
        ("approved", 0.1),
        ("approved", 0.5),
        ("approved", 0.2),
    ] * 2
