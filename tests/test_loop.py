"""The loop: what strategies see (no lookahead, warm-up rows) and exact deals of scripted scenarios."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from mt5tester.config import parse_config
from mt5tester.data.store import read_m1_parquet
from mt5tester.engine.build import build
from mt5tester.engine.loop import Runner
from mt5tester.results import db
from mt5tester.results.memory import MemorySink

from conftest import STRATEGIES_FILE, base_config


def _run(raw: dict, tmp_path: Path) -> Runner:
    """The run as configured (a bars_only strategy: the signal pass, then the kernel when it can send its
    signals), checked against the same run on the Python loop (issue 14: every scenario on both drivers):
    the same deals and history orders."""
    cfg = parse_config(raw)
    runner = Runner(build(cfg, tmp_path))
    runner.run()
    loop = Runner(build(cfg, tmp_path), sink=MemorySink())
    loop.driver = "loop"
    loop.run()
    assert list(loop.c.server.deals) == list(runner.c.server.deals)
    assert list(loop.c.server.history_orders) == list(runner.c.server.history_orders)
    return runner


@pytest.mark.parametrize("timeframe", ["M15", "H1", "H4"])
def test_probe_never_sees_a_bar_closing_after_now_and_gets_warmup_rows(
    demo_data: Path, tmp_path: Path, timeframe: str
) -> None:
    raw = base_config(demo_data, tmp_path, symbols=["EURUSD", "USDJPY"], warmup_bars=30, end="2024-01-10")
    raw["strategies"] = [{"class": f"{STRATEGIES_FILE}:Probe", "name": "probe", "timeframe": timeframe}]
    runner = _run(raw, tmp_path)
    probe = runner.c.strategies[0].strategy
    log = __import__(type(probe).__module__).PROBE_LOG  # the module the loader imported by file path
    assert len(log) > 80
    m1 = read_m1_parquet(next(demo_data.glob("EURUSD_M1*.parquet")), "EURUSD")
    for now, last_open, last_close, rows, symbol in log:
        assert last_close <= now, (symbol, now, last_open)
        assert rows == 30
    # The df's newest bar equals an independent pandas aggregation of M1 bars strictly before `now`.
    now, last_open, _, _, _ = next(e for e in log[len(log) // 2 :] if e[4] == "EURUSD")
    frame = pd.DataFrame({"close": m1.close, "high": m1.high}, index=pd.to_datetime(m1.time, utc=True))
    inside = frame[
        (frame.index >= pd.Timestamp(last_open, tz="UTC")) & (frame.index < pd.Timestamp(now, tz="UTC"))
    ]
    bars = runner.c.tf_bars[("EURUSD", probe.timeframe)]
    i = int(np.searchsorted(bars.time, last_open))
    assert bars.close[i] == inside["close"].iloc[-1]
    assert bars.high[i] == inside["high"].max()


def write_m1(folder: Path, symbol: str, rows: list[tuple[str, float, float, float, float, int]]) -> None:
    """Hand-written M1 bid bars: (UTC time, open, high, low, close, spread points)."""
    folder.mkdir(parents=True, exist_ok=True)
    t = pd.to_datetime([r[0] for r in rows], utc=True, format="ISO8601")
    table = pa.table(
        {
            "time": pa.array(t.as_unit("ns")),
            "open": [r[1] for r in rows],
            "high": [r[2] for r in rows],
            "low": [r[3] for r in rows],
            "close": [r[4] for r in rows],
            "tick_volume": [10] * len(rows),
            "spread": pa.array([r[5] for r in rows], pa.int32()),
        }
    )
    pq.write_table(table, folder / f"{symbol}_M1_test.parquet")


def flat_bars(
    start: str, n: int, price: float, spread: int = 10
) -> list[tuple[str, float, float, float, float, int]]:
    t0 = pd.Timestamp(start)
    return [
        ((t0 + pd.Timedelta(minutes=i)).isoformat(), price, price, price, price, spread) for i in range(n)
    ]


def scenario_config(data: Path, tmp: Path, script: list[dict], **bt: object) -> dict:
    settings: dict[str, object] = {"start": "2024-01-02", "end": "2024-01-03", "warmup_bars": 2}
    raw = base_config(data, tmp, **{**settings, "primary_timeframe": "M5", **bt})
    raw["strategies"] = [
        {"class": f"{STRATEGIES_FILE}:Scripted", "name": "script", "params": {"script": script}}
    ]
    raw["symbols"] = {"EURUSD": {"commission": 3.5}}
    return raw


def test_scenario_buy_then_take_profit_exact_deals(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bars = flat_bars("2024-01-01T23:50", 20, 1.10000)  # warm-up and first M5 closes at 00:00, 00:05
    bars += [
        ("2024-01-02T00:10", 1.10010, 1.10020, 1.10000, 1.10015, 12),  # fill bar: buy at ask 1.10010 + 12 pts
        ("2024-01-02T00:11", 1.10015, 1.10060, 1.10010, 1.10050, 10),
        ("2024-01-02T00:12", 1.10050, 1.10150, 1.10040, 1.10140, 10),  # bid high reaches the TP 1.10122
        ("2024-01-02T00:13", 1.10140, 1.10150, 1.10130, 1.10140, 10),
    ]
    bars += flat_bars("2024-01-02T00:14", 30, 1.10140)
    write_m1(data, "EURUSD", bars)
    script = [
        {"at": "2024-01-02T00:10:00Z", "direction": "buy", "volume": 1.0, "tp_points": 100, "sl_points": 50}
    ]
    runner = _run(scenario_config(data, tmp_path, script), tmp_path)
    d = runner.c.server.deals
    assert [(x.type, x.entry, x.reason) for x in d] == [(2, 0, 0), (0, 0, 3), (1, 1, 5)]
    buy, tp = d[1], d[2]
    assert buy.price == pytest.approx(1.10022) and buy.volume == 1.0 and buy.commission == -3.5
    assert buy.time == pd.Timestamp("2024-01-02T00:10Z").value
    assert tp.price == pytest.approx(1.10122) and tp.comment == "[tp 1.10122]"
    assert tp.time == pd.Timestamp("2024-01-02T00:12Z").value
    assert tp.profit == 100.0 and tp.commission == -3.5
    assert runner.c.server.balance == 10_000 + 100.0 - 7.0
    assert runner.funnel.closed["tp"] == 1


def test_scenario_sell_stop_loss_gapped_fills_at_open_not_level(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bars = flat_bars("2024-01-01T23:50", 20, 1.10000, spread=10)
    bars += [
        ("2024-01-02T00:10", 1.10000, 1.10010, 1.09990, 1.10000, 10),  # sell at bid 1.10000, SL ask 1.10050
        ("2024-01-02T00:11", 1.10080, 1.10090, 1.10070, 1.10080, 10),  # opens (ask 1.10090) beyond the SL
    ]
    bars += flat_bars("2024-01-02T00:12", 30, 1.10080)
    write_m1(data, "EURUSD", bars)
    script = [{"at": "2024-01-02T00:10:00Z", "direction": "sell", "volume": 0.5, "sl_points": 50}]
    runner = _run(scenario_config(data, tmp_path, script), tmp_path)
    sell, sl = runner.c.server.deals[1:]
    assert sell.price == pytest.approx(1.10000)
    assert sl.reason == 4 and sl.price == pytest.approx(1.10090)  # the first available ask, not 1.10050
    assert sl.profit == pytest.approx(-45.0)  # 90 points x 0.5 lot x 1 USD


def test_scenario_sl_and_tp_in_one_bar_is_pessimistic_and_counted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bars = flat_bars("2024-01-01T23:50", 20, 1.10000, spread=0)
    bars += [("2024-01-02T00:10", 1.10000, 1.10200, 1.09800, 1.10000, 0)]
    bars += flat_bars("2024-01-02T00:11", 30, 1.10000, spread=0)
    write_m1(data, "EURUSD", bars)
    script = [
        {"at": "2024-01-02T00:10:00Z", "direction": "buy", "volume": 1.0, "sl_points": 100, "tp_points": 100}
    ]
    runner = _run(scenario_config(data, tmp_path, script), tmp_path)
    assert runner.c.server.deals[-1].reason == 4
    assert runner.c.server.deals[-1].profit == -100.0
    assert runner.funnel.as_dict()["ambiguous_bars"] == 1


def test_scenario_reversal_closes_opposite_then_end_of_run_closes_rest(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bars = flat_bars("2024-01-01T23:50", 20, 1.10000, spread=10)
    bars += flat_bars("2024-01-02T00:10", 5, 1.10100, spread=10)
    bars += flat_bars("2024-01-02T00:15", 40, 1.10300, spread=10)
    write_m1(data, "EURUSD", bars)
    script = [
        {"at": "2024-01-02T00:10:00Z", "direction": "buy", "volume": 0.1},
        {"at": "2024-01-02T00:15:00Z", "direction": "sell", "volume": 0.1},
    ]
    runner = _run(scenario_config(data, tmp_path, script), tmp_path)
    d = runner.c.server.deals
    assert [(x.type, x.entry, x.price, x.comment) for x in d[1:]] == [
        (0, 0, pytest.approx(1.10110), "signal 1"),  # an entry's comment names its signal, as an EA's
        (1, 1, pytest.approx(1.10300), "signal 2"),
        (1, 0, pytest.approx(1.10300), "signal 2"),
        (0, 1, pytest.approx(1.10310), "end of run"),
    ]
    assert d[2].profit == pytest.approx(19.0) and d[4].profit == pytest.approx(-1.0)
    assert runner.funnel.closed["signal"] == 1 and runner.funnel.closed["end_of_run"] == 1


def test_scenario_max_positions_per_symbol_rejects_with_numbers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_m1(data, "EURUSD", flat_bars("2024-01-01T23:50", 60, 1.10000))
    script = [
        {"at": f"2024-01-02T00:{m:02d}:00Z", "direction": "buy", "volume": 0.1, "exit_opposite": False}
        for m in (10, 15, 20)
    ]
    raw = scenario_config(data, tmp_path, script)
    raw["coordinator"] = {"max_positions_per_symbol": 2}
    runner = _run(raw, tmp_path)
    assert runner.funnel.approved == 2
    assert dict(runner.funnel.rejected) == {"max_positions_per_symbol": 1}
    from sqlalchemy import select

    from mt5tester.results import db

    with runner.c.engine.connect() as conn:
        rows = conn.execute(select(db.signals.c.status, db.signals.c.reason, db.signals.c.details)).all()
    assert rows[2] == ("rejected", "max_positions_per_symbol", {"limit": 2, "value": 2, "symbol": "EURUSD"})


def test_account_profit_converts_quote_currency_for_usdjpy(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_m1(
        data,
        "USDJPY",
        flat_bars("2024-01-01T23:50", 20, 150.000, spread=0)
        + flat_bars("2024-01-02T00:10", 40, 150.300, spread=0),
    )
    script = [{"at": "2024-01-02T00:05:00Z", "direction": "buy", "volume": 1.0}]
    raw = scenario_config(data, tmp_path, script, symbols=["USDJPY"])
    raw["symbols"] = {}
    raw["execution"] = {"spread": {"source": "fixed", "points": 0}}
    runner = _run(raw, tmp_path)
    out = runner.c.server.deals[-1]
    # spec 5.8: (150.300 - 150.000) x 100000 JPY / 150.300 = 199.60 USD
    assert out.profit == 199.6


def test_scenario_swaps_charged_at_server_midnight_triple_on_wednesday(tmp_path: Path) -> None:
    """A 1-lot EURUSD buy held Tue 2024-01-02 .. Fri 2024-01-05 on a UTC server: nights ending Tue (1),
    Wed (3: swap_rollover3days), Thu (1) are charged: 5 x swap_long 7 points x 1 USD."""
    data = tmp_path / "data"
    bars = flat_bars("2024-01-01T23:50", 20, 1.10000, spread=0)
    t = pd.date_range("2024-01-02T00:10", "2024-01-05T12:00", freq="5min")
    bars += [(x.isoformat(), 1.10000, 1.10000, 1.10000, 1.10000, 0) for x in t]
    write_m1(data, "EURUSD", bars)
    script = [
        {"at": "2024-01-02T00:10:00Z", "direction": "buy", "volume": 1.0},
        {"at": "2024-01-05T00:05:00Z", "direction": "flat"},
    ]
    raw = scenario_config(data, tmp_path, script, end="2024-01-06")
    raw["symbols"] = {"EURUSD": {"swap_long": -7.0, "swap_mode": 1, "swap_rollover3days": 3}}
    raw["execution"] = {"spread": {"source": "fixed", "points": 0}}
    runner = _run(raw, tmp_path)
    out = runner.c.server.deals[-1]
    assert out.entry == 1 and out.profit == 0.0
    assert out.swap == -35.0  # 5 days x -7 points x 0.00001 x 100000
    assert runner.c.server.balance == 10_000 - 35.0


def test_rollover_schedule_server_midnights_in_athens_with_weekdays() -> None:
    from mt5tester.terminal.server import rollover_schedule

    start = pd.Timestamp("2024-03-29T00:00Z").value  # Friday; EU DST starts Sunday 2024-03-31
    end = pd.Timestamp("2024-04-02T00:00Z").value
    utc, dow = rollover_schedule(start, end, "Europe/Athens")
    assert [str(pd.Timestamp(x, tz="UTC")) for x in utc] == [
        "2024-03-29 22:00:00+00:00",  # Sat 00:00 EET, ends Friday (5)
        "2024-03-30 22:00:00+00:00",  # Sun 00:00 EET, ends Saturday (6)
        "2024-03-31 21:00:00+00:00",  # Mon 00:00 EEST, ends Sunday (0)
        "2024-04-01 21:00:00+00:00",  # Tue 00:00 EEST, ends Monday (1)
    ]
    assert dow.tolist() == [5, 6, 0, 1]


@pytest.mark.parametrize("probe", ["ReachProbe", "ReachProbeNumpy"])
def test_df_holds_no_view_of_later_bars(demo_data: Path, tmp_path: Path, probe: str) -> None:
    raw = base_config(demo_data, tmp_path, warmup_bars=20, end="2024-01-05")
    raw["strategies"] = [{"class": f"{STRATEGIES_FILE}:{probe}", "name": "p"}]
    runner = _run(raw, tmp_path)
    log = __import__(type(runner.c.strategies[0].strategy).__module__).REACH_LOG
    assert len(log) > 50
    assert all(rows == 20 and reach == 20 for rows, reach in log)


def test_orders_and_positions_recorded_with_mfe_mae(tmp_path: Path) -> None:
    from sqlalchemy import select

    from mt5tester.results import db

    data = tmp_path / "data"
    bars = flat_bars("2024-01-01T23:50", 20, 1.10000)
    bars += [
        ("2024-01-02T00:10", 1.10010, 1.10020, 1.09960, 1.10015, 12),  # buy at 1.10022; low 1.09960
        ("2024-01-02T00:11", 1.10015, 1.10090, 1.10010, 1.10050, 10),  # high 1.10090
        (
            "2024-01-02T00:12",
            1.10050,
            1.10150,
            1.10040,
            1.10140,
            10,
        ),  # TP 1.10122 hit (high 1.10150 after it)
    ]
    bars += flat_bars("2024-01-02T00:13", 30, 1.10140)
    write_m1(data, "EURUSD", bars)
    script = [
        {"at": "2024-01-02T00:10:00Z", "direction": "buy", "volume": 1.0, "tp_points": 100, "sl_points": 90}
    ]
    runner = _run(scenario_config(data, tmp_path, script), tmp_path)
    with runner.c.engine.connect() as conn:
        pos = (
            conn.execute(select(db.positions).where(db.positions.c.run_id == runner.run_id)).mappings().all()
        )
        orders = conn.execute(
            select(db.orders.c.type, db.orders.c.state, db.orders.c.reason)
            .where(db.orders.c.run_id == runner.run_id)
            .order_by(db.orders.c.ticket)
        ).all()
    assert orders == [(0, 4, 3), (1, 4, 5)]  # buy filled (expert), its TP close (ORDER_REASON_TP)
    (p,) = pos
    assert (p["type"], p["volume"], p["price_open"], p["price_close"], p["close_reason"]) == (
        0,
        1.0,
        1.10022,
        1.10122,
        5,
    )
    # MFE: the exit 1.10122 (the exit bar's 1.10150 came after the exit): +100.00; MAE: low 1.09960: -62.00
    assert (p["mfe"], p["mae"], p["net"]) == (100.0, -62.0, 93.0)


def test_daily_equity_rows_one_per_server_day_last_sample(demo_data: Path, tmp_path: Path) -> None:
    from sqlalchemy import select

    from mt5tester.results import db

    raw = base_config(demo_data, tmp_path, end="2024-01-10", server_timezone="Europe/Athens")
    runner = _run(raw, tmp_path)
    with runner.c.engine.connect() as conn:
        daily = conn.execute(
            select(
                db.daily_equity.c.day,
                db.daily_equity.c.time,
                db.daily_equity.c.equity,
                db.daily_equity.c.equity_min,
            )
            .where(db.daily_equity.c.run_id == runner.run_id)
            .order_by(db.daily_equity.c.day)
        ).all()
        eq = conn.execute(
            select(db.equity.c.time, db.equity.c.equity)
            .where(db.equity.c.run_id == runner.run_id)
            .order_by(db.equity.c.time)
        ).all()
    days = pd.to_datetime([t for t, _ in eq], utc=True).tz_convert("Europe/Athens").strftime("%Y-%m-%d")
    assert [d[0] for d in daily] == sorted(set(days))
    last = {}
    for (t, e), day in zip(eq, days, strict=True):
        last[day] = (t, e)
    assert [(d[1], d[2]) for d in daily] == [last[d[0]] for d in daily]
    assert all(d[3] <= d[2] for d in daily)


def _equity_rows(runner: Runner) -> list[tuple]:
    from sqlalchemy import select

    from mt5tester.results import db

    e = db.equity
    with runner.c.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(e.c.time, e.c.balance, e.c.equity, e.c.margin, e.c.open_positions)
                .where(e.c.run_id == runner.run_id)
                .order_by(e.c.time)
            )
        ]


def test_equity_sampling_keeps_first_point_of_each_server_period(demo_data: Path, tmp_path: Path) -> None:
    raw = base_config(demo_data, tmp_path, end="2024-01-12", primary_timeframe="M15", warmup_bars=30)
    raw["backtest"]["server_timezone"] = "Europe/Athens"
    every = _run(raw, tmp_path / "every")
    raw["results"]["equity_sampling"] = "H4"
    sampled = _run(raw, tmp_path / "sampled")
    assert every.c.server.deals == sampled.c.server.deals  # sampling changes what is stored, not trading
    rows = _equity_rows(every)
    points, end_row = rows[:-1], rows[-1]
    wall = pd.to_datetime([r[0] for r in points], utc=True).tz_convert("Europe/Athens").tz_localize(None)
    bucket = wall.floor("4h")
    first = [i for i in range(len(points)) if i == 0 or bucket[i] != bucket[i - 1]]
    expected = [points[i] for i in sorted({*first, len(points) - 1})] + [end_row]
    assert _equity_rows(sampled) == expected
    assert len(expected) < len(rows) / 10  # 4 hours of M15 points per row


def test_equity_sampling_rejects_unknown_timeframe(demo_data: Path, tmp_path: Path) -> None:
    from mt5tester.errors import ConfigError

    raw = base_config(demo_data, tmp_path)
    raw["results"]["equity_sampling"] = "H7"
    with pytest.raises(ConfigError, match=r"results\.equity_sampling.*'point' or a timeframe name"):
        parse_config(raw)


@pytest.mark.parametrize(
    ("tp", "invalid", "failed"),
    [
        # right for the closed bar (bid 1.10000) but the market gapped to 1.10300 since: MT5's Invalid stops
        (1.10200, {}, {"Invalid stops": 1}),
        # wrong already for the bar the strategy saw: a strategy bug (an invalid signal)
        (
            1.09900,
            {"script": {"stops on the wrong side: buy with its TP on the wrong side of the price": 1}},
            {},
        ),
    ],
)
def test_stops_wrong_after_a_gap_are_a_market_refusal_wrong_for_the_bar_a_bug(
    tmp_path: Path, tp: float, invalid: dict, failed: dict
) -> None:
    data = tmp_path / "data"
    bars = flat_bars("2024-01-01T23:50", 20, 1.10000) + flat_bars("2024-01-02T00:10", 30, 1.10300)
    write_m1(data, "EURUSD", bars)
    script = [{"at": "2024-01-02T00:10:00Z", "direction": "buy", "volume": 0.1, "tp": tp}]
    raw = scenario_config(data, tmp_path, script, on_strategy_error="continue")
    f = _run(raw, tmp_path).funnel.as_dict()
    assert (f["invalid_by_strategy"], f["order_failed"], f["executed"]) == (invalid, failed, 0)


@pytest.mark.parametrize("mode", ["netting", "hedging"])
def test_signal_rows_record_the_position_id_not_the_order_ticket(tmp_path: Path, mode: str) -> None:
    """Two buys on one symbol: in netting mode they add to one position, so both signal rows carry
    its id; in hedging mode each opens its own position, whose id is its order's ticket."""
    data = tmp_path / "data"
    write_m1(data, "EURUSD", flat_bars("2024-01-01T23:50", 60, 1.10000))
    script = [
        {"at": f"2024-01-02T00:{m:02d}:00Z", "direction": "buy", "volume": 0.1, "exit_opposite": False}
        for m in (10, 15)
    ]
    runner = _run(scenario_config(data, tmp_path, script, account_mode=mode), tmp_path)
    from sqlalchemy import select

    from mt5tester.results import db

    with runner.c.engine.connect() as conn:
        rows = conn.execute(
            select(db.signals.c.order_ticket, db.signals.c.position_id).order_by(db.signals.c.signal_id)
        ).all()
    positions = {d.order: d.position_id for d in runner.c.server.deals if d.order}
    assert [r.position_id for r in rows] == [positions[r.order_ticket] for r in rows]
    if mode == "netting":
        assert rows[0].position_id == rows[1].position_id and rows[1].order_ticket != rows[1].position_id
    else:
        assert [r.position_id for r in rows] == [r.order_ticket for r in rows]
        assert rows[0].position_id != rows[1].position_id


