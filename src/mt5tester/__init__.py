"""mt5tester: a MetaTrader 5 faithful backtester."""

__version__ = "0.1.0"
