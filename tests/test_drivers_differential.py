"""Driver (a), the Python loop, and driver (b), the whole run inside the compiled kernel, give the same
run: identical deals, orders, positions, signals, equity and balance (issue 14). Random signal streams
(seeded columns), hedging and netting, costs on and off, both bar tester modes, the count rules, and
stop-outs (which the kernel hands back to the loop: asserted, so the test cannot pass vacuously)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from mt5tester.config import Config
from mt5tester.engine.run import RunResult, run
from mt5tester.errors import ConfigError
from mt5tester.results import frames
from mt5tester.results.memory import MemorySink

from conftest import FIXTURES, base_config

COLUMNS = FIXTURES / "column_strategies.py"
TABLES = ("deals", "orders", "positions", "signals", "equity")
SKIP_FUNNEL = ("driver", "driver_reason", "kernel_seconds", "mean_call_us")


def _config(data: Path, tmp: Path, **kw: Any) -> Config:
    return Config.model_validate(_raw(data, tmp, **kw))


def _raw(data: Path, tmp: Path, **kw: Any) -> dict[str, Any]:
    raw = base_config(
        data, tmp, start="2024-01-02", end=kw.get("end", "2024-01-16"), symbols=kw.get("symbols", ["EURUSD"]),
        primary_timeframe=kw.get("tf", "M15"), warmup_bars=30, tester_mode=kw.get("mode", "ohlc_m1"),
        account_mode=kw.get("account", "hedging"), initial_deposit=kw.get("deposit", 10_000.0),
        leverage=kw.get("leverage", 100),
    )  # fmt: skip
    raw["strategies"] = [
        {
            "class": f"{COLUMNS}:{'RandomColumnStops' if kw.get('stops') else 'RandomColumn'}",
            "name": f"rnd{i}",
            "params": {"seed": seed, "density": kw.get("density", 0.2)},
            "symbols": kw.get("symbols", ["EURUSD"]),
            "timeframe": kw.get("tf", "M15"),
            "volume": round(kw.get("volume", 0.1) * (i + 1), 2),  # unequal: netting reverses
        }
        for i, seed in enumerate(kw.get("seeds", [1]))
    ]
    if kw.get("costs", True):
        raw["symbols"] = {"EURUSD": {"commission": 3.5, "swap_long": -6.1, "swap_short": 1.2}}
    else:
        raw["execution"] = {"commission": "none"}
        raw["symbols"] = {s: {"swap_long": 0.0, "swap_short": 0.0} for s in kw.get("symbols", ["EURUSD"])}
    if kw.get("slippage"):
        raw.setdefault("execution", {})["slippage"] = {"model": "fixed", "points": kw["slippage"]}
    if kw.get("limits"):
        raw["coordinator"] = dict(
            zip(("max_positions", "max_positions_per_symbol"), kw["limits"], strict=True)
        )
    if kw.get("gates"):
        raw["coordinator"] = raw.get("coordinator", {}) | kw["gates"]
    return raw


# Coordinator rules the kernel takes per signal before its run (engine/prereview.py): the clock's gates,
# fixed sizing and the risk multiplier (0.7 x 0.1 lots rounds down to 0.07; x 0.3 to 0.21).
GATES = {
    "block_weekends": True,
    "sessions": [{"from": "08:00", "to": "16:00"}, {"from": "22:00", "to": "01:00", "days": ["sun", "mon"]}],
    "blocked": [{"from": "12:00", "to": "12:30", "days": ["wed"]}],
    "risk_multiplier": 0.7,
}
FIXED = {"sizing": {"mode": "fixed", "lots": 0.2}, "risk_multiplier": 1.5}
# the circuit breakers, compiled (risk/breaker.py): on a 1M deposit, 100 a day and 500 from the peak
BREAKERS = {"daily_loss_limit_pct": 0.01, "max_drawdown_pct": 0.05}
# the money rules, compiled: total risk resized, free margin, risk-% sizing
MONEY = {
    "max_total_risk_pct": 0.02, "total_risk_policy": "resize", "min_free_margin_pct": 99.9,
    "sizing": {"mode": "risk", "risk_pct": 0.005},
}  # fmt: skip

# correlation (on M5 closes: some windows hold a flat series or too few common bars), currency exposure
# and conflicts (two strategies)
EXPOSURE = {
    "max_correlation": 0.2, "correlation_timeframe": "M5", "correlation_window": 5, "correlation_policy": "resize",
    "max_currency_exposure": {"*": 40_000}, "exposure_policy": "resize", "conflict_policy": "net",
}  # fmt: skip
CONFLICTS = {"conflict_policy": "highest_confidence", "max_correlation": 0.5, "correlation_timeframe": "M15"}
DRAW = {
    "seeds": [3, 4], "density": 0.3, "symbols": ["EURUSD", "USDJPY"], "tf": "M15", "mode": "ohlc_m1",
    "account": "hedging", "costs": True, "volume": 0.3, "slippage": 2, "limits": None, "stops": True,
}  # fmt: skip


# The random runs of both drivers: the same examples every time (derandomized, no deadline); a failing
# example is printed whole, not shrunk (shrinking takes minutes).
DIFFERENTIAL = settings(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.generate],
)


def _both(cfg: Config) -> tuple[RunResult, RunResult]:
    return run(cfg, sink=MemorySink(), driver="loop"), run(cfg, sink=MemorySink(), driver="auto")


def _assert_same(a: RunResult, b: RunResult) -> None:
    assert a.final_balance == b.final_balance
    for name in TABLES:
        x, y = getattr(a, name).reset_index(drop=True), getattr(b, name).reset_index(drop=True)
        pd.testing.assert_frame_equal(x, y, check_exact=True, obj=name)
    keep = [k for k in a.funnel if k not in SKIP_FUNNEL]
    assert {k: a.funnel[k] for k in keep} == {k: b.funnel[k] for k in keep}
    for r in (a, b):  # the funnel counted over the sink's column forms is the one counted over its rows
        sink = r.source
        if not isinstance(sink, MemorySink):
            continue
        by_rows = frames.funnel_from_rows(
            *(sink.rows(t) for t in ("signals", "deals", "strategy_errors", "equity"))
        )
        assert frames.funnel_from_columns(sink.form, sink.count("equity")) == by_rows


@settings(DIFFERENTIAL, max_examples=12)
@given(
    seeds=st.lists(st.integers(0, 10_000), min_size=1, max_size=2),
    density=st.sampled_from([0.05, 0.3]),
    symbols=st.sampled_from([["EURUSD"], ["EURUSD", "USDJPY"], ["USDJPY", "GBPUSD"]]),
    tf=st.sampled_from(["M5", "M15", "H1"]),
    mode=st.sampled_from(["open_prices", "ohlc_m1"]),
    account=st.sampled_from(["hedging", "netting"]),
    costs=st.booleans(),
    volume=st.sampled_from([0.1, 0.3]),
    slippage=st.sampled_from([0, 2]),
    limits=st.sampled_from([None, (3, 2), (50, 20)]),
    stops=st.booleans(),
    gates=st.sampled_from([None, GATES, FIXED, BREAKERS, MONEY, EXPOSURE, CONFLICTS]),
)
# the book-reading rules for sure (the draws follow the test's source): two strategies on two symbols
@example(**(DRAW | {"gates": EXPOSURE}))
@example(**(DRAW | {"gates": CONFLICTS, "account": "netting", "tf": "M5", "stops": False}))
def test_drivers_random_streams_identical_runs(
    demo_data: Path, tmp_path_factory: pytest.TempPathFactory, **kw: Any
) -> None:
    # A deposit far from any stop-out: the kernel runs the whole run (stop-outs: the test below).
    cfg = _config(demo_data, tmp_path_factory.mktemp("d"), deposit=1e6, **kw)
    a, b = _both(cfg)
    if kw["stops"] and kw["mode"] == "open_prices":
        why = "SL/TP in open_prices mode (the kernel resolves SL/TP on M1 bars: ohlc_m1)"
        assert b.funnel["driver_reason"] == why
    else:
        assert a.funnel["driver"] == "loop" and b.funnel["driver"] == "kernel", b.funnel["driver_reason"]
    _assert_same(a, b)
    if kw["gates"] is MONEY and not kw["stops"]:  # risk-% sizing without a stop loss sizes no entry
        assert set(b.signals["reason"]) == {"no_stop_loss"}
    else:
        assert a.deal_count > 1


def test_drivers_netting_reversals_and_rejections_exact(demo_data: Path, tmp_path: Path) -> None:
    cfg = _config(demo_data, tmp_path, seeds=[5, 6], account="netting", limits=(1, 1), density=0.3)
    a, b = _both(cfg)
    assert b.funnel["driver"] == "kernel"
    _assert_same(a, b)
    assert b.funnel["rejected"].get("max_positions", 0) > 0
    assert set(b.deals["entry"]) == {"in", "out"}
    # without the limits, one strategy's entry nets against the other's position: reduce or reverse
    a, b = _both(_config(demo_data, tmp_path, seeds=[5, 6], account="netting", density=0.3, deposit=1e6))
    assert b.funnel["driver"] == "kernel"
    _assert_same(a, b)
    assert set(b.deals["entry"]) == {"in", "out", "inout"}


def test_driver_stop_out_within_reach_hands_the_run_to_the_loop(demo_data: Path, tmp_path: Path) -> None:
    # 1 lot of EURUSD at 1:500 on 300: the account is stopped out 3 times; the kernel sees a stop-out
    # within reach after the first entry and the loop runs the whole run.
    cfg = _config(demo_data, tmp_path, deposit=300.0, volume=1.0, density=0.02, leverage=500)
    a, b = _both(cfg)
    assert (b.funnel["driver"], b.funnel["driver_reason"]) == (
        "loop",
        "a stop-out came within reach at 2024-01-03 09:15 UTC",
    )
    assert a.funnel["stop_outs"] == b.funnel["stop_outs"] == 3
    _assert_same(a, b)


def test_driver_reasons_name_the_first_obstacle(demo_data: Path, tmp_path: Path) -> None:
    cfg = _config(demo_data, tmp_path, mode="every_tick")
    r = run(cfg, sink=MemorySink())
    assert (r.funnel["driver"], r.funnel["driver_reason"]) == (
        "loop",
        "backtest.tester_mode every_tick (the kernel runs open_prices and ohlc_m1)",
    )
    raw = base_config(demo_data, tmp_path)  # ma_cross decides in Python
    r = run(Config.model_validate(raw), sink=MemorySink())
    assert r.funnel["driver_reason"] == "strategy ma decides in Python (neither column_signals nor bars_only)"
    with pytest.raises(
        ConfigError, match="driver 'kernel' asked for, but the run cannot use it: strategy ma"
    ):
        run(Config.model_validate(raw), sink=MemorySink(), driver="kernel")


@pytest.mark.parametrize("gates", [None, EXPOSURE])
def test_drivers_same_rows_through_the_sql_recorder(demo_data: Path, tmp_path: Path, gates: Any) -> None:
    # The default sink: the kernel's columns (Sink.add_columns) read back equal to the loop's rows (with
    # EXPOSURE: the correlation, currency and conflict details through JSON).
    cfg = _config(demo_data, tmp_path, seeds=[2, 3], account="netting", deposit=1e6, gates=gates)
    a, b = run(cfg, driver="loop"), run(cfg)
    assert b.funnel["driver"] == "kernel"
    _assert_same(a, b)
    assert len(b.signals) == b.funnel["signals_generated"] > 0
    if gates is not None:
        assert set(b.signals["rule"].dropna()) == {"conflict", "max_correlation"}


def test_cli_funnel_names_the_driver(demo_data: Path, tmp_path: Path, run_cli: Any) -> None:
    import yaml

    path = tmp_path / "k.yaml"
    path.write_text(yaml.safe_dump(_raw(demo_data, tmp_path, deposit=1e6)))
    code, out = run_cli("backtest", "--config", str(path))[:2]
    assert code == 0, out
    assert "kernel (compiled whole run)" in out


def test_drivers_sl_tp_hits_identical(demo_data: Path, tmp_path: Path) -> None:
    # Entries with SL/TP on M1 (ohlc_m1): hits closed by the kernel's replay, as by the loop's.
    for account in ("hedging", "netting"):
        cfg = _config(
            demo_data, tmp_path, seeds=[4, 9], stops=True, account=account, deposit=1e6, density=0.1
        )
        a, b = _both(cfg)
        assert b.funnel["driver"] == "kernel", b.funnel["driver_reason"]
        _assert_same(a, b)
        closed = b.funnel["closed"]
        assert closed["sl"] > 0 and closed["tp"] > 0, closed
        assert set(b.deals["reason"]) >= {"sl", "tp"}


@pytest.mark.parametrize(
    ("coordinator", "top", "rejected"),
    [
        # risk_multiplier alone: before the pre-review the kernel ran it at the strategy's volume
        ({"risk_multiplier": 0.5}, {}, {}),
        ({"sizing": {"mode": "fixed", "lots": 0.001}}, {}, {"size_below_min": 793}),
        (GATES | {"max_positions": 3}, {}, {"blocked_window": 1, "max_positions": 143, "outside_session": 493, "weekend": 11}),
        # a trading mode in force for the whole run: its sessions and multiplier, its name on every signal
        (
            {},
            {"trading_modes": {"calm": {"risk_multiplier": 0.5, "sessions": [{"from": "09:00", "to": "11:00"}]}},
             "trading_mode": "calm"},
            {"outside_session": 729},
        ),
    ],
)  # fmt: skip
def test_drivers_gates_sizing_and_modes_identical(
    demo_data: Path,
    tmp_path: Path,
    coordinator: dict[str, Any],
    top: dict[str, Any],
    rejected: dict[str, int],
) -> None:
    raw = _raw(demo_data, tmp_path, deposit=1e6, seeds=[1, 2], symbols=["EURUSD", "USDJPY"])
    raw["coordinator"] = coordinator
    raw.update(top)
    a, b = _both(Config.model_validate(raw))
    assert b.funnel["driver"] == "kernel", b.funnel["driver_reason"]
    _assert_same(a, b)
    assert dict(b.funnel["rejected"]) == rejected
    assert set(b.signals["trading_mode"]) == {top.get("trading_mode")}
    sized = b.signals[b.signals["status"] == "approved"]
    if coordinator.get("risk_multiplier") == 0.5 or top:
        assert set(sized["volume"]) == {0.05, 0.1}  # 0.1 and 0.2 lots x 0.5
        assert sized["details"].iloc[0]["sizing"]["multiplier"] == 0.5


def with_regimes(raw: dict[str, Any], gated: str) -> dict[str, Any]:
    """``raw`` with regimes from closed H1 bars, strategy ``gated`` traded only when trending, and the
    ranging and volatile regimes' risk cut to a half and a quarter."""
    raw["regime"] = {"enabled": True, "timeframe": "H1", "atr_pct_window": 50, "min_bars": 60}
    raw["coordinator"] = {
        "regime_gate": {gated: ["trending_up", "trending_down"]},
        "regime_risk": {"ranging": 0.5, "volatile": 0.25},
    }
    return raw


