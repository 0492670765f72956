"""The whole-run kernel's records (engine/kernel.py, driver b): its array book turned into the Python trade
state (structures built once, at the end), and the signals, deals and equity rows and the funnel, as the
Python loop records them, handed to the sink as columns."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from mt5tester.engine import prereview
from mt5tester.model import constants as C
from mt5tester.model.columns import Coded, Const, Labels, Masked, narrow
from mt5tester.model.trade import Deal, Order, Position
from mt5tester.risk import sizing
from mt5tester.risk.decision import reject
from mt5tester.risk.rules import (
    CorrelationRule,
    CurrencyExposureRule,
    FreeMarginRule,
    TotalRiskRule,
    fitted,
)
from mt5tester.terminal.core import book as B
from mt5tester.terminal.core import rules
from mt5tester.terminal.history import Block, History

if TYPE_CHECKING:
    from mt5tester.engine.loop import Runner
    from mt5tester.model.signal import Signal
from mt5tester.engine.kernel_codes import (
    APPROVED,
    CONFLICT,
    CONFLICT_RESIZED,
    CORRELATION,
    COUNT_RULES,
    CURRENCY,
    CURRENCY_RESIZED,
    CURRENCY_SMALL,
    DAILY_LOSS,
    FREE_MARGIN,
    MAX_DRAWDOWN,
    NO_STOP_RISK,
    PRE_REJECTED,
    REACHED_RULES,
    RESIZED,
    SIZING,
    SIZING_REASONS,
    TOTAL_RISK,
)
from mt5tester.engine.kernel_inputs import Inputs


def column_major(book: B.ArrayBook) -> B.ArrayBook:
    """The book with its deals and orders column-major: each field of the records is one contiguous
    column, which the history's blocks and the records take as it is (a view, not a copy per field:
    at 5M bars the copies were ~100 MB above the book). At least two rows each (the run's caller sizes
    them so): a one-row array is C- and F-contiguous both, numba types it C, and a run without signals
    compiled a second run_points (~10 s on a fresh cache)."""
    major = {k: np.zeros(v.shape, v.dtype, order="F") for k, v in vars(book).items() if k in _RECORDS}
    return dataclasses.replace(book, **major)


_RECORDS = ("di", "df", "oi", "of")


def materialize(runner: Runner, x: Inputs, book: B.ArrayBook, rollover: int) -> dict[str, Any]:
    """The Python trade state from the arrays: the history (deals, history orders) as blocks of the
    book's arrays (``terminal.history``: objects only when read), the open positions, the counters.
    Returns the deals' fields (the deals table takes the same arrays as its columns)."""
    c = runner.c
    state = c.server.state
    m = c.server.inputs
    cnt = book.cnt
    no, nd = int(cnt[B.C_ORDERS]), int(cnt[B.C_DEALS])
    names = x.symbols
    digits = [m.specs[sym].digits for sym in names]
    # the book is column-major (column_major): every column below is a view of it, not a copy
    oi, of = book.oi[:no], book.of[:no]
    o_ticket, o_why, o_sid = oi[:, B.O_TICKET], oi[:, B.O_REASON], oi[:, B.O_SID]
    o_text = _comments(o_why, o_sid, of[:, B.O_LEVEL], oi[:, B.O_SYM], digits)
    o_price, o_time = of[:, B.O_PRICE], oi[:, B.O_TIME]
    o_symbols = Coded(oi[:, B.O_SYM], names)
    # Order(ticket, symbol, type, volume_initial, volume_current, price_open, sl, tp, price_stoplimit,
    # time_setup, type_time, type_filling, time_expiration, state, time_done, magic, position_id,
    # position_by_id, reason, comment, price_done)
    first_order = len(state.history_orders)
    _history(state.history_orders).add_block(
        Block(
            Order,
            {
                "ticket": o_ticket, "symbol": o_symbols, "type": oi[:, B.O_TYPE],
                "volume_initial": of[:, B.O_VOLUME], "volume_current": 0.0, "price_open": o_price,
                "sl": 0.0, "tp": 0.0, "price_stoplimit": 0.0, "time_setup": o_time,
                "type_time": C.ORDER_TIME_GTC, "type_filling": C.ORDER_FILLING_FOK, "time_expiration": 0,
                "state": C.ORDER_STATE_FILLED, "time_done": o_time, "magic": oi[:, B.O_MAGIC],
                "position_id": oi[:, B.O_POSITION], "position_by_id": 0, "reason": o_why,
                "comment": o_text, "price_done": o_price,
            },
            no,
        )
    )  # fmt: skip
    di, dfl = book.di[:nd], book.df[:nd]
    d_text = _comments(di[:, B.D_REASON], di[:, B.D_CSID], dfl[:, B.D_LEVEL], di[:, B.D_SYM], digits)
    # Deal(ticket, order, time, type, entry, reason, position_id, symbol, volume, price, commission,
    # swap, profit, balance, comment, magic)
    fields: dict[str, Any] = {
        k: di[:, col]
        for k, col in (
            ("ticket", B.D_TICKET), ("order", B.D_ORDER), ("time", B.D_TIME), ("type", B.D_TYPE),
            ("entry", B.D_ENTRY), ("reason", B.D_REASON), ("position_id", B.D_POSITION),
        )
    }  # fmt: skip
    fields["symbol"] = Coded(di[:, B.D_SYM], names)
    for k, col in (
        ("volume", B.D_VOLUME), ("price", B.D_PRICE), ("commission", B.D_COMMISSION), ("swap", B.D_SWAP),
        ("profit", B.D_PROFIT), ("balance", B.D_BALANCE),
    ):  # fmt: skip
        fields[k] = dfl[:, col]
    fields["comment"], fields["magic"] = d_text, di[:, B.D_MAGIC]
    _history(state.deals).add_block(Block(Deal, fields, nd))
    positions = []
    n = int(cnt[B.C_POS])
    for (ticket, sym, typ, t, upd, _strat, _sid, magic, csid, cursor), (vol, open_, swap, sl, tp) in zip(
        book.pi[:n].tolist(), book.pf[:n].tolist(), strict=True
    ):
        positions.append(
            Position(
                ticket, ticket, x.symbols[sym], typ, vol, open_, sl, tp, t, upd, magic, f"signal {csid}",
                C.POSITION_REASON_EXPERT, swap, cursor, False, upd + 1,
            )
        )  # fmt: skip
    state.positions = positions
    state.balance = float(book.balance[0])
    state.next_ticket, state.next_deal = int(cnt[B.C_TICKET]), int(cnt[B.C_DEAL])
    state.next_rollover = rollover
    owners = runner.journal.owners
    if not owners.sent:  # orders a strategy sent itself are resolved by the attribution
        tickets, who_names, who, sids = _owners(oi, owners.magic)
        whole = (first_order, first_order + no) if len(tickets) == no else None
        owners.learn(tickets, who_names, who, sids, whole)
    return fields


