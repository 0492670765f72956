"""MT5 tester report metrics as text: the Results block's labels, order and number formats (spec 6.6)."""

from __future__ import annotations

from datetime import timedelta

from mt5tester.results.metrics import Mt5Metrics


def _money(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _ratio(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _with_pct(v: float | None, pct: float | None, digits: int = 2) -> str:
    """MT5's `value (pct%)` cell, e.g. AHPR `1.0002 (0.02%)`."""
    if v is None:
        return "-"
    return f"{v:.{digits}f} ({_ratio(pct)}%)"


def _count_pct(n: int, pct: float | None) -> str:
    return f"{n} ({_ratio(pct)}%)" if pct is not None else str(n)


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else str(timedelta(seconds=round(seconds)))


def report_rows(m: Mt5Metrics) -> list[tuple[str, str]]:
    """(label, text) pairs in the order and format of the MT5 tester report's Results block."""
    return [
        ("Initial Deposit", _money(m.initial_deposit)),
        ("Total Net Profit", _money(m.total_net_profit)),
        ("Gross Profit", _money(m.gross_profit)),
        ("Gross Loss", _money(m.gross_loss)),
        ("Profit Factor", _ratio(m.profit_factor)),
        ("Expected Payoff", _ratio(m.expected_payoff)),
        ("Margin Level", "-" if m.margin_level_min is None else f"{m.margin_level_min:.2f}%"),
        ("Recovery Factor", _ratio(m.recovery_factor)),
        ("Sharpe Ratio", _ratio(m.sharpe_ratio)),
        ("Z-Score", _with_pct(m.z_score, m.z_score_confidence_pct)),
        ("AHPR", _with_pct(m.ahpr, m.ahpr_pct, 4)),
        ("LR Correlation", _ratio(m.lr_correlation)),
        ("GHPR", _with_pct(m.ghpr, m.ghpr_pct, 4)),
        ("LR Standard Error", _money(m.lr_standard_error)),
        ("Balance Drawdown Absolute", _money(m.balance_dd_absolute)),
        ("Balance Drawdown Maximal", f"{m.balance_dd_maximal:.2f} ({m.balance_dd_maximal_pct:.2f}%)"),
        ("Balance Drawdown Relative", f"{m.balance_dd_relative_pct:.2f}% ({m.balance_dd_relative:.2f})"),
        ("Equity Drawdown Absolute", _money(m.equity_dd_absolute)),
        ("Equity Drawdown Maximal", f"{m.equity_dd_maximal:.2f} ({m.equity_dd_maximal_pct:.2f}%)"),
        ("Equity Drawdown Relative", f"{m.equity_dd_relative_pct:.2f}% ({m.equity_dd_relative:.2f})"),
        ("Total Trades", str(m.total_trades)),
        ("Short Trades (won %)", _count_pct(m.short_trades, m.short_trades_won_pct)),
        ("Long Trades (won %)", _count_pct(m.long_trades, m.long_trades_won_pct)),
        ("Total Deals", str(m.total_deals)),
        ("Profit Trades (% of total)", _count_pct(m.profit_trades, m.profit_trades_pct)),
        ("Loss Trades (% of total)", _count_pct(m.loss_trades, m.loss_trades_pct)),
        ("Largest profit trade", _money(m.largest_profit_trade)),
        ("Largest loss trade", _money(m.largest_loss_trade)),
        ("Average profit trade", _money(m.average_profit_trade)),
        ("Average loss trade", _money(m.average_loss_trade)),
        ("Maximum consecutive wins ($)", f"{m.max_consecutive_wins} ({m.max_consecutive_wins_money:.2f})"),
        (
            "Maximum consecutive losses ($)",
            f"{m.max_consecutive_losses} ({m.max_consecutive_losses_money:.2f})",
        ),
        (
            "Maximal consecutive profit (count)",
            f"{m.maximal_consecutive_profit:.2f} ({m.maximal_consecutive_profit_count})",
        ),
        (
            "Maximal consecutive loss (count)",
            f"{m.maximal_consecutive_loss:.2f} ({m.maximal_consecutive_loss_count})",
        ),
        ("Average consecutive wins", str(m.average_consecutive_wins)),
        ("Average consecutive losses", str(m.average_consecutive_losses)),
        ("Minimal position holding time", _duration(m.min_holding_time_s)),
        ("Maximal position holding time", _duration(m.max_holding_time_s)),
        ("Average position holding time", _duration(m.avg_holding_time_s)),
        # not in the MT5 report (definitions in mt5tester.results.metrics)
        ("Final Balance", _money(m.final_balance)),
        ("Sortino Ratio (daily, annualised)", _ratio(m.sortino_ratio)),
        ("CAGR", "-" if m.cagr_pct is None else f"{m.cagr_pct:.2f}%"),
        ("Calmar Ratio", _ratio(m.calmar_ratio)),
        ("Equity source", m.equity_source),
    ]
