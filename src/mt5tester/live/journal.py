"""The backtest's journal with the terminal's history as its source of deals.

A backtest reads the simulated server's deal list; a session reads ``history_deals_get`` of the
terminal it trades through, keeps the deals of its own strategies (their magic numbers), and records
each once by ticket, whatever made it (a signal, SL/TP, a stop-out, a close while the session was down:
the same call reconciles after a restart or a reconnect). Strategy and signal come back from the magic
and the ``"signal <id>"`` comment, as an EA reads them (README "Writing a strategy").
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert, select, update

from mt5tester.engine.build import Components
from mt5tester.engine.journal import Journal, signal_of, strategy_rows
from mt5tester.live.book import session_positions
from mt5tester.live.terminal import ServerClock
from mt5tester.model import constants as C
from mt5tester.model.trade import Deal
from mt5tester.results import db
from mt5tester.results.recorder import Recorder
from mt5tester.results.rows import deal_row

DAY_S = 86_400


class LiveJournal(Journal):
    def __init__(
        self, c: Components, rec: Recorder, mt5: Any, clock: ServerClock, magics: dict[int, str], since_s: int
    ) -> None:
        super().__init__(c, rec)
        self.mt5, self.clock, self.magics = mt5, clock, magics
        self.since_s = since_s  # server seconds: the session's history starts here
        self.seen: set[int] = set()  # deal tickets recorded
        self.signal_of_position: dict[int, int | None] = {}
        self.balance = 0.0
        self.open_ids: set[int] = set()
        self.requests = 0  # live_requests rows written
        self.now_ns = 0
        self.last_equity = -1

    # ------------------------------------------------------------------------------ trading
    def history(self) -> list[Any]:
        """Our deals in the terminal's history since the session began, oldest first."""
        hi = self.clock.to_server_s(self.now_ns) + DAY_S if self.now_ns else 2**31 - 1
        got = self.mt5.history_deals_get(self.since_s - DAY_S, hi)
        return sorted((d for d in got or () if d.magic in self.magics), key=lambda d: (d.time_msc, d.ticket))

    def reconcile(self) -> None:
        """On start and after a reconnect: the deals of our positions still open, however long ago they
        opened (the history window starts a day before the session), then everything since."""
        held = []
        for p in self.mt5.positions_get() or ():
            if p.magic in self.magics:
                held += list(self.mt5.history_deals_get(position=p.identifier) or ())
        self._record(sorted(held, key=lambda d: (d.time_msc, d.ticket)), notify=False)
        self.deals(notify=False)

    def deals(self, notify: bool = True) -> None:
        self._record(self.history(), notify)

    def _record(self, deals: list[Any], notify: bool) -> None:
        for d in deals:
            if d.ticket in self.seen:
                continue
            self.seen.add(d.ticket)
            if d.type not in (C.DEAL_TYPE_BUY, C.DEAL_TYPE_SELL):
                continue
            sid = signal_of(d.comment)
            if d.entry == C.DEAL_ENTRY_IN:
                self.signal_of_position[d.position_id] = sid
                self.open_ids.add(d.position_id)
            else:
                sid = self.signal_of_position.get(d.position_id, sid)
            self.balance = round(self.balance + d.profit + d.commission + d.swap + d.fee, 2)
            utc = int(self.clock.to_utc_ns([d.time_msc // 1000])[0]) + d.time_msc % 1000 * 1_000_000
            deal = Deal(
                *(d.ticket, d.order, utc, d.type, d.entry, d.reason, d.position_id, d.symbol),
                *(d.volume, d.price, d.commission, d.swap, d.profit, self.balance, d.comment),
                magic=d.magic,
                fee=d.fee,
            )
            if d.entry != C.DEAL_ENTRY_IN:
                key = {C.DEAL_REASON_SL: "sl", C.DEAL_REASON_TP: "tp", C.DEAL_REASON_SO: "stop_out"}.get(
                    d.reason
                )
                key = key or {"end of run": "end_of_run", "circuit breaker": "circuit_breaker"}.get(d.comment)
                self.funnel.closed[key or "signal"] += 1
            strategy = self.magics[d.magic]
            self.rec.add(db.deals, deal_row(deal, strategy, sid))
            if notify:
                self.on_trade(deal, strategy)

    def equity(self, t: int) -> None:
        acc = self.mt5.account_info()
        if acc is None or t <= self.last_equity:  # one row per moment (a stop right after a point)
            return
        self.last_equity = t
        if acc.margin > 0:
            level = round(acc.equity / acc.margin * 100, 2)
            low = self.funnel.margin_level_min
            self.funnel.margin_level_min = level if low is None else min(low, level)
        row = {"time": t, "balance": acc.balance, "equity": acc.equity, "margin": acc.margin}
        self.rec.add(db.equity, row | {"open_positions": self.mt5.positions_total()})
        self.daily.add(t, acc.balance, acc.equity)

    # ------------------------------------------------------------------------ start and end
    def start(self, run_id: str) -> None:
        cfg, acc = self.c.cfg, self.mt5.account_info()
        self.balance = float(acc.balance) if acc is not None else cfg.backtest.initial_deposit
        strategies = strategy_rows(self.c.strategies)
        effective = cfg.effective()
        effective["results"]["database_url"] = db.redact(cfg.results.database_url)
        currency = acc.currency if acc is not None else cfg.backtest.deposit_currency
        self.rec.start_run(
            effective, cfg.config_hash(), cfg.backtest.seed, self.balance, currency, strategies
        )
        self.rec.flush()

    def book(self) -> None:
        """Positions rebuilt from the recorded deals, their MFE/MAE on the terminal's M1 bars
        (live/book.py)."""
        self.rec.flush()
        d = db.deals
        with self.c.db.connect() as conn:
            rows = (
                conn.execute(select(d).where(d.c.run_id == self.rec.run_id).order_by(d.c.time, d.c.ticket))
                .mappings()
                .all()
            )
        specs = dict(self.c.specs)
        for row in session_positions(self.mt5, self.clock, [dict(r) for r in rows], specs, self.now_ns):
            self.rec.add(db.positions, row)

    def finish(self, status: str, error: str | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        funnel = self.funnel.as_dict() | {"magic_numbers": {v: k for k, v in self.magics.items()}}
        self.rec.finish(status, funnel, error, extra or {})
        return funnel

    # ------------------------------------------------------------------- requests and state
    def request(self, row: dict[str, Any]) -> None:
        """One trading request with its result, written at once (not batched)."""
        self.requests += 1
        fix = "Fix the database"
        with db.storage_errors(self.c.db, "recording a live request", fix), self.c.db.begin() as conn:
            conn.execute(insert(db.live_requests).values(run_id=self.rec.run_id, seq=self.requests, **row))

    def save_state(self, mode: str, account: dict[str, Any], state: dict[str, Any]) -> None:
        """The session's state (signal numbering, the last bar each strategy saw), for a restart."""
        t = db.live_sessions
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        values = {"mode": mode, "account": account, "state": state, "updated_at": now}
        self.rec.flush()
        what = "saving the live session state"
        with db.storage_errors(self.c.db, what, "Fix the database"), self.c.db.begin() as conn:
            done = conn.execute(update(t).where(t.c.run_id == self.rec.run_id).values(**values)).rowcount
            if not done:
                conn.execute(insert(t).values(run_id=self.rec.run_id, **values))