def test_drivers_regime_gate_and_regime_risk_identical(demo_data: Path, tmp_path: Path) -> None:
    # Regime labels are precomputed from closed H1 bars: the gate and the multiplier per signal, the
    # label in every signal's tags, on both drivers.
    raw = _raw(demo_data, tmp_path, deposit=1e6, seeds=[3, 4], symbols=["EURUSD", "USDJPY"], volume=0.3)
    a, b = _both(Config.model_validate(with_regimes(raw, "rnd0")))
    assert b.funnel["driver"] == "kernel", b.funnel["driver_reason"]
    _assert_same(a, b)
    regimes = b.signals["tags"].map(lambda t: t["regime"])
    assert {"ranging", "volatile"} <= set(regimes), set(regimes)
    gated = b.signals[b.signals["reason"] == "regime_not_allowed"]
    assert len(gated) > 0 and set(gated["strategy"]) == {"rnd0"}
    approved = b.signals[b.signals["status"] == "approved"]
    ranging = approved[regimes[approved.index] == "ranging"]
    assert set(ranging["volume"]) <= {0.15, 0.3}  # 0.3 and 0.6 lots x 0.5
    assert len(ranging) > 0


@pytest.mark.parametrize(
    ("coordinator", "rejected"),
    [
        ({"daily_loss_limit_pct": 0.1}, {"daily_loss_limit": 652}),
        ({"max_drawdown_pct": 0.5}, {"max_drawdown": 777}),
        (
            {"daily_loss_limit_pct": 0.2, "max_drawdown_pct": 1.0},
            {"daily_loss_limit": 51, "max_drawdown": 719},
        ),
        (
            {"daily_loss_limit_pct": 0.5, "max_drawdown_pct": 3.0, "max_positions": 2},
            {"daily_loss_limit": 108, "max_positions": 495},
        ),
    ],
)
def test_drivers_circuit_breakers_identical(
    demo_data: Path, tmp_path: Path, coordinator: dict[str, Any], rejected: dict[str, int]
) -> None:
    # 1 and 2 lots on 100,000 at 1:500: the breakers trip; equity is sampled at every point and again
    # after each point's exits, in the kernel as in the loop (the same compiled arithmetic).
    raw = _raw(
        demo_data,
        tmp_path,
        deposit=100_000,
        seeds=[1, 2],
        symbols=["EURUSD", "USDJPY"],
        volume=1.0,
        leverage=500,
    )
    raw["coordinator"] = coordinator
    a, b = _both(Config.model_validate(raw))
    assert b.funnel["driver"] == "kernel", b.funnel["driver_reason"]
    _assert_same(a, b)
    assert dict(b.funnel["rejected"]) == rejected
    daily = b.signals[b.signals["reason"] == "daily_loss_limit"]
    if len(daily):
        first = daily["details"].iloc[0]
        assert set(first) == {"limit", "value", "day_start_equity", "equity"}
        assert first["value"] >= first["limit"]
    raw["coordinator"] |= {"close_all_on_breach": True}
    r = run(Config.model_validate(raw), sink=MemorySink())
    assert (
        r.funnel["driver_reason"]
        == "coordinator.close_all_on_breach is set (the breaker's closes are sent in Python)"
    )


