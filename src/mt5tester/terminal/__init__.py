"""Simulated MetaTrader 5 terminal: MetaTrader5-package constants, result records and the API shape.

Kept free of imports so that importing one submodule (e.g. ``constants``) does not pull in the rest.
"""
