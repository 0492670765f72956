"""MT5 Strategy Tester report metrics from any deals table (spec 6.6, "Confirmed definitions" 1-12).

One code path serves MT5's own reports (``read_deals_csv`` on a deals table copied from a tester report)
and our runs (``deals_frame_from_db``). The input is a DataFrame in MT5's report column layout:

    time, deal, symbol, type, direction, volume, price, order, commission, swap, profit, balance, comment
    (+ optional position_id)

``type`` is 'buy'/'sell'/'balance'/... or DEAL_TYPE_* ints; ``direction`` is 'in'/'out'/'in/out'/'out by'
or DEAL_ENTRY_* ints (empty for balance operations). Rows are taken in the given order (deal order).

Definitions that the spec leaves open ([U]) are chosen here and marked [U] where they are implemented:
Sharpe ratio, the daily return series behind Sharpe/Sortino/CAGR/Calmar, the equity fallback, tie rules.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mt5tester.errors import DataError

# --- DEAL_TYPE_* / DEAL_ENTRY_* (spec 4.8) and the words MT5's report prints for them -------------------
DEAL_BUY, DEAL_SELL, DEAL_BALANCE, DEAL_CREDIT = 0, 1, 2, 3
ENTRY_IN, ENTRY_OUT, ENTRY_INOUT, ENTRY_OUT_BY = 0, 1, 2, 3
ENTRY_NONE = -1  # balance operations carry no direction in the report
CLOSING_ENTRIES = (ENTRY_OUT, ENTRY_INOUT, ENTRY_OUT_BY)

DEAL_TYPE_NAMES: dict[str, int] = {
    "buy": 0,
    "sell": 1,
    "balance": 2,
    "credit": 3,
    "charge": 4,
    "correction": 5,
    "bonus": 6,
    "commission": 7,
    "commission daily": 8,
    "commission monthly": 9,
    "agent commission daily": 10,
    "agent commission monthly": 11,
    "interest": 12,
    "buy canceled": 13,
    "sell canceled": 14,
    "dividend": 15,
    "dividend franked": 16,
    "tax": 17,
}
ENTRY_NAMES: dict[str, int] = {
    "": ENTRY_NONE,
    "in": ENTRY_IN,
    "out": ENTRY_OUT,
    "in/out": ENTRY_INOUT,
    "inout": ENTRY_INOUT,
    "in out": ENTRY_INOUT,
    "out by": ENTRY_OUT_BY,
    "out_by": ENTRY_OUT_BY,
    "outby": ENTRY_OUT_BY,
}

DEAL_COLUMNS = [
    "time",
    "deal",
    "symbol",
    "type",
    "direction",
    "volume",
    "price",
    "order",
    "commission",
    "swap",
    "profit",
    "balance",
    "comment",
]
# header words accepted for each column (after lower-casing and collapsing spaces/underscores)
_HEADER_ALIASES: dict[str, str] = {
    "time": "time",
    "deal": "deal",
    "ticket": "deal",
    "symbol": "symbol",
    "type": "type",
    "direction": "direction",
    "entry": "direction",
    "volume": "volume",
    "price": "price",
    "order": "order",
    "commission": "commission",
    "swap": "swap",
    "profit": "profit",
    "balance": "balance",
    "comment": "comment",
    "position id": "position_id",
    "position": "position_id",
}
_REQUIRED = ("time", "type", "direction", "profit")
_NUMERIC = ("volume", "price", "commission", "swap", "profit", "balance")
_INTEGER = ("deal", "order", "position_id")
_TIME_FORMATS = ("%Y.%m.%d %H:%M:%S", "%Y.%m.%d %H:%M", "%Y.%m.%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")
_SPACES = str.maketrans("", "", " \u00a0\u2009\u202f'")  # thousands separators MT5 exports may contain

EPS = 1e-9  # money comparisons (money is in cents; this only absorbs float noise)
PERIODS_PER_YEAR = 252  # business days: annualisation of the daily series (same default as empyrical)
SECONDS_PER_YEAR = 365.25 * 86400.0
Z_CONFIDENCE_CAP = 99.74  # spec 6.6 confirmed 9: printed confidence for |z| > 3


# --- result ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mt5Metrics:
    """The MT5 tester report's "Results" block, in report order. Money in deposit currency.

    Ratios that are undefined (division by zero, too few points) are None; money figures of an empty
    category (e.g. largest loss trade with no losses) are 0.0, as the MT5 report prints them.
    """

    initial_deposit: float
    total_net_profit: float
    gross_profit: float
    gross_loss: float
    profit_factor: float | None
    expected_payoff: float | None
    recovery_factor: float | None
    sharpe_ratio: float | None
    z_score: float | None
    z_score_confidence_pct: float | None
    ahpr: float | None
    ahpr_pct: float | None
    ghpr: float | None
    ghpr_pct: float | None
    lr_correlation: float | None
    lr_standard_error: float | None
    margin_level_min: float | None
    balance_dd_absolute: float
    balance_dd_maximal: float
    balance_dd_maximal_pct: float
    balance_dd_relative_pct: float
    balance_dd_relative: float
    equity_dd_absolute: float
    equity_dd_maximal: float
    equity_dd_maximal_pct: float
    equity_dd_relative_pct: float
    equity_dd_relative: float
    equity_source: str
    total_trades: int
    total_deals: int
    short_trades: int
    short_trades_won_pct: float | None
    long_trades: int
    long_trades_won_pct: float | None
    profit_trades: int
    profit_trades_pct: float | None
    loss_trades: int
    loss_trades_pct: float | None
    largest_profit_trade: float
    largest_loss_trade: float
    average_profit_trade: float
    average_loss_trade: float
    max_consecutive_wins: int
    max_consecutive_wins_money: float
    max_consecutive_losses: int
    max_consecutive_losses_money: float
    maximal_consecutive_profit: float
    maximal_consecutive_profit_count: int
    maximal_consecutive_loss: float
    maximal_consecutive_loss_count: int
    average_consecutive_wins: int
    average_consecutive_losses: int
    min_holding_time_s: float | None
    max_holding_time_s: float | None
    avg_holding_time_s: float | None
    # beyond the MT5 report (definitions in compute_metrics)
    final_balance: float
    sortino_ratio: float | None
    cagr_pct: float | None
    calmar_ratio: float | None
    daily_returns: int
    first_deal_time: str | None
    last_deal_time: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- loading --------------------------------------------------------------------------------------------
def _norm_header(h: str) -> str:
    return " ".join(h.strip().strip("\ufeff").lower().replace("_", " ").split())


def _parse_number(text: str, decimal_comma: bool) -> float:
    s = text.translate(_SPACES)
    if decimal_comma and "," in s and "." not in s:
        s = s.replace(",", ".")
    if s == "":
        return 0.0
    return float(s)


def _parse_time(text: str) -> datetime:
    s = text.strip()
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(s, fmt)
        except ValueError:
            continue
    return datetime.fromisoformat(s)  # ISO 8601 (raises ValueError otherwise)


def _code(text: str, names: dict[str, int], what: str) -> int:
    s = " ".join(text.strip().lower().split())
    if s in names:
        return names[s]
    if s.lstrip("-").isdigit():
        return int(s)
    raise ValueError(f"unknown deal {what} {text.strip()!r}")


def read_deals_csv(path: str | Path) -> pd.DataFrame:
    """Read a deals table in MT5 report layout from a comma, semicolon or tab separated file.

    Header names are case-insensitive ('Time', 'Deal', ..., as in MT5's HTML report); an optional
    'Position'/'position_id' column is kept. Numbers may carry spaces as thousands separators
    ('10 000.00'); with ';' as separator a decimal comma is accepted too. The report's closing totals row
    (no time, deal or type) and blank lines are skipped. Anything else that does not parse raises
    DataError naming the file, line and text.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{p}: cannot read the deals file: {e}") from None
    lines = text.splitlines()
    header_line = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if header_line is None:
        raise DataError(f"{p}: empty deals file")
    head = lines[header_line]
    sep = max((",", ";", "\t"), key=head.count)
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    header: list[str] | None = None
    cols: list[str | None] = []
    records: dict[str, list[Any]] = {}
    for row in reader:
        line_no = reader.line_num
        raw = sep.join(row)
        if not any(c.strip() for c in row):
            continue
        if header is None:
            header = row
            cols = [_HEADER_ALIASES.get(_norm_header(h)) for h in row]
            missing = [c for c in _REQUIRED if c not in cols]
            if missing:
                raise DataError(
                    f"{p}:{line_no}: deals header lacks column(s) {', '.join(missing)}: {raw!r} "
                    f"(expected {', '.join(DEAL_COLUMNS)})"
                )
            records = {c: [] for c in cols if c is not None}
            continue
        if len(row) != len(header):
            raise DataError(
                f"{p}:{line_no}: malformed deals row: {len(row)} fields, header has {len(header)}: {raw!r}"
            )
        fields = {c: v for c, v in zip(cols, row, strict=True) if c is not None}
        if not any(fields.get(k, "").strip() for k in ("time", "deal", "type")):
            continue  # the report's totals row
        try:
            parsed = _parse_row(fields, sep == ";")
        except ValueError as e:
            raise DataError(f"{p}:{line_no}: malformed deals row ({e}): {raw!r}") from None
        for c, v in parsed.items():
            records[c].append(v)
    if header is None:
        raise DataError(f"{p}: no header line")
    df = pd.DataFrame(records)
    df["time"] = pd.to_datetime(df["time"]) if len(df) else pd.Series([], dtype="datetime64[ns]")
    for c in DEAL_COLUMNS:
        if c not in df.columns:
            if c == "balance":
                df[c] = np.nan
            elif c in _NUMERIC:
                df[c] = 0.0
            else:
                df[c] = None if c in _INTEGER else ""
    extra = ["position_id"] if "position_id" in df.columns else []
    return df[DEAL_COLUMNS + extra]


def _parse_row(fields: dict[str, str], decimal_comma: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c, v in fields.items():
        if c == "time":
            out[c] = _parse_time(v)
        elif c == "type":
            out[c] = _code(v, DEAL_TYPE_NAMES, "type")
        elif c == "direction":
            out[c] = _code(v, ENTRY_NAMES, "direction")
        elif c in _NUMERIC:
            out[c] = None if (c == "balance" and not v.strip()) else _parse_number(v, decimal_comma)
        elif c in _INTEGER:
            s = v.translate(_SPACES)
            out[c] = int(s) if s else None
        else:
            out[c] = v.strip()
    return out


def deals_frame_from_db(engine: Any, run_id: str) -> pd.DataFrame:
    """Our results DB's ``deals`` of one run in MT5 report layout (+ position_id), in ticket order.

    ``time`` becomes tz-aware UTC; type and direction stay DEAL_TYPE_* / DEAL_ENTRY_* ints.
    """
    from sqlalchemy import select

    from mt5tester.results import db

    t = db.deals
    with engine.connect() as conn:
        res = conn.execute(select(t).where(t.c.run_id == run_id).order_by(t.c.ticket))
        df = pd.DataFrame(res.all(), columns=list(res.keys()))
    return mt5_layout(df)


def mt5_layout(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of the results DB's ``deals`` table (ticket order; time as int ns or tz-aware UTC) in MT5
    report layout (+ position_id)."""
    time = df["time"]
    out = pd.DataFrame(
        {
            "time": time
            if isinstance(time.dtype, pd.DatetimeTZDtype)
            else pd.to_datetime(time.astype("int64"), unit="ns", utc=True),
            "deal": df["ticket"].astype("int64"),
            "symbol": df["symbol"].astype(str),
            "type": df["type"].astype("int64"),
            "direction": df["entry"].astype("int64"),
            "volume": df["volume"].astype(float),
            "price": df["price"].astype(float),
            "order": df["order"].astype("int64"),
            "commission": df["commission"].astype(float),
            "swap": df["swap"].astype(float),
            "profit": df["profit"].astype(float),
            "balance": df["balance"].astype(float),
            "comment": df["comment"].astype(str),
            "position_id": df["position_id"].astype("int64"),
        }
    )
    return out.reset_index(drop=True)


def equity_frame_from_db(engine: Any, run_id: str) -> pd.DataFrame:
    """Our results DB's ``equity`` samples of one run as (time UTC, equity), for compute_metrics."""
    from sqlalchemy import select

    from mt5tester.results import db

    t = db.equity
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.time, t.c.equity).where(t.c.run_id == run_id).order_by(t.c.time)).all()
    times = [r[0] for r in rows]
    return pd.DataFrame(
        {
            "time": pd.to_datetime(pd.Series(times, dtype="int64"), unit="ns", utc=True),
            "equity": pd.Series([r[1] for r in rows], dtype=float),
        }
    )


# --- small formulas (each one testable and replaceable) ---------------------------------------------------
def _codes(values: pd.Series, names: dict[str, int], what: str) -> np.ndarray:
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu":
        return values.to_numpy(np.int64)  # codes already (our runs' deals): int(v) of each, at once
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values.tolist()):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out[i] = ENTRY_NONE
        elif isinstance(v, int | np.integer | float):
            out[i] = int(v)
        else:
            try:
                out[i] = _code(str(v), names, what)
            except ValueError as e:
                raise DataError(f"deals row {i}: {e}") from None
    return out


