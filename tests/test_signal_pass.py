"""The signal pass (engine/signal_pass.py): per-bar Python strategies declared ``bars_only`` are called at
every point first, then the kernel trades their signals. The run must be the Python loop's to the bit
(deals, orders, positions, signals with their own fields, equity, funnel), whatever the signals, the
account, the coordinator's rules, the strategy errors; what the kernel does not send is traded by the
loop from the recorded signals (never by calling the strategies twice); and a strategy that reads the
account during the pass stops the run with a message naming it and the call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mt5tester.config import Config
from mt5tester.engine.run import run
from mt5tester.errors import StrategyRuntimeError
from mt5tester.results.memory import MemorySink
from test_drivers_differential import (
    BREAKERS,
    DIFFERENTIAL,
    FIXED,
    GATES,
    MONEY,
    _assert_same,
    _both,
    with_regimes,
)
from test_drivers_differential import _raw as differential_raw

from conftest import FIXTURES

BARS_ONLY = FIXTURES / "bars_only_strategies.py"


def _config(data: Path, tmp: Path, **kw: Any) -> Config:
    return Config.model_validate(_raw(data, tmp, **kw))


def _raw(data: Path, tmp: Path, **kw: Any) -> dict[str, Any]:
    """test_drivers_differential's config (account, costs, limits, gates) with the bars_only strategies."""
    raw = differential_raw(data, tmp, end=kw.pop("end", "2024-01-12"), deposit=kw.pop("deposit", 1e6), **kw)
    params = {k: kw[k] for k in ("density", "stops", "odd", "fail_at", "read") if k in kw}
    for i, entry in enumerate(raw["strategies"]):
        entry |= {"class": f"{BARS_ONLY}:RandomBars", "name": f"bars{i}", "volume": round(0.1 * (i + 1), 2)}
        entry["params"] = {"seed": entry["params"]["seed"], **params}
    if kw.get("on_error"):
        raw["backtest"]["on_strategy_error"] = kw["on_error"]
    return raw


@settings(DIFFERENTIAL, max_examples=12)
@given(
    seeds=st.lists(st.integers(0, 10_000), min_size=1, max_size=2),
    density=st.sampled_from([0.05, 0.3]),
    symbols=st.sampled_from([["EURUSD"], ["EURUSD", "USDJPY"]]),
    tf=st.sampled_from(["M5", "M15", "H1"]),
    mode=st.sampled_from(["open_prices", "ohlc_m1"]),
    account=st.sampled_from(["hedging", "netting"]),
    limits=st.sampled_from([None, (3, 2)]),
    stops=st.booleans(),
    gates=st.sampled_from([None, GATES, FIXED, BREAKERS, MONEY]),
)
def test_signal_pass_then_kernel_is_the_loops_run(
    demo_data: Path, tmp_path_factory: pytest.TempPathFactory, **kw: Any
) -> None:
    if kw["gates"] is MONEY:
        kw["stops"] = True  # risk-% sizing refuses an entry without SL: some entries carry one
    cfg = _config(demo_data, tmp_path_factory.mktemp("p"), **kw)
    a, b = _both(cfg)
    assert a.funnel["driver"] == "loop"
    if kw["stops"] and kw["mode"] == "open_prices":
        assert (
            b.funnel["driver_reason"]
            == "SL/TP in open_prices mode (the kernel resolves SL/TP on M1 bars: ohlc_m1)"
        )
    else:
        assert b.funnel["driver"] == "kernel", b.funnel["driver_reason"]
        assert "signal_pass" in b.funnel["kernel_seconds"]
    _assert_same(a, b)
    assert a.deal_count > 1


def test_signal_fields_and_two_signals_a_call_recorded_as_the_loop_records_them(
    demo_data: Path, tmp_path: Path
) -> None:
    cfg = _config(demo_data, tmp_path, seeds=[3, 4], density=0.4, stops=True, symbols=["EURUSD", "USDJPY"])
    a, b = _both(cfg)
    assert b.funnel["driver"] == "kernel"
    _assert_same(a, b)
    sig = b.signals
    assert set(sig["comment"]) > {""} and sig["confidence"].nunique() > 10
    assert any(t == {"k": 2} for t in sig["tags"]) and (sig.groupby(["time", "strategy"]).size() > 1).any()
    assert sig["sl"].notna().any() and set(sig["status"]) == {"approved"}


