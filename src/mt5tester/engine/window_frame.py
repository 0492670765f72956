"""The pandas ``df`` of one strategy call, built lazily: a DataFrame of rows [lo, hi) of a full frame.

Building a DataFrame per call (``frame.iloc[lo:hi].copy()``) costs ~100x a numpy slice, while most
strategies only read a column or two. A ``WindowFrame`` is a real ``pandas.DataFrame`` subclass that
starts empty-handed: ``df["close"]``, ``df.close`` and ``len(df)`` are served straight from the source
arrays as new Series owning a copy of just these rows (lazy in turn: ``WindowSeries``); anything else
(``df.iloc``, ``df.index``, ``df.values``, assignment, ...) first materialises the window exactly as
before, as a copy of these rows of the full frame, and from then on the object is an ordinary DataFrame.

The closed-bars-only guarantee: every array a strategy can reach through it (Series values, ``.base``,
blocks of the manager) is a copy of rows [lo, hi) made for this df (or this Series), so nothing after
the current bar is reachable and writes never reach the source or another call's df. The lazy window
must refer to the feed's full series to copy from it: that reference is a private attribute
(``_wf_src``, as ``BarArrays`` keeps ``_cols``; a lazy Series keeps the source and the window's index
maker in ``_ws_parts``), never an array of the window, and it is dropped when the window (the Series)
materialises.

The bar frame is built once per series of bars and shared by every strategy on them (``BarSource``);
each feed adds its own prepared columns (``FrameSource``). Where the time goes per call (bench
strategy, 31 rows, timeit on the shared machine at load ~6): the window object ~0.5 us, a column
Series ~2.5 us (10 us when pandas' block, manager and index were built per column), ``np.asarray``
of it ~7 us more, mostly numpy's probes for ``__array_struct__``/``__array_interface__`` (exceptions).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import DatetimeTZDtype

try:  # the fast Series path uses pandas internals; without them every column takes the public path
    from pandas._libs.internals import BlockPlacement
    from pandas.core.arrays import DatetimeArray
    from pandas.core.internals.blocks import get_block_type
    from pandas.core.internals.managers import SingleBlockManager

    _FAST = hasattr(pd.Series, "_from_mgr") and hasattr(pd.RangeIndex, "_simple_new")
except ImportError:  # pragma: no cover - pandas moved its internals
    _FAST = False


def _range_index(lo: int, hi: int) -> pd.RangeIndex:
    """The index the window had as ``frame.iloc[lo:hi]`` (RangeIndex(lo, hi)), without its argument checks."""
    if _FAST:
        return pd.RangeIndex._simple_new(range(lo, hi))  # type: ignore[attr-defined,no-any-return]
    return pd.RangeIndex(lo, hi)  # pragma: no cover


Column = tuple[np.ndarray, "DatetimeTZDtype | None", Any]


def _numpy_columns(frame: pd.DataFrame) -> dict[str, Column]:
    """Per column of ``frame`` the numpy data a window's Series is copied from, its tz dtype for tz-aware
    times, and the pandas block class of its dtype (what ``new_block`` would look up per call);
    columns of other extension dtypes are absent and go through pandas."""
    out: dict[str, Column] = {}
    if not _FAST:
        return out
    for name in frame.columns:
        dtype = frame[name].dtype
        if isinstance(dtype, np.dtype):
            values, tz = frame[name].to_numpy(), None
        elif isinstance(dtype, DatetimeTZDtype):
            values, tz = frame[name].array._ndarray, dtype
        else:
            continue
        values = values.view()
        values.flags.writeable = False  # defence in depth: the source is never handed out anyway
        out[str(name)] = (values, tz, get_block_type(tz if tz is not None else values.dtype))
    return out


class BarSource:
    """The bar frame of one series of bars, built once and shared by every strategy on these bars, and
    what their calls at one decision point share: the window's index (immutable)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.columns = _numpy_columns(frame)
        self._ix: tuple[int, int, pd.RangeIndex] = (0, 0, _range_index(0, 0))

    def index(self, lo: int, hi: int) -> pd.RangeIndex:
        """RangeIndex(lo, hi), the index of ``frame.iloc[lo:hi]``; the last one is kept for the next call
        (the other strategies at this point, or the other columns of this window)."""
        last = self._ix
        if last[0] == lo and last[1] == hi:
            return last[2]
        ix = _range_index(lo, hi)
        self._ix = (lo, hi, ix)
        return ix


