"""The lookahead checker: prove that no decision depends on data after it (ARCHITECTURE 2).

A reference run on the real data is compared with runs whose data after a cut time is **changed**:
replaced by a different valid path, in turn the real future mirrored around the price at the cut or a
seeded random walk (removing it would let a leak that reads a cache, a file or a private array go
unseen). Cuts are M1 times, seeded: at decisions that did something, at
other decision points and at minutes between decision points, so a leak that reaches less than one
decision interval ahead is seen too. At a cut c everything before c is kept, and of the M1 bar that
opens at c only its open and spread (its first tick, known at c); its high, low and close change.

Every decision at or before c must then be identical: what each strategy call returned (signals,
invalid objects, exceptions), every request it sent through the terminal (``order_send``, ``Buy``,
``Sell``, ``Close``) with its result, every deal, and every ``prepare()`` value of a bar closed by c.
Each side runs in a fresh Python process (``python -m mt5tester.engine.lookahead``), so module state
(a cache filled by another run) cannot carry over; the reference side runs twice in its process, and
a second run that differs from the first is reported too (state carried between runs).

The strategy cannot tell the sides apart: both read their data from Parquet files the checker wrote in
a temporary folder, so a strategy that opens the configured data files sees the changed data as well.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mt5tester import errors
from mt5tester.config import Config, StrategyConfig
from mt5tester.data.store import m1_table
from mt5tester.engine.dataset import read_symbol
from mt5tester.engine.loop import Runner, timeline
from mt5tester.engine.preflight import day_ns
from mt5tester.engine.run import run
from mt5tester.errors import ConfigError, Mt5TesterError
from mt5tester.model.bars import Bars
from mt5tester.model.signal import Signal
from mt5tester.results.memory import MemorySink
from mt5tester.strategy.folders import expand_folders
from mt5tester.strategy.loader import BUILTINS, plugin_targets
from mt5tester.terminal.server import TickStream

Event = tuple[int, str, str, str, str]  # (time ns, kind, strategy, symbol, value)


def when(ns: int) -> str:
    """UTC time of an event: minutes, with seconds only when they are not zero (real ticks)."""
    t = pd.Timestamp(ns, tz="UTC")
    return t.strftime("%Y-%m-%d %H:%M:%S" if t.second or t.microsecond else "%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class Difference:
    """The first decision (at or before ``cut``) that is not the same on both sides."""

    kind: str  # signal, invalid, error, order, deal, prepare
    time: int
    strategy: str
    symbol: str
    full: str
    changed: str
    cut: int | None  # None: a second run in the same process differed (state carried between runs)

    def describe(self) -> str:
        why = (
            f"when the data after {when(self.cut)} changes"
            if self.cut is not None
            else "on a second run in the same process (state carried between runs)"
        )
        return (
            f"{self.kind} of {self.strategy} on {self.symbol} at {when(self.time)} changes {why}: "
            f"full run {self.full} | changed {self.changed}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "time": when(self.time),
            "strategy": self.strategy,
            "symbol": self.symbol,
            "cut": None if self.cut is None else when(self.cut),
            "full": self.full,
            "changed": self.changed,
        }


@dataclass
class LookaheadReport:
    strategy: str
    cuts: list[int]
    seed: int = 0
    signals_checked: int = 0
    values_checked: int = 0
    differences: list[Difference] = field(default_factory=list)  # the first one of each failing cut

    @property
    def clean(self) -> bool:
        return not self.differences

    @property
    def first(self) -> Difference | None:
        return min(self.differences, key=lambda d: d.time) if self.differences else None

    def to_dict(self) -> dict[str, Any]:
        first = self.first
        return {
            "strategy": self.strategy,
            "clean": self.clean,
            "seed": self.seed,
            "cuts": [when(c) for c in self.cuts],
            "signals_checked": self.signals_checked,
            "values_checked": self.values_checked,
            "first_difference": first.to_dict() if first else None,
            "differences": [d.to_dict() for d in self.differences],
        }


# ------------------------------------------------------------------------------------ the config
def _shown_name(sc: StrategyConfig) -> str:
    """The name every other output shows: ``name:``, else the class name (as the loader does)."""
    if sc.name:
        return sc.name
    target = BUILTINS.get(sc.class_) or plugin_targets().get(sc.class_, sc.class_)
    return target.rsplit(":", 1)[-1]


def _only(cfg: Config, name: str, work: Path) -> Config:
    """The config reduced to the strategy (and, for a fusion strategy, its members); its results in a
    temp DB; ``portfolio.categories`` and the trading modes dropped (they describe the whole portfolio,
    not this check; strategy folders are expanded before)."""
    chosen = [sc for sc in cfg.strategies if name in (_shown_name(sc), sc.class_)]
    if not chosen:
        names = [_shown_name(sc) for sc in cfg.strategies]
        raise ConfigError(f"check-lookahead: no strategy '{name}' in the config (configured: {names})")
    members = set(chosen[0].params.get("members", []))
    keep = [sc for sc in cfg.strategies if sc is chosen[0] or _shown_name(sc) in members]
    if not chosen[0].trade and not members:  # a fusion member checked alone: its signals are traded
        keep = [chosen[0].model_copy(update={"trade": True})]
    return cfg.model_copy(
        update={
            "strategies": keep,
            "portfolio": cfg.portfolio.model_copy(update={"categories": []}),
            "trading_modes": {},
            "trading_mode": None,
            "trading_mode_switch": [],
            "results": cfg.results.model_copy(
                update={"database_url": f"sqlite:///{work / 'check.sqlite'}", "out_dir": work}
            ),
            "report": cfg.report.model_copy(update={"html": False}),
            "data": cfg.data.model_copy(update={"min_health": 0.0}),
        }
    )


# ------------------------------------------------------------------------------------ the check
def check_lookahead(
    cfg: Config, base_dir: Path, name: str, points: int = 5, seed: int = 0, jobs: int | None = None
) -> LookaheadReport:
    """Compare the reference run with ``points`` runs whose data after a seeded cut is changed."""
    work = Path(tempfile.mkdtemp(prefix="mt5tester-lookahead-"))
    try:
        cfg = _only(expand_folders(cfg, base_dir), name, work)
        full = _side(cfg, base_dir, work / "full", None, seed, repeat=2)
        report = LookaheadReport(name, [], seed)
        first, second = full["runs"]
        state = _first_difference(first, second, None, None)
        if state is not None:
            report.differences.append(state)
        times = np.asarray(full["points"], np.int64)
        if len(times) < 2:
            raise ConfigError("check-lookahead: the run has fewer than 2 decision points; widen start..end")
        report.cuts = _cuts(times, np.asarray(full["m1_times"], np.int64), first, points, seed)
        workers = max(1, min(jobs or os.cpu_count() or 1, len(report.cuts)))
        with ThreadPoolExecutor(workers) as pool:
            sides = list(
                pool.map(
                    lambda k: _side(
                        cfg, base_dir, work / f"cut{k}", report.cuts[k], seed + 1 + k, k % 2 == 0
                    ),
                    range(len(report.cuts)),
                )
            )
        for cut, side in zip(report.cuts, sides, strict=True):
            run = side["runs"][0]
            report.signals_checked += sum(1 for e in first["events"] if e[0] <= cut and e[1] == "signal")
            diff = _first_difference(first, run, cut, report)
            if diff is not None:
                report.differences.append(diff)
        report.differences.sort(key=lambda d: (d.time, d.cut or 0))
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _cuts(times: np.ndarray, m1_times: np.ndarray, ref: dict[str, Any], n: int, seed: int) -> list[int]:
    """``n`` seeded cut times, taken in turn from three pools: decision points where the reference
    run did something (a signal, an order, a deal), any decision point, and M1 times strictly between
    decision points (a leak that reaches less than one decision interval ahead is only seen there)."""
    rng = np.random.default_rng(seed)
    lo, hi = int(times[0]), int(times[-1])
    active = sorted(
        {e[0] for e in ref["events"] if e[1] != "signal" or e[4] != "(none)"} & set(times.tolist())
    )
    inside = m1_times[(m1_times > lo) & (m1_times < hi)]
    between = inside[~np.isin(inside, times)]
    pools = [np.asarray(active, np.int64), times, between]
    picks = [rng.permutation(p)[:n].tolist() for p in pools]
    chosen: list[int] = []
    for k in range(n * 3):
        pool = picks[k % 3]
        if k // 3 < len(pool) and int(pool[k // 3]) not in chosen:
            chosen.append(int(pool[k // 3]))
        if len(chosen) == n:
            break
    return sorted(chosen)


def _first_difference(
    ref: dict[str, Any], other: dict[str, Any], cut: int | None, report: LookaheadReport | None
) -> Difference | None:
    """The earliest difference at or before ``cut`` (everything when None) between two runs."""
    found: list[Difference] = []
    limit = cut if cut is not None else np.iinfo(np.int64).max
    for kinds in (("signal", "invalid", "error", "order"), ("deal",)):
        a = [e for e in ref["events"] if e[0] <= limit and e[1] in kinds]
        b = [e for e in other["events"] if e[0] <= limit and e[1] in kinds]
        for i in range(max(len(a), len(b))):
            x, y = (a[i] if i < len(a) else None), (b[i] if i < len(b) else None)
            if x == y:
                continue
            # The same decision with two values, or the earlier one made on one side only.
            e = x if x is not None and (y is None or x[:4] <= y[:4]) else y
            assert e is not None
            va, vb = (v[4] if v is not None and v[:4] == e[:4] else "(none)" for v in (x, y))
            found.append(Difference(e[1], e[0], e[2], e[3], va, vb, cut))
            break
    for key, (close, columns) in other["prepared"].items():
        ref_close, ref_columns = ref["prepared"][key]
        n = int(np.searchsorted(close, limit, "right"))
        for col, values in columns.items():
            a, b = ref_columns[col][:n], values[:n]
            if report is not None:
                report.values_checked += n
            same = _same(a, b) if len(a) == len(b) else np.zeros(n, bool)
            if not bool(np.all(same)):
                i = int(np.argmin(same))
                va, vb = (f"{col}={v[i]!r}" if i < len(v) else "(none)" for v in (a, b))
                found.append(Difference("prepare", int(ref_close[i]), key[0], key[1], va, vb, cut))
    return min(found, key=lambda d: d.time) if found else None


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Equal, or both NaN; floats within 1e-9 relative (the same causal arithmetic)."""
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        return np.asarray(np.isclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True))
    return np.asarray(a == b)