def _naive_utc(times: pd.Series) -> pd.Series:
    t = pd.to_datetime(times)
    if isinstance(t.dtype, pd.DatetimeTZDtype):
        t = t.dt.tz_convert("UTC").dt.tz_localize(None)
    return t.astype("datetime64[ns]")  # one resolution (pandas 3 infers s/ms/us/ns per input)


def normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def z_score(wins: Sequence[bool]) -> tuple[float | None, float | None]:
    """Runs test (spec 6.6, confirmed 9): Z = (N(R−0.5) − P)/sqrt(P(P−N)/(N−1)), P = 2WL.

    Confidence % = two-sided normal-table value 2Φ(|z|)−1 at |z| rounded to 2 decimals (as a printed
    table is read), capped at 99.74% for |z| > 3. (None, None) when undefined (N < 2, all wins or all losses).
    """
    n = len(wins)
    if n < 2:
        return None, None
    w = sum(1 for x in wins if x)
    los = n - w
    runs = 1 + sum(1 for a, b in itertools.pairwise(wins) if a != b)
    p = 2.0 * w * los
    var = p * (p - n) / (n - 1)
    if var <= 0:
        return None, None
    z = (n * (runs - 0.5) - p) / math.sqrt(var)
    if abs(z) > 3:
        return z, Z_CONFIDENCE_CAP
    return z, (2.0 * normal_cdf(round(abs(z), 2)) - 1.0) * 100.0


