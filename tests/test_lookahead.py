"""The lookahead checker (issue 12 point 2): every leak class of tests/fixtures/adversarial/leaky.py is
flagged with exit 7 and its first differing decision; every honest strategy and built-in passes."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

from mt5tester.engine.lookahead import _cuts, changed_bars
from mt5tester.model.bars import Bars
from mt5tester.model.timeframe import Timeframe

from conftest import FIXTURES, base_config, write_yaml

LEAKY = FIXTURES / "adversarial" / "leaky.py"
HONEST = FIXTURES / "adversarial" / "honest.py"
MINUTE = 60_000_000_000


def _config(demo_data: Path, tmp_path: Path, spec: str, **extra: object) -> Path:
    raw = base_config(demo_data, tmp_path, warmup_bars=40, end="2024-01-15")
    raw["strategies"] = [{"class": spec, "name": "s", **extra}]
    return write_yaml(tmp_path / "c.yaml", raw)


def _check(run_cli, cfg: Path, *args: str) -> tuple[int, dict, str]:
    code, out, err = run_cli("check-lookahead", "s", "--config", str(cfg), "--jobs", "2", "--json", *args)
    return code, json.loads(out) if out.strip() else {}, err


@pytest.mark.parametrize(
    ("cls", "kinds"),
    [
        ("TerminalPrivateArrays", {"signal"}),  # 20 minutes ahead: less than one H1 interval
        ("FeedPrivateArrays", {"signal"}),
        ("NumpyWindowBase", {"signal"}),
        ("ModuleCache", {"signal"}),
        ("WrongLabelResample", {"signal", "prepare"}),
        ("WrongLabelMonthly", {"signal"}),
        ("DataFileReader", {"signal"}),
        ("ApiFuturePrice", {"order"}),
        ("CentredWindow", {"signal", "prepare"}),
        ("WholeSeriesNormalised", {"signal", "prepare"}),
    ],
)
def test_check_lookahead_leak_class_flagged_with_first_difference(
    demo_data: Path, tmp_path: Path, run_cli, cls: str, kinds: set[str]
) -> None:
    code, report, err = _check(run_cli, _config(demo_data, tmp_path, f"{LEAKY}:{cls}"), "--points", "2")
    assert code == 7, err
    first = report["first_difference"]
    assert report["clean"] is False and first["kind"] in kinds and first["strategy"] == "s"
    assert first["full"] != first["changed"] and first["time"] <= first["cut"]
    assert "error (LookaheadFound, exit 7): s: lookahead: " in err
    assert f"full run {first['full']} | changed {first['changed']}" in err
    assert f"changes when the data after {first['cut']} changes" in err


def test_check_lookahead_cache_surviving_between_runs_flagged(
    demo_data: Path, tmp_path: Path, run_cli
) -> None:
    code, report, err = _check(
        run_cli, _config(demo_data, tmp_path, f"{LEAKY}:CrossRunCache"), "--points", "1"
    )
    assert code == 7, err
    first = report["first_difference"]
    assert first["cut"] is None and first["kind"] == "signal" and first["full"] == "(none)"
    assert "on a second run in the same process (state carried between runs)" in err


@pytest.mark.parametrize(
    "cls",
    [
        "ExpandingZ",
        "EwmCross",
        "WarmupNaN",
        "HigherTimeframeViaApi",
        "ApiTrader",
        "MemoCache",
        "NumpyMomentum",
        "TerminalPeek",
        "EchoLastBar",
    ],
)
def test_check_lookahead_honest_tricky_strategy_clean(
    demo_data: Path, tmp_path: Path, run_cli, cls: str
) -> None:
    code, report, err = _check(run_cli, _config(demo_data, tmp_path, f"{HONEST}:{cls}"), "--points", "3")
    assert code == 0, err
    assert report["clean"] is True and report["first_difference"] is None
    assert len(report["cuts"]) == 3 and report["signals_checked"] > 10


def test_check_lookahead_builtin_ma_cross_clean(demo_data: Path, tmp_path: Path, run_cli) -> None:
    code, out, _ = run_cli(
        "check-lookahead", "s", "--config", str(_config(demo_data, tmp_path, "ma_cross")), "--points", "4"
    )
    assert code == 0 and "4 cuts (seed 0)" in out and "clean: no lookahead found" in out


def _bars(n: int = 300) -> Bars:
    rng = np.random.default_rng(3)
    close = np.round(1.1 * np.exp(np.cumsum(rng.normal(0, 2e-4, n))), 5)
    open_ = np.r_[1.1, close[:-1]]
    return Bars(
        "EURUSD",
        Timeframe.M1,
        np.arange(n, dtype=np.int64) * MINUTE + 1_704_067_200_000_000_000,
        open_,
        np.maximum(open_, close) + 1e-4,
        np.minimum(open_, close) - 1e-4,
        close,
        np.full(n, 10, np.int64),
        np.full(n, 7, np.int32),
    )


def test_changed_bars_keep_the_past_and_the_cut_open_and_change_the_rest_validly() -> None:
    bars = _bars()
    cut = int(bars.time[200])
    new = changed_bars(bars, cut, np.random.default_rng(1), 5)
    for col in ("time", "open", "high", "low", "close", "tick_volume", "spread"):
        assert np.array_equal(getattr(new, col)[:200], getattr(bars, col)[:200]), col
    assert (
        new.open[200] == bars.open[200] and new.spread[200] == bars.spread[200]
    )  # the tick known at the cut
    assert np.array_equal(new.time, bars.time)
    assert not np.isclose(new.close[200:], bars.close[200:]).any()
    assert (new.high >= np.maximum(new.open, new.close)).all() and (
        new.low <= np.minimum(new.open, new.close)
    ).all()
    assert (new.low > 0).all() and np.array_equal(new.open[201:], new.close[200:-1])
    assert not np.array_equal(new.spread[201:], bars.spread[201:])  # new spreads where the data has them
    no_spread = Bars(
        *[getattr(bars, f) for f in ("symbol", "timeframe", "time", "open", "high", "low", "close")],
        bars.tick_volume,
        np.zeros(len(bars), np.int32),
    )
    assert not changed_bars(
        no_spread, cut, np.random.default_rng(1), 5
    ).spread.any()  # and none where it has not
    again = changed_bars(bars, cut, np.random.default_rng(1), 5)
    other = changed_bars(bars, cut, np.random.default_rng(2), 5)
    assert np.array_equal(again.close, new.close) and not np.array_equal(other.close, new.close)


@pytest.mark.parametrize("mirror", [False, True])
def test_changed_bars_both_variants_valid_and_different(mirror: bool) -> None:
    bars = _bars()
    new = changed_bars(bars, int(bars.time[150]), np.random.default_rng(5), 5, mirror)
    assert np.array_equal(new.close[:150], bars.close[:150]) and new.open[150] == bars.open[150]
    assert (new.high >= np.maximum(new.open, new.close)).all() and (
        new.low <= np.minimum(new.open, new.close)
    ).all()
    moved = bars.close[150:] != bars.open[150]
    assert (new.close[150:][moved] != bars.close[150:][moved]).all()


def test_changed_bars_mirror_flips_every_move_from_the_cut_price() -> None:
    bars = _bars()
    p = bars.open[150]
    new = changed_bars(bars, int(bars.time[150]), np.random.default_rng(5), 5, mirror=True)
    up, down = bars.close[150:] > p, bars.close[150:] < p
    assert (new.close[150:][up] < p).all() and (new.close[150:][down] > p).all()
    assert np.abs(np.log(new.close[150:] / p)).max() > 1.5 * np.abs(np.log(bars.close[150:] / p)).max()


def test_changed_bars_cut_between_bars_changes_the_next_open() -> None:
    bars = _bars()
    new = changed_bars(bars, int(bars.time[100]) + MINUTE // 2, np.random.default_rng(1), 5)
    assert np.array_equal(new.close[:101], bars.close[:101]) and new.open[101] == bars.close[100]
    assert new.close[101] != bars.close[101]


def test_cuts_seeded_and_taken_between_decision_points_too() -> None:
    times = np.arange(0, 48) * 60 * MINUTE  # H1 decision points
    m1 = np.arange(0, 48 * 60) * MINUTE
    ref = {
        "events": [
            (int(times[5]), "signal", "s", "EURUSD", "buy"),
            (int(times[9]), "signal", "s", "X", "(none)"),
        ]
    }
    cuts = _cuts(times, m1, ref, 9, seed=4)
    assert cuts == _cuts(times, m1, ref, 9, seed=4) and cuts != _cuts(times, m1, ref, 9, seed=5)
    assert len(cuts) == 9 and cuts == sorted(set(cuts))
    assert int(times[5]) in cuts  # the decision that did something
    between = [c for c in cuts if c % (60 * MINUTE)]
    assert len(between) >= 3 and all(0 < c < times[-1] for c in between)


def test_check_lookahead_accepts_the_shown_name(demo_data: Path, tmp_path: Path, run_cli) -> None:
    raw = base_config(demo_data, tmp_path, warmup_bars=40, end="2024-01-15")
    raw["strategies"] = [{"class": f"{HONEST}:EwmCross"}, {"class": "ma_cross"}]
    cfg = write_yaml(tmp_path / "c.yaml", raw)
    code, out, err = run_cli("check-lookahead", "EwmCross", "--config", str(cfg), "--points", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["strategy"] == "EwmCross"
    code, _, err = run_cli("check-lookahead", "Nope", "--config", str(cfg), "--points", "1")
    assert code == 2
    assert "no strategy 'Nope' in the config (configured: ['EwmCross', 'MovingAverageCross'])" in err


def test_check_lookahead_one_strategy_despite_portfolio_categories(
    demo_data: Path, tmp_path: Path, run_cli
) -> None:
    raw = base_config(demo_data, tmp_path, warmup_bars=40, end="2024-01-15")
    raw["strategies"] = [
        {"class": "ma_cross", "name": "ma", "params": {"fast": 5, "slow": 20}},
        {"class": "smc_structure", "name": "smc"},
    ]
    raw["portfolio"] = {"categories": ["technical", "smc"]}
    cfg = write_yaml(tmp_path / "c.yaml", raw)
    code, out, err = run_cli("check-lookahead", "ma", "--config", str(cfg), "--points", "1")
    assert code == 0, err
    assert "clean: no lookahead found" in out


def test_check_lookahead_fusion_without_config_gets_default_members_and_cleans_up(
    tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    code, out, err = run_cli("check-lookahead", "weighted_vote", "--points", "1", "--jobs", "2")
    assert code == 0, err
    assert "weighted_vote: 1 cuts (seed 0)" in out and "clean: no lookahead found" in out
    assert list(temp.iterdir()) == []  # the demo config and every side's folder are removed


@pytest.mark.parametrize("mode", ["open_prices", "ohlc_m1", "every_tick"])
def test_check_lookahead_honest_stops_clean_in_every_bar_mode(
    demo_data: Path, tmp_path: Path, run_cli, mode: str
) -> None:
    """Tight SL/TP make many fills inside bars (stamped with the bar's open time, known only when the
    replay reaches them): none may count as a difference, cuts on such bars included."""
    raw = base_config(demo_data, tmp_path, warmup_bars=40, end="2024-01-15", tester_mode=mode)
    raw["strategies"] = [
        {"class": "ma_cross", "name": "s", "params": {"fast": 3, "slow": 8, "sl_points": 60, "tp_points": 60}}
    ]
    code, report, err = _check(run_cli, write_yaml(tmp_path / "c.yaml", raw), "--points", "4")
    assert code == 0, err
    assert report["clean"] is True and report["signals_checked"] > 50


@pytest.mark.shared_data
@pytest.mark.parametrize(("spec", "code"), [("ma_cross", 0), (f"{LEAKY}:TerminalPrivateArrays", 7)])
def test_check_lookahead_real_ticks_mode(
    shared_data: Path, tmp_path: Path, run_cli, spec: str, code: int
) -> None:
    """Recorded ticks after the cut are changed too (the ticks at or before it kept)."""
    raw = base_config(
        shared_data / "ticks",
        tmp_path,
        start="2014-05-06",
        end="2014-05-10",
        primary_timeframe="M15",
        warmup_bars=40,
        tester_mode="real_ticks",
    )
    raw["strategies"] = [{"class": spec, "name": "s", "params": {"fast": 3, "slow": 8} if code == 0 else {}}]
    got, report, err = _check(run_cli, write_yaml(tmp_path / "c.yaml", raw), "--points", "3")
    assert got == code, err
    assert report["clean"] is (code == 0)


def test_check_lookahead_fusion_member_alone_and_fusion_with_its_members(
    demo_data: Path, tmp_path: Path, run_cli
) -> None:
    raw = base_config(demo_data, tmp_path, warmup_bars=40, end="2024-01-15")
    raw["strategies"] = [
        {"class": "ma_cross", "name": "m1", "trade": False, "params": {"fast": 5, "slow": 20}},
        {"class": f"{HONEST}:EwmCross", "name": "m2", "trade": False},
        {"class": "weighted_vote", "name": "vote", "params": {"members": ["m1", "m2"]}},
        {"class": f"{LEAKY}:TerminalPrivateArrays", "name": "other"},
    ]
    cfg = str(write_yaml(tmp_path / "c.yaml", raw))
    for name in ("m2", "vote"):
        code, out, err = run_cli("check-lookahead", name, "--config", cfg, "--points", "1", "--jobs", "2")
        assert code == 0, err
        assert "clean: no lookahead found" in out
