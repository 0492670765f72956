"""SMA(10)/SMA(30) cross on M1 bars: mt5tester against backtesting.py, backtrader and vectorbt, same data,
same run.

    python bench/sma_cross.py [--data PATH] [--bars N] [--sizes N,N,..] [--json] [--engines LIST]
                              [--no-process] [--startup] [--no-micro] [--profile]

The strategy is the same in every engine: SMA(10) and SMA(30) of close; a cross is a change of the last
non-zero sign of (fast - slow), |fast - slow| <= 1e-8 being a tie that keeps the last sign; the first
cross opens one unit in its direction, each later cross reverses; market orders fill at the next bar's
open; a cross on the last bar is not filled; what is open at the end is marked at the last close; no
spread, no commission, no swap.

Every engine's entries (bar, direction, price), trade count and PnL are checked against a small numpy
reference before any figure is printed; the first differing entry is shown when they disagree.
Each engine's time runs from the Parquet path to its result (reading, indicators, loop, its own stats);
its run phase from the bars in memory to its deals in memory (indicators and signals included, file read
and JIT compile excluded: every engine is warmed once on a small slice before it is timed).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import io
import json
import os
import platform
import pstats
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# What a peer's whole process pays for this file's own strategies (numpy and pandas are loaded above,
# as every peer loads them): subtracted from the peers' whole-process seconds.
_T_MT5_IMPORT = time.perf_counter()
from mt5tester.model.signal import Signal  # noqa: E402
from mt5tester.model.timeframe import Timeframe  # noqa: E402
from mt5tester.strategy.base import Strategy, StrategyParams  # noqa: E402

MT5_IMPORT_SECONDS = time.perf_counter() - _T_MT5_IMPORT

FAST, SLOW, TIE = 10, 30, 1e-8
# Our engine hands each call the last `warmup_bars` closed bars: SLOW + 1 gives the two last diffs.
WARMUP = SLOW + 1
SYMBOL = "EURUSD"
# Deal profits are rounded to cents per deal (as MT5 does), so 1 unit would book 0.00 on most trades.
# Our engine therefore trades 1 lot of 100,000 units (exact: 1 point = 1 USD) and its PnL is divided
# by 100,000 to compare with the 1-unit peers.
CONTRACT = 100_000.0
PEER_CASH = 1_000.0  # small cash keeps the peers' float accounting precise; 1 unit costs ~1.1
PNL_TOL = 1e-6
PRICE_TOL = 1e-9
HERE = Path(__file__).resolve()
ENGINES = (
    "backtesting.py",
    "backtrader",
    "vectorbt",
    "mt5tester",
    "mt5tester_numpy",
    "mt5tester_indicators",
    "mt5tester_indicators_loop",
    "mt5tester_prepared",
)
# Equity rows of our engine: the first decision point of each hour (results.equity_sampling). "point"
# writes a row per decision point: 1M rows, about 1.8 s of SQLite inserts on 1M M1 bars.
EQUITY_SAMPLING = "H1"
PEERS = ("backtesting.py", "backtrader", "vectorbt")
# Every engine is run once on the first WARM_BARS bars before it is timed (imports, JIT compile, caches).
WARM_BARS = 4_320
# Engines of a few 10k bars/s that a --sizes sweep runs only up to this many bars (--slow-max-bars).
SLOW_ENGINES = ("backtrader", "mt5tester")
SLOW_MAX_BARS = 1_000_000

# ------------------------------------------------------------------------------------------ mt5tester


class SmaCrossParams(StrategyParams):
    fast: int = FAST
    slow: int = SLOW
    tie: float = TIE


def _sign(d: float, tie: float) -> int:
    return 1 if d > tie else (-1 if d < -tie else 0)


def _on_sign(strategy: Any, symbol: str, s: int) -> list[Signal]:
    """The decision on this bar's sign: a reversal signal when the last non-zero sign changes."""
    if s == 0:
        return []
    last, strategy._last = strategy._last, s
    if last == 0 or s == last:
        return []
    return [Signal(symbol=symbol, direction="buy" if s > 0 else "sell", strategy=strategy.name)]


class SmaCross(Strategy):
    """Per-bar Python SMA cross for mt5tester: reverses on each change of the last non-zero sign."""

    category = "technical"
    Params = SmaCrossParams
    bars_only = True  # its signals read the closes alone: a signal pass, then the kernel trades them

    def on_start(self, ctx: Any) -> None:
        self._last: int | None = None

    def generate_signals(self, symbol: str, timeframe: Timeframe, df: pd.DataFrame) -> list[Signal]:
        p = self.params
        assert isinstance(p, SmaCrossParams)
        close = np.asarray(df["close"])
        n = len(close)
        if n < p.slow:
            return []
        if self._last is None:
            # First call: the window's earlier diffs only set the sign (no decision was made on them).
            self._last = 0
            for end in range(p.slow, n):
                s = _sign(close[end - p.fast : end].mean() - close[end - p.slow : end].mean(), p.tie)
                self._last = s or self._last
        return _on_sign(self, symbol, _sign(close[-p.fast :].mean() - close[-p.slow :].mean(), p.tie))


class SmaCrossNumpy(SmaCross):
    """The same per-bar Python strategy, handed the closed bars as numpy arrays (``data_format``)."""

    data_format = "numpy"


