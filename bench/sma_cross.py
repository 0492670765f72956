"""SMA(10)/SMA(30) cross on M1 bars: mt5tester against backtesting.py and backtrader, same data, same run.

    python bench/sma_cross.py [--data PATH] [--bars N] [--json] [--engines LIST] [--no-process] [--profile]

The strategy is the same in every engine: SMA(10) and SMA(30) of close; a cross is a change of the last
non-zero sign of (fast - slow), |fast - slow| <= 1e-8 being a tie that keeps the last sign; the first
cross opens one unit in its direction, each later cross reverses; market orders fill at the next bar's
open; a cross on the last bar is not filled; what is open at the end is marked at the last close; no
spread, no commission, no swap.

Every engine's entries (bar, direction, price), trade count and PnL are checked against a small numpy
reference before any figure is printed; the first differing entry is shown when they disagree.
Each engine's time runs from the Parquet path to its result (reading, indicators, loop, its own stats).
"""

from __future__ import annotations

import argparse
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

from mt5tester.model.signal import Signal
from mt5tester.model.timeframe import Timeframe
from mt5tester.strategy.base import Strategy, StrategyParams

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
    "mt5tester",
    "mt5tester_numpy",
    "mt5tester_indicators",
    "mt5tester_prepared",
)
# Equity rows of our engine: the first decision point of each hour (results.equity_sampling). "point"
# writes a row per decision point: 1M rows, about 1.8 s of SQLite inserts on 1M M1 bars.
EQUITY_SAMPLING = "H1"

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

    def prepare(self, symbol: str, timeframe: Timeframe, bars: pd.DataFrame) -> pd.DataFrame | None:
        p = self.params
        assert isinstance(p, SmaCrossParams)
        close = bars["close"]
        return pd.DataFrame(
            {"fast": close.rolling(p.fast).mean(), "slow": close.rolling(p.slow).mean()}, index=bars.index
        )

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
    d = np.full(n, np.nan)
    if n >= slow:
        csum = np.concatenate([[0.0], np.cumsum(close - close[0])])  # shifted: small sums, precise
        fast_sma = (csum[slow:] - csum[slow - fast : n + 1 - fast]) / fast
        slow_sma = (csum[slow:] - csum[: n + 1 - slow]) / slow
        d[slow - 1 :] = fast_sma - slow_sma
    s = np.where(d > tie, 1, np.where(d < -tie, -1, 0))
    nz = np.flatnonzero(s)
    out = np.zeros(n, np.int8)
    flips = nz[1:][s[nz[1:]] != s[nz[:-1]]]
    out[flips] = s[flips]
    return out


class SmaCrossPrepared(Strategy):
    """Array-prepared signals: ``prepare()`` computes the cross column once; with ``signal_column`` the
    engine calls the strategy only on the bars where the column is non-zero (the crosses)."""

    category = "technical"
    Params = SmaCrossParams
    data_format = "numpy"
    signal_column = "cross"

    def prepare(self, symbol: str, timeframe: Timeframe, bars: pd.DataFrame) -> pd.DataFrame | None:
        p = self.params
        assert isinstance(p, SmaCrossParams)
        close = bars["close"].to_numpy(float)
        return pd.DataFrame({"cross": cross_column(close, p.fast, p.slow, p.tie)}, index=bars.index)

    def generate_signals(self, symbol: str, timeframe: Timeframe, df: pd.DataFrame) -> list[Signal]:
        c = df["cross"][-1]
        if c == 0:
            return []
        return [Signal(symbol=symbol, direction="buy" if c > 0 else "sell", strategy=self.name)]


