"""Hostile config files (issue 12 point 19): each is exit 2 naming the file, the line and the reason,
in bounded memory, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mt5tester.config_input import read_yaml
from mt5tester.errors import ConfigError

from conftest import base_config, write_yaml

HEAD = "backtest:\n  start: 2024-01-01\n  end: 2024-02-01\n  symbols: [EURUSD]\n"

# Runs `mt5tester ARGS...` in a fresh process whose address space may grow at most 200 MB beyond what the
# imports took: a config that needs more memory fails with MemoryError (exit 1), not exit 2.
LIMITED = """
import resource, sys
from mt5tester.cli import main
with open("/proc/self/status") as f:
    vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (vm + 200 * 2**20, vm + 200 * 2**20))
sys.exit(main(sys.argv[1:]))
"""


def check_limited(path: Path) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-c", LIMITED, "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stderr


def test_config_billion_laughs_refused_with_alias_line_in_bounded_memory(tmp_path: Path) -> None:
    levels = "".join(
        f"      {c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    p = tmp_path / "laughs.yaml"
    p.write_text(
        HEAD + "strategies:\n  - class: ma_cross\n    params:\n"
        f"      a: &a [{', '.join(['lol'] * 9)}]\n" + levels
    )
    code, err = check_limited(p)
    assert code == 2, err
    # *c (9 x 9 x 9 x ...) is fine; *e is the first alias that passes 100,000 values (line 13)
    assert f"{p}:13: alias '*e' expands the config beyond 100,000 values (nested aliases)" in err
    assert "Traceback" not in err


def test_config_aliases_within_limits_still_work(tmp_path: Path) -> None:
    p = tmp_path / "ok.yaml"
    p.write_text(
        "backtest: &bt\n  start: 2024-01-01\n  end: 2024-02-01\n  symbols: &syms [EURUSD, GBPUSD]\n"
        "strategies:\n  - class: ma_cross\n    symbols: *syms\n"
    )
    code, err = check_limited(p)
    assert code == 0, err


def test_config_deep_nesting_refused_with_line(tmp_path: Path) -> None:
    p = tmp_path / "deep.yaml"
    p.write_text(HEAD + "strategies:\n  - class: ma_cross\n    params:\n      x: " + "[" * 5000 + "]" * 5000)
    code, err = check_limited(p)
    assert code == 2, err
    assert f"{p}:8: " in err and "invalid YAML" in err and "nesting depth" in err
    assert "RecursionError" not in err and "Traceback" not in err


def test_config_nesting_over_64_levels_refused_before_parsing(tmp_path: Path) -> None:
    p = tmp_path / "deep.yaml"
    p.write_text(HEAD + "x:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(80)) + "  " * 81 + "1\n")
    code, err = check_limited(p)
    assert code == 2, err
    # the mapping holding k63 is the 65th level (the top mapping is the first), on line 6 + 63
    assert f"{p}:69: the config nests deeper than 64 levels" in err


def test_config_not_utf8_names_line_of_the_bad_byte(tmp_path: Path) -> None:
    p = tmp_path / "latin1.yaml"
    p.write_bytes((HEAD + "# café\n").encode("latin-1"))
    code, err = check_limited(p)
    assert code == 2, err
    assert f"{p}:5: byte 0xe9 at offset 73 is not UTF-8; save the file as UTF-8" in err


def test_config_utf16_refused_with_how_to_fix(tmp_path: Path) -> None:
    with_bom = tmp_path / "bom.yaml"
    with_bom.write_bytes(HEAD.encode("utf-16"))
    code, err = check_limited(with_bom)
    assert code == 2, err
    assert f"{with_bom}:1: the file is UTF-16 text (byte-order mark); save the file as UTF-8" in err
    no_bom = tmp_path / "le.yaml"
    no_bom.write_bytes(HEAD.encode("utf-16-le"))
    code, err = check_limited(no_bom)
    assert code == 2, err
    assert f"{no_bom}:1: NUL byte at offset 1: not UTF-8 text (UTF-16?); save the file as UTF-8" in err


def test_config_utf8_bom_is_accepted(tmp_path: Path, run_cli) -> None:
    p = tmp_path / "bom8.yaml"
    p.write_bytes(HEAD.encode("utf-8-sig"))
    code, out, err = run_cli("config", "check", str(p))
    assert code == 0, err
    assert f"{p}: valid" in out


def test_config_impossible_date_names_key_and_line(tmp_path: Path, run_cli) -> None:
    p = tmp_path / "date.yaml"
    p.write_text("backtest:\n  start: 2019-01-01\n  end: 2019-02-30\n  symbols: [EURUSD]\n")
    code, _, err = run_cli("config", "check", str(p))
    assert code == 2
    assert f"{p}:3: backtest.end: Input should be a valid date or datetime, day value is outside" in err
    explicit = tmp_path / "tagged.yaml"
    explicit.write_text(
        "backtest:\n  start: !!timestamp 2019-02-31\n  end: 2019-03-01\n  symbols: [EURUSD]\n"
    )
    code, _, err = run_cli("config", "check", str(explicit))
    assert code == 2
    assert f"{explicit}:2: invalid YAML: day is out of range for month" in err


def test_config_symbol_without_spec_names_line_and_fix(demo_data: Path, tmp_path: Path, run_cli) -> None:
    raw = base_config(demo_data, tmp_path, symbols=["EURUSD", "FOOBAR"])
    p = write_yaml(tmp_path / "c.yaml", raw)
    line = next(i for i, t in enumerate(p.read_text().splitlines(), 1) if "FOOBAR" in t)
    for command in (("config", "check", str(p)), ("backtest", "--config", str(p))):
        code, _, err = run_cli(*command)
        assert code == 2, err
        assert f"{p}:{line}: backtest.symbols: 'FOOBAR' has no built-in symbol spec" in err
        assert (
            "define it under 'symbols: FOOBAR:' with digits, trade_contract_size, currency_base, "
            "currency_profit, currency_margin" in err
        )
        assert "ValidationError" not in err


def test_config_symbol_override_error_names_its_line(tmp_path: Path, run_cli) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(HEAD + "symbols:\n  EURUSD:\n    digits: 42\n")
    code, _, err = run_cli("config", "check", str(p))
    assert code == 2
    assert f"{p}:7: symbols.EURUSD.digits: Input should be less than or equal to 10" in err


def test_config_duplicate_key_names_both_lines(tmp_path: Path, run_cli) -> None:
    p = tmp_path / "dup.yaml"
    p.write_text(HEAD + "strategies:\n  - class: ma_cross\n    params: {fast: 5, slow: 20, fast: 7}\n")
    code, _, err = run_cli("config", "check", str(p))
    assert code == 2
    assert f"{p}:7: duplicate key 'fast' (first at line 7)" in err
    top = tmp_path / "top.yaml"
    top.write_text(HEAD + "report:\n  html: true\nbacktest:\n  seed: 1\n")
    code, _, err = run_cli("config", "check", str(top))
    assert code == 2
    assert f"{top}:7: duplicate key 'backtest' (first at line 1); YAML would silently keep the last" in err


def test_backtest_strategy_name_with_markup_printed_as_text(demo_data: Path, tmp_path: Path, run_cli) -> None:
    raw = base_config(demo_data, tmp_path)
    raw["strategies"][0]["name"] = "ma [/red] [bold]x :smile:"
    p = write_yaml(tmp_path / "c.yaml", raw)
    code, out, err = run_cli("backtest", "--config", str(p))
    assert code == 0, err
    assert "1 strategies: ma [/red] [bold]x :smile: (technical, H1)" in out


def test_config_check_markup_in_key_and_path_printed_as_text(tmp_path: Path, run_cli) -> None:
    folder = tmp_path / "a [" / "red] b"  # the path reads '.../a [/red] b'
    folder.mkdir(parents=True)
    p = folder / "c.yaml"
    p.write_text(HEAD + '"[/red]report": {}\n')
    code, _, err = run_cli("config", "check", str(p))
    assert code == 2
    assert f"{p}:5: unknown key '[/red]report'; did you mean 'report'?" in err
    p.write_text(HEAD)
    code, out, err = run_cli("config", "check", str(p))
    assert code == 0, err
    assert f"{p}: valid (hash " in out


def test_config_recursive_or_undefined_alias_refused_with_line(tmp_path: Path, run_cli) -> None:
    p = tmp_path / "rec.yaml"
    p.write_text(HEAD + "strategies:\n  - &s\n    class: ma_cross\n    params: {x: *s}\n")
    code, _, err = run_cli("config", "check", str(p))
    assert code == 2
    assert f"{p}:8: alias '*s' needs a complete '&s' value before it" in err
    p.write_text(HEAD + "strategies:\n  - class: ma_cross\n    symbols: *nope\n")
    code, _, err = run_cli("config", "check", str(p))
    assert code == 2
    assert f"{p}:7: alias '*nope' needs a complete '&nope' value before it" in err


def test_config_merge_keys_and_shared_windows_still_load(tmp_path: Path, run_cli) -> None:
    p = tmp_path / "merge.yaml"
    p.write_text(
        HEAD + "coordinator:\n  blocked:\n    - &w {days: [fri], from: '21:55', to: '22:10'}\n"
        "    - {<<: *w, days: [mon]}\n  sessions: [*w]\n"
    )
    code, _, err = run_cli("config", "check", str(p))
    assert code == 0, err
    from mt5tester.config import load_config

    cfg = load_config(p)
    assert [w.days for w in cfg.coordinator.blocked] == [["fri"], ["mon"]]
    assert cfg.coordinator.sessions[0].from_ == "21:55"


class _Reference(yaml.SafeLoader):
    """PyYAML's SafeLoader with dates left as text: what read_yaml must build."""