class SmaCrossIndicators(Strategy):
    """Per-bar Python decisions on prepared indicators, the way backtesting.py runs its strategies
    (``self.I`` indicators, the sign logic in ``next()``): ``prepare()`` computes SMA(fast) and
    SMA(slow) once; ``generate_signals`` runs on every bar and reads their last values."""

    category = "technical"
    Params = SmaCrossParams
    data_format = "numpy"
    bars_only = True

    def prepare(self, symbol: str, timeframe: Timeframe, bars: pd.DataFrame) -> pd.DataFrame | None:
        t0 = time.perf_counter()
        p = self.params
        assert isinstance(p, SmaCrossParams)
        close = bars["close"]
        out = pd.DataFrame(
            {"fast": close.rolling(p.fast).mean(), "slow": close.rolling(p.slow).mean()}, index=bars.index
        )
        self.prepare_seconds = getattr(self, "prepare_seconds", 0.0) + time.perf_counter() - t0  # run phase
        return out

    def on_start(self, ctx: Any) -> None:
        self._last: int | None = None

    def generate_signals(self, symbol: str, timeframe: Timeframe, df: Any) -> list[Signal]:
        tie = self.params.tie  # type: ignore[attr-defined]
        fast, slow = df["fast"], df["slow"]
        if self._last is None:
            # First call: the window's earlier diffs only set the sign (no decision was made on them).
            diff = fast[:-1] - slow[:-1]
            prev = diff[np.abs(diff) > tie]
            self._last = int(np.sign(prev[-1])) if len(prev) else 0
        d = fast[-1] - slow[-1]  # the last values only, as backtesting.py's next() reads them
        return _on_sign(self, symbol, 1 if d > tie else (-1 if d < -tie else 0))


def cross_column(close: np.ndarray, fast: int, slow: int, tie: float) -> np.ndarray:
    """+1/-1 on the bars where the last non-zero sign of SMA(fast) - SMA(slow) changes, else 0.

    Causal: row i uses closes 0..i only.
    """
    n = len(close)
    s = np.zeros(n, np.int8)  # the sign of d = SMA(fast) - SMA(slow) with ties (|d| <= tie) as 0
    if n >= slow:
        # the same arithmetic as (csum[a:] - csum[b:]) / k with fewer temporaries (in place)
        csum = np.empty(n + 1)
        csum[0] = 0.0
        np.cumsum(close - close[0], out=csum[1:])  # shifted: small sums, precise
        d = csum[slow:] - csum[slow - fast : n + 1 - fast]
        d /= fast
        slow_sma = csum[slow:] - csum[: n + 1 - slow]
        del csum
        slow_sma /= slow
        d -= slow_sma
        del slow_sma
        s[slow - 1 :][d > tie] = 1
        s[slow - 1 :][d < -tie] = -1
        del d
    nz = np.flatnonzero(s)
    out = np.zeros(n, np.int8)
    flips = nz[1:][s[nz[1:]] != s[nz[:-1]]]
    out[flips] = s[flips]
    return out


class SmaCrossPrepared(Strategy):
    """Array-prepared signals: ``prepare()`` computes the cross column once; its sign is the whole
    decision (``column_signals``), so the run goes whole inside the compiled kernel (driver b)."""

    category = "technical"
    Params = SmaCrossParams
    data_format = "numpy"
    signal_column = "cross"
    column_signals = True

    def prepare(self, symbol: str, timeframe: Timeframe, bars: pd.DataFrame) -> pd.DataFrame | None:
        t0 = time.perf_counter()
        p = self.params
        assert isinstance(p, SmaCrossParams)
        close = bars["close"].to_numpy(float)
        out = pd.DataFrame({"cross": cross_column(close, p.fast, p.slow, p.tie)}, index=bars.index)
        self.prepare_seconds = getattr(self, "prepare_seconds", 0.0) + time.perf_counter() - t0  # run phase
        return out


MT5_CLASSES = {
    "mt5tester": "SmaCross",
    "mt5tester_indicators": "SmaCrossIndicators",
    "mt5tester_indicators_loop": "SmaCrossIndicators",
    "mt5tester_numpy": "SmaCrossNumpy",
    "mt5tester_prepared": "SmaCrossPrepared",
}
# The per-bar forms are bars_only: a signal pass, then the kernel trades (engine/signal_pass.py). This form
# forces the Python loop (driver a), whose trades go through Python objects: its figures are kept beside.
MT5_DRIVERS = {"mt5tester_indicators_loop": "loop"}

# ------------------------------------------------------------------------------------------ data


@dataclass
class Prepared:
    path: Path
    source: str
    time: np.ndarray  # int64 ns UTC
    open: np.ndarray
    close: np.ndarray
    start: dt.date
    end: dt.date
    dropped: int = 0


def synthetic(n: int, seed: int = 42) -> pd.DataFrame:
    """Seeded random walk in whole points (5 decimals) around 1.1, one bar per consecutive minute.

    It starts WARMUP minutes before a midnight so that no bar has to be dropped for our engine's warm-up.
    """
    rng = np.random.default_rng(seed)
    close_pts = 110_000 + np.cumsum(np.rint(rng.normal(0.0, 5.0, n))).astype(np.int64)
    open_pts = np.concatenate([[110_000], close_pts[:-1]])
    high_pts = np.maximum(open_pts, close_pts) + np.abs(np.rint(rng.normal(0.0, 3.0, n))).astype(np.int64)
    low_pts = np.minimum(open_pts, close_pts) - np.abs(np.rint(rng.normal(0.0, 3.0, n))).astype(np.int64)
    t0 = pd.Timestamp("2020-01-01", tz="UTC") - pd.Timedelta(minutes=WARMUP)
    return pd.DataFrame(
        {
            "time": pd.date_range(t0, periods=n, freq="min"),
            "open": np.round(open_pts / 1e5, 5),
            "high": np.round(high_pts / 1e5, 5),
            "low": np.round(low_pts / 1e5, 5),
            "close": np.round(close_pts / 1e5, 5),
        }
    )


