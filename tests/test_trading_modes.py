"""Trading-mode profiles (issue 17 part 1): each profile key changes exactly what the same setting
written by hand changes (identical deals and decisions), the effective config records the mode and its
diff, a switch inside one run is recorded per signal, and a bad profile is exit 2 with its key path."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import mt5tester
from mt5tester.config import parse_config
from mt5tester.errors import ConfigError

from conftest import base_config, write_yaml

TWO = [
    {"class": "ma_cross", "name": "fast", "params": {"fast": 5, "slow": 20}},
    {"class": "ma_cross", "name": "slow_h4", "params": {"fast": 3, "slow": 10}, "timeframe": "H4"},
    {"class": "smc_structure", "name": "smc", "symbols": ["GBPUSD"]},
]


def _raw(demo_data: Path, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    raw = base_config(demo_data, tmp_path, symbols=["EURUSD", "GBPUSD"], warmup_bars=40)
    raw["strategies"] = copy.deepcopy(TWO)
    raw.update(extra)
    return raw


def _run(raw: dict[str, Any], tmp_path: Path) -> mt5tester.RunResult:
    return mt5tester.run(parse_config(copy.deepcopy(raw)), base_dir=tmp_path, sink=mt5tester.MemorySink())


def _same(a: mt5tester.RunResult, b: mt5tester.RunResult) -> None:
    """Identical deals and decisions (the mode's label aside)."""
    assert len(a.deals) > 1
    pd.testing.assert_frame_equal(a.deals, b.deals)
    cols = ["time", "strategy", "symbol", "direction", "status", "rule", "reason", "volume"]
    pd.testing.assert_frame_equal(a.signals[cols], b.signals[cols])


@pytest.mark.parametrize(
    ("profile", "by_hand"),
    [
        # strategies by name: only that one runs
        ({"strategies": ["fast"]}, {"strategies": [TWO[0]]}),
        # by category
        ({"strategies": ["smc"]}, {"strategies": [TWO[2]]}),
        # timeframes: the strategies on them
        ({"timeframes": ["H4"]}, {"strategies": [TWO[1]]}),
        # symbols: the strategies trading them, narrowed to them
        (
            {"symbols": ["GBPUSD"]},
            {"strategies": [{**TWO[0], "symbols": ["GBPUSD"]}, {**TWO[1], "symbols": ["GBPUSD"]}, TWO[2]]},
        ),
        # coordinator limits
        ({"coordinator": {"max_positions": 1}}, {"coordinator": {"max_positions": 1}}),
        # risk multiplier: every entry's volume x 0.5
        ({"risk_multiplier": 0.5}, {"coordinator": {"risk_multiplier": 0.5}}),
        # session windows
        (
            {
                "sessions": [{"from": "08:00", "to": "17:00"}],
                "blocked": [{"days": ["wed"], "from": "00:00", "to": "12:00"}],
            },
            {
                "coordinator": {
                    "sessions": [{"from": "08:00", "to": "17:00"}],
                    "blocked": [{"days": ["wed"], "from": "00:00", "to": "12:00"}],
                }
            },
        ),
    ],
)
def test_profile_key_changes_exactly_what_the_same_setting_by_hand_changes(
    demo_data: Path, tmp_path: Path, profile: dict[str, Any], by_hand: dict[str, Any]
) -> None:
    moded = _run(_raw(demo_data, tmp_path, trading_modes={"m": profile}, trading_mode="m"), tmp_path)
    hand = _run(_raw(demo_data, tmp_path, **by_hand), tmp_path)
    plain = _run(_raw(demo_data, tmp_path), tmp_path)
    _same(moded, hand)
    assert not moded.deals.equals(plain.deals) or not moded.signals["status"].equals(plain.signals["status"])
    assert set(moded.signals["trading_mode"]) == {"m"}
    assert set(plain.signals["trading_mode"].dropna()) == set()


def test_risk_multiplier_halves_every_entry_volume(demo_data: Path, tmp_path: Path) -> None:
    raw = _raw(demo_data, tmp_path, trading_modes={"half": {"risk_multiplier": 0.5}}, trading_mode="half")
    moded, plain = _run(raw, tmp_path), _run(_raw(demo_data, tmp_path), tmp_path)

    def entries(deals: pd.DataFrame) -> set[float]:
        return set(deals[(deals["entry"] == "in") & deals["type"].isin(["buy", "sell"])]["volume"])

    assert entries(moded.deals) == {0.05} and entries(plain.deals) == {0.1}
    approved = moded.signals[moded.signals["status"] == "approved"]
    assert set(approved["volume"].round(8)) <= {0.05, 0.0}


def test_regimes_key_is_a_regime_gate_for_the_selected_strategies(demo_data: Path, tmp_path: Path) -> None:
    regime = {"enabled": True, "timeframe": "H1"}
    moded = _run(
        _raw(
            demo_data,
            tmp_path,
            regime=regime,
            trading_modes={"trend": {"strategies": ["fast"], "regimes": ["trending_up", "trending_down"]}},
            trading_mode="trend",
        ),
        tmp_path,
    )
    hand = _run(
        _raw(
            demo_data,
            tmp_path,
            regime=regime,
            strategies=[TWO[0]],
            coordinator={"regime_gate": {"fast": ["trending_up", "trending_down"]}},
        ),
        tmp_path,
    )
    _same(moded, hand)
    assert "regime_not_allowed" in set(moded.signals["reason"].dropna())


def test_effective_config_has_the_mode_and_its_diff(demo_data: Path, tmp_path: Path) -> None:
    raw = _raw(
        demo_data,
        tmp_path,
        trading_modes={
            "conservative": {
                "strategies": ["fast"],
                "coordinator": {"max_positions": 2},
                "risk_multiplier": 0.5,
            },
            "aggressive": {"coordinator": {"max_positions": 9}},
        },
        trading_mode="conservative",
    )
    result = _run(raw, tmp_path)
    cfg = result.config
    assert cfg["trading_mode"] == "conservative"
    assert list(cfg["trading_modes"]) == ["conservative"]  # the profile in force, not the others
    assert [s["name"] for s in cfg["strategies"]] == ["fast"]
    assert cfg["trading_mode_diff"] == {
        "conservative": {
            "coordinator.max_positions": [50, 2],
            "coordinator.risk_multiplier": [1.0, 0.5],
            "strategies": [
                ["fast EURUSD,GBPUSD", "slow_h4 EURUSD,GBPUSD", "smc GBPUSD"],
                ["fast EURUSD,GBPUSD"],
            ],
        }
    }
    # the stored config parses back (resume) and applying the mode again changes nothing
    again = _run(cfg, tmp_path)
    _same(result, again)
    assert again.config["trading_mode_diff"]["conservative"] == {}


def test_backtest_cli_trading_mode_stored_with_the_run(demo_data: Path, tmp_path: Path, run_cli) -> None:
    raw = _raw(demo_data, tmp_path, trading_modes={"solo": {"strategies": ["fast"]}})
    path = write_yaml(tmp_path / "c.yaml", raw)
    code, out, err = run_cli("backtest", "--config", str(path), "--trading-mode", "solo")
    assert code == 0, err
    run_id = out.split("run ", 1)[1].split(":", 1)[0]
    stored = mt5tester.load_run(run_id, db=raw["results"]["database_url"])
    assert stored.config["trading_mode"] == "solo"
    assert set(stored.signals["strategy"]) == {"fast"} and set(stored.signals["trading_mode"]) == {"solo"}


def _server_minute(ns: int) -> tuple[int, int]:
    t = dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)  # server_timezone UTC
    return t.weekday(), t.hour * 60 + t.minute


