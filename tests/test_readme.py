"""README claims checked against the code (issue 12 point 18): the commands and flags it lists exist,
the demo it describes is the demo that runs, and its strategy example runs with its minimal config."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from mt5tester.cli import cli
from mt5tester.cli.demo import demo_config

README = Path(__file__).resolve().parents[1] / "README.md"


def _section(title: str) -> str:
    return README.read_text().split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _commands() -> list[str]:
    """The lines of the Commands block, continuation lines joined to their command."""
    block = _section("Commands").split("```", 2)[1]
    lines: list[str] = []
    for line in block.splitlines():
        if line.startswith("mt5tester"):
            lines.append(line)
        elif line.strip() and lines:
            lines[-1] += " " + line.strip()
    return lines


def _options(command: click.Command) -> set[str]:
    names = {o for p in command.params for o in getattr(p, "opts", [])}
    for sub in getattr(command, "commands", {}).values():
        names |= _options(sub)
    return names


def test_readme_commands_and_flags_exist_in_the_cli() -> None:
    lines = _commands()
    assert len(lines) >= 10
    for line in lines:
        usage = re.split(r"\s{2,}", line.strip())[0]  # without the description column
        for form in re.split(
            r" \| (?!-)", usage
        ):  # '| report compare ...', not '[--tz ZONE | --config FILE]'
            words = form.removeprefix("mt5tester ").split()
            if words[0].startswith("--"):  # mt5tester --help | --version
                assert {w for w in words if w.startswith("--")} <= _options(cli) | {"--help"}, line
                continue
            command = cli.commands[words[0]]
            if isinstance(command, click.Group) and words[1][0].islower():
                for name in words[1].split("|"):
                    assert name in command.commands and not command.commands[name].hidden, line
            flags = {w.strip("[]").split("=")[0] for w in words if w.strip("[").startswith("--")}
            assert flags <= _options(command) | {"--help"}, line


def test_readme_report_form_is_the_one_help_shows(run_cli) -> None:
    (line,) = [x for x in _commands() if x.startswith("mt5tester report ")]
    single, compare = re.split(r"\s{2,}", line)[0].split(" | ")
    code, out, _ = run_cli("report", "--help")
    assert code == 0
    assert f"Usage: {single}" in out
    assert f"mt5tester {compare}" in out
    assert "  run " not in out  # `report run RUN_ID` still works, but is not a second documented form


def test_readme_demo_description_matches_the_demo() -> None:
    text = README.read_text()
    n = int(re.search(r"a portfolio of (\d+) strategies", text).group(1))  # type: ignore[union-attr]
    cfg = demo_config()
    assert n == len(cfg["strategies"])
    assert ("regime detection" in text) == cfg["regime"]["enabled"]
    assert "runs/mt5tester.sqlite" in text and "database_url" not in cfg["results"]
    assert "`regime.enabled: true`) is refused" not in text


def test_readme_strategy_example_runs_with_its_minimal_config(
    tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mt5tester.cli.demo import DATA_END, DATA_START
    from mt5tester.data.demo import write_demo_data

    section = _section("Writing a strategy")
    code_block = section.split("```python\n", 1)[1].split("```", 1)[0]
    yaml_block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "breakout.py").write_text(code_block)
    (tmp_path / "breakout.yaml").write_text(yaml_block)
    write_demo_data(tmp_path / "demo_out" / "data", ["EURUSD"], DATA_START, DATA_END, seed=42)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MT5TESTER_DB_URL", raising=False)
    code, out, err = run_cli("config", "check", "breakout.yaml")
    assert code == 0, err
    assert "breakout.yaml: valid" in out and "1 strategies" in out
    code, out, err = run_cli("backtest", "--config", "breakout.yaml")
    assert code == 0, err
    assert "Breakout (technical, H1)" in out
    assert f"results database: sqlite:///{tmp_path / 'runs' / 'mt5tester.sqlite'}" in out
