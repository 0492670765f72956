"""Rows of the results tables: deals, signals, orders and positions (with MFE/MAE) and daily equity.

Positions are rebuilt from the deals (grouped by position id) and get their maximum favourable and
adverse excursion (MFE/MAE) in deposit currency, measured on the trigger bars while they were open:
a buy at the bars' Bid high/low, a sell at their Ask (Bid + spread).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from typing import Any, Protocol

import numpy as np

from mt5tester.arith.rounding import round_array
from mt5tester.model import constants as C
from mt5tester.model.bars import Bars
from mt5tester.model.columns import Chained, Coded, Masked
from mt5tester.model.symbol import SymbolSpec
from mt5tester.model.trade import Deal, Order, Position


class _M1(Protocol):
    @property
    def m1(self) -> dict[str, Bars]: ...


class ServerView(Protocol):
    """What the rows read from the trade server (``terminal.server.TradeServer``); results sit above
    the value types only, so they name the fields they need instead of importing the terminal."""

    @property
    def positions(self) -> list[Position]: ...

    @property
    def orders(self) -> list[Order]: ...

    @property
    def history_orders(self) -> Sequence[Order]: ...

    @property
    def deals(self) -> Sequence[Deal]: ...

    @property
    def specs(self) -> dict[str, SymbolSpec]: ...

    @property
    def trigger_bars(self) -> dict[str, Bars]: ...

    @property
    def market(self) -> _M1: ...

    def profit_raw(
        self, spec: SymbolSpec, is_buy: bool, volume: float, open_: float, close: float, t: int
    ) -> float: ...


def _profits(
    server: ServerView, spec: SymbolSpec, is_buy: np.ndarray, volume: np.ndarray, open_: np.ndarray,
    close: np.ndarray, t: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """The server's unrounded deposit-currency profit of each row: its compiled rule over the arrays
    (``profit_raw_many``, the trade server's) or, for a view that has none (a live terminal's), row by row."""
    many = getattr(server, "profit_raw_many", None)
    if many is not None:
        return np.asarray(many(spec, is_buy, volume, open_, close, t), np.float64)
    rows = zip(is_buy.tolist(), volume.tolist(), open_.tolist(), close.tolist(), t.tolist(), strict=True)
    return np.array([server.profit_raw(spec, *row) for row in rows], np.float64)


def _column(items: Sequence[Any], name: str, dtype: Any = None) -> Any:
    """Field ``name`` of every record: the terminal's history reads it from its arrays
    (``terminal.history.History.column``) without building the records; a plain list of records by
    attribute. A numpy array of ``dtype``, or a list without one."""
    read = getattr(items, "column", None)
    if read is not None:
        return read(name, dtype)
    values = [getattr(x, name) for x in items]
    return values if dtype is None else np.array(values, dtype)


# (strategy, signal id) of an order or position, by ticket: the engine's journal reads them back from the
# orders' magic and comment (engine/attribution.py); the trade server does not know strategies.
Owners = Callable[[int], tuple[str, int | None]]
# The same for many tickets at once: (strategies, signal ids) as columns (engine/attribution.py ``orders``).
ManyOwners = Callable[[np.ndarray], tuple[Sequence[str], Any]]


def _owner_columns(tickets: np.ndarray, owner: Owners, many: ManyOwners | None) -> tuple[Sequence[str], Any]:
    if many is not None:
        return many(tickets)
    owners = [owner(t) for t in tickets.tolist()]
    return [w[0] for w in owners], [w[1] for w in owners]


def deal_row(d: Deal, strategy: str = "", signal_id: int | None = None) -> dict[str, Any]:
    """The deals-table row of a deal, attributed to ``strategy`` and ``signal_id``."""
    return {
        "ticket": d.ticket,
        "order": d.order,
        "time": d.time,
        "type": d.type,
        "entry": d.entry,
        "reason": d.reason,
        "position_id": d.position_id,
        "symbol": d.symbol,
        "volume": d.volume,
        "price": d.price,
        "commission": d.commission,
        "swap": d.swap,
        "profit": d.profit,
        "balance": d.balance,
        "comment": d.comment,
        "strategy": strategy,
        "signal_id": signal_id,
    }


def signal_row(
    signal_id: int, t: int, strategy: Any, symbol: str, sig: Any, **decision: Any
) -> dict[str, Any]:
    """The signals-table row of a signal; ``decision`` fills the decision and execution columns."""
    row = {
        "signal_id": signal_id,
        "time": t,
        "strategy": strategy.name,
        "symbol": symbol,
        "timeframe": strategy.timeframe.name,
        "direction": sig.direction,
        "order_type": sig.order_type,
        "price": sig.price,
        "sl": sig.sl,
        "tp": sig.tp,
        "confidence": sig.confidence,
        "comment": sig.comment,
        "tags": sig.tags,
        "status": "",
        "rule": None,
        "reason": None,
        "details": None,
        "volume": None,
        "order_ticket": None,
        "retcode": None,
        "position_id": None,
        "trading_mode": None,
    }
    row.update(decision)
    return row


def order_rows(server: ServerView, owner: Owners) -> list[dict[str, Any]]:
    """The orders table's rows (see ``order_columns``), one dict each."""
    return _as_rows(order_columns(server, owner))


