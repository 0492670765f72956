"""``mt5tester data download``: bars and ticks from any MetaTrader5-API module into the catalog.

The terminal answers in its server's clock; the bars are stored in UTC with the zone recorded, as an
import of the terminal's own exports would be. The range is fetched a chunk at a time and each chunk is
merged into the catalog at once, so an interrupted download keeps what it fetched and a second run
starts after the last stored bar (resumable); bars already stored are reported as duplicates, never
stored twice (idempotent). The bar still forming at the terminal is never stored: it would change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mt5tester.data.catalog import TICKS, Catalog
from mt5tester.data.importers import Ticks
from mt5tester.errors import ConfigError, DataError
from mt5tester.live.terminal import ServerClock, rates_to_bars
from mt5tester.model import constants as C
from mt5tester.model.timeframe import Timeframe

CHUNK_DAYS = 30
DAY_NS = 86_400 * 1_000_000_000


def _stored_last(catalog: Catalog, symbol: str, timeframe: str) -> int | None:
    try:
        info = catalog.info(symbol, timeframe)
    except (DataError, ValueError):
        return None
    last = info.get("last")
    return (
        int(np.datetime64(str(last).replace("Z", "").replace("+00:00", ""), "ns").astype(np.int64))
        if last
        else None
    )


def download(
    mt5: Any,
    catalog: Catalog,
    symbols: list[str],
    timeframes: list[str],
    start_ns: int,
    end_ns: int,
    server_tz: str,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Fetch ``[start_ns, end_ns)`` (UTC) of each symbol and timeframe (``TICKS`` for ticks) into
    ``catalog``; one summary row per symbol and timeframe."""
    if not mt5.initialize():
        code, text = mt5.last_error()
        raise ConfigError(f"data download: the terminal did not initialize (last_error {code}: {text})")
    clock = ServerClock(server_tz)
    server = getattr(mt5.account_info(), "server", "") or "terminal"
    out = []
    for symbol in symbols:
        if mt5.symbol_info(symbol) is None or not mt5.symbol_select(symbol, True):
            code, text = mt5.last_error()
            raise DataError(f"data download: symbol {symbol} is not offered by {server} ({code}: {text})")
        for name in timeframes:
            ticks = name.strip().upper() in (TICKS, "TICK")
            tf = None if ticks else Timeframe.parse(name)
            key = TICKS if ticks else tf.name  # type: ignore[union-attr]
            last = _stored_last(catalog, symbol, key)
            lo = max(start_ns, last + 1) if last is not None else start_ns
            row = {
                "symbol": symbol,
                "timeframe": key,
                "fetched": 0,
                "new": 0,
                "duplicates": 0,
                "resumed_from": None,
            }
            if last is not None and lo > start_ns:
                row["resumed_from"] = int(lo)
            forming = None
            if tf is not None:
                now = mt5.copy_rates_from_pos(symbol, int(tf), 0, 1)
                forming = int(clock.to_utc_ns(now["time"])[0]) if now is not None and len(now) else None
            while lo < end_ns:
                hi = min(end_ns, lo + CHUNK_DAYS * DAY_NS)
                a, b = clock.to_server_s(lo), clock.to_server_s(hi) - 1  # both ends inclusive in the API
                if tf is None:
                    got = mt5.copy_ticks_range(symbol, a, b + 1, C.COPY_TICKS_ALL)
                    res = _store_ticks(catalog, symbol, got, clock, server, server_tz, lo, hi)
                else:
                    got = mt5.copy_rates_range(symbol, int(tf), a, b)
                    res = _store_bars(catalog, symbol, tf, got, clock, server, server_tz, lo, hi, forming)
                if res is not None:
                    row["fetched"] += res.rows_in
                    row["new"] += res.rows_new
                    row["duplicates"] += res.duplicates
                if progress is not None:
                    progress(f"{symbol} {key}: {row['fetched']} fetched")
                lo = hi
            out.append(row)
    return out


def _store_bars(
    catalog: Catalog,
    symbol: str,
    tf: Timeframe,
    rates: Any,
    clock: ServerClock,
    server: str,
    tz: str,
    lo: int,
    hi: int,
    forming: int | None,
) -> Any:
    if rates is None or not len(rates):
        return None
    bars = rates_to_bars(rates, symbol, tf, clock)
    keep = (bars.time >= lo) & (bars.time < hi)
    if forming is not None:
        keep &= bars.time < forming
    idx = np.flatnonzero(keep)
    if not len(idx):
        return None
    bars = bars.slice(int(idx[0]), int(idx[-1]) + 1)
    return catalog.import_bars(bars, f"mt5:{server}:{symbol}:{tf.name}", tz=tz)


def _store_ticks(
    catalog: Catalog, symbol: str, got: Any, clock: ServerClock, server: str, tz: str, lo: int, hi: int
) -> Any:
    if got is None or not len(got):
        return None
    msc = np.asarray(got["time_msc"], np.int64)
    time = clock.to_utc_ns(msc // 1000) + (msc % 1000) * 1_000_000
    keep = (time >= lo) & (time < hi)
    if not keep.any():
        return None
    ticks = Ticks(
        symbol,
        np.ascontiguousarray(time[keep]),
        np.ascontiguousarray(got["bid"][keep], np.float64),
        np.ascontiguousarray(got["ask"][keep], np.float64),
        np.ascontiguousarray(got["last"][keep], np.float64),
        np.ascontiguousarray(got["volume"][keep], np.int64),
        np.ascontiguousarray(got["flags"][keep], np.int32),
    )
    return catalog.import_ticks(ticks, f"mt5:{server}:{symbol}:TICKS", tz=tz)
