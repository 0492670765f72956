"""The whole-run kernel's codes (engine/kernel.py, driver b): why its loop stopped, each signal's review
outcome, and the columns of the numbers behind a rule's decision, shared by the compiled loop, its inputs
and its records."""

# Why the compiled loop stopped (0: it finished).
DONE, STOP_OUT, NO_QUOTE, NO_MONEY, BAD_VOLUME, NO_PRICE, BAD_STOPS, INSIDE_BAR = 0, 1, 2, 3, 4, 5, 6, 7
PRE_REJECTED = 4  # review outcome: a gate or sizing rejected the signal before the run (engine/prereview.py)
DAILY_LOSS, MAX_DRAWDOWN = 5, 6  # review outcomes: the circuit breaker (risk/breaker.py)
SIZING = 7  # review outcome: risk-% sizing refused the entry (e_value: an index of SIZING_REASONS)
# max_total_risk: rejected, no volume fits, resized, no stop loss
TOTAL_RISK, TOTAL_RISK_SMALL, RESIZED, NO_STOP_RISK = 8, 9, 10, 11
FREE_MARGIN = 12  # min_free_margin: e_free holds (floor, free margin after the entry, order_check's margin)
CONFLICT, CONFLICT_RESIZED = 13, 14  # conflict_policy (prereview): rejected; resized and approved as that
# max_currency_exposure and max_correlation: rejected, no volume fits, resized (e_ccy / e_corr: the numbers)
CURRENCY, CURRENCY_SMALL, CURRENCY_RESIZED = 15, 16, 17
CORRELATION, CORRELATION_SMALL, CORRELATION_RESIZED = 18, 19, 20
# review outcomes of an approved entry: as sent, or cut by the rule named (its last cut)
APPROVED = (0, RESIZED, CONFLICT_RESIZED, CURRENCY_RESIZED, CORRELATION_RESIZED)
REACHED_RULES = (
    0, 1, 2, 3, TOTAL_RISK, TOTAL_RISK_SMALL, RESIZED, NO_STOP_RISK, FREE_MARGIN, CONFLICT_RESIZED,
    CURRENCY, CURRENCY_SMALL, CURRENCY_RESIZED, CORRELATION, CORRELATION_SMALL, CORRELATION_RESIZED,
)  # fmt: skip
# e_ccy columns: CurrencyExposureRule's numbers (currency code, exposure after, before, fit, volume before)
X_CCY, X_AFTER, X_BEFORE, X_FIT, X_VOLUME = range(5)
# e_corr columns: CorrelationRule's numbers (symbol, sign-adjusted correlation, correlation, fit, volume)
K_SYM, K_ADJ, K_RHO, K_FIT, K_VOLUME = range(5)
# e_risk columns: TotalRiskRule's numbers (limit, value, open risk, new risk, unprotected, fit, volume before)
R_LIMIT, R_VALUE, R_HELD, R_NEW, R_UNPROTECTED, R_FIT, R_BEFORE = range(7)
SIZING_REASONS = {1: "no_stop_loss", 2: "no_tick_value", 3: "size_below_min"}
# e_size columns: the numbers behind a risk-% size (risk/sizing.py's details)
Z_MONEY, Z_DISTANCE, Z_TICK_VALUE, Z_PER_LOT, Z_RAW = 0, 1, 2, 3, 4
# The breaker's float state (bk_f): the day's starting equity, the peak, the latch (drawdown, peak, equity),
# the daily loss and max drawdown limits (breaker.OFF: not set).
B_DAY_START, B_PEAK, B_LATCH, B_DAILY_PCT, B_MAX_DD_PCT = 0, 1, 2, 5, 6
MINUTE = 60_000_000_000
STOPPED = {
    STOP_OUT: "a stop-out came within reach",
    NO_QUOTE: "a signal met a closed market",
    NO_MONEY: "an entry lacked free margin (TRADE_RETCODE_NO_MONEY)",
    BAD_VOLUME: "an entry's volume was refused (TRADE_RETCODE_INVALID_VOLUME)",
    NO_PRICE: "an open position had no price yet",
    BAD_STOPS: "an entry's SL/TP was refused (TRADE_RETCODE_INVALID_STOPS)",
    INSIDE_BAR: "an SL/TP position was opened or scanned inside an M1 bar",
}
# Review outcome per signal: approved, or the count rule that rejected it.
COUNT_RULES = {1: "max_positions", 2: "max_positions_per_symbol", 3: "max_positions_per_strategy"}
