"""The optimizer's sink: writes nothing, keeps only what a pass's metrics and robustness numbers need.

A pass of an optimization is worth one row (its params and metrics), not the thousands of signal, order
and position rows a stored run has. ``MetricsSink`` keeps the deals (the MT5 metrics are computed from
them) and the equity samples (drawdowns, daily returns), and drops every other record as it arrives.
It keeps them as they come: the compiled kernel's columns stay columns (no row dict per deal), rows
added one by one stay rows, in arrival order. ``metrics`` computes the MT5 metrics from the columns
(``results.metrics.compute_metrics``, the one implementation: equal to a stored run's);
``curve`` and ``trade_pnl`` reduce them further to what the trial row stores, vectorised over the deals.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Table

from mt5tester.model import constants as C
from mt5tester.model.columns import Chained, Const
from mt5tester.results import frames
from mt5tester.results.metrics import Mt5Metrics, compute_metrics

KEPT = ("deals", "equity")
NS_PER_DAY = 86_400 * 10**9

Part = list[dict[str, Any]] | dict[str, Sequence[Any]]  # rows added one by one, or one add_columns call


class MetricsSink:
    """The Sink interface (results/sink.py) for optimizer passes; ``rows`` serves ``RunResult``."""

    kept_tables = frozenset(KEPT)  # the engine builds no other rows for it (results.sink.keeps)

    def __init__(self, run_id: str = "") -> None:
        self.run_id = run_id
        self._parts: dict[str, list[Part]] = {name: [] for name in KEPT}
        self._rows: dict[str, list[dict[str, Any]]] = {}  # rows() of a table, until the next add
        self.started_at: str | None = None
        self.status: str | None = None
        self.error: str | None = None

    def start_run(
        self,
        config: dict[str, Any],
        config_hash: str,
        seed: int,
        deposit: float,
        currency: str,
        strategies: list[dict[str, Any]],
        health: list[dict[str, Any]] | None = None,
        then: Callable[[Any], object] | None = None,
    ) -> None:
        self.started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

    def add(self, table: Table, row: dict[str, Any]) -> None:
        parts = self._parts.get(table.name)
        if parts is None:
            return
        self._rows.pop(table.name, None)
        if not parts or not isinstance(parts[-1], list):
            parts.append([])
        rows = parts[-1]
        assert isinstance(rows, list)
        rows.append(row)

    def add_columns(self, table: Table, columns: Mapping[str, Sequence[Any]]) -> None:
        """The compiled kernel's rows, column by column: kept as they are, only for the kept tables."""
        parts = self._parts.get(table.name)
        if parts is None or not columns:
            return
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"{table.name}: columns of different lengths {sorted(lengths)}")
        if lengths.pop():
            self._rows.pop(table.name, None)
            parts.append(dict(columns))

    def flush(self, then: Callable[[Any], object] | None = None) -> None:
        """Nothing to write (a pass is not resumable on its own: the study resumes by pass)."""

    def finish(
        self,
        status: str,
        funnel: dict[str, Any] | None,
        error: str | None,
        timings: dict[str, float] | None = None,
    ) -> None:
        self.status, self.error = status, error

    # -- reading ----------------------------------------------------------------------------------------
    def rows(self, table: str) -> list[dict[str, Any]]:
        """The kept rows of ``table`` as dicts, in arrival order (built from the columns on first use)."""
        if table not in self._parts:
            return []
        out = self._rows.get(table)
        if out is None:
            out = []
            for part in self._parts[table]:
                if isinstance(part, list):
                    out.extend(part)
                else:
                    plain = {k: v.tolist() if hasattr(v, "tolist") else list(v) for k, v in part.items()}
                    out.extend(dict(zip(plain, vs, strict=True)) for vs in zip(*plain.values(), strict=True))
            self._rows[table] = out
        return out

    def column(self, table: str, name: str) -> list[Any]:
        """One column of ``table`` over its kept rows, in arrival order, without building the rows."""
        out: list[Any] = []
        for part in self._parts.get(table, []):
            if isinstance(part, list):
                out.extend(r.get(name) for r in part)
            else:
                v = part.get(name)
                n = len(next(iter(part.values())))
                out.extend([None] * n if v is None else v.tolist() if hasattr(v, "tolist") else v)
        return out

    def form(self, table: str, name: str) -> Sequence[Any]:
        """One column of the kept ``table`` as its parts hold it (the kernel's arrays and column forms,
        chained), for the funnel's counts: no Python value per row built."""
        parts: list[Sequence[Any]] = []
        for part in self._parts.get(table, []):
            if isinstance(part, list):
                parts.append([r.get(name) for r in part])
            else:
                v = part.get(name)
                parts.append(Const(None, len(next(iter(part.values())))) if v is None else v)
        return parts[0] if len(parts) == 1 else Chained(parts)

    def count(self, table: str) -> int:
        return sum(
            len(p) if isinstance(p, list) else len(next(iter(p.values()))) for p in self._parts.get(table, [])
        )

    def columns(self, table: str, names: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Columns ``names`` ({name: numpy dtype}) of the kept ``table``, in arrival order; a column a
        row or a part lacks reads None there (numeric dtypes need it present)."""
        chunks: dict[str, list[np.ndarray]] = {n: [] for n in names}
        for part in self._parts.get(table, []):
            for name, dtype in names.items():
                if isinstance(part, list):
                    values: Sequence[Any] = [r.get(name) for r in part]
                else:
                    got = part.get(name)
                    values = got if got is not None else [None] * len(next(iter(part.values())))
                chunks[name].append(np.asarray(values, dtype=dtype))
        return {n: np.concatenate(c) if c else np.empty(0, dtype=names[n]) for n, c in chunks.items()}

    def metrics(self, deposit: float, margin_level_min: float | None = None) -> Mt5Metrics:
        """The MT5 report metrics of the pass (``compute_metrics`` on the deals and equity columns; the
        same values as ``RunResult.metrics`` of the same run)."""
        deals = self.columns("deals", frames.METRICS_DEAL_COLUMNS)
        equity = self.columns("equity", {"time": np.int64, "equity": np.float64})
        return compute_metrics(
            frames.metrics_deals_columns(deals),
            deposit,
            frames.metrics_equity_columns(equity["time"], equity["equity"]),
            margin_level_min,
        )

    def curve(self, deposit: float) -> list[list[float]]:
        """Equity at the end of each UTC day that has a sample, as [day start ns, equity], after a first
        point [first day ns, deposit]: the daily series the deflated Sharpe, PBO and the stitched
        walk-forward curve are built from. A sample at 00:00 closes the day before."""
        eq = self.columns("equity", {"time": np.int64, "equity": np.float64})
        if not len(eq["time"]):
            return []
        order = np.argsort(eq["time"], kind="stable")
        t, e = eq["time"][order], eq["equity"][order]
        keys = np.concatenate(([t[0] // NS_PER_DAY * NS_PER_DAY], -(-t // NS_PER_DAY) * NS_PER_DAY))
        values = np.concatenate(([float(deposit)], e))
        last = np.append(keys[1:] != keys[:-1], True)  # the last value of each run of equal days
        return [[float(k), float(v)] for k, v in zip(keys[last].tolist(), values[last].tolist(), strict=True)]

    def trade_pnl(self) -> list[float]:
        """Net result (profit + commission + swap) of each closed position, in closing order (the ticket
        of its first exit deal): what the Monte Carlo of trade order and of skipped trades reshuffles.
        Each position's net is summed deal after deal in ticket order, as a running Python sum would."""
        d = self.columns(
            "deals",
            {
                "ticket": np.int64,
                "type": np.int64,
                "entry": np.int64,
                "position_id": np.int64,
                "profit": np.float64,
                "commission": np.float64,
                "swap": np.float64,
            },
        )
        order = np.argsort(d["ticket"], kind="stable")
        trade = np.isin(d["type"][order], (C.DEAL_TYPE_BUY, C.DEAL_TYPE_SELL))
        idx = order[trade]
        if not len(idx):
            return []
        pid = d["position_id"][idx]
        positions, slot = np.unique(pid, return_inverse=True)
        # rank of each deal within its position (deals are in ticket order): the running sum goes rank
        # by rank, so every position adds its deals in the same order as a loop over the deals would
        by_pos = np.argsort(slot, kind="stable")
        starts = np.searchsorted(slot[by_pos], np.arange(len(positions)))
        rank = np.empty(len(idx), np.int64)
        rank[by_pos] = np.arange(len(idx)) - np.repeat(starts, np.bincount(slot, minlength=len(positions)))
        net = np.zeros(len(positions))
        profit, commission, swap = d["profit"][idx], d["commission"][idx], d["swap"][idx]
        for r in range(int(rank.max()) + 1):
            at = rank == r
            s = slot[at]
            net[s] = net[s] + profit[at] + commission[at] + swap[at]
        exits = np.flatnonzero(d["entry"][idx] != C.DEAL_ENTRY_IN)
        _, first_exit = np.unique(slot[exits], return_index=True)
        closing = slot[exits[np.sort(first_exit)]]
        return [round(v, 2) for v in net[closing].tolist()]
