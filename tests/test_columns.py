"""model/columns.py: column forms that hold a table's column as codes, masks and numbers read back as
the very Python values a list would hold; the history and the records keep them without joining or
materialising them (the memory of a run of millions of bars)."""

from __future__ import annotations

import pickle
from collections import Counter
from types import SimpleNamespace

import numpy as np

from mt5tester.engine.attribution import Attribution
from mt5tester.model.columns import Chained, Coded, Const, Labels, Masked, counts, equals
from mt5tester.model.trade import Order
from mt5tester.results import db
from mt5tester.results.memory import MemorySink
from mt5tester.results.rows import order_columns
from mt5tester.terminal.history import Block, History


def test_column_forms_read_as_their_lists_of_python_values() -> None:
    coded = Coded(np.array([1, 0, 1, 2]), ["a", "b", None])
    masked = Masked(np.array([7, 0, 9]), np.array([True, False, True]))
    labels = Labels("signal ", np.array([3, 3, 12, 0]), {3: "[sl 1.09950]"})
    const = Const(0.0, 3)
    chained = Chained([np.array([1, 2]), [3], Const(4, 2), np.zeros(0, np.int64)])
    assert coded.tolist() == ["b", "a", "b", None]
    assert masked.tolist() == [7, None, 9]
    assert type(masked.tolist()[0]) is int
    assert labels.tolist() == ["signal 3", "signal 3", "signal 12", "[sl 1.09950]"]
    assert const.tolist() == [0.0, 0.0, 0.0]
    assert chained.tolist() == [1, 2, 3, 4, 4]
    assert type(chained.tolist()[0]) is int
    # item by item, as a list reads
    assert (coded[3], masked[1], masked[2], labels[3], labels[2], chained[2], chained[-1]) == (
        None, None, 9, "[sl 1.09950]", "signal 12", 3, 4
    )  # fmt: skip
    assert coded[1:3] == ["a", "b"] and list(masked) == [7, None, 9] and len(chained) == 5
    assert coded == ["b", "a", "b", None] and labels == Labels(
        "signal ", np.array([3, 3, 12, 0]), {3: "[sl 1.09950]"}
    )
    # numpy reads them as arrays (the optimizer's metrics sink)
    assert np.asarray(chained, np.int64).tolist() == [1, 2, 3, 4, 4]
    assert np.asarray(coded, object).tolist() == ["b", "a", "b", None]
    assert np.asarray(Masked(np.array([1.5, 2.0]), np.array([True, False])), np.float64)[0] == 1.5
    # they pickle with a checkpoint or a result
    for col in (coded, masked, labels, const, chained):
        assert pickle.loads(pickle.dumps(col)).tolist() == col.tolist()


def test_counts_and_equals_over_forms_are_the_counts_of_their_values() -> None:
    # The funnel counts a run's records over their codes (results/frames.py): the very counts
    # Counter(zip(...)) gives over the Python values, names repeated or None, forms chained with lists.
    status = Coded(np.array([1, 0, 1, 2, 1], np.int8), ["rejected", "approved", "approved"])
    reason = Coded(np.array([0, 3, 0, 0, 0]), [None, "a", "b", "max_positions"])
    retcode = Masked(np.array([10009, 0, 10009, 10009, 10008]), np.array([True, False, True, True, True]))
    tickets = np.array([5, 5, 7, 9, 5], np.int64)
    texts = ["x", None, "x", "y", "x"]
    cols = (status, reason, retcode, tickets, texts, Const("market", 5))
    assert counts(*cols) == Counter(zip(*(list(c) for c in cols), strict=True))
    assert counts(status)[("approved",)] == 4
    chained = Chained([Coded(np.array([0, 1]), ["a", "b"]), ["b", None], Const("a", 2), np.array([3])])
    assert counts(chained) == Counter((v,) for v in chained.tolist())
    labels = Labels("signal ", np.array([3, 12, 12, 0]), {3: "end of run", 1: "signal 3"})
    for text in ("signal 12", "signal 3", "end of run", "signal 012", "signal", "sig", ""):
        assert equals(labels, text).tolist() == [v == text for v in labels.tolist()], text
    both = Chained([labels, ["end of run"], Coded(np.array([0, 1]), ["end of run", "x"])])
    assert equals(both, "end of run").tolist() == [v == "end of run" for v in both.tolist()]
    assert equals(retcode, None).tolist() == [False, True, False, False, False]
    # more combinations than one integer codes (5,000 x 5,000 distinct values): counted value by value
    a, b = np.arange(5000), np.arange(5000)[::-1] % 4999
    assert counts(a, b) == Counter(zip(a.tolist(), b.tolist(), strict=True))