def _history(h: Any) -> History[Any]:
    """The state's history as a ``History`` (a state restored from an older checkpoint holds lists)."""
    return h if isinstance(h, History) else History(h)


def _comments(
    why: np.ndarray, sid: np.ndarray, level: np.ndarray, sym: np.ndarray, digits: list[int]
) -> Labels:
    """The comments of the kernel's orders or deals: "signal N" of an expert order, "[sl 1.09950]" of an
    SL/TP close (as the Python replay writes them). The texts are built when the column is read (a
    DataFrame, a SQL insert), not one string per row up front."""
    given = {
        k: _level_comment(int(why[k]), float(level[k]), digits[int(sym[k])])
        for k in np.flatnonzero(why != B.REASON_EXPERT).tolist()
    }
    return Labels("signal ", sid, given)


def _owners(
    oi: np.ndarray, strategy_of: dict[int, str]
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """Owners of the kernel's orders as engine/attribution.py resolves them: an expert order is its
    magic's strategy's, for the signal in its "signal N" comment; an SL/TP close is its position's (the
    opening order's, an earlier expert order of the kernel) owner. As arrays: (tickets, strategy
    names, index of each ticket's name, signal ids); orders with no owner here are left out."""
    ticket, why, magic = oi[:, B.O_TICKET], oi[:, B.O_REASON], oi[:, B.O_MAGIC]
    sid, pos = oi[:, B.O_SID], oi[:, B.O_POSITION]
    expert = why == B.REASON_EXPERT
    mags = [mg for mg in np.unique(magic).tolist() if mg in strategy_of]
    known = np.isin(magic, mags)
    names = [strategy_of[mg] for mg in mags]
    close = np.flatnonzero(~expert)
    if not len(close) and known.all():  # every order a strategy's own expert order: the book's columns
        return ticket, names, narrow(np.searchsorted(np.array(mags, np.int64), magic), len(names)), sid
    src = np.arange(len(ticket))
    if len(close):  # tickets ascend: the opening order of each close by a search
        at = np.searchsorted(ticket, pos[close])
        ok = (at < len(ticket)) & (ticket[np.minimum(at, len(ticket) - 1)] == pos[close])
        src[close] = np.where(ok, at, -1)
    keep = np.flatnonzero((src >= 0) & expert[np.maximum(src, 0)] & known[np.maximum(src, 0)])
    origin = src[keep]
    who = np.searchsorted(np.array(mags, np.int64), magic[origin]) if mags else np.zeros(0, np.int64)
    return ticket[keep].copy(), names, narrow(who, len(names)), sid[origin].copy()


def _level_comment(reason: int, level: float, digits: int) -> str:
    """The comment of an SL/TP close, as the Python replay writes it: "[sl 1.09950]"."""
    return f"[{'sl' if reason == B.REASON_SL else 'tp'} {level:.{digits}f}]"


def journal_run(
    runner: Runner, x: Inputs, e_status: np.ndarray, e_value: np.ndarray, e_order: np.ndarray,
    e_position: np.ndarray, equity: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    stops: tuple[np.ndarray, np.ndarray], deals: tuple[B.ArrayBook, int, dict[str, Any]],
    pre: prereview.PreReview, e_brk: np.ndarray, e_size: np.ndarray, e_risk: np.ndarray, e_free: np.ndarray,
    money: tuple[list[str], np.ndarray, np.ndarray],
) -> None:  # fmt: skip
    """Signals, deals and equity rows and the funnel, as the Python loop records them, handed to the
    sink as columns."""
    from mt5tester.results import db
    from mt5tester.results.rows import DictColumn

    journal, host, cc = runner.journal, runner.host, runner.c.cfg.coordinator
    breaker_rule = runner.c.coordinator.breaker
    funnel, rec = journal.funnel, journal.rec
    slots = host.slots
    n_ev = len(x.ev_si)
    point_of = np.repeat(np.arange(len(x.times)), np.diff(x.starts))
    base = journal.signal_seq
    limits = {1: cc.max_positions, 2: cc.max_positions_per_symbol, 3: cc.max_positions_per_strategy}
    if x.signals is None:  # the column strategies were not called (a signal pass counted its calls)
        for si, k in enumerate(np.bincount(x.ev_si, minlength=len(slots)).tolist()):
            host._calls[si] += k
    ok = np.isin(e_status, APPROVED)
    cut = ok & (e_status != 0)
    # the columns as codes, masks and numbers (model/columns.py): Python values only when read. The rule
    # and reason of a count rule by its code; a gate's, sizing's, breaker's or risk rule's decision names
    # its own
    index: dict[str | None, int] = {None: 0, **{COUNT_RULES[k]: k for k in sorted(COUNT_RULES)}}
    rule_codes = np.where(np.isin(e_status, list(COUNT_RULES)), e_status, 0)
    reason_codes = rule_codes.copy()
    given: dict[int, dict[str, Any]] = {}  # the details of rejected or sized signals; the others' are {}
    for k in np.flatnonzero(e_status).tolist():
        code, si, sym = int(e_status[k]), int(x.ev_si[k]), int(x.ev_sym[k])
        if code >= PRE_REJECTED:
            if code == PRE_REJECTED:
                d = pre.decisions[k]
            elif code == DAILY_LOSS:
                d = breaker_rule.daily_loss_decision(*e_brk[k].tolist())
            elif code == MAX_DRAWDOWN:
                d = breaker_rule.max_drawdown_decision()
            elif code == SIZING:
                why = SIZING_REASONS[int(e_value[k])]
                d = reject("sizing", why, **_risk_details(x, pre, e_size, k, why))
            elif code == FREE_MARGIN:
                d = FreeMarginRule.short(*e_free[k].tolist())
            elif code in (CONFLICT, CONFLICT_RESIZED):
                d = pre.conflicts[k]
            elif code >= CURRENCY:
                d = _money_decision(runner, x, money, code, k)
            else:
                d = _total_risk_decision(code, x.symbols[sym], e_risk[k], float(x.ev_vol[k]))
            rule_codes[k] = index.setdefault(d.rule, len(index))
            reason_codes[k] = index.setdefault(d.reason, len(index))
            given[k] = d.details
            if code not in APPROVED:
                funnel.rejected[d.reason or "unknown"] += 1
            continue
        extra = {2: {"symbol": x.symbols[sym]}, 3: {"strategy": slots[si][0].name}}.get(code, {})
        given[k] = {"limit": limits[code], "value": int(e_value[k]), **extra}
    # Coordinator._pipeline: the sizing details on every signal that reached the rules
    reached = np.isin(e_status, REACHED_RULES)
    # risk-% sizing sized every signal that reached the rules; otherwise only the pre-review's sized ones
    # have details (none at all without sizing: no Python step per signal)
    sized_at = np.flatnonzero(reached).tolist() if len(e_size) else [k for k in pre.sizing if reached[k]]
    for k in sized_at:
        sized = _risk_details(x, pre, e_size, k, None) if len(e_size) else pre.sizing[k]
        if sized is not None:
            given[k] = given.get(k, {}) | {"sizing": sized}
    for code, k in enumerate(np.bincount(e_status, minlength=len(COUNT_RULES) + 1).tolist()):
        if code in COUNT_RULES and k:
            funnel.rejected[COUNT_RULES[code]] += k
    status = Coded(ok.astype(np.int8) + cut, ["rejected", "approved", "resized"])
    funnel.resized += int(cut.sum())
    volume = np.where(ok, x.ev_vol, 0.0)
    order_ticket, position = _or_none(e_order, ok), _or_none(e_position, ok)
    all_ok = bool(ok.all())  # every signal traded: one retcode for all (a value, not a column)
    retcode = Const(C.TRADE_RETCODE_DONE, n_ev) if all_ok else Masked(np.full(n_ev, C.TRADE_RETCODE_DONE), ok)
    approved = int(ok.sum())
    funnel.approved += approved
    funnel.executed += approved
    strategy_codes = narrow(x.ev_si, len(slots))  # the signals' strategy and timeframe, a byte each
    signals: dict[str, Any] = {
        "signal_id": np.arange(base + 1, base + n_ev + 1, dtype=np.int64),
        "time": x.times[point_of],
        "strategy": Coded(strategy_codes, [slot[0].name for slot in slots]),
        "symbol": Coded(narrow(x.ev_sym, len(x.symbols)), x.symbols),
        "timeframe": Coded(strategy_codes, [slot[0].timeframe.name for slot in slots]),
        "direction": Coded((x.ev_dir > 0).astype(np.int8), ["sell", "buy"]),
        "order_type": Const("market", n_ev),
        "price": Const(None, n_ev),
        "sl": Masked(stops[0], stops[0] != 0),  # a signal without SL: None (0.0 in the arrays)
        "tp": Masked(stops[1], stops[1] != 0),
        **_signal_fields(x.signals, pre.tags, n_ev),
        "status": status,
        "rule": Coded(narrow(rule_codes, len(index)), list(index)),
        "reason": Coded(narrow(reason_codes, len(index)), list(index)),
        "details": DictColumn(n_ev, given),
        "volume": volume,
        "order_ticket": order_ticket,
        "retcode": retcode,
        "position_id": position,
        "trading_mode": Const(runner.c.cfg.trading_mode, n_ev),  # one profile in force (no switch: why_not)
    }
    rec.add_columns(db.signals, signals)
    journal.signal_seq = base + n_ev
    funnel.signals += n_ev
    funnel.decision_points += x.points
    _journal_deals(runner, x, *deals)
    q_balance, q_equity, q_margin, q_open = (a[x.sample] for a in equity)
    held = q_margin > 0
    if held.any():  # the lowest margin level: rounding is monotone, so the rounded minimum
        level = rules.round_to(float((q_equity[held] / q_margin[held] * 100).min()), 2)
        low = funnel.margin_level_min
        funnel.margin_level_min = level if low is None else min(low, level)
    equity_rows: dict[str, Any] = {
        "time": x.times[x.sample],
        "balance": q_balance,
        "equity": q_equity,
        "margin": q_margin,
        "open_positions": q_open,
    }
    rec.add_columns(db.equity, equity_rows)


def _signal_fields(
    signals: list[Signal] | None, regimes: dict[int, dict[str, Any]], n: int
) -> dict[str, Any]:
    """The signals' own columns: a column strategy's defaults, or a signal pass's Signal fields; the
    tags with the regime label last, as the router adds it (``{**sig.tags, "regime": label}``)."""
    from mt5tester.results.rows import DictColumn

    if signals is None:
        return {"confidence": Const(1.0, n), "comment": Const("", n), "tags": DictColumn(n, regimes)}
    tags = {
        k: {**sig.tags, **regimes.get(k, {})} for k, sig in enumerate(signals) if sig.tags or k in regimes
    }
    return {
        "confidence": np.array([sig.confidence for sig in signals], np.float64),
        "comment": [sig.comment for sig in signals],
        "tags": DictColumn(n, tags),
    }


def _risk_details(
    x: Inputs, pre: prereview.PreReview, e_size: np.ndarray, k: int, why: str | None
) -> dict[str, Any]:
    """``risk.sizing.size``'s details of signal ``k``, sized in the kernel (refused: ``why``)."""
    sym = int(x.ev_sym[k])
    d: dict[str, Any] = {"mode": "risk", "multiplier": float(pre.multiplier[k])}
    if why in ("no_stop_loss", "no_tick_value"):
        return d | {"symbol": x.symbols[sym]}
    money, distance, value, per_lot, raw = e_size[k].tolist()
    vmin, step = float(x.sf[sym, B.F_VMIN]), float(x.sf[sym, B.F_VSTEP])
    d |= sizing.risk_details(money, distance, value, float(x.sf[sym, B.F_POINT]), per_lot)
    return d | {"raw": round(raw, 8), "volume_min": vmin, "volume_step": step}


def _money_decision(
    runner: Runner, x: Inputs, money: tuple[list[str], np.ndarray, np.ndarray], code: int, k: int
) -> Any:
    """``CurrencyExposureRule.check``'s or ``CorrelationRule.check``'s decision on signal ``k`` from the
    kernel's numbers (e_ccy's or e_corr's columns), through the rule's own ``numbers``."""
    rules_ = runner.c.coordinator.rules
    names, e_ccy, e_corr = money
    if code in (CURRENCY, CURRENCY_SMALL, CURRENCY_RESIZED):
        rule: Any = next(r for r in rules_ if isinstance(r, CurrencyExposureRule))
        ccy, after, before, fit, volume = e_ccy[k].tolist()
        name = names[int(ccy)]
        numbers = rule.numbers(name, rule.limit_of(name, runner.c.server.settings.currency), after, before)
        policy, first = rule.policy, CURRENCY
    else:
        rule = next(r for r in rules_ if isinstance(r, CorrelationRule))
        sym, adj, rho, fit, volume = e_corr[k].tolist()
        numbers = rule.numbers(x.symbols[int(sym)], adj, rho)
        policy, first = rule.policy, CORRELATION
    if policy == "reject":
        return reject(rule.name, rule.name, **numbers)
    v = float(x.ev_vol[k]) if code == first + 2 else 0.0  # resized; else no volume fits
    return fitted(rule.name, rule.name, v, fit, volume, numbers)


def _total_risk_decision(code: int, symbol: str, numbers: np.ndarray, volume: float) -> Any:
    """``TotalRiskRule.check``'s decision from the kernel's numbers (e_risk's columns)."""
    name = "max_total_risk"
    if code == NO_STOP_RISK:
        return reject(name, "no_stop_loss", symbol=symbol)
    limit, value, held, new, unprotected, fit, before = numbers.tolist()
    given = TotalRiskRule.numbers(limit, value, held, new, int(unprotected))
    if code == TOTAL_RISK:
        return reject(name, name, **given)
    return fitted(name, name, volume if code == RESIZED else 0.0, fit, before, given)


def _or_none(values: np.ndarray, ok: np.ndarray) -> Any:
    """A column that is None where not ``ok`` (``Masked``): the array itself when every row is."""
    return values if ok.all() else Masked(values, ok)


def _journal_deals(runner: Runner, x: Inputs, book: B.ArrayBook, first: int, fields: dict[str, Any]) -> None:
    """The deals the kernel made, recorded and attributed as the Python loop records them (no strategy
    here has an on_trade hook, see why_not), as columns straight from the book's arrays.

    Attribution as engine/attribution.py resolves it for these deals: every kernel order carries its
    strategy's magic and a "signal N" comment, SL/TP closes are server-reason orders, so a deal of any
    entry belongs to the strategy and signal that opened its position (D_STRAT, D_SID). A netting
    reversal (entry INOUT) belongs to its own order instead: that rare case takes the per-deal path."""
    from mt5tester.results import db

    journal = runner.journal
    nd = int(book.cnt[B.C_DEALS])
    di = book.di[:nd]
    state = runner.c.server.state
    inout = bool((di[:, B.D_ENTRY] == C.DEAL_ENTRY_INOUT).any())
    if journal.recorded != first or len(state.deals) != first + nd or inout or journal.owners.sent:
        journal.deals(notify=False)
        return
    journal.recorded = first + nd
    reason, entry = di[:, B.D_REASON], di[:, B.D_ENTRY]
    out = entry != C.DEAL_ENTRY_IN
    closed = journal.funnel.closed
    # the keys of Journal.deals: SL/TP by reason, any other close of a kernel deal is a signal's
    for key, hits in (("sl", reason == B.REASON_SL), ("tp", reason == B.REASON_TP)):
        k = int((out & hits).sum())
        if k:
            closed[key] += k
    k = int((out & (reason != B.REASON_SL) & (reason != B.REASON_TP)).sum())
    if k:
        closed["signal"] += k
    owner_of = journal.owners.magic  # magic -> strategy, as the attribution reads an order's magic
    magic = fields["magic"]
    mags = np.unique(magic)
    who = Coded(narrow(np.searchsorted(mags, magic), len(mags)), [owner_of[k] for k in mags.tolist()])
    # the deals table's columns are the history's own arrays (terminal/history.py): stored once
    columns = {k: fields[k] for k in db.deals.columns.keys() if k in fields and k != "magic"}  # noqa: SIM118
    columns |= {"strategy": who, "signal_id": di[:, B.D_SID]}
    journal.rec.add_columns(db.deals, columns)
