"""Who traded: every order, deal and position of a run attributed to a strategy and a signal, read back
from what the trade server records, as a live EA's journal reads its account history.

The trade server knows MT5's fields only (``send(state, request)`` is its whole input). The engine sends
each approved signal with the strategy's ``magic`` and ``"signal <id>"`` as the ``comment``; the router
also notes the tickets of orders a strategy sends itself through its terminal (it knows who was being
called, as an EA knows its own tickets). From those:

- an order is the noted sender's; else the strategy of its magic with the signal of its comment; a server
  order (SL, TP, stop-out) or a close the magic does not name is its position's; a stop-limit's limit
  order is the stop-limit's; anything else belongs to ``default`` (a script run: the script), recorded
  with its own magic and comment, never dropped;
- a deal that opens, adds or reverses is its order's; a deal that closes is its position's;
- a position is the order's that opened it (its identifier is that order's ticket, spec 2.4).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mt5tester.model import constants as C
from mt5tester.model.columns import Coded, Masked, narrow
from mt5tester.model.trade import Deal, Order
from mt5tester.terminal.state import TradeState

Owner = tuple[str, int | None]  # (strategy name, signal id)

MAGIC_BASE = 770_000  # magic of the strategy at index si: MAGIC_BASE + si, stored with the run
_SERVER_REASONS = (C.ORDER_REASON_SL, C.ORDER_REASON_TP, C.ORDER_REASON_SO)
_NOBODY: Owner = ("", None)


def magic_of(si: int) -> int:
    return MAGIC_BASE + si


def signal_of(comment: str) -> int | None:
    """The signal id in a request's comment ("signal 12"), as an EA reads it back; None otherwise."""
    head, _, number = comment.partition(" ")
    return int(number) if head == "signal" and number.isdigit() else None