class FrameSource:
    """What one feed's windows are copied from: the shared bar frame and this strategy's prepared columns
    (``extra``, a frame of the same length, after the bar columns)."""

    def __init__(self, bars: BarSource, extra: pd.DataFrame | None = None) -> None:
        self.bars = bars
        self.extra = extra if extra is not None and len(extra.columns) else None
        self.columns = dict(bars.columns)
        names = [str(c) for c in bars.frame.columns]
        if self.extra is not None:
            self.columns.update(_numpy_columns(self.extra))
            names += [str(c) for c in self.extra.columns]
        self.names = frozenset(names)
        self._placements: dict[int, Any] = {}

    @property
    def frame(self) -> pd.DataFrame:
        """The full frame (bar columns, then the prepared ones): what a window is a copy of rows of."""
        if self.extra is None:
            return self.bars.frame
        return pd.concat([self.bars.frame, self.extra], axis=1)

    def rows(self, lo: int, hi: int) -> pd.DataFrame:
        """A copy of rows [lo, hi) of the full frame: a materialised window."""
        if self.extra is None:
            return self.bars.frame.iloc[lo:hi].copy()
        return pd.concat([self.bars.frame.iloc[lo:hi], self.extra.iloc[lo:hi]], axis=1).copy()

    def _fallback(self, name: str, lo: int, hi: int) -> pd.Series:
        frame = self.extra if self.extra is not None and name in self.extra.columns else self.bars.frame
        return frame[name].iloc[lo:hi].copy()

    def series(self, name: str, lo: int, hi: int, index: Any) -> pd.Series:
        """Rows [lo, hi) of column ``name`` as a new Series that owns a copy of them. ``index``: the index,
        or a callable that makes it (called when the Series' pandas internals are first needed)."""
        col = self.columns.get(name)
        if col is None or not _FAST:
            return self._fallback(name, lo, hi)
        values, tz, block = col
        # Lazy as the window is: the copy of the rows now (what np.asarray and len read), pandas' block,
        # manager and index when first needed (WindowSeries._mgr).
        ser: WindowSeries = WindowSeries()
        d = ser.__dict__
        d["_ws_parts"] = (values[lo:hi].copy(), tz, block, index, self)
        d["_attrs"] = {}
        d["_name"] = name
        return ser

    def placement(self, n: int) -> Any:
        placement = self._placements.get(n)
        if placement is None:
            placement = self._placements[n] = BlockPlacement(slice(0, n))
        return placement


class _LazyFlags:
    """``Flags`` (it holds a weakref to its frame, ~1 us to make) made only when pandas or the strategy
    asks for it; NDFrame.__init__ and __setstate__ set it through the setter as before."""

    @property
    def _flags(self) -> Any:
        d = self.__dict__
        flags = d.get("_wf_flags")
        if flags is None:
            flags = d["_wf_flags"] = pd.Flags(self, allows_duplicate_labels=True)  # type: ignore[attr-defined]
        return flags

    @_flags.setter
    def _flags(self, value: Any) -> None:
        self.__dict__["_wf_flags"] = value


class WindowSeries(_LazyFlags, pd.Series):
    """A column of a window: a plain Series in every respect but cost.

    It starts with its own copy of the rows only: ``np.asarray(series)`` and ``len(series)`` read that
    copy; pandas' block, manager and index are built on the first use of anything else (``_mgr``), from
    that same copy, so writes through any path meet one array. ``np.asarray`` (``__array_struct__``),
    ``.values`` and ``.to_numpy()`` give a read-only view of it as pandas does. Other dunder names are
    never labels served as attributes here (NDFrame.__getattr__ would search the index, ~1 us): they fail
    at once. Its ``Flags`` (a weakref to the Series, ~1 us) is made only when asked for. Results of
    operations are plain Series and DataFrames."""

    # Built empty-handed only (FrameSource.series fills its __dict__); pandas makes plain Series from it
    # (_constructor) and unpickles it without __init__. object's own __init__ lets ``WindowSeries()``
    # allocate it in C: ~100 ns less than ``WindowSeries.__new__(WindowSeries)`` on every column read.
    __init__ = object.__init__

    def _ws_mgr(self) -> Any:
        d = self.__dict__
        mgr = d.get("_ws_real")
        if mgr is None:
            data, tz, block, index, src = d.pop("_ws_parts")
            placement = src.placement(len(data))
            if tz is not None:
                data = DatetimeArray._simple_new(data, dtype=tz)  # type: ignore[attr-defined]
            mgr = SingleBlockManager(block(data, placement, ndim=1), index() if callable(index) else index)
            d["_ws_real"] = mgr
        return mgr

    def _ws_set_mgr(self, mgr: Any) -> None:
        self.__dict__["_ws_real"] = mgr
        self.__dict__.pop("_ws_parts", None)

    # Every pandas code path reads self._mgr: the first read builds the block and manager.
    _mgr = property(_ws_mgr, _ws_set_mgr)

    def __getattr__(self, name: str) -> Any:  # type: ignore[misc]
        if name.startswith("__"):
            raise AttributeError(name)
        return super().__getattr__(name)

    def __len__(self) -> int:
        parts = self.__dict__.get("_ws_parts")
        return len(parts[0]) if parts is not None else super().__len__()

    def _ws_view(self) -> np.ndarray | None:
        """A read-only view of the numpy values (what pandas' copy-on-write ``__array__`` gives), or None
        for other values (tz-aware times: pandas converts them)."""
        parts = self.__dict__.get("_ws_parts")
        values = parts[0] if parts is not None and parts[1] is None else self._mgr._block.values
        if type(values) is not np.ndarray:
            return None
        view = values.view()
        view.flags.writeable = False
        return view

    @property
    def __array_struct__(self) -> Any:
        """``np.asarray(series)`` asks for this first: numpy-backed values answer it at once (numpy's
        other probes of a Series, ``__array_interface__`` then ``__array__``, cost ~2 us more); the array
        numpy builds from it is the read-only view ``__array__`` gives, its base holding this Series."""
        view = self._ws_view()
        if view is None:
            raise AttributeError("__array_struct__")
        return view.__array_struct__

    @property
    def values(self) -> Any:
        """``series.values``: for numpy-backed values the read-only view pandas gives, without building
        the Series' manager (~10 us); anything else through pandas."""
        view = self._ws_view()
        return view if view is not None else pd.Series.values.fget(self)  # type: ignore[attr-defined]

    def to_numpy(self, *args: Any, **kwargs: Any) -> np.ndarray:
        """``series.to_numpy()`` without arguments: as ``values``; with any, through pandas."""
        if not args and not kwargs:
            view = self._ws_view()
            if view is not None:
                return view
        return super().to_numpy(*args, **kwargs)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """``np.asarray(series, ...)`` past ``__array_struct__``: the same read-only view without pandas'
        dtype round trip; anything else through pandas."""
        if dtype is None and copy is None:
            view = self._ws_view()
            if view is not None:
                return view
        return super().__array__(dtype, copy)

    @property
    def _constructor(self) -> Any:
        return pd.Series

    def _constructor_from_mgr(self, mgr: Any, axes: Any) -> pd.Series:
        ser: pd.Series = pd.Series._from_mgr(mgr, axes)  # type: ignore[attr-defined]
        object.__setattr__(ser, "_name", None)  # the caller sets the real name, as in pandas
        return ser


