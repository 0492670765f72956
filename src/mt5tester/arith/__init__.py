"""Exact arithmetic, compiled (numba), shared by every layer that computes money: no I/O, no state."""
