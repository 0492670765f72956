from __future__ import annotations

from pathlib import Path

from mt5tester.config import parse_config
from mt5tester.engine.build import build
from mt5tester.engine.loop import Runner
from mt5tester.reports.html import write_html_report

from conftest import STRATEGIES_FILE, base_config


def test_html_report_escapes_script_in_names_comments_and_tags(demo_data: Path, tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    raw = base_config(demo_data, tmp_path, end="2024-01-05")
    raw["strategies"] = [
        {
            "class": f"{STRATEGIES_FILE}:Scripted",
            "name": f"x{evil}",
            "params": {
                "script": [
                    {"at": "2024-01-02T10:00:00Z", "direction": "buy", "comment": evil, "tags": {"t": evil}}
                ]
            },
        }
    ]
    components = build(parse_config(raw), tmp_path)
    result = Runner(components).run()
    html = write_html_report(components.engine, result.run_id, tmp_path / "r").read_text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert result.funnel["executed"] == 1
