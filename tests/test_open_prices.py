"""Open prices mode: SL/TP on the tested timeframe's bars (spec 6.1), and combinations it cannot simulate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mt5tester.config import parse_config
from mt5tester.data.resample import bucket_start, resample
from mt5tester.engine.build import build, open_price_bars
from mt5tester.engine.loop import Runner
from mt5tester.model import constants as C
from mt5tester.model.bars import Bars
from mt5tester.model.timeframe import Timeframe
from test_loop import flat_bars, write_m1

from conftest import STRATEGIES_FILE, base_config, write_yaml

MIN = 60_000_000_000


def ns(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value)


def m15_under_h1(data: Path, tmp: Path, script: list[dict]) -> dict:
    """An M15 scripted strategy in a config whose primary timeframe is H1, open prices mode."""
    raw = base_config(
        data,
        tmp,
        start="2024-01-02",
        end="2024-01-03",
        warmup_bars=2,
        primary_timeframe="H1",
        tester_mode="open_prices",
    )
    raw["strategies"] = [
        {
            "class": f"{STRATEGIES_FILE}:Scripted",
            "name": "script",
            "timeframe": "M15",
            "params": {"script": script},
        }
    ]
    return raw


def _run(raw: dict, tmp_path: Path) -> Runner:
    runner = Runner(build(parse_config(raw), tmp_path))
    runner.run()
    return runner


def test_open_prices_stops_resolve_on_the_strategy_timeframe_not_primary(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bars = flat_bars("2024-01-01T23:30", 67, 1.10000)  # warm-up M15 bars, then 00:00 .. 00:36 flat
    bars += [("2024-01-02T00:37", 1.10000, 1.10000, 1.09900, 1.10000, 10)]  # bid low 1.09900 < SL 1.09960
    bars += flat_bars("2024-01-02T00:38", 60, 1.10000)
    write_m1(data, "EURUSD", bars)
    script = [{"at": "2024-01-02T00:15:00Z", "direction": "buy", "volume": 1.0, "sl_points": 50}]
    runner = _run(m15_under_h1(data, tmp_path, script), tmp_path)
    d = runner.c.server.deals
    assert runner.c.server.trigger_bars["EURUSD"].timeframe is Timeframe.M15  # type: ignore[index]
    assert [(x.type, x.entry, x.reason) for x in d] == [(2, 0, 0), (0, 0, 3), (1, 1, C.DEAL_REASON_SL)]
    buy, sl = d[1], d[2]
    assert buy.time == ns("2024-01-02 00:15") and buy.price == pytest.approx(1.10010)
    # The M15 bar 00:30-00:45 holds the low: the stop fills there at its level (H1 bars would have
    # missed it: the position opened inside the 00:00 H1 bar and was first checked on the 01:00 bar).
    assert sl.time == ns("2024-01-02 00:30") and sl.price == pytest.approx(1.09960)
    assert sl.profit == pytest.approx(-50.0)


def test_open_prices_bar_without_its_first_minutes_is_not_resolved_before_its_first_tick(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    bars = flat_bars("2024-01-01T23:30", 60, 1.10000)  # through 00:29; 00:30-00:32 have no bar
    bars += flat_bars("2024-01-02T00:33", 7, 1.10000)
    bars += [("2024-01-02T00:40", 1.10000, 1.10000, 1.09900, 1.10000, 10)]  # would hit the SL at 00:40
    bars += flat_bars("2024-01-02T00:41", 60, 1.10000)
    write_m1(data, "EURUSD", bars)
    script = [
        {"at": "2024-01-02T00:15:00Z", "direction": "buy", "volume": 1.0, "sl_points": 50},
        {"at": "2024-01-02T00:30:00Z", "direction": "flat"},  # handed out at 00:33, the next tick
    ]
    runner = _run(m15_under_h1(data, tmp_path, script), tmp_path)
    d = runner.c.server.deals
    # At 00:33 the bar 00:30-00:45 has just opened: its low (00:40) is the future, so the position is
    # still open and the strategy closes it at the 00:33 bid; no stop is taken from that bar.
    assert [(x.type, x.entry, x.reason) for x in d] == [(2, 0, 0), (0, 0, 3), (1, 1, 3)]
    assert d[2].time == ns("2024-01-02 00:33") and d[2].price == pytest.approx(1.10000)


def test_open_prices_w1_strategy_stops_resolve_on_daily_bars(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bars = flat_bars("2024-01-07T00:00", 10 * 1440 + 637, 1.10000)  # Sunday Jan 7 .. Wed Jan 17 10:36
    bars += [("2024-01-17T10:37", 1.10000, 1.10000, 1.09900, 1.10000, 10)]  # bid low under the SL
    bars += flat_bars("2024-01-17T10:38", 5 * 1440, 1.10000)
    write_m1(data, "EURUSD", bars)
    script = [{"at": "2024-01-14T00:00:00Z", "direction": "buy", "volume": 1.0, "sl_points": 50}]
    raw = m15_under_h1(data, tmp_path, script)
    raw["backtest"].update(start="2024-01-14", end="2024-01-21", warmup_bars=1)
    raw["strategies"][0]["timeframe"] = "W1"
    runner = _run(raw, tmp_path)
    assert runner.c.server.trigger_bars["EURUSD"].timeframe is Timeframe.D1  # type: ignore[index]
    buy, sl = runner.c.server.deals[1:]
    assert buy.time == ns("2024-01-14 00:00") and buy.price == pytest.approx(1.10010)
    # Spec 6.1: W1 is tested on daily OHLC, so the stop fills on Wednesday's D1 bar, at its level.
    assert (sl.time, sl.reason) == (ns("2024-01-17 00:00"), C.DEAL_REASON_SL)
    assert sl.price == pytest.approx(1.09960)


def _minutes(start: str, end: str) -> Bars:
    t = np.arange(ns(start), ns(end), MIN, dtype=np.int64)
    t = t[(t // MIN) % 60 != 0]  # no tick in the first minute of any hour
    p = np.full(len(t), 1.1)
    return Bars("EURUSD", Timeframe.M1, t, p, p, p, p, np.ones(len(t), np.int64), np.zeros(len(t), np.int32))


@pytest.mark.parametrize(
    ("tested", "resolved"),
    [("M1", "M1"), ("M15", "M15"), ("H4", "H4"), ("D1", "D1"), ("W1", "D1"), ("MN1", "D1")],
)
def test_open_price_bars_tested_timeframe_daily_for_w1_mn1_stamped_at_first_tick(
    tested: str, resolved: str
) -> None:
    m1 = _minutes("2024-01-01", "2024-03-01")
    bars = open_price_bars(m1, Timeframe.parse(tested), "Europe/Athens")
    assert bars.timeframe is Timeframe.parse(resolved)
    if tested == "M1":
        assert bars is m1
        return
    built = resample(m1, Timeframe.parse(resolved), "Europe/Athens")
    np.testing.assert_array_equal(bars.close_time, built.close_time)
    np.testing.assert_array_equal(bars.high, built.high)
    # Each bar starts at its first tick (spec 5.1), not at its label (H4, D1: a minute after the hour).
    _, first = np.unique(bucket_start(m1.time, Timeframe.parse(resolved), "Europe/Athens"), return_index=True)
    np.testing.assert_array_equal(bars.time, m1.time[first])
    assert resolved == "M15" or bool(np.all(bars.time % (60 * MIN) == MIN))


def test_open_prices_strategies_on_two_timeframes_exit_2_with_reason(
    demo_data: Path, tmp_path: Path, run_cli
) -> None:
    raw = base_config(demo_data, tmp_path, tester_mode="open_prices")
    raw["strategies"] = [
        {"class": "ma_cross", "name": "fast", "timeframe": "M15"},
        {"class": "ma_cross", "name": "slow"},  # primary_timeframe H1
    ]
    cfg = write_yaml(tmp_path / "c.yaml", raw)
    for command in (["backtest", "--config", str(cfg)], ["config", "check", str(cfg)]):
        code, _, err = run_cli(*command)
        assert code == 2, err
        assert "tester_mode open_prices" in err and "M15: fast; H1: slow" in err
        assert "Traceback" not in err
    raw["strategies"][0]["timeframe"] = "H1"  # one tested timeframe: accepted
    code, _, err = run_cli("config", "check", str(write_yaml(tmp_path / "ok.yaml", raw)))
    assert code == 0, err