# ------------------------------------------------------------------------------------ one side
def _side(
    cfg: Config, base_dir: Path, work: Path, cut: int | None, seed: int, mirror: bool = False, repeat: int = 1
) -> Any:
    """Run one side in a fresh Python process; return what it observed, or raise what it raised."""
    work.mkdir(parents=True)
    job = work / "job.pickle"
    side = {
        "cfg": cfg,
        "base_dir": str(base_dir),
        "work": str(work),
        "cut": cut,
        "mirror": mirror,
        "seed": seed,
        "repeat": repeat,
    }
    job.write_bytes(pickle.dumps(side))
    env = dict(os.environ)
    env.pop("MT5TESTER_DB_URL", None)  # the side's results go to its temp DB, never the user's
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "mt5tester.engine.lookahead", str(job)],
        capture_output=True,
        text=True,
        env=env,
        cwd=base_dir,
    )
    out = work / "result.pickle"
    if not out.is_file():
        raise RuntimeError(
            f"check-lookahead: a checker process failed (exit {proc.returncode}):\n{proc.stderr}"
        )
    result = pickle.loads(out.read_bytes())
    if "error" in result:
        kind, message = result["error"]
        cls = getattr(errors, kind, None)
        if isinstance(cls, type) and issubclass(cls, Mt5TesterError):
            raise cls(message)
        raise RuntimeError(f"check-lookahead: a checker process failed:\n{message}")
    return result


