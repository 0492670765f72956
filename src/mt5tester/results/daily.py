"""Daily equity, folded from the equity rows as a run produces them (no reading back from a database):
per server day, the last sample (time, balance, equity) and the day's lowest equity. Any sink gets the
same rows; the state is a small dict per day, checkpointed with the run so a resumed run continues it."""

from __future__ import annotations

from typing import Any

import pandas as pd

from mt5tester.data.resample import parse_server_tz


class DailyEquity:
    """Equity samples in time order -> one row per server day (``backtest.server_timezone``, DST-aware:
    a day is the span between two server midnights)."""

    def __init__(self, server_tz: str) -> None:
        self.server_tz = server_tz
        self.days: dict[str, dict[str, Any]] = {}
        self._span = (0, 0)  # [from, to) in UTC ns of the current server day; empty at first
        self._day = ""

    def __getstate__(self) -> dict[str, Any]:
        return {"server_tz": self.server_tz, "days": self.days}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["server_tz"])  # type: ignore[misc]
        self.days = state["days"]

    def add(self, t: int, balance: float, equity: float) -> None:
        lo, hi = self._span
        if not lo <= t < hi:
            self._enter(t)
        row = self.days.get(self._day)
        if row is None:
            self.days[self._day] = {
                "day": self._day, "time": t, "balance": balance, "equity": equity, "equity_min": equity,
            }  # fmt: skip
        else:
            row["time"], row["balance"], row["equity"] = t, balance, equity
            row["equity_min"] = min(row["equity_min"], equity)

    def rows(self) -> list[dict[str, Any]]:
        """The daily_equity rows, by day (copies: a sink may add its own columns)."""
        return [dict(self.days[d]) for d in sorted(self.days)]

    def _enter(self, t: int) -> None:
        """Find the server day of t and its span (computed once per day, not per sample)."""
        local = pd.Timestamp(t, tz="UTC").tz_convert(parse_server_tz(self.server_tz))
        start = local.normalize()
        # The next midnight on the server's calendar: 36 h on, then back to midnight, so a 23 h or 25 h
        # day across a DST change ends where the server's clock says.
        end = (start + pd.Timedelta(hours=36)).normalize()
        self._day = local.strftime("%Y-%m-%d")
        self._span = (int(start.value), int(end.value))
