"""Start-up (issue 14): ``mt5tester --help`` and ``--version`` import no heavy library (the commands
defined in modules of their own are imported when used), and nothing changes for the user: the same
help, the same commands. Which modules are imported is asserted, not the time (that is bench/)."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from mt5tester.cli import cli, main
from mt5tester.cli.app import LAZY

HEAVY = (
    "pandas",
    "numpy",
    "sqlalchemy",
    "numba",
    "plotly",
    "pyarrow",
    "scipy",
    "sklearn",
    "pydantic",
    "yaml",
    "rich",
    "rich.progress",
    "alembic",
    "mt5tester.config",
    "mt5tester.engine",
)


def _modules_after(code: str) -> tuple[list[str], str]:
    """sys.modules after ``code`` in a fresh interpreter (this checkout's package), and its stdout."""
    script = f"import json, sys\n{code}\nprint('MODULES=' + json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    text, _, modules = out.rpartition("MODULES=")
    return json.loads(modules), text


@pytest.mark.parametrize(("args", "exit_code"), [(["--help"], 0), (["--version"], 0), ([], 2)])
def test_cli_help_and_version_import_no_heavy_module(args: list[str], exit_code: int) -> None:
    # no command at all: the help, exit 2 (click's usage error)
    modules, out = _modules_after(
        f"from mt5tester.cli import main\ncode = main({args!r})\nassert code == {exit_code}, code"
    )

    assert [m for m in HEAVY if m in modules] == []
    assert not [
        m for m in modules if m.startswith(("mt5tester.cli.data", "mt5tester.cli.runs", "mt5tester.results"))
    ]
    if args == ["--version"]:
        assert out.strip() == "mt5tester, version 0.1.0"
    elif args == ["--help"]:
        assert "Commands:" in out and "  runs " in out and "  data " in out and "Exit codes:" in out


def test_import_mt5tester_imports_no_heavy_module() -> None:
    modules, _ = _modules_after("import mt5tester\nassert mt5tester.__version__")

    assert [m for m in HEAVY if m in modules] == []


def test_python_dash_m_mt5tester_is_the_console_script() -> None:
    proc = subprocess.run([sys.executable, "-m", "mt5tester", "--version"], capture_output=True, text=True)

    assert (proc.returncode, proc.stdout.strip()) == (0, "mt5tester, version 0.1.0")


def test_lazy_summaries_are_the_commands_own_short_help() -> None:
    for name, lazy in LAZY.items():
        command = lazy.load()
        assert command.name == name
        for limit in (30, 45, 60, 80, 1000):
            stub = click.Command(name, help=lazy.summary)
            assert stub.get_short_help_str(limit) == command.get_short_help_str(limit), (name, limit)


def test_help_is_the_same_before_and_after_every_command_is_imported(run_cli) -> None:
    code, lazy_help, _ = run_cli("--help")
    assert code == 0
    for name in list(cli.commands):
        cli.commands[name]  # imports the lazy ones
    code, eager_help, _ = run_cli("--help")

    assert code == 0 and lazy_help == eager_help
    for name in (
        "backtest",
        "config",
        "data",
        "demo",
        "metrics",
        "report",
        "run-script",
        "runs",
        "strategies",
    ):
        assert f"\n  {name} " in lazy_help


def test_lazy_commands_run_show_their_help_and_are_in_the_groups_commands(run_cli) -> None:
    code, out, _ = run_cli("runs", "--help")
    assert code == 0 and "Usage: mt5tester runs [OPTIONS] COMMAND [ARGS]..." in out and "  list " in out
    assert "data" in cli.commands and "nonsense" not in cli.commands
    assert isinstance(cli.commands["data"], click.Group) and "import" in cli.commands["data"].commands
    assert "download" in cli.commands["data"].commands  # added to the group by cli.live
    assert cli.commands.get("nonsense") is None
    assert sorted(cli.commands) == sorted({*cli.commands.keys()}) and len(cli.commands) == len(
        list(cli.commands)
    )

    code, _, err = run_cli("nonsense")
    assert code == 2 and "No such command 'nonsense'" in err


def test_main_help_exit_code_and_unknown_option(run_cli) -> None:
    assert main(["--help"]) == 0
    code, _, err = run_cli("--colour")
    assert code == 2 and "No such option '--colour'" in err