def test_switch_by_schedule_recorded_per_signal_and_applied(demo_data: Path, tmp_path: Path) -> None:
    """news mode 60 minutes around the coordinator's blocked window (daily 12:00-13:00): only `fast`,
    at most 1 position; normal elsewhere. Each signal carries the mode its time falls in."""
    raw = _raw(
        demo_data,
        tmp_path,
        coordinator={"blocked": [{"from": "12:00", "to": "13:00"}]},
        trading_modes={
            "normal": {"strategies": ["fast", "slow_h4"]},
            "news": {"strategies": ["slow_h4"], "coordinator": {"max_positions": 1, "blocked": []}},
        },
        trading_mode="normal",
        trading_mode_switch=[{"mode": "news", "windows": "blocked", "margin_minutes": 60}],
    )
    result = _run(raw, tmp_path)
    sig = result.signals
    minutes = [_server_minute(int(pd.Timestamp(t).value)) for t in sig["time"]]
    expected = ["news" if 11 * 60 <= m < 14 * 60 else "normal" for _, m in minutes]
    assert list(sig["trading_mode"]) == expected
    assert {"news", "normal"} <= set(expected)
    news = sig[sig["trading_mode"] == "news"]
    fast_in_news = news[(news["strategy"] == "fast") & (news["direction"] != "flat")]
    assert len(fast_in_news) > 0
    assert set(fast_in_news["reason"]) == {"not_in_mode"} and set(fast_in_news["rule"]) == {"trading_mode"}
    # smc is in no involved mode: it is not loaded at all
    assert "smc" not in set(sig["strategy"])
    # normal mode keeps the blocked window of the config (12:00-13:00 entries rejected there)
    normal = sig[sig["trading_mode"] == "normal"]
    assert "blocked_window" not in set(normal["reason"].dropna())  # normal never holds inside 11-14
    # news has max_positions 1 and no blocked window: its slow_h4 entries are reviewed by it
    slow_news = news[(news["strategy"] == "slow_h4") & (news["direction"] != "flat")]
    assert set(slow_news["reason"].dropna()) <= {"max_positions"}
    assert result.config["trading_mode_diff"]["news"]["coordinator.max_positions"] == [50, 1]


