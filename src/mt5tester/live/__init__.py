"""Live and paper trading: the backtest's strategies, host, coordinator and records driven by a clock
through a MetaTrader5-API module (the real ``MetaTrader5`` package, or our simulated terminal).

Layer: above ``engine``, below ``cli``. ``session`` is the driver, ``clock`` its two clocks (wall time
and a replay of stored data), ``router`` sends orders idempotently, ``journal`` records what the
terminal did, ``preflight`` checks everything before the first order, ``download`` fills the catalog.
"""