def _as_rows(cols: dict[str, Any]) -> list[dict[str, Any]]:
    """Row dicts of a table given as columns (lists or numpy arrays: their values as Python values)."""
    plain = [v.tolist() if hasattr(v, "tolist") else v for v in cols.values()]
    names = list(cols)
    return [dict(zip(names, values, strict=True)) for values in zip(*plain, strict=True)]


def order_columns(server: ServerView, owner: Owners, owners: ManyOwners | None = None) -> dict[str, Any]:
    """The orders table as columns, history and open orders by ticket, with their owners. A column is
    the terminal's history's own arrays, lists and column forms part by part (``Chained``: the compiled
    driver's block and the orders made after it are not joined into a copy), or, when the tickets are
    out of order, one array or list in ticket order."""
    hist, live = server.history_orders, server.orders

    def parts(name: str, dtype: Any = None) -> list[Any]:
        out = _parts(hist, name, dtype)
        if len(live):
            out.append(_column(live, name, dtype))
        return out

    by_part = parts("ticket", np.int64)
    ticket = _joined(by_part, np.int64)
    ordered = bool((np.diff(ticket) > 0).all())  # the usual case: the history is in ticket order
    order = None if ordered else np.argsort(ticket, kind="stable")
    tickets = ticket if order is None else ticket[order]
    strategy, signal_id = _owner_columns(tickets, owner, owners)

    def col(name: str, dtype: Any = None) -> Any:
        values = parts(name, dtype)
        if order is None:
            return values[0] if len(values) == 1 else Chained(values)
        joined = _joined(values, dtype)
        return joined[order] if dtype is not None else [joined[k] for k in order.tolist()]

    done = col("time_done", np.int64)
    ints = ("type", "state", "reason", "position_id")
    floats = ("volume_initial", "volume_current", "price_open", "price_done", "sl", "tp", "price_stoplimit")
    columns: dict[str, Any] = {
        "ticket": col("ticket", np.int64) if order is None else tickets,
        "time_setup": col("time_setup", np.int64),
        "time_done": done if np.asarray(done, np.int64).all() else [t or None for t in done.tolist()],
        **{k: col(k, np.int64) for k in ints},
        "symbol": col("symbol"),
        **{k: col(k, np.float64) for k in floats},
        "comment": col("comment"),
        "strategy": strategy,
        "signal_id": signal_id,
    }
    return columns


def _parts(items: Sequence[Any], name: str, dtype: Any = None) -> list[Any]:
    """Field ``name`` of the records part by part: the terminal's history's parts
    (``terminal.history.History.parts``), or a plain list of records as one part."""
    read = getattr(items, "parts", None)
    if read is not None:
        return list(read(name, dtype))
    return [_column(items, name, dtype)] if len(items) else []


