"""A run's stored rows as pandas DataFrames for people: tz-aware UTC times and enum names, not codes.

The builders take the rows of one table as dicts, whether they come from a ``MemorySink`` or from the
SQL tables, so both sources give equal frames. Rows are sorted by their key here (the database does
not promise an order). Names are the MT5 constant names without their prefix, in lower case:
deal type "buy", entry "in", reason "sl", order state "filled".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mt5tester.model import constants as C
from mt5tester.model.columns import counts, equals
from mt5tester.results.funnel import CLOSE_KEYS

Rows = Sequence[dict[str, Any]]
COMMENT_KEYS = {"end of run": "end_of_run", "circuit breaker": "circuit_breaker"}


def _names(prefix: str) -> dict[int, str]:
    """{code: name} of the constants ``prefix*`` (e.g. DEAL_ENTRY_OUT_BY -> "out_by")."""
    return {
        int(getattr(C, k)): k[len(prefix) :].lower()
        for k in vars(C)
        if k.startswith(prefix) and isinstance(getattr(C, k), int)
    }


DEAL_TYPES = _names("DEAL_TYPE_")
DEAL_ENTRIES = _names("DEAL_ENTRY_")
DEAL_REASONS = _names("DEAL_REASON_")
ORDER_TYPES = _names("ORDER_TYPE_")
ORDER_STATES = _names("ORDER_STATE_")
ORDER_REASONS = _names("ORDER_REASON_")
POSITION_TYPES = _names("POSITION_TYPE_")


def _time(values: list[Any]) -> pd.Series:
    """UTC ns integers (None: not yet) as tz-aware timestamps (NaT)."""
    return pd.to_datetime(pd.Series(values, dtype="Int64"), unit="ns", utc=True)


def _name(values: list[Any], names: dict[int, str]) -> pd.Series:
    return pd.Series([None if v is None else names.get(int(v), str(v)) for v in values], dtype=object)


def _frame(rows: Rows, key: str, spec: dict[str, Any]) -> pd.DataFrame:
    """Columns in ``spec`` order: a dtype string, "time", or a names dict for an enum column."""
    ordered = sorted(rows, key=lambda r: r[key])
    columns: dict[str, pd.Series] = {}
    for col, kind in spec.items():
        values = [r.get(col) for r in ordered]
        if kind == "time":
            columns[col] = _time(values)
        elif isinstance(kind, dict):
            columns[col] = _name(values, kind)
        else:
            columns[col] = pd.Series(values, dtype=kind)
    return pd.DataFrame(columns, columns=list(spec))


DEALS = {
    "ticket": "int64",
    "time": "time",
    "symbol": object,
    "type": DEAL_TYPES,
    "entry": DEAL_ENTRIES,
    "reason": DEAL_REASONS,
    "volume": "float64",
    "price": "float64",
    "commission": "float64",
    "swap": "float64",
    "profit": "float64",
    "balance": "float64",
    "order": "int64",
    "position_id": "int64",
    "comment": object,
    "strategy": object,
    "signal_id": "Int64",
}
ORDERS = {
    "ticket": "int64",
    "time_setup": "time",
    "time_done": "time",
    "type": ORDER_TYPES,
    "state": ORDER_STATES,
    "reason": ORDER_REASONS,
    "symbol": object,
    "volume_initial": "float64",
    "volume_current": "float64",
    "price_open": "float64",
    "price_done": "float64",
    "sl": "float64",
    "tp": "float64",
    "price_stoplimit": "float64",
    "position_id": "int64",
    "comment": object,
    "strategy": object,
    "signal_id": "Int64",
}
POSITIONS = {
    "position_id": "int64",
    "symbol": object,
    "type": POSITION_TYPES,
    "volume": "float64",
    "time_open": "time",
    "time_close": "time",
    "price_open": "float64",
    "price_close": "float64",
    "net": "float64",
    "mfe": "float64",
    "mae": "float64",
    "close_reason": DEAL_REASONS,
    "strategy": object,
    "signal_id": "Int64",
}
SIGNALS = {
    "signal_id": "int64",
    "time": "time",
    "strategy": object,
    "symbol": object,
    "timeframe": object,
    "direction": object,
    "order_type": object,
    "price": "float64",
    "sl": "float64",
    "tp": "float64",
    "confidence": "float64",
    "comment": object,
    "tags": object,
    "status": object,
    "rule": object,
    "reason": object,
    "details": object,
    "volume": "float64",
    "order_ticket": "Int64",
    "retcode": "Int64",
    "position_id": "Int64",
    "trading_mode": object,
}
EQUITY = {
    "time": "time",
    "balance": "float64",
    "equity": "float64",
    "margin": "float64",
    "open_positions": "int64",
}
DAILY_EQUITY = {  # per server day: the last sample and the day's lowest equity
    "day": object,
    "time": "time",
    "balance": "float64",
    "equity": "float64",
    "equity_min": "float64",
}
# table -> (sort key, columns)
LAYOUT: dict[str, tuple[str, dict[str, Any]]] = {
    "deals": ("ticket", DEALS),
    "orders": ("ticket", ORDERS),
    "positions": ("position_id", POSITIONS),
    "signals": ("signal_id", SIGNALS),
    "equity": ("time", EQUITY),
    "daily_equity": ("day", DAILY_EQUITY),
}


def table_frame(table: str, rows: Rows) -> pd.DataFrame:
    key, spec = LAYOUT[table]
    return _frame(rows, key, spec)


# The deal columns ``compute_metrics`` reads, with their dtypes (symbol and comment: text).
METRICS_DEAL_COLUMNS: dict[str, Any] = {
    "ticket": np.int64,
    "time": np.int64,
    "symbol": object,
    "type": np.int64,
    "entry": np.int64,
    "volume": np.float64,
    "price": np.float64,
    "order": np.int64,
    "commission": np.float64,
    "swap": np.float64,
    "profit": np.float64,
    "balance": np.float64,
    "comment": object,
    "position_id": np.int64,
}


def metrics_deals(rows: Rows) -> pd.DataFrame:
    """Deals in the layout ``compute_metrics`` reads (that of ``metrics.deals_frame_from_db``)."""
    return metrics_deals_columns(
        {name: np.asarray([r[name] for r in rows], dtype=t) for name, t in METRICS_DEAL_COLUMNS.items()}
    )


def metrics_deals_columns(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """``metrics_deals`` from columns (``METRICS_DEAL_COLUMNS``, in any order of tickets)."""
    order = np.argsort(columns["ticket"], kind="stable")

    def col(name: str, dtype: str) -> pd.Series:
        return pd.Series(columns[name][order], dtype=dtype)

    return pd.DataFrame(
        {
            "time": pd.to_datetime(col("time", "int64"), unit="ns", utc=True),
            "deal": col("ticket", "int64"),
            "symbol": col("symbol", "str"),
            "type": col("type", "int64"),
            "direction": col("entry", "int64"),
            "volume": col("volume", "float64"),
            "price": col("price", "float64"),
            "order": col("order", "int64"),
            "commission": col("commission", "float64"),
            "swap": col("swap", "float64"),
            "profit": col("profit", "float64"),
            "balance": col("balance", "float64"),
            "comment": col("comment", "str"),
            "position_id": col("position_id", "int64"),
        }
    )


def metrics_equity(rows: Rows) -> pd.DataFrame:
    """Equity samples as (time UTC, equity), the layout of ``metrics.equity_frame_from_db``."""
    return metrics_equity_columns(
        np.asarray([r["time"] for r in rows], dtype=np.int64),
        np.asarray([r["equity"] for r in rows], dtype=np.float64),
    )


def metrics_equity_columns(time: np.ndarray, equity: np.ndarray) -> pd.DataFrame:
    """``metrics_equity`` from the columns (UTC ns, equity), in any order of times."""
    order = np.argsort(time, kind="stable")
    return pd.DataFrame(
        {
            "time": pd.to_datetime(pd.Series(time[order], dtype="int64"), unit="ns", utc=True),
            "equity": pd.Series(equity[order], dtype=float),
        }
    )


def funnel_from_rows(signals: Rows, deals: Rows, errors: Rows, equity: Rows) -> dict[str, Any]:
    """``results.funnel.funnel_from_db`` computed over rows in memory (same keys, same counts)."""
    tables = {"signals": signals, "deals": deals, "strategy_errors": errors, "equity": equity}

    def column(table: str, name: str) -> Sequence[Any]:
        return [r[name] for r in tables[table]]

    return funnel_from_columns(column, len(equity))


def funnel_from_columns(column: Callable[[str, str], Sequence[Any]], equity_rows: int) -> dict[str, Any]:
    """``funnel_from_rows`` over columns: ``column(table, name)`` gives one column of a table, a list or
    a column form (a ``MemorySink`` hands its blocks' forms without building rows or values), counted
    over the forms' codes (``model.columns.counts``)."""
    by = counts(column("signals", "status"), column("signals", "reason"), column("signals", "retcode"))
    status: Counter[Any] = Counter()
    rejected: Counter[Any] = Counter()
    retcode: Counter[Any] = Counter()
    for (s, r, code), n in by.items():
        status[s] += n
        retcode[code] += n
        if s == "rejected":
            rejected[r] += n
    executed = retcode[C.TRADE_RETCODE_DONE] + retcode[C.TRADE_RETCODE_PLACED]
    closed: Counter[str] = Counter()
    entry, type_, reason = (np.asarray(column("deals", k), np.int64) for k in ("entry", "type", "reason"))
    out = (entry != C.DEAL_ENTRY_IN) & ((type_ == C.DEAL_TYPE_BUY) | (type_ == C.DEAL_TYPE_SELL))
    by_comment = out.copy()  # closes whose reason is no close key: counted by their comment
    for r, key in CLOSE_KEYS.items():
        hit = out & (reason == r)
        closed[key] += int(hit.sum())
        by_comment &= ~hit
    if by_comment.any():
        comment = column("deals", "comment")
        left = int(by_comment.sum())
        for text, key in COMMENT_KEYS.items():
            k = int((by_comment & equals(comment, text)).sum())
            closed[key] += k
            left -= k
        closed["signal"] += left
    error_type = column("strategy_errors", "error_type")
    failed = Counter(
        n
        for n, e in zip(column("strategy_errors", "strategy"), error_type, strict=True)
        if e != "InvalidSignal"
    )
    return {
        "decision_points": max(equity_rows - 1, 0),  # one equity row per point, plus the end
        "signals_generated": sum(status.values()),
        "fed_to_fusion": status["to_fusion"],
        "invalid_signals": sum(1 for e in error_type if e == "InvalidSignal"),
        "approved": status["approved"] + status["resized"],
        "resized": status["resized"],
        "rejected": {k: rejected[k] for k in sorted(rejected, key=lambda k: (k is None, k or ""))},
        "executed": executed,
        "closed": {
            k: closed.get(k, 0) for k in ("sl", "tp", "signal", "end_of_run", "stop_out", "circuit_breaker")
        },
        "strategy_errors": {k: failed[k] for k in sorted(failed)},
    }