def changed_bars(bars: Bars, cut: int, rng: np.random.Generator, digits: int, mirror: bool = False) -> Bars:
    """The same bars before ``cut``; after it a different valid path on the same times, with new
    spreads and volumes. The bar opening at ``cut`` keeps its open and spread (the tick known at
    ``cut``). The path is a seeded random walk with the symbol's own M1 volatility or, with
    ``mirror``, the real path mirrored around the price at the cut and stretched 1.7x in log terms
    (every rise becomes a larger fall: a leak of the future's direction flips, one of its size changes)."""
    k = int(np.searchsorted(bars.time, cut, "left"))
    n = len(bars) - k
    if n <= 0:
        return bars
    keep = bool(bars.time[k] == cut)
    start = float(bars.open[k]) if keep or k == 0 else float(bars.close[k - 1])
    if mirror:

        def flip(x: np.ndarray) -> np.ndarray:
            return start * (start / x) ** 1.7

        open_, high, low, close = (
            flip(bars.open[k:]),
            flip(bars.low[k:]),
            flip(bars.high[k:]),
            flip(bars.close[k:]),
        )
    else:
        window = bars.close[max(0, k - 10_000) : k + 2]
        sigma = max(float(np.std(np.diff(np.log(window)))) if len(window) > 2 else 0.0, 1e-5)
        close = start * np.exp(np.cumsum(rng.normal(0.0, sigma, n)))
        open_ = np.r_[start, close[:-1]]
        high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, sigma, n)))
        low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, sigma, n)))
    open_, high, low, close = (np.round(x, digits) for x in (open_, high, low, close))
    high, low = np.maximum.reduce([high, open_, close]), np.minimum.reduce([low, open_, close])
    spread = rng.permutation(bars.spread[k:]).astype(np.int32)
    if bars.spread.any():  # data without spreads (all 0: the symbol's spread is used) stays without
        spread += rng.integers(0, 3, n).astype(np.int32)
    if keep:
        spread[0] = bars.spread[k]
    return Bars(
        bars.symbol,
        bars.timeframe,
        bars.time,
        np.r_[bars.open[:k], open_],
        np.r_[bars.high[:k], high],
        np.r_[bars.low[:k], low],
        np.r_[bars.close[:k], close],
        np.r_[bars.tick_volume[:k], rng.integers(1, 200, n)].astype(np.int64),
        np.r_[bars.spread[:k], spread].astype(np.int32),
    )


