"""The lookahead checker: run a strategy on the full data and on data truncated at N points; every
signal before a cut, and every ``prepare()`` value before it, must be identical (ARCHITECTURE 2).

A strategy that uses anything from the future (a centred window, a higher-timeframe bar before it
closes, a normalisation over the whole series) produces something different once the future is cut
away. The terminal itself holds nothing after now, so peeking through ``ctx.mt5`` is impossible.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mt5tester.config import Config
from mt5tester.engine.build import Components, build
from mt5tester.engine.loop import Runner, timeline
from mt5tester.engine.preflight import ts
from mt5tester.errors import ConfigError
from mt5tester.model.signal import Signal


@dataclass(frozen=True)
class Difference:
    kind: str  # "signal" or "prepare"
    time: int
    symbol: str
    full: str
    truncated: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "time": ts(self.time),
            "symbol": self.symbol,
            "full": self.full,
            "truncated": self.truncated,
        }


@dataclass
class LookaheadReport:
    strategy: str
    cuts: list[int]
    signals_checked: int = 0
    values_checked: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "clean": self.clean,
            "cuts": [ts(c) for c in self.cuts],
            "signals_checked": self.signals_checked,
            "values_checked": self.values_checked,
            "differences": [d.to_dict() for d in self.differences],
        }


def _only(cfg: Config, name: str) -> Config:
    """The config reduced to the strategy (and, for a fusion strategy, its members), results in a temp DB."""
    chosen = [sc for sc in cfg.strategies if (sc.name or sc.class_) == name or sc.class_ == name]
    if not chosen:
        names = [sc.name or sc.class_ for sc in cfg.strategies]
        raise ConfigError(f"check-lookahead: no strategy '{name}' in the config (configured: {names})")
    members = set(chosen[0].params.get("members", []))
    keep = [sc for sc in cfg.strategies if sc in chosen or (sc.name or sc.class_) in members]
    tmp = Path(tempfile.mkdtemp(prefix="mt5tester-lookahead-"))
    return cfg.model_copy(
        update={
            "strategies": keep,
            "results": cfg.results.model_copy(
                update={"database_url": f"sqlite:///{tmp / 'check.sqlite'}", "out_dir": tmp}
            ),
            "report": cfg.report.model_copy(update={"html": False}),
            "data": cfg.data.model_copy(update={"min_health": 0.0}),
        }
    )


def _run(c: Components) -> list[tuple[int, str, str, Signal]]:
    runner = Runner(c)
    runner.capture = []
    runner.run()
    return runner.capture


def _key(sig: Signal) -> str:
    return sig.model_dump_json(exclude={"comment"})


def check_lookahead(cfg: Config, base_dir: Path, name: str, points: int = 5) -> LookaheadReport:
    cfg = _only(cfg, name)
    full_c = build(cfg, base_dir)
    strategy_names = {ls.strategy.name for ls in full_c.strategies}
    pts = timeline(full_c).times.tolist()
    if len(pts) < 3:
        raise ConfigError("check-lookahead: the run has fewer than 3 decision points; widen start..end")
    idx = np.unique(np.linspace(len(pts) // (points + 1), len(pts) - 1, points).astype(int))
    cuts = [pts[int(i)] for i in idx]
    full = _run(full_c)
    report = LookaheadReport(name, cuts)
    for cut in cuts:
        part_c = build(cfg, base_dir, truncate_ns=cut)
        _compare_prepared(full_c, part_c, cut, report)
        part = _run(part_c)
        a = [(t, s, sym, _key(g)) for t, s, sym, g in full if t < cut and s in strategy_names]
        b = [(t, s, sym, _key(g)) for t, s, sym, g in part if t < cut and s in strategy_names]
        report.signals_checked += len(a)
        if a != b:
            sa, sb = set(a), set(b)
            for t, _s, sym, k in sorted(sa - sb):
                other = next((x[3] for x in b if x[0] == t and x[2] == sym), "(none)")
                report.differences.append(Difference("signal", t, sym, k, other))
            for t, _s, sym, k in sorted(sb - sa):
                if not any(x[0] == t and x[2] == sym for x in a):
                    report.differences.append(Difference("signal", t, sym, "(none)", k))
    return report


def _compare_prepared(full_c: Components, part_c: Components, cut: int, report: LookaheadReport) -> None:
    """prepare() columns: rows of bars closed before the cut must not change when the future goes."""
    for key, feed in part_c.feeds.items():
        ref = full_c.feeds[key]
        closed = int(np.searchsorted(feed.bars.close_time, cut, "right"))
        for col, values in feed.extra.items():
            a, b = ref.extra[col][:closed], values[:closed]
            report.values_checked += len(b)
            same = _same(a, b)
            if not bool(np.all(same)):
                i = int(np.argmin(same))
                report.differences.append(
                    Difference(
                        "prepare", int(feed.bars.time[i]), key[1], f"{col}={a[i]!r}", f"{col}={b[i]!r}"
                    )
                )


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Equal, or both NaN; floats within 1e-9 relative (the same causal arithmetic, fewer rows)."""
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        return np.isclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)
    return np.asarray(a == b)
