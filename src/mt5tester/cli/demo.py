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


# A per-bar Python strategy that decides from the bars alone and says so (``bars_only``): the run calls it
# at every bar close first (a signal pass), then the compiled kernel trades its signals (signal_pass.py).
BARS_ONLY_STRATEGY = '''"""SMA(10)/SMA(40) cross on the closed bars alone, with SL/TP in points."""

import numpy as np

from mt5tester.model.signal import Signal
from mt5tester.strategy.base import Strategy


class SmaBars(Strategy):
    data_format = "numpy"
    bars_only = True  # its signals read its bars only: never the account, positions or deals

    def generate_signals(self, symbol, timeframe, df):
        close = df.close
        if len(close) < 41:
            return []
        now = close[-10:].mean() - close[-40:].mean()
        before = close[-11:-1].mean() - close[-41:-1].mean()
        if now == 0 or np.sign(now) == np.sign(before):
            return []
        side = "buy" if now > 0 else "sell"
        return [Signal(symbol=symbol, direction=side, sl_points=300, tp_points=600, comment="sma 10/40")]
'''


def prepare_drivers_demo(out: Path) -> Path:
    """A config for the demo's drivers step: the bars_only SMA cross on M15 of three symbols, half a year,
    with the coordinator's count limits, a blocked window and risk-% sizing (all compiled)."""
    folder = out / "strategies" / "kernel"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sma_bars.py").write_text(BARS_ONLY_STRATEGY)
    cfg = demo_config()
    cfg["backtest"] |= {
        "symbols": ["EURUSD", "GBPUSD", "USDJPY"],
        "primary_timeframe": "M15",
        "warmup_bars": 60,
    }
    cfg["strategies"] = [
        {"class": "strategies/kernel/sma_bars.py:SmaBars", "name": "sma_bars", "volume": 0.1}
    ]
    for key in ("trading_modes", "trading_mode", "trading_mode_switch", "portfolio"):
        cfg.pop(key, None)
    cfg["coordinator"] = {
        "max_positions": 6,
        "max_positions_per_symbol": 2,
        "sizing": {"mode": "risk", "risk_pct": 0.5},
        "blocked": [{"days": ["fri"], "from": "15:25", "to": "15:40"}],
    }
    cfg["regime"] = {"enabled": False}
    cfg["results"] = {"out_dir": "reports", "equity_sampling": "H1"}
    path = out / "drivers.yaml"
    path.write_text(
        "# Written by `mt5tester demo`: the drivers step.\n" + yaml.safe_dump(cfg, sort_keys=False)
    )
    return path


def run_drivers_demo(out: Path, console: Any) -> None:
    """`mt5tester demo`'s drivers step: the same run on the Python loop and on the signal pass + compiled
    kernel, timed, with the records compared (identical, or the demo fails)."""
    import time

    from mt5tester.config import load_config
    from mt5tester.engine.run import run
    from mt5tester.results.memory import MemorySink

    path = prepare_drivers_demo(out)
    cfg = load_config(path)
    runs, seconds = [], []
    # auto twice: the first run after install compiles the kernel (numba, cached for later runs)
    for driver in ("auto", "loop", "auto"):
        t0 = time.perf_counter()
        runs.append(run(cfg, base_dir=out, sink=MemorySink(), driver=driver))
        seconds.append(time.perf_counter() - t0)
    compiled = seconds[0] - seconds[2]
    seconds, (_, loop, fast) = seconds[1:], runs
    same = all(
        getattr(loop, t).reset_index(drop=True).equals(getattr(fast, t).reset_index(drop=True))
        for t in ("deals", "orders", "positions", "signals", "equity")
    )
    if not same or fast.funnel["driver"] != "kernel":
        raise RuntimeError(f"drivers demo: records differ or no kernel ({fast.funnel['driver_reason']})")
    console.print(
        f"drivers: {path.name}, a bars_only per-bar Python strategy on 3 symbols M15 "
        f"({loop.funnel['decision_points']:,} points, {loop.deal_count - 1} deals): Python loop "
        f"{seconds[0]:.2f} s, signal pass + compiled kernel {seconds[1]:.2f} s, identical records"
        + (f" (its first run compiled the kernel once: {compiled:.1f} s more)" if compiled > 2 else "")
    )


def demo_study_configs() -> list[tuple[str, dict[str, Any]]]:
    """Two small studies on the demo data: a grid over the SMA cross's periods with a forward quarter, and
    a rolling walk-forward of two folds (4 weeks in-sample, 2 out-of-sample); seconds, in this process."""
    base: dict[str, Any] = {
        "backtest": {
            "start": "2024-01-01",
            "end": "2024-03-01",
            "symbols": ["EURUSD"],
            "primary_timeframe": "H1",
            "warmup_bars": 60,
        },
        "data": {"path": "data"},
        "strategies": [{"class": "ma_cross", "name": "sma", "params": {"sl_points": 300, "tp_points": 600}}],
        "results": {"out_dir": "reports", "checkpoint_seconds": None},
    }
    params = {
        "strategies.sma.params.fast": {"start": 5, "step": 5, "stop": 10},
        "strategies.sma.params.slow": {"choices": [30, 50]},
    }
    grid = base | {
        "optimize": {"parameters": params, "method": "grid", "criterion": "balance", "forward": "1/4"}
    }
    walk = base | {
        "optimize": {
            "parameters": params,
            "method": "grid",
            "walk_forward": {"mode": "rolling", "folds": 2, "in_sample": "4w", "out_of_sample": "2w"},
        }
    }
    return [("optimize", grid), ("walk_forward", walk)]


def run_demo_studies(out: Path, console: Any) -> None:
    """`mt5tester demo`'s last step: the two demo studies, stored in the default database."""
    from mt5tester.config import load_config
    from mt5tester.optimize.driver import optimize

    for name, cfg in demo_study_configs():
        path = out / f"demo_{name}.yaml"
        path.write_text("# Written by `mt5tester demo`.\n" + yaml.safe_dump(cfg, sort_keys=False))
        result = optimize(load_config(path), base_dir=out, workers=1)
        best = result.best or {}
        profit = (best.get("metrics") or {}).get("total_net_profit")
        params = {k.rsplit(".", 1)[-1]: v for k, v in (best.get("params") or {}).items()}
        line = f"{name}: study {result.study_id}, {result.executed} passes, best {params}"
        line += f" (net profit {profit:.2f})"
        if name == "walk_forward":
            wfe = ", ".join("-" if f["wfe"] is None else f"{f['wfe']:.2f}" for f in result.folds)
            line += (
                f", out-of-sample net profit {result.summary.get('oos_net_profit'):.2f}, WFE per fold {wfe}"
            )
        console.print(line + f" (mt5tester optimize show {result.study_id})")