def _changed_ticks(
    time: np.ndarray,
    bid: np.ndarray,
    ask: np.ndarray,
    cut: int,
    rng: np.random.Generator,
    digits: int,
    mirror: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Recorded ticks: those at or before ``cut`` kept, the later ones changed as ``changed_bars``."""
    k = int(np.searchsorted(time, cut, "right"))
    n = len(time) - k
    if n <= 0 or k == 0:
        return bid, ask
    start = float(bid[k - 1])
    if mirror:
        new_bid = np.round(start * (start / bid[k:]) ** 1.7, digits)
    else:
        sigma = max(float(np.std(np.diff(np.log(bid[max(0, k - 10_000) : k + 1])))), 1e-6)
        new_bid = np.round(start * np.exp(np.cumsum(rng.normal(0.0, sigma, n))), digits)
    new_ask = np.round(new_bid + rng.permutation(np.maximum(ask[k:] - bid[k:], 0.0)), digits)
    return np.r_[bid[:k], new_bid], np.r_[ask[:k], new_ask]


def _write_ticks(time: np.ndarray, bid: np.ndarray, ask: np.ndarray, path: Path) -> None:
    pq.write_table(
        pa.table({"time": pa.array(time, pa.timestamp("ns", tz="UTC")), "bid": bid, "ask": ask}), path
    )


def _key(sig: Any) -> str:
    if isinstance(sig, Signal):
        return sig.model_dump_json(exclude={"comment"})
    return repr(sig)


def _observe(job: dict[str, Any]) -> dict[str, Any]:
    """In the side's own process: write its data (changed after the cut), run it, record every decision."""
    cfg: Config = job["cfg"]
    cut: int | None = job["cut"]
    base_dir, work = Path(job["base_dir"]), Path(job["work"])
    data = work / "data"
    data.mkdir()
    rng = np.random.default_rng(job["seed"])
    real: dict[str, TickStream] = {}
    m1_times = []
    start, end = day_ns(cfg.backtest.start), day_ns(cfg.backtest.end)
    for sym in cfg.backtest.symbols:
        spec = cfg.symbol_spec(sym)
        got = read_symbol(cfg, sym, spec)
        bars = got.m1
        if got.ticks is not None:
            real[sym] = got.ticks
        if cut is not None:
            bars = changed_bars(bars, cut, rng, spec.digits, job["mirror"])
        m1_times.append(bars.time[(bars.time >= start) & (bars.time < end)])
        pq.write_table(m1_table(bars), data / f"{sym}_M1.parquet")
        if sym in real:
            r = real[sym]
            bid, ask = (
                (r.bid, r.ask)
                if cut is None
                else _changed_ticks(r.time, r.bid, r.ask, cut, rng, spec.digits, job["mirror"])
            )
            _write_ticks(r.time, bid, ask, data / f"{sym}_ticks.parquet")
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"source": "files", "path": data})})
    runs = []
    points: list[int] = []
    for _ in range(job["repeat"]):
        watch = Watch(cut)
        try:  # through the one entry point, records in memory (nothing of a side is stored)
            run(cfg, base_dir=base_dir, sink=MemorySink(), watch=watch)
        except errors.StrategyRuntimeError:
            if cut is None or watch.runner is None:  # fails on the real data: the check cannot run (exit 5)
                raise
            # On changed data a strategy may fail after its decisions were recorded: they are compared.
        assert watch.runner is not None  # attached: run() raised nothing before the loop
        points = timeline(watch.runner.c).times.tolist()
        watch.finish()
        runs.append({"events": watch.events, "prepared": watch.prepared(cut)})
    return {"runs": runs, "points": points, "m1_times": np.unique(np.concatenate(m1_times))}