class WindowFrame(_LazyFlags, pd.DataFrame):
    """Rows [lo, hi) of a ``FrameSource``'s frame; a plain DataFrame in every respect but cost."""

    # Built empty-handed only (``window``), as WindowSeries is: ``cls()`` allocates it in C.
    __init__ = object.__init__

    # Class defaults so an instance pandas builds by itself (copy, pickle) is simply materialised.
    _wf_src: FrameSource | None = None
    _wf_lo = 0
    _wf_hi = 0

    @classmethod
    def window(cls, src: FrameSource, lo: int, hi: int) -> WindowFrame:
        self: WindowFrame = cls()
        d = self.__dict__
        d["_wf_src"], d["_wf_lo"], d["_wf_hi"] = src, lo, hi
        d["_attrs"] = {}
        return self

    # ------------------------------------------------------------------ materialisation
    def _wf_mgr(self) -> Any:
        d = self.__dict__
        mgr = d.get("_wf_real")
        if mgr is None:
            src = d.get("_wf_src")
            if src is None:  # pragma: no cover - pandas always sets _mgr before reading it
                raise RuntimeError("WindowFrame without data")
            mgr = src.rows(self._wf_lo, self._wf_hi)._mgr
            d["_wf_real"], d["_wf_src"] = mgr, None
        return mgr

    def _wf_set_mgr(self, mgr: Any) -> None:
        self.__dict__["_wf_real"] = mgr
        self.__dict__["_wf_src"] = None

    # Every pandas code path reads self._mgr: the first read builds the window's own copy.
    _mgr = property(_wf_mgr, _wf_set_mgr)

    def _wf_index(self) -> pd.Index:
        d = self.__dict__
        index = d.get("_wf_ix")
        if index is None:
            src = d.get("_wf_src")
            index = src.bars.index(self._wf_lo, self._wf_hi) if src is not None else self.index
            d["_wf_ix"] = index
        return index

    # ------------------------------------------------------------------ fast paths (lazy only)
    def __getitem__(self, key: Any) -> Any:
        src = self.__dict__.get("_wf_src")
        if src is not None and type(key) is str and key in src.names:
            return src.series(key, self._wf_lo, self._wf_hi, self._wf_index)
        return super().__getitem__(key)

    def __getattr__(self, name: str) -> Any:  # type: ignore[misc]
        src = self.__dict__.get("_wf_src")
        if src is not None and name in src.names:
            return src.series(name, self._wf_lo, self._wf_hi, self._wf_index)
        if name.startswith("__"):  # numpy probes __array_interface__ etc.: not a column, ever
            raise AttributeError(name)
        return super().__getattr__(name)

    def __len__(self) -> int:
        if self.__dict__.get("_wf_src") is not None:
            return self._wf_hi - self._wf_lo
        return super().__len__()

    # Results of operations are plain DataFrames/Series (never lazy, never bound to the source).
    @property
    def _constructor(self) -> Any:
        return pd.DataFrame

    def _constructor_from_mgr(self, mgr: Any, axes: Any) -> pd.DataFrame:
        return pd.DataFrame._from_mgr(mgr, axes=axes)  # type: ignore[attr-defined,no-any-return]

    def _constructor_sliced_from_mgr(self, mgr: Any, axes: Any) -> pd.Series:
        ser: pd.Series = pd.Series._from_mgr(mgr, axes)  # type: ignore[attr-defined]
        object.__setattr__(ser, "_name", None)  # the caller sets the real name, as in pandas
        return ser