class Attribution:
    """Owners of the orders of one account, computed once per order ticket and kept.

    ``magic`` maps the run's magic numbers to strategy names; ``sent`` holds the tickets of orders a
    strategy sent itself (the only part that is not in the server's records: the checkpoint stores it).
    """

    def __init__(self, magic: dict[int, str], default: str = "") -> None:
        self.magic = magic
        self.default = default
        self.sent: dict[int, Owner] = {}
        self._owner: dict[int, Owner] = {}
        self._orders: dict[int, Order] = {}
        self._indexed = 0  # history orders indexed so far (the history only grows)
        # owners learned as arrays (the compiled driver's orders): (tickets ascending, names, index of
        # each ticket's name, signal ids)
        self._columns: list[tuple[np.ndarray, list[str], np.ndarray, np.ndarray]] = []

    def reset(self, sent: dict[int, Owner]) -> None:
        """Start over on a restored state (a resumed run), with the noted senders of the checkpoint."""
        self.sent = dict(sent)
        self._owner, self._orders, self._indexed, self._columns = {}, {}, 0, []

    def note(self, ticket: int, strategy: str, signal_id: int | None = None) -> None:
        """Order ``ticket`` was sent by ``strategy`` itself (for ``signal_id``, when it was reviewed)."""
        if ticket:
            self.sent[ticket] = (strategy, signal_id)

    def learn(
        self, tickets: np.ndarray, names: list[str], who: np.ndarray, signal_ids: np.ndarray,
        history: tuple[int, int] | None = None,
    ) -> None:  # fmt: skip
        """Owners of orders already resolved by their maker (the compiled driver knows each order's
        strategy and signal), as arrays: order ``tickets[k]`` (ascending) is ``names[who[k]]``'s, for
        signal ``signal_ids[k]``; the records need not look them up one by one. ``history`` (first,
        end): the history orders [first, end) are all among them, so a later look-up need not index
        them (nor build their objects: terminal/history.py)."""
        if len(tickets):
            self._columns.append((tickets, names, who, signal_ids))
        if history is not None and self._indexed == history[0]:
            self._indexed = history[1]

    def _learned(self, ticket: int) -> Owner | None:
        for tickets, names, who, sids in self._columns:
            k = int(np.searchsorted(tickets, ticket))
            if k < len(tickets) and int(tickets[k]) == ticket:
                return names[int(who[k])], int(sids[k])
        return None

    def orders(self, state: TradeState, tickets: np.ndarray) -> tuple[Coded, Any]:
        """``order`` of every ticket, as columns: the strategies coded (``Coded``) and the signal ids,
        an array when every one is known, else ``Masked`` (None where an order has no signal). The
        learned arrays are read at once; the others are looked up one by one."""
        n = len(tickets)
        for known, block_names, block_who, block_sid in self._columns[:1]:
            if len(known) == n and (known is tickets or np.array_equal(known, tickets)):
                return Coded(block_who, block_names), block_sid  # the learned columns themselves
        who = np.full(n, -1, np.int64)
        sid = np.zeros(n, np.int64)
        names: list[str] = []
        for known, block_names, block_who, block_sid in self._columns:
            at = np.minimum(np.searchsorted(known, tickets), len(known) - 1)
            hit = (known[at] == tickets) & (who < 0)
            who[hit] = block_who[at[hit]] + len(names)
            sid[hit] = block_sid[at[hit]]
            names.extend(block_names)
        rest = np.flatnonzero(who < 0).tolist()
        if not rest:
            return Coded(narrow(who, len(names)), names), sid
        present = np.ones(n, np.bool_)
        code: dict[str, int] = {}
        for k, name in enumerate(names):
            code.setdefault(name, k)
        for k in rest:
            strategy, signal_id = self.order(state, int(tickets[k]))
            if strategy not in code:
                code[strategy] = len(names)
                names.append(strategy)
            who[k] = code[strategy]
            if signal_id is None:
                present[k] = False
            else:
                sid[k] = signal_id
        return Coded(narrow(who, len(names)), names), Masked(sid, present)

    def order(self, state: TradeState, ticket: int) -> Owner:
        known = self._owner.get(ticket)
        if known is not None:
            return known
        known = self._learned(ticket)
        if known is not None:
            return known
        o = self._find(state, ticket)
        if o is None:
            return (self.default, None)
        owner = self._resolve(state, o)
        self._owner[ticket] = owner
        return owner

    def position(self, state: TradeState, identifier: int) -> Owner:
        return self.order(state, identifier)

    def deal(self, state: TradeState, d: Deal) -> Owner:
        if d.type not in (C.DEAL_TYPE_BUY, C.DEAL_TYPE_SELL):
            return _NOBODY  # balance operations (the deposit) belong to no strategy
        if d.entry in (C.DEAL_ENTRY_IN, C.DEAL_ENTRY_INOUT):
            return self.order(state, d.order)
        return self.position(state, d.position_id)

    def _find(self, state: TradeState, ticket: int) -> Order | None:
        history = state.history_orders
        while self._indexed < len(history):
            o = history[self._indexed]
            self._orders[o.ticket] = o
            self._indexed += 1
        found = self._orders.get(ticket)
        if found is None:
            found = next((o for o in state.orders if o.ticket == ticket), None)
        return found

    def _resolve(self, state: TradeState, o: Order) -> Owner:
        if o.ticket in self.sent:
            return self.sent[o.ticket]
        if o.origin:
            return self.order(state, o.origin)
        closing = bool(o.position_id) and o.position_id != o.ticket
        if o.reason in _SERVER_REASONS:
            return self.position(state, o.position_id)
        strategy = self.magic.get(o.magic)
        if strategy is None:  # a magic the run did not hand out: a script's order, or a close of its
            return self.position(state, o.position_id) if closing else (self.default, None)
        signal_id = signal_of(o.comment)
        if signal_id is None and closing:  # a close the comment does not tie to a signal (circuit breaker)
            signal_id = self.position(state, o.position_id)[1]
        return strategy, signal_id
