"""The optimizer's sink: writes nothing, keeps only what a pass's metrics and robustness numbers need.

A pass of an optimization is worth one row (its params and metrics), not the thousands of signal, order
and position rows a stored run has. ``MetricsSink`` keeps the deals (the MT5 metrics are computed from
them) and the equity samples (drawdowns, daily returns), and drops every other record as it arrives.
``curve`` and ``trade_pnl`` reduce them further to what the trial row stores.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table

from mt5tester.model import constants as C

KEPT = ("deals", "equity")
NS_PER_DAY = 86_400 * 10**9


class MetricsSink:
    """The Sink interface (results/sink.py) for optimizer passes; ``rows`` serves ``RunResult``."""

    def __init__(self, run_id: str = "") -> None:
        self.run_id = run_id
        self.tables: dict[str, list[dict[str, Any]]] = {name: [] for name in KEPT}
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
        kept = self.tables.get(table.name)
        if kept is not None:
            kept.append(row)

    def add_columns(self, table: Table, columns: Mapping[str, Sequence[Any]]) -> None:
        """The compiled kernel's rows, column by column: kept as row dicts only for the kept tables."""
        kept = self.tables.get(table.name)
        if kept is None or not columns:
            return
        plain = {k: v.tolist() if hasattr(v, "tolist") else list(v) for k, v in columns.items()}
        kept.extend(dict(zip(plain, values, strict=True)) for values in zip(*plain.values(), strict=True))

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

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.tables.get(table, [])

    def curve(self, deposit: float) -> list[list[float]]:
        """Equity at the end of each UTC day that has a sample, as [day start ns, equity], after a first
        point [first day ns, deposit]: the daily series the deflated Sharpe, PBO and the stitched
        walk-forward curve are built from."""
        rows = sorted(self.tables["equity"], key=lambda r: r["time"])
        if not rows:
            return []
        out: list[list[float]] = [[float(rows[0]["time"] // NS_PER_DAY * NS_PER_DAY), float(deposit)]]
        for r in rows:
            end_of_day = -(-r["time"] // NS_PER_DAY) * NS_PER_DAY  # a sample at 00:00 closes the day before
            if out[-1][0] == end_of_day:
                out[-1][1] = float(r["equity"])
            else:
                out.append([float(end_of_day), float(r["equity"])])
        return out

    def trade_pnl(self) -> list[float]:
        """Net result (profit + commission + swap) of each closed position, in closing order: what the
        Monte Carlo of trade order and of skipped trades reshuffles."""
        net: dict[int, float] = {}
        closed: list[int] = []
        for d in sorted(self.tables["deals"], key=lambda r: r["ticket"]):
            if d["type"] not in (C.DEAL_TYPE_BUY, C.DEAL_TYPE_SELL):
                continue
            pid = int(d["position_id"])
            net[pid] = net.get(pid, 0.0) + float(d["profit"]) + float(d["commission"]) + float(d["swap"])
            if d["entry"] != C.DEAL_ENTRY_IN and pid not in closed:
                closed.append(pid)
        return [round(net[p], 2) for p in closed]