def prepare(data: Path | None, bars: int | None, tmp: Path) -> Prepared:
    """The one file every engine reads.

    Our engine simulates whole UTC days from ``start`` and needs WARMUP closed bars before it; bars
    before those WARMUP are dropped so that every engine trades the same bars (no cross can happen in
    the first SLOW bars, so none is lost).
    """
    if data is None:
        df = synthetic(bars or 1_000_000)
        source = f"synthetic random walk, seed 42, {len(df):,} M1 bars"
    else:
        df = pd.read_parquet(data, columns=["time", "open", "high", "low", "close"])
        source = str(data)
    t = df["time"].to_numpy("datetime64[ns]").view(np.int64)
    day = 86_400 * 10**9
    start = (int(t[0]) // day + 1) * day
    while int(np.searchsorted(t, start)) < WARMUP:
        start += day
    k = int(np.searchsorted(t, start)) - WARMUP
    changed = k > 0 or (data is not None and bars is not None and bars < len(df) - k)
    if k:
        df = df.iloc[k:].reset_index(drop=True)
    if data is not None and bars is not None:
        df = df.iloc[:bars]
    path = data
    if data is None or changed:
        path = tmp / "bars.parquet"
        df.to_parquet(path, index=False)
    assert path is not None
    t = df["time"].to_numpy("datetime64[ns]").view(np.int64)
    start_d = pd.Timestamp(start, tz="UTC").date()
    end_d = pd.Timestamp(int(t[-1]), tz="UTC").date() + dt.timedelta(days=1)
    return Prepared(
        path, source, t, df["open"].to_numpy(float), df["close"].to_numpy(float), start_d, end_d, k
    )


# ------------------------------------------------------------------------------------------ results

Entry = tuple[int, int, float]  # (bar index of the fill, +1 buy / -1 sell, fill price)


@dataclass
class Result:
    engine: str
    entries: list[Entry] = field(default_factory=list)
    pnl: float = float("nan")
    run_seconds: float = float("nan")
    run_phase_seconds: float = float("nan")  # bars in memory -> deals in memory
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    matches: bool | None = None
    mismatch: str | None = None

    @property
    def trades(self) -> int:
        return len(self.entries)


def reference(p: Prepared) -> Result:
    """Independent numpy implementation of the spec."""
    close, open_ = p.close, p.open
    n = len(close)
    win = np.lib.stride_tricks.sliding_window_view
    fast = np.full(n, np.nan)
    slow = np.full(n, np.nan)
    fast[FAST - 1 :] = win(close, FAST).mean(axis=1)
    slow[SLOW - 1 :] = win(close, SLOW).mean(axis=1)
    d = fast - slow
    s = np.where(d > TIE, 1, np.where(d < -TIE, -1, 0))  # NaN compares False: 0 before SLOW bars
    nz = np.flatnonzero(s)
    cross = nz[1:][s[nz[1:]] != s[nz[:-1]]]
    cross = cross[cross < n - 1]  # a cross on the last bar has no next open
    idx = cross + 1
    dirs = s[cross]
    prices = open_[idx]
    pnl = 0.0
    if len(idx):
        pnl = float(np.sum(dirs[:-1] * np.diff(prices)) + dirs[-1] * (close[-1] - prices[-1]))
    entries = [(int(i), int(x), float(px)) for i, x, px in zip(idx, dirs, prices, strict=True)]
    return Result("reference", entries, pnl)


def verify(r: Result, ref: Result) -> None:
    if r.error:
        r.matches = False
        return
    for k, (a, b) in enumerate(zip(ref.entries, r.entries, strict=False)):
        if a[0] != b[0] or a[1] != b[1] or abs(a[2] - b[2]) > PRICE_TOL:
            r.mismatch = f"entry #{k}: reference (bar, dir, price) {a}, {r.engine} {b}"
            break
    else:
        if len(ref.entries) != len(r.entries):
            k = min(len(ref.entries), len(r.entries))
            extra = ref.entries[k] if len(ref.entries) > k else r.entries[k]
            r.mismatch = (
                f"trades: reference {len(ref.entries)}, {r.engine} {len(r.entries)}; first unmatched {extra}"
            )
    if r.mismatch is None and abs(r.pnl - ref.pnl) > PNL_TOL:
        r.mismatch = f"pnl: reference {ref.pnl:.8f}, {r.engine} {r.pnl:.8f}"
    r.matches = r.mismatch is None


# ------------------------------------------------------------------------------------------ engines


def _peer_frame(path: Path) -> pd.DataFrame:
    df = pd.read_parquet(path, columns=["time", "open", "high", "low", "close"])
    df.index = pd.DatetimeIndex(df.pop("time")).tz_localize(None)
    return df


def run_backtesting(p: Prepared) -> Result:
    from backtesting import Backtest
    from backtesting import Strategy as BtpStrategy

    def sma(x: np.ndarray, n: int) -> np.ndarray:
        return pd.Series(x).rolling(n).mean().to_numpy()

    class BtpSmaCross(BtpStrategy):
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, FAST)
            self.slow = self.I(sma, self.data.Close, SLOW)
            self.last: int | None = None

        def next(self) -> None:
            if self.last is None:
                # next() starts one bar after the slow SMA's first value: that value sets the sign.
                prev = np.asarray(self.fast[:-1] - self.slow[:-1])
                prev = prev[np.abs(prev) > TIE]
                self.last = int(np.sign(prev[-1])) if len(prev) else 0
            s = _sign(self.fast[-1] - self.slow[-1], TIE)
            if s == 0:
                return
            last, self.last = self.last, s
            if last == 0 or s == last:
                return
            # exclusive_orders: the new order first closes the open trade (a reversal at the next open)
            if s > 0:
                self.buy(size=1)
            else:
                self.sell(size=1)

    t0 = time.perf_counter()
    df = _peer_frame(p.path)
    df.columns = ["Open", "High", "Low", "Close"]
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(
            df,
            BtpSmaCross,
            cash=PEER_CASH,
            commission=0.0,
            margin=1.0,
            trade_on_close=False,
            hedging=False,
            exclusive_orders=True,
            finalize_trades=False,
        )
        stats = bt.run()
    t2 = time.perf_counter()
    closed = stats["_trades"]
    open_trades = list(stats["_strategy"].trades)
    entries = [
        (int(b), 1 if sz > 0 else -1, float(px))
        for b, sz, px in zip(closed["EntryBar"], closed["Size"], closed["EntryPrice"], strict=True)
    ]
    entries += [(int(t.entry_bar), 1 if t.size > 0 else -1, float(t.entry_price)) for t in open_trades]
    pnl = float(closed["PnL"].sum()) + sum(float(t.pl) for t in open_trades)
    return Result("backtesting.py", sorted(entries), pnl, t2 - t0, t2 - t1)


