"""Shared fixtures. Tests that need ../shared/data or PostgreSQL skip locally, fail under CI=true."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MT5TESTER_SHARED_DATA", ROOT.parent / "shared" / "data"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip when a resource is missing locally; fail when it is missing in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    require((SHARED_DATA / "m1").is_dir(), f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


FIXTURES = Path(__file__).resolve().parent / "fixtures"
STRATEGIES_FILE = FIXTURES / "strategies.py"


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic M1 data (the demo generator): EURUSD, GBPUSD, USDJPY, 2023-11-01 .. 2024-03-01."""
    from mt5tester.data.demo import write_demo_data

    folder = tmp_path_factory.mktemp("demo_data")
    write_demo_data(folder, ["EURUSD", "GBPUSD", "USDJPY"], "2023-11-01", "2024-03-01", seed=7)
    return folder


def base_config(data: Path, tmp: Path, **backtest: object) -> dict:
    """A small valid config: EURUSD H1 MA cross over January 2024."""
    bt = {
        "start": "2024-01-01",
        "end": "2024-02-01",
        "symbols": ["EURUSD"],
        "primary_timeframe": "H1",
        "warmup_bars": 50,
    }
    bt.update(backtest)
    return {
        "backtest": bt,
        "data": {"path": str(data)},
        "strategies": [{"class": "ma_cross", "name": "ma", "params": {"fast": 5, "slow": 20}}],
        "results": {"database_url": f"sqlite:///{tmp / 'results.sqlite'}", "out_dir": str(tmp / "reports")},
    }


def write_yaml(path: Path, data: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    """Run the real CLI entry point in-process; return (exit code, stdout, stderr)."""
    from mt5tester.cli import main

    def _run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return _run


GOLDEN = Path(__file__).resolve().parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/*.json from this run")


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """golden(name, values, rel=1e-6): compare ``values`` (a JSON-able dict of numbers) with
    tests/golden/<name>.json; with --update-golden, write them instead. Refreshed only explicitly."""
    import json
    import math

    def check(name: str, values: dict, rel: float = 1e-6) -> None:
        path = GOLDEN / f"{name}.json"
        if request.config.getoption("--update-golden"):
            GOLDEN.mkdir(exist_ok=True)
            path.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")
            return
        assert path.is_file(), f"no golden file {path}; run pytest with --update-golden once and commit it"
        expected = json.loads(path.read_text())
        assert set(values) == set(expected), f"{name}: keys differ: {sorted(values)} vs {sorted(expected)}"
        for key, want in expected.items():
            got = values[key]
            if isinstance(want, float) or isinstance(got, float):
                assert math.isclose(got, want, rel_tol=rel, abs_tol=1e-6), f"{name}.{key}: {got} != {want}"
            else:
                assert got == want, f"{name}.{key}: {got} != {want}"

    return check


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A reachable PostgreSQL URL from MT5TESTER_PG_URL (set by .ci/run); skips locally, fails in CI."""
    url = os.environ.get("MT5TESTER_PG_URL", "")
    ok = False
    if url:
        from sqlalchemy import create_engine, text

        try:
            with create_engine(url).connect() as conn:
                conn.execute(text("SELECT 1"))
            ok = True
        except Exception:
            ok = False
    require(ok, f"PostgreSQL not reachable (MT5TESTER_PG_URL={url!r}); run .ci/services.sh")
    return url


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a headless Chromium (Debian package); skips locally when absent, fails in CI."""
    import shutil

    path = shutil.which("chromium") or ""
    require(bool(path), "chromium not installed; run .ci/services.sh")
    return path
