"""The decision points of a run: the bar closes of the strategies' timeframes, merged across symbols,
as flat numpy arrays, and an iterator that walks them a chunk at a time."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, pairwise

import numpy as np

from mt5tester.arith.search import search_sorted
from mt5tester.data.resample import bucket_start
from mt5tester.engine.build import Components
from mt5tester.engine.preflight import day_ns
from mt5tester.model.timeframe import Timeframe
from mt5tester.strategy.base import FusionStrategy

CHUNK = 65_536  # points turned into Python lists at a time (memory)

Event = tuple[int, str, int]  # (strategy index, symbol, index of the bar that closed)
Point = tuple[int, int, Sequence[Event], bool]  # (index, time, events, equity sample)


@dataclass
class Timeline:
    """Decision points in time order and their events, as flat numpy arrays (no object per point).

    Point n is at ``times[n]``; its events are ``si[k], symbols[sym[k]], idx[k]`` for k in
    ``range(starts[n], starts[n + 1])``: (strategy index, symbol, index of the bar that closed).
    ``sample[n]``: whether an equity row is recorded at point n (``results.equity_sampling``).
    The loop turns them into Python lists a chunk at a time (``chunk``).
    """

    times: np.ndarray
    starts: np.ndarray
    si: np.ndarray
    sym: np.ndarray
    idx: np.ndarray
    sample: np.ndarray
    symbols: list[str]

    def __len__(self) -> int:
        return len(self.times)

    def chunk(
        self, lo: int, hi: int
    ) -> tuple[list[int], list[int], list[int], list[str], list[int], list[bool]]:
        """Points [lo, hi) as lists; their event positions are relative to the chunk."""
        e0, e1 = int(self.starts[lo]), int(self.starts[hi])
        names = self.symbols
        return (
            self.times[lo:hi].tolist(),
            (self.starts[lo : hi + 1] - e0).tolist(),
            self.si[e0:e1].tolist(),
            [names[k] for k in self.sym[e0:e1].tolist()],
            self.idx[e0:e1].tolist(),
            self.sample[lo:hi].tolist(),
        )


def equity_samples(c: Components, times: np.ndarray) -> np.ndarray:
    """Which decision points get an equity row: all of them (``point``), or the first point of each
    period of the sampling timeframe on the server clock; the last point always."""
    every = c.cfg.results.equity_sampling
    keep = np.ones(len(times), dtype=bool)
    if every == "point" or not len(times):
        return keep
    period = bucket_start(times, Timeframe.parse(every), c.cfg.backtest.server_timezone)
    keep[1:] = period[1:] != period[:-1]
    keep[-1] = True
    return keep


def timeline(c: Components) -> Timeline:
    """Decision points in [start, end) and the strategy calls at each.

    t is the first M1 tick at or after the bar's close (the bar is known closed only then); bars
    whose close is followed by no tick before ``end`` are never seen, as in MT5. A strategy with a
    ``signal_column`` is called only on the bars where that prepared column is non-zero. Built with
    numpy: one sort over every (strategy, symbol) close; fusion strategies last within a point.
    """
    start, end = day_ns(c.cfg.backtest.start), day_ns(c.cfg.backtest.end)
    parts_t, parts_fusion, parts_si, parts_sym, parts_i = [], [], [], [], []
    symbols: list[str] = []
    for si, ls in enumerate(c.strategies):
        fusion = isinstance(ls.strategy, FusionStrategy)
        column = ls.strategy.signal_column
        for sym in ls.strategy.symbols:
            bars = c.tf_bars[(sym, ls.strategy.timeframe)]
            # The bar is seen on the next tick: a recorded one in real_ticks mode, else an M1 open.
            real = c.server.real_ticks.get(sym) if c.server.settings.tick_mode == "real_ticks" else None
            m1_time = real.time if real is not None else c.m1[sym].time
            close = bars.close_time
            first = int(np.searchsorted(close, start, "left"))
            # A signal column's zero (or NaN) bars are no points: only its other bars are looked up
            # (a few per cent of a million bars, so no per-bar temporaries).
            rows = None
            if column is not None:
                values = np.asarray(c.feeds[(si, sym)].extra[column][first:])
                if values.dtype.kind in "biu":  # integers (a +1/-1/0 column): no NaN, no float copy
                    rows = np.flatnonzero(values)
                else:
                    values = values.astype(np.float64, copy=False)
                    rows = np.flatnonzero((values != 0) & ~np.isnan(values))
            closes = close[first:] if rows is None else close[first:][rows]
            seen = search_sorted(m1_time, closes, False)  # closes ascend: each search starts at the last
            ok = seen < len(m1_time)
            when = np.where(ok, m1_time[np.minimum(seen, len(m1_time) - 1)], end)
            keep = ok & (when >= start) & (when < end)
            idx = np.flatnonzero(keep)
            parts_t.append(when[idx].astype(np.int64))
            idx = idx if rows is None else rows[idx]
            parts_fusion.append(np.full(len(idx), fusion))
            parts_si.append(np.full(len(idx), si))
            symbols.append(sym)
            parts_sym.append(np.full(len(idx), len(symbols) - 1))
            parts_i.append(first + idx)
    if not parts_t or not sum(len(x) for x in parts_t):
        empty = np.zeros(0, np.int64)
        return Timeline(empty, np.zeros(1, np.int64), empty, empty, empty, np.zeros(0, bool), symbols)
    t_all = np.concatenate(parts_t)
    order = np.lexsort((np.concatenate(parts_si), np.concatenate(parts_fusion), t_all))
    t_all = t_all[order]
    bounds = np.flatnonzero(np.diff(t_all)) + 1
    starts = np.concatenate([[0], bounds, [len(t_all)]]).astype(np.int64)
    times = t_all[starts[:-1]]
    return Timeline(
        times,
        starts,
        np.concatenate(parts_si)[order],
        np.concatenate(parts_sym)[order],
        np.concatenate(parts_i)[order],
        equity_samples(c, times),
        symbols,
    )


def points(tl: Timeline, first: int, stop_ns: int | None = None) -> Iterator[Point]:
    """Points ``first``.. in order: (index, time, events (strategy index, symbol, bar index), whether
    an equity row is recorded). Numpy arrays become Python lists a chunk at a time (bounded in memory);
    per point the iterator is C only (a chain of zips): no Python frame, no index arithmetic.
    ``stop_ns``: no point after this time (the lookahead checker's cut)."""
    end = len(tl) if stop_ns is None else int(np.searchsorted(tl.times, stop_ns, "right"))
    return chain.from_iterable(_chunk(tl, lo, min(lo + CHUNK, end)) for lo in range(first, end, CHUNK))


def _chunk(tl: Timeline, lo: int, hi: int) -> Iterator[Point]:
    times, starts, ev_si, ev_sym, ev_i, sample = tl.chunk(lo, hi)
    events = list(zip(ev_si, ev_sym, ev_i, strict=True))
    # One event per point (one strategy on one symbol): 1-tuples, made in C. Otherwise slices (starts has
    # one entry more than the points: its last bounds the last point).
    one = len(events) == hi - lo
    per_point: Iterable[Sequence[Event]] = zip(events) if one else [events[a:b] for a, b in pairwise(starts)]
    return zip(range(lo, hi), times, per_point, sample, strict=True)


@contextmanager
def frozen_gc() -> Iterator[None]:
    """What the build made (data, frames, strategies) lives through the whole run: frozen, the cyclic
    garbage collector does not scan it again at each collection. Released at the end."""
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    try:
        yield
    finally:
        if freeze:
            gc.unfreeze()


def m1_bars(c: Components) -> int:
    """M1 bars of the tested symbols in [start, end): what the run simulated."""
    start, end = day_ns(c.cfg.backtest.start), day_ns(c.cfg.backtest.end)
    m1 = [c.m1[s].time for s in c.cfg.backtest.symbols]
    return sum(int(np.searchsorted(x, end) - np.searchsorted(x, start)) for x in m1)