def run_backtrader(p: Prepared) -> Result:
    import backtrader as bt

    class BtrSmaCross(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.fast = bt.indicators.SimpleMovingAverage(self.data.close, period=FAST)
            self.slow = bt.indicators.SimpleMovingAverage(self.data.close, period=SLOW)
            self.last = 0
            self.entries: list[Entry] = []

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                # Notified on the bar the order filled at (its open): that bar's index.
                self.entries.append((len(self.data) - 1, 1 if order.isbuy() else -1, order.executed.price))

        def next(self) -> None:  # first called on the slow SMA's first value
            s = _sign(self.fast[0] - self.slow[0], TIE)
            if s == 0:
                return
            last, self.last = self.last, s
            if last and s != last:
                self.order_target_size(target=s)  # market order: next bar's open (cheat-on-open off)

    t0 = time.perf_counter()
    df = _peer_frame(p.path)
    t1 = time.perf_counter()
    cerebro = bt.Cerebro(runonce=True, preload=True, stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=df, volume=None, openinterest=None))
    cerebro.addstrategy(BtrSmaCross)
    cerebro.broker.setcash(PEER_CASH)
    cerebro.broker.setcommission(commission=0.0)
    strat = cerebro.run()[0]
    t2 = time.perf_counter()
    pnl = cerebro.broker.getvalue() - PEER_CASH
    return Result("backtrader", strat.entries, pnl, t2 - t0, t2 - t1)


def run_vectorbt(p: Prepared) -> Result:
    """vectorbt's ``Portfolio.from_signals`` on its Rust engine when vectorbt-rust is installed (numba
    otherwise): SMAs by ``vbt.MA``, the same sign logic in numpy, the cross bars' signals shifted one bar
    and filled at that bar's open (``price=open``), one unit, reversals (``direction='both'``,
    ``upon_opposite_entry='reverse'``: a reversal is one order of 2 units), no fees."""
    import vectorbt as vbt
    from vectorbt._engine import is_rust_available

    engine = "rust" if is_rust_available() else "numba"

    t0 = time.perf_counter()
    df = _peer_frame(p.path)
    t1 = time.perf_counter()
    close = df["close"]
    fast = vbt.MA.run(close, FAST).ma.to_numpy()
    slow = vbt.MA.run(close, SLOW).ma.to_numpy()
    d = fast - slow
    s = np.where(d > TIE, 1, np.where(d < -TIE, -1, 0))  # NaN compares False: 0 before SLOW bars
    nz = np.flatnonzero(s)
    flips = nz[1:][s[nz[1:]] != s[nz[:-1]]]
    long_entry = np.zeros(len(s), bool)
    short_entry = np.zeros(len(s), bool)
    # A cross on bar i is an order on bar i + 1 at its open (a cross on the last bar is not filled).
    flips = flips[flips < len(s) - 1]
    long_entry[flips[s[flips] > 0] + 1] = True
    short_entry[flips[s[flips] < 0] + 1] = True
    pf = vbt.Portfolio.from_signals(
        close,
        entries=long_entry,  # with direction='both': entries open/reverse long, exits open/reverse short
        exits=short_entry,
        direction="both",
        upon_opposite_entry="reverse",
        price=df["open"],
        size=1.0,
        size_type="amount",
        fees=0.0,
        init_cash=PEER_CASH,
        freq="1min",
        engine=engine,
    )
    orders = pf.orders.values  # the deals in memory (record array: idx, size, price, side)
    t2 = time.perf_counter()
    pnl = float(pf.total_profit())  # closed trades + the open one marked at the last close
    entries = [
        (int(i), 1 if side == 0 else -1, float(px))
        for i, side, px in zip(orders["idx"], orders["side"], orders["price"], strict=True)
    ]
    return Result("vectorbt", entries, pnl, t2 - t0, t2 - t1, {"vectorbt_engine": engine})


def mt5tester_config(p: Prepared, tmp: Path, strategy_class: str = "SmaCross") -> dict[str, Any]:
    data_dir = tmp / "mt5tester_data"
    data_dir.mkdir(parents=True, exist_ok=True)
    link = data_dir / f"{SYMBOL}_M1_bench.parquet"
    if not link.is_symlink():
        link.symlink_to(p.path.resolve())
    return {
        "backtest": {
            "start": p.start.isoformat(),
            "end": p.end.isoformat(),
            "symbols": [SYMBOL],
            "primary_timeframe": "M1",
            "warmup_bars": WARMUP,
            "initial_deposit": 1e9,
            "leverage": 1000,
            "account_mode": "hedging",
            "close_at_end": True,
        },
        "data": {"path": str(data_dir)},
        "symbols": {
            SYMBOL: {
                "trade_contract_size": CONTRACT,
                "volume_min": 0.01,
                "volume_step": 0.01,
                "swap_mode": 0,
                "swap_long": 0.0,
                "swap_short": 0.0,
                "commission": 0.0,
                "spread": 0,
            }
        },
        "execution": {"spread": {"source": "fixed", "points": 0}, "commission": "none"},
        "results": {
            "database_url": f"sqlite:///{tmp / 'mt5tester.sqlite'}",
            "out_dir": str(tmp / "runs"),
            "equity_sampling": EQUITY_SAMPLING,
        },
        "report": {"html": False},
        "strategies": [
            {
                "class": f"{HERE}:{strategy_class}",
                "name": "sma_cross",
                "params": {"fast": FAST, "slow": SLOW, "tie": TIE},
                "volume": 1.0,
            }
        ],
    }


