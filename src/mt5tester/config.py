"""The run configuration: one YAML file, pydantic v2 models (frozen, unknown keys rejected).

Errors name the file, the key path, the line and the closest valid key. ``lookback_bars`` is a
deprecated alias of ``warmup_bars``.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import json
import logging
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core.core_schema import ValidationInfo

from mt5tester.config_input import read_config_text, read_yaml
from mt5tester.errors import ConfigError, did_you_mean
from mt5tester.model import limits
from mt5tester.model.symbol import BUILTIN_SYMBOLS, SymbolSpec, build_symbol, check_symbol_name
from mt5tester.model.timeframe import TF, Timeframe

log = logging.getLogger(__name__)

TesterMode = Literal["every_tick", "ohlc_m1", "open_prices", "real_ticks"]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def value_hint(error: Any) -> str:
    """A "did you mean" for a value outside a fixed set (pydantic literal or enum error)."""
    if error["type"] not in ("literal_error", "enum"):
        return ""
    return did_you_mean(error["input"], re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected"))))


# Text stored in a length-limited column of the results database is refused here, before bar 1:
# PostgreSQL would refuse it mid-run and SQLite would store it silently.
# Broker spellings (EURUSD.a, "GBPUSD DFX 10 Index") are fine; characters no file name can hold are not.
SymbolName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.SYMBOL),
    AfterValidator(check_symbol_name),
]


class BacktestConfig(_Section):
    start: dt.date = Field(description="first day simulated (00:00 UTC)")
    end: dt.date = Field(description="end day, not included (as MT5's tester)")
    symbols: list[SymbolName] = Field(min_length=1)
    timeframes: list[TF] = Field(default_factory=list, description="extra timeframes to preload")
    primary_timeframe: TF = Timeframe.H1
    warmup_bars: int = Field(default=100, ge=1, description="closed bars each strategy call sees")
    tester_mode: TesterMode = "ohlc_m1"
    initial_deposit: float = Field(default=10_000.0, gt=0)
    deposit_currency: str = Field(default="USD", min_length=3, max_length=3)
    leverage: int = Field(default=100, ge=1)
    account_mode: Literal["hedging", "netting"] = "hedging"
    server_timezone: str = "UTC"
    seed: int = 42
    on_strategy_error: Literal["stop", "disable", "continue"] = "stop"
    strategy_orders: Literal["review", "refuse"] = Field(
        default="review",
        description="orders a strategy sends itself (self.ctx.mt5.order_send, Buy, Sell, Close): review: "
        "entries are reviewed by the coordinator and recorded like signals (a rejection returns retcode "
        "10006 REJECT), exits pass as signal exits do; refuse: any such request is a strategy error "
        "(on_strategy_error applies)",
    )
    close_at_end: bool = True
    margin_call_level: float = Field(
        default=50.0, ge=0, description="margin level % (or money) of margin call"
    )
    stop_out_level: float = Field(default=30.0, ge=0, description="margin level % (or money) of stop out")
    stop_out_mode: Literal["percent", "money"] = "percent"

    @field_validator("symbols")
    @classmethod
    def _upper_unique(cls, v: list[str]) -> list[str]:
        out = [s.strip() for s in v]
        dupes = sorted(s for s, n in collections.Counter(out).items() if n > 1)
        if dupes:
            raise ValueError(f"symbols listed twice: {', '.join(dupes)}")
        return out

    @model_validator(mode="after")
    def _range(self) -> BacktestConfig:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        return self


class DataConfig(_Section):
    source: Literal["files", "catalog"] = Field(
        default="files",
        description="files: {SYMBOL}_M1*.parquet in `path`; catalog: the data catalog at `catalog`",
    )
    path: Path = Field(default=Path("data"), description="folder with {SYMBOL}_M1*.parquet files")
    catalog: Path = Field(default=Path("catalog"), description="catalog folder (mt5tester data import ...)")
    min_health: float = Field(
        default=0.0, ge=0, le=100, description="refuse to start below this health score"
    )
    allow_unhealthy: bool = Field(default=False, description="run even below min_health (said in the report)")
    source_timezone: str | None = Field(
        default=None,
        description="clock of MT5 export files for `data import --config` (broker server time); "
        "default: backtest.server_timezone",
    )


class StrategyConfig(_Section):
    class_: str = Field(
        alias="class",
        max_length=limits.STRATEGY_SPEC,
        description="built-in name, 'pkg.module:Class' or 'file.py:Class'",
    )
    name: str | None = Field(
        default=None, max_length=limits.STRATEGY_NAME, description="default: the class name"
    )
    params: dict[str, Any] = Field(default_factory=dict)
    symbols: list[SymbolName] | None = Field(default=None, description="default: all backtest symbols")
    timeframe: TF | None = Field(default=None, description="default: backtest.primary_timeframe")
    volume: float = Field(default=0.1, gt=0, description="lots per signal before sizing rules")
    trade: bool = Field(default=True, description="false: signals only feed the fusion strategies naming it")
    category: Literal["technical", "smc", "ml", "fusion"] | None = Field(
        default=None, description="default: the class's category (legacy strategies: technical)"
    )

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class StrategyFolderConfig(_Section):
    """``{folder: path/to/technical, category: technical}``: every strategy class of every ``*.py`` file in
    the folder (files starting with ``_`` excluded), each loaded as if listed alone (strategy/folders.py)."""

    folder: Path = Field(description="folder of strategy files, relative to the config file")
    category: Literal["technical", "smc", "ml", "fusion"] | None = Field(
        default=None, description="category of every strategy found; default: each class's own"
    )
    params: dict[str, Any] = Field(default_factory=dict, description="params given to every class found")
    symbols: list[SymbolName] | None = Field(default=None, description="default: all backtest symbols")
    timeframe: TF | None = Field(default=None, description="default: backtest.primary_timeframe")
    volume: float = Field(default=0.1, gt=0, description="lots per signal before sizing rules")
    position: int = Field(default=0, ge=0, description="its index in `strategies:` as written")


class PortfolioConfig(_Section):
    categories: list[Literal["technical", "smc", "ml", "fusion"]] = Field(
        default_factory=list, description="categories the portfolio must contain (each with >= 1 strategy)"
    )


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class TimeWindowConfig(_Section):
    """A daily window on the broker's server clock, e.g. ``{days: [fri], from: "21:55", to: "22:10"}``."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    days: list[Weekday] | None = Field(default=None, description="server-time weekdays; default: every day")
    from_: str = Field(alias="from", pattern=_HHMM, description="HH:MM server time, inclusive")
    to: str = Field(
        pattern=_HHMM, description="HH:MM server time, exclusive; earlier than `from` wraps past midnight"
    )


