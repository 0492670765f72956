"""Driver (b)'s records go to the sink as columns (issue 14): no row dict per deal, order, position,
signal or equity sample; and the positions table's per-position sums add as Python's ``sum`` does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Table

from mt5tester.engine.run import run
from mt5tester.results.memory import MemorySink
from mt5tester.results.rows import _group_sums
from test_drivers_differential import _config

BULK = ("deals", "orders", "positions", "signals", "equity")


class CountingSink(MemorySink):
    """A MemorySink that notes which tables were given one row at a time and which as columns."""

    def __init__(self) -> None:
        super().__init__()
        self.by_row: dict[str, int] = {}
        self.by_columns: dict[str, int] = {}
        self.inside = False  # MemorySink keeps columns as rows through add()

    def add(self, table: Table, row: dict[str, Any]) -> None:
        if not self.inside:
            self.by_row[table.name] = self.by_row.get(table.name, 0) + 1
        super().add(table, row)

    def add_columns(self, table: Table, columns: Any) -> None:
        self.by_columns[table.name] = self.by_columns.get(table.name, 0) + 1
        self.inside = True
        try:
            super().add_columns(table, columns)
        finally:
            self.inside = False


def test_kernel_run_hands_its_records_as_columns_and_they_equal_the_loops(
    demo_data: Path, tmp_path: Path
) -> None:
    cfg = _config(demo_data, tmp_path, stops=True, seeds=[1, 2])
    kernel, loop = CountingSink(), CountingSink()
    a = run(cfg, sink=kernel, driver="auto")
    b = run(cfg, sink=loop, driver="loop")
    assert a.funnel["driver"] == "kernel" and b.funnel["driver"] == "loop"
    # one row at a time only outside the kernel: the deposit (before bar 1), the end of run's closes and
    # last equity sample, the daily equity; nothing per trade
    ends = sum(d["comment"] == "end of run" for d in kernel.tables["deals"])
    assert ends == 2
    assert kernel.by_row == {"deals": 1 + ends, "equity": 1, "daily_equity": 1}
    assert set(BULK) - {"deals"} <= set(kernel.by_columns) and kernel.by_columns.get("deals") == 1
    for name in BULK:
        rows_a = [{k: v for k, v in r.items() if k != "run_id"} for r in kernel.tables[name]]
        rows_b = [{k: v for k, v in r.items() if k != "run_id"} for r in loop.tables[name]]
        assert rows_a == rows_b, name
    reasons = {d["reason"] for d in kernel.tables["deals"]}
    assert {3, 4} <= reasons  # expert and SL closes both took the columnar path


def test_group_sums_add_left_to_right_like_python_sum() -> None:
    # numpy may sum a segment in another order (blocks, unrolled); these values make the order visible
    long = [1e16, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1e16, 3.0]
    short = [0.1, 0.2, 0.3]
    pair = [-0.0, -0.0]  # Python's sum starts from 0: 0.0, not -0.0
    values = np.array(long + short + pair)
    starts, lengths = np.array([0, 10, 13]), np.array([10, 3, 2])
    got = _group_sums(values, starts, lengths)
    assert got.tolist() == [sum(long), sum(short), sum(pair)]
    assert got.tolist()[0] == 3.0 and got.tolist()[1] == 0.6000000000000001
    assert str(got[2]) == "0.0"
    assert np.add.reduceat(values, [0, len(long)])[0] != 3.0  # what a plain reduceat would have stored


def test_kernel_run_terminal_history_equals_the_loops_and_pickles(demo_data: Path, tmp_path: Path) -> None:
    """Driver (b)'s history stays arrays (terminal/history.py) until read; the terminal's read calls
    give the same records as the loop's, and the state pickles (a checkpoint) to an equal history."""
    import pickle

    from mt5tester.terminal.history import History

    cfg = _config(demo_data, tmp_path, stops=True, seeds=[1, 2])
    comps: dict[str, Any] = {}

    def keep(name: str) -> Any:
        return lambda c, _: comps.__setitem__(name, c)

    ra = run(cfg, sink=MemorySink(), driver="auto", on_start=keep("kernel"))
    rb = run(cfg, sink=MemorySink(), driver="loop", on_start=keep("loop"))
    assert ra.funnel["driver"] == "kernel"
    assert ra.funnel["margin_level_min"] is not None
    assert ra.funnel["margin_level_min"] == rb.funnel["margin_level_min"]
    a, b = comps["kernel"].server, comps["loop"].server
    assert isinstance(a.deals, History) and len(a.deals) == len(b.deals) > 3
    assert a.deals.column("profit", np.float64).tolist() == [d.profit for d in b.deals]
    state = pickle.loads(pickle.dumps(a.state))
    assert list(state.deals) == list(b.deals) and list(state.history_orders) == list(b.history_orders)
    assert list(a.deals) == list(b.deals) and list(a.history_orders) == list(b.history_orders)
    ta, tb = comps["kernel"].terminal, comps["loop"].terminal
    for name in ("history_deals_get", "history_orders_get"):
        got, want = getattr(ta, name)(0, 2**40), getattr(tb, name)(0, 2**40)
        assert got is not None and got == want, name


def test_round2_equals_python_round_on_half_cents_and_edges() -> None:
    from mt5tester.results.rows import _round2

    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            rng.normal(0, 1e3, 20_000),
            np.arange(-2_000, 2_000) / 1_000 + 0.005,  # half cents, where rint(v * 100) can differ
            [2.675, 1.005, -2.675, 0.125, 0.135, -0.001, 0.0, -0.0, 1e20, -1e17, np.inf, -np.inf],
        ]
    )
    got = _round2(values)
    want = [round(v, 2) for v in values.tolist()]
    assert [np.copysign(1.0, v) for v in got] == [np.copysign(1.0, v) for v in want]
    assert got == want


def test_a_run_without_signals_uses_the_compiled_loop_of_a_run_with_them(
    demo_data: Path, tmp_path: Path
) -> None:
    """The kernel's arrays keep their memory layout whatever the number of signals (a one-row array is
    both C- and F-contiguous and numba types it C): no second specialisation of the compiled loop, which
    cost ~10 s of compiling on a fresh cache for a run that never signals."""
    from mt5tester.engine import kernel

    a = run(_config(demo_data, tmp_path / "a", density=0.3), sink=MemorySink())
    assert a.funnel["driver"] == "kernel" and a.funnel["signals_generated"] > 0
    before = set(kernel.run_points.signatures)
    b = run(_config(demo_data, tmp_path / "b", density=0.0), sink=MemorySink())
    assert b.funnel["driver"] == "kernel" and b.funnel["signals_generated"] == 0
    assert set(kernel.run_points.signatures) == before