def test_switch_by_regime_recorded_per_signal(demo_data: Path, tmp_path: Path) -> None:
    raw = _raw(
        demo_data,
        tmp_path,
        regime={"enabled": True, "timeframe": "H1"},
        trading_modes={"calm": {"risk_multiplier": 0.5}},
        trading_mode_switch=[{"mode": "calm", "regimes": ["ranging"]}],
    )
    result = _run(raw, tmp_path)
    sig = result.signals
    regimes = [tags.get("regime") for tags in sig["tags"]]
    assert list(sig["trading_mode"]) == ["calm" if r == "ranging" else None for r in regimes]
    assert {"calm", None} <= set(sig["trading_mode"])
    calm = sig[(sig["trading_mode"] == "calm") & (sig["status"] == "approved") & (sig["direction"] != "flat")]
    other = sig[sig["trading_mode"].isna() & (sig["status"] == "approved") & (sig["direction"] != "flat")]
    assert set(calm["volume"]) == {0.05} and set(other["volume"]) == {0.1}


@pytest.mark.parametrize(
    ("modes", "extra", "message"),
    [
        (
            {"x": {"strategy": ["fast"]}},
            {},
            "unknown key 'trading_modes.x.strategy'; did you mean 'strategies'?",
        ),
        (
            {"x": {"strategies": ["fsat"]}},
            {},
            "trading_modes.x.strategies.0: 'fsat' is neither a configured strategy",
        ),
        (
            {"x": {"strategies": ["ml"]}},
            {},
            "trading_modes.x: the profile selects no strategy (strategies ['ml']",
        ),
        (
            {"x": {"timeframes": ["D1"]}},
            {},
            "trading_modes.x: the profile selects no strategy (timeframes ['D1']",
        ),
        (
            {"x": {"symbols": ["USDJPY"]}},
            {},
            "trading_modes.x.symbols.0: 'USDJPY' is not in backtest.symbols",
        ),
        (
            {"x": {"coordinator": {"max_positons": 2}}},
            {},
            "trading_modes.x.coordinator.max_positons: Extra inputs",
        ),
        (
            {"x": {"coordinator": {"max_positions": 0}}},
            {},
            "trading_modes.x.coordinator.max_positions: Input should be",
        ),
        (
            {"x": {"regimes": ["trending_up", "trending_down"]}},
            {},
            "trading_modes.x.regimes: needs regime.enabled: true",
        ),
        ({"x": {}}, {"trading_mode": "y"}, "trading_mode: no trading mode 'y' (profiles: x)"),
        (
            {"x": {}},
            {"trading_mode_switch": [{"mode": "z", "windows": "blocked"}]},
            "trading_mode_switch.0.mode: no trading mode 'z'",
        ),
        (
            {"x": {}},
            {"trading_mode_switch": [{"mode": "x", "windows": "blocked"}]},
            "trading_mode_switch.0.windows: 'blocked' means the windows of coordinator.blocked",
        ),
        (
            {"x": {}},
            {"trading_mode_switch": [{"mode": "x"}]},
            "trading_mode_switch.0: Value error, give either 'windows' or 'regimes'",
        ),
    ],
)
def test_bad_profile_is_exit_2_with_the_key_path(
    demo_data: Path, tmp_path: Path, run_cli, modes: dict, extra: dict, message: str
) -> None:
    path = write_yaml(tmp_path / "c.yaml", _raw(demo_data, tmp_path, trading_modes=modes, **extra))
    for args in (("config", "check", str(path)), ("backtest", "--config", str(path))):
        code, out, err = run_cli(*args)
        assert code == 2, (args, out, err)
        assert message in err, err
        assert f"{path}:" in err and "Traceback" not in err


