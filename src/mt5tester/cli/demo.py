"""`mt5tester demo`: synthetic data (made here, seeded) plus a config that exercises every built stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mt5tester.data.demo import write_demo_data

DEMO_SYMBOLS = ["EURUSD", "GBPUSD", "USDJPY", "EURGBP", "XAUUSD"]
DATA_START, DATA_END = "2023-10-01", "2024-07-01"


def demo_config() -> dict[str, Any]:
    return {
        "backtest": {
            "start": "2024-01-01",
            "end": "2024-07-01",
            "symbols": DEMO_SYMBOLS,
            "primary_timeframe": "H1",
            "warmup_bars": 200,
            "tester_mode": "ohlc_m1",
            "initial_deposit": 10000,
            "deposit_currency": "USD",
            "leverage": 100,
            "server_timezone": "Europe/Athens",
            "seed": 42,
        },
        "data": {"path": "data"},
        "symbols": {"EURUSD": {"commission": 3.5}, "GBPUSD": {"commission": 3.5}},
        "strategies": [
            {
                "class": "ma_cross",
                "name": "sma_h1",
                "params": {"fast": 20, "slow": 50, "sl_points": 400, "tp_points": 800},
                "volume": 0.1,
            },
            {
                "class": "ma_cross",
                "name": "sma_m15_eurusd",
                "timeframe": "M15",
                "symbols": ["EURUSD"],
                "params": {"fast": 10, "slow": 40, "sl_points": 200, "tp_points": 300},
                "volume": 0.2,
            },
            {"class": "donchian_trend", "name": "donchian", "symbols": ["EURUSD", "GBPUSD", "XAUUSD"]},
            {"class": "smc_structure", "name": "smc", "symbols": ["EURUSD", "USDJPY"]},
            {"class": "ml_walkforward", "name": "ml", "symbols": ["EURUSD"]},
            {"class": "rsi_reversion", "name": "rsi_member", "trade": False, "symbols": ["GBPUSD", "EURGBP"]},
            {"class": "macd_cross", "name": "macd_member", "trade": False, "symbols": ["GBPUSD", "EURGBP"]},
            {
                "class": "weighted_vote",
                "name": "vote",
                "symbols": ["GBPUSD", "EURGBP"],
                "params": {"members": ["rsi_member", "macd_member"], "threshold": 0.5},
            },
            # a strategy of the original system, unchanged (strategy/legacy.py), from its category folder
            {
                "folder": "strategies/technical",
                "category": "technical",
                "symbols": ["USDJPY"],
                "timeframe": "H4",
                "params": {"n": 12},
            },
        ],
        # trading-mode profiles: normal by default, news (half size, 3 positions, trend strategies only)
        # within an hour of the blocked news window (strategy/modes.py, engine/modes.py)
        "trading_modes": {
            "normal": {"description": "everything as configured"},
            "news": {
                "strategies": ["sma_h1", "donchian"],
                "risk_multiplier": 0.5,
                "coordinator": {"max_positions": 3},
            },
        },
        "trading_mode": "normal",
        "trading_mode_switch": [{"mode": "news", "windows": "blocked", "margin_minutes": 60}],
        "portfolio": {"categories": ["technical", "smc", "ml", "fusion"]},
        "coordinator": {
            "max_positions": 8,
            "max_positions_per_symbol": 3,
            "sizing": {"mode": "risk", "risk_pct": 0.5},
            "max_correlation": 0.8,
            "daily_loss_limit_pct": 3.0,
            "blocked": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "23:55", "to": "00:10"},
                {"days": ["fri"], "from": "15:25", "to": "15:40"},  # a weekly news release
            ],
            "regime_gate": {"sma_h1": ["trending_up", "trending_down"]},
            "regime_risk": {"volatile": 0.5},
        },
        "regime": {"enabled": True, "timeframe": "H4", "atr_pct_window": 200},
        # no database_url: the demo's run goes to the default database, where `runs list` finds it
        "results": {"out_dir": "reports"},
    }


# A strategy in the original system's shape (mt5_manager in the constructor, generate_signals(symbol),
# a dict signal), loaded unchanged through `strategies: [{folder: ..., category: ...}]`.
LEGACY_STRATEGY = """\
class ChannelBreakout:
    \"\"\"Buys a close above the last n bars' high, sells one below their low.\"\"\"

    def __init__(self, mt5_manager, symbols, timeframe="H1", n=20):
        self.mt5_manager, self.symbols, self.timeframe, self.n = mt5_manager, symbols, timeframe, n

    def generate_signals(self, symbol):
        df = self.mt5_manager.get_rates(symbol, self.timeframe, self.n + 1)
        if df is None or len(df) <= self.n:
            return None
        last, before = df.iloc[-1], df.iloc[:-1]
        if last["close"] > before["high"].max():
            return {"symbol": symbol, "action": "BUY", "sl_points": 400, "tp_points": 800}
        if last["close"] < before["low"].min():
            return {"symbol": symbol, "action": "SELL", "sl_points": 400, "tp_points": 800}
        return None
