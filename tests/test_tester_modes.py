"""The four MT5 tester modes on real data (../shared/data): granularity ordering and real ticks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mt5tester.config import parse_config
from mt5tester.data.importers import read_ticks_parquet
from mt5tester.engine.build import build
from mt5tester.engine.loop import Runner
from mt5tester.model import constants as C

from conftest import STRATEGIES_FILE, base_config

MIN = 60_000_000_000


def _m1_folder(shared_data: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "EURUSD_M1_real.parquet").symlink_to(shared_data / "m1" / "EURUSD_M1_2018-2019.parquet")
    return folder


def _run(raw: dict, tmp_path: Path) -> Runner:
    runner = Runner(build(parse_config(raw), tmp_path))
    runner.run()
    return runner


@pytest.fixture(scope="module")
def mode_runs(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Runner]:
    tmp = tmp_path_factory.mktemp("modes")
    data = _m1_folder(shared_data, tmp)
    runs = {}
    for mode in ("open_prices", "ohlc_m1", "every_tick"):
        raw = base_config(data, tmp, start="2018-03-01", end="2018-05-01", tester_mode=mode, warmup_bars=60)
        raw["strategies"] = [
            {"class": "ma_cross", "params": {"fast": 8, "slow": 21, "sl_points": 60, "tp_points": 90}}
        ]
        raw["execution"] = {"spread": {"source": "fixed", "points": 8}}
        raw["results"]["database_url"] = f"sqlite:///{tmp / (mode + '.sqlite')}"
        runs[mode] = _run(raw, tmp)
    return runs


def _exits(r: Runner) -> list:
    return [
        d
        for d in r.c.server.deals
        if d.entry == C.DEAL_ENTRY_OUT and d.reason in (C.DEAL_REASON_SL, C.DEAL_REASON_TP)
    ]


def test_modes_same_signals_and_entries(mode_runs: dict[str, Runner]) -> None:
    entries = {
        m: [d.time for d in r.c.server.deals if d.entry == C.DEAL_ENTRY_IN and d.type != 2]
        for m, r in mode_runs.items()
    }
    # Entries happen at decision points (bar closes), identical while the exits agree; all modes trade.
    assert all(len(e) > 40 for e in entries.values())
    assert entries["ohlc_m1"][:5] == entries["every_tick"][:5] == entries["open_prices"][:5]


def test_modes_exit_time_granularity_open_prices_coarsest(mode_runs: dict[str, Runner]) -> None:
    open_exits, m1_exits, tick_exits = (
        _exits(mode_runs[m]) for m in ("open_prices", "ohlc_m1", "every_tick")
    )
    # open prices: SL/TP resolved on the tested H1 bars -> exit times on whole hours
    assert open_exits and all(d.time % (60 * MIN) == 0 for d in open_exits)
    # 1 minute OHLC: on M1 bars -> whole minutes, not all on the hour
    assert m1_exits and all(d.time % MIN == 0 for d in m1_exits)
    assert any(d.time % (60 * MIN) != 0 for d in m1_exits)
    # every tick: generated ticks inside the minute -> some exits strictly inside a minute
    assert tick_exits and any(d.time % MIN != 0 for d in tick_exits)


def test_modes_ambiguity_falls_with_finer_modelling(mode_runs: dict[str, Runner]) -> None:
    amb = {m: r.funnel.ambiguous_bars for m, r in mode_runs.items()}
    assert amb["open_prices"] > amb["ohlc_m1"] >= amb["every_tick"] == 0


def test_every_tick_is_reproducible_with_the_seed(
    shared_data: Path, tmp_path: Path, mode_runs: dict[str, Runner]
) -> None:
    data = _m1_folder(shared_data, tmp_path)
    raw = base_config(
        data, tmp_path, start="2018-03-01", end="2018-05-01", tester_mode="every_tick", warmup_bars=60
    )
    raw["strategies"] = [
        {"class": "ma_cross", "params": {"fast": 8, "slow": 21, "sl_points": 60, "tp_points": 90}}
    ]
    raw["execution"] = {"spread": {"source": "fixed", "points": 8}}
    again = _run(raw, tmp_path)
    first = mode_runs["every_tick"].c.server.deals
    assert [(d.time, d.price, d.profit) for d in again.c.server.deals] == [
        (d.time, d.price, d.profit) for d in first
    ]


def test_real_ticks_mode_fills_and_exits_at_recorded_bid_ask(shared_data: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    src = shared_data / "ticks" / "EURUSD_ticks_2014-05-01_2014-05-15_oanda.parquet"
    (data / "EURUSD_ticks_oanda.parquet").symlink_to(src)
    script = [
        {"at": "2014-05-07T10:00:00Z", "direction": "buy", "volume": 1.0, "sl_points": 50, "tp_points": 50}
    ]
    raw = base_config(
        data,
        tmp_path,
        start="2014-05-06",
        end="2014-05-09",
        tester_mode="real_ticks",
        primary_timeframe="M5",
        warmup_bars=5,
    )
    raw["strategies"] = [{"class": f"{STRATEGIES_FILE}:Scripted", "name": "s", "params": {"script": script}}]
    runner = _run(raw, tmp_path)
    ticks = read_ticks_parquet(src, "EURUSD")
    buy, out = runner.c.server.deals[1:3]
    # the buy fills at the recorded ask of the first tick at/after the 10:00 decision point's bar open
    t0 = pd.Timestamp("2014-05-07T10:00Z").value
    first = int(np.searchsorted(ticks.time, t0, "left"))
    assert buy.price == ticks.ask[first]
    # the exit is a recorded tick: its time and bid (a buy closes at Bid) are in the file
    j = int(np.searchsorted(ticks.time, out.time, "left"))
    assert ticks.time[j] == out.time and out.reason in (C.DEAL_REASON_SL, C.DEAL_REASON_TP)
    assert out.price == ticks.bid[j]