REGIMES = {"enabled": True, "timeframe": "H1", "atr_pct_window": 50, "min_bars": 60}


@pytest.mark.parametrize(
    ("coordinator", "stops", "rejected"),
    [
        ({"sizing": {"mode": "risk", "risk_pct": 0.005}}, True, {}),
        # the regime multiplier on the risk size, and the count rules on the sized entries
        (
            {
                "sizing": {"mode": "risk", "risk_pct": 0.002},
                "regime_risk": {"ranging": 0.5},
                "max_positions": 3,
            },
            True,
            {"max_positions": 208},
        ),
        # the breakers and the size read the same equity, after the point's exits
        (
            {
                "sizing": {"mode": "risk", "risk_pct": 0.01},
                "daily_loss_limit_pct": 0.05,
                "max_drawdown_pct": 0.2,
            },
            True,
            {"daily_loss_limit": 60, "max_drawdown": 645},
        ),
        ({"sizing": {"mode": "risk", "risk_pct": 0.5}}, False, {"no_stop_loss": 793}),
        ({"sizing": {"mode": "risk", "risk_pct": 0.00001}}, True, {"size_below_min": 793}),
    ],
)
def test_drivers_risk_sizing_identical(
    demo_data: Path, tmp_path: Path, coordinator: dict[str, Any], stops: bool, rejected: dict[str, int]
) -> None:
    # Risk-% sizing at the review's equity (SL 80 points): the kernel sizes each entry with the compiled
    # functions the coordinator's size() uses (risk/lots.py, the tick value of terminal/core/rules.py).
    for account in ("hedging", "netting"):
        raw = _raw(demo_data, tmp_path, deposit=1e6, seeds=[1, 2], symbols=["EURUSD", "USDJPY"], stops=stops,
                   account=account)  # fmt: skip
        raw["coordinator"] = coordinator
        if "regime_risk" in coordinator:
            raw["regime"] = REGIMES
        a, b = _both(Config.model_validate(raw))
        assert b.funnel["driver"] == "kernel", b.funnel["driver_reason"]
        _assert_same(a, b)
        if account == "hedging":
            assert dict(b.funnel["rejected"]) == rejected, dict(b.funnel["rejected"])
        approved = b.signals[b.signals["status"] == "approved"]
        if len(approved):
            details = approved["details"].iloc[0]["sizing"]
            assert details["mode"] == "risk" and details["volume_min"] == 0.01
            assert approved["volume"].iloc[0] == round(int(details["raw"] * 100 + 1e-9) / 100, 8)


