"""What the trader looks at first, derived from a ``RunReport`` with grouped pandas passes (no per-trade
Python loop): entries and results by hour, weekday and month, equity per strategy and per symbol, the
regime timeline, the deals and orders tables."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mt5tester.reports.content import (
    DEAL_ENTRIES,
    DEAL_REASONS,
    DEAL_TYPES,
    MONTHS,
    TRADE_COLUMNS,
    TRADE_TABLE_COLUMNS,
    Col,
    RunReport,
    Table,
)
from mt5tester.results.metrics import CLOSING_ENTRIES, DEAL_BUY, DEAL_SELL, ENTRY_IN

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
ORDER_TYPES = {
    0: "buy",
    1: "sell",
    2: "buy limit",
    3: "sell limit",
    4: "buy stop",
    5: "sell stop",
    6: "buy stop limit",
    7: "sell stop limit",
    8: "close by",
}
ORDER_STATES = {
    0: "started",
    1: "placed",
    2: "canceled",
    3: "partial",
    4: "filled",
    5: "rejected",
    6: "expired",
    7: "request add",
    8: "request modify",
    9: "request cancel",
}


def _server(times: pd.Series, tz: str) -> pd.Series:
    """UTC times on the broker's clock: MT5's report counts hours, weekdays and months in server time."""
    return pd.to_datetime(times, utc=True).dt.tz_convert(tz)


def by_period(rep: RunReport) -> dict[str, pd.DataFrame]:
    """For ``hour`` (0-23), ``weekday`` (Mon-Sun) and ``month`` (Jan-Dec): entries (IN deals, split buy /
    sell) and profit (net of the closing deals: profit + swap + commission, as MT5's "Profit & Loss by
    hours"), counted on the server clock. Every bucket is present, empty ones at 0."""
    d = rep.deals
    trading = d[d["type"].isin([DEAL_BUY, DEAL_SELL])] if len(d) else d
    labels = {"hour": [str(h) for h in range(24)], "weekday": WEEKDAYS, "month": MONTHS}
    out: dict[str, pd.DataFrame] = {}
    if trading.empty:
        for key, names in labels.items():
            zeros = np.zeros(len(names))
            out[key] = pd.DataFrame(
                {"label": names, "buy": zeros, "sell": zeros, "profit": zeros, "loss": zeros, "net": zeros}
            )
        return out
    t = _server(trading["time"], rep.server_timezone)
    keys = {"hour": t.dt.hour, "weekday": t.dt.day_of_week, "month": t.dt.month - 1}
    is_in = trading["entry"] == ENTRY_IN
    is_buy = trading["type"] == DEAL_BUY
    closing = trading["entry"].isin(CLOSING_ENTRIES)
    net = (trading["profit"] + trading["swap"] + trading["commission"]).astype(float).where(closing, 0.0)
    parts = pd.DataFrame(
        {
            "buy": (is_in & is_buy).astype(int),
            "sell": (is_in & ~is_buy).astype(int),
            "profit": net.where(net > 0, 0.0),
            "loss": net.where(net < 0, 0.0),
            "net": net,
        }
    )
    for key, names in labels.items():
        g = parts.groupby(keys[key].to_numpy()).sum().reindex(range(len(names)), fill_value=0)
        out[key] = g.reset_index(drop=True).assign(label=names)
    return out


def group_equity(rep: RunReport, key: str) -> dict[str, pd.DataFrame]:
    """Per strategy or symbol: the cumulative net result of its closed trades at each close time (the
    nets of all groups add up to Total Net Profit)."""
    t = rep.trades
    closed = t[t["close_time"].notna()] if len(t) else t
    out: dict[str, pd.DataFrame] = {}
    if closed.empty:
        return out
    closed = closed.sort_values("close_time", kind="stable")
    for name, g in closed.groupby(closed[key].astype(str), sort=True):
        out[str(name)] = pd.DataFrame(
            {"time": g["close_time"].to_numpy(), "net": g["net"].cumsum().to_numpy()}
        )
    return out


def regime_segments(rep: RunReport) -> pd.DataFrame:
    """symbol, regime, start, end: the regime label of each symbol's signals, as runs of equal labels (a run
    lasts until the next different label of that symbol, the last one until the end of the run)."""
    s = rep.signals
    cols = ["symbol", "regime", "start", "end"]
    if s.empty:
        return pd.DataFrame(columns=cols)
    if "regime" in s.columns:  # load_run decodes it from the tags
        lab = s["regime"]
    else:
        lab = s["tags"].map(lambda v: v.get("regime") if isinstance(v, dict) else None)
    f = pd.DataFrame({"symbol": s["symbol"].astype(str), "regime": lab, "time": s["time"]})
    f = f[f["regime"].notna() & (f["regime"].astype(str) != "")]
    if f.empty:
        return pd.DataFrame(columns=cols)
    f = f.assign(regime=f["regime"].astype(str)).sort_values(["symbol", "time"], kind="stable")
    end_of_run = rep.equity["time"].max() if len(rep.equity) else f["time"].max()
    rows: list[pd.DataFrame] = []
    for sym, g in f.groupby("symbol", sort=True):
        change = g["regime"].ne(g["regime"].shift())
        starts = g[change]
        ends = [*starts["time"].iloc[1:], max(end_of_run, g["time"].iloc[-1])]
        rows.append(
            pd.DataFrame(
                {
                    "symbol": sym,
                    "regime": starts["regime"].to_numpy(),
                    "start": starts["time"].to_numpy(),
                    "end": ends,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)[cols]


# the printed table's columns with the trade's result after its direction and MFE/MAE after its net
TRADE_GRID_COLUMNS = [
    *TRADE_TABLE_COLUMNS[:4],
    Col("result"),
    *TRADE_TABLE_COLUMNS[4:15],
    Col("MFE", "money"),
    Col("MAE", "money"),
    *TRADE_TABLE_COLUMNS[15:],
]


def trades_grid(rep: RunReport) -> tuple[Table, pd.DataFrame]:
    """Every trade (no cut), with its result (win: net >= 0, MT5's rule; loss; open) and MFE/MAE."""
    t = rep.trades
    frame = t[TRADE_COLUMNS].copy() if len(t) else pd.DataFrame(columns=TRADE_COLUMNS)
    result = np.where(
        frame["close_time"].isna(), "open", np.where(frame["net"].astype(float) >= 0, "win", "loss")
    )
    frame.insert(4, "result", result)
    mfe = t["mfe"] if "mfe" in t.columns else pd.Series(np.nan, index=t.index)
    mae = t["mae"] if "mae" in t.columns else pd.Series(np.nan, index=t.index)
    frame.insert(16, "mfe", mfe.to_numpy(dtype=float) if len(t) else [])
    frame.insert(17, "mae", mae.to_numpy(dtype=float) if len(t) else [])
    total: list[Any] | None = None
    if len(t):
        total = ["total", f"{len(t)} trades", "", "", "", t["volume"].sum(), None, None, None, None, "", None]
        total += [
            t["commission"].sum(),
            t["swap"].sum(),
            t["profit"].sum(),
            t["net"].sum(),
            None,
            None,
            "",
            "",
        ]
    note = "net = profit + swap + commission of all the position's deals (entry commission included)"
    return Table("Trades", TRADE_GRID_COLUMNS, [], note=note, total=total), frame


DEAL_GRID_COLUMNS = [
    Col("time", "time"),
    Col("deal", "int"),
    Col("symbol"),
    Col("type"),
    Col("direction"),
    Col("volume", "price"),
    Col("price", "price"),
    Col("order", "int"),
    Col("commission", "money"),
    Col("swap", "money"),
    Col("profit", "money"),
    Col("balance", "money"),
    Col("strategy"),
    Col("reason"),
    Col("comment"),
]


def deals_grid(rep: RunReport) -> tuple[Table, pd.DataFrame]:
    """The deals table in MT5 report order (Time, Deal, Symbol, Type, Direction, ...), strategy, reason."""
    d = rep.deals
    if d.empty:
        return Table("Deals", DEAL_GRID_COLUMNS, []), pd.DataFrame(
            columns=[c.name for c in DEAL_GRID_COLUMNS]
        )
    trading = d["type"].isin([DEAL_BUY, DEAL_SELL])
    frame = pd.DataFrame(
        {
            "time": d["time"],
            "deal": d["ticket"],
            "symbol": d["symbol"].astype(str),
            "type": d["type"].map(DEAL_TYPES).fillna(d["type"].astype(str)),
            # a balance operation has no direction in MT5's report (its entry is stored as 0, "in")
            "direction": d["entry"].map(DEAL_ENTRIES).fillna(d["entry"].astype(str)).where(trading, ""),
            "volume": d["volume"],
            "price": d["price"],
            "order": d["order"],
            "commission": d["commission"],
            "swap": d["swap"],
            "profit": d["profit"],
            "balance": d["balance"],
            "strategy": d["strategy"].astype(str),
            "reason": d["reason"].map(DEAL_REASONS).fillna(d["reason"].astype(str)),
            "comment": d["comment"].astype(str),
        }
    )
    total: list[Any] = ["total", f"{len(d)} deals", "", "", "", None, None, None]
    total += [d["commission"].sum(), d["swap"].sum(), d["profit"].sum(), None, "", "", ""]
    return Table("Deals", DEAL_GRID_COLUMNS, [], total=total), frame


ORDER_GRID_COLUMNS = [
    Col("open time", "time"),
    Col("order", "int"),
    Col("symbol"),
    Col("type"),
    Col("volume", "price"),
    Col("price", "price"),
    Col("S / L", "price"),
    Col("T / P", "price"),
    Col("time", "time"),
    Col("state"),
    Col("strategy"),
    Col("comment"),
]


def orders_grid(rep: RunReport) -> tuple[Table, pd.DataFrame]:
    """The orders table as MT5's report lays it out: Open Time, Order, Symbol, Type, Volume, Price, S / L,
    T / P, Time, State, Comment (a zero price, SL or TP is shown as '-'), plus the strategy."""
    o = rep.orders
    if o.empty:
        return Table("Orders", ORDER_GRID_COLUMNS, []), pd.DataFrame(
            columns=[c.name for c in ORDER_GRID_COLUMNS]
        )

    def nonzero(col: str) -> pd.Series:
        v = o[col].astype(float)
        return v.where(v != 0.0)

    price = o["price_done"].astype(float).where(o["price_done"].astype(float) != 0.0, nonzero("price_open"))
    frame = pd.DataFrame(
        {
            "open time": o["time_setup"],
            "order": o["ticket"],
            "symbol": o["symbol"].astype(str),
            "type": o["type"].map(ORDER_TYPES).fillna(o["type"].astype(str)),
            "volume": o["volume_initial"],
            "price": price,
            "sl": nonzero("sl"),
            "tp": nonzero("tp"),
            "time": o["time_done"],
            "state": o["state"].map(ORDER_STATES).fillna(o["state"].astype(str)),
            "strategy": o["strategy"].astype(str),
            "comment": o["comment"].astype(str),
        }
    )
    return Table("Orders", ORDER_GRID_COLUMNS, []), frame


def health_rows(rep: RunReport) -> Table:
    """Data health and history quality per symbol: the score, MT5's history quality (% of minutes with
    a bar), the covered range and every finding counted before bar 1."""
    cols = [
        Col("symbol"),
        Col("timeframe"),
        Col("bars", "int"),
        Col("score", "ratio"),
        Col("history quality", "pct"),
        Col("first", "time"),
        Col("last", "time"),
        Col("findings"),
    ]
    rows: list[list[Any]] = []
    h = rep.health.sort_values(["symbol", "timeframe"]) if len(rep.health) else rep.health
    for r in h.itertuples(index=False) if len(h) else []:
        report: dict[str, Any] = r.report if isinstance(r.report, dict) else {}
        counts = {k: v for k, v in (report.get("counts") or {}).items() if v}
        rows.append(
            [
                r.symbol,
                r.timeframe,
                r.bars,
                r.score,
                report.get("history_quality_pct"),
                report.get("first"),
                report.get("last"),
                ", ".join(f"{k} {v}" for k, v in counts.items()) or "none",
            ]
        )
    note = "" if rows else "no data health recorded"
    return Table("Data health and history quality", cols, rows, note=note)
