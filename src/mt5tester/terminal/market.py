"""Market data of the simulated terminal: what ``copy_rates_*``, ``copy_ticks_*`` and ``symbol_info_tick``
answer at the simulated time ``now`` (ARCHITECTURE section 2, spec sections 2, 3.1, 3.2, 5.1, 5.2).

Visibility (the anti-lookahead contract)
    ``now`` is UTC ns, set by the engine with :meth:`MarketData.set_time` and never moves back. At
    decision points it is a whole minute or a tick time; a script's ``time.sleep`` makes it any time.
    Every M1 bar is seen through the tester mode's ticks (:meth:`tick_path`): those of "1 minute
    OHLC" mode (spec 6.1, model 1: open at +0 s, the first extreme at +20 s, the second at +40 s,
    close at +59 s), the generated ones with ``tick_seed`` ("Every tick"), or the recorded ones. An M1
    bar with ``time + 60 s <= now`` is complete; the M1 bar containing ``now`` shows only its ticks at
    or before ``now`` (at a whole minute in bar modes: its opening tick, so O=H=L=C=open and
    tick_volume 1); nothing after ``now`` is ever returned. So the forming bar's close is always
    ``tick().bid``, the quote the trade server fills at (:meth:`quote_at`).

Forming bar (spec 5.1)
    Index 0 of ``copy_rates_from_pos`` is the bar of the timeframe that holds the latest visible M1
    data. MT5 opens a bar on the first tick inside its period (spec 5.1, "a new M1 bar opens on the
    first tick"), so right after an H1 boundary with no tick yet, index 0 is still the previous hour.

Server time (spec 5.2)
    Every ``time`` field returned is int seconds of the broker's server clock (wall time of
    ``server_tz`` encoded as if it were UTC), ``*_msc`` the same in ms. Date arguments are read on that
    same clock: an int is server seconds; a tz-aware ``datetime`` (or pandas ``Timestamp``) gives
    ``.timestamp()`` = server seconds, as the real package does. A **naive** datetime is read by the
    real package with the machine's local time zone (DOC-PY); we read it as server wall time instead,
    so a backtest does not depend on the machine it runs on.

Higher timeframes
    The ``timeframes`` given to the constructor are built from M1 up front; any other timeframe is
    resampled from M1 (``data.resample``) on its first request and cached. This is computation on data
    already in memory, never a data load, so the first call of an unlisted timeframe is slower
    (about 0.05-0.1 s on two years of M1) and later calls are as cheap as listed ones. A call then
    costs two binary searches, one slice copy and the forming bar, which is folded incrementally from
    the M1 rows as ``now`` advances (copy_rates_from_pos H1 count 200 on 745k M1: ~6 us at an
    unchanged ``now``, ~15-30 us after ``set_time``).

Real ticks
    With ``ticks`` given for a symbol, ``tick()`` and ``copy_ticks_*`` answer from them (the last real
    tick <= now). Complete bars come from M1; the M1 bar containing now is built from its recorded
    ticks up to now (it is not visible before its first tick), so its close is the current bid.

Errors (spec 1, 2, 4.13): functions return ``None`` and set :meth:`MarketData.last_error`:
    unknown symbol -> ``(-1, 'Terminal: Call failed')`` [U, spec 2: seen in issue reports];
    a bad argument -> ``(-2, 'Invalid "<name>" argument')``;
    no bar at all in the request (before the first bar, start_pos past the history, a range without
    bars) -> ``None`` with ``(-1, 'Terminal: Call failed')`` [U: MQL5 CopyRates fails with -1 there and
    the package turns a failure into None]. A request that is only partly covered returns the bars
    that exist (fewer rows than ``count``), as MT5 does.
    Ticks: a range without ticks gives an **empty** array with ``(1, 'Success')`` [U: what users report
    for weekend ranges]. Success sets ``(1, 'Success')``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mt5tester.data.resample import resample
from mt5tester.errors import DataError
from mt5tester.model.bars import Bars
from mt5tester.model.constants import (
    COPY_TICKS_ALL,
    COPY_TICKS_INFO,
    COPY_TICKS_TRADE,
    LAST_ERROR_MESSAGES,
    RES_E_FAIL,
    RES_E_INVALID_PARAMS,
    RES_S_OK,
    TICK_FLAG_ASK,
    TICK_FLAG_BID,
    TICK_FLAG_LAST,
    TICK_FLAG_VOLUME,
)
from mt5tester.model.structs import RATES_DTYPE, TICKS_DTYPE, Tick
from mt5tester.model.symbol import SymbolSpec
from mt5tester.model.ticks import Ticks
from mt5tester.model.time import MINUTE_NS, MS_NS, SECOND_NS, parse_server_tz
from mt5tester.model.timeframe import Timeframe
from mt5tester.terminal import ticks as tickgen
from mt5tester.terminal.core import rules

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]
Rates = npt.NDArray[np.void]

# "Before any data": far enough back that no history exists, far enough from int64 min that
# ``now - 1 minute`` cannot overflow.
_START_NS = -(2**62)
# 1-minute OHLC tick times inside an M1 bar [U: the tester's spacing is not documented, spec 6.2].
SYNTH_OFFSETS_NS: tuple[int, int, int, int] = (0, 20 * SECOND_NS, 40 * SECOND_NS, 59 * SECOND_NS)
_OFFS = np.array(SYNTH_OFFSETS_NS, np.int64)
# Generated quote ticks carry BID|ASK, like symbol_info_tick in the tester; they have no LAST/VOLUME,
# so COPY_TICKS_TRADE finds none of them (an FX symbol has no trades).
SYNTH_FLAGS = TICK_FLAG_BID | TICK_FLAG_ASK
_FLAG_MASKS = {
    COPY_TICKS_INFO: TICK_FLAG_BID | TICK_FLAG_ASK,
    COPY_TICKS_TRADE: TICK_FLAG_LAST | TICK_FLAG_VOLUME,
}
_EPOCH_NAIVE = datetime(1970, 1, 1)
_EPOCH_AWARE = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


class _BadArg(Exception):
    """An argument the real package would reject with -2 'Invalid "<name>" argument'."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(frozen=True)
