"""Market regime detection: one label per closed bar, computed causally (ARCHITECTURE section 2).

Labels are ``trending_up``, ``trending_down``, ``ranging`` and ``volatile`` (codes 0..3, -1 = unknown
during warm-up). Two methods, both in :mod:`mt5tester.regime.detectors`:

* ``rules``: Wilder ADX with +DI/-DI and the percentile of the current ATR among its recent values.
* ``hmm``: a Gaussian hidden Markov model (hmmlearn) on log return and realised volatility, refitted
  on past bars only, read with a causal forward filter.

The label of bar ``i`` is known at bar ``i``'s close and uses bars ``<= i`` only, so appending bars never
changes an earlier label (``detect(bars[:k]) == detect(bars)[:k]``). :class:`RegimeTracker` answers
"which regime at time t" for the engine from the last bar closed at or before ``t``.
"""

from mt5tester.regime.detectors import (
    CODES,
    LABELS,
    RANGING,
    TRENDING_DOWN,
    TRENDING_UP,
    UNKNOWN,
    UNKNOWN_CODE,
    VOLATILE,
    RegimeTracker,
    detect,
    label_names,
    rules_features,
    warmup_bars,
)

__all__ = [
    "CODES",
    "LABELS",
    "RANGING",
    "TRENDING_DOWN",
    "TRENDING_UP",
    "UNKNOWN",
    "UNKNOWN_CODE",
    "VOLATILE",
    "RegimeTracker",
    "detect",
    "label_names",
    "rules_features",
    "warmup_bars",
]
