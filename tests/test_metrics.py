"""MT5 report metrics (spec 6.6 and its Confirmed definitions): hand-computed deal lists, empyrical
cross-checks on the daily series, the CSV loader, the DB adapter and the `metrics` command."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mt5tester.errors import DataError
from mt5tester.results.metrics import (
    compute_metrics,
    deals_frame_from_db,
    read_deals_csv,
    z_score,
)


def deal(
    time: str,
    type_: str,
    direction: str,
    profit: float = 0.0,
    commission: float = 0.0,
    swap: float = 0.0,
    volume: float = 1.0,
    pos: int | None = None,
) -> dict[str, Any]:
    return {
        "time": pd.Timestamp(time),
        "symbol": "" if type_ == "balance" else "EURUSD",
        "type": type_,
        "direction": direction,
        "volume": volume,
        "price": 1.1,
        "commission": commission,
        "swap": swap,
        "profit": profit,
        "balance": None,  # rebuilt from the deposit
        "comment": "",
        "position_id": pos,
    }


def frame(*rows: dict[str, Any], with_position: bool = False) -> pd.DataFrame:
    df = pd.DataFrame(list(rows))
    df.insert(1, "deal", range(1, len(df) + 1))
    df["order"] = df["deal"]
    return df if with_position else df.drop(columns="position_id")


def trades(results: list[float], deposit: float = 1000.0) -> pd.DataFrame:
    """Deposit, then for each result an entry (no commission) and a closing sell (long trade), one per hour."""
    rows = [deal("2024-01-01 00:00", "balance", "", profit=deposit)]
    t = pd.Timestamp("2024-01-01 01:00")
    for r in results:
        rows.append(deal(str(t), "buy", "in"))
        rows.append(deal(str(t + pd.Timedelta(minutes=30)), "sell", "out", profit=r))
        t += pd.Timedelta(hours=1)
    return frame(*rows)


# --- entry commissions, 0.00 trade, long/short, AHPR/GHPR, LR -------------------------------------------
@pytest.fixture
def with_commissions() -> pd.DataFrame:
    # balance after each row: 1000, 998, 1026, 1024, 1012, 1010, 1010
    return frame(
        deal("2024-01-01 00:00", "balance", "", profit=1000),
        deal("2024-01-01 10:00", "buy", "in", commission=-2),
        deal("2024-01-01 11:00", "sell", "out", profit=30, commission=-2),  # long trade 28
        deal("2024-01-01 12:00", "sell", "in", commission=-2),
        deal("2024-01-01 13:00", "buy", "out", profit=-10, commission=-2),  # short trade -12
        deal("2024-01-01 14:00", "buy", "in", commission=-2),
        deal("2024-01-01 15:00", "sell", "out", profit=2, commission=-2),  # long trade 0.00
    )


def test_compute_metrics_entry_commissions_in_gross_loss_not_in_trades(
    with_commissions: pd.DataFrame,
) -> None:
    m = compute_metrics(with_commissions)
    assert m.initial_deposit == 1000.0
    # GP: positive nets of every deal = 28 (the 0.00 close adds nothing)
    assert m.gross_profit == pytest.approx(28.0)
    # GL: -2 (entry) -2 (entry) -12 (trade) -2 (entry) = -18, while the losing trades sum to -12
    assert m.gross_loss == pytest.approx(-18.0)
    assert m.average_loss_trade == pytest.approx(-12.0)
    # net = GP + GL = 28 - 18 = 10 = final balance 1010 - deposit 1000
    assert m.total_net_profit == pytest.approx(10.0)
    assert m.final_balance == pytest.approx(1010.0)
    assert m.profit_factor == pytest.approx(28 / 18)  # 1.5556
    assert m.expected_payoff == pytest.approx(10 / 3)  # 3.33 per trade
    assert m.total_trades == 3
    assert m.total_deals == 6  # spec 6.6: buy and sell deals only, the balance deal is not counted


def test_compute_metrics_zero_result_trade_counts_as_win(with_commissions: pd.DataFrame) -> None:
    m = compute_metrics(with_commissions)
    # results 28, -12, 0.00 (2 - 2): wins = 28 and 0.00
    assert (m.profit_trades, m.loss_trades) == (2, 1)
    assert m.profit_trades_pct == pytest.approx(200 / 3)  # 66.67%
    assert m.loss_trades_pct == pytest.approx(100 / 3)  # 33.33%
    assert m.largest_profit_trade == pytest.approx(28.0)
    assert m.largest_loss_trade == pytest.approx(-12.0)
    assert m.average_profit_trade == pytest.approx(14.0)  # (28 + 0) / 2


def test_compute_metrics_closing_sell_ends_long_trade(with_commissions: pd.DataFrame) -> None:
    m = compute_metrics(with_commissions)
    # closing sells (rows 2, 6) end longs, both won (28, 0.00); the closing buy (row 4) ends a short, lost
    assert (m.long_trades, m.long_trades_won_pct) == (2, pytest.approx(100.0))
    assert (m.short_trades, m.short_trades_won_pct) == (1, pytest.approx(0.0))


def test_compute_metrics_hpr_uses_balance_after_closing_deals(with_commissions: pd.DataFrame) -> None:
    m = compute_metrics(with_commissions)
    # B_0 = 1000, B after closes = 1026, 1012, 1010 (entry commissions fall inside the ratios)
    ahpr = (1026 / 1000 + 1012 / 1026 + 1010 / 1012) / 3  # (1.026 + 0.986355 + 0.998024)/3 = 1.003460
    assert m.ahpr == pytest.approx(ahpr)
    assert m.ahpr_pct == pytest.approx((ahpr - 1) * 100)  # 0.35%
    assert m.ghpr == pytest.approx((1010 / 1000) ** (1 / 3))  # 1.003322
    assert m.ghpr_pct == pytest.approx(((1010 / 1000) ** (1 / 3) - 1) * 100)


def test_compute_metrics_lr_over_deposit_and_closing_balances(with_commissions: pd.DataFrame) -> None:
    m = compute_metrics(with_commissions)
    # points y = 1000, 1026, 1012, 1010 at x = 0..3; mean x 1.5, mean y 1012
    # dx = -1.5 -0.5 0.5 1.5; dy = -12 14 0 -2; Sxx = 5, Sxy = 18 - 7 + 0 - 3 = 8, slope 1.6
    # residuals dy - 1.6 dx = -9.6, 14.8, -0.8, -4.4; SSE = 92.16 + 219.04 + 0.64 + 19.36 = 331.2
    assert m.lr_standard_error == pytest.approx(math.sqrt(331.2 / 2))  # 12.87
    # Syy = 144 + 196 + 0 + 4 = 344; r = 8 / sqrt(5 * 344) = 0.1929
    assert m.lr_correlation == pytest.approx(8 / math.sqrt(1720))
    assert m.lr_correlation == pytest.approx(np.corrcoef(np.arange(4), [1000, 1026, 1012, 1010])[0, 1])


def test_compute_metrics_balance_drawdown_counts_entry_rows(with_commissions: pd.DataFrame) -> None:
    m = compute_metrics(with_commissions)
    # curve 1000, 1000, 998, 1026, 1024, 1012, 1010, 1010: the only dip under the deposit is an entry row
    assert m.balance_dd_absolute == pytest.approx(2.0)  # 1000 - 998
    assert m.balance_dd_maximal == pytest.approx(16.0)  # 1026 - 1010
    assert m.balance_dd_maximal_pct == pytest.approx(16 / 1026 * 100)  # 1.56%
    assert m.balance_dd_relative_pct == pytest.approx(16 / 1026 * 100)
    assert m.balance_dd_relative == pytest.approx(16.0)
    # no equity samples: equity approximated by balance, recovery = 10 / 16
    assert m.equity_source.startswith("balance")
    assert m.equity_dd_maximal == pytest.approx(16.0)
    assert m.recovery_factor == pytest.approx(0.625)


def test_compute_metrics_z_score_of_three_trades(with_commissions: pd.DataFrame) -> None:
    m = compute_metrics(with_commissions)
    # W L W: N 3, W 2, L 1, R 3, P = 2*2*1 = 4; Z = (3*2.5 - 4)/sqrt(4*(4-3)/2) = 3.5/sqrt(2) = 2.4749
    assert m.z_score == pytest.approx(3.5 / math.sqrt(2))
    # table at 2.47: Phi = 0.99324 -> 2*0.99324 - 1 = 98.65%
    assert m.z_score_confidence_pct == pytest.approx(98.65, abs=0.005)


# --- reversal (INOUT) and close-by (OUT_BY) --------------------------------------------------------------
@pytest.fixture
def reversal_and_close_by() -> pd.DataFrame:
    return frame(
        deal("2024-01-01 00:00", "balance", "", profit=1000),
        deal("2024-01-01 10:00", "buy", "in", volume=1, pos=1),
        deal("2024-01-01 11:00", "sell", "in/out", profit=50, volume=2, pos=1),  # closes the long: +50
        deal("2024-01-01 13:00", "buy", "out", profit=-20, volume=1, pos=1),  # closes the short: -20
        deal("2024-01-01 14:00", "buy", "in", volume=1, pos=2),
        deal("2024-01-01 14:30", "sell", "in", volume=1, pos=3),
        deal("2024-01-01 15:30", "sell", "out by", profit=15, volume=1, pos=2),  # long closed by: +15
        deal("2024-01-01 15:30", "buy", "out by", profit=-5, volume=1, pos=3),  # short closed by: -5
        with_position=True,
    )


def test_compute_metrics_reversal_and_close_by_are_trades(reversal_and_close_by: pd.DataFrame) -> None:
    m = compute_metrics(reversal_and_close_by)
    # trades: in/out +50 (long), out -20 (short), out by +15 (long), out by -5 (short)
    assert m.total_trades == 4
    assert m.total_deals == 7  # 8 rows, the balance deal not counted
    assert (m.long_trades, m.long_trades_won_pct) == (2, pytest.approx(100.0))
    assert (m.short_trades, m.short_trades_won_pct) == (2, pytest.approx(0.0))
    assert m.total_net_profit == pytest.approx(40.0)  # 50 - 20 + 15 - 5
    assert m.gross_profit == pytest.approx(65.0)
    assert m.gross_loss == pytest.approx(-25.0)
    # W L W L: N 4, W 2, L 2, R 4, P 8; Z = (4*3.5 - 8)/sqrt(8*4/3) = 6/3.2660 = 1.8371
    assert m.z_score == pytest.approx(6 / math.sqrt(32 / 3))
    # table at 1.84: Phi = 0.96712 -> 93.42%
    assert m.z_score_confidence_pct == pytest.approx(93.42, abs=0.005)


def test_compute_metrics_holding_times_from_position_ids(reversal_and_close_by: pd.DataFrame) -> None:
    m = compute_metrics(reversal_and_close_by)
    # position 1: +1, -2 (reversal keeps it open), +1 -> flat at 13:00: 10:00 -> 13:00 = 10800 s
    # position 2: 14:00 -> 15:30 = 5400 s; position 3: 14:30 -> 15:30 = 3600 s
    assert m.min_holding_time_s == 3600
    assert m.max_holding_time_s == 10800
    assert m.avg_holding_time_s == pytest.approx((10800 + 5400 + 3600) / 3)  # 6600


def test_compute_metrics_without_position_ids_holding_times_none(with_commissions: pd.DataFrame) -> None:
    m = compute_metrics(with_commissions)
    assert (m.min_holding_time_s, m.max_holding_time_s, m.avg_holding_time_s) == (None, None, None)


def test_compute_metrics_mt5_integer_codes_same_as_words(reversal_and_close_by: pd.DataFrame) -> None:
    codes = reversal_and_close_by.copy()
    codes["type"] = codes["type"].map({"balance": 2, "buy": 0, "sell": 1})
    codes["direction"] = codes["direction"].map({"": 0, "in": 0, "out": 1, "in/out": 2, "out by": 3})
    assert compute_metrics(codes) == compute_metrics(reversal_and_close_by)


# --- streaks ---------------------------------------------------------------------------------------------
def test_compute_metrics_streaks_in_deal_order_and_rounded_averages() -> None:
    # W W W | L | W | L L | W W | L | W(0.00)
    m = compute_metrics(trades([10, 20, 30, -50, 100, -10, -15, 5, 5, -1, 0]))
    assert (m.max_consecutive_wins, m.max_consecutive_wins_money) == (3, pytest.approx(60.0))  # 10+20+30
    assert (m.maximal_consecutive_profit, m.maximal_consecutive_profit_count) == (pytest.approx(100.0), 1)
    assert (m.max_consecutive_losses, m.max_consecutive_losses_money) == (2, pytest.approx(-25.0))
    assert (m.maximal_consecutive_loss, m.maximal_consecutive_loss_count) == (pytest.approx(-50.0), 1)
    # win streaks 3, 1, 2, 1 -> 7/4 = 1.75 -> 2; loss streaks 1, 2, 1 -> 4/3 = 1.33 -> 1
    assert m.average_consecutive_wins == 2
    assert m.average_consecutive_losses == 1
    # 11 trades, 7 wins (0.00 included), 4 losses
    assert (m.profit_trades, m.loss_trades) == (7, 4)


def test_compute_metrics_equal_streak_lengths_take_the_largest_money() -> None:
    # spec 6.6: two 2-win streaks, 1+2 = 3 first and 40+50 = 90 later: MT5 shows 2 (90.00)
    m = compute_metrics(trades([1, 2, -5, 40, 50]))
    assert (m.max_consecutive_wins, m.max_consecutive_wins_money) == (2, pytest.approx(90.0))
    assert (m.maximal_consecutive_profit, m.maximal_consecutive_profit_count) == (pytest.approx(90.0), 2)


@pytest.mark.parametrize(
    ("results", "wins", "losses"),
    [
        ([50, 40, -5, 1, 2], (2, 90.0), (1, -5.0)),  # the larger streak first: still 90
        ([-1, -2, 5, -30, -40, 7, -3, -4], (1, 7.0), (2, -70.0)),  # losses: the most negative sum
        ([-30, -40, 5, -1, -2], (1, 5.0), (2, -70.0)),
        ([3, 3, -1, -1, 2, 4, -1, -1], (2, 6.0), (2, -2.0)),  # full ties keep the first streak
        ([1, 1, 1, -9, 100, -1, -1, -1, 0, 0, 0], (3, 3.0), (3, -3.0)),  # longer wins over richer
    ],
)
def test_compute_metrics_longest_streak_ties_by_money_magnitude(
    results: list[float], wins: tuple[int, float], losses: tuple[int, float]
) -> None:
    m = compute_metrics(trades(results))
    assert (m.max_consecutive_wins, m.max_consecutive_wins_money) == (wins[0], pytest.approx(wins[1]))
    assert (m.max_consecutive_losses, m.max_consecutive_losses_money) == (losses[0], pytest.approx(losses[1]))


def test_compute_metrics_total_deals_counts_buy_and_sell_deals_only() -> None:
    # deposit, 3 trades (6 deals), a withdrawal and a credit: 6 deals, never the balance operations
    rows = [deal("2024-01-01 00:00", "balance", "", profit=1000)]
    for h, r in ((1, 10), (2, -5), (4, 7)):
        rows.append(deal(f"2024-01-01 {h:02d}:00", "buy", "in"))
        rows.append(deal(f"2024-01-01 {h:02d}:30", "sell", "out", profit=r))
        if h == 2:
            rows.append(deal("2024-01-01 03:00", "balance", "", profit=-100))
            rows.append(deal("2024-01-01 03:10", "credit", "", profit=50))
    m = compute_metrics(frame(*rows))
    assert (m.total_deals, m.total_trades) == (6, 3)
    assert compute_metrics(frame(rows[0])).total_deals == 0


# --- drawdowns from different episodes -------------------------------------------------------------------
def test_compute_metrics_maximal_and_relative_from_different_episodes() -> None:
    # balance 1000 -> 970 -> 1250 -> 1000 -> 3000 -> 2500 -> 2600
    m = compute_metrics(trades([-30, 280, -250, 2000, -500, 100]))
    assert m.balance_dd_absolute == pytest.approx(30.0)  # 1000 - 970
    # money: 3000 -> 2500 = 500 (16.67%) beats 1250 -> 1000 = 250
    assert m.balance_dd_maximal == pytest.approx(500.0)
    assert m.balance_dd_maximal_pct == pytest.approx(500 / 3000 * 100)
    # percent: 1250 -> 1000 = 20% beats 16.67%
    assert m.balance_dd_relative_pct == pytest.approx(20.0)
    assert m.balance_dd_relative == pytest.approx(250.0)


def test_compute_metrics_equity_samples_drive_equity_drawdown_and_recovery() -> None:
    deals = trades([40, -20])  # balance 1000 -> 1040 -> 1020, net 20
    equity = pd.DataFrame(
        {
            "time": pd.to_datetime(["2024-01-01 01:10", "2024-01-01 01:20", "2024-01-01 02:10"]),
            "equity": [960.0, 1040.0, 1010.0],
        }
    )
    m = compute_metrics(deals, equity=equity)
    assert m.equity_source == "equity samples"
    # equity 1000 (deposit), 960, 1040, 1010: absolute 40; falls 40 (4%) and 30 (2.88%)
    assert m.equity_dd_absolute == pytest.approx(40.0)
    assert m.equity_dd_maximal == pytest.approx(40.0)
    assert m.equity_dd_maximal_pct == pytest.approx(4.0)
    assert m.equity_dd_relative_pct == pytest.approx(4.0)
    assert m.balance_dd_maximal == pytest.approx(20.0)  # 1040 -> 1020
    assert m.recovery_factor == pytest.approx(20 / 40)  # net / equity maximal (confirmed 12)


def test_compute_metrics_withdrawal_restarts_drawdown() -> None:
    deals = frame(
        deal("2024-01-01 00:00", "balance", "", profit=1000),
        deal("2024-01-01 01:00", "buy", "in"),
        deal("2024-01-01 02:00", "sell", "out", profit=100),  # 1100
        deal("2024-01-01 03:00", "balance", "", profit=-500),  # withdrawal: 600
        deal("2024-01-01 04:00", "buy", "in"),
        deal("2024-01-01 05:00", "sell", "out", profit=-50),  # 550
        deal("2024-01-01 06:00", "buy", "in"),
        deal("2024-01-01 07:00", "sell", "out", profit=20),  # 570
    )
    m = compute_metrics(deals)
    # restart at 600: 600 -> 550 = 50 (8.33%), not 1100 -> 550
    assert m.balance_dd_absolute == pytest.approx(50.0)
    assert m.balance_dd_maximal == pytest.approx(50.0)
    assert m.balance_dd_relative_pct == pytest.approx(50 / 600 * 100)
    # the withdrawal is no P/L: GP 120, GL -50
    assert m.total_net_profit == pytest.approx(70.0)
    assert m.final_balance == pytest.approx(570.0)


def test_compute_metrics_explicit_deposit_without_balance_deal() -> None:
    deals = trades([10, -5]).iloc[1:].reset_index(drop=True)
    m = compute_metrics(deals, deposit=500.0)
    assert m.initial_deposit == 500.0
    assert m.final_balance == pytest.approx(505.0)
    assert m.ghpr == pytest.approx((505 / 500) ** 0.5)


def test_compute_metrics_no_deposit_raises_data_error() -> None:
    deals = trades([10]).iloc[1:].reset_index(drop=True)
    with pytest.raises(DataError, match="deposit"):
        compute_metrics(deals)


# --- Z-score -----------------------------------------------------------------------------------------------
def test_z_score_clustered_runs_negative() -> None:
    # W W W L L L: N 6, R 2, P 18; Z = (6*1.5 - 18)/sqrt(18*12/5) = -9/6.5727 = -1.3693
    z, conf = z_score([True, True, True, False, False, False])
    assert z == pytest.approx(-9 / math.sqrt(43.2))
    # table at 1.37: Phi = 0.91466 -> 82.93%
    assert conf == pytest.approx(82.93, abs=0.005)


def test_z_score_beyond_three_confidence_capped() -> None:
    # W L x5: N 10, R 10, P 50; Z = (10*9.5 - 50)/sqrt(50*40/9) = 45/14.9071 = 3.0187 > 3
    z, conf = z_score([True, False] * 5)
    assert z == pytest.approx(45 / math.sqrt(2000 / 9))
    assert conf == 99.74


def test_z_score_all_wins_undefined() -> None:
    assert z_score([True, True, True]) == (None, None)


# --- daily-series ratios, cross-checked with empyrical ------------------------------------------------------
@pytest.fixture
def daily() -> tuple[pd.DataFrame, np.ndarray, float]:
    """One trade a business day, Mon 2024-01-01 .. Fri 2024-01-12 (10 days; the weekend is skipped)."""
    results = [50.0, -30.0, 20.0, -60.0, 80.0, 10.0, -40.0, 25.0, -15.0, 45.0]
    days = pd.bdate_range("2024-01-01", "2024-01-12")
    rows = [deal("2024-01-01 00:00", "balance", "", profit=1000)]
    for d, r in zip(days, results, strict=True):
        rows.append(deal(str(d + pd.Timedelta(hours=9)), "buy", "in"))
        rows.append(deal(str(d + pd.Timedelta(hours=17)), "sell", "out", profit=r))
    closes = 1000 + np.cumsum(results)
    returns = closes / np.concatenate(([1000.0], closes[:-1])) - 1
    years = (pd.Timestamp("2024-01-12 17:00") - pd.Timestamp("2024-01-01")).total_seconds() / (365.25 * 86400)
    return frame(*rows), returns, years


def test_compute_metrics_daily_ratios_match_empyrical(daily: tuple[pd.DataFrame, np.ndarray, float]) -> None:
    ep = pytest.importorskip("empyrical")
    deals, returns, years = daily
    m = compute_metrics(deals)
    assert m.daily_returns == 10
    assert m.sharpe_ratio == pytest.approx(ep.sharpe_ratio(returns))  # daily, x sqrt(252)
    assert m.sortino_ratio == pytest.approx(ep.sortino_ratio(returns))
    ann = len(returns) / years  # empyrical's years = len / annualization
    assert m.cagr_pct == pytest.approx(ep.cagr(returns, annualization=ann) * 100)
    assert m.calmar_ratio == pytest.approx(ep.calmar_ratio(returns, annualization=ann))
    # one balance change a day: the per-deal relative drawdown is the daily max drawdown
    assert m.balance_dd_relative_pct == pytest.approx(-ep.max_drawdown(returns) * 100)


def test_compute_metrics_cagr_hand_computed(daily: tuple[pd.DataFrame, np.ndarray, float]) -> None:
    deals, _, years = daily
    m = compute_metrics(deals)
    # final 1085 (1000 + 50 - 30 + 20 - 60 + 80 + 10 - 40 + 25 - 15 + 45); 11 days 17 h = 0.03203 years
    assert m.final_balance == pytest.approx(1085.0)
    assert m.cagr_pct == pytest.approx(((1085 / 1000) ** (1 / years) - 1) * 100)


def test_compute_metrics_weekend_deal_counts_on_monday() -> None:
    deals = frame(
        deal("2024-01-05 00:00", "balance", "", profit=1000),  # Friday
        deal("2024-01-05 10:00", "buy", "in"),
        deal("2024-01-06 10:00", "sell", "out", profit=100),  # Saturday -> Monday 8th
        deal("2024-01-08 09:00", "buy", "in"),
        deal("2024-01-08 10:00", "sell", "out", profit=-55),
    )
    m = compute_metrics(deals)
    # business days Fri 5th, Mon 8th: returns 0 and (1045/1000 - 1) = 0.045
    assert m.daily_returns == 2
    r = np.array([0.0, 0.045])
    assert m.sharpe_ratio == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))


# --- CSV loader ------------------------------------------------------------------------------------------------
MT5_CSV = """Time;Deal;Symbol;Type;Direction;Volume;Price;Order;Commission;Swap;Profit;Balance;Comment
2024.01.02 00:00:00;1;;balance;;;;;0.00;0.00;10 000.00;10 000.00;
2024.01.02 10:00:00;2;EURUSD;buy;in;1.00;1.10000;2;-3.50;0.00;0.00;9 996.50;
2024.01.02 12:00:00;3;EURUSD;sell;out;1.00;1.10500;3;-3.50;-1.20;500.00;10 491.80;tp 1.105
2024.01.03 09:00:00;4;EURUSD;sell;in;1.00;1.10400;4;-3.50;0.00;0.00;10 488.30;
2024.01.03 11:00:00;5;EURUSD;buy;out;1.00;1.10700;5;-3.50;0.00;-300.00;10 184.80;sl 1.107
;;;;;;;;-14.00;-1.20;200.00;10 184.80;
"""


def test_read_deals_csv_semicolon_thousands_spaces_totals_row(tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    path.write_text(MT5_CSV)
    df = read_deals_csv(path)
    assert len(df) == 5  # totals row skipped
    assert df["profit"].tolist() == [10000.0, 0.0, 500.0, 0.0, -300.0]
    assert df["balance"].iloc[-1] == pytest.approx(10184.80)
    assert df["type"].tolist() == [2, 0, 1, 1, 0]
    assert df["direction"].tolist() == [-1, 0, 1, 0, 1]
    assert df["time"].iloc[2] == pd.Timestamp("2024-01-02 12:00")


def test_read_deals_csv_tab_and_lowercase_headers(tmp_path: Path) -> None:
    path = tmp_path / "deals.tsv"
    path.write_text(
        "time\tdeal\ttype\tdirection\tprofit\tcommission\tswap\n"
        "2024-01-02 00:00:00\t1\tbalance\t\t1000\t0\t0\n"
        "2024-01-02 10:00:00\t2\tbuy\tin\t0\t-1\t0\n"
        "2024-01-02 11:00:00\t3\tsell\tout\t10\t-1\t0\n"
    )
    m = compute_metrics(read_deals_csv(path))
    assert m.total_net_profit == pytest.approx(8.0)  # 10 - 1 - 1
    assert m.gross_loss == pytest.approx(-1.0)  # the entry commission


def test_read_deals_csv_bad_number_raises_with_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "Time,Type,Direction,Profit\n2024.01.02 00:00,balance,,1000\n2024.01.02 01:00,sell,out,1x\n"
    )
    with pytest.raises(DataError, match=r"bad\.csv:3:.*1x"):
        read_deals_csv(path)


def test_read_deals_csv_missing_column_raises() -> None:
    with pytest.raises(DataError, match="lacks column"):
        read_deals_csv(Path(__file__).parent / "conftest.py")


# --- our DB ------------------------------------------------------------------------------------------------------
def test_deals_frame_from_db_maps_to_mt5_layout(tmp_path: Path) -> None:
    from mt5tester.results import db

    engine = db.connect(f"sqlite:///{tmp_path / 'r.sqlite'}")
    t0 = int(pd.Timestamp("2024-01-02 10:00", tz="UTC").value)
    hour = 3_600_000_000_000
    base = {"run_id": "r1", "reason": 3, "symbol": "EURUSD", "volume": 1.0, "price": 1.1, "swap": 0.0}
    rows = [
        {
            **base,
            "ticket": 1,
            "order": 0,
            "time": t0,
            "type": 2,
            "entry": 0,
            "position_id": 0,
            "symbol": "",
            "commission": 0.0,
            "profit": 1000.0,
            "balance": 1000.0,
        },
        {
            **base,
            "ticket": 2,
            "order": 2,
            "time": t0 + hour,
            "type": 0,
            "entry": 0,
            "position_id": 2,
            "commission": -2.0,
            "profit": 0.0,
            "balance": 998.0,
        },
        {
            **base,
            "ticket": 3,
            "order": 3,
            "time": t0 + 3 * hour,
            "type": 1,
            "entry": 1,
            "position_id": 2,
            "commission": -2.0,
            "profit": 24.0,
            "balance": 1020.0,
        },
    ]
    with engine.begin() as conn:
        conn.execute(
            db.runs.insert(),
            {
                "run_id": "r1",
                "status": "completed",
                "started_at": "x",
                "config": {},
                "config_hash": "h",
                "package_version": "0",
                "seed": 1,
                "deposit": 1000.0,
                "currency": "USD",
            },
        )
        conn.execute(db.deals.insert(), [{**r, "comment": "", "strategy": "s"} for r in rows])
    df = deals_frame_from_db(engine, "r1")
    assert list(df.columns[:13]) == [
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
    assert df["position_id"].tolist() == [0, 2, 2]
    m = compute_metrics(df)
    assert m.total_trades == 1
    assert m.total_net_profit == pytest.approx(20.0)  # 24 - 2 - 2
    assert m.max_holding_time_s == 7200  # 11:00 -> 13:00


# --- CLI -----------------------------------------------------------------------------------------------------------
def test_cli_metrics_json_values(tmp_path: Path, run_cli) -> None:
    path = tmp_path / "deals.csv"
    path.write_text(MT5_CSV)
    code, out, err = run_cli("metrics", str(path), "--json")
    assert code == 0, err
    m = json.loads(out)
    # trades: 500 - 3.50 - 1.20 = 495.30 (long), -300 - 3.50 = -303.50 (short)
    assert m["total_trades"] == 2
    assert m["total_deals"] == 4  # the balance row is not a deal of the report
    assert m["gross_profit"] == pytest.approx(495.30)
    # GL: -3.50 - 3.50 (entries) - 303.50 = -310.50
    assert m["gross_loss"] == pytest.approx(-310.50)
    assert m["total_net_profit"] == pytest.approx(184.80)  # 10184.80 - 10000
    # drawdown on the balance column: 10491.80 -> 10184.80 = 307.00
    assert m["balance_dd_maximal"] == pytest.approx(307.0)
    assert m["balance_dd_absolute"] == pytest.approx(3.50)  # 10000 - 9996.50
    assert (m["long_trades"], m["short_trades"]) == (1, 1)


def test_cli_metrics_deposit_option_overrides(tmp_path: Path, run_cli) -> None:
    path = tmp_path / "deals.csv"
    path.write_text(MT5_CSV)
    code, out, _ = run_cli("metrics", str(path), "--json", "--deposit", "5000")
    assert code == 0
    m = json.loads(out)
    assert m["initial_deposit"] == 5000.0
    assert m["final_balance"] == pytest.approx(5184.80)


def test_cli_metrics_table_in_report_order(tmp_path: Path, run_cli) -> None:
    path = tmp_path / "deals.csv"
    path.write_text(MT5_CSV)
    code, out, _ = run_cli("metrics", str(path))
    assert code == 0
    assert "184.80" in out
    assert out.index("Total Net Profit") < out.index("Profit Factor") < out.index("Balance Drawdown Absolute")


def test_cli_metrics_malformed_line_exit_3(tmp_path: Path, run_cli) -> None:
    path = tmp_path / "deals.csv"
    lines = MT5_CSV.splitlines()
    lines[3] = "2024.01.02 12:00:00;3;EURUSD;sell;out;1.00;1.10500;3;-3.50;oops;500.00;10 491.80;"
    path.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli("metrics", str(path), "--json")
    assert code == 3
    assert "deals.csv:4:" in err
    assert "oops" in err


# --- property ----------------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-50_000, 50_000),  # trade profit in cents
            st.integers(0, 500),  # entry commission in cents
            st.integers(0, 500),  # exit commission in cents
        ),
        min_size=1,
        max_size=30,
    )
)
def test_compute_metrics_net_is_final_minus_deposit_property(cents: list[tuple[int, int, int]]) -> None:
    rows = [deal("2024-01-01 00:00", "balance", "", profit=100_000)]
    for i, (p, ci, co) in enumerate(cents):
        t = pd.Timestamp("2024-01-01 01:00") + pd.Timedelta(hours=i)
        rows.append(deal(str(t), "buy", "in", commission=-ci / 100))
        rows.append(
            deal(str(t + pd.Timedelta(minutes=5)), "sell", "out", profit=p / 100, commission=-co / 100)
        )
    m = compute_metrics(frame(*rows))
    # Confirmed 3: GP + GL = final balance - deposit; trades = closing deals; wins + losses = trades
    assert m.total_net_profit == pytest.approx(m.final_balance - 100_000, abs=1e-6)
    assert m.total_trades == len(cents)
    assert m.profit_trades + m.loss_trades == m.total_trades
    assert m.balance_dd_relative_pct <= 100.0
