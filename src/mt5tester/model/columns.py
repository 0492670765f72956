"""Column forms that hold a table's column in a few arrays instead of one Python object per row.

A run of millions of bars records hundreds of thousands of orders, deals and signals. Most of their
text columns take one of a few values (strategy, symbol, status), hold None where a number is absent
(a rejected signal's ticket), or are derived from a number ("signal 12"). A list of Python objects per
row costs 8 bytes a row for the list and more for each int or str it holds; these forms keep codes,
masks and numbers instead and give the very values the list would hold when read.

Every form is a read-only sequence of Python values: ``tolist()`` (what the sinks call on numpy arrays
too), ``len``, indexing, iteration, and ``np.asarray`` (``__array__``). Rows are built from them only
when a table is read (a DataFrame, a SQL insert).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any, overload

import numpy as np


class Column(Sequence[Any]):
    """A column of ``len(self)`` Python values, materialised by ``tolist`` (the one method a form
    defines; the others read it)."""

    def tolist(self) -> list[Any]:
        raise NotImplementedError

    @overload
    def __getitem__(self, k: int) -> Any: ...

    @overload
    def __getitem__(self, k: slice) -> list[Any]: ...

    def __getitem__(self, k: int | slice) -> Any:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        return self._item(range(len(self))[k])

    def _item(self, k: int) -> Any:
        return self.tolist()[k]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.tolist())

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if dtype is None or np.dtype(dtype) == np.dtype(object):
            out = np.empty(len(self), object)
            out[:] = self.tolist()
            return out
        return np.array(self.tolist(), dtype)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Column):
            other = other.tolist()
        return self.tolist() == other if isinstance(other, list) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.tolist()!r})"


class Const(Column):
    """``n`` rows of one value (a field the compiled driver never sets: an order's sl of 0.0)."""

    def __init__(self, value: Any, n: int) -> None:
        self.value, self.n = value, n

    def __len__(self) -> int:
        return self.n

    def tolist(self) -> list[Any]:
        return [self.value] * self.n

    def _item(self, k: int) -> Any:
        return self.value


class Coded(Column):
    """Row ``k`` is ``names[codes[k]]``: a column of few distinct values (strategy, symbol, status; a
    name may be None) as one small integer per row."""

    def __init__(self, codes: np.ndarray, names: Sequence[Any]) -> None:
        self.codes, self.names = codes, list(names)

    def __len__(self) -> int:
        return len(self.codes)

    def tolist(self) -> list[Any]:
        names = self.names
        if len(names) == 1:
            return [names[0]] * len(self.codes)
        return [names[k] for k in self.codes.tolist()]

    def _item(self, k: int) -> Any:
        return self.names[int(self.codes[k])]


def narrow(codes: np.ndarray, names: int) -> np.ndarray:
    """``codes`` (indices into ``names`` names) in the smallest integer type that holds them: a column of
    few values costs a byte a row, not eight (the codes read back as the same Python ints)."""
    return codes.astype(np.min_scalar_type(max(names - 1, 0)), copy=False)


class Masked(Column):
    """Row ``k`` is ``values[k]`` as a Python number where ``present[k]``, else None (a rejected
    signal's ticket, a signal id no one gave)."""

    def __init__(self, values: np.ndarray, present: np.ndarray) -> None:
        self.values, self.present = values, present

    def __len__(self) -> int:
        return len(self.values)

    def tolist(self) -> list[Any]:
        return [v if ok else None for v, ok in zip(self.values.tolist(), self.present.tolist(), strict=True)]

    def _item(self, k: int) -> Any:
        return self.values[k].item() if self.present[k] else None


class Labels(Column):
    """Row ``k`` is ``prefix + str(numbers[k])`` ("signal 12"), or ``given[k]`` where given (an SL/TP
    close's "[sl 1.09950]"): a derived text column, built when read."""

    def __init__(self, prefix: str, numbers: np.ndarray, given: dict[int, str] | None = None) -> None:
        self.prefix, self.numbers, self.given = prefix, numbers, given or {}

    def __len__(self) -> int:
        return len(self.numbers)

    def tolist(self) -> list[Any]:
        # one text per distinct number, shared by its rows (as a per-signal cache would share it)
        uniq, at = np.unique(self.numbers, return_inverse=True)
        texts = np.array([f"{self.prefix}{v}" for v in uniq.tolist()], object)
        out: list[Any] = texts[at].tolist() if len(uniq) else []
        for k, text in self.given.items():
            out[k] = text
        return out

    def _item(self, k: int) -> Any:
        given = self.given.get(k)
        return given if given is not None else f"{self.prefix}{int(self.numbers[k])}"


class Chained(Column):
    """The parts (arrays, lists or columns) one after another: a table whose rows come in blocks (the
    compiled driver's history, then the orders the Python side made after it) without a copy of them."""

    def __init__(self, parts: Sequence[Any]) -> None:
        self.parts = [p for p in parts if len(p)]

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def tolist(self) -> list[Any]:
        return list(chain.from_iterable(p.tolist() if hasattr(p, "tolist") else p for p in self.parts))

    def _item(self, k: int) -> Any:
        for p in self.parts:
            if k < len(p):
                v = p[k]
                return v.item() if isinstance(v, np.generic) else v
            k -= len(p)
        raise IndexError(k)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if dtype is None or np.dtype(dtype) == np.dtype(object):
            return super().__array__(dtype)
        return (
            np.concatenate([np.asarray(p, dtype) for p in self.parts]) if self.parts else np.zeros(0, dtype)
        )


def is_column(values: Any) -> bool:
    """Whether ``values`` is one of these forms (a field of a history block may be one)."""
    return isinstance(values, Column)


# ------------------------------------------------------------------------------ counting over forms
# A run's funnel counts its records (signals by status and reason, closes by reason): over the forms'
# codes and arrays these counts take a few vectorised passes instead of one Python value per row.


def factorize(values: Sequence[Any]) -> tuple[np.ndarray, list[Any]]:
    """(codes, names) with row ``k``'s Python value ``names[codes[k]]`` (a name may repeat: counts add
    up over equal names). Forms and numpy arrays are factorised from their codes and arrays; any other
    sequence value by value."""
    if isinstance(values, Coded):
        return np.asarray(values.codes), values.names
    if isinstance(values, Const):
        return np.zeros(values.n, np.int8), [values.value]
    if isinstance(values, Masked):
        uniq, inv = np.unique(values.values[values.present], return_inverse=True)
        codes = np.full(len(values), len(uniq), np.int64)
        codes[values.present] = inv
        return codes, [*uniq.tolist(), None]
    if isinstance(values, Chained):
        parts = [factorize(p) for p in values.parts]
        offsets = np.cumsum([0] + [len(names) for _, names in parts])
        shifted = [c.astype(np.int64) + off for (c, _), off in zip(parts, offsets.tolist(), strict=False)]
        names = [name for _, part_names in parts for name in part_names]
        return (np.concatenate(shifted) if shifted else np.zeros(0, np.int64)), names
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "biu":
        uniq, inv = np.unique(values, return_inverse=True)
        return inv, uniq.tolist()
    seen: dict[Any, int] = {}
    given = values.tolist() if isinstance(values, Column | np.ndarray) else values
    codes_list = [seen.setdefault(v, len(seen)) for v in given]
    return np.array(codes_list, np.int64), list(seen)


def counts(*columns: Sequence[Any]) -> Counter[tuple[Any, ...]]:
    """How many rows hold each tuple of values of ``columns`` (equal lengths), as
    ``Counter(zip(*columns))`` counts them, over the columns' codes."""
    coded = [factorize(c) for c in columns]
    if np.prod([float(max(len(names), 1)) for _, names in coded]) > 1 << 24:
        # too many combinations to code jointly in one integer: counted value by value
        return Counter(zip(*(c.tolist() if hasattr(c, "tolist") else list(c) for c in columns), strict=True))
    joint = np.zeros(len(columns[0]) if columns else 0, np.int64)
    for codes, names in coded:
        joint = joint * max(len(names), 1) + codes
    keys, n = np.unique(joint, return_counts=True)
    out: Counter[tuple[Any, ...]] = Counter()
    for key, k in zip(keys.tolist(), n.tolist(), strict=True):
        row = []
        for _, names in reversed(coded):
            key, at = divmod(key, max(len(names), 1))
            row.append(names[at])
        out[tuple(reversed(row))] += k
    return out


def equals(values: Sequence[Any], value: Any) -> np.ndarray:
    """A boolean array: which rows hold ``value`` (a Labels form is matched without building its texts)."""
    if isinstance(values, Labels):
        hit = np.zeros(len(values), bool)
        rest = value[len(values.prefix) :] if isinstance(value, str) else ""
        # a derived text is f"{prefix}{n}": the value names row numbers only if it is written that way
        number = isinstance(value, str) and value.startswith(values.prefix) and rest.lstrip("-").isdigit()
        if number and str(int(rest)) == rest:
            hit = values.numbers == int(rest)
        for k, text in values.given.items():
            hit[k] = text == value
        return hit
    if isinstance(values, Chained):
        parts = [equals(p, value) for p in values.parts]
        return np.concatenate(parts) if parts else np.zeros(0, bool)
    codes, names = factorize(values)
    return np.isin(codes, [k for k, name in enumerate(names) if name == value])