def run_mt5tester(
    p: Prepared,
    tmp: Path,
    profile: cProfile.Profile | None = None,
    engine: str = "mt5tester",
    stored: bool = False,
) -> Result:
    """One mt5tester form on the bars. Its records go to a ``MemorySink`` (deals in memory, as every
    peer's run phase ends), or with ``stored`` to the SQLite results database (the stored run)."""
    import mt5tester
    from mt5tester.config import parse_config
    from mt5tester.model import constants as C

    raw = mt5tester_config(p, tmp, MT5_CLASSES[engine])
    t0 = time.perf_counter()
    if profile:
        profile.enable()
    cfg = parse_config(raw, "bench/sma_cross.py")
    built: list[tuple[Any, float]] = []  # (components, when they were built): the build ends, the run starts
    run = mt5tester.run(
        cfg,
        base_dir=HERE.parent,
        sink=None if stored else mt5tester.MemorySink(),
        on_start=lambda c, _: built.append((c, time.perf_counter())),
        driver=MT5_DRIVERS.get(engine, "auto"),
    )
    if profile:
        profile.disable()
    t2 = time.perf_counter()
    comps, t1 = built[0]
    # Run phase: the loop (run(): run row, on_start, every decision point, the final writes) plus
    # the strategy's own prepare() (its indicators and signals), which the build calls.
    prep = sum(getattr(ls.strategy, "prepare_seconds", 0.0) for ls in comps.strategies)
    # The terminal's deals read as columns (its history builds no Deal object for them)
    col = _deal_columns(comps.server.deals)
    trade = (col["type"] == C.DEAL_TYPE_BUY) | (col["type"] == C.DEAL_TYPE_SELL)
    idx = np.searchsorted(p.time, col["time"][trade])
    entry, side, price = col["entry"][trade], col["type"][trade], col["price"][trade]
    entries = [
        (int(i), 1 if sd == C.DEAL_TYPE_BUY else -1, float(px))
        for i, sd, px, e in zip(idx.tolist(), side.tolist(), price.tolist(), entry.tolist(), strict=True)
        if e == C.DEAL_ENTRY_IN
    ]
    pnl = sum(col["profit"][trade].tolist()) / CONTRACT
    extra = {
        "build_seconds": round(t1 - t0, 3),
        "prepare_seconds": round(prep, 3),
        "loop_seconds": round(t2 - t1, 3),
        "decision_points": run.funnel["decision_points"],
        "mean_call_us": run.funnel.get("mean_call_us", {}).get("sma_cross"),
        "driver": run.funnel.get("driver"),
        "driver_reason": run.funnel.get("driver_reason"),
        "kernel_seconds": run.funnel.get("kernel_seconds"),
        "sink": "sqlite" if stored else "memory",
    }
    return Result(engine, entries, pnl, t2 - t0, t2 - t1 + prep, extra)


def _deal_columns(deals: Any) -> dict[str, np.ndarray]:
    names = {"type": np.int64, "time": np.int64, "entry": np.int64, "price": np.float64, "profit": np.float64}
    if hasattr(deals, "column"):  # the terminal's history (terminal/history.py)
        return {k: deals.column(k, t) for k, t in names.items()}
    return {k: np.array([getattr(d, k) for d in deals], t) for k, t in names.items()}


def stored_run(p: Prepared, tmp: Path, engine: str) -> dict[str, Any]:
    """The same form with its records in the SQLite results database (executemany in one transaction):
    the run phase of a stored run, beside the in-memory one, verified against the same reference."""
    r = run_guarded(engine, run_mt5tester, p, tmp / f"{engine}_stored", None, engine, True)
    if r.error:
        return {"error": r.error}
    return {
        "stored_run_seconds": round(r.run_seconds, 3),
        "stored_run_phase_seconds": round(r.run_phase_seconds, 3),
        "stored_trades": r.trades,
        "stored_pnl": round(r.pnl, 8),
    }


def prepared_available() -> bool:
    return "prepare" in vars(Strategy)


PEER_MODULES = {"backtesting.py": "backtesting", "backtrader": "backtrader", "vectorbt": "vectorbt"}
PEER_RUNNERS = {"backtesting.py": run_backtesting, "backtrader": run_backtrader, "vectorbt": run_vectorbt}


def unavailable(name: str) -> str | None:
    """Why an engine cannot run here (a peer not installed, the prepared hook missing), else None."""
    import importlib.util

    mod = PEER_MODULES.get(name)
    if mod and importlib.util.find_spec(mod) is None:
        return f"not available: {mod} is not installed (pip install {mod})"
    if name == "mt5tester_prepared" and not prepared_available():
        return "not available: Strategy has no prepare() hook yet"
    return None


def run_engine(name: str, p: Prepared, tmp: Path) -> Result:
    if name in PEER_RUNNERS:
        return PEER_RUNNERS[name](p)
    return run_mt5tester(p, tmp / name, None, name)


def run_guarded(name: str, fn: Any, *args: Any) -> Result:
    try:
        return fn(*args)
    except Exception as e:  # a failing engine is reported, the others still run
        return Result(name, error=f"{type(e).__name__}: {e}")


# ------------------------------------------------------------------------------------------ memory


def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakRss:
    """Peak RSS above the resident set at the start of each measured engine (Linux: VmHWM, reset through
    /proc/self/clear_refs), and the bench process's own peak over all of them."""

    def __init__(self) -> None:
        self.process_peak_kb = _status_kb("VmHWM") or 0

    def _reset(self) -> bool:
        self.process_peak_kb = max(self.process_peak_kb, _status_kb("VmHWM") or 0)
        try:
            Path("/proc/self/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def measure(self, name: str, fn: Any, *args: Any) -> Result:
        import ctypes
        import gc

        gc.collect()
        # Hand the heap the previous engine freed back to the system: its pages are not reused.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        ok = self._reset()
        base = _status_kb("VmRSS")
        r = run_guarded(name, fn, *args)
        peak = _status_kb("VmHWM")
        self.process_peak_kb = max(self.process_peak_kb, peak or 0)
        if ok and base is not None and peak is not None:
            r.extra["peak_rss_delta_mb"] = round((peak - base) / 1024, 1)
        return r

    def peak_mb(self) -> float:
        self.process_peak_kb = max(self.process_peak_kb, _status_kb("VmHWM") or 0)
        kb = self.process_peak_kb or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(kb / 1024, 1)


# ------------------------------------------------------------------------------------------ process


def whole_process(p: Prepared, engine: str, runs: int = 2) -> dict[str, Any]:
    """One engine alone in a fresh interpreter (imports, data, indicators, loop, its results), ``runs``
    times; the last run is the figure (the first one may compile numba kernels into the cache).

    A peer's seconds exclude the import of this file's mt5tester strategy modules (the child reports
    it; numpy and pandas are imported before them, as every peer imports them)."""
    seconds = []
    out: dict[str, Any] = {}
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                str(HERE),
                "--child",
                str(p.path),
                "--engines",
                engine,
                "--equity-sampling",
                EQUITY_SAMPLING,
                "--tie",
                repr(TIE),
                "--fast",
                str(FAST),
                "--slow",
                str(SLOW),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            return {
                "engine": engine,
                "error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"],
            }
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        if engine in PEERS:
            wall -= out["mt5tester_import_seconds"]
        seconds.append(round(wall, 3))
    return {"engine": engine, "seconds_runs": seconds, "seconds": seconds[-1], **out}