@pytest.mark.parametrize(
    ("coordinator", "stops", "rejected", "resized"),
    [
        ({"max_total_risk_pct": 0.01}, True, {"max_total_risk": 105}, 0),
        ({"max_total_risk_pct": 0.01, "total_risk_policy": "resize"}, True, {"size_below_min": 67}, 52),
        (
            {"max_total_risk_pct": 0.02, "total_risk_policy": "resize", "daily_loss_limit_pct": 0.05,
             "sizing": {"mode": "risk", "risk_pct": 0.005}},
            True,
            {"daily_loss_limit": 466, "size_below_min": 114},
            147,
        ),
        ({"max_total_risk_pct": 0.01}, False, {"no_stop_loss": 1157}, 0),
        # min_free_margin: order_check's free margin less the entries approved before in the review
        ({"min_free_margin_pct": 99.95}, True, {"min_free_margin": 539}, 0),
        ({"min_free_margin_pct": 99.9, "max_positions": 6}, True, {"max_positions": 59, "min_free_margin": 129}, 0),
        (
            {"min_free_margin": 996_000.0, "max_total_risk_pct": 0.02, "total_risk_policy": "resize"},
            True,
            {"min_free_margin": 20, "size_below_min": 4},
            1,
        ),
        # fixed sizing and the breakers: the sizing details only on entries past the gates
        ({"sizing": {"mode": "fixed", "lots": 0.2}, "daily_loss_limit_pct": 0.01}, True, {"daily_loss_limit": 657}, 0),
    ],
)  # fmt: skip
def test_drivers_total_risk_and_free_margin_identical(
    demo_data: Path, tmp_path: Path, coordinator: dict[str, Any], stops: bool, rejected: dict[str, int],
    resized: int,
) -> None:  # fmt: skip
    # max_total_risk over the book's SLs and the entries approved before in the same review, rejected
    # or resized (status "resized", volume_before in the details), on both drivers.
    for account in ("hedging", "netting"):
        raw = _raw(demo_data, tmp_path, deposit=1e6, seeds=[1, 2, 3], symbols=["EURUSD", "USDJPY"],
                   stops=stops, account=account)  # fmt: skip
        raw["coordinator"] = coordinator
        a, b = _both(Config.model_validate(raw))
        assert b.funnel["driver"] == "kernel", b.funnel["driver_reason"]
        _assert_same(a, b)
        if account == "hedging":
            assert (dict(b.funnel["rejected"]), b.funnel["resized"]) == (rejected, resized), (
                dict(b.funnel["rejected"]), b.funnel["resized"],
            )  # fmt: skip
        cut = b.signals[b.signals["status"] == "resized"]
        assert len(cut) == b.funnel["resized"]
        if len(cut):
            assert (cut["volume"] < cut["details"].map(lambda d: d["volume_before"])).all()


