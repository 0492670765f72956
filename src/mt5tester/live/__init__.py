"""Live and paper trading: the backtest's strategies, host, coordinator and records driven by a clock
through a MetaTrader5-API module (the real ``MetaTrader5`` package, or our simulated terminal).

Layer: above ``engine``, below ``cli``. ``start`` builds a session (paper replay, paper on live quotes,
live); ``session`` is the driver; ``clock`` its clocks (a replay of stored data, a terminal's ticks);
``quotes`` our simulated terminal fed by a live terminal; ``router`` sends orders idempotently;
``journal`` records what the terminal did; ``preflight`` checks everything before the first order;
``terminal`` imports the module and converts its server-clock times; ``download`` fills the catalog.
"""