def test_signals_the_kernel_does_not_send_are_traded_by_the_loop_from_the_pass(
    demo_data: Path, tmp_path: Path
) -> None:
    """Limit orders, flat signals, SL as a price, exit_opposite false: the loop trades the pass's signals
    (the strategies are called once: their call counts are the loop's) and says why."""
    cfg = _config(demo_data, tmp_path, seeds=[7], density=0.3, odd=0.2)
    a, b = _both(cfg)
    assert b.funnel["driver"] == "loop"
    assert b.funnel["driver_reason"].startswith("strategy bars0 signals ")
    assert "(the kernel sends market entries)" in b.funnel["driver_reason"]
    _assert_same(a, b)
    assert set(b.signals["order_type"]) == {"market", "limit"}


def test_a_stop_out_in_the_kernel_hands_the_recorded_signals_to_the_loop(
    demo_data: Path, tmp_path: Path
) -> None:
    cfg = _config(demo_data, tmp_path, seeds=[11, 12], density=0.5, deposit=400.0)
    a, b = _both(cfg)
    assert b.funnel["driver"] == "loop"
    assert b.funnel["driver_reason"].startswith("a stop-out came within reach at ")
    _assert_same(a, b)


@pytest.mark.parametrize("policy", ["continue", "disable", "stop"])
def test_strategy_errors_in_the_pass_are_the_loops(demo_data: Path, tmp_path: Path, policy: str) -> None:
    """on_strategy_error: the error's row, the disabled strategy, or the run stopped at that point after
    the trades before it, exactly as the loop."""
    cfg = _config(demo_data, tmp_path, seeds=[2, 3], density=0.3, fail_at=150, on_error=policy)
    if policy == "stop":
        sinks = MemorySink(), MemorySink()
        messages = []
        for driver, sink in zip(("loop", "auto"), sinks, strict=True):
            with pytest.raises(StrategyRuntimeError) as e:
                run(cfg, sink=sink, driver=driver)
            messages.append(str(e.value))
        assert messages[0] == messages[1] and "planned failure on call 150" in messages[0]
        for table in ("deals", "orders", "signals", "strategy_errors", "equity"):
            rows = [[{k: v for k, v in r.items() if k != "run_id"} for r in s.rows(table)] for s in sinks]
            assert rows[0] == rows[1], table
        assert len(sinks[0].rows("deals")) > 2
        return
    a, b = _both(cfg)
    assert b.funnel["driver"] == "kernel"
    _assert_same(a, b)
    assert sum(b.funnel["strategy_errors"].values()) >= 1


@pytest.mark.parametrize("call", ["account_info", "positions_get", "order_send", "shutdown", "caught"])
def test_a_bars_only_strategy_that_reads_the_account_stops_the_run(
    demo_data: Path, tmp_path: Path, call: str
) -> None:
    cfg = _config(demo_data, tmp_path, read=call)
    with pytest.raises(StrategyRuntimeError) as e:
        run(cfg, sink=MemorySink())
    name = {"caught": "positions_total"}.get(call, call)
    assert str(e.value).startswith(
        f"strategy bars0 is declared bars_only but called the terminal's {name}() "
    )
    assert str(e.value).endswith("remove bars_only from the strategy class")
    if call == "account_info":  # the whole message: the call, the strategy's 5th bar close, the fix
        assert str(e.value) == (
            "strategy bars0 is declared bars_only but called the terminal's account_info() (account, "
            "positions, orders, history or trading) at 2024-01-02 01:00 UTC: its decisions read the "
            "account; remove bars_only from the strategy class"
        )
    if call != "shutdown":  # (after its shutdown the strategy's own symbol_info fails in the loop)
        run(cfg, sink=MemorySink(), driver="loop")  # the Python loop runs it: the account is there


