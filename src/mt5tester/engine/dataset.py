"""Market data loaded once, handed to many runs: the M1 bars (and recorded ticks) of each symbol.

A ``Dataset`` is plain arrays in dataclasses, so it pickles: an optimizer loads it once per worker
(``load_data``) and every ``run(config, data=...)`` in that worker builds from it instead of reading
files. It is a cache, never a second truth: a run uses a symbol's entry only when it was read from the
same source, with the same tick mode and over a window that covers the run's; otherwise ``build`` reads
that symbol from disk as it would without a dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mt5tester.config import Config
from mt5tester.data.importers import read_ticks_parquet
from mt5tester.data.store import find_m1_file, find_ticks_file, m1_from_ticks, read_m1_parquet
from mt5tester.engine import preflight
from mt5tester.errors import DataError
from mt5tester.model.bars import Bars
from mt5tester.model.symbol import SymbolSpec
from mt5tester.terminal.server import TickStream


@dataclass(frozen=True)
class SymbolData:
    """One symbol's history as read from its source: M1 bars, and recorded ticks in real_ticks mode."""

    m1: Bars
    ticks: TickStream | None
    spec: SymbolSpec


@dataclass(frozen=True)
class Dataset:
    """Preloaded market data; ``source`` names where it came from, ``window`` what a catalog read
    covers ([first_ns, end_ns), None for whole files)."""

    source: str
    window: tuple[int, int] | None
    symbols: dict[str, SymbolData] = field(default_factory=dict)

    def lookup(self, cfg: Config, symbol: str) -> SymbolData | None:
        """The entry a run of ``cfg`` may use for ``symbol`` (cut to its window), or None: read it."""
        entry = self.symbols.get(symbol)
        if entry is None or self.source != data_source(cfg):
            return None
        if cfg.backtest.tester_mode == "real_ticks" and entry.ticks is None:
            return None
        want = history_window(cfg)
        if want is None:
            return entry if self.window is None else None
        if self.window is None or not (self.window[0] <= want[0] and want[1] <= self.window[1]):
            return None
        # A catalog read returns exactly its window: cut the wider preload to the run's.
        ticks = entry.ticks
        if ticks is not None:
            keep = (ticks.time >= want[0]) & (ticks.time < want[1])
            ticks = TickStream(ticks.time[keep], ticks.bid[keep], ticks.ask[keep])
        return SymbolData(entry.m1.between(*want), ticks, entry.spec)


def data_source(cfg: Config) -> str:
    if cfg.data.source == "catalog":
        return f"catalog:{cfg.data.catalog}"
    return f"path:{cfg.data.path}"


def history_window(cfg: Config) -> tuple[int, int] | None:
    """What the tester reads from a catalog: January 1 of the year before ``start`` through ``end``
    (as MT5 preloads). Files are read whole (None)."""
    if cfg.data.source != "catalog":
        return None
    return preflight.day_ns(f"{cfg.backtest.start.year - 1}-01-01"), preflight.day_ns(cfg.backtest.end)


def read_symbol(cfg: Config, symbol: str, spec: SymbolSpec) -> SymbolData:
    """M1 bars of a symbol; in real_ticks mode also its recorded ticks (M1 built from them if absent)."""
    real_ticks = cfg.backtest.tester_mode == "real_ticks"
    window = history_window(cfg)
    if window is not None:
        from mt5tester.data.catalog import Catalog

        cat = Catalog(cfg.data.catalog)
        ticks = None
        if real_ticks:
            t = cat.load_ticks(symbol, *window)
            ticks = TickStream(t.time, t.bid, t.ask)
        return SymbolData(cat.load(symbol, "M1", *window), ticks, spec)
    ticks_path = find_ticks_file(cfg.data.path, symbol)
    if real_ticks:
        if ticks_path is None:
            raise DataError(
                f"tester_mode real_ticks needs recorded ticks for {symbol}: no {symbol}_ticks*.parquet in "
                f"{cfg.data.path} (columns time UTC, bid, ask)"
            )
        t = read_ticks_parquet(ticks_path, symbol)
        ticks = TickStream(t.time, t.bid, t.ask)
        try:
            m1_path = find_m1_file(cfg.data.path, symbol)
        except DataError:
            return SymbolData(m1_from_ticks(symbol, t.time, t.bid, t.ask, spec.point), ticks, spec)
        return SymbolData(read_m1_parquet(m1_path, symbol), ticks, spec)
    return SymbolData(read_m1_parquet(find_m1_file(cfg.data.path, symbol), symbol), None, spec)


def load_data(config: Config) -> Dataset:
    """Read the market data a run of ``config`` needs, once, for many runs (``run(cfg, data=...)``).

    Runs of other configs may share it when they read the same source (same data path or catalog,
    same tester mode, a catalog window inside this one's); symbols it lacks are read by each run.
    """
    symbols = {s: read_symbol(config, s, config.symbol_spec(s)) for s in config.backtest.symbols}
    return Dataset(data_source(config), history_window(config), symbols)