def sharpe_ratio(returns: np.ndarray, periods_per_year: float = PERIODS_PER_YEAR) -> float | None:
    """[U] spec 6.6 leaves MT5's Sharpe open ("traditional formula", risk-free 0, not per trade).

    Chosen: the traditional annualised Sharpe of the daily balance returns (see ``daily_balance_returns``):
    mean(r)/std(r, ddof=1)·sqrt(periods_per_year), risk-free 0. None with < 2 returns or std = 0.
    """
    if len(returns) < 2:
        return None
    sd = float(np.std(returns, ddof=1))
    if sd <= EPS * EPS:
        return None
    return float(np.mean(returns)) / sd * math.sqrt(periods_per_year)


def sortino_ratio(returns: np.ndarray, periods_per_year: float = PERIODS_PER_YEAR) -> float | None:
    """Annualised Sortino, target 0: mean(r)·ppy / (sqrt(mean(min(r,0)²))·sqrt(ppy)) (empyrical's form).

    None with < 2 returns or no downside (the ratio would be infinite).
    """
    if len(returns) < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if downside <= EPS * EPS:
        return None
    return float(np.mean(returns)) * periods_per_year / (downside * math.sqrt(periods_per_year))


def cagr_pct(growth: float, years: float) -> float | None:
    """Compound annual growth in %: (growth^(1/years) − 1)·100.

    None if years ≤ 0, growth ≤ 0, or the figure overflows a float (a very short, very profitable run).
    """
    if years <= 0 or growth <= 0:
        return None
    try:
        return (growth ** (1.0 / years) - 1.0) * 100.0
    except OverflowError:
        return None