class _Series:
    """All bars of one symbol and timeframe over the whole history (visibility is applied per call)."""

    labels: I64  # UTC ns bar open, ascending
    starts: I64  # first M1 row of each bar
    ends: I64  # one past the last M1 row of each bar
    rates: Rates  # RATES_DTYPE, time in server seconds


@dataclass(frozen=True)
class _Cursor:
    """Where ``now`` falls in one symbol's M1 bars."""

    now: int
    full: int  # M1 rows [0, full) are complete (time + 60 s <= now)
    partial: bool  # row ``full`` contains now: only its synthetic ticks <= now are visible
    ticks: int  # visible synthetic ticks of the partial row (1..4)
    p_high: float
    p_low: float
    p_close: float

    @property
    def last_row(self) -> int:
        """Last M1 row with anything visible (-1: none)."""
        return self.full if self.partial else self.full - 1


@dataclass
class _Forming:
    """Running aggregate of the forming bar's complete M1 rows, extended as ``now`` advances."""

    now: int
    k: int
    upto: int  # complete rows [starts[k], upto) are folded into high/low/tick_volume/spread
    high: float
    low: float
    tick_volume: int
    spread: int
    row: tuple[Any, ...] | None  # patched last row at ``now``; None: the precomputed bar is exact


class MarketData:
    """Prices and history as the MetaTrader5 package reports them at the simulated time ``now``.

    The price source of ``terminal.server.TradeServer``: ``m1``, ``specs``, ``spread``, ``index_at`` and
    ``bid_before`` have the same meaning.
    """

    def __init__(
        self,
        m1: dict[str, Bars],
        specs: dict[str, SymbolSpec],
        server_tz: str,
        fixed_spread: int | None = None,
        ticks: dict[str, Ticks] | None = None,
        timeframes: Iterable[Timeframe] = (),
        tick_seed: int | None = None,
    ) -> None:
        self.m1 = m1
        # "Every tick" mode: inside a minute the quote follows the ticks generated from M1 with this
        # seed (the ones the trade server replays); None: the 1-minute OHLC path.
        self.tick_seed = tick_seed
        self.specs = specs
        self.server_tz = server_tz
        self.ticks: dict[str, Ticks] = dict(ticks or {})
        self._tz: tzinfo = parse_server_tz(server_tz)
        off = self._tz.utcoffset(None) if isinstance(self._tz, timezone) else None
        self._fixed_ns: int | None = None if off is None else off // _US * 1000
        self._now = _START_NS
        self._error: tuple[int, str] = (RES_S_OK, LAST_ERROR_MESSAGES[RES_S_OK])
        # Same rule as account.Market: a fixed override, else the data's spread, else the symbol's.
        self.spread: dict[str, np.ndarray] = {}
        self._eff: dict[str, Bars] = {}
        self._low_first: dict[str, npt.NDArray[np.bool_]] = {}
        for sym, bars in m1.items():
            if bars.timeframe is not Timeframe.M1:
                raise ValueError(f"MarketData needs M1 bars, got {sym} {bars.timeframe.name}")
            if sym not in specs:
                raise ValueError(f"MarketData: no SymbolSpec for {sym}")
            if fixed_spread is not None:
                sp = np.full(len(bars), fixed_spread, dtype=np.int32)
            elif len(bars) and int(bars.spread.max()) > 0:
                sp = bars.spread.astype(np.int32)
            else:
                sp = np.full(len(bars), specs[sym].spread, dtype=np.int32)
            self.spread[sym] = sp
            # Rates report the spread the terminal trades at, so bars and ticks agree with fills.
            self._eff[sym] = Bars(
                sym, Timeframe.M1, bars.time, bars.open, bars.high, bars.low, bars.close, bars.tick_volume, sp
            )
            self._low_first[sym] = _low_first(np.asarray(bars.open), np.asarray(bars.close))
        self._series: dict[tuple[str, Timeframe], _Series] = {}
        self._forming: dict[tuple[str, Timeframe], _Forming] = {}
        self._cursors: dict[str, _Cursor] = {}
        self._tick_cache: dict[str, tuple[int, Tick | None]] = {}  # the tick at `now`, per symbol
        self._tick_msc: dict[str, I64] = {}
        self._tick_idx: dict[tuple[str, int], I64] = {}
        self._paths: dict[str, tuple[int, I64, F64, F64]] = {}  # the last M1 row's tick path, per symbol
        self._directions: dict[str, npt.NDArray[np.int8]] = {}
        for tf in timeframes:
            for sym in m1:
                self._series_for(sym, Timeframe(tf))

    # ------------------------------------------------------------------------------------ clock
    @property
    def now(self) -> int:
        """Simulated time, UTC ns."""
        return self._now

    def set_time(self, t: int) -> None:
        """Advance the clock to ``t`` (UTC ns). Time never goes back: ValueError if ``t < now``."""
        t = int(t)
        if t < self._now:
            raise ValueError(
                f"MarketData.set_time: time moves forward only ({np.datetime64(t, 'ns')} < "
                f"{np.datetime64(self._now, 'ns')})"
            )
        self._now = t

    def rewind(self, t: int) -> None:
        """Set the clock to ``t``, back as well as forward: for the engine alone, around work that only
        reads the market at other times (a signal pass before the trading starts at bar 1,
        engine/signal_pass.py; the correlations read at each review's time, engine/prereview.py). Nothing
        a strategy can call moves the clock back."""
        self._now = int(t)

    def last_error(self) -> tuple[int, str]:
        """``(code, description)`` of the last call, as ``MetaTrader5.last_error()``."""
        return self._error

    # ------------------------------------------------------------------------- time conversion
    def _wall_ns(self, utc_ns: I64) -> I64:
        """Server wall time (ns, encoded as if UTC) of UTC instants."""
        if self._fixed_ns is not None:
            return utc_ns + np.int64(self._fixed_ns)
        idx = pd.DatetimeIndex(np.asarray(utc_ns, np.int64).view("datetime64[ns]")).tz_localize("UTC")
        wall = idx.tz_convert(self._tz).tz_localize(None).as_unit("ns")
        return np.asarray(wall.asi8, np.int64)

    def to_server_s(self, utc_ns: int) -> int:
        """Server-clock seconds (the API's ``time`` fields) of a UTC ns instant."""
        return self._to_server_ns(int(utc_ns)) // SECOND_NS

    def _to_server_ns(self, utc_ns: int) -> int:
        if self._fixed_ns is not None:
            return utc_ns + self._fixed_ns
        off = datetime.fromtimestamp(utc_ns // SECOND_NS, self._tz).utcoffset()
        return utc_ns + (0 if off is None else off // _US * 1000)

    def from_server(self, value: object) -> int:
        """UTC ns of a date argument given on the server clock (spec 5.2).

        int (also numpy integer): server seconds. tz-aware ``datetime`` / ``Timestamp``: its
        ``.timestamp()`` is server seconds. Naive ``datetime`` / ``Timestamp`` / ``np.datetime64``:
        server wall time (the real package would apply the machine's local zone). With a DST zone a
        repeated wall time maps to its first occurrence and a skipped one to the transition instant.
        Dates before 1823 or after 2116 are clamped to those years (no data exists there). Raises
        ``TypeError`` for anything else (bool and float included).
        """
        # Clamp to years 1823..2116 so far-away dates (datetime.max, 2**40 s) compare instead of overflowing.
        wall = min(max(_wall_arg_ns(value), _START_NS), -_START_NS)
        if self._fixed_ns is not None:
            return wall - self._fixed_ns
        ts = pd.Timestamp(wall, unit="ns").tz_localize(self._tz, ambiguous=True, nonexistent="shift_forward")
        return int(ts.value)

    # -------------------------------------------------------------- Market-compatible members
    def index_at(self, symbol: str, t: int) -> int:
        """Index of the first M1 bar opening at or after t (the next tick after t)."""
        return int(self.m1[symbol].time.searchsorted(t, "left"))

    def bid_before(self, symbol: str, t: int) -> float:
        """Last known bid strictly before t (close of the last M1 bar that opened before t)."""
        i = self.index_at(symbol, t) - 1
        if i < 0:
            raise DataError(f"{symbol}: no price before {np.datetime64(t, 'ns')}")
        return float(self.m1[symbol].close[i])

    # ------------------------------------------------------------------------------- the quote
    def quote_at(self, symbol: str, t: int) -> tuple[float, float, int, int] | None:
        """The one quote at time t (UTC ns), read by the terminal (``symbol_info_tick``, the forming
        bar) and by the trade server (fills, checks): (bid, ask, M1 row, UTC ns of that tick) of the
        last tick at or before t, or None before the first one (ARCHITECTURE 2, "one quote").

        Real ticks: the last recorded tick <= t. Otherwise the M1 bar holding t is seen only through
        the tester's ticks up to t (spec 6.1/6.2): the 1-minute OHLC ticks at +0/20/40/59 s, or in
        "Every tick" mode the generated ticks; so between two minute boundaries the price is never
        the bar's close, which is known only at its last tick. Ask = Bid + the bar's spread.
        """
        real = self.ticks.get(symbol)
        time = self.m1[symbol].time
        k = int(time.searchsorted(t, "right")) - 1
        if real is not None:
            i = int(real.time.searchsorted(t, "right")) - 1
            if i < 0:
                return None
            return float(real.bid[i]), float(real.ask[i]), max(k, 0), int(real.time[i])
        if k < 0:
            return None
        elapsed = t - int(time[k])
        if self.tick_seed is None and (elapsed == 0 or elapsed >= SYNTH_OFFSETS_NS[-1]):
            # The bar's first or last 1-minute OHLC tick, without building the path (the hot case:
            # decision points are whole minutes).
            bars = self._eff[symbol]
            spec = self.specs[symbol]
            bid = float(bars.open[k] if elapsed == 0 else bars.close[k])
            ask = float(rules.round_to(bid + int(bars.spread[k]) * spec.point, spec.digits))
            return bid, ask, k, int(time[k]) + (0 if elapsed == 0 else SYNTH_OFFSETS_NS[-1])
        times, bids, asks = self.tick_path(symbol, k)
        m = int(times.searchsorted(t, "right"))
        return float(bids[m - 1]), float(asks[m - 1]), k, int(times[m - 1])

    def quotes_at(self, symbol: str, times: np.ndarray) -> tuple[F64, F64, I64, I64, npt.NDArray[np.bool_]]:
        """``quote_at`` for many times at once: (bid, ask, M1 row, tick time, has a quote). Whole-minute
        times of the 1-minute OHLC path are read straight from the bars; any other time asks
        ``quote_at`` (one rule, two speeds)."""
        times = np.asarray(times, np.int64)
        n = len(times)
        bid, ask = np.zeros(n), np.zeros(n)
        row, when, has = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.bool_)
        bars = self._eff[symbol]
        k = np.searchsorted(bars.time, times, "right") - 1
        direct = np.zeros(n, np.bool_)
        if self.ticks.get(symbol) is None and self.tick_seed is None:
            direct = (k >= 0) & (times == bars.time[np.maximum(k, 0)])
        idx = np.flatnonzero(direct)
        kk = k[idx]
        spec = self.specs[symbol]
        bid[idx] = bars.open[kk]
        ask[idx] = rules.round_array(bid[idx] + bars.spread[kk].astype(np.int64) * spec.point, spec.digits)
        row[idx], when[idx], has[idx] = kk, bars.time[kk], True
        for i in np.flatnonzero(~direct).tolist():
            q = self.quote_at(symbol, int(times[i]))
            if q is not None:
                bid[i], ask[i], row[i], when[i], has[i] = q[0], q[1], q[2], q[3], True
        return bid, ask, row, when, has

    def tick_path(self, symbol: str, k: int) -> tuple[I64, F64, F64]:
        """(UTC ns, bid, ask) of every tick of M1 row k in the tester mode's path (cached per symbol)."""
        cached = self._paths.get(symbol)
        if cached is not None and cached[0] == k:
            return cached[1], cached[2], cached[3]
        bars = self._eff[symbol]
        spec = self.specs[symbol]
        real = self.ticks.get(symbol)
        if real is not None:  # the recorded ticks inside the minute
            a, b = np.searchsorted(real.time, [int(bars.time[k]), int(bars.time[k]) + MINUTE_NS], "left")
            times, bids, asks = real.time[a:b], real.bid[a:b], real.ask[a:b]
        elif self.tick_seed is not None:
            directions = self._directions.get(symbol)
            if directions is None:
                directions = self._directions[symbol] = tickgen.bar_directions(
                    np.asarray(bars.open, np.float64), np.asarray(bars.close, np.float64), tickgen.BULLISH
                )
            gen = tickgen.generate_ticks(bars, spec.point, self.tick_seed, k, k + 1, directions)
            times, bids, asks = gen.time, gen.bid, gen.ask
        else:
            o, h, lo, c = (float(bars.open[k]), float(bars.high[k]), float(bars.low[k]), float(bars.close[k]))
            first, second = (lo, h) if self._low_first[symbol][k] else (h, lo)
            times = int(bars.time[k]) + _OFFS
            bids = np.array((o, first, second, c))
            asks = np.round(bids + int(bars.spread[k]) * spec.point, spec.digits)
        self._paths[symbol] = (k, times, bids, asks)
        return times, bids, asks

    # ------------------------------------------------------------------------------- internals
    def _ok(self) -> None:
        self._error = (RES_S_OK, LAST_ERROR_MESSAGES[RES_S_OK])

    def _fail(self, code: int = RES_E_FAIL, message: str | None = None) -> None:
        self._error = (code, message if message is not None else LAST_ERROR_MESSAGES[code])

    def _bad(self, name: str) -> None:
        self._fail(RES_E_INVALID_PARAMS, f'Invalid "{name}" argument')

    def _symbol(self, symbol: object) -> str | None:
        """The symbol, or None with the error set."""
        if not isinstance(symbol, str):
            self._bad("symbol")
            return None
        if symbol not in self.m1:
            self._fail(RES_E_FAIL)
            return None
        return symbol

    def _series_for(self, symbol: str, tf: Timeframe) -> _Series:
        key = (symbol, tf)
        s = self._series.get(key)
        if s is not None:
            return s
        m1 = self._eff[symbol]
        n = len(m1)
        if tf is Timeframe.M1:
            bars = m1
            starts = np.arange(n, dtype=np.int64)
        else:
            bars = resample(m1, tf, self._tz)
            starts = np.searchsorted(m1.time, bars.time, "left").astype(np.int64)
        rates = np.zeros(len(bars), RATES_DTYPE)
        rates["time"] = self._wall_ns(np.asarray(bars.time, np.int64)) // SECOND_NS
        rates["open"] = bars.open
        rates["high"] = bars.high
        rates["low"] = bars.low
        rates["close"] = bars.close
        rates["tick_volume"] = bars.tick_volume
        rates["spread"] = bars.spread
        s = _Series(np.asarray(bars.time, np.int64), starts, np.append(starts[1:], n).astype(np.int64), rates)
        self._series[key] = s
        return s

    def _cursor(self, symbol: str) -> _Cursor:
        now = self._now
        cur = self._cursors.get(symbol)
        if cur is not None and cur.now == now:
            return cur
        bars = self.m1[symbol]
        time = bars.time
        full = int(time.searchsorted(now - MINUTE_NS, "right"))
        if full < len(time) and int(time[full]) <= now:
            if now == int(time[full]) and self.tick_seed is None and symbol not in self.ticks:
                o = float(bars.open[full])  # only the open so far (every decision point is a bar's open)
                cur = _Cursor(now, full, True, 1, o, o, o)
            else:  # the ticks of the bar's path up to now: the same ones quote_at reads
                times, bids, _ = self.tick_path(symbol, full)
                m = int(times.searchsorted(now, "right"))
                seen = bids[:m]
                if m:
                    cur = _Cursor(now, full, True, m, float(seen.max()), float(seen.min()), float(seen[-1]))
                else:  # a bar opens on its first tick (spec 5.1): none yet
                    cur = _Cursor(now, full, False, 0, 0.0, 0.0, 0.0)
        else:
            cur = _Cursor(now, full, False, 0, 0.0, 0.0, 0.0)
        self._cursors[symbol] = cur
        return cur

    def _last_bar(self, symbol: str, tf: Timeframe) -> tuple[_Series, int, tuple[Any, ...] | None]:
        """The series, the index k of its last visible bar (-1: none) and that bar's row at ``now``
        (None when the precomputed row is already exact)."""
        s = self._series_for(symbol, tf)
        now = self._now
        key = (symbol, tf)
        f = self._forming.get(key)
        if f is not None and f.now == now:
            return s, f.k, f.row
        cur = self._cursor(symbol)
        j = cur.last_row
        if j < 0:
            return s, -1, None
        eff = self._eff[symbol]
        k = int(s.labels.searchsorted(eff.time[j], "right")) - 1
        start, end = int(s.starts[k]), int(s.ends[k])
        full_end = min(cur.full, end)
        if not cur.partial and full_end == end:
            self._forming[key] = _Forming(now, k, end, 0.0, 0.0, 0, 0, None)
            return s, k, None
        if f is None or f.row is None or f.k != k or f.upto > full_end:
            f = _Forming(now, k, start, -math.inf, math.inf, 0, np.iinfo(np.int32).max, None)
        if full_end > f.upto:
            a, b = f.upto, full_end
            f.high = max(f.high, float(eff.high[a:b].max()))
            f.low = min(f.low, float(eff.low[a:b].min()))
            f.tick_volume += int(eff.tick_volume[a:b].sum())
            f.spread = min(f.spread, int(eff.spread[a:b].min()))
            f.upto = b
        f.now = now
        high, low, tick_volume, spread = f.high, f.low, f.tick_volume, f.spread
        if cur.partial:
            high, low, close = max(high, cur.p_high), min(low, cur.p_low), cur.p_close
            tick_volume += cur.ticks
            spread = min(spread, int(eff.spread[cur.full]))
        else:
            close = float(eff.close[full_end - 1])
        f.row = (int(s.rates["time"][k]), float(eff.open[start]), high, low, close, tick_volume, spread, 0)
        self._forming[key] = f
        return s, k, f.row

    def _parse_tf(self, timeframe: object) -> Timeframe:
        if isinstance(timeframe, bool) or not isinstance(timeframe, int | np.integer):
            raise _BadArg("timeframe")
        try:
            return Timeframe(int(timeframe))
        except ValueError:
            raise _BadArg("timeframe") from None

    def _date(self, value: object, name: str) -> int:
        try:
            return self.from_server(value)
        except (TypeError, ValueError, OverflowError):
            raise _BadArg(name) from None

    @staticmethod
    def _int(value: object, name: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < minimum:
            raise _BadArg(name)
        return int(value)

    # --------------------------------------------------------------------------------- rates
    def copy_rates_from_pos(self, symbol: str, timeframe: int, start_pos: int, count: int) -> Rates | None:
        """``count`` bars ending at position ``start_pos`` (0 = the forming bar), oldest first."""
        try:
            tf = self._parse_tf(timeframe)
            pos = self._int(start_pos, "start_pos", 0)
            n = self._int(count, "count", 1)
        except _BadArg as exc:
            self._bad(exc.name)
            return None
        sym = self._symbol(symbol)
        if sym is None:
            return None
        s, k, row = self._last_bar(sym, tf)
        hi = k - pos + 1
        return self._slice(s, k, row, max(0, hi - n), hi)

    def copy_rates_from(self, symbol: str, timeframe: int, date_from: object, count: int) -> Rates | None:
        """The last ``count`` bars opening at or before ``date_from`` (and at or before now)."""
        try:
            tf = self._parse_tf(timeframe)
            d = self._date(date_from, "date_from")
            n = self._int(count, "count", 1)
        except _BadArg as exc:
            self._bad(exc.name)
            return None
        sym = self._symbol(symbol)
        if sym is None:
            return None
        s, k, row = self._last_bar(sym, tf)
        hi = min(int(s.labels.searchsorted(d, "right")), k + 1)
        return self._slice(s, k, row, max(0, hi - n), hi)

    def copy_rates_range(
        self, symbol: str, timeframe: int, date_from: object, date_to: object
    ) -> Rates | None:
        """Bars with ``date_from <= time <= date_to`` (both inclusive), capped at now."""
        try:
            tf = self._parse_tf(timeframe)
            d0 = self._date(date_from, "date_from")
            d1 = self._date(date_to, "date_to")
        except _BadArg as exc:
            self._bad(exc.name)
            return None
        sym = self._symbol(symbol)
        if sym is None:
            return None
        s, k, row = self._last_bar(sym, tf)
        lo = int(s.labels.searchsorted(d0, "left"))
        hi = min(int(s.labels.searchsorted(d1, "right")), k + 1)
        return self._slice(s, k, row, lo, hi)

    def _slice(self, s: _Series, k: int, row: tuple[Any, ...] | None, lo: int, hi: int) -> Rates | None:
        if hi <= lo:
            self._fail(RES_E_FAIL)
            return None
        out = s.rates[lo:hi].copy()
        if row is not None and hi == k + 1:
            out[-1] = row
        self._ok()
        return out

    # --------------------------------------------------------------------------------- ticks
    def tick(self, symbol: str) -> Tick | None:
        """``symbol_info_tick``: the latest tick at or before now (None before the first one).

        Without real ticks that is a 1-minute OHLC tick: the open of an M1 bar opening at now, or
        the close of the last complete bar, stamped at that bar's +59 s. ask = bid + spread × point,
        rounded to ``digits``; flags BID|ASK (6).
        """
        sym = self._symbol(symbol)
        if sym is None:
            return None
        cached = self._tick_cache.get(sym)
        if cached is not None and cached[0] == self._now:
            if cached[1] is None:
                self._fail(RES_E_FAIL)
            else:
                self._ok()
            return cached[1]
        tick = self._tick(sym)
        self._tick_cache[sym] = (self._now, tick)
        return tick

    def _tick(self, sym: str) -> Tick | None:
        real = self.ticks.get(sym)
        if real is not None:
            i = int(real.time.searchsorted(self._now, "right")) - 1
            if i < 0:
                self._fail(RES_E_FAIL)
                return None
            msc = self._real_msc(sym)[i]
            self._ok()
            return Tick(
                int(msc // 1000),
                float(real.bid[i]),
                float(real.ask[i]),
                float(real.last[i]),
                int(real.volume[i]),
                int(msc),
                int(real.flags[i]),
                float(real.volume[i]),
            )
        q = self.quote_at(sym, self._now)
        if q is None:
            self._fail(RES_E_FAIL)
            return None
        bid, ask, _, utc = q
        msc = self._to_server_ns(utc) // MS_NS
        self._ok()
        return Tick(msc // 1000, bid, ask, 0.0, 0, msc, SYNTH_FLAGS, 0.0)

    def copy_ticks_from(self, symbol: str, date_from: object, count: int, flags: int) -> Rates | None:
        """Up to ``count`` ticks from ``date_from`` on, never after now, oldest first."""
        try:
            d = self._date(date_from, "date_from")
            n = self._int(count, "count", 1)
            fl = self._flags(flags)
        except _BadArg as exc:
            self._bad(exc.name)
            return None
        return self._ticks(symbol, d, None, n, fl)

    def copy_ticks_range(self, symbol: str, date_from: object, date_to: object, flags: int) -> Rates | None:
        """Ticks with ``date_from <= time <= date_to`` (ns precision), never after now, oldest first."""
        try:
            d0 = self._date(date_from, "date_from")
            d1 = self._date(date_to, "date_to")
            fl = self._flags(flags)
        except _BadArg as exc:
            self._bad(exc.name)
            return None
        return self._ticks(symbol, d0, d1, None, fl)

    def _ticks(self, symbol: str, d0: int, d1: int | None, n: int | None, fl: int) -> Rates | None:
        """Recorded ticks where the symbol has them, else ticks of its M1 bars (both capped at now)."""
        sym = self._symbol(symbol)
        if sym is None:
            return None
        if sym in self.ticks:
            return self._real_ticks(sym, d0, d1, n, fl)
        return self._synth_ticks(sym, d0, d1, n, fl)

    @staticmethod
    def _flags(flags: object) -> int:
        if isinstance(flags, bool) or not isinstance(flags, int | np.integer):
            raise _BadArg("flags")
        if int(flags) not in (COPY_TICKS_ALL, COPY_TICKS_INFO, COPY_TICKS_TRADE):
            raise _BadArg("flags")
        return int(flags)

    def _real_msc(self, symbol: str) -> I64:
        msc = self._tick_msc.get(symbol)
        if msc is None:
            msc = self._wall_ns(np.asarray(self.ticks[symbol].time, np.int64)) // MS_NS
            self._tick_msc[symbol] = msc
        return msc

    def _real_ticks(self, symbol: str, d0: int, d1: int | None, count: int | None, flags: int) -> Rates:
        real = self.ticks[symbol]
        t = real.time
        lo = int(t.searchsorted(d0, "left"))
        end = int(t.searchsorted(self._now, "right"))
        if d1 is not None:
            end = min(end, int(t.searchsorted(d1, "right")))
        if flags == COPY_TICKS_ALL:
            hi = end if count is None else min(end, lo + count)
            sel: slice | I64 = slice(lo, max(lo, hi))
        else:
            key = (symbol, flags)
            idx = self._tick_idx.get(key)
            if idx is None:
                idx = np.flatnonzero(np.asarray(real.flags) & _FLAG_MASKS[flags]).astype(np.int64)
                self._tick_idx[key] = idx
            a = int(idx.searchsorted(lo, "left"))
            b = int(idx.searchsorted(end, "left"))
            sel = idx[a : b if count is None else min(b, a + count)]
        msc = self._real_msc(symbol)[sel]
        out = np.zeros(len(msc), TICKS_DTYPE)
        out["time"] = msc // 1000
        out["time_msc"] = msc
        out["bid"] = real.bid[sel]
        out["ask"] = real.ask[sel]
        out["last"] = real.last[sel]
        out["volume"] = real.volume[sel]
        out["flags"] = real.flags[sel]
        out["volume_real"] = real.volume[sel]
        self._ok()
        return out

    def _synth_ticks(self, symbol: str, d0: int, d1: int | None, count: int | None, flags: int) -> Rates:
        """1-minute OHLC ticks (4 per M1 bar) in [d0, d1] (or the first ``count`` from d0), <= now."""
        bars = self.m1[symbol]
        time = bars.time
        cur = self._cursor(symbol)
        visible = cur.last_row + 1
        b0 = int(time.searchsorted(d0 - SYNTH_OFFSETS_NS[-1], "left"))
        if d1 is None:
            b1 = min(visible, b0 + (count or 0) // 4 + 2)
            cap = self._now
        else:
            b1 = min(visible, int(time.searchsorted(d1, "right")))
            cap = min(self._now, d1)
        if d1 is None and self.tick_seed is not None:
            b1 = min(visible, b0 + (count or 0) + 2)  # "Every tick" bars have at least one tick each
        if flags == COPY_TICKS_TRADE or b1 <= b0:
            self._ok()
            return np.zeros(0, TICKS_DTYPE)
        spec = self.specs[symbol]
        if self.tick_seed is not None:  # the generated ticks quote_at and the trade server use
            self.tick_path(symbol, b0)  # computes the doji chain once
            gen = tickgen.generate_ticks(
                self._eff[symbol], spec.point, self.tick_seed, b0, b1, self._directions[symbol]
            )
            utc, bid, ask = gen.time, gen.bid, gen.ask
        else:
            low_first = self._low_first[symbol][b0:b1]
            high, low = bars.high[b0:b1], bars.low[b0:b1]
            first = np.where(low_first, low, high)
            second = np.where(low_first, high, low)
            bid = np.column_stack((bars.open[b0:b1], first, second, bars.close[b0:b1])).ravel()
            utc = (np.asarray(time[b0:b1], np.int64)[:, None] + _OFFS[None, :]).ravel()
            spread = np.repeat(self.spread[symbol][b0:b1], 4)
            ask = np.round(bid + spread * spec.point, spec.digits)
        keep = (utc >= d0) & (utc <= cap)
        idx = np.flatnonzero(keep)
        if count is not None:
            idx = idx[:count]
        msc = self._wall_ns(utc[idx]) // MS_NS
        out = np.zeros(len(idx), TICKS_DTYPE)
        out["time"] = msc // 1000
        out["time_msc"] = msc
        out["bid"] = bid[idx]
        out["ask"] = ask[idx]
        out["flags"] = SYNTH_FLAGS
        self._ok()
        return out


def _low_first(open_: F64, close: F64, chunk: int = 1 << 18) -> npt.NDArray[np.bool_]:
    """Whether each M1 bar visits its Low before its High (spec 6.2).

    Bullish bars go Open→Low→High→Close, bearish Open→High→Low→Close; a doji takes the direction
    opposite to the previous bar's (resolved) one, so a run of dojis alternates. Before the first
    directional bar a virtual bullish bar is assumed [U: spec 6.2 gives the rule for "Every tick";
    its use in 1-minute OHLC mode is not confirmed].

    ``chunk`` rows at a time, carrying the last directional bar from one chunk to the next: the same
    flags as over the whole series, in a few arrays of ``chunk`` rows (whole-series temporaries took
    ~45 bytes per bar at once: 230 MB on 5M bars).
    """
    n = len(open_)
    out = np.empty(n, np.bool_)
    last_pos, last_dir = -1, 1  # the last directional bar before the chunk and its direction (none yet)
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        direction = np.sign(close[a:b] - open_[a:b]).astype(np.int64)
        pos = np.arange(a, b, dtype=np.int64)
        last = np.maximum.accumulate(np.where(direction != 0, pos, last_pos))
        here = last >= a
        base = np.where(here, direction[np.maximum(last - a, 0)], last_dir if last_pos >= 0 else 1)
        flip = np.where((pos - last) % 2 == 1, -1, 1)
        out[a:b] = base * flip > 0
        if here[-1]:
            last_pos, last_dir = int(last[-1]), int(direction[last[-1] - a])
    return out


def _wall_arg_ns(value: object) -> int:
    """Server wall time in ns (as if UTC) of a date argument; TypeError for unsupported types."""
    if isinstance(value, bool):
        raise TypeError("bool is not a date")
    if isinstance(value, int | np.integer):
        return int(value) * SECOND_NS
    if isinstance(value, pd.Timestamp):
        if value is pd.NaT:
            raise TypeError("NaT is not a date")
        return int(value.as_unit("ns").value)  # aware: the instant; naive: the wall time as if UTC
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return (value - _EPOCH_AWARE) // _US * 1000
        return (value.replace(tzinfo=None) - _EPOCH_NAIVE) // _US * 1000
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise TypeError("NaT is not a date")
        return int(value.astype("datetime64[ns]").astype(np.int64))
    raise TypeError(f"unsupported date type {type(value).__name__}")
