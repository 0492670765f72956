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