def child(path: Path, engine: str) -> None:
    with tempfile.TemporaryDirectory(prefix="mt5bench_") as d:
        p = prepare(path, None, Path(d))
        r = run_engine(engine, p, Path(d))
    # VmHWM is the peak RSS of this program's own memory; ru_maxrss of a child would also count the
    # parent's pages it held between fork and exec.
    peak_kb = _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "trades": r.trades,
                "pnl": round(r.pnl, 8),
                "peak_rss_mb": round(peak_kb / 1024, 1),
                "mt5tester_import_seconds": round(MT5_IMPORT_SECONDS, 3),
            }
        )
    )


def startup(runs: int = 5) -> dict[str, Any]:
    """``mt5tester --help`` in ``runs`` fresh interpreters (the console script's code, this checkout's
    package), and a bare ``python -c pass`` for scale; medians."""

    def median_of(cmd: list[str]) -> tuple[float, list[float]]:
        secs = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            secs.append(round(time.perf_counter() - t0, 3))
        return float(np.median(secs)), secs

    help_cmd = [
        sys.executable,
        "-c",
        "import sys; from mt5tester.cli import main; sys.exit(main())",
        "--help",
    ]
    med, secs = median_of(help_cmd)
    bare, bare_secs = median_of([sys.executable, "-c", "pass"])
    return {
        "command": "mt5tester --help",
        "median_seconds": round(med, 3),
        "runs": secs,
        "python_bare_median_seconds": round(bare, 3),
        "python_bare_runs": bare_secs,
    }


def micro(p: Prepared, tmp: Path, timed: dict[str, Result]) -> dict[str, Any]:
    """The full MT5 path's cost per reversal, and the engine's time per decision point with a flat book.

    Each form is run again on the same bars with ``tie`` 1e9 (no cross, no trade, the same decision
    points). Prepared form: its run phase with trades minus the flat one, over the trades, is the cost of
    one trade through the whole path from a Python strategy (its call on the cross bar, the coordinator's
    review, the close and the open through order_send, the rows); every trade but the first is a
    reversal. Per-bar form on prepared indicators (numpy ``df``): the flat run phase over the decision
    points, less the strategy's own mean call time, is the engine's time per decision point."""
    global TIE
    out: dict[str, Any] = {}
    for name in ("mt5tester_prepared", "mt5tester_indicators", "mt5tester_indicators_loop"):
        r = timed.get(name)
        if r is None:
            continue
        saved, TIE = TIE, 1e9
        try:
            flat = run_guarded(name, run_mt5tester, p, tmp / f"micro_{name}", None, name)
        finally:
            TIE = saved
        if flat.error or flat.trades:
            out[name] = {"error": flat.error or f"{flat.trades} trades with tie 1e9"}
            continue
        points = flat.extra["decision_points"]
        m: dict[str, Any] = {
            "flat_run_phase_seconds": round(flat.run_phase_seconds, 3),
            "flat_decision_points": points,
        }
        if r.trades:
            # both forms: (run phase with trades - flat run phase) / trades; the per-bar form's is the
            # Python trade path (driver a), the prepared form's the whole-run kernel's (driver b)
            m["trades"] = r.trades
            m["us_per_reversal"] = round((r.run_phase_seconds - flat.run_phase_seconds) / r.trades * 1e6, 1)
        if name == "mt5tester_prepared" and r.trades:
            loop = (r.extra.get("kernel_seconds") or {}).get("loop")
            if loop is not None:  # driver (b): the compiled loop alone, records and structures apart
                m["kernel_loop_us_per_reversal"] = round(loop / r.trades * 1e6, 2)
        if name.startswith("mt5tester_indicators") and points:
            per_point = flat.run_phase_seconds / points * 1e6
            call = flat.extra.get("mean_call_us") or 0.0
            m["flat_us_per_decision_point_with_strategy"] = round(per_point, 3)
            m["strategy_mean_call_us"] = call
            m["flat_engine_us_per_decision_point"] = round(per_point - call, 3)
        out[name] = m
    return out


# ------------------------------------------------------------------------------------------ main


def profile_text(prof: cProfile.Profile, n: int = 25) -> str:
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.strip_dirs()
    for key in ("cumulative", "tottime"):
        stats.sort_stats(key).print_stats(n)
    return buf.getvalue()


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in (
        "mt5tester",
        "backtesting",
        "backtrader",
        "vectorbt",
        "vectorbt-rust",
        "numpy",
        "pandas",
        "numba",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="Parquet M1 bars (time, open, high, low, close)")
    ap.add_argument("--bars", type=int, help="synthetic bars (default 1,000,000) or the first N of --data")
    ap.add_argument(
        "--sizes",
        help="a sweep: comma list of bar counts (e.g. 100000,1000000,5000000), each run like --bars N; "
        "no whole-process, micro or profile runs",
    )
    ap.add_argument(
        "--slow-max-bars",
        type=int,
        default=SLOW_MAX_BARS,
        help=f"in a --sizes sweep, run {' and '.join(SLOW_ENGINES)} (a few 10k bars/s) only up to this many "
        f"bars (default {SLOW_MAX_BARS:,})",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    ap.add_argument("--engines", default=",".join(ENGINES), help=f"comma list of {', '.join(ENGINES)}")
    ap.add_argument("--no-process", action="store_true", help="skip the whole-process runs")
    ap.add_argument(
        "--no-micro", action="store_true", help="skip the flat-book run (per-reversal and per-point costs)"
    )
    ap.add_argument("--startup", action="store_true", help="also time `mt5tester --help` (median of 5)")
    ap.add_argument("--profile", action="store_true", help="also run mt5tester under cProfile, print top 25")
    ap.add_argument("--profile-engine", default="mt5tester", choices=sorted(MT5_CLASSES))
    ap.add_argument(
        "--equity-sampling",
        default="H1",
        help="our engine's results.equity_sampling: 'point' or a timeframe (default H1)",
    )
    ap.add_argument(
        "--tie",
        type=float,
        default=TIE,
        help=f"|fast - slow| counted as a tie (default {TIE}); 1e9 gives a run without trades (per-bar cost)",
    )
    ap.add_argument("--fast", type=int, default=FAST, help=f"fast SMA bars (default {FAST})")
    ap.add_argument(
        "--slow", type=int, default=SLOW, help=f"slow SMA bars (default {SLOW}); longer: fewer trades"
    )
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not 1 <= args.fast < args.slow:
        ap.error("--fast must be at least 1 and below --slow")
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINES)
    if unknown and not args.child:
        ap.error(f"unknown engine(s) {', '.join(sorted(unknown))}; choose from {', '.join(ENGINES)}")
    if args.sizes:
        try:
            args.sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
        except ValueError:
            ap.error("--sizes takes a comma list of whole bar counts")
    return args, engines


