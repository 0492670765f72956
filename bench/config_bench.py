"""`mt5tester config check` on hostile and large config files: exit code, seconds and peak memory of
each check, in a fresh process per file (issue 12 point 19: any config under 1 MB is checked in under
2 s and 200 MB, and every hostile one is exit 2).

    python bench/config_bench.py [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HEAD = "backtest:\n  start: 2024-01-01\n  end: 2024-02-01\n  symbols: [EURUSD]\n"
PARAMS = "strategies:\n  - class: ma_cross\n    params:\n"

# Times only load_config + the strategy checks (the imports are the same for every file) and reports
# the peak RSS growth over the process after its imports.
CHILD = """
import contextlib, io, json, resource, sys, time
from mt5tester.cli import main
import mt5tester.strategy.loader
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
    code = main(["config", "check", sys.argv[1]])
seconds = time.perf_counter() - t0
peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
print(json.dumps({"code": code, "seconds": seconds, "peak_mb": peak, "message": err.getvalue()[:160]}))
"""


def inputs() -> dict[str, bytes]:
    laughs = f"      a: &a [{', '.join(['lol'] * 9)}]\n" + "".join(
        f"      {c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    return {
        "billion laughs (679-byte class)": (HEAD + PARAMS + laughs).encode(),
        "5,000 nested lists": (HEAD + "x: " + "[" * 5000 + "]" * 5000 + "\n").encode(),
        "80 nested mappings": (
            HEAD + "x:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(80)) + "  " * 81 + "1\n"
        ).encode(),
        "latin-1 byte": (HEAD + "# café\n").encode("latin-1"),
        "UTF-16 with BOM": HEAD.encode("utf-16"),
        "impossible date": HEAD.replace("2024-02-01", "2019-02-30").encode(),
        "duplicate key": (HEAD + "  start: 2024-01-05\n").encode(),
        "symbol without spec": HEAD.replace("[EURUSD]", "[EURUSD, FOOBAR]").encode(),
        "1 MB list of floats": (
            HEAD + PARAMS + "      x: [" + ", ".join(["1.2345"] * 140_000) + "]\n"
        ).encode(),
        "1 MB of symbol overrides": (
            HEAD + "symbols:\n" + "".join(f"  S{i:06d}: {{digits: 5}}\n" for i in range(40_000))
        ).encode(),
        "1 MB of strategies": (
            HEAD
            + "strategies:\n"
            + "".join(
                f"  - {{class: ma_cross, name: s{i:06d}, params: {{fast: 5}}}}\n" for i in range(16_000)
            )
        ).encode(),
        "1 MB of defined symbols": (
            HEAD.replace("[EURUSD]", "[" + ", ".join(f"S{i:05d}" for i in range(8_000)) + "]")
            + "symbols:\n"
            + "".join(
                f"  S{i:05d}: {{digits: 2, trade_contract_size: 1, currency_base: USD, currency_profit: USD, "
                "currency_margin: USD}\n"
                for i in range(8_000)
            )
            + "strategies:\n  - {class: ma_cross}\n"
        ).encode(),
        "1 MB symbols list": (
            "backtest:\n  start: 2024-01-01\n  end: 2024-02-01\n  symbols: ["
            + ", ".join(f"S{i:06d}" for i in range(120_000))
            + "]\n"
        ).encode(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in inputs().items():
            path = Path(tmp) / "c.yaml"
            path.write_bytes(data)
            proc = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True)
            result = json.loads(proc.stdout) if proc.returncode == 0 else {"error": proc.stderr[-300:]}
            rows.append({"input": name, "bytes": len(data), **result})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        if "error" in r:
            print(f"{r['input']:<32} {r['bytes']:>9,} B  FAILED: {r['error']}")
        else:
            print(
                f"{r['input']:<32} {r['bytes']:>9,} B  exit {r['code']}  {r['seconds']:6.2f} s  "
                f"+{r['peak_mb']:6.1f} MB  {r['message'].splitlines()[0][:90] if r['message'] else ''}"
            )


if __name__ == "__main__":
    main()