"""


def prepare_demo(out: Path) -> Path:
    """Write the demo data (idempotent) and config into ``out``; return the config path."""
    out.mkdir(parents=True, exist_ok=True)
    write_demo_data(out / "data", DEMO_SYMBOLS, DATA_START, DATA_END, seed=42)
    legacy = out / "strategies" / "technical"
    legacy.mkdir(parents=True, exist_ok=True)
    (legacy / "channel_breakout.py").write_text(LEGACY_STRATEGY)
    path = out / "demo.yaml"
    path.write_text("# Written by `mt5tester demo`.\n" + yaml.safe_dump(demo_config(), sort_keys=False))
    return path


def prepare_paper_demo(out: Path) -> Path:
    """A paper session for the demo: the H1 moving-average cross on EURUSD, replaying one week of the
    demo data through the simulated terminal posing as MetaTrader5 (a few seconds)."""
    cfg = demo_config()
    cfg["backtest"] |= {"start": "2024-06-03", "end": "2024-06-10", "symbols": ["EURUSD"]}
    cfg["strategies"] = [s for s in cfg["strategies"] if s.get("name") == "sma_h1"]
    for key in ("trading_modes", "trading_mode", "trading_mode_switch"):  # the backtest shows those
        cfg.pop(key, None)
    cfg["portfolio"] = {"categories": ["technical"]}
    cfg["coordinator"] = {"max_positions": 8}
    cfg["regime"] = {"enabled": False}
    cfg["live"] = {"stop_file": "paper.stop"}
    path = out / "paper.yaml"
    path.write_text(
        "# Written by `mt5tester demo`: mt5tester paper --config paper.yaml\n" + yaml.safe_dump(cfg)
    )
    return path


def lookahead_config(strategy: str) -> Path:
    """A config running ``strategy`` (a class spec) alone on the demo data's EURUSD H1, in a temp folder
    (the caller removes it). A fusion strategy gets two built-in members (``trade: false``)."""
    import tempfile

    from mt5tester.strategy.base import FusionStrategy
    from mt5tester.strategy.loader import resolve_class

    where, _, cls_name = strategy.rpartition(":")
    if where.endswith(".py"):  # a file path is relative to the working folder, not the temp config's
        strategy = f"{Path(where).resolve()}:{cls_name}"
    cls, _ = resolve_class(strategy, Path.cwd(), f"'{strategy}'")
    entry: dict[str, Any] = {"class": strategy, "name": cls_name or strategy}
    members: list[dict[str, Any]] = []
    if issubclass(cls, FusionStrategy):
        members = [
            {"class": "ma_cross", "name": "member_ma_cross", "trade": False},
            {"class": "rsi_reversion", "name": "member_rsi_reversion", "trade": False},
        ]
        entry["params"] = {"members": [m["name"] for m in members]}
    out = Path(tempfile.mkdtemp(prefix="mt5tester-check-"))
    write_demo_data(out / "data", ["EURUSD"], DATA_START, "2024-03-01", seed=42)
    cfg = {
        "backtest": {
            "start": "2024-01-01",
            "end": "2024-03-01",
            "symbols": ["EURUSD"],
            "primary_timeframe": "H1",
            "warmup_bars": 200,
        },
        "data": {"path": "data"},
        "strategies": [*members, entry],
        "results": {"database_url": "sqlite:///check.sqlite", "out_dir": "reports"},
    }
    path = out / "check.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path
