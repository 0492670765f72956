"""Lengths of the text columns that hold values from the config (results/db.py builds its columns
from them). The config refuses longer values: PostgreSQL would refuse them mid-run and SQLite would
store them silently, so one check before bar 1 makes both backends behave the same."""

from __future__ import annotations

STRATEGY_NAME = 128  # run_strategies.name, signals/deals/orders/positions/strategy_errors.strategy
STRATEGY_SPEC = 512  # run_strategies.spec: the `class:` of a strategy
SOURCE_FILE = 1024  # run_strategies.source_file
SYMBOL = 32  # symbol columns of every table
CURRENCY = 8  # runs.currency