def test_driver_declines_a_trading_mode_switch(demo_data: Path, tmp_path: Path) -> None:
    raw = _raw(demo_data, tmp_path, deposit=1e6, seeds=[1])
    raw["trading_modes"] = {"calm": {"risk_multiplier": 0.5}, "news": {"risk_multiplier": 0.2}}
    raw["trading_mode"] = "calm"
    raw["trading_mode_switch"] = [{"mode": "news", "windows": [{"from": "12:00", "to": "14:00"}]}]
    a, b = _both(Config.model_validate(raw))
    assert (b.funnel["driver"], b.funnel["driver_reason"]) == (
        "loop",
        "trading_mode_switch is set (the mode in force is decided per signal in Python)",
    )
    _assert_same(a, b)
    raw.pop("trading_mode_switch")
    raw["coordinator"] = {"sizing": {"mode": "volatility", "risk_pct": 1.0}}
    r = run(Config.model_validate(raw), sink=MemorySink())
    assert r.funnel["driver_reason"] == (
        "coordinator.sizing mode volatility reads each entry's ATR from closed bars in Python"
    )


@settings(DIFFERENTIAL, max_examples=10)
@given(
    symbol=st.sampled_from(["EURUSD", "USDJPY"]),
    calc_mode=st.sampled_from([0, 1, 2, 3, 4, 5]),
    swap_mode=st.sampled_from([0, 1, 2, 3, 4, 5, 6]),
    rollover3=st.sampled_from([0, 3, 5]),
    commission=st.sampled_from([(0.0, "per_lot"), (3.5, "per_lot"), (0.002, "percent_of_value")]),
    margin_rate=st.sampled_from([0.5, 1.0, 2.0]),
    volume_step=st.sampled_from([0.01, 0.1]),
    stops_level=st.sampled_from([0, 20]),
    contract=st.sampled_from([1.0, 100.0, 100_000.0]),
    account=st.sampled_from(["hedging", "netting"]),
    stops=st.booleans(),
)
def test_drivers_symbol_specs_identical_runs(
    demo_data: Path, tmp_path_factory: pytest.TempPathFactory, **kw: Any
) -> None:
    # Any symbol contract: calculation modes, swap modes and days, commission kinds, margin rates,
    # volume steps, stop levels. Both drivers give the same run, or the kernel names why it did not run.
    sym = kw["symbol"]
    raw = _raw(
        demo_data, tmp_path_factory.mktemp("s"), deposit=1e7, seeds=[11, 12], symbols=[sym],
        account=kw["account"], stops=kw["stops"], volume=0.3,
    )  # fmt: skip
    raw["symbols"] = {
        sym: {
            "trade_calc_mode": kw["calc_mode"], "swap_mode": kw["swap_mode"], "swap_long": -6.1,
            "swap_short": 1.2, "swap_rollover3days": kw["rollover3"], "commission": kw["commission"][0],
            "commission_mode": kw["commission"][1], "margin_rate": kw["margin_rate"],
            "volume_step": kw["volume_step"], "trade_stops_level": kw["stops_level"],
            "trade_contract_size": kw["contract"],
        }
    }  # fmt: skip
    a, b = _both(Config.model_validate(raw))
    _assert_same(a, b)
    if b.funnel["driver"] != "kernel":
        assert b.funnel["driver_reason"], b.funnel


