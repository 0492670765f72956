"""Config.optimize: the optimize: section validated with the rest; a trial's params applied to a Config."""

from __future__ import annotations

from pathlib import Path

import pytest

from mt5tester.config import load_config, parse_config
from mt5tester.errors import ConfigError
from mt5tester.optimize.apply import apply_params, with_window

from conftest import base_config, write_yaml

FAST = "strategies.ma.params.fast"


def _raw(tmp_path: Path, optimize: dict) -> dict:
    raw = base_config(tmp_path / "data", tmp_path)
    raw["optimize"] = optimize
    return raw


def test_config_optimize_section_parsed_into_space(tmp_path: Path) -> None:
    raw = _raw(
        tmp_path,
        {
            "parameters": {
                FAST: {"start": 2, "step": 2, "stop": 8},
                "coordinator.sizing.lots": {"choices": [0.1, 0.2]},
                "symbols.EURUSD.spread": {"choices": [5, 15]},
            },
            "method": "genetic",
            "budget": 10,
            "forward": "1/4",
        },
    )
    cfg = parse_config(raw, "opt.yaml")
    assert cfg.optimize is not None
    assert cfg.optimize.method == "genetic"
    assert cfg.optimize.space().size == 4 * 2 * 2
    assert [d.values for d in cfg.optimize.space().dims] == [(2, 4, 6, 8), (0.1, 0.2), (5, 15)]


def test_apply_params_sets_strategy_coordinator_and_symbol_values(tmp_path: Path) -> None:
    raw = _raw(tmp_path, {"parameters": {FAST: {"choices": [3]}}})
    cfg = parse_config(raw, "opt.yaml")

    trial = apply_params(
        cfg,
        {FAST: 7, "coordinator.sizing.lots": 0.3, "coordinator.max_positions": 2, "symbols.EURUSD.spread": 4},
    )

    assert trial.strategies[0].params == {"fast": 7, "slow": 20}
    assert trial.coordinator.sizing is not None and trial.coordinator.sizing.lots == 0.3
    assert trial.coordinator.sizing.mode == "fixed"
    assert trial.coordinator.max_positions == 2
    assert trial.symbol_spec("EURUSD").spread == 4
    assert trial.optimize is None  # a trial is a plain backtest
    assert cfg.strategies[0].params == {"fast": 5, "slow": 20}  # the study's config is unchanged
    window = with_window(trial, trial.backtest.start.replace(day=10), trial.backtest.end)
    assert (str(window.backtest.start), str(window.backtest.end)) == ("2024-01-10", "2024-02-01")


def test_apply_params_invalid_value_config_error_names_trial_and_key(tmp_path: Path) -> None:
    cfg = parse_config(_raw(tmp_path, {"parameters": {"symbols.EURUSD.spread": {"choices": [-1]}}}), "o.yaml")

    with pytest.raises(ConfigError) as info:
        apply_params(cfg, {"symbols.EURUSD.spread": -1})

    assert str(info.value) == (
        "o.yaml: optimize.parameters: the trial {'symbols.EURUSD.spread': -1} gives an invalid config: "
        "spread: Input should be greater than or equal to 0; narrow the parameter's range"
    )


@pytest.mark.parametrize(
    ("optimize", "message"),
    [
        (
            {"parameters": {"strategies.mb.params.fast": {"choices": [1]}}},
            "optimize.parameters.strategies.mb.params.fast: no strategy named 'mb' (strategies: ma)",
        ),
        (
            {"parameters": {"symbols.GBPUSD.spread": {"choices": [1]}}},
            "optimize.parameters.symbols.GBPUSD.spread: 'GBPUSD' is not a tested symbol (backtest.symbols: "
            "EURUSD)",
        ),
        (
            {"parameters": {"symbols.EURUSD.sprd": {"choices": [1]}}},
            "optimize.parameters.symbols.EURUSD.sprd: a symbol has no setting 'sprd'",
        ),
        (
            {"parameters": {"coordinator.max_pos": {"choices": [1]}}},
            "optimize.parameters.coordinator.max_pos: coordinator has no key 'max_pos'",
        ),
        (
            {"parameters": {FAST: {"start": 5, "step": 1, "stop": 1}}},
            f"optimize.parameters.{FAST}: stop 1 is below start 5",
        ),
        (
            {"parameters": {FAST: {"choices": [1]}}, "method": "tpe"},
            "optimize.budget: method tpe needs a budget",
        ),
    ],
)
def test_config_optimize_errors_name_file_line_and_key_path(
    tmp_path: Path, optimize: dict, message: str
) -> None:
    path = write_yaml(tmp_path / "opt.yaml", _raw(tmp_path, optimize))

    with pytest.raises(ConfigError) as info:
        load_config(path)

    text = str(info.value)
    assert message in text
    assert f"{path}:" in text.splitlines()[1]  # the file and the line of the offending key


def test_config_optimize_unknown_key_did_you_mean(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path / "opt.yaml", _raw(tmp_path, {"parameters": {FAST: {"choices": [1]}}, "methd": "grid"})
    )

    with pytest.raises(ConfigError) as info:
        load_config(path)

    assert "unknown key 'optimize.methd'; did you mean 'method'?" in str(info.value)
    assert info.value.exit_code == 2


def test_example_config_optimize_block_is_valid_when_uncommented() -> None:
    import yaml

    text = (Path(__file__).resolve().parents[1] / "configs" / "example.yaml").read_text()
    at = text.index("# optimize:")
    block = "\n".join(line[2:] if line.startswith("# ") else line for line in text[at:].splitlines())
    raw = yaml.safe_load(text[:at])
    raw["optimize"] = yaml.safe_load(block)["optimize"]

    cfg = parse_config(raw, "example.yaml")

    assert cfg.optimize is not None
    assert (cfg.optimize.method, cfg.optimize.space().size) == ("genetic", 7 * 3 * 5 * 4)


@pytest.mark.parametrize(
    ("optimize", "message"),
    [
        (
            {"parameters": {FAST: {"choices": [1]}}, "forward": "2024-03-01"},
            "optimize.forward: 2024-03-01 is not inside the backtest range 2024-01-01 .. 2024-02-01",
        ),
        (
            {
                "parameters": {FAST: {"choices": [1]}},
                "walk_forward": {"folds": 3, "in_sample": "3w", "out_of_sample": "1w"},
            },
            "optimize.walk_forward: 3 folds of 3w in-sample + 1w out-of-sample need 2024-01-01 .. 2024-02-12, "
            "past the backtest end 2024-02-01",
        ),
    ],
)
def test_forward_or_walk_forward_outside_range_config_error_at_study_check(
    tmp_path: Path, optimize: dict, message: str
) -> None:
    from mt5tester.optimize.apply import check_windows

    path = write_yaml(tmp_path / "opt.yaml", _raw(tmp_path, optimize))
    cfg = load_config(path)

    with pytest.raises(ConfigError) as info:
        check_windows(cfg)

    assert str(info.value).startswith(f"{path}:")
    assert message in str(info.value)