def _joined(parts: list[Any], dtype: Any = None) -> Any:
    """The parts as one array of ``dtype`` (a list without one): a single array part is itself."""
    if dtype is None:
        return list(chain.from_iterable(p if isinstance(p, list) else p.tolist() for p in parts))
    if len(parts) == 1 and isinstance(parts[0], np.ndarray) and parts[0].dtype == np.dtype(dtype):
        return parts[0]
    return np.concatenate([np.asarray(p, dtype) for p in parts]) if parts else np.zeros(0, dtype)


def _range_extremes(bars: Any, lo: np.ndarray, hi: np.ndarray, point: float) -> dict[str, np.ndarray]:
    """Per range [lo, hi) of ``bars`` (every range non-empty): Bid high/low, Ask (Bid + the bars'
    spread) low/high, and whether any bar of the range has a spread. One reduceat per column, over the
    bars' own arrays (no copy of them: a million bars stay a million bars)."""
    n = len(bars)
    # Interleaved bounds: the even results are the ranges. A range ending at the last bar is reduced up
    # to it and then joined with it (reduceat's indices must be < n; [n-1, n-1] gives the last bar).
    end = np.minimum(hi, n - 1)
    idx = np.empty(2 * len(lo), dtype=np.int64)
    idx[0::2], idx[1::2] = lo, end
    at_end = np.flatnonzero(hi == n)

    def over(values: np.ndarray, ufunc: Any) -> np.ndarray:
        out = ufunc.reduceat(values, idx)[0::2]
        out[at_end] = ufunc(out[at_end], values[n - 1])
        return out

    has_spread = over((np.asarray(bars.spread) != 0).view(np.int8), np.maximum) > 0
    bid_high, bid_low = over(bars.high, np.maximum), over(bars.low, np.minimum)
    if has_spread.any():
        spread = bars.spread * point
        ask_low, ask_high = over(bars.low + spread, np.minimum), over(bars.high + spread, np.maximum)
    else:  # no bar has a spread: the Ask extremes are never read (``has_spread`` is False everywhere)
        ask_low, ask_high = bid_low, bid_high
    return {
        "bid_high": bid_high,
        "bid_low": bid_low,
        "ask_low": ask_low,
        "ask_high": ask_high,
        "has_spread": has_spread,
    }


def position_rows(server: ServerView, owner: Owners) -> list[dict[str, Any]]:
    """The positions table's rows (see ``position_columns``), one dict each."""
    return _as_rows(position_columns(server, owner))


def _round2(values: np.ndarray) -> list[float]:
    """``[round(v, 2) for v in values]`` (Python's correctly rounded round) over an array."""
    rounded: list[float] = round_array(values, 2).tolist()
    return rounded