# max_correlation on M15 closes over 20 returns (the demo's symbols correlate), max_currency_exposure and
# the conflicts between strategies, each rejected or resized, alone and with the other compiled rules
CORR = {"max_correlation": 0.3, "correlation_timeframe": "M15", "correlation_window": 20}
# what each rule's rows carry at least in their details (the drivers' details are compared whole)
DETAILS = {
    "max_correlation": {"symbol", "value", "correlation", "limit", "window", "timeframe"},
    "max_currency_exposure": {"currency", "limit", "value", "before"},
    "conflict": {"symbol", "buy_strategies", "sell_strategies"},
}


@pytest.mark.parametrize(
    ("coordinator", "rejected", "resized"),
    [
        (CORR, {"max_correlation": 864}, 0),
        # the default H1 window of 50 (the data starts two months before the run)
        ({"max_correlation": 0.3}, {"max_correlation": 873}, 0),
        (CORR | {"correlation_policy": "resize"}, {"size_below_min": 695}, 218),
        # edge values: the same symbol correlates 1.0 (a second entry the same way fits no volume);
        # -1 rejects an entry beside any position not exactly opposite; 1 rejects none
        ({"max_correlation": 0.99, "correlation_policy": "resize"}, {"size_below_min": 690}, 0),
        ({"max_correlation": -1.0}, {"max_correlation": 1333}, 0),
        ({"max_correlation": 1.0}, {}, 0),
        # two closed MN1 bars (fewer than 3 returns): no correlation between symbols, only the same symbol's
        ({"max_correlation": 0.0, "correlation_timeframe": "MN1"}, {"max_correlation": 690}, 0),
        ({"max_currency_exposure": {"USD": 150_000}}, {"max_currency_exposure": 48}, 0),
        ({"max_currency_exposure": {"*": 100_000, "EUR": 50_000}, "exposure_policy": "resize"}, {"size_below_min": 89}, 100),
        # a zero limit: only entries that lower the JPY exposure pass
        ({"max_currency_exposure": {"JPY": 0.0}}, {"max_currency_exposure": 561}, 0),
        ({"conflict_policy": "net"}, {"conflict_netted": 165}, 163),
        ({"conflict_policy": "highest_confidence"}, {"conflict_tie": 328}, 0),
        ({"conflict_policy": "reject_both"}, {"conflict_rejected": 328}, 0),
        # every rule at once, in the coordinator's order: conflicts, count rules, total risk, currency
        # exposure, correlation, free margin; a breaker rejects a review's entries before its conflicts
        (
            CORR | {"correlation_policy": "resize", "conflict_policy": "net", "max_positions": 8,
                    "max_currency_exposure": {"USD": 150_000}, "exposure_policy": "resize",
                    "max_total_risk_pct": 0.05, "total_risk_policy": "resize", "min_free_margin_pct": 99.0,
                    "daily_loss_limit_pct": 0.02, "sizing": {"mode": "fixed", "lots": 0.3},
                    "risk_multiplier": 1.5},
            {"conflict_netted": 171, "daily_loss_limit": 781, "max_positions": 5, "size_below_min": 315}, 85,
        ),
    ],
)  # fmt: skip
def test_drivers_correlation_exposure_and_conflicts_identical(
    demo_data: Path, tmp_path: Path, coordinator: dict[str, Any], rejected: dict[str, int], resized: int
) -> None:
    for account in ("hedging", "netting"):
        raw = _raw(demo_data, tmp_path, deposit=1e6, seeds=[1, 2, 3], symbols=["EURUSD", "USDJPY", "GBPUSD"],
                   stops=True, account=account)  # fmt: skip
        raw["coordinator"] = coordinator
        a, b = _both(Config.model_validate(raw))
        assert b.funnel["driver"] == "kernel" and b.funnel["driver_reason"] is None, b.funnel["driver_reason"]
        _assert_same(a, b)
        if account == "hedging":
            assert (dict(b.funnel["rejected"]), b.funnel["resized"]) == (rejected, resized), (
                dict(b.funnel["rejected"]), b.funnel["resized"],
            )  # fmt: skip
        for rule, keys in DETAILS.items():
            rows = b.signals[b.signals["rule"] == rule]
            assert all(keys <= set(d) for d in rows["details"]), rule
        corr = b.signals[b.signals["reason"] == "max_correlation"]["details"]
        assert all(d["value"] > d["limit"] and d["timeframe"] == "M15" for d in corr if d["window"] == 20)
        if coordinator.get("correlation_timeframe") == "MN1":
            assert len(corr) and all(d["correlation"] == 1.0 for d in corr)


