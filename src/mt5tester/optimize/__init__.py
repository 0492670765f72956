"""The optimizer's engine-independent half (issue 15).

space.py        the ``optimize:`` config section (OptimizeConfig, parse_optimize) and its discrete grid
search.py       ask/tell search methods: grid, random, genetic (MT5-style), Optuna TPE / CMA-ES / NSGA-II
criteria.py     MT5's optimization criteria, custom criteria, constraints, ranking
walkforward.py  forward period and walk-forward folds, stitched out-of-sample equity, efficiency
robustness.py   deflated Sharpe, PBO (CSCV), Monte Carlo of trades, parameter stability

Nothing here runs a backtest: a driver asks a search for params, runs them through ``mt5tester.run()``
and tells it the metrics.
"""
