from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from mt5tester.config import load_config, parse_config
from mt5tester.errors import ConfigError
from mt5tester.model.timeframe import Timeframe

from conftest import write_yaml

MINIMAL = {"backtest": {"start": "2024-01-01", "end": "2024-02-01", "symbols": ["EURUSD"]}}


def test_parse_config_minimal_fills_documented_defaults() -> None:
    cfg = parse_config(MINIMAL)
    assert cfg.backtest.warmup_bars == 100
    assert cfg.backtest.primary_timeframe is Timeframe.H1
    assert cfg.backtest.on_strategy_error == "stop"
    assert cfg.coordinator.max_positions == 50
    assert cfg.coordinator.max_positions_per_symbol == 20


def test_load_config_typo_names_file_line_and_hint(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("backtest:\n  start: 2024-01-01\n  end: 2024-02-01\n  symbols: [EURUSD]\n  warmup_bar: 5\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert f"{p}:5: unknown key 'backtest.warmup_bar'; did you mean 'warmup_bars'?" in msg


def test_load_config_nested_typo_in_strategy_list_names_index(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(
        "backtest: {start: 2024-01-01, end: 2024-02-01, symbols: [EURUSD]}\n"
        "strategies:\n  - class: ma_cross\n    parms: {fast: 3}\n"
    )
    with pytest.raises(
        ConfigError, match=r"c.yaml:4: unknown key 'strategies.0.parms'; did you mean 'params'\?"
    ):
        load_config(p)


def test_parse_config_lookback_bars_is_deprecated_alias(caplog: pytest.LogCaptureFixture) -> None:
    raw = {"backtest": {**MINIMAL["backtest"], "lookback_bars": 77}}
    with caplog.at_level(logging.WARNING):
        cfg = parse_config(raw, "x.yaml")
    assert cfg.backtest.warmup_bars == 77
    assert "backtest.lookback_bars is deprecated, use backtest.warmup_bars" in caplog.text


def test_parse_config_lookback_and_warmup_together_is_error() -> None:
    raw = {"backtest": {**MINIMAL["backtest"], "lookback_bars": 7, "warmup_bars": 8}}
    with pytest.raises(ConfigError, match="both 'lookback_bars' and 'warmup_bars'"):
        parse_config(raw)


def test_parse_config_overrides_replace_values() -> None:
    cfg = parse_config(
        MINIMAL, overrides={"backtest.symbols": ["GBPUSD", "USDJPY"], "backtest.end": "2024-03-01"}
    )
    assert cfg.backtest.symbols == ["GBPUSD", "USDJPY"]
    assert str(cfg.backtest.end) == "2024-03-01"


def test_parse_config_end_before_start_rejected() -> None:
    with pytest.raises(ConfigError, match="end 2024-01-01 must be after start 2024-02-01"):
        parse_config({"backtest": {"start": "2024-02-01", "end": "2024-01-01", "symbols": ["EURUSD"]}})


def test_parse_config_bad_timeframe_lists_valid_ones() -> None:
    with pytest.raises(ConfigError, match="unknown timeframe 'H5'; valid: M1, M2"):
        parse_config({"backtest": {**MINIMAL["backtest"], "primary_timeframe": "H5"}})


def test_symbol_spec_builtin_defaults_and_override() -> None:
    cfg = parse_config({**MINIMAL, "symbols": {"EURUSD": {"commission": 3.5}, "USDJPY": {}}})
    eur = cfg.symbol_spec("EURUSD")
    assert (eur.digits, eur.point, eur.trade_contract_size, eur.commission) == (5, 1e-05, 100000.0, 3.5)
    jpy = cfg.symbol_spec("USDJPY")
    assert (jpy.digits, jpy.point, jpy.currency_base, jpy.currency_profit) == (3, 0.001, "USD", "JPY")
    xau = cfg.symbol_spec("XAUUSD")
    assert (xau.trade_contract_size, xau.currency_profit) == (100.0, "USD")


def test_parse_config_unknown_symbol_property_rejected() -> None:
    with pytest.raises(ConfigError, match="symbols.EURUSD.comission: Extra inputs are not permitted"):
        parse_config({**MINIMAL, "symbols": {"EURUSD": {"comission": 3.5}}})


def test_parse_config_unknown_symbol_without_definition_rejected() -> None:
    with pytest.raises(ConfigError, match=r"symbols.FOOBAR.digits: Field required"):
        parse_config({**MINIMAL, "symbols": {"FOOBAR": {}}})


def test_config_hash_changes_with_any_value() -> None:
    a = parse_config(MINIMAL).config_hash()
    b = parse_config({"backtest": {**MINIMAL["backtest"], "seed": 43}}).config_hash()
    assert a != b and len(a) == 16


def test_example_config_is_valid() -> None:
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "example.yaml")
    assert cfg.strategies


def test_cli_config_check_valid_and_invalid(tmp_path: Path, run_cli) -> None:
    good = write_yaml(tmp_path / "good.yaml", MINIMAL)
    code, out, _ = run_cli("config", "check", str(good))
    assert code == 0 and "valid" in out
    bad = write_yaml(tmp_path / "bad.yaml", {**MINIMAL, "regim": {}})
    code, _, err = run_cli("config", "check", str(bad))
    assert code == 2
    assert "unknown key 'regim'; did you mean 'regime'?" in err


def test_cli_config_schema_is_json_schema_rejecting_extra_keys(run_cli) -> None:
    code, out, _ = run_cli("config", "schema")
    schema = json.loads(out)
    assert code == 0
    assert schema["additionalProperties"] is False
    assert "warmup_bars" in schema["$defs"]["BacktestConfig"]["properties"]
    assert schema["$defs"]["BacktestConfig"]["properties"]["primary_timeframe"]["enum"][0] == "M1"


# --- issue 12 point 17: `config check` validates strategies; enum values get a "did you mean" --------------
TYPO = (
    "backtest: {start: 2024-01-01, end: 2024-02-01, symbols: [EURUSD]}\n"
    "strategies:\n  - class: ma_cross\n    name: ma\n    params:\n      slow: 30\n      fats: 3\n"
)


def test_cli_config_check_finds_typoed_strategy_param_with_line(tmp_path: Path, run_cli) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(TYPO)
    code, _, err = run_cli("config", "check", str(p))
    assert code == 2
    assert (
        f"{p}:7: strategy #1 'ma' (ma_cross): bad params: fats: Extra inputs are not permitted. "
        "Valid params: fast, slow, sl_points, tp_points; did you mean 'fast' for 'fats'?" in err
    )


def test_cli_config_check_finds_bad_param_value_and_unknown_class(tmp_path: Path, run_cli) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(TYPO.replace("      fats: 3\n", "      fast: -1\n"))
    code, _, err = run_cli("config", "check", str(p))
    assert code == 2
    assert f"{p}:7: strategy #1 'ma' (ma_cross): bad params: fast: Input should be greater than" in err
    p.write_text(TYPO.replace("class: ma_cross", "class: ma_crosss"))
    code, _, err = run_cli("config", "check", str(p))
    assert code == 2
    assert f"{p}:3: strategy #1 'ma': class 'ma_crosss' is neither a built-in" in err
    assert err.rstrip().endswith("nor 'module:Class' nor 'file.py:Class'; did you mean 'ma_cross'?")


def test_cli_config_check_strategy_enum_param_did_you_mean(tmp_path: Path, run_cli) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(
        TYPO.replace("class: ma_cross", "class: htf_trend_filter").replace("fats: 3", "entry: pulback")
    )
    code, _, err = run_cli("config", "check", str(p))
    assert code == 2
    assert (
        f"{p}:7: strategy #1 'ma' (htf_trend_filter): bad params: entry: Input should be 'cross' or "
        "'pullback'; did you mean 'pullback'?" in err
    )


def test_cli_config_check_strategy_without_params_never_lists_empty_valid_params(
    tmp_path: Path, run_cli
) -> None:
    from conftest import STRATEGIES_FILE

    p = tmp_path / "c.yaml"
    p.write_text(TYPO.replace("class: ma_cross", f"class: '{STRATEGIES_FILE}:Probe'"))
    code, _, err = run_cli("config", "check", str(p))
    assert code == 2
    assert "bad params: slow: Extra inputs are not permitted" in err
    assert err.rstrip().endswith("This strategy takes no params: remove 'params:'")
    assert "Valid params: \n" not in err and "Valid params: ." not in err


def test_cli_config_check_runs_strategy_checks_beyond_params(tmp_path: Path, run_cli) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(TYPO.replace("      fats: 3\n", "") + "  - class: ma_cross\n    name: ma\n")
    code, _, err = run_cli("config", "check", str(p))
    assert code == 2
    assert "strategy names must be unique; repeated: ma" in err


@pytest.mark.parametrize(
    ("key", "value", "line", "hint"),
    [
        ("tester_mode", "ohlc_m2", "backtest.tester_mode", "did you mean 'ohlc_m1'?"),
        ("account_mode", "heging", "backtest.account_mode", "did you mean 'hedging'?"),
        ("on_strategy_error", "disabled", "backtest.on_strategy_error", "did you mean 'disable'?"),
        ("primary_timeframe", "HOUR1", "backtest.primary_timeframe", "did you mean 'H1'?"),
    ],
)
def test_load_config_enum_value_did_you_mean(
    tmp_path: Path, key: str, value: str, line: str, hint: str
) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(
        f"backtest:\n  start: 2024-01-01\n  end: 2024-02-01\n  symbols: [EURUSD]\n  {key}: {value}\n"
    )
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert f"{p}:5: {line}: " in str(e.value)
    assert str(e.value).endswith(hint)


def test_load_config_enum_in_list_did_you_mean(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(
        "backtest: {start: 2024-01-01, end: 2024-02-01, symbols: [EURUSD]}\n"
        "portfolio:\n  categories:\n    - technical\n    - smcc\n"
    )
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert (
        f"{p}:5: portfolio.categories.1: Input should be 'technical', 'smc', 'ml' or 'fusion'; did you "
        "mean 'smc'?" in str(e.value)
    )


def test_load_config_symbol_enum_value_did_you_mean(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(
        "backtest: {start: 2024-01-01, end: 2024-02-01, symbols: [EURUSD]}\n"
        "symbols:\n  EURUSD:\n    commission_mode: per_lots\n"
    )
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value) == (
        f"{p}:4: symbols.EURUSD.commission_mode: Input should be 'per_lot' or 'percent_of_value'; "
        "did you mean 'per_lot'?"
    )