class Watch:
    """Records every decision of a run it is attached to (``run(..., watch=Watch(cut))``): each call's
    output, each request sent through the terminal (with its result) and, at the end, every deal at the
    time it became known. No decision point after ``stop_ns``."""

    def __init__(self, stop_ns: int | None = None) -> None:
        self.stop_ns = stop_ns
        self.events: list[Event] = []
        self.runner: Runner | None = None
        self._who = ""
        self._known: dict[int, int] = {}  # deal ticket -> the time of the replay that made it
        self._closing = False

    def attach(self, runner: Runner) -> None:
        self.runner = runner
        runner.stop_ns = self.stop_ns
        c = runner.c
        send, advance, server = c.terminal.order_send, c.server.advance, c.server

        def replay(t: int) -> Any:
            # A fill inside an M1 (or open-prices) bar is stamped with the bar's open time but is only
            # known when the replay reaches t: deals are compared at that time, not their stamp.
            n = len(server.deals)
            out = advance(t)
            self._known.update((d.ticket, t) for d in server.deals[n:])
            return out

        def order_send(request: Any, *args: Any, **kwargs: Any) -> Any:
            result = send(request, *args, **kwargs)
            if self._closing:  # the tester's close at the end of the run: not a decision
                return result
            req = dict(request) if isinstance(request, dict) else request
            got = None if result is None else (result.retcode, result.volume, result.price)
            symbol = str(req.get("symbol", "")) if isinstance(req, dict) else ""
            self.events.append((runner.ctx.now, "order", self._who, symbol, f"{_sorted(req)} -> {got}"))
            return result

        # Instance attributes shadow the methods: the terminal's Buy/Sell/Close and the loop call these;
        # the strategies' MetaTrader5 module (ctx.mt5, also the engine's own order_send) gets the same.
        c.terminal.order_send = order_send  # type: ignore[method-assign]
        runner.ctx.mt5.order_send = order_send
        c.server.advance = replay  # type: ignore[method-assign]
        close_at_end = runner.router.close_all_at_end

        def closing(end: int, inclusive: bool = False) -> None:
            self._closing = True
            try:
                close_at_end(end, inclusive)
            finally:
                self._closing = False

        runner.router.close_all_at_end = closing  # type: ignore[method-assign]
        self._watch(runner)

    def _watch(self, runner: Runner) -> None:
        """Record the host's strategy calls (its watch), invalid signals and strategy errors."""
        host = runner.host
        invalid, failed = host._invalid, host.failed

        def watched_invalid(si: int, symbol: str, t: int, reason: str, message: str | None = None) -> None:
            self.events.append((t, "invalid", host.name(si), symbol, message or reason))
            invalid(si, symbol, t, reason, message)

        def watched_failed(si: int, symbol: str, t: int, e: Exception) -> Any:
            self.events.append((t, "error", host.name(si), symbol, f"{type(e).__name__}: {e}"))
            return failed(si, symbol, t, e)

        host.watch = self  # calling / called
        # Instance attributes shadow the methods: the host calls these.
        host._invalid, host.failed = watched_invalid, watched_failed  # type: ignore[method-assign]

    def calling(self, si: int) -> None:
        """The host calls strategy ``si``: the orders sent meanwhile are its own."""
        assert self.runner is not None
        self._who = self.runner.host.name(si)

    def called(self, si: int, symbol: str, t: int, signals: list[Any]) -> None:
        self.events.append((t, "signal", self._who, symbol, "; ".join(map(_key, signals)) or "(none)"))
        self._who = ""

    def finish(self) -> None:
        assert self.runner is not None
        state = self.runner.c.server.state
        for d in state.deals:
            strategy = self.runner.journal.owners.deal(state, d)[0]
            value = (
                f"type {d.type} entry {d.entry} reason {d.reason} volume {d.volume} price {d.price} "
                f"profit {d.profit} commission {d.commission} swap {d.swap} position {d.position_id} "
                f"at {when(d.time)}"
            )
            self.events.append((self._known.get(d.ticket, int(d.time)), "deal", strategy, d.symbol, value))

    def prepared(self, cut: int | None) -> dict[tuple[str, str], Any]:
        assert self.runner is not None
        out = {}
        for (si, sym), feed in self.runner.c.feeds.items():
            close = feed.bars.close_time
            n = len(close) if cut is None else int(np.searchsorted(close, cut, "right"))
            out[(self.runner.host.name(si), sym)] = (close[:n], {k: v[:n] for k, v in feed.extra.items()})
        return out


def _sorted(req: Any) -> str:
    return repr(dict(sorted(req.items()))) if isinstance(req, dict) else repr(req)


def main(argv: list[str]) -> int:
    """A side: ``python -m mt5tester.engine.lookahead JOB``; writes result.pickle next to JOB."""
    job_path = Path(argv[0])
    job = pickle.loads(job_path.read_bytes())
    try:
        result: dict[str, Any] = _observe(job)
    except Mt5TesterError as e:
        result = {"error": (type(e).__name__, str(e))}
    except Exception:
        result = {"error": ("", traceback.format_exc())}
    (job_path.parent / "result.pickle").write_bytes(pickle.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