def main(argv: list[str] | None = None) -> int:
    args, engines = parse_args(argv)
    globals().update(
        EQUITY_SAMPLING=args.equity_sampling,
        TIE=args.tie,
        FAST=args.fast,
        SLOW=args.slow,
        WARMUP=args.slow + 1,
    )
    if args.child:
        child(args.child, args.engines)
        return 0
    if args.sizes:
        docs = []
        for n in args.sizes:
            skip = [e for e in engines if e in SLOW_ENGINES and n > args.slow_max_bars]
            run = [e for e in engines if e not in skip]
            code, doc = run_size(args, run, n, sweep=True)
            if skip:
                doc["skipped"] = {e: f"above --slow-max-bars {args.slow_max_bars:,}" for e in skip}
            docs.append((code, doc))
        sweep = {
            "date": dt.date.today().isoformat(),
            "machine": machine(),
            "versions": versions(),
            "sizes": [d for _, d in docs],
        }
        if args.json:
            print(json.dumps(sweep, indent=2))
        else:
            print_sweep(sweep)
        return max(c for c, _ in docs)
    code, doc = run_size(args, engines, args.bars, sweep=False)
    if args.startup:
        doc["startup"] = startup()
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_table(doc)
    return code


def run_size(
    args: argparse.Namespace, engines: list[str], bars: int | None, sweep: bool
) -> tuple[int, dict[str, Any]]:
    """Every engine on the same bars: verified, timed (whole run and run phase), its peak RSS above the
    start; then (not in a sweep) the whole processes, the flat-book micro-measurement and the profile."""
    mem = PeakRss()
    with tempfile.TemporaryDirectory(prefix="mt5bench_") as d:
        tmp = Path(d)
        p = prepare(args.data, bars, tmp)
        n = len(p.time)
        ref = reference(p)
        (tmp / "warm").mkdir()
        warm = prepare(p.path, WARM_BARS, tmp / "warm") if n > WARM_BARS else p
        results: list[Result] = []
        for name in engines:
            why = unavailable(name)
            if why:
                results.append(Result(name, error=why))
                continue
            # Warm-up on a small slice: imports, numba/JIT compile, caches; not timed. The compiled
            # driver is also warmed on the timed bars: numba may specialise the kernel differently for
            # the full arrays than for the slice, and a compile inside the timed run is not the run.
            run_guarded(name, run_engine, name, warm, tmp / "warm")
            if name == "mt5tester_prepared" and warm is not p:
                run_guarded(name, run_engine, name, p, tmp / "warm")
            results.append(mem.measure(name, run_engine, name, p, tmp))
        for r in results:
            verify(r, ref)
        ok = {r.engine: r for r in results if r.matches}
        if "mt5tester_prepared" in ok:  # the stored run (SQLite) beside the in-memory figure
            stored = stored_run(p, tmp, "mt5tester_prepared")
            if "stored_trades" in stored and (
                stored["stored_trades"] != ref.trades or abs(stored["stored_pnl"] - ref.pnl) > PNL_TOL
            ):
                stored["error"] = "the stored run does not match the reference"
            ok["mt5tester_prepared"].extra.update(stored)
        process: list[dict[str, Any]] = []
        micro_doc = None
        prof_txt = None
        if not sweep:
            # Whole process: the fastest verified mt5tester form (the figure the targets are about) and
            # vectorbt, each alone in a fresh interpreter.
            ours_ok = [r for r in ok.values() if r.engine in MT5_CLASSES]
            best = min(ours_ok, key=lambda r: r.run_seconds).engine if ours_ok else None
            if not args.no_process:
                for eng in [e for e in (best, "vectorbt") if e and e in ok]:
                    proc = whole_process(p, eng)
                    if "trades" in proc:
                        proc["matches_reference"] = (
                            proc["trades"] == ref.trades and abs(proc["pnl"] - ref.pnl) <= PNL_TOL
                        )
                    process.append(proc)
            if not args.no_micro and (
                {"mt5tester_prepared", "mt5tester_indicators", "mt5tester_indicators_loop"} & set(ok)
            ):
                micro_doc = micro(p, tmp, ok)
            if args.profile:
                prof = cProfile.Profile()
                run_guarded(args.profile_engine, run_mt5tester, p, tmp / "profile", prof, args.profile_engine)
                prof_txt = profile_text(prof)

    bps = {r.engine: n / r.run_seconds for r in results if r.matches}
    run_bps = {r.engine: n / r.run_phase_seconds for r in results if r.matches and r.run_phase_seconds > 0}
    ratios = {
        f"{ours} / {peer}": {
            "bars_per_s": round(bps[ours] / bps[peer], 4),
            "run_phase_bars_per_s": round(run_bps[ours] / run_bps[peer], 4)
            if ours in run_bps and peer in run_bps
            else None,
        }
        for ours in MT5_CLASSES
        for peer in PEERS
        if ours in bps and peer in bps
    }

    def figures(r: Result) -> dict[str, Any]:
        if r.error:
            return {"matches_reference": r.matches, "error": r.error}
        delta = r.extra.get("peak_rss_delta_mb")
        return {
            "trades": r.trades,
            "pnl": round(r.pnl, 8),
            "run_seconds": round(r.run_seconds, 3),
            "run_phase_seconds": round(r.run_phase_seconds, 3),
            # No figure for an engine that does not reproduce the reference.
            "bars_per_s": round(bps[r.engine]) if r.engine in bps else None,
            "run_phase_bars_per_s": round(run_bps[r.engine]) if r.engine in run_bps else None,
            "bytes_per_bar": round(delta * 2**20 / n, 1) if delta is not None and r.matches else None,
            "matches_reference": r.matches,
            **({"mismatch": r.mismatch} if r.mismatch else {}),
            **r.extra,
        }

    doc: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "versions": versions(),
        "data": p.source,
        "bars": n,
        "dropped_leading_bars": p.dropped,
        "range": [str(pd.Timestamp(int(p.time[0]), tz="UTC")), str(pd.Timestamp(int(p.time[-1]), tz="UTC"))],
        "reference": {"trades": ref.trades, "pnl": round(ref.pnl, 8)},
        "engines": {r.engine: figures(r) for r in results},
        "ratios": ratios,
    }
    if not sweep:
        doc["whole_process"] = process
        doc["mt5tester_micro"] = micro_doc
    doc["bench_peak_rss_mb"] = mem.peak_mb()
    if prof_txt is not None:
        doc["profile"] = prof_txt
    failed = [r for r in results if not r.matches and not (r.error or "").startswith("not available")]
    failed += [r for r in results if r.matches and "error" in r.extra]  # its stored run failed or differs
    return (1 if failed else 0), doc


