"""One results database by default for every command, every run says where it went, and messages name
CLI flags, not Python keywords (issue 12 point 15)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mt5tester.config import load_config

from conftest import base_config, write_yaml


def _config_without_db(folder: Path, data: Path, **backtest: object) -> Path:
    folder.mkdir(parents=True)
    raw = base_config(data, folder, **backtest)
    del raw["results"]["database_url"]
    return write_yaml(folder / "c.yaml", raw)


def test_runs_of_configs_in_different_folders_share_the_default_database(
    demo_data: Path, tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MT5TESTER_DB_URL", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    first = _config_without_db(tmp_path / "a", demo_data)
    second = _config_without_db(tmp_path / "b", demo_data, start="2024-01-08")
    db_file = work / "runs" / "mt5tester.sqlite"
    ids = []
    for cfg in (first, second):
        code, out, err = run_cli("backtest", "--config", str(cfg))
        assert code == 0, err
        run_id = next(line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("run "))
        assert f"results database: sqlite:///{db_file} (mt5tester runs show {run_id})" in out
        assert f"report: {cfg.parent / 'reports' / f'report_{run_id}.html'}" in out
        ids.append(run_id)

    code, out, err = run_cli("runs", "list", "--json")
    assert code == 0, err
    assert sorted(r["run_id"] for r in json.loads(out)) == sorted(ids)
    code, out, err = run_cli("runs", "compare", *ids, "--json")
    assert code == 0, err
    assert sorted(json.loads(out)) == sorted(ids)
    code, out, err = run_cli("report", ids[0], "--out", str(tmp_path / "r"))
    assert code == 0, err


def test_database_set_in_a_config_is_relative_to_it_and_printed_with_db_flag(
    demo_data: Path, tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MT5TESTER_DB_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    raw = base_config(demo_data, tmp_path / "cfg")
    raw["results"]["database_url"] = "sqlite:///own.sqlite"
    raw["report"] = {"html": False}
    (tmp_path / "cfg").mkdir()
    cfg = write_yaml(tmp_path / "cfg" / "c.yaml", raw)
    own = tmp_path / "cfg" / "own.sqlite"
    assert load_config(cfg).results.database_url == f"sqlite:///{own}"
    code, out, err = run_cli("backtest", "--config", str(cfg))
    assert code == 0, err
    run_id = next(line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("run "))
    db = f" --db 'sqlite:///{own}'"
    assert f"results database: sqlite:///{own} (mt5tester runs show {run_id}{db})" in out
    assert f"report: not written; mt5tester report {run_id}{db} writes it" in out
    assert not (tmp_path / "runs").exists()


def test_default_database_is_the_current_folders_for_configs_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deep").mkdir()
    raw = {"backtest": {"start": "2024-01-01", "end": "2024-02-01", "symbols": ["EURUSD"]}}
    cfg = write_yaml(tmp_path / "deep" / "c.yaml", raw)
    assert load_config(cfg).results.database_url == f"sqlite:///{tmp_path / 'runs' / 'mt5tester.sqlite'}"


MT5_HEADER = "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"


def test_data_import_messages_name_cli_flags_not_python_keywords(tmp_path: Path, run_cli) -> None:
    a = tmp_path / "a.csv"
    a.write_text(
        MT5_HEADER
        + "2024.01.02\t10:00:00\t1.1\t1.2\t1.0\t1.1\t5\t0\t10\n"
        + "2024.01.02\t11:00:00\t1.1\t1.2\t1.0\t1.1\t5\t0\t10\n"
    )
    b = tmp_path / "b.csv"
    b.write_text(a.read_text().replace("1.1\t1.2\t1.0\t1.1\t5", "1.1\t1.3\t1.0\t1.1\t5", 1))
    cat = str(tmp_path / "cat")
    assert run_cli("data", "import", str(a), "--symbol", "EURUSD", "--tz", "UTC", "--catalog", cat)[0] == 0
    code, _, err = run_cli("data", "import", str(b), "--symbol", "EURUSD", "--tz", "UTC", "--catalog", cat)
    assert code == 3
    assert err.rstrip().endswith("to overwrite the stored rows pass --on-conflict replace")
    assert "on_conflict" not in err

    one = tmp_path / "one.csv"
    one.write_text(MT5_HEADER + "2024.01.02\t10:00:00\t1.1\t1.2\t1.0\t1.1\t5\t0\t10\n")
    code, _, err = run_cli("data", "import", str(one), "--symbol", "EURUSD", "--tz", "UTC", "--catalog", cat)
    assert code == 3
    assert err.rstrip().endswith("cannot infer the timeframe from 1 bar; pass --timeframe TF")
    assert "timeframe=" not in err
