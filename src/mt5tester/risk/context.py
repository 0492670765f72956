"""What the engine tells the coordinator beyond the MT5 API: per-signal facts and position ownership.

MT5 positions carry only ``magic`` and ``comment``, so the engine (which knows which strategy sent each
order) passes ``owners``: position ticket -> strategy name. A live runner builds the same map from its
own order log or from a magic-number table. Positions missing from ``owners`` belong to no strategy:
they count for the total and per-symbol limits and for risk, but for no strategy's limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SignalContext:
    """Facts about one signal that the signal itself does not carry.

    ``volume``: the lots asked for before sizing (the signal's volume, else the strategy's).
    ``sl_distance``: |entry - SL| in price, computed by the engine from ``sl`` or ``sl_points``; None
    without a stop loss. ``regime`` / ``regime_multiplier``: the regime label and the regime detector's
    own risk multiplier (None: no regime / 1.0).
    """

    strategy: str
    volume: float
    sl_distance: float | None = None
    regime: str | None = None
    regime_multiplier: float | None = None


@dataclass(frozen=True)
class ReviewContext:
    """One review call: the signals of one decision point (bar close), in the engine's order.

    ``now`` and ``bar_time`` are UTC ns. ``server_time`` is the broker's server clock in seconds (the
    API's ``time`` fields); None: the coordinator takes the newest ``symbol_info_tick(...).time`` of the
    signals' symbols, as a live expert would. ``signals[i]`` belongs to the i-th signal reviewed.
    ``exclude``: tickets of open positions the review leaves out: those opened by this point's own
    signals when a restarted live session repeats the point it died in (they did not exist when the
    point was first reviewed, and the backtest's review of the point never sees them).
    """

    now: int
    bar_time: int
    signals: list[SignalContext]
    owners: dict[int, str] = field(default_factory=dict)
    server_time: int | None = None
    exclude: frozenset[int] = frozenset()