def _fmt(v: Any, spec: str = ",") -> str:
    return "-" if v is None else format(v, spec)


def print_table(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 130))
    console.print(f"{doc['data']}: {doc['bars']:,} M1 bars {doc['range'][0]} .. {doc['range'][1]}")
    ref = doc["reference"]
    table = Table(
        title=f"SMA({FAST})/SMA({SLOW}) cross; reference {ref['trades']} trades, PnL {ref['pnl']:.5f}"
    )
    cols = (
        "engine",
        "trades",
        "pnl",
        "run s",
        "bars/s",
        "run phase s",
        "run-phase bars/s",
        "B/bar",
        "matches",
    )
    for col in cols:
        table.add_column(col, justify="left" if col == "engine" else "right")
    for name, e in doc["engines"].items():
        if e.get("error"):
            table.add_row(name, *["-"] * 7, e["error"])
            continue
        table.add_row(
            name,
            str(e["trades"]),
            f"{e['pnl']:.5f}",
            f"{e['run_seconds']:.2f}",
            _fmt(e["bars_per_s"]),
            f"{e['run_phase_seconds']:.3f}",
            _fmt(e["run_phase_bars_per_s"]),
            _fmt(e["bytes_per_bar"], ",.0f"),
            "yes" if e["matches_reference"] else f"NO: {e.get('mismatch')}",
        )
    console.print(table)
    for k, v in doc["ratios"].items():
        rp = v["run_phase_bars_per_s"]
        console.print(f"{k}: {v['bars_per_s']:.3f}x bars/s, " + (f"{rp:.3f}x run phase" if rp else "-"))
    for name, e in doc["engines"].items():
        if name in MT5_CLASSES and not e.get("error"):
            console.print(
                f"{name}: build {e['build_seconds']} s (prepare {e['prepare_seconds']} s), "
                f"loop {e['loop_seconds']} s, {e['mean_call_us']} µs per strategy call"
            )
        if "stored_run_phase_seconds" in e:
            console.print(
                f"{name} stored run (SQLite results database): run {e['stored_run_seconds']} s, "
                f"run phase {e['stored_run_phase_seconds']} s"
            )
    for proc in doc.get("whole_process") or []:
        if "error" in proc:
            console.print(f"{proc['engine']} whole process: failed: {proc['error']}")
        else:
            console.print(
                f"{proc['engine']} whole process: {proc['seconds']} s (runs {proc['seconds_runs']}), "
                f"peak RSS {proc['peak_rss_mb']} MB, {proc['trades']} trades, PnL {proc['pnl']:.5f}"
            )
    for name, m in (doc.get("mt5tester_micro") or {}).items():
        console.print(f"{name} flat book (tie 1e9): {m}")
    if doc.get("startup"):
        s = doc["startup"]
        console.print(
            f"mt5tester --help: median {s['median_seconds']} s of {s['runs']} "
            f"(bare python {s['python_bare_median_seconds']} s)"
        )
    console.print(f"bench process peak RSS: {doc['bench_peak_rss_mb']} MB; {doc['machine']}")
    if doc.get("profile"):
        console.print(doc["profile"], markup=False, highlight=False)


def print_sweep(sweep: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 120))
    table = Table(title=f"SMA({FAST})/SMA({SLOW}) cross, bars sweep; {sweep['machine']}")
    for col in ("bars", "trades", "engine", "run s", "bars/s", "run-phase bars/s", "B/bar", "matches"):
        table.add_column(col, justify="left" if col == "engine" else "right")
    for doc in sweep["sizes"]:
        for name, e in doc["engines"].items():
            if e.get("error"):
                table.add_row(f"{doc['bars']:,}", "-", name, "-", "-", "-", "-", e["error"])
                continue
            table.add_row(
                f"{doc['bars']:,}",
                f"{doc['reference']['trades']:,}",
                name,
                f"{e['run_seconds']:.2f}",
                _fmt(e["bars_per_s"]),
                _fmt(e["run_phase_bars_per_s"]),
                _fmt(e["bytes_per_bar"], ",.0f"),
                "yes" if e["matches_reference"] else f"NO: {e.get('mismatch')}",
            )
        for name, why in doc.get("skipped", {}).items():
            table.add_row(f"{doc['bars']:,}", "-", name, "-", "-", "-", "-", f"skipped: {why}")
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
