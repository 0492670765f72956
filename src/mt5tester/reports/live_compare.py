"""A live or paper session against a backtest of the same period, trade by trade.

Trades are a run's positions rebuilt from its deals. Each live trade is matched with the backtest
trade of the same strategy, symbol and direction whose entry is nearest in time (within
``tolerance``); per matched trade the report shows the entry delay, the entry and exit price gaps in
points (slippage: positive is worse for the trader), the cost gap (commission + swap) and the net profit
gap; unmatched trades are listed on their side. The summary adds them up: the gap between what was
backtested and what traded, and where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from mt5tester.errors import StorageError
from mt5tester.reports.html import esc, kv_html, page, safe_filename
from mt5tester.results import db

BUY = 0


@dataclass
class TradeGap:
    trades: pd.DataFrame  # one row per matched or unmatched trade
    summary: dict[str, Any]


def _points(engine: Engine, run_id: str) -> dict[str, float]:
    """The point of each symbol of a run, from its stored effective config."""
    from mt5tester.config import parse_config

    with engine.connect() as conn:
        config = conn.execute(select(db.runs.c.config).where(db.runs.c.run_id == run_id)).scalar_one_or_none()
    if config is None:
        raise StorageError(f"no run {run_id!r} in the results database")
    cfg = parse_config(config)
    return {s: cfg.symbol_spec(s).point for s in cfg.backtest.symbols}


def positions(engine: Engine, run_id: str) -> pd.DataFrame:
    """One row per position of a run: strategy, symbol, type, volume, entry and exit, costs, net."""
    d = db.deals
    with engine.connect() as conn:
        rows = conn.execute(select(d).where(d.c.run_id == run_id, d.c.type.in_((0, 1)))).mappings().all()
    frame = pd.DataFrame([dict(r) for r in rows])
    columns = ["position_id", "strategy", "symbol", "type", "volume", "time_open", "price_open"]
    columns += ["time_close", "price_close", "costs", "net"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    out = []
    for _, g in frame.sort_values(["time", "ticket"]).groupby("position_id", sort=False):
        entry, exits = g[g["entry"] == 0], g[g["entry"] != 0]
        first = entry.iloc[0] if len(entry) else g.iloc[0]
        volume = float(exits["volume"].sum())
        out.append(
            {
                "position_id": int(first["position_id"]),
                "strategy": first["strategy"],
                "symbol": first["symbol"],
                "type": int(first["type"]),
                "volume": float(entry["volume"].sum()),
                "time_open": int(first["time"]),
                "price_open": float(first["price"]),
                "time_close": int(exits["time"].iloc[-1]) if len(exits) else None,
                "price_close": float((exits["price"] * exits["volume"]).sum() / volume) if volume else None,
                "costs": round(float(g["commission"].sum() + g["swap"].sum()), 2),
                "net": round(float(g["profit"].sum() + g["commission"].sum() + g["swap"].sum()), 2),
            }
        )
    return pd.DataFrame(out, columns=columns).sort_values("time_open", kind="stable").reset_index(drop=True)


def trade_gap(engine: Engine, live_id: str, backtest_id: str, tolerance_s: float = 3600.0) -> TradeGap:
    """Per-trade differences of run ``live_id`` against ``backtest_id`` and their summary."""
    points = _points(engine, backtest_id) | _points(engine, live_id)
    live, bt = positions(engine, live_id), positions(engine, backtest_id)
    used: set[int] = set()
    rows = []
    for _, a in live.iterrows():
        same = bt[
            (bt["strategy"] == a["strategy"]) & (bt["symbol"] == a["symbol"]) & (bt["type"] == a["type"])
        ]
        same = same[~same["position_id"].isin(used)]
        delay = (same["time_open"] - a["time_open"]).abs() if len(same) else pd.Series(dtype=float)
        near = same[delay <= tolerance_s * 1e9] if len(same) else same
        if not len(near):
            rows.append(_row(a, None, points))
            continue
        b = near.loc[(near["time_open"] - a["time_open"]).abs().idxmin()]
        used.add(int(b["position_id"]))
        rows.append(_row(a, b, points))
    for _, b in bt[~bt["position_id"].isin(used)].iterrows():
        rows.append(_row(None, b, points))
    trades = pd.DataFrame(rows)
    matched = trades[trades["match"] == "both"] if len(trades) else trades
    net_live, net_bt = round(float(live["net"].sum()), 2), round(float(bt["net"].sum()), 2)
    summary: dict[str, Any] = {
        "live_run": live_id,
        "backtest_run": backtest_id,
        "trades_live": len(live),
        "trades_backtest": len(bt),
        "matched": len(matched),
        "only_live": int((trades["match"] == "live only").sum()) if len(trades) else 0,
        "only_backtest": int((trades["match"] == "backtest only").sum()) if len(trades) else 0,
        "entry_delay_mean_s": _mean(matched, "entry_delay_s"),
        "entry_delay_max_s": _max(matched, "entry_delay_s"),
        "entry_slippage_mean_points": _mean(matched, "entry_slippage_points"),
        "exit_slippage_mean_points": _mean(matched, "exit_slippage_points"),
        "costs_gap": round(float(matched["costs_gap"].sum()), 2) if len(matched) else 0.0,
        "net_live": net_live,
        "net_backtest": net_bt,
        "net_gap": round(net_live - net_bt, 2),
    }
    return TradeGap(trades, summary)


def _mean(frame: pd.DataFrame, column: str) -> float | None:
    values = frame[column].dropna() if len(frame) else pd.Series(dtype=float)
    return round(float(values.mean()), 3) if len(values) else None


def _max(frame: pd.DataFrame, column: str) -> float | None:
    values = frame[column].dropna().abs() if len(frame) else pd.Series(dtype=float)
    return round(float(values.max()), 3) if len(values) else None


def _row(a: Any, b: Any, points: dict[str, float]) -> dict[str, Any]:
    """One trade: live ``a`` and backtest ``b`` (either may be None)."""
    x = a if a is not None else b
    point = points.get(str(x["symbol"]), 1e-5)
    sign = 1 if int(x["type"]) == BUY else -1  # a buy that paid more, or a sell that got less, is worse

    def gap(col: str, digits: int = 2) -> float | None:
        if a is None or b is None or a[col] is None or b[col] is None or pd.isna(a[col]) or pd.isna(b[col]):
            return None
        return round(float(a[col]) - float(b[col]), digits)

    def slip(col: str, against: int) -> float | None:
        g = gap(col, 10)
        return None if g is None else round(against * g / point, 1)

    def when(r: Any, col: str) -> str:
        if r is None or r[col] is None or pd.isna(r[col]):
            return ""
        return pd.Timestamp(int(r[col]), unit="ns", tz="UTC").strftime("%Y-%m-%d %H:%M:%S")

    delay = None if a is None or b is None else round((int(a["time_open"]) - int(b["time_open"])) / 1e9, 3)
    return {
        "match": "both"
        if a is not None and b is not None
        else ("live only" if b is None else "backtest only"),
        "strategy": x["strategy"],
        "symbol": x["symbol"],
        "type": "buy" if int(x["type"]) == BUY else "sell",
        "entry_live": when(a, "time_open"),
        "entry_backtest": when(b, "time_open"),
        "entry_delay_s": delay,
        "price_open_live": None if a is None else float(a["price_open"]),
        "price_open_backtest": None if b is None else float(b["price_open"]),
        "entry_slippage_points": slip("price_open", sign),
        "exit_slippage_points": slip("price_close", -sign),
        "costs_gap": gap("costs") or 0.0,
        "net_live": None if a is None else float(a["net"]),
        "net_backtest": None if b is None else float(b["net"]),
        "net_gap": gap("net"),
    }


def render(gap: TradeGap) -> str:
    s = gap.summary
    head = "".join(f"<th>{esc(c)}</th>" for c in gap.trades.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc('' if v is None or v != v else v)}</td>" for v in row) + "</tr>"
        for row in gap.trades.itertuples(index=False)
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    sections = [
        ("gap", "Summary of the gap", kv_html([(k, "-" if v is None else str(v)) for k, v in s.items()])),
        ("trades", "Trade by trade (live minus backtest)", table),
    ]
    html = "".join(f"<section id='{a}'><h2>{esc(t)}</h2>{c}</section>" for a, t, c in sections)
    title = f"{s['live_run']} vs backtest {s['backtest_run']}"
    return page(f"mt5tester live vs backtest {title}", esc(title), [(a, t) for a, t, _ in sections], html, 0)


def write_live_compare(
    engine: Engine, live_id: str, backtest_id: str, out_dir: Path
) -> tuple[Path, TradeGap]:
    gap = trade_gap(engine, live_id, backtest_id)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"live_vs_backtest_{safe_filename(live_id)}_{safe_filename(backtest_id)}.html"
    path.write_text(render(gap), encoding="utf-8")
    return path, gap


def session_ids(engine: Engine, run_ids: list[str]) -> list[str]:
    """The runs among ``run_ids`` that are live or paper sessions."""
    t = db.live_sessions
    with engine.connect() as conn:
        return [r for (r,) in conn.execute(select(t.c.run_id).where(t.c.run_id.in_(run_ids)))]
