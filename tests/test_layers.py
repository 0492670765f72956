"""Import direction (ARCHITECTURE.md section 3): the import-linter contracts in pyproject.toml hold, and
they do catch an upward import planted in a copy of the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
# `lint-imports` is a click command; run it with this interpreter so it sees the same packages.
LINT = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"]


def _lint(cwd: Path, src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [*LINT, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_every_contract_is_kept() -> None:
    r = _lint(ROOT, SRC)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Contracts: 3 kept, 0 broken." in r.stdout


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package and its pyproject.toml copied, for planting imports without touching the tree."""
    base = tmp_path_factory.mktemp("planted")
    shutil.copy(ROOT / "pyproject.toml", base / "pyproject.toml")
    return base


# (module the import is planted in, the planted line, what lint-imports must report; {line}: its line)
PLANTED = [
    (
        "model/bars.py",
        "from mt5tester.engine import run as _planted",
        [
            "Layers import downward only BROKEN",
            "mt5tester.model is not allowed to import mt5tester.engine:",
            "- mt5tester.model.bars -> mt5tester.engine.run (l.{line})",
            "model holds values: it imports nothing of mt5tester but errors, and only numpy and pydantic BROKEN",
        ],
    ),
    (
        "model/symbol.py",
        "import pandas as _planted",
        [
            "Layers import downward only KEPT",
            "model holds values: it imports nothing of mt5tester but errors, and only numpy and pydantic BROKEN",
            "mt5tester.model is not allowed to import pandas:",
            "- mt5tester.model.symbol -> pandas (l.{line})",
        ],
    ),
    (
        "results/rows.py",
        "from mt5tester.terminal import server as _planted",
        [
            "Strategies, risk, regime and results reach the terminal only through the MetaTrader5 API BROKEN",
            "mt5tester.results is not allowed to import mt5tester.terminal:",
            "- mt5tester.results.rows -> mt5tester.terminal.server (l.{line})",
        ],
    ),
    (
        "risk/sizing.py",
        "from mt5tester.regime import detectors as _planted",
        [
            "Layers import downward only BROKEN",
            "mt5tester.risk is not allowed to import mt5tester.regime:",
        ],
    ),
    (
        "config.py",
        "from mt5tester.data import store as _planted",
        [
            "Layers import downward only BROKEN",
            "mt5tester.config is not allowed to import mt5tester.data:",
        ],
    ),
]


@pytest.mark.parametrize(("module", "line", "expected"), PLANTED, ids=[p[0] for p in PLANTED])
def test_a_planted_upward_import_breaks_a_contract(
    package_copy: Path, module: str, line: str, expected: list[str]
) -> None:
    src = package_copy / module.replace("/", "_").replace(".py", "")
    shutil.copytree(SRC / "mt5tester", src / "mt5tester", ignore=shutil.ignore_patterns("__pycache__"))
    target = src / "mt5tester" / module
    text = target.read_text()
    marker = "from __future__ import annotations\n"
    assert marker in text
    target.write_text(text.replace(marker, f"{marker}\n{line}\n", 1))
    planted_at = text[: text.index(marker)].count("\n") + 3  # after the marker and a blank line

    r = _lint(package_copy, src)

    assert r.returncode == 1, r.stdout + r.stderr
    report = " ".join(r.stdout.split())  # the report wraps lines at the terminal width
    for part in (e.format(line=planted_at) for e in expected):
        assert " ".join(part.split()) in report, f"{part!r} not in:\n{r.stdout}"