def linear_regression_stats(y: np.ndarray) -> tuple[float | None, float | None]:
    """(Pearson r, standard error) of y against x = 0..n−1 (spec 6.6, confirmed 10-11).

    Standard error = sqrt(SSE/(n−2)) of the least-squares line. r is None when either series is constant.
    """
    n = len(y)
    if n < 3:
        return None, None
    x = np.arange(n, dtype=float)
    dx = x - x.mean()
    dy = y - y.mean()
    sxx = float(dx @ dx)
    syy = float(dy @ dy)
    sxy = float(dx @ dy)
    slope = sxy / sxx
    resid = dy - slope * dx
    se = math.sqrt(max(float(resid @ resid), 0.0) / (n - 2))
    r = sxy / math.sqrt(sxx * syy) if syy > EPS else None
    return r, se


@dataclass(frozen=True)
class Drawdowns:
    absolute: float
    maximal: float
    maximal_pct: float
    relative_pct: float
    relative: float


def drawdowns(values: np.ndarray, restarts: Sequence[int] = ()) -> Drawdowns:
    """Absolute / Maximal / Relative drawdown of a curve whose first value is the deposit (spec 6.6).

    Absolute = start − lowest value below it (0 if never below). Maximal = the largest peak-to-later-trough
    fall in money, with that fall in % of its peak. Relative = the largest fall in % of its peak, with its
    money value; it may come from another episode than Maximal. Ties keep the first episode.
    ``restarts``: indices where a withdrawal/deposit happened; the calculation restarts there from the new
    value (absolute measured from it), and the largest figure over the segments is reported.
    """
    bounds = sorted({0, *[i for i in restarts if 0 < i < len(values)], len(values)})
    absolute = maximal = maximal_pct = relative_pct = relative = 0.0
    for a, b in itertools.pairwise(bounds):
        seg = values[a:b]
        if len(seg) == 0:
            continue
        absolute = max(absolute, float(seg[0] - seg.min()))
        peak = np.maximum.accumulate(seg)
        fall = peak - seg
        i = int(np.argmax(fall))
        if fall[i] > maximal + EPS:
            maximal = float(fall[i])
            maximal_pct = maximal / float(peak[i]) * 100.0 if peak[i] > 0 else 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = np.where(peak > 0, fall / peak * 100.0, 0.0)
        j = int(np.argmax(pct))
        if pct[j] > relative_pct + EPS:
            relative_pct = float(pct[j])
            relative = float(fall[j])
    return Drawdowns(absolute, maximal, maximal_pct, relative_pct, relative)


