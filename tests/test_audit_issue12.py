"""Audit of issue 12's landed points with inputs other than their own tests use."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import FIXTURES, base_config, write_yaml


def test_run_script_name_too_long_for_the_database_names_the_script_file(
    demo_data: Path, tmp_path: Path, run_cli
) -> None:
    # Point 20: a name longer than its column is refused before the run on every backend. A script's
    # runs are named "script:<file name>", so the fix is renaming the file, not editing the config.
    script = tmp_path / ("s" * 125 + ".py")
    shutil.copy(FIXTURES / "scripts" / "open_close.py", script)
    cfg = write_yaml(
        tmp_path / "c.yaml", base_config(demo_data, tmp_path, start="2024-01-03", end="2024-01-05")
    )
    code, _out, err = run_cli("run-script", str(script), "--config", str(cfg))
    assert code == 2
    assert f"script file name {script.name!r} has 128 characters" in err
    assert "at most 121 (strategy names hold 128, with 'script:')" in err
    assert "Rename the script" in err
    assert "Traceback" not in err