def test_regime_tags_follow_the_signals_own_tags_and_the_gate_and_risk_apply(
    demo_data: Path, tmp_path: Path
) -> None:
    """With regimes, each signal's row carries its own tags then the regime label, as the router adds it;
    the regime gate and regime_risk decide per signal, on each signal's own volume."""
    raw = _raw(demo_data, tmp_path, seeds=[3, 4], density=0.4, symbols=["EURUSD", "USDJPY"])
    a, b = _both(Config.model_validate(with_regimes(raw, "bars0")))
    assert b.funnel["driver"] == "kernel", b.funnel["driver_reason"]
    _assert_same(a, b)
    tags = b.signals["tags"]
    assert any(list(t) == ["k", "regime"] for t in tags) and all(list(t)[-1] == "regime" for t in tags)
    assert (b.signals["reason"] == "regime_not_allowed").any()
    ranging = b.signals[(b.signals["status"] == "approved") & tags.map(lambda t: t["regime"] == "ranging")]
    assert len(ranging) > 0 and len(set(ranging["volume"])) > 1  # each signal's own volume, halved


@pytest.mark.parametrize(
    ("second", "reason"),
    [
        ({"class": f"{FIXTURES / 'column_strategies.py'}:RandomColumn", "name": "col"}, None),
        (
            {"class": "ma_cross", "name": "ma"},
            "strategy ma decides in Python (neither column_signals nor bars_only)",
        ),
        ({"class": f"{BARS_ONLY}:ListensToTrades", "name": "ears"}, "strategy ears overrides on_trade()"),
    ],
)
def test_with_other_strategies_the_pass_runs_or_the_reason_is_named(
    demo_data: Path, tmp_path: Path, second: dict[str, Any], reason: str | None
) -> None:
    """A column strategy beside a bars_only one: the pass calls both (the column's own signals); a
    strategy that decides in Python or listens to its trades keeps the loop."""
    raw = _raw(demo_data, tmp_path, seeds=[5], density=0.3)
    raw["strategies"].append(
        second | {"timeframe": "M15", "params": {"seed": 9}}
        if "column" in second["class"] or "bars_only" in second["class"]
        else second | {"timeframe": "M15"}
    )
    a, b = _both(Config.model_validate(raw))
    assert b.funnel["driver_reason"] == reason
    assert b.funnel["driver"] == ("kernel" if reason is None else "loop")
    _assert_same(a, b)
    assert a.deal_count > 3


@pytest.mark.parametrize("deposit", [1e6, 400.0])
def test_a_pass_at_its_limit_hands_the_rest_of_the_run_to_the_loop(
    demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deposit: float
) -> None:
    """Memory stays bounded: at LIMIT signals the pass stops before the next point; the kernel trades the
    points before it and the loop calls the strategies from there (or, when the kernel declines, the
    loop trades the recorded points and then calls the strategies)."""
    from mt5tester.engine import signal_pass

    monkeypatch.setattr(signal_pass, "LIMIT", 40)
    cfg = _config(demo_data, tmp_path, seeds=[11, 12], density=0.5, deposit=deposit)
    a, b = _both(cfg)
    _assert_same(a, b)
    assert a.funnel["signals_generated"] > 200
    if deposit == 1e6:
        assert b.funnel["driver"] == "kernel"
        assert b.funnel["driver_reason"].startswith(
            "the signal pass holds 40 signals at most: the loop ran from "
        )
    else:
        assert b.funnel["driver"] == "loop"
        assert b.funnel["driver_reason"].startswith("a stop-out came within reach at ")


def test_the_pass_reports_its_progress(
    demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long pass shows progress as the loop does: (points called, all points), every 65,536 points."""
    calls: list[tuple[int, int]] = []
    raw = _raw(demo_data, tmp_path, tf="M1", end="2024-03-01")
    raw["backtest"]["start"] = "2023-12-01"
    r = run(
        Config.model_validate(raw),
        sink=MemorySink(),
        progress=lambda n, total: calls.append((n, total)),
    )
    assert r.funnel["driver"] == "kernel"
    total = r.funnel["decision_points"]
    assert total > 65_536 and calls[:2] == [(0, total), (65_536, total)]