def test_driver_names_conflicts_between_risk_sized_entries(demo_data: Path, tmp_path: Path) -> None:
    # Risk-% sizing sizes (and refuses) entries at each review's equity, so the entries in conflict are
    # not known before the run: that pair stays in the Python loop, and says so.
    raw = _raw(demo_data, tmp_path, deposit=1e6, seeds=[1, 2], stops=True)
    raw["coordinator"] = {"conflict_policy": "net", "sizing": {"mode": "risk", "risk_pct": 0.005}}
    a, b = _both(Config.model_validate(raw))
    assert (b.funnel["driver"], b.funnel["driver_reason"]) == (
        "loop",
        "coordinator.conflict_policy with sizing mode risk (the entries in conflict depend on equity)",
    )
    _assert_same(a, b)
    assert b.funnel["rejected"]["conflict_netted"] > 0


@pytest.mark.parametrize("coordinator", [CONFLICTS, EXPOSURE, {"conflict_policy": "reject_both"}])
def test_signal_pass_signals_under_the_book_rules_identical(
    demo_data: Path, tmp_path: Path, coordinator: dict[str, Any]
) -> None:
    # Per-bar bars_only strategies (a signal pass records their Signals, the kernel trades them): each
    # signal's own confidence decides highest_confidence, as in the loop's review.
    raw = _raw(demo_data, tmp_path, deposit=1e6, seeds=[5, 6], symbols=["EURUSD", "USDJPY"], density=0.3)
    for i, entry in enumerate(raw["strategies"]):
        entry |= {"class": f"{FIXTURES / 'bars_only_strategies.py'}:RandomBars", "name": f"bars{i}"}
    raw["coordinator"] = coordinator
    a, b = _both(Config.model_validate(raw))
    assert b.funnel["driver"] == "kernel" and "signal_pass" in b.funnel["kernel_seconds"], b.funnel
    _assert_same(a, b)
    rules = set(b.signals["rule"].dropna())
    assert "conflict" in rules, dict(b.funnel["rejected"])
    if coordinator is CONFLICTS:  # confidences differ: the lower side loses, ties are rare
        assert b.funnel["rejected"]["conflict_lower_confidence"] > 0