def _group_sums(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per group (consecutive rows from ``starts``), the sum of ``values`` exactly as Python's ``sum``
    gives it: numpy may add three or more in another order (unrolled, pairwise), so those groups are
    summed in Python; one or two values add alike, and ``+ 0.0`` turns -0.0 into 0.0 as ``0 + x`` does."""
    out = np.add.reduceat(values, starts) + 0.0 if len(values) else np.zeros(0)
    for g in np.flatnonzero(lengths >= 3).tolist():
        a = int(starts[g])
        out[g] = sum(values[a : a + int(lengths[g])].tolist())
    return out


class _Fields:
    """Fields of the records (the terminal's history, or a list of records) gathered at some rows part
    by part: the compiled driver's block and the records around it are never joined into a copy of a
    whole column (a million-bar run's deals are hundreds of thousands of rows per field)."""

    def __init__(self, items: Sequence[Any]) -> None:
        self.items = items

    def _split(self, name: str, dtype: Any, rows: np.ndarray) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
        """(part, positions in ``rows``, rows within the part) of each part that holds some of ``rows``."""
        parts = _parts(self.items, name, dtype)
        if len(parts) == 1:
            yield parts[0], np.arange(len(rows)), rows
            return
        bounds = np.cumsum([0, *(len(p) for p in parts)])
        which = np.searchsorted(bounds, rows, "right") - 1
        for k, part in enumerate(parts):
            sel = np.flatnonzero(which == k)
            if len(sel):
                yield part, sel, rows[sel] - bounds[k]

    def take(self, name: str, dtype: Any, rows: np.ndarray) -> np.ndarray:
        out = np.empty(len(rows), dtype)
        for part, sel, local in self._split(name, dtype, rows):
            out[sel] = np.asarray(part, dtype)[local]
        return out

    def where(self, name: str, values: tuple[int, ...]) -> np.ndarray:
        """Rows whose field ``name`` (an integer) is one of ``values``, ascending."""
        found = [
            np.flatnonzero(np.isin(np.asarray(part, np.int64), values)) + offset
            for part, offset in zip(*self._offsets(name), strict=True)
        ]
        return np.concatenate(found) if found else np.zeros(0, np.int64)

    def _offsets(self, name: str) -> tuple[list[Any], list[int]]:
        parts = _parts(self.items, name, np.int64)
        return parts, np.cumsum([0, *(len(p) for p in parts)])[:-1].tolist()

    def codes(self, name: str, rows: np.ndarray) -> Coded:
        """Field ``name`` (a text of few values: the symbol) at ``rows``, coded: a coded part's codes
        are mapped, not turned into a string per row."""
        index: dict[Any, int] = {}
        out = np.empty(len(rows), np.int64)
        for part, sel, local in self._split(name, None, rows):
            if isinstance(part, Coded):
                remap = np.array([index.setdefault(v, len(index)) for v in part.names], np.int64)
                out[sel] = remap[part.codes[local]] if len(remap) else 0
            else:
                values = part if isinstance(part, list) else part.tolist()
                out[sel] = [index.setdefault(values[i], len(index)) for i in local.tolist()]
        return Coded(out, list(index))


def position_columns(server: ServerView, owner: Owners, owners: ManyOwners | None = None) -> dict[str, Any]:
    """The positions table as columns, rebuilt from the trade deals grouped by position id (ids in
    order), with MFE/MAE over the trigger bars while each was open. Vectorised over positions: what
    stays per position is the owner and the deposit-currency profit of the two extremes. The deals'
    fields are gathered at the rows needed (``_Fields``), never copied whole."""
    deals = _Fields(server.deals)
    trade = deals.where("type", (C.DEAL_TYPE_BUY, C.DEAL_TYPE_SELL))
    n_deals = len(trade)
    pid_of = deals.take("position_id", np.int64, trade)
    order = np.argsort(pid_of, kind="stable")  # the deals of a position stay in the order they were made
    pid_s = pid_of[order]
    rows = trade[order]  # rows of the history: the trade deals position by position
    del pid_of, trade, order
    starts = np.flatnonzero(np.r_[True, pid_s[1:] != pid_s[:-1]]) if n_deals else np.zeros(0, np.int64)
    lengths = np.diff(np.r_[starts, n_deals])
    ids = pid_s[starts]
    del pid_s
    first_i = rows[starts]
    last_i = rows[starts + lengths - 1]
    still_open = np.array([p.identifier for p in server.positions], np.int64)
    closed = ~np.isin(ids, still_open)
    is_buy = deals.take("type", np.int64, first_i) == C.DEAL_TYPE_BUY
    t_open, t_last = deals.take("time", np.int64, first_i), deals.take("time", np.int64, last_i)
    p_open, p_last = deals.take("price", np.float64, first_i), deals.take("price", np.float64, last_i)
    symbols = deals.codes("symbol", first_i)
    entry = deals.take("entry", np.int64, rows)
    vol_in = np.where(entry == C.DEAL_ENTRY_IN, deals.take("volume", np.float64, rows), 0.0)
    del entry
    volume = _group_sums(vol_in, starts, lengths)
    del vol_in
    money = deals.take("profit", np.float64, rows)
    money += deals.take("swap", np.float64, rows)
    money += deals.take("commission", np.float64, rows)
    net = _group_sums(money, starts, lengths)
    del money, rows
    # Candidate prices: the exit price of a closed position, and the extremes of the bars from the entry
    # bar up to (not including) the bar of the exit (its range may hold prices after the exit).
    n = len(ids)
    hi_c, lo_c = np.where(closed, p_last, -np.inf), np.where(closed, p_last, np.inf)
    has = closed.copy()
    bars_of = server.trigger_bars or server.market.m1
    of_symbol = [(sym, symbols.codes == k) for k, sym in enumerate(symbols.names)]
    for sym, mine in of_symbol:
        at = np.flatnonzero(mine)
        bars = bars_of[sym]
        lo = np.maximum(np.searchsorted(bars.time, t_open[at], "right") - 1, 0)
        hi = np.where(closed[at], np.searchsorted(bars.time, t_last[at], "left"), len(bars))
        some = hi > lo
        if not some.any():
            continue
        at, spec = at[some], server.specs[sym]
        ext = _range_extremes(bars, lo[some], hi[some], spec.point)
        fixed = spec.spread * spec.point
        buy = is_buy[at]
        sp = ext["has_spread"]
        up = np.where(buy, ext["bid_high"], np.where(sp, ext["ask_high"], ext["bid_high"] + fixed))
        down = np.where(buy, ext["bid_low"], np.where(sp, ext["ask_low"], ext["bid_low"] + fixed))
        hi_c[at], lo_c[at] = np.maximum(hi_c[at], up), np.minimum(lo_c[at], down)
        has[at] = True
    # MFE/MAE: the terminal's profit rule over the positions of each symbol at once (one implementation)
    best, worst = np.where(is_buy, hi_c, lo_c), np.where(is_buy, lo_c, hi_c)
    t_ref = np.where(closed, t_last, t_open)
    mfe_raw, mae_raw = np.full(n, np.nan), np.full(n, np.nan)
    for sym, mine in of_symbol:
        at = np.flatnonzero(mine & has)
        if len(at):
            spec = server.specs[sym]
            args = (is_buy[at], volume[at], p_open[at])
            mfe_raw[at] = _profits(server, spec, *args, best[at], t_ref[at])
            mae_raw[at] = _profits(server, spec, *args, worst[at], t_ref[at])
    # Python's round (correctly rounded), as each row had it; None where no bar was seen (Masked)
    mfe = _when(round_array(mfe_raw, 2), has)
    mae = _when(round_array(mae_raw, 2), has)
    strategy, signal_id = _owner_columns(ids, owner, owners)
    reason = deals.take("reason", np.int64, last_i)
    return {
        "position_id": ids,
        "symbol": symbols,
        "type": np.where(is_buy, 0, 1),
        "volume": volume,
        "time_open": t_open,
        "time_close": _when(t_last, closed),
        "price_open": p_open,
        "price_close": _when(p_last, closed),
        "net": round_array(net, 2),
        "mfe": mfe,
        "mae": mae,
        "close_reason": _when(reason, closed),
        "strategy": strategy,
        "signal_id": signal_id,
    }


def _when(values: np.ndarray, ok: np.ndarray) -> Any:
    """``values``, None where not ``ok`` (``Masked``): the array itself when every row is."""
    return values if ok.all() else Masked(values, ok)


class DictColumn(Sequence[dict[str, Any]]):
    """A column of ``n`` dicts (a signal's tags or details) that are empty but for the rows ``given``:
    each row's dict is built when the column is read (a sink's rows), not one per signal up front."""

    def __init__(self, n: int, given: dict[int, dict[str, Any]] | None = None) -> None:
        self.n, self.given = n, given or {}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(self.n))]
        i = range(self.n)[k]
        return dict(self.given.get(i, {}))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        given = self.given
        return (dict(given[i]) if i in given else {} for i in range(self.n))
