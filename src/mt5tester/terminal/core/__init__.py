"""The compiled trade core (issue 14): MT5's trading rules as numba functions over numbers and arrays,
the one implementation both drivers call. ``rules``: rounding, profit, margin, commission, swap, fill
price and the request checks; ``kernels`` (one level up): SL/TP and pending-order triggers."""