MT5_CLASSES = {
    "mt5tester": "SmaCross",
    "mt5tester_indicators": "SmaCrossIndicators",
    "mt5tester_numpy": "SmaCrossNumpy",
    "mt5tester_prepared": "SmaCrossPrepared",
}

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
    secs = time.perf_counter() - t0
    closed = stats["_trades"]
    open_trades = list(stats["_strategy"].trades)
    entries = [
        (int(b), 1 if sz > 0 else -1, float(px))
        for b, sz, px in zip(closed["EntryBar"], closed["Size"], closed["EntryPrice"], strict=True)
    ]
    entries += [(int(t.entry_bar), 1 if t.size > 0 else -1, float(t.entry_price)) for t in open_trades]
    pnl = float(closed["PnL"].sum()) + sum(float(t.pl) for t in open_trades)
    return Result("backtesting.py", sorted(entries), pnl, secs)


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
    cerebro = bt.Cerebro(runonce=True, preload=True, stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=df, volume=None, openinterest=None))
    cerebro.addstrategy(BtrSmaCross)
    cerebro.broker.setcash(PEER_CASH)
    cerebro.broker.setcommission(commission=0.0)
    strat = cerebro.run()[0]
    secs = time.perf_counter() - t0
    pnl = cerebro.broker.getvalue() - PEER_CASH
    return Result("backtrader", strat.entries, pnl, secs)


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
    p: Prepared, tmp: Path, profile: cProfile.Profile | None = None, engine: str = "mt5tester"
) -> Result:
    from mt5tester.config import parse_config
    from mt5tester.engine.build import build
    from mt5tester.engine.loop import Runner
    from mt5tester.terminal import constants as C

    raw = mt5tester_config(p, tmp, MT5_CLASSES[engine])
    t0 = time.perf_counter()
    if profile:
        profile.enable()
    cfg = parse_config(raw, "bench/sma_cross.py")
    comps = build(cfg, HERE.parent)
    t1 = time.perf_counter()
    run = Runner(comps).run()
    if profile:
        profile.disable()
    secs = time.perf_counter() - t0
    deals = [d for d in comps.server.deals if d.type in (C.DEAL_TYPE_BUY, C.DEAL_TYPE_SELL)]
    idx = np.searchsorted(p.time, [d.time for d in deals])
    entries = [
        (int(i), 1 if d.type == C.DEAL_TYPE_BUY else -1, d.price)
        for i, d in zip(idx, deals, strict=True)
        if d.entry == C.DEAL_ENTRY_IN
    ]
    pnl = sum(d.profit for d in deals) / CONTRACT
    extra = {
        "build_seconds": round(t1 - t0, 3),
        "loop_seconds": round(time.perf_counter() - t1, 3),
        "decision_points": run.funnel["decision_points"],
        "mean_call_us": run.funnel.get("mean_call_us", {}).get("sma_cross"),
    }
    return Result(engine, entries, pnl, secs, extra)


def prepared_available() -> bool:
    return "prepare" in vars(Strategy)


def run_guarded(name: str, fn: Any, *args: Any) -> Result:
    try:
        return fn(*args)
    except Exception as e:  # a failing engine is reported, the others still run
        return Result(name, error=f"{type(e).__name__}: {e}")


# ------------------------------------------------------------------------------------------ process


def whole_process(p: Prepared, engine: str, runs: int = 2) -> dict[str, Any]:
    """Our engine alone in a fresh interpreter (imports, config, data, loop, DB), ``runs`` times.

    The last run is the figure: the first one may compile numba kernels into the cache.
    """
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
        seconds.append(round(time.perf_counter() - t0, 3))
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]}
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"engine": engine, "seconds_runs": seconds, "seconds": seconds[-1], **out}