def _order(ticket: int, comment: str) -> Order:
    return Order(ticket, "EURUSD", 0, 1.0, 0.0, 1.1, 0.0, 0.0, 0.0, 60 * ticket, 0, 0, 0, 4, 60 * ticket,
                 770_000, ticket, 0, 3, comment, 1.1)  # fmt: skip


def _orders_block(tickets: list[int]) -> Block[Order]:
    t = np.array(tickets, np.int64)
    n = len(t)
    return Block(
        Order,
        {
            "ticket": t, "symbol": Coded(np.zeros(n, np.int64), ["EURUSD"]), "type": np.zeros(n, np.int64),
            "volume_initial": np.ones(n), "volume_current": 0.0, "price_open": np.full(n, 1.1), "sl": 0.0,
            "tp": 0.0, "price_stoplimit": 0.0, "time_setup": 60 * t, "type_time": 0, "type_filling": 0,
            "time_expiration": 0, "state": 4, "time_done": 60 * t, "magic": 770_000, "position_id": t.copy(),
            "position_by_id": 0, "reason": 3, "comment": Labels("signal ", t), "price_done": np.full(n, 1.1),
        },
        n,
    )  # fmt: skip


def test_history_block_of_column_forms_builds_the_records_and_hands_its_parts_unjoined() -> None:
    h: History[Order] = History()
    block = _orders_block([1, 2, 3])
    h.add_block(block)
    h.append(_order(4, "end of run"))
    assert h.column("comment") == ["signal 1", "signal 2", "signal 3", "end of run"]
    assert h.column("symbol") == ["EURUSD"] * 4
    parts = h.parts("ticket", np.int64)
    assert parts[0] is block.fields["ticket"] and parts[1].tolist() == [4]  # the block's own array
    assert [p.tolist() for p in h.parts("sl", np.float64)] == [[0.0, 0.0, 0.0], [0.0]]
    # the records built from the forms are the records a list would hold
    assert list(h) == [
        _order(1, "signal 1"),
        _order(2, "signal 2"),
        _order(3, "signal 3"),
        _order(4, "end of run"),
    ]


def test_orders_table_over_a_block_and_later_orders_is_chained_not_copied() -> None:
    h: History[Order] = History()
    block = _orders_block([1, 2, 3])
    h.add_block(block)
    h.append(_order(4, "end of run"))
    server = SimpleNamespace(history_orders=h, orders=[])
    owner = Attribution({770_000: "s"})
    owner.learn(np.array([1, 2, 3]), ["s"], np.zeros(3, np.int64), np.array([5, 6, 7]), (0, 3))
    state = SimpleNamespace(history_orders=h, orders=[])
    cols = order_columns(server, lambda t: owner.order(state, t), lambda t: owner.orders(state, t))  # type: ignore[arg-type]
    assert isinstance(cols["ticket"], Chained) and cols["ticket"].parts[0] is block.fields["ticket"]
    assert cols["ticket"].tolist() == [1, 2, 3, 4]
    assert cols["comment"].tolist() == ["signal 1", "signal 2", "signal 3", "end of run"]
    assert cols["sl"].tolist() == [0.0] * 4
    assert cols["strategy"].tolist() == ["s", "s", "s", "s"]
    assert cols["signal_id"].tolist() == [5, 6, 7, None]  # order 4 names no signal: None, kept as a mask
    # a sink's rows: the same dicts as a list per column gives
    sink, plain = MemorySink("r"), MemorySink("r")
    sink.add_columns(db.orders, cols)
    plain.add_columns(
        db.orders, {k: (v.tolist() if hasattr(v, "tolist") else list(v)) for k, v in cols.items()}
    )
    assert sink.rows("orders") == plain.rows("orders")
    assert sink.rows("orders")[3]["signal_id"] is None and sink.rows("orders")[0]["signal_id"] == 5


def test_attribution_orders_codes_strategies_and_masks_unknown_signals() -> None:
    owner = Attribution({770_000: "a", 770_001: "b"}, default="script")
    owner.learn(np.array([10, 11]), ["a", "b"], np.array([0, 1]), np.array([1, 2]))
    owner.learn(np.array([12]), ["a"], np.array([0]), np.array([3]))
    state = SimpleNamespace(history_orders=[], orders=[])
    strategy, signal_id = owner.orders(state, np.array([10, 11, 12]))  # type: ignore[arg-type]
    assert isinstance(strategy, Coded) and strategy.tolist() == ["a", "b", "a"]
    assert isinstance(signal_id, np.ndarray) and signal_id.tolist() == [1, 2, 3]
    # ticket 13 is no one's: the default owner, no signal (None), after names seen twice
    strategy, signal_id = owner.orders(state, np.array([10, 11, 12, 13]))  # type: ignore[arg-type]
    assert strategy.tolist() == ["a", "b", "a", "script"]
    assert isinstance(signal_id, Masked) and signal_id.tolist() == [1, 2, 3, None]