class SizingConfig(_Section):
    """How the coordinator sizes entries (risk/sizing.py); the result is rounded down to volume_step."""

    mode: Literal["fixed", "risk", "volatility"] = Field(
        default="fixed",
        description="fixed: `lots` (or the signal's / strategy's volume); risk: risk_pct of equity lost at "
        "the SL; volatility: risk_pct of equity lost on one ATR move",
    )
    lots: float | None = Field(
        default=None, gt=0, description="fixed mode: lots of every entry; default: the signal's/strategy's"
    )
    risk_pct: float = Field(default=1.0, gt=0, le=100, description="risk and volatility modes: % of equity")
    atr_period: int = Field(default=14, ge=1, description="volatility mode: ATR bars (closed bars only)")
    atr_timeframe: TF = Field(default=Timeframe.H1, description="volatility mode: ATR timeframe")


class CoordinatorConfig(_Section):
    """The risk coordinator (risk/coordinator.py). Every rule below is off by default (None / empty)."""

    max_positions: int = Field(default=50, ge=1, description="open positions in total (all strategies)")
    max_positions_per_symbol: int = Field(default=20, ge=1, description="open positions on one symbol")
    max_positions_per_strategy: int | None = Field(
        default=None, ge=1, description="open positions of one strategy (ownership from the engine)"
    )
    conflict_policy: Literal["net", "highest_confidence", "reject_both"] | None = Field(
        default=None,
        description="opposite entries on one symbol in one bar from different strategies: net the volumes, "
        "keep the highest confidence, or reject both; default: no check",
    )
    sizing: SizingConfig | None = Field(
        default=None, description="entry sizing; default: the signal's/strategy's volume unchanged"
    )
    max_total_risk_pct: float | None = Field(
        default=None, gt=0, description="% of equity lost if every open SL and this one hit"
    )
    total_risk_policy: Literal["reject", "resize"] = Field(
        default="reject", description="over max_total_risk_pct: reject, or resize down to fit"
    )
    max_currency_exposure: dict[str, float] | None = Field(
        default=None,
        description="net exposure per currency in deposit currency, e.g. {EUR: 200000}; '*' = every "
        "currency but the deposit currency",
    )
    exposure_policy: Literal["reject", "resize"] = Field(
        default="reject", description="over max_currency_exposure: reject, or resize down to fit"
    )
    max_correlation: float | None = Field(
        default=None,
        ge=-1,
        le=1,
        description="reject/resize an entry whose sign-adjusted return correlation with an open "
        "position's symbol exceeds this",
    )
    correlation_window: int = Field(default=50, ge=3, description="closed-bar returns in the correlation")
    correlation_timeframe: TF = Field(default=Timeframe.H1, description="bars of the correlation")
    correlation_policy: Literal["reject", "resize"] = Field(
        default="reject",
        description="over max_correlation: reject, or scale volume by (1 - corr) / (1 - max_correlation)",
    )
    min_free_margin_pct: float | None = Field(
        default=None, ge=0, le=100, description="free margin after the trade (order_check) >= % of equity"
    )
    min_free_margin: float | None = Field(
        default=None, ge=0, description="free margin after the trade (order_check) >= this money"
    )
    daily_loss_limit_pct: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="no entries once equity is this % below the equity at the server day's start",
    )
    max_drawdown_pct: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="no more entries once equity is this % below its peak (latched for the run)",
    )
    close_all_on_breach: bool = Field(
        default=False, description="with a daily loss / drawdown breach, ask the engine to close everything"
    )
    block_weekends: bool = Field(default=False, description="no entries on Saturday and Sunday (server time)")
    sessions: list[TimeWindowConfig] = Field(
        default_factory=list, description="entries only inside one of these windows; empty: any time"
    )
    blocked: list[TimeWindowConfig] = Field(
        default_factory=list, description="no entries inside these windows (e.g. the rollover)"
    )
    regime_gate: dict[str, list[str]] | None = Field(
        default=None,
        description="{strategy: [regime labels]}: a listed strategy trades only in those regimes",
    )
    regime_risk: dict[str, float] | None = Field(
        default=None, description="{regime label: volume multiplier} applied by sizing"
    )
    risk_multiplier: float = Field(
        default=1.0, gt=0, description="every entry's volume x this, before rounding down (trading modes)"
    )