_Reference.yaml_implicit_resolvers = {
    k: [(t, r) for t, r in v if t != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

SNIPPETS = [
    "",
    "# only a comment\n",
    "a: 1\nb: 1.5\nc: .inf\nd: 1e3\ne: 0x1F\nf: 017\ng: 21:55\nh: '21:55'\ni: -0\n",
    "a: yes\nb: No\nc: on\nd: OFF\ne: true\nf: ~\ng: null\nh:\ni: ''\n",
    "a: 2024-01-01\nb: 2024-01-01 10:00:00\nc: '2024-01-01'\n",
    "a: !!str 123\nb: !!int '3'\nc: !!float '2'\nd: !!bool 'yes'\ne: !!null ''\nf: !!binary aGVsbG8=\n",
    "base: &b {x: 1, y: 2}\nm: {<<: *b, y: 3}\nn:\n  <<: [*b, {z: 4, x: 9}]\n  w: 0\n",
    "l: &l [1, [2, 3], {a: b}]\nm: [*l, *l]\ns: &s text\nt: *s\n",
    'a: |\n  line 1\n  line 2\nb: >\n  folded\n  text\nc: "esc\\tape"\n',
    "1: one\n2.5: two\nfalse: three\n? long key\n: value\n",
    "- a\n- - b\n  - c\n- {d: [e, {f: g}]}\n",
    "symbols: [EURUSD, 'GBPUSD', \"USDJPY\"]\nnested: {a: {b: {c: [1, {d: 2}]}}}\n",
]


@pytest.mark.parametrize("text", SNIPPETS)
def test_read_yaml_builds_what_safeloader_builds(text: str) -> None:
    value, _ = read_yaml(text, "x.yaml")
    assert value == yaml.load(text, Loader=_Reference)


def test_read_yaml_builds_example_and_demo_configs_as_safeloader() -> None:
    from mt5tester.cli.demo import demo_config

    root = Path(__file__).resolve().parents[1]
    for text in (
        (root / "configs" / "example.yaml").read_text(),
        yaml.safe_dump(demo_config(), sort_keys=False),
        yaml.safe_dump(base_config(Path("/d"), Path("/t"))),
    ):
        value, lines = read_yaml(text, "x.yaml")
        assert value == yaml.load(text, Loader=_Reference)
        assert lines[("backtest",)] == 1 or ("backtest",) in lines


def test_read_yaml_lines_of_keys_and_items() -> None:
    _, lines = read_yaml("a:\n  b: [x,\n    y]\n  c:\n    - {d: 1}\n", "x.yaml")
    assert lines == {("a",): 1, ("a", "b"): 2, ("a", "b", 0): 2, ("a", "b", 1): 3, ("a", "c"): 4,
                     ("a", "c", 0): 5, ("a", "c", 0, "d"): 5}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("a: 1\n---\nb: 2\n", 2, "a second YAML document ('---'); a config is one document"),
        ("a: !!set {x}\n", 1, "tag tag:yaml.org,2002:set is not supported in a config; remove it"),
        ("a: !!python/name:os.system x\n", 1, "tag tag:yaml.org,2002:python/name:os.system is not supported"),
        ("? [a, b]\n: 1\n", 1, "a key must be a single value, not a list or mapping"),
        ("a: {<<: 1}\n", 1, "'<<' (merge) needs a mapping or a list of mappings"),
        ("a: 1\n1: 2\nA: 3\ntrue: 4\n", 4, "duplicate key 'True' (first at line 2)"),
    ],
)
def test_read_yaml_refusals_name_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(ConfigError) as e:
        read_yaml(text, "x.yaml")
    assert str(e.value).startswith(f"x.yaml:{line}: {reason}")


def test_symbols_flag_without_spec_is_exit_2_before_bar_1(demo_data: Path, tmp_path: Path, run_cli) -> None:
    p = write_yaml(tmp_path / "c.yaml", base_config(demo_data, tmp_path))
    line = next(i for i, t in enumerate(p.read_text().splitlines(), 1) if t.strip().startswith("symbols:"))
    code, _, err = run_cli("backtest", "--config", str(p), "--symbols", "FOOBAR")
    assert code == 2, err
    assert f"{p}:{line}: backtest.symbols: 'FOOBAR' has no built-in symbol spec" in err
    assert not (tmp_path / "results.sqlite").exists()  # refused before the database is opened
