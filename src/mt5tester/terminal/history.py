"""The terminal's history (deals, history orders) as a list whose parts may still be the compiled
driver's arrays: ``Deal``/``Order`` objects are built only when a caller reads them (ARCHITECTURE 6:
structures are built only when a caller asks).

``History`` behaves as the list it replaces (len, index, iterate, append, compare, pickle): reading an
item of a block of arrays turns that block into objects once, in place, so an object read twice is
the same object. ``column(name)`` reads one field over every item without building any, which is how
the records (results/rows.py) and the run's counters read a run of a million bars. A checkpoint
pickles the blocks as arrays.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, repeat
from typing import Any, Generic, SupportsIndex, TypeVar, overload

import numpy as np

from mt5tester.model.columns import Const, is_column

T = TypeVar("T")


class Block(Generic[T]):
    """``n`` records of type ``kind`` given field by field: an array or list per field, or one value
    for all (a scalar). Every field of ``kind``'s constructor up to the last one given, in order."""

    def __init__(self, kind: type[T], fields: dict[str, Any], n: int) -> None:
        order = [f.name for f in dataclasses.fields(kind)][: len(fields)]  # type: ignore[arg-type]
        if list(fields) != order:
            raise ValueError(f"{kind.__name__} block: fields {list(fields)} are not {order}")
        self.kind, self.fields, self.n = kind, fields, n

    def column(self, name: str) -> Any:
        v = self.fields[name]
        if isinstance(v, np.ndarray | list) or is_column(v):
            return v
        return np.full(self.n, v) if isinstance(v, int | float) else [v] * self.n

    def part(self, name: str) -> Any:
        """Field ``name`` as held: an array, a list or a column form (model/columns.py); one value for
        all as ``Const`` (no array of n copies of it)."""
        v = self.fields[name]
        return v if isinstance(v, np.ndarray | list) or is_column(v) else Const(v, self.n)

    def build(self) -> list[T]:
        def values(v: Any) -> Iterable[Any]:
            if isinstance(v, np.ndarray) or is_column(v):
                return v.tolist()
            return v if isinstance(v, list) else repeat(v, self.n)

        return list(map(self.kind, *(values(v) for v in self.fields.values())))


class History(Sequence[T]):
    """A list of records in parts: lists of objects and blocks of arrays, in order (see the module)."""

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._parts: list[list[T] | Block[T]] = [list(items)]
        self._blocked = 0  # records in blocks (len is asked once per deal by the journal)

    # ------------------------------------------------------------------------------ the arrays
    def add_block(self, block: Block[T]) -> None:
        """Records made by the compiled driver, appended after every record so far."""
        if block.n:
            self._parts.append(block)
            self._blocked += block.n

    def column(self, name: str, dtype: Any = None) -> Any:
        """Field ``name`` of every record in order: a numpy array of ``dtype``, or a list without one. A
        history that is one block hands out that block's own array or list (read-only: not a copy)."""
        parts = [p for p in self._parts if (p.n if isinstance(p, Block) else len(p))]
        if len(parts) == 1 and isinstance(parts[0], Block):  # one block: its own array or list, shared
            only = parts[0].column(name)
            if dtype is None:
                return only if isinstance(only, list) else only.tolist()
            if isinstance(only, np.ndarray) and only.dtype == np.dtype(dtype):
                return only
        cols = [p.column(name) if isinstance(p, Block) else [getattr(x, name) for x in p] for p in parts]
        if dtype is None:
            return list(chain.from_iterable(c if isinstance(c, list) else c.tolist() for c in cols))
        return np.concatenate([np.asarray(c, dtype) for c in cols]) if cols else np.zeros(0, dtype)

    def parts(self, name: str, dtype: Any = None) -> list[Any]:
        """Field ``name`` of every record, part by part, without joining them (a table's column over
        the compiled driver's block and the records after it: ``Chained``): a block's own array, list or
        column form, and the records of a list part as an array of ``dtype`` (a list without one)."""
        out: list[Any] = []
        for p in self._parts:
            if isinstance(p, Block):
                if p.n:
                    v = p.part(name)
                    typed = dtype is not None and isinstance(v, np.ndarray) and v.dtype != np.dtype(dtype)
                    out.append(v.astype(dtype) if typed else v)
            elif p:
                values = [getattr(x, name) for x in p]
                out.append(values if dtype is None else np.array(values, dtype))
        return out

    def _objects(self) -> list[T]:
        """Every record as an object: the blocks are built once, in place."""
        if len(self._parts) > 1 or isinstance(self._parts[0], Block):
            items: list[T] = []
            for p in self._parts:
                items.extend(p.build() if isinstance(p, Block) else p)
            self._parts, self._blocked = [items], 0
        first = self._parts[0]
        assert isinstance(first, list)
        return first

    # ------------------------------------------------------------------------------ the list
    def __len__(self) -> int:
        if len(self._parts) == 1:
            return self._blocked or len(self._parts[0])  # type: ignore[arg-type]
        return self._blocked + sum(len(p) for p in self._parts if isinstance(p, list))

    @overload
    def __getitem__(self, i: SupportsIndex) -> T: ...

    @overload
    def __getitem__(self, i: slice) -> list[T]: ...

    def __getitem__(self, i: SupportsIndex | slice) -> T | list[T]:
        parts = self._parts
        if len(parts) == 1 and not self._blocked:  # one list (the Python driver's): its own indexing
            try:
                return parts[0][i]  # type: ignore[index]
            except IndexError:
                raise IndexError("history index out of range") from None
        if isinstance(i, slice):
            return self._objects()[i]
        n, k = len(self), i.__index__()
        k = k + n if k < 0 else k
        if not 0 <= k < n:
            raise IndexError("history index out of range")
        last = self._parts[-1]
        if isinstance(last, list) and k >= n - len(last):  # the newest records: no block is built
            return last[k - (n - len(last))]
        return self._objects()[k]

    def __iter__(self) -> Iterator[T]:
        return iter(self._objects())

    def __reversed__(self) -> Iterator[T]:
        last = self._parts[-1]
        if isinstance(last, list):  # the newest first, building the blocks only if the caller goes on
            # no copy: a list's reverse iterator walks down from its length at the start (a router looks
            # for the deal it just made among the newest; copying every deal per lookup was O(deals))
            yield from reversed(last)
            older = len(self) - len(last)
            if older:
                yield from reversed(self._objects()[:older])
            return
        yield from reversed(self._objects())

    def append(self, item: T) -> None:
        last = self._parts[-1]
        if isinstance(last, list):
            last.append(item)
        else:
            self._parts.append([item])

    def extend(self, items: Iterable[T]) -> None:
        for x in items:
            self.append(x)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, History):
            other = other._objects()
        return self._objects() == other if isinstance(other, list) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"History({self._objects()!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return _restore, (self._parts,)


def _restore(parts: list[Any]) -> History[Any]:
    h: History[Any] = History()
    h._parts = parts or [[]]
    h._blocked = sum(p.n for p in h._parts if isinstance(p, Block))
    return h