@dataclass(frozen=True)
class Streaks:
    max_wins: int
    max_wins_money: float
    max_losses: int
    max_losses_money: float
    max_profit: float
    max_profit_count: int
    max_loss: float
    max_loss_count: int
    avg_wins: int
    avg_losses: int


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def streaks(results: Sequence[float]) -> Streaks:
    """Win/loss streaks in deal order (spec 6.6, confirmed 4 and 6): result ≥ 0 is a win.

    Longest streak (count) with its sum; of several longest streaks, the one whose sum is largest in
    magnitude (spec 6.6: [1, 2, -5, 40, 50] gives 2 (90.00)). Largest streak sum with its count; full
    ties keep the first streak.
    Average consecutive wins/losses = mean streak length rounded to the nearest integer (halves up [U]).
    """
    runs: list[tuple[bool, int, float]] = []  # (win, length, sum)
    for r in results:
        win = r >= -EPS
        if runs and runs[-1][0] == win:
            w, n, s = runs[-1]
            runs[-1] = (w, n + 1, s + r)
        else:
            runs.append((win, 1, r))
    wins = [(n, s) for w, n, s in runs if w]
    losses = [(n, s) for w, n, s in runs if not w]
    mw = max(wins, key=lambda t: (t[0], abs(t[1])), default=(0, 0.0))
    ml = max(losses, key=lambda t: (t[0], abs(t[1])), default=(0, 0.0))
    mp = max(wins, key=lambda t: t[1], default=(0, 0.0))
    mlo = min(losses, key=lambda t: t[1], default=(0, 0.0))
    avg_w = _round_half_up(sum(n for n, _ in wins) / len(wins)) if wins else 0
    avg_l = _round_half_up(sum(n for n, _ in losses) / len(losses)) if losses else 0
    return Streaks(mw[0], mw[1], ml[0], ml[1], mp[1], mp[0], mlo[1], mlo[0], avg_w, avg_l)


