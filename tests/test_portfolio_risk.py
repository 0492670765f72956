"""Coordinator and regimes in full runs on ../shared/data: correlation filter, regime gating."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mt5tester.config import RegimeParams, parse_config
from mt5tester.engine.build import build
from mt5tester.engine.loop import Runner
from mt5tester.model import constants as C
from mt5tester.regime.detectors import detect

from conftest import base_config

SYMBOLS = ["EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCHF", "USDCAD", "XAUUSD"]


def _folder(shared: Path, tmp: Path) -> Path:
    d = tmp / "data"
    d.mkdir(exist_ok=True)
    for s in SYMBOLS:
        link = d / f"{s}_M1_x.parquet"
        if not link.exists():
            link.symlink_to(shared / "m1" / f"{s}_M1_2018-2019.parquet")
    return d


def _raw(shared: Path, tmp: Path, **coordinator: object) -> dict:
    raw = base_config(
        _folder(shared, tmp), tmp, start="2018-03-01", end="2018-06-01", symbols=SYMBOLS, warmup_bars=60
    )
    raw["symbols"] = {"XAUUSD": {"digits": 3}}
    raw["execution"] = {"spread": {"source": "fixed", "points": 10}}
    raw["strategies"] = [
        {"class": "ma_cross", "params": {"fast": 10, "slow": 30, "sl_points": 400, "tp_points": 800}}
    ]
    raw["coordinator"] = coordinator
    return raw


def _run(raw: dict, tmp: Path) -> Runner:
    runner = Runner(build(parse_config(raw), tmp))
    runner.run()
    return runner


def same_direction_overlaps(runner: Runner, a: str, b: str) -> int:
    """Pairs of positions in ``a`` and ``b`` open at the same time in the same direction."""
    spans: dict[int, list] = {}
    for d in runner.c.server.deals:
        if d.type not in (0, 1):
            continue
        if d.entry == C.DEAL_ENTRY_IN:
            spans[d.position_id] = [d.symbol, d.type, d.time, None]
        elif d.position_id in spans:
            spans[d.position_id][3] = d.time
    pos = [v for v in spans.values() if v[3] is not None]
    return sum(
        1 for p in pos if p[0] == a for q in pos if q[0] == b and q[1] == p[1] and p[2] < q[3] and q[2] < p[3]
    )


@pytest.fixture(scope="module")
def correlation_runs(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Runner, Runner]:
    tmp = tmp_path_factory.mktemp("corr")
    off = _run(_raw(shared_data, tmp), tmp)
    on = _run(
        _raw(shared_data, tmp, max_correlation=0.6, correlation_window=100, correlation_timeframe="H1"), tmp
    )
    return off, on


def test_correlation_filter_drops_simultaneous_eurusd_gbpusd_positions(
    correlation_runs: tuple[Runner, Runner],
) -> None:
    off, on = correlation_runs
    n_off = same_direction_overlaps(off, "EURUSD", "GBPUSD")
    n_on = same_direction_overlaps(on, "EURUSD", "GBPUSD")
    print(f"same-direction EURUSD/GBPUSD overlaps: filter off {n_off}, on {n_on}")
    assert n_off > 0 and n_on < n_off
    assert on.funnel.rejected["max_correlation"] > 0 and "max_correlation" not in off.funnel.rejected


def test_correlation_rejections_recorded_with_numbers(correlation_runs: tuple[Runner, Runner]) -> None:
    from sqlalchemy import select

    from mt5tester.results import db

    _, on = correlation_runs
    with on.c.engine.connect() as conn:
        rows = conn.execute(
            select(db.signals.c.rule, db.signals.c.reason, db.signals.c.details).where(
                db.signals.c.run_id == on.run_id, db.signals.c.reason == "max_correlation"
            )
        ).all()
    assert rows
    rule, reason, details = rows[0]
    assert reason == "max_correlation"
    assert rule == "max_correlation" and details["limit"] == 0.6 and abs(details["value"]) > 0.6


def test_regime_gating_changes_trades_and_labels_are_recorded(shared_data: Path, tmp_path: Path) -> None:
    raw = _raw(shared_data, tmp_path)
    raw["backtest"]["symbols"] = ["EURUSD"]
    raw["regime"] = {"enabled": True, "timeframe": "H4", "atr_pct_window": 100}
    free = _run(raw, tmp_path)
    gated_raw = {
        **raw,
        "coordinator": {"regime_gate": {"MovingAverageCross": ["trending_up", "trending_down"]}},
    }
    gated = _run(gated_raw, tmp_path)
    trades = [len([d for d in r.c.server.deals if d.entry == 1]) for r in (free, gated)]
    assert trades[1] < trades[0]
    assert gated.funnel.rejected["regime_not_allowed"] > 0
    from sqlalchemy import select

    from mt5tester.results import db

    with gated.c.engine.connect() as conn:
        tags = [
            r[0] for r in conn.execute(select(db.signals.c.tags).where(db.signals.c.run_id == gated.run_id))
        ]
    assert tags and all(
        t.get("regime") in {"trending_up", "trending_down", "ranging", "volatile", "unknown"} for t in tags
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("method", "hmm"),
        ("timeframe", "H1"),
        ("adx_period", 10),
        ("adx_trend", 35.0),
        ("atr_period", 7),
        ("atr_pct_window", 200),
        ("atr_volatile_pct", 70.0),
        ("hmm_states", 4),
        ("hmm_train_bars", 300),
        ("hmm_refit_every", 60),
        ("hmm_trend_ratio", 0.2),
        ("seed", 7),
        ("min_bars", 900),
    ],
)
def test_every_regime_key_changes_labels(shared_data: Path, key: str, value: object) -> None:
    from mt5tester.data.resample import resample
    from mt5tester.data.store import read_m1_parquet

    m1 = read_m1_parquet(shared_data / "m1" / "EURUSD_M1_2018-2019.parquet", "EURUSD")
    m1 = m1.between(int(m1.time[0]), int(np.datetime64("2019-01-01", "ns").astype(np.int64)))
    base = (
        {"method": "hmm", "hmm_train_bars": 200, "hmm_refit_every": 100}
        if key.startswith(("hmm", "seed"))
        else {}
    )
    a = RegimeParams(**base)
    b = RegimeParams(**{**base, key: value})
    bars_a = resample(m1, a.tf, "UTC")
    bars_b = resample(m1, b.tf, "UTC")
    assert not np.array_equal(detect(bars_a, a), detect(bars_b, b)), f"regime.{key} had no effect"