def test_engine_orders_go_through_order_send_with_magic_and_comment(tmp_path: Path) -> None:
    """The engine sends as a live EA does: order_send on the strategies' MetaTrader5 module, the
    strategy in ``magic`` and the signal in ``comment``; the stored deals get both back from there.
    The circuit breaker's close goes the same way, with its comment."""
    data = tmp_path / "data"
    bars = flat_bars("2024-01-01T23:50", 25, 1.10000) + flat_bars("2024-01-02T00:15", 40, 1.09700)
    write_m1(data, "EURUSD", bars)
    script = [
        {"at": "2024-01-02T00:10:00Z", "direction": "buy", "volume": 1.0, "exit_opposite": False},
        {"at": "2024-01-02T00:20:00Z", "direction": "buy", "volume": 0.1, "exit_opposite": False},
    ]
    raw = scenario_config(data, tmp_path, script)
    raw["coordinator"] = {"daily_loss_limit_pct": 1.0, "close_all_on_breach": True}
    runner = Runner(build(parse_config(raw), tmp_path))
    sent: list[dict] = []
    send = runner.ctx.mt5.order_send
    runner.ctx.mt5.order_send = lambda request: sent.append(request) or send(request)
    result = runner.run()

    magic = result.funnel["magic_numbers"]["script"]
    assert [(r["magic"], r["comment"], r["position"] > 0) for r in sent] == [
        (magic, "signal 1", False),  # the entry
        (magic, "circuit breaker", True),  # the breach at 00:20 closes everything
    ]
    d = runner.c.server.deals
    assert [(x.entry, x.magic, x.comment) for x in d[1:]] == [
        (0, magic, "signal 1"),
        (1, magic, "circuit breaker"),
    ]
    with runner.c.engine.connect() as conn:
        stored = conn.execute(
            select(db.deals.c.strategy, db.deals.c.signal_id)
            .where(db.deals.c.type < 2)
            .order_by(db.deals.c.ticket)
        ).all()
    assert [tuple(r) for r in stored] == [("script", 1), ("script", 1)]
    assert d[2].time == pd.Timestamp("2024-01-02T00:20Z").value and d[2].price == pytest.approx(1.097)
    assert result.funnel["circuit_breaker_closes"] == 1
    assert result.funnel["rejected"] == {"daily_loss_limit": 1}


def test_loop_fits_one_screen_and_only_the_router_talks_to_the_trade_server() -> None:
    """engine/loop.py stays a one-screen loop (issue 13: at most 120 lines); orders reach the trade
    server only through the router (the terminal's order_send hook)."""
    engine = Path(__file__).resolve().parents[1] / "src" / "mt5tester" / "engine"
    assert len((engine / "loop.py").read_text().splitlines()) <= 120
    for path in engine.glob("*.py"):
        text = path.read_text()
        assert "close_position(" not in text, path.name  # closes at the end go through order_send too
        if path.name != "router.py":
            assert "server.send(" not in text, path.name