class RegimeParams(BaseModel):
    """Settings of the regime detector (config section ``regime``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["rules", "hmm"] = Field(default="rules", description="rules (ADX/ATR) or hmm")
    timeframe: str = Field(
        default="H4", description="MT5 timeframe name of the bars the regime is computed on (e.g. H4)"
    )
    adx_period: int = Field(default=14, ge=2, description="rules: Wilder period of +DI/-DI and ADX")
    adx_trend: float = Field(default=25.0, ge=0, le=100, description="rules: ADX at or above = trending")
    atr_period: int = Field(default=14, ge=1, description="rules: Wilder period of the ATR")
    atr_pct_window: int = Field(
        default=500, ge=2, description="rules: bars (current included) the ATR percentile is taken over"
    )
    atr_volatile_pct: float = Field(
        default=90.0, gt=0, le=100, description="rules: ATR percentile at or above = volatile"
    )
    rv_window: int = Field(default=20, ge=2, description="log returns in the realised volatility")
    hmm_states: int = Field(default=3, ge=2, le=8, description="hmm: number of hidden states")
    hmm_train_bars: int = Field(default=2000, ge=50, description="hmm: bars each model is fitted on")
    hmm_refit_every: int = Field(default=500, ge=1, description="hmm: bars between refits")
    hmm_trend_ratio: float = Field(
        default=0.05,
        ge=0,
        description="hmm: |state mean return| / state return std at or above = trending (by sign)",
    )
    seed: int = Field(default=42, ge=0, description="hmm: random_state of every fit")
    min_bars: int = Field(
        default=0, ge=0, description="extra warm-up: bars with index below this are always unknown (-1)"
    )

    @field_validator("timeframe")
    @classmethod
    def _timeframe_name(cls, value: str) -> str:
        return Timeframe.parse(value).name

    @property
    def tf(self) -> Timeframe:
        return Timeframe[self.timeframe]


class RegimeConfig(RegimeParams):
    """Regime detection per symbol (regime/detectors.py): the label of each symbol's last closed
    ``timeframe`` bar is attached to every signal and drives coordinator.regime_gate / regime_risk."""

    enabled: bool = Field(default=False, description="detect regimes (needed by regime_gate and regime_risk)")


class SpreadConfig(_Section):
    source: Literal["data", "fixed"] = "data"
    points: int | None = Field(default=None, ge=0, description="with source=fixed; default: symbol spread")


class SlippageConfig(_Section):
    model: Literal["none", "fixed", "random"] = "none"
    points: int = Field(default=0, ge=0)


class ExecutionConfig(_Section):
    spread: SpreadConfig = SpreadConfig()
    slippage: SlippageConfig = SlippageConfig()
    commission: Literal["symbol", "none"] = Field(default="symbol", description="use symbols' commission")
    intrabar_policy: Literal["pessimistic", "ohlc_path"] = Field(
        default="pessimistic",
        description="SL and TP inside one M1 bar (bar modes): pessimistic takes the SL; ohlc_path follows "
        "MT5's Open-Low-High-Close (bullish) / Open-High-Low-Close (bearish) path; counted either way",
    )


class TradingModeConfig(_Section):
    """One named trading-mode profile (strategy/modes.py): what it selects and what it changes.

    Selections narrow the config (a strategy is kept when its name or category is listed, its timeframe
    is listed and it trades a listed symbol); the rest override the ``coordinator:`` keys."""

    description: str = ""
    strategies: list[str] | None = Field(
        default=None, description="strategy names or categories (technical, smc, ml, fusion); default: all"
    )
    timeframes: list[TF] | None = Field(
        default=None, description="strategies on these timeframes; default: all"
    )
    symbols: list[SymbolName] | None = Field(default=None, description="a subset of backtest.symbols")
    coordinator: dict[str, Any] = Field(
        default_factory=dict, description="coordinator keys this mode overrides, e.g. {max_positions: 2}"
    )
    risk_multiplier: float | None = Field(default=None, gt=0, description="every entry's volume x this")
    sessions: list[TimeWindowConfig] | None = Field(default=None, description="coordinator.sessions")
    blocked: list[TimeWindowConfig] | None = Field(default=None, description="coordinator.blocked")
    regimes: list[str] | None = Field(
        default=None, description="entries only in these regime labels (a regime_gate for every strategy)"
    )


class ModeSwitchConfig(_Section):
    """A switch inside one run: while ``windows`` (server time) or ``regimes`` (the symbol's regime)
    hold, ``mode`` is in force instead of ``trading_mode``. The first switch that holds wins."""

    mode: str
    windows: list[TimeWindowConfig] | Literal["blocked"] | None = Field(
        default=None, description="time windows, or 'blocked': the coordinator's blocked windows"
    )
    margin_minutes: int = Field(
        default=0, ge=0, le=720, description="widen each window by this on both sides"
    )
    regimes: list[str] | None = Field(default=None, description="the symbol's regime label is one of these")

    @model_validator(mode="after")
    def _one_condition(self) -> ModeSwitchConfig:
        if (self.windows is None) == (self.regimes is None):
            raise ValueError("give either 'windows' or 'regimes' (when the switch holds)")
        return self


# One results database by default for every command (backtest, demo, run-script, runs, report), relative
# to the current folder, so runs of different configs can be listed and compared together.
DEFAULT_DATABASE_URL = "sqlite:///runs/mt5tester.sqlite"


class ResultsConfig(_Section):
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL; default: runs/mt5tester.sqlite in the current folder, the database "
        "every command uses by default (runs, report, demo); a relative sqlite path set here is relative "
        "to this file",
    )
    out_dir: Path = Path("runs")
    checkpoint_seconds: float | None = Field(
        default=60.0,
        gt=0,
        description="wall seconds between checkpoints (resume with --resume RUN_ID); null: off",
    )
    connect_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="give up connecting to the results database after this long (exit 6); PostgreSQL "
        "counts whole seconds, at least 2",
    )
    statement_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="give up a statement (or a lock wait) of the results database after this long (exit 6)",
    )
    equity_sampling: str = Field(
        default="point",
        description=(
            "equity rows: 'point' (every decision point) or a timeframe (M5, H1, D1, ...): the first "
            "decision point of each of its periods on the server clock, and the last point"
        ),
    )

    @field_validator("equity_sampling")
    @classmethod
    def _sampling(cls, v: str) -> str:
        if v == "point":
            return v
        try:
            return Timeframe.parse(v).name
        except ValueError:
            raise ValueError(
                f"equity_sampling must be 'point' or a timeframe name (M1, M5, H1, D1, ...), not {v!r}"
            ) from None


class ReportConfig(_Section):
    html: bool = True
    # how a report page gets plotly.js: inlined (offline, ~4.8 MB per file), one shared plotly.min.js
    # written beside the reports ("directory"), or loaded from the plotly CDN ("cdn", needs a network)
    plotlyjs: Literal["inline", "directory", "cdn"] = "inline"


class LiveConfig(_Section):
    """``mt5tester live`` / ``paper``: the same config traded through a MetaTrader5 terminal."""

    kill_switch: Literal["close", "freeze"] = Field(
        default="close", description="on stop: close our positions and pending orders, or leave them"
    )
    stop_file: Path = Field(
        default=Path("live.stop"), description="a session stops when this file appears (mt5tester live stop)"
    )
    poll_seconds: float = Field(default=1.0, gt=0, description="live: seconds between quote polls")
    history_bars: int = Field(
        default=1000, ge=1, description="closed bars fetched for prepare() (at least backtest.warmup_bars)"
    )
    requote_retries: int = Field(default=3, ge=0, description="resends on a requote or off quotes")
    reconnect_attempts: int = Field(default=3, ge=0, description="initialize() tries after a lost connection")
    module: str = Field(default="MetaTrader5", description="the MetaTrader5-API module live mode imports")


class Config(_Section):
    backtest: BacktestConfig
    data: DataConfig = DataConfig()
    symbols: dict[str, dict[str, Any]] = Field(default_factory=dict, description="overrides of SymbolSpec")
    strategies: list[StrategyConfig] = Field(default_factory=list)
    strategy_folders: list[StrategyFolderConfig] = Field(
        default_factory=list,
        description="filled from `strategies:` entries with `folder:` (expanded before the strategies load)",
    )
    trading_modes: dict[str, TradingModeConfig] = Field(
        default_factory=dict, description="named profiles; one is selected by trading_mode / --trading-mode"
    )
    trading_mode: str | None = Field(default=None, description="the profile in force (--trading-mode NAME)")
    trading_mode_switch: list[ModeSwitchConfig] = Field(
        default_factory=list, description="profiles switched to inside the run by time window or regime"
    )
    portfolio: PortfolioConfig = PortfolioConfig()
    coordinator: CoordinatorConfig = CoordinatorConfig()
    regime: RegimeConfig = RegimeConfig()
    execution: ExecutionConfig = ExecutionConfig()
    results: ResultsConfig = ResultsConfig()
    report: ReportConfig = ReportConfig()
    live: LiveConfig = LiveConfig()
    _origin: dict[str, Any] = PrivateAttr(default_factory=dict)  # source file and key-path lines
    _mode_diff: dict[str, Any] | None = PrivateAttr(default=None)  # what trading_mode changed

    @model_validator(mode="before")
    @classmethod
    def _split_folders(cls, raw: Any) -> Any:
        """``strategies:`` entries with ``folder:`` go to ``strategy_folders`` (with their position), so
        every other entry keeps the plain StrategyConfig shape (and its error messages)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("strategies"), list):
            return raw
        entries = raw["strategies"]
        folders = [
            {**e, "position": i} for i, e in enumerate(entries) if isinstance(e, dict) and "folder" in e
        ]
        if not folders:
            return raw
        plain = [e for e in entries if not (isinstance(e, dict) and "folder" in e)]
        return {**raw, "strategies": plain, "strategy_folders": [*raw.get("strategy_folders", []), *folders]}

    @model_validator(mode="after")
    def _regime_rules_need_detection(self) -> Config:
        if not self.regime.enabled and (self.coordinator.regime_gate or self.coordinator.regime_risk):
            raise ValueError(
                "coordinator.regime_gate / regime_risk need regime.enabled: true (without detection every "
                "signal's regime is unknown)"
            )
        return self

    def where(self, *loc: Any) -> str:
        """'file:line' of a key path in the file this config was read from (for checks made after
        parsing, e.g. strategy params); just the file when the key is not in it."""
        return _where(self._origin.get("source", "<config>"), self._origin.get("lines", {}), loc)

    def check_symbol_specs(self) -> None:
        """Every symbol the run trades has a complete spec (built-in, also with a broker suffix, or
        defined under ``symbols:``), so the build never meets an incomplete one. Checked by
        ``config check`` and by the build, after ``--symbols`` has narrowed the run."""
        written = self._origin.get("symbols", [])
        for name in self.backtest.symbols:
            if name in self.symbols:
                continue
            try:
                build_symbol(name, None)
            except ValidationError as e:
                missing = [str(x["loc"][0]) for x in e.errors() if x["type"] == "missing"]
                if "digits" in missing and "point" in missing:  # point defaults to 10^-digits
                    missing.remove("point")
                at = (written.index(name),) if name in written else ()
                raise ConfigError(
                    f"{self.where('backtest', 'symbols', *at)}: backtest.symbols: '{name}' has no built-in "
                    f"symbol spec (built-ins: {', '.join(BUILTIN_SYMBOLS)}); define it under "
                    f"'symbols: {name}:' with {', '.join(missing)}"
                ) from None

    def symbol_spec(self, name: str) -> SymbolSpec:
        return build_symbol(name, self.symbols.get(name))

    def strategy_timeframes(self) -> list[Timeframe]:
        tfs = {s.timeframe or self.backtest.primary_timeframe for s in self.strategies}
        return sorted(tfs)

    @field_validator("strategies")
    @classmethod
    def _open_prices_one_timeframe(
        cls, v: list[StrategyConfig], info: ValidationInfo
    ) -> list[StrategyConfig]:
        # MT5's "open prices only" (spec 6.1) tests one expert on one timeframe: the OHLC of that
        # timeframe's bars resolve SL/TP, pending orders and stop-out, and the expert runs only at their
        # opens. A strategy on another timeframe would trade inside bars whose whole OHLC is already
        # used, or have its stops resolved on bars MT5 would not use for it.
        bt = info.data.get("backtest")
        if bt is None or bt.tester_mode != "open_prices":
            return v
        by_tf: dict[Timeframe, list[str]] = {}
        for s in v:
            by_tf.setdefault(s.timeframe or bt.primary_timeframe, []).append(s.name or s.class_)
        if len(by_tf) > 1:
            used = "; ".join(f"{tf.name}: {', '.join(names)}" for tf, names in sorted(by_tf.items()))
            raise ValueError(
                "backtest.tester_mode open_prices resolves SL/TP on the bars of one tested timeframe, as "
                f"MT5 does, but the strategies use {len(by_tf)} ({used}). Give every strategy the same "
                "timeframe (strategies[].timeframe or backtest.primary_timeframe), run each timeframe "
                "separately, or use tester_mode ohlc_m1 or every_tick."
            )
        return v

    def effective(self) -> dict[str, Any]:
        """The effective config as plain JSON data (defaults filled in), for storage and hashing; with a
        trading mode applied, ``trading_mode_diff`` lists what it changed ({key: [before, after]})."""
        out: dict[str, Any] = json.loads(self.model_dump_json(by_alias=True))
        if self._mode_diff is not None:
            out["trading_mode_diff"] = self._mode_diff
        return out

    def config_hash(self) -> str:
        blob = json.dumps(self.effective(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------- loading


def _field_model(model: Any, loc: tuple[Any, ...]) -> Any:
    """The pydantic model class reached by following ``loc`` from ``model`` (None if not a model)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = None
            for fname, f in current.model_fields.items():
                if part in (fname, f.alias):
                    field = f
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) in (list, dict):
            current = typing.get_args(current)[-1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else tp
    return tp


def _valid_keys(model: Any) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _where(source: str, lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> str:
    """``file:line`` of the innermost key of ``loc`` that the file has (just ``file`` if none)."""
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return f"{source}:{lines[loc[:n]]}"
    return source


def _check_symbols(cfg: Config, source: str, lines: dict[tuple[Any, ...], int]) -> None:
    """Every symbol defined under ``symbols:`` is valid (whether or not this run trades it)."""
    for name, overrides in cfg.symbols.items():
        try:
            build_symbol(name, overrides)
        except ValidationError as e:
            first = e.errors()[0]
            loc = ("symbols", name, *first["loc"])
            raise ConfigError(
                f"{_where(source, lines, loc)}: {'.'.join(map(str, loc))}: {first['msg']}{value_hint(first)}"
            ) from None


def _format_errors(err: ValidationError, source: str, lines: dict[tuple[Any, ...], int]) -> str:
    msgs = []
    for e in err.errors():
        loc = tuple(e["loc"])
        path = ".".join(str(p) for p in loc) or "(top level)"
        where = _where(source, lines, loc)
        if e["type"] == "extra_forbidden":
            parent = _field_model(Config, loc[:-1])
            hint = ""
            if parent is not None:
                keys = _valid_keys(parent)
                hint = f"{did_you_mean(loc[-1], keys)} Valid keys here: {', '.join(keys)}"
            msgs.append(f"{where}: unknown key '{path}'{hint}")
        else:
            msgs.append(f"{where}: {path}: {e['msg']}{value_hint(e)}")
    return "config error in " + source + "\n  " + "\n  ".join(msgs)


def _apply_aliases(raw: dict[str, Any], source: str) -> None:
    """lookback_bars → warmup_bars (deprecated alias), with a warning."""
    bt = raw.get("backtest")
    if isinstance(bt, dict) and "lookback_bars" in bt:
        if "warmup_bars" in bt:
            raise ConfigError(
                f"{source}: backtest has both 'lookback_bars' and 'warmup_bars'; remove 'lookback_bars' "
                "(deprecated alias)"
            )
        log.warning(
            "%s: backtest.lookback_bars is deprecated, use backtest.warmup_bars (the number of closed bars "
            "each strategy call sees)",
            source,
        )
        bt["warmup_bars"] = bt.pop("lookback_bars")


def _set_path(raw: dict[str, Any], dotted: str, value: Any) -> None:
    node = raw
    *parents, last = dotted.split(".")
    for p in parents:
        child = node.get(p, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot override {dotted}: {p} is not a section")
        node[p] = node = dict(child)  # a copy: the caller's dict (or a shared alias) stays as it was
    node[last] = value


def parse_config(
    raw: Any, source: str = "<config>", overrides: dict[str, Any] | None = None, lines: dict | None = None
) -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the config must be a mapping with sections (backtest, data, ...)")
    # the sections changed below are copied, not the whole tree (which may be large)
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    diff = raw.pop("trading_mode_diff", None)  # a stored effective config: derived, not a setting
    _apply_aliases(raw, source)
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_path(raw, key, value)
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_errors(e, source, lines or {})) from None
    _check_symbols(cfg, source, lines or {})
    cfg._origin.update(source=source, lines=lines or {}, symbols=list(cfg.backtest.symbols))
    cfg._mode_diff = diff
    return cfg


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read, validate and return the config. Relative paths in it are relative to the file's folder."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    text = read_config_text(p)
    try:
        raw, lines = read_yaml(text, str(p))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        reason = " ".join(str(x) for x in (getattr(e, "context", None), getattr(e, "problem", None)) if x)
        raise ConfigError(f"{where}: invalid YAML: {reason or e}") from None
    cfg = parse_config(raw, str(p), overrides, lines)
    return _resolve_paths(cfg, p.parent)


def _resolve_paths(cfg: Config, base: Path) -> Config:
    data_path = cfg.data.path if cfg.data.path.is_absolute() else (base / cfg.data.path)
    catalog = cfg.data.catalog if cfg.data.catalog.is_absolute() else (base / cfg.data.catalog)
    out_dir = cfg.results.out_dir if cfg.results.out_dir.is_absolute() else (base / cfg.results.out_dir)
    url = cfg.results.database_url
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        # the default database is the current folder's (shared by every command); a path the file sets
        # is relative to the file, like every other path in it
        folder = base if "database_url" in cfg.results.model_fields_set else Path.cwd()
        url = prefix + str((folder / url[len(prefix) :]).resolve())
    return cfg.model_copy(
        update={
            "data": cfg.data.model_copy(update={"path": data_path.resolve(), "catalog": catalog.resolve()}),
            "results": cfg.results.model_copy(update={"out_dir": out_dir.resolve(), "database_url": url}),
        }
    )


def json_schema() -> dict[str, Any]:
    schema = Config.model_json_schema(by_alias=True)
    # `strategies:` also takes folder entries (Config moves them to strategy_folders when parsing)
    strategies = schema["properties"]["strategies"]
    folder = schema["properties"]["strategy_folders"]["items"]
    strategies["items"] = {"anyOf": [strategies["items"], folder]}
    return schema