def test_unknown_trading_mode_flag_is_exit_2(demo_data: Path, tmp_path: Path, run_cli) -> None:
    path = write_yaml(tmp_path / "c.yaml", _raw(demo_data, tmp_path, trading_modes={"safe": {}}))
    code, _, err = run_cli("backtest", "--config", str(path), "--trading-mode", "sfae")
    assert code == 2
    assert "trading_mode: no trading mode 'sfae' (profiles: safe); did you mean 'safe'?" in err


def test_config_check_error_without_file_lines_still_names_the_path(demo_data: Path, tmp_path: Path) -> None:
    raw = _raw(demo_data, tmp_path, trading_modes={"x": {"symbols": ["USDJPY"]}}, trading_mode="x")
    with pytest.raises(ConfigError, match=r"trading_modes\.x\.symbols\.0: 'USDJPY'"):
        _run(raw, tmp_path)


def test_report_compare_of_two_modes_shows_the_difference(demo_data: Path, tmp_path: Path, run_cli) -> None:
    raw = _raw(
        demo_data,
        tmp_path,
        trading_modes={"normal": {}, "conservative": {"strategies": ["fast"], "risk_multiplier": 0.5}},
    )
    path = write_yaml(tmp_path / "c.yaml", raw)
    ids = []
    for mode in ("normal", "conservative"):
        code, out, err = run_cli("backtest", "--config", str(path), "--trading-mode", mode)
        assert code == 0, err
        ids.append(out.split("run ", 1)[1].split(":", 1)[0])
    db = raw["results"]["database_url"]
    code, out, err = run_cli("report", "compare", *ids, "--db", db, "--out", str(tmp_path / "cmp"))
    assert code == 0, err
    html = next((tmp_path / "cmp").glob("compare_*.html")).read_text()
    assert "<section id='modes'><h2>Trading modes</h2>" in html
    runs = [mt5tester.load_run(i, db=db) for i in ids]
    for run, mode in zip(runs, ("normal", "conservative"), strict=True):
        sig = run.signals
        approved = int((sig["status"] != "rejected").sum())
        assert f"<td>{run.run_id}</td><td>{mode}</td><td>{mode}</td><td class='n'>{len(sig)}</td>" in html
        assert f"<td class='n'>{approved}</td>" in html
    assert "trading_mode_diff.conservative.coordinator.risk_multiplier" in html  # the config diff