def daily_balance_returns(
    times: pd.Series, balance_after: np.ndarray, flows: np.ndarray, start_balance: float
) -> np.ndarray:
    """[U] The daily series behind Sharpe, Sortino and CAGR.

    One value per business day (Mon-Fri) from the first to the last deal's date in the deals' own clock
    (server time for MT5 reports, UTC for our runs); a weekend deal counts on the following Monday. The day's
    balance is the balance after its last deal (carried over days without deals); the first day starts from
    ``start_balance``. r_d = (B_d − F_d)/B_(d−1) − 1 where F_d is the day's balance operations (deposits,
    withdrawals after the initial deposit), so cash flows are not returns.
    """
    if len(times) == 0:
        return np.empty(0)
    t = _naive_utc(times).reset_index(drop=True)
    day = t.dt.normalize()
    day = day + pd.offsets.BDay(0)  # roll Saturday/Sunday forward to Monday
    grid = pd.bdate_range(day.iloc[0], day.iloc[-1])
    frame = pd.DataFrame({"day": day, "bal": balance_after, "flow": flows})
    close = frame.groupby("day")["bal"].last().reindex(grid).ffill().fillna(start_balance).to_numpy()
    flow = frame.groupby("day")["flow"].sum().reindex(grid).fillna(0.0).to_numpy()
    prev = np.concatenate(([start_balance], close[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(prev > 0, (close - flow) / prev - 1.0, 0.0)
    return np.asarray(r, dtype=float)


def holding_times(
    position_ids: np.ndarray, times: pd.Series, signed_volume: np.ndarray, is_trade: np.ndarray
) -> list[float]:
    """Seconds from a position's first deal to the deal that brings its volume back to zero, in the order
    of those closing deals.

    Partial closes and reversals (INOUT keeps the position id) do not end the holding period; positions
    still open at the end are left out (spec 6.6 "open → full close"). A position id used again after a
    full close starts a new period. Vectorised over positions: the k-th deals of every position are
    added at once, k = 1, 2, ..., so each position's running volume is summed in deal order (as a loop
    over the deals would: the same floats).
    """
    t = (_naive_utc(times).astype("int64") / 1e9).to_numpy()
    pids = np.asarray(position_ids)
    idx = np.flatnonzero(np.asarray(is_trade, dtype=bool) & ~pd.isna(pids))
    if not len(idx):
        return []
    keys = pids[idx].astype(np.int64)
    ts, vol = t[idx], np.asarray(signed_volume, dtype=float)[idx]
    positions, slot = np.unique(keys, return_inverse=True)
    by_pos = np.argsort(slot, kind="stable")
    counts = np.bincount(slot, minlength=len(positions))
    rank = np.empty(len(idx), np.int64)
    rank[by_pos] = np.arange(len(idx)) - np.repeat(np.cumsum(counts) - counts, counts)
    net, opened = np.zeros(len(positions)), np.zeros(len(positions))
    is_open = np.zeros(len(positions), dtype=bool)
    closing: list[np.ndarray] = []
    held: list[np.ndarray] = []
    for k in range(int(rank.max()) + 1):
        at = np.flatnonzero(rank == k)
        s = slot[at]
        new = ~is_open[s]
        opened[s[new]], net[s[new]], is_open[s[new]] = ts[at[new]], 0.0, True
        net[s] = net[s] + vol[at]
        flat = np.abs(net[s]) < 1e-9
        closing.append(at[flat])
        held.append(ts[at[flat]] - opened[s[flat]])
        is_open[s[flat]] = False
    order = np.argsort(np.concatenate(closing), kind="stable")
    return [float(x) for x in np.concatenate(held)[order].tolist()]


# --- the report ---------------------------------------------------------------------------------------------
def _pct(part: int, whole: int) -> float | None:
    return part / whole * 100.0 if whole else None


def _col(deals: pd.DataFrame, name: str) -> np.ndarray:
    if name not in deals.columns:
        return np.zeros(len(deals))
    return pd.to_numeric(deals[name], errors="coerce").fillna(0.0).to_numpy(dtype=float)


def compute_metrics(
    deals: pd.DataFrame,
    deposit: float | None = None,
    equity: pd.DataFrame | None = None,
    margin_level_min: float | None = None,
) -> Mt5Metrics:
    """MT5 tester report metrics from a deals table (spec 6.6 and its Confirmed definitions 1-12).

    ``deposit``: the initial deposit; by default the first row's amount when that row is a balance
    operation (the report's deposit deal). ``equity``: optional samples (columns time, equity) for the
    equity drawdowns; without it the equity curve is approximated by the per-deal balance curve and
    ``equity_source`` says so. ``margin_level_min`` is passed through (it needs margin data).

    Balance curve: deposit + running sum of profit + swap + commission, replaced by the frame's own
    ``balance`` column when that is complete and agrees on the first row (MT5's figures, exact to the cent).
    """
    n_rows = len(deals)
    types = _codes(deals["type"], DEAL_TYPE_NAMES, "type") if n_rows else np.empty(0, np.int64)
    entries = _codes(deals["direction"], ENTRY_NAMES, "direction") if n_rows else np.empty(0, np.int64)
    profit, swap, commission = _col(deals, "profit"), _col(deals, "swap"), _col(deals, "commission")
    net = profit + swap + commission

    # initial deposit: the leading balance operation (spec 3.8: type BALANCE, profit = amount)
    is_trade_deal = (types == DEAL_BUY) | (types == DEAL_SELL)
    has_deposit_row = n_rows > 0 and not is_trade_deal[0]
    if deposit is None:
        if not has_deposit_row:
            raise DataError(
                "no initial deposit: the first deal is not a balance deal and no deposit was given"
            )
        deposit = float(net[0])
    b0 = float(deposit)

    # balance after every row; balance operations after the deposit are cash flows (not P/L). A credit
    # operation moves the account's credit, not its balance (spec 7: equity = balance + credit + ...):
    # MT5's Balance column stays put on it, so it is neither P/L nor a flow here.
    flows = np.where(is_trade_deal | (types == DEAL_CREDIT), 0.0, net)
    if has_deposit_row:
        flows[0] = 0.0
    steps = np.where(is_trade_deal, net, flows)
    balance = b0 + np.cumsum(steps)
    given = pd.to_numeric(deals["balance"], errors="coerce") if "balance" in deals.columns else None
    if (
        given is not None
        and n_rows
        and given.notna().all()
        and abs(float(given.iloc[0]) - balance[0]) < 0.005
    ):
        balance = given.to_numpy(dtype=float)  # the report's own balance column, exact to the cent
    curve = np.concatenate(([b0], balance))
    restarts = [int(i) + 1 for i in np.flatnonzero(flows != 0.0)]

    # trades: closing deals (confirmed 1); result = profit + swap + commission of that deal (confirmed 1-2)
    closing = is_trade_deal & np.isin(entries, CLOSING_ENTRIES)
    results = net[closing]
    wins = results >= -EPS  # confirmed 4: 0.00 is a win
    # confirmed 5: a closing sell ends a long, a closing buy ends a short
    longs = types[closing] == DEAL_SELL
    n_trades = int(closing.sum())

    # confirmed 3: GP/GL over the net of every trading deal, entries included
    trade_net = net[is_trade_deal]
    gross_profit = float(trade_net[trade_net > 0].sum())
    gross_loss = float(trade_net[trade_net < 0].sum())
    total_net = gross_profit + gross_loss

    win_res, loss_res = results[wins], results[~wins]
    s = streaks(results.tolist())
    z, z_conf = z_score(wins.tolist())

    # confirmed 8: HPR over the balance right after each closing deal, B_0 = deposit
    b_close = balance[closing]
    b_prev = np.concatenate(([b0], b_close[:-1]))
    ahpr = float(np.mean(b_close / b_prev)) if n_trades and (b_prev > 0).all() else None
    ghpr = (b_close[-1] / b0) ** (1.0 / n_trades) if n_trades and b0 > 0 and b_close[-1] > 0 else None
    lr_r, lr_se = linear_regression_stats(np.concatenate(([b0], b_close)))

    # confirmed 7: balance drawdowns on the balance after every row, from the deposit
    bdd = drawdowns(curve, restarts)
    if equity is not None and len(equity):
        eq = equity.sort_values("time", kind="stable")
        eq_values = np.concatenate(([b0], pd.to_numeric(eq["equity"]).to_numpy(dtype=float)))
        eq_times = _naive_utc(eq["time"]).to_numpy()
        deal_times = _naive_utc(deals["time"]).to_numpy()
        eq_restarts = [int(np.searchsorted(eq_times, deal_times[i - 1])) + 1 for i in restarts]
        edd = drawdowns(eq_values, eq_restarts)
        equity_source = "equity samples"
    else:
        edd = bdd
        equity_source = "balance (approximation: no equity samples; equity drawdowns = balance drawdowns)"

    # holding times need position ids (MT5 report tables do not show them)
    hold: list[float] | None = None
    if "position_id" in deals.columns and n_rows:
        vol = _col(deals, "volume") * np.where(types == DEAL_BUY, 1.0, -1.0)
        hold = holding_times(deals["position_id"].to_numpy(), deals["time"], vol, is_trade_deal)

    # beyond MT5: daily series (Sharpe [U], Sortino), CAGR and Calmar
    times = deals["time"] if n_rows else pd.Series([], dtype="datetime64[ns]")
    daily = daily_balance_returns(times, balance, flows, b0)
    years = 0.0
    first_t = last_t = None
    if n_rows:
        tt = _naive_utc(deals["time"])
        first_t, last_t = tt.iloc[0], tt.iloc[-1]
        years = (last_t - first_t).total_seconds() / SECONDS_PER_YEAR
    growth = float(np.prod(1.0 + daily)) if len(daily) else 1.0
    cagr = cagr_pct(growth, years)
    calmar = cagr / edd.relative_pct if cagr is not None and edd.relative_pct > EPS else None

    return Mt5Metrics(
        initial_deposit=b0,
        total_net_profit=total_net,
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        profit_factor=gross_profit / -gross_loss if gross_loss < -EPS else None,
        expected_payoff=total_net / n_trades if n_trades else None,
        recovery_factor=total_net / edd.maximal if edd.maximal > EPS else None,  # confirmed 12
        sharpe_ratio=sharpe_ratio(daily),
        z_score=z,
        z_score_confidence_pct=z_conf,
        ahpr=ahpr,
        ahpr_pct=(ahpr - 1.0) * 100.0 if ahpr is not None else None,
        ghpr=ghpr,
        ghpr_pct=(ghpr - 1.0) * 100.0 if ghpr is not None else None,
        lr_correlation=lr_r,
        lr_standard_error=lr_se,
        margin_level_min=margin_level_min,
        balance_dd_absolute=bdd.absolute,
        balance_dd_maximal=bdd.maximal,
        balance_dd_maximal_pct=bdd.maximal_pct,
        balance_dd_relative_pct=bdd.relative_pct,
        balance_dd_relative=bdd.relative,
        equity_dd_absolute=edd.absolute,
        equity_dd_maximal=edd.maximal,
        equity_dd_maximal_pct=edd.maximal_pct,
        equity_dd_relative_pct=edd.relative_pct,
        equity_dd_relative=edd.relative,
        equity_source=equity_source,
        total_trades=n_trades,
        total_deals=int(is_trade_deal.sum()),  # spec 6.6: buy and sell deals only, never balance deals
        short_trades=int((~longs).sum()),
        short_trades_won_pct=_pct(int((wins & ~longs).sum()), int((~longs).sum())),
        long_trades=int(longs.sum()),
        long_trades_won_pct=_pct(int((wins & longs).sum()), int(longs.sum())),
        profit_trades=len(win_res),
        profit_trades_pct=_pct(len(win_res), n_trades),
        loss_trades=len(loss_res),
        loss_trades_pct=_pct(len(loss_res), n_trades),
        largest_profit_trade=float(win_res.max()) if len(win_res) else 0.0,
        largest_loss_trade=float(loss_res.min()) if len(loss_res) else 0.0,
        average_profit_trade=float(win_res.mean()) if len(win_res) else 0.0,
        average_loss_trade=float(loss_res.mean()) if len(loss_res) else 0.0,
        max_consecutive_wins=s.max_wins,
        max_consecutive_wins_money=s.max_wins_money,
        max_consecutive_losses=s.max_losses,
        max_consecutive_losses_money=s.max_losses_money,
        maximal_consecutive_profit=s.max_profit,
        maximal_consecutive_profit_count=s.max_profit_count,
        maximal_consecutive_loss=s.max_loss,
        maximal_consecutive_loss_count=s.max_loss_count,
        average_consecutive_wins=s.avg_wins,
        average_consecutive_losses=s.avg_losses,
        min_holding_time_s=min(hold) if hold else None,
        max_holding_time_s=max(hold) if hold else None,
        avg_holding_time_s=sum(hold) / len(hold) if hold else None,
        final_balance=float(curve[-1]),
        sortino_ratio=sortino_ratio(daily),
        cagr_pct=cagr,
        calmar_ratio=calmar,
        daily_returns=len(daily),
        first_deal_time=first_t.isoformat() if first_t is not None else None,
        last_deal_time=last_t.isoformat() if last_t is not None else None,
    )


def run_metrics(
    engine: Any, run_id: str, deposit: float, margin_level_min: float | None = None
) -> Mt5Metrics:
    """The MT5 report metrics of one of our runs, from the database (deals and equity samples)."""
    return compute_metrics(
        deals_frame_from_db(engine, run_id), deposit, equity_frame_from_db(engine, run_id), margin_level_min
    )
