"""terminal/history.py: the terminal's history keeps the compiled driver's records as arrays and
behaves as the list of records it replaces."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from mt5tester.model.trade import Deal
from mt5tester.terminal.history import Block, History


def _deal(ticket: int, profit: float = 0.0, comment: str = "") -> Deal:
    return Deal(ticket, ticket + 100, 1_000 * ticket, 0, 0, 3, ticket, "EURUSD", 1.0, 1.1, 0.0, 0.0, profit,
                10_000.0 + profit, comment, 770_000)  # fmt: skip


def _block(tickets: list[int]) -> Block[Deal]:
    t = np.array(tickets, np.int64)
    n = len(t)
    return Block(
        Deal,
        {
            "ticket": t, "order": t + 100, "time": 1_000 * t, "type": 0, "entry": 0, "reason": 3,
            "position_id": t.copy(), "symbol": "EURUSD", "volume": 1.0, "price": np.full(n, 1.1),
            "commission": 0.0, "swap": 0.0, "profit": t * 0.5, "balance": 10_000.0 + t * 0.5,
            "comment": [f"signal {k}" for k in tickets], "magic": 770_000,
        },
        n,
    )  # fmt: skip


def _expected(tickets: list[int]) -> list[Deal]:
    return [_deal(k, k * 0.5, f"signal {k}") for k in tickets]


def test_history_block_then_append_reads_as_the_list_of_records() -> None:
    h: History[Deal] = History([_deal(1)])
    h.add_block(_block([2, 3, 4]))
    h.append(_deal(5))
    assert len(h) == 5
    assert h[-1] == _deal(5) and h[4] == _deal(5)  # the newest records are read without building the block
    assert h.column("ticket", np.int64).tolist() == [1, 2, 3, 4, 5]
    assert h.column("comment") == ["", "signal 2", "signal 3", "signal 4", ""]
    assert h.column("profit", np.float64).tolist() == [0.0, 1.0, 1.5, 2.0, 0.0]
    assert next(d for d in reversed(h) if d.ticket == 5) == _deal(5)
    assert list(h) == [_deal(1), *_expected([2, 3, 4]), _deal(5)]
    assert h[1] is h[1]  # built once, in place
    assert h[1:3] == _expected([2, 3])
    assert h == [_deal(1), *_expected([2, 3, 4]), _deal(5)]
    with pytest.raises(IndexError):
        h[5]


def test_history_reversed_is_every_record_newest_first_without_copying_the_list() -> None:
    plain: History[Deal] = History([_deal(1), _deal(2)])
    plain.append(_deal(3))
    it = reversed(plain)
    assert next(it) == _deal(3)
    plain.append(_deal(4))  # appended while a lookup walks down: the walk goes on from where it was
    assert list(it) == [_deal(2), _deal(1)]
    mixed: History[Deal] = History([_deal(1)])
    mixed.add_block(_block([2, 3]))
    mixed.append(_deal(4))
    assert list(reversed(mixed)) == [_deal(4), *_expected([3, 2]), _deal(1)]


def test_history_pickles_its_blocks_as_arrays_and_restores_equal() -> None:
    h: History[Deal] = History([_deal(1)])
    h.add_block(_block([2, 3]))
    back = pickle.loads(pickle.dumps(h))
    assert isinstance(back, History)
    assert len(back) == 3
    assert back == [_deal(1), *_expected([2, 3])]


def test_block_fields_out_of_the_records_order_are_refused() -> None:
    with pytest.raises(ValueError, match="not"):
        Block(Deal, {"order": np.zeros(1, np.int64), "ticket": np.zeros(1, np.int64)}, 1)