def test_fusion_selected_brings_its_members_and_their_signals_carry_the_mode(
    demo_data: Path, tmp_path: Path
) -> None:
    strategies = [
        *TWO[:1],
        {"class": "rsi_reversion", "name": "rsi_m", "trade": False},
        {"class": "macd_cross", "name": "macd_m", "trade": False},
        {
            "class": "weighted_vote",
            "name": "vote",
            "params": {"members": ["rsi_m", "macd_m"], "threshold": 0.5},
        },
    ]
    raw = _raw(demo_data, tmp_path, strategies=strategies, trading_modes={"v": {"strategies": ["vote"]}})
    result = _run({**raw, "trading_mode": "v"}, tmp_path)
    assert [s["name"] for s in result.config["strategies"]] == ["rsi_m", "macd_m", "vote"]
    sig = result.signals
    assert "to_fusion" in set(sig["status"]) and set(sig["trading_mode"]) == {"v"}


def test_week_mask_widens_windows_across_the_week_end() -> None:
    from mt5tester.config import TimeWindowConfig
    from mt5tester.engine.modes import week_mask

    mask = week_mask([TimeWindowConfig.model_validate({"days": ["mon"], "from": "00:00", "to": "00:10"})], 30)
    sunday = 6 * 1440
    assert not mask[sunday + 23 * 60 + 29] and mask[sunday + 23 * 60 + 30]  # 30 minutes before, wrapped
    assert mask[39] and not mask[40]  # Monday 00:39 is within 30 minutes of 00:10 (exclusive end)
    assert int(mask.sum()) == 10 + 2 * 30


def _stored(db: Path, run_id: str) -> tuple[list, list]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        deals = conn.execute(
            "SELECT ticket, time, type, entry, volume, price, profit, strategy, signal_id FROM deals "
            "WHERE run_id = ? ORDER BY ticket",
            (run_id,),
        ).fetchall()
        signals = conn.execute(
            "SELECT signal_id, time, strategy, symbol, direction, status, reason, volume, trading_mode "
            "FROM signals WHERE run_id = ? ORDER BY signal_id",
            (run_id,),
        ).fetchall()
    return deals, signals


def test_resume_with_a_mode_switch_and_an_adapted_strategy_equals_the_uninterrupted_run(
    demo_data: Path, tmp_path: Path, run_cli
) -> None:
    """Checkpoints keep each mode's circuit breaker and the adapted strategy's state: a run resumed from
    a mid-run checkpoint (what a killed run leaves) ends with the reference run's deals and signals."""
    import sqlite3

    from conftest import FIXTURES

    def config(folder: Path, checkpoint_seconds: float | None) -> Path:
        folder.mkdir()
        raw = _raw(
            demo_data,
            folder,
            strategies=[TWO[0], {"class": f"{FIXTURES / 'legacy' / 'technical' / 'df_cross.py'}:DfCross"}],
            coordinator={"blocked": [{"days": ["tue", "thu"], "from": "10:00", "to": "11:00"}]},
            trading_modes={"news": {"risk_multiplier": 0.5, "coordinator": {"max_drawdown_pct": 1.0}}},
            trading_mode_switch=[{"mode": "news", "windows": "blocked", "margin_minutes": 120}],
        )
        raw["results"]["checkpoint_seconds"] = checkpoint_seconds
        raw["report"] = {"html": False}
        return write_yaml(folder / "c.yaml", raw)

    assert run_cli("backtest", "--config", str(config(tmp_path / "ref", None)))[0] == 0
    code, out, err = run_cli("backtest", "--config", str(config(tmp_path / "cut", 0.0001)))
    assert code == 0, err
    with sqlite3.connect(tmp_path / "ref" / "results.sqlite") as conn:
        (ref_id,) = conn.execute("SELECT run_id FROM runs").fetchone()
        # the news mode's drawdown breaker latches here; the run is cut after that
        (latched,) = conn.execute("SELECT min(time) FROM signals WHERE reason = 'max_drawdown'").fetchone()
    assert latched is not None
    db = tmp_path / "cut" / "results.sqlite"
    with sqlite3.connect(db) as conn:  # as a run killed after its first checkpoint past the latch left it
        (run_id, keep) = conn.execute(
            "SELECT run_id, min(seq) FROM checkpoints WHERE time_ns > ? GROUP BY run_id", (latched,)
        ).fetchone()
        (last,) = conn.execute("SELECT max(seq) FROM checkpoints").fetchone()
        assert last > keep + 10
        conn.execute("DELETE FROM checkpoints WHERE seq > ?", (keep,))
        conn.execute("UPDATE runs SET status = 'running'")
    code, out, err = run_cli("backtest", "--resume", run_id, "--db", f"sqlite:///{db}")
    assert code == 0, err
    assert f"resuming run {run_id}" in out
    deals, signals = _stored(db, run_id)
    ref_deals, ref_signals = _stored(tmp_path / "ref" / "results.sqlite", ref_id)
    assert len(ref_deals) > 10 and {s[-1] for s in ref_signals} == {None, "news"}
    assert deals == ref_deals and signals == ref_signals


