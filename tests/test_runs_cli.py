"""`mt5tester runs list|show|compare|export|delete` on SQLite and PostgreSQL, on hand-made runs with
known deals (exact figures), plus the export round trip of a real backtest through `mt5tester metrics`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from mt5tester.results import db
from mt5tester.results.metrics import compute_metrics, deals_frame_from_db, read_deals_csv
from mt5tester.results.recorder import Recorder
from test_db_backends import db_url, pg_database  # noqa: F401  (fixtures: both backends)

from conftest import base_config, write_yaml

H = 3600 * 10**9
T0 = 1_704_067_200 * 10**9  # 2024-01-01 00:00:00 UTC


@dataclass
class Stored:
    url: str
    engine: Engine


def _store(engine: Engine, run_id: str, started: str, results: list[float], symbol: str = "EURUSD") -> None:
    """A completed run: deposit 10 000, then one buy-in / sell-out trade per result (profit), 1 h each."""
    rec = Recorder(engine, run_id)
    rec.start_run(
        {"backtest": {"symbols": [symbol], "start": "2024-01-01", "end": "2024-02-01"}},
        "cafe" * 4,
        42,
        10_000.0,
        "USD",
        [
            {
                "name": "ma",
                "category": "technical",
                "spec": "ma_cross",
                "source_file": "builtin",
                "source_hash": "ab" * 8,
                "params": {"fast": 5, "slow": 20},
                "timeframe": "H1",
                "symbols": [symbol],
            }
        ],
        [{"symbol": symbol, "timeframe": "M1", "score": 97.5, "bars": 1440, "report": {"gaps": 0}}],
    )
    balance = 10_000.0
    common = {"reason": 3, "symbol": symbol, "volume": 0.1, "commission": 0.0, "swap": 0.0, "strategy": "ma"}
    rec.add(
        db.deals,
        {
            **common,
            "ticket": 1,
            "order": 0,
            "time": T0,
            "type": 2,
            "entry": 0,
            "position_id": 0,
            "symbol": "",
            "volume": 0.0,
            "price": 0.0,
            "profit": balance,
            "balance": balance,
            "comment": "deposit",
            "strategy": "",
        },
    )
    for i, result in enumerate(results):
        t, pos = T0 + (2 * i + 1) * H, 2 * i + 2
        balance = round(balance + result, 2)
        rec.add(
            db.signals,
            {
                "signal_id": i + 1,
                "time": t,
                "strategy": "ma",
                "symbol": symbol,
                "timeframe": "H1",
                "direction": "buy",
                "order_type": "market",
                "confidence": 1.0,
                "comment": "",
                "tags": {},
                "status": "approved",
                "volume": 0.1,
            },
        )
        rec.add(
            db.deals,
            {
                **common,
                "ticket": pos,
                "order": pos,
                "time": t,
                "type": 0,
                "entry": 0,
                "position_id": pos,
                "price": 1.1,
                "profit": 0.0,
                "balance": balance - result,
                "comment": "in",
                "signal_id": i + 1,
            },
        )
        rec.add(
            db.deals,
            {
                **common,
                "ticket": pos + 1,
                "order": pos + 1,
                "time": t + H,
                "type": 1,
                "entry": 1,
                "position_id": pos,
                "price": 1.1 + result / 10_000,
                "profit": result,
                "balance": balance,
                "comment": "out",
            },
        )
        rec.add(
            db.equity,
            {
                "time": t,
                "balance": balance - result,
                "equity": balance - result,
                "margin": 110.0,
                "open_positions": 1,
            },
        )
    with engine.begin() as conn:
        conn.execute(
            db.checkpoints.insert().values(
                run_id=run_id,
                seq=1,
                time_ns=T0,
                created_at=started,
                state=b"state",
                recorder_position={"deals": 1},
            )
        )
        conn.execute(db.runs.update().where(db.runs.c.run_id == run_id).values(started_at=started))
    rec.finish(
        "completed", {"signals_generated": len(results), "rejected": {}, "margin_level_min": 9000.0}, None
    )
    with engine.begin() as conn:  # finish() stamps the real clock: pin it for exact expectations
        conn.execute(db.runs.update().where(db.runs.c.run_id == run_id).values(finished_at=started))


@pytest.fixture
def stored(db_url: str) -> Stored:  # noqa: F811
    engine = db.connect(db_url, use_env=False)
    _store(engine, "aaa111", "2024-05-01T10:00:00+00:00", [50.0, -20.0])
    _store(engine, "bbb222", "2024-05-02T10:00:00+00:00", [10.0, 15.5, -3.25], symbol="GBPUSD")
    return Stored(db_url, engine)


def test_runs_list_json_newest_first_with_net_profit_and_trades(stored: Stored, run_cli) -> None:
    code, out, err = run_cli("runs", "list", "--db", stored.url, "--json")

    assert code == 0, err
    assert json.loads(out) == [
        {
            "run_id": "bbb222",
            "status": "completed",
            "started_at": "2024-05-02T10:00:00+00:00",
            "finished_at": "2024-05-02T10:00:00+00:00",
            "symbols": ["GBPUSD"],
            "strategies": ["ma"],
            "net_profit": 22.25,
            "trades": 3,
            "deals": 7,
        },
        {
            "run_id": "aaa111",
            "status": "completed",
            "started_at": "2024-05-01T10:00:00+00:00",
            "finished_at": "2024-05-01T10:00:00+00:00",
            "symbols": ["EURUSD"],
            "strategies": ["ma"],
            "net_profit": 30.0,
            "trades": 2,
            "deals": 5,
        },
    ]


def test_runs_list_table_and_limit(stored: Stored, run_cli) -> None:
    code, out, err = run_cli("runs", "list", "--db", stored.url, "--limit", "1")

    assert code == 0, err
    assert "bbb222" in out and "aaa111" not in out
    assert "22.25" in out and "2024-05-02 10:00:00" in out


def test_runs_show_json_has_run_funnel_strategies_health_metrics(stored: Stored, run_cli) -> None:
    code, out, err = run_cli("runs", "show", "aaa", "--db", stored.url, "--json")

    assert code == 0, err
    d = json.loads(out)
    assert d["run"]["run_id"] == "aaa111"
    assert (d["run"]["deposit"], d["run"]["currency"], d["run"]["seed"]) == (10_000.0, "USD", 42)
    assert d["funnel"] == {"signals_generated": 2, "rejected": {}, "margin_level_min": 9000.0}
    assert [(s["name"], s["timeframe"], s["params"]) for s in d["strategies"]] == [
        ("ma", "H1", {"fast": 5, "slow": 20})
    ]
    assert d["data_health"] == [
        {"symbol": "EURUSD", "timeframe": "M1", "score": 97.5, "bars": 1440, "report": {"gaps": 0}}
    ]
    assert d["rows"] == {
        "runs": 1,
        "checkpoints": 1,
        "daily_equity": 0,
        "data_health": 1,
        "deals": 5,
        "equity": 2,
        "live_requests": 0,
        "live_sessions": 0,
        "orders": 0,
        "positions": 0,
        "run_strategies": 1,
        "signals": 2,
        "strategy_errors": 0,
    }
    assert d["schema_revision"] == "0007"
    m = d["metrics"]
    assert (m["total_net_profit"], m["gross_profit"], m["gross_loss"]) == (30.0, 50.0, -20.0)
    assert (m["total_trades"], m["profit_trades"], m["loss_trades"], m["total_deals"]) == (2, 1, 1, 4)
    assert m["profit_factor"] == 2.5
    assert m["margin_level_min"] == 9000.0
    assert m["equity_source"] == "equity samples"


def test_runs_show_table(stored: Stored, run_cli) -> None:
    code, out, err = run_cli("runs", "show", "bbb222", "--db", stored.url)

    assert code == 0, err
    for text in ("Run bbb222", "Lifecycle funnel", "Strategies", "Data health", "Total Net Profit", "22.25"):
        assert text in out


def test_runs_unknown_run_exit_6_lists_existing_ids(stored: Stored, run_cli) -> None:
    for args in (
        ["show", "zzz"],
        ["compare", "aaa111", "zzz"],
        ["export", "zzz"],
        ["delete", "zzz", "--yes"],
    ):
        code, _, err = run_cli("runs", *args, "--db", stored.url)
        assert code == 6, args
        assert "no run 'zzz'" in err
        assert "runs there: bbb222, aaa111" in err


def test_runs_ambiguous_prefix_exit_6(stored: Stored, run_cli) -> None:
    _store(stored.engine, "aaa999", "2024-05-03T10:00:00+00:00", [1.0])

    code, _, err = run_cli("runs", "show", "aaa", "--db", stored.url)

    assert code == 6
    assert "run id prefix 'aaa' is ambiguous: aaa999, aaa111" in err


def test_runs_compare_json_side_by_side(stored: Stored, run_cli) -> None:
    code, out, err = run_cli("runs", "compare", "aaa111", "bbb222", "--db", stored.url, "--json")

    assert code == 0, err
    d = json.loads(out)
    assert list(d) == ["aaa111", "bbb222"]
    assert (d["aaa111"]["total_net_profit"], d["bbb222"]["total_net_profit"]) == (30.0, 22.25)
    assert (d["aaa111"]["total_trades"], d["bbb222"]["total_trades"]) == (2, 3)


def test_runs_compare_table_and_needs_two_runs(stored: Stored, run_cli) -> None:
    code, out, err = run_cli("runs", "compare", "aaa111", "bbb222", "--db", stored.url)
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if "Total Net Profit" in ln)
    assert [c.strip() for c in line.split("│")] == ["", "Total Net Profit", "30.00", "22.25", ""]

    code, _, err = run_cli("runs", "compare", "aaa111", "--db", stored.url)
    assert code == 2
    assert "compare needs at least two runs" in err


def test_runs_export_csv_deals_in_mt5_layout(stored: Stored, run_cli, tmp_path: Path) -> None:
    out_dir = tmp_path / "x"
    code, out, err = run_cli("runs", "export", "aaa111", "--out", str(out_dir), "--db", stored.url, "--json")

    assert code == 0, err
    res = json.loads(out)
    # this stored run has no positions or orders rows: their files are written with headers only
    assert res["rows"] == {
        "deals": 5,
        "positions": 0,
        "orders": 0,
        "equity": 2,
        "signals": 2,
        "strategy_errors": 0,
    }
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "deals.csv",
        "equity.csv",
        "orders.csv",
        "positions.csv",
        "run.json",
        "signals.csv",
        "strategy_errors.csv",
    ]
    assert (out_dir / "deals.csv").read_text().splitlines() == [
        "Time,Deal,Symbol,Type,Direction,Volume,Price,Order,Commission,Swap,Profit,Balance,Comment,Position,Strategy",
        "2024.01.01 00:00:00,1,,balance,,0.0,0.0,0,0.00,0.00,10000.00,10000.00,deposit,0,",
        "2024.01.01 01:00:00,2,EURUSD,buy,in,0.1,1.1,2,0.00,0.00,0.00,10000.00,in,2,ma",
        "2024.01.01 02:00:00,3,EURUSD,sell,out,0.1,1.105,3,0.00,0.00,50.00,10050.00,out,2,ma",
        "2024.01.01 03:00:00,4,EURUSD,buy,in,0.1,1.1,4,0.00,0.00,0.00,10050.00,in,4,ma",
        "2024.01.01 04:00:00,5,EURUSD,sell,out,0.1,1.098,5,0.00,0.00,-20.00,10030.00,out,4,ma",
    ]
    assert json.loads((out_dir / "run.json").read_text())["run"]["run_id"] == "aaa111"
    equity = pd.read_csv(out_dir / "equity.csv")
    assert equity["equity"].tolist() == [10_000.0, 10_050.0]


def test_runs_export_parquet_reads_back(stored: Stored, run_cli, tmp_path: Path) -> None:
    code, _, err = run_cli(
        "runs", "export", "bbb222", "--format", "parquet", "--out", str(tmp_path), "--db", stored.url
    )

    assert code == 0, err
    deals = pd.read_parquet(tmp_path / "deals.parquet")
    assert deals["Profit"].tolist() == [10_000.0, 0.0, 10.0, 0.0, 15.5, 0.0, -3.25]
    assert deals["Type"].tolist() == ["balance", "buy", "sell", "buy", "sell", "buy", "sell"]
    assert str(deals["Time"].dt.tz) == "UTC"
    signals = pd.read_parquet(tmp_path / "signals.parquet")
    assert signals["signal_id"].tolist() == [1, 2, 3]
    assert json.loads(signals["tags"].iloc[0]) == {}


def test_runs_export_round_trip_through_metrics_same_as_database(
    stored: Stored, run_cli, tmp_path: Path
) -> None:
    run_cli("runs", "export", "bbb222", "--out", str(tmp_path), "--db", stored.url)

    code, out, err = run_cli("metrics", str(tmp_path / "deals.csv"), "--json")

    assert code == 0, err
    assert (
        json.loads(out) == compute_metrics(deals_frame_from_db(stored.engine, "bbb222"), 10_000.0).to_dict()
    )


def test_runs_delete_removes_rows_of_every_table_only_of_that_run(stored: Stored, run_cli) -> None:
    code, out, err = run_cli("runs", "delete", "aaa111", "--yes", "--db", stored.url, "--json")

    assert code == 0, err
    assert json.loads(out) == {
        "run_id": "aaa111",
        "deleted": {
            "strategy_errors": 0,
            "signals": 2,
            "run_strategies": 1,
            "positions": 0,
            "orders": 0,
            "equity": 2,
            "deals": 5,
            "data_health": 1,
            "daily_equity": 0,
            "checkpoints": 1,
            "live_requests": 0,
            "live_sessions": 0,
            "runs": 1,
        },
    }
    with stored.engine.connect() as conn:
        for t in db.metadata.sorted_tables:
            left = conn.execute(select(t.c.run_id, func.count()).group_by(t.c.run_id)).all()
            assert all(run_id == "bbb222" for run_id, _ in left), t.name
    code, out, _ = run_cli("runs", "list", "--db", stored.url, "--json")
    assert [r["run_id"] for r in json.loads(out)] == ["bbb222"]


def test_runs_delete_without_yes_and_no_terminal_exit_2_deletes_nothing(stored: Stored, run_cli) -> None:
    code, _, err = run_cli("runs", "delete", "aaa111", "--db", stored.url)

    assert code == 2
    assert "needs --yes" in err
    code, out, _ = run_cli("runs", "list", "--db", stored.url, "--json")
    assert len(json.loads(out)) == 2


def test_runs_list_missing_sqlite_file_exit_6_creates_nothing(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "none" / "r.sqlite"

    code, _, err = run_cli("runs", "list", "--db", f"sqlite:///{path}")

    assert code == 6
    assert f"no results database at {path}" in err
    assert not path.parent.exists()


def test_runs_db_defaults_to_env_url(stored: Stored, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MT5TESTER_DB_URL", stored.url)

    code, out, err = run_cli("runs", "list", "--json")

    assert code == 0, err
    assert [r["run_id"] for r in json.loads(out)] == ["bbb222", "aaa111"]


def test_runs_export_of_backtest_round_trips_through_metrics(
    db_url: str,  # noqa: F811
    demo_data: Path,
    tmp_path: Path,
    run_cli,
) -> None:
    """deals.csv of a real run gives, through `mt5tester metrics`, the metrics `runs show` prints, except
    the equity-sample figures (the CSV has no equity samples: its equity drawdowns are balance ones)."""
    cfg = base_config(demo_data, tmp_path, end="2024-01-20")
    cfg["results"]["database_url"] = db_url
    code, _, err = run_cli("backtest", "--config", str(write_yaml(tmp_path / "c.yaml", cfg)))
    assert code == 0, err
    engine = db.connect(db_url, use_env=False)
    with engine.connect() as conn:
        run_id = conn.execute(select(db.runs.c.run_id)).scalar_one()
    run_cli("runs", "export", run_id, "--out", str(tmp_path / "x"), "--db", db_url)

    code, out, err = run_cli("metrics", str(tmp_path / "x" / "deals.csv"), "--json")
    assert code == 0, err
    from_csv = json.loads(out)
    _, shown, _ = run_cli("runs", "show", run_id, "--db", db_url, "--json")
    from_db = json.loads(shown)["metrics"]

    assert from_csv["total_trades"] > 5
    assert from_csv == compute_metrics(read_deals_csv(tmp_path / "x" / "deals.csv"), None).to_dict()
    assert from_csv == compute_metrics(deals_frame_from_db(engine, run_id), 10_000.0).to_dict()
    equity_based = {k for k in from_db if k.startswith("equity_")} | {
        "recovery_factor",
        "calmar_ratio",
        "margin_level_min",
    }
    assert {k: v for k, v in from_csv.items() if k not in equity_based} == {
        k: v for k, v in from_db.items() if k not in equity_based
    }
    engine.dispose()