def child(path: Path, engine: str) -> None:
    with tempfile.TemporaryDirectory(prefix="mt5bench_") as d:
        p = prepare(path, None, Path(d))
        r = run_mt5tester(p, Path(d), None, engine)
    # VmHWM is the peak RSS of this program's own memory; ru_maxrss of a child would also count the
    # parent's pages it held between fork and exec.
    status = Path("/proc/self/status").read_text().splitlines()
    hwm = [int(line.split()[1]) for line in status if line.startswith("VmHWM:")]
    peak_kb = hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"trades": r.trades, "pnl": round(r.pnl, 8), "peak_rss_mb": round(peak_kb / 1024, 1)}))


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
    for pkg in ("mt5tester", "backtesting", "backtrader", "numpy", "pandas", "numba"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="Parquet M1 bars (time, open, high, low, close)")
    ap.add_argument("--bars", type=int, help="synthetic bars (default 1,000,000) or the first N of --data")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    ap.add_argument("--engines", default=",".join(ENGINES), help=f"comma list of {', '.join(ENGINES)}")
    ap.add_argument("--no-process", action="store_true", help="skip the whole-process runs of mt5tester")
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
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        ap.error(f"unknown engine(s) {', '.join(sorted(unknown))}; choose from {', '.join(ENGINES)}")

    with tempfile.TemporaryDirectory(prefix="mt5bench_") as d:
        tmp = Path(d)
        p = prepare(args.data, args.bars, tmp)
        n = len(p.time)
        ref = reference(p)
        results: list[Result] = []
        for name in engines:
            if name == "backtesting.py":
                results.append(run_guarded(name, run_backtesting, p))
            elif name == "backtrader":
                results.append(run_guarded(name, run_backtrader, p))
            elif name == "mt5tester_prepared" and not prepared_available():
                results.append(Result(name, error="not available: Strategy has no prepare() hook yet"))
            else:
                results.append(run_guarded(name, run_mt5tester, p, tmp / name, None, name))
        for r in results:
            verify(r, ref)
        # Whole process: the fastest verified mt5tester form (the figure the < 3 s target is about).
        ours_ok = [r for r in results if r.engine in MT5_CLASSES and r.matches]
        best = min(ours_ok, key=lambda r: r.run_seconds).engine if ours_ok else None
        process = whole_process(p, best) if best and not args.no_process else None
        if process and "trades" in process:
            process["matches_reference"] = (
                process["trades"] == ref.trades and abs(process["pnl"] - ref.pnl) <= PNL_TOL
            )
        prof_txt = None
        if args.profile:
            prof = cProfile.Profile()
            run_guarded(args.profile_engine, run_mt5tester, p, tmp / "profile", prof, args.profile_engine)
            prof_txt = profile_text(prof)

    by = {r.engine: r for r in results}
    bps = {r.engine: n / r.run_seconds for r in results if r.matches}
    ratios = {
        f"{ours} / {peer}": round(bps[ours] / bps[peer], 3)
        for ours in MT5_CLASSES
        for peer in ("backtesting.py", "backtrader")
        if ours in bps and peer in bps
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
        "engines": {
            r.engine: {
                "trades": r.trades if not r.error else None,
                "pnl": round(r.pnl, 8) if not r.error else None,
                "run_seconds": round(r.run_seconds, 3) if not r.error else None,
                # No figure for an engine that does not reproduce the reference.
                "bars_per_s": round(bps[r.engine]) if r.engine in bps else None,
                "matches_reference": r.matches,
                **({"mismatch": r.mismatch} if r.mismatch else {}),
                **({"error": r.error} if r.error else {}),
                **r.extra,
            }
            for r in results
        },
        "ratios": ratios,
        "mt5tester_whole_process": process,
        "bench_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if prof_txt is not None:
        doc["profile"] = prof_txt
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_table(doc, by)
    return 0 if all(r.matches for r in results if not (r.error or "").startswith("not available")) else 1


def print_table(doc: dict[str, Any], by: dict[str, Result]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 110))
    console.print(f"{doc['data']}: {doc['bars']:,} M1 bars {doc['range'][0]} .. {doc['range'][1]}")
    ref = doc["reference"]
    table = Table(
        title=f"SMA({FAST})/SMA({SLOW}) cross; reference {ref['trades']} trades, PnL {ref['pnl']:.5f}"
    )
    for col in ("engine", "trades", "pnl", "run s", "bars/s", "matches"):
        table.add_column(col, justify="left" if col == "engine" else "right")
    for name, e in doc["engines"].items():
        if e.get("error"):
            table.add_row(name, "-", "-", "-", "-", e["error"])
            continue
        table.add_row(
            name,
            str(e["trades"]),
            f"{e['pnl']:.5f}",
            f"{e['run_seconds']:.2f}",
            f"{e['bars_per_s']:,}" if e["bars_per_s"] else "-",
            "yes" if e["matches_reference"] else f"NO: {e.get('mismatch')}",
        )
    console.print(table)
    for k, v in doc["ratios"].items():
        console.print(f"{k} (bars/s): {v:.2f}x")
    for name, e in doc["engines"].items():
        if name in MT5_CLASSES and not e.get("error"):
            console.print(
                f"{name}: build {e['build_seconds']} s, loop {e['loop_seconds']} s, "
                f"{e['mean_call_us']} µs per strategy call"
            )
    proc = doc["mt5tester_whole_process"]
    if proc:
        if "error" in proc:
            console.print(f"whole process: failed: {proc['error']}")
        else:
            console.print(
                f"{proc['engine']} whole process: {proc['seconds']} s (runs {proc['seconds_runs']}), "
                f"peak RSS {proc['peak_rss_mb']} MB, {proc['trades']} trades, PnL {proc['pnl']:.5f}"
            )
    console.print(f"bench process peak RSS: {doc['bench_peak_rss_mb']} MB; {doc['machine']}")
    if doc.get("profile"):
        console.print(doc["profile"], markup=False, highlight=False)


if __name__ == "__main__":
    sys.exit(main())