def test_checkpoint_keeps_each_trading_modes_breaker(demo_data: Path, tmp_path: Path) -> None:
    import pickle

    from mt5tester.engine import checkpoint
    from mt5tester.engine.build import build
    from mt5tester.engine.loop import Runner

    raw = _raw(
        demo_data,
        tmp_path,
        coordinator={"blocked": [{"from": "10:00", "to": "11:00"}]},
        trading_modes={"news": {"coordinator": {"max_drawdown_pct": 1.0}}},
        trading_mode_switch=[{"mode": "news", "windows": "blocked"}],
    )
    cfg = parse_config(copy.deepcopy(raw))

    def runner() -> Runner:
        return Runner(build(cfg, tmp_path), sink=mt5tester.MemorySink("r"))

    one = runner()
    assert one.c.modes is not None
    news = one.c.modes.modes["news"].coordinator
    news.breaker.peak, news.breaker.latched = 12_345.0, {"limit": 1.0, "value": 1.2}
    blob = checkpoint.snapshot(one, 7, 1_704_100_000_000_000_000)
    two = runner()
    checkpoint.restore(two, pickle.loads(blob))
    assert two.c.modes is not None
    restored = two.c.modes.modes["news"].coordinator.breaker
    assert restored.peak == 12_345.0 and restored.latched == {"limit": 1.0, "value": 1.2}


def test_paper_under_a_profile_makes_the_backtests_decisions(
    demo_data: Path, tmp_path: Path, run_cli
) -> None:
    from mt5tester.live.start import paper

    raw = _raw(
        demo_data,
        tmp_path,
        trading_modes={
            "calm": {
                "strategies": ["fast", "smc"],
                "risk_multiplier": 0.5,
                "coordinator": {"max_positions": 1},
            }
        },
        trading_mode="calm",
    )
    raw["live"] = {"stop_file": str(tmp_path / "live.stop")}
    cfg = parse_config(copy.deepcopy(raw))
    backtest = mt5tester.run(cfg, base_dir=tmp_path, sink=mt5tester.MemorySink())
    session = paper(cfg, tmp_path)
    stored = mt5tester.load_run(session.run_id, db=cfg.results.database_url)
    cols = [
        "signal_id",
        "time",
        "strategy",
        "symbol",
        "direction",
        "status",
        "rule",
        "reason",
        "volume",
        "trading_mode",
    ]
    assert set(backtest.signals["reason"].dropna()) >= {"max_positions"}
    pd.testing.assert_frame_equal(
        stored.signals[cols].reset_index(drop=True), backtest.signals[cols].reset_index(drop=True)
    )
    assert stored.config["trading_mode"] == "calm" and "trading_mode_diff" in stored.config
    # the CLI's --trading-mode on paper; a switch runs there too (tests/test_live.py compares it)
    path = write_yaml(tmp_path / "c.yaml", {k: v for k, v in raw.items() if k != "trading_mode"})
    code, _, err = run_cli("paper", "--config", str(path), "--trading-mode", "calm")
    assert code == 0, err
    switch = {
        **raw,
        "trading_mode_switch": [{"mode": "calm", "regimes": ["ranging"]}],
        "regime": {"enabled": True},
    }
    code, _, err = run_cli("paper", "--config", str(write_yaml(tmp_path / "s.yaml", switch)))
    assert code == 0, err
