"""Orders of a session: the backtest router's decisions, sent idempotently through the terminal.

As in a backtest (engine/router.py): a point's exits go first, then one coordinator review of all its
entries, then each approved entry is one ``order_send`` with the strategy's magic and ``"signal <id>"``
as the comment. Live adds what a real connection needs:

- idempotency: before a request for a signal is sent, the terminal's orders, positions and history
  are searched for that magic and comment; found, it is not sent again (a restart replaying a point);
- a request answered with ``None`` (the connection dropped mid-order) is followed by a reconnect, a
  reconcile of the deals, and the same search: sent already, it is recorded as such; not, it is resent;
- a requote or off quotes is resent at the new price ``live.requote_retries`` times;
- with a ``trading_mode_switch``, each signal is reviewed under the mode in force for it, by that mode's
  coordinator, and an entry the mode does not select is rejected (rule ``trading_mode``), as
  engine/router.py ``_decide`` does;
- every request is recorded with its result, retcode and last_error (table live_requests).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from mt5tester.engine.journal import magic_of, signal_of
from mt5tester.engine.modes import ModeSwitch
from mt5tester.engine.router import (
    SENT,
    close_request,
    decide_by_mode,
    decided_row,
    describe,
    request_signal,
    signal_request,
)
from mt5tester.errors import StrategyRuntimeError
from mt5tester.live.journal import LiveJournal
from mt5tester.model import constants as C
from mt5tester.model.signal import Signal
from mt5tester.model.structs import OrderSendResult, TradeRequest
from mt5tester.risk.coordinator import Coordinator, ReviewContext, SignalContext
from mt5tester.risk.decision import Decision

log = logging.getLogger(__name__)
RETRY = (C.TRADE_RETCODE_REQUOTE, C.TRADE_RETCODE_PRICE_OFF, C.TRADE_RETCODE_PRICE_CHANGED)


class LiveRouter:
    def __init__(
        self,
        mt5: Any,
        journal: LiveJournal,
        coordinator: Coordinator,
        strategies: list[Any],
        cfg: Any,
        regime: Callable[[str, int], str | None],
        reconnect: Callable[[], bool],
        modes: ModeSwitch | None = None,
    ) -> None:
        self.mt5, self.journal, self.coordinator, self.modes = mt5, journal, coordinator, modes
        self.strategies, self.cfg = strategies, cfg
        self.regime, self.reconnect = regime, reconnect
        self.magics = {magic_of(si): s.name for si, s in enumerate(strategies)}
        self.specs: dict[str, Any] = {}
        self.point_first = 1  # id of the first signal of the point being traded
        self.now = 0  # UTC ns of the point being traded

    @property
    def now(self) -> int:
        """UTC ns of the point being traded; set at each point's start (the session's ``_point``)."""
        return self._now

    @now.setter
    def now(self, t: int) -> None:
        if t != getattr(self, "_now", None):  # a new point: its signals are numbered from here on
            self.point_first = self.journal.signal_seq + 1
        self._now = t

    @property
    def funnel(self) -> Any:
        return self.journal.funnel

    # ------------------------------------------------------------------------------- reading
    def positions(self) -> list[Any]:
        return [p for p in self.mt5.positions_get() or () if p.magic in self.magics]

    def orders(self) -> list[Any]:
        return [o for o in self.mt5.orders_get() or () if o.magic in self.magics]

    def quote(self, symbol: str) -> tuple[float, float] | None:
        tick = self.mt5.symbol_info_tick(symbol)
        return None if tick is None or not tick.bid else (float(tick.bid), float(tick.ask))

    def find_sent(self, req: TradeRequest) -> Any:
        """What an entry request already sent left in the terminal (its magic and comment identify the
        strategy and the signal): the pending order, or the position or the entry deal it opened. A close
        sent for the same signal (a reversal's exit) has the same comment but is no entry: not matched."""
        hi = self.journal.clock.to_server_s(self.now) + 86_400
        lo = self.journal.since_s - 86_400
        if req.action == C.TRADE_ACTION_PENDING:
            orders = (*(self.mt5.orders_get() or ()), *(self.mt5.history_orders_get(lo, hi) or ()))
            return next(
                (o for o in orders if (o.magic, o.comment, o.type) == (req.magic, req.comment, req.type)),
                None,
            )
        for p in self.mt5.positions_get() or ():
            if (p.magic, p.comment) == (req.magic, req.comment):
                return p
        entries = (C.DEAL_ENTRY_IN, C.DEAL_ENTRY_INOUT)
        for d in self.mt5.history_deals_get(lo, hi) or ():
            if (d.magic, d.comment) == (req.magic, req.comment) and d.entry in entries:
                return d
        return None

    # ------------------------------------------------------------------------------- signals
    def process(self, batch: list[tuple[int, str, Signal]], t: int) -> None:
        """The trading signals of one point: exits, one review of every entry, then execution."""
        if not batch:
            return
        self.now = t
        items = []
        for si, symbol, sig in batch:
            sid = self.journal.next_signal()
            regime = self.regime(symbol, t)
            if regime is not None:
                sig = sig.model_copy(update={"tags": {**sig.tags, "regime": regime}})
            items.append((si, symbol, sig, sid, regime))
            if sig.direction == "flat" or sig.exit_opposite:
                self._close_strategy_positions(si, symbol, sig, sid)
        contexts = []
        for si, symbol, sig, _, regime in items:
            sl, _tp, ref = self._stops(sig, symbol)
            risk = abs(ref - sl) if sl and ref else None
            s = self.strategies[si]
            contexts.append(SignalContext(s.name, sig.volume or s.volume, risk, regime))
        decisions, modes = self._decide(items, contexts, t)
        close_all = False
        for (si, symbol, sig, sid, _), decision, mode in zip(items, decisions, modes, strict=True):
            row = decided_row(sid, t, self.strategies[si], symbol, sig, decision, mode)
            close_all = close_all or bool(decision.details.get("close_all"))
            if decision.status in ("approved", "resized"):
                self.funnel.approved += 1
                self.funnel.resized += decision.status == "resized"
                if sig.direction != "flat":
                    row.update(self._execute(sig, symbol, decision.volume, sid, si))
            else:
                self.funnel.rejected[decision.reason or "unknown"] += 1
            self.journal.signal(row)
        if close_all:
            self.close_all("circuit breaker")

    def _review(
        self, sigs: list[Signal], contexts: list[SignalContext], t: int, coordinator: Coordinator
    ) -> list[Decision]:
        """One coordinator review of signals of one moment, with the terminal's owners and clock."""
        ours = self.positions()
        owners = {p.ticket: self.magics[p.magic] for p in ours}
        server_s = self.journal.clock.to_server_s(t)
        # A restart repeats the point it died in (signal numbering saved after each point): positions
        # its own entries opened before the crash are left out, so the point is reviewed as it first was.
        exclude = frozenset(p.ticket for p in ours if (signal_of(p.comment) or 0) >= self.point_first)
        ctx = ReviewContext(
            now=t, bar_time=t, signals=contexts, owners=owners, server_time=server_s, exclude=exclude
        )
        return list(coordinator.review(sigs, ctx))

    def _decide(
        self, items: list[tuple[int, str, Signal, int, str | None]], contexts: list[SignalContext], t: int
    ) -> tuple[list[Decision], list[str | None]]:
        """The decisions of one moment's signals and the mode each was reviewed under, as a backtest's
        router decides them (engine/router.py ``_decide``): per signal the mode in force, its
        coordinator; an entry the mode does not select is rejected (rule trading_mode)."""
        modes = self.modes
        if modes is None:
            decisions = self._review([it[2] for it in items], contexts, t, self.coordinator)
            return decisions, [self.cfg.trading_mode] * len(items)
        server_s = self.journal.clock.to_server_s(t)
        return decide_by_mode(
            items,
            contexts,
            modes,
            server_s,
            lambda si: self.strategies[si].name,
            lambda g, c, co: self._review(g, c, t, co),
        )

    def mode_at(self, symbol: str, t: int) -> str | None:
        """The trading mode in force for ``symbol`` at ``t`` (engine/modes.py)."""
        if self.modes is None:
            return self.cfg.trading_mode
        return self.modes.active(self.journal.clock.to_server_s(t), self.regime(symbol, t)).name

    def coordinators(self) -> list[Coordinator]:
        """Each trading mode's coordinator (its own breaker), or the one coordinator."""
        return self.modes.coordinators() if self.modes is not None else [self.coordinator]

    def _stops(self, sig: Signal, symbol: str) -> tuple[float, float, float]:
        spec = self.specs[symbol]
        quote = self.quote(symbol)
        if quote is None:
            return 0.0, 0.0, 0.0
        bid, ask = quote
        is_buy = sig.direction == "buy"
        ref = sig.price if sig.order_type != "market" and sig.price else (ask if is_buy else bid)
        sign = 1 if is_buy else -1
        sl = sig.sl or (round(ref - sign * sig.sl_points * spec.point, spec.digits) if sig.sl_points else 0.0)
        tp = sig.tp or (round(ref + sign * sig.tp_points * spec.point, spec.digits) if sig.tp_points else 0.0)
        return float(sl), float(tp), float(ref)

    def _execute(self, sig: Signal, symbol: str, volume: float, sid: int, si: int) -> dict[str, Any]:
        if self.quote(symbol) is None:
            self.funnel.order_failed["Market closed"] += 1
            return {"retcode": C.TRADE_RETCODE_MARKET_CLOSED}
        sl, tp, _ = self._stops(sig, symbol)
        req = signal_request(sig, symbol, volume, sl, tp, si, sid)
        res = self.send(req, sid)
        if res.retcode in SENT:
            self.funnel.executed += 1
        else:
            self.funnel.order_failed[res.comment] += 1
        position = None
        if res.deal:
            deal = next(iter(self.mt5.history_deals_get(ticket=res.order) or ()), None)
            position = int(deal.position_id) if deal is not None else None
        return {
            "order_ticket": res.order or None,
            "retcode": res.retcode,
            "sl": sl or None,
            "tp": tp or None,
            "position_id": position or res.order or None,
        }

    # -------------------------------------------------------------------------------- closes
    def _close_strategy_positions(self, si: int, symbol: str, sig: Signal, sid: int) -> None:
        opposite = {"buy": 1, "sell": 0, "flat": -1}[sig.direction]
        for p in self.positions():
            if p.symbol == symbol and p.magic == magic_of(si) and opposite in (-1, p.type):
                res = self.send(close_request(p, f"signal {sid}", magic_of(si)), None)
                if res.retcode != C.TRADE_RETCODE_DONE:
                    self.funnel.order_failed[f"close: {res.comment}"] += 1

    def close_all(self, comment: str) -> None:
        """Close every position and delete every pending order of our strategies (the circuit breaker,
        the kill switch, the end of a paper replay)."""
        if comment == "circuit breaker":
            self.funnel.circuit_breaker_closes += len(self.positions())
        for p in sorted(self.positions(), key=lambda p: p.ticket):
            res = self.send(close_request(p, comment, p.magic), None)
            if res.retcode != C.TRADE_RETCODE_DONE:
                self.funnel.order_failed[f"close: {res.comment}"] += 1
        for o in sorted(self.orders(), key=lambda o: o.ticket):
            req = TradeRequest(
                action=C.TRADE_ACTION_REMOVE, order=o.ticket, symbol=o.symbol, magic=o.magic, comment=comment
            )
            self.send(req, None)

    # ------------------------------------------------------------ orders a strategy sends itself
    def route_own(self, req: TradeRequest, si: int | None) -> OrderSendResult:
        """A strategy's own ``order_send`` (``self.ctx.mt5``), as a backtest's router takes it: an entry
        is reviewed by the coordinator and stored as a signal (rejected: TRADE_RETCODE_REJECT), exits and
        order changes pass. It carries the strategy's magic; a reviewed entry ``"signal <id>"`` as its
        comment, so a restart finds it instead of sending it again."""
        self.funnel.order_sends += 1
        if si is not None:
            req = req._replace(magic=magic_of(si))
        entry = self._entry_volume(req)
        if entry is None:
            return self.send(req, None)
        if si is None:
            raise StrategyRuntimeError(
                f"an order was sent through the terminal outside any strategy call ({describe(req)}); "
                "send orders from generate_signals, on_start, on_trade or on_stop"
            )
        s = self.strategies[si]
        sig = request_signal(req, entry, s.name)
        sid = self.journal.next_signal()
        regime = self.regime(req.symbol, self.now)
        if regime is not None:
            sig = sig.model_copy(update={"tags": {**sig.tags, "regime": regime}})
        quote = self.quote(req.symbol) or (0.0, 0.0)
        ref = req.price if sig.order_type != "market" else (quote[1] if sig.direction == "buy" else quote[0])
        risk = abs(ref - req.sl) if req.sl and ref else None
        decided, modes = self._decide(
            [(si, req.symbol, sig, sid, regime)], [SignalContext(s.name, entry, risk, regime)], self.now
        )
        decision = decided[0]
        row = decided_row(sid, self.now, s, req.symbol, sig, decision, modes[0])
        if decision.status in ("approved", "resized"):
            self.funnel.approved += 1
            self.funnel.resized += decision.status == "resized"
            volume = round(req.volume - entry + decision.volume, 8)
            res = self.send(req._replace(volume=volume, comment=f"signal {sid}"), sid)
            if res.retcode in SENT:
                self.funnel.executed += 1
            else:
                self.funnel.order_failed[res.comment] += 1
            row.update(order_ticket=res.order or None, retcode=res.retcode, position_id=res.order or None)
        else:
            self.funnel.rejected[decision.reason or "unknown"] += 1
            comment = f"Request rejected by the risk coordinator: {decision.reason}"
            res = OrderSendResult(C.TRADE_RETCODE_REJECT, 0, 0, 0.0, 0.0, *quote, comment, 0, 0, req)
            row.update(retcode=C.TRADE_RETCODE_REJECT)
        self.journal.signal(row)
        if decision.details.get("close_all"):
            self.close_all("circuit breaker")
        return res

    def _entry_volume(self, req: TradeRequest) -> float | None:
        """The volume of ``req`` that opens or adds exposure (what the coordinator gates), or None."""
        if req.action == C.TRADE_ACTION_PENDING:
            return req.volume if req.volume > 0 else None
        if req.action != C.TRADE_ACTION_DEAL or req.type not in (C.ORDER_TYPE_BUY, C.ORDER_TYPE_SELL):
            return None
        if req.position or not req.volume > 0:
            return None
        acc = self.mt5.account_info()
        if acc is None or acc.margin_mode == C.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING:
            return req.volume
        buy = req.type == C.ORDER_TYPE_BUY
        held = next((p for p in self.mt5.positions_get(symbol=req.symbol) or ()), None)
        if held is None or (held.type == C.POSITION_TYPE_BUY) == buy:
            return req.volume
        rest = round(req.volume - held.volume, 8)  # netting: only a reversal's new part is an entry
        return rest if rest > 1e-9 else None

    # ---------------------------------------------------------------------------------- send
    def send(self, req: TradeRequest, sid: int | None) -> OrderSendResult:
        """``order_send`` with the safety of a live connection (module doc); every try is recorded."""
        if sid is not None and (found := self.find_sent(req)) is not None:
            res = self._found(req, found)
            self._record(req, sid, res, None, "duplicate")
            return res
        retries = self.cfg.live.requote_retries
        reconnects = self.cfg.live.reconnect_attempts
        if req.action == C.TRADE_ACTION_DEAL and req.type_filling == C.ORDER_FILLING_FOK:
            req = req._replace(type_filling=self._filling(req.symbol))
        while True:
            if req.action == C.TRADE_ACTION_DEAL and req.price == 0.0 and (q := self.quote(req.symbol)):
                req = req._replace(price=q[1] if req.type == C.ORDER_TYPE_BUY else q[0])
            res = self.mt5.order_send(req._asdict())
            if res is None:
                error = self.mt5.last_error()
                self._record(req, sid, None, error, "no_answer")
                log.warning("order_send returned None (%s): reconnecting", error)
                if not self.reconnect():
                    return OrderSendResult(
                        C.TRADE_RETCODE_CONNECTION,
                        0,
                        0,
                        0.0,
                        0.0,
                        0.0,
                        0.0,
                        f"No connection: {error[1]}",
                        0,
                        0,
                        req,
                    )
                self.journal.deals()
                found = self.find_sent(req) if sid is not None else None
                if found is not None:
                    res = self._found(req, found)
                    self._record(req, sid, res, None, "found")
                    return res
                if reconnects <= 0:
                    return OrderSendResult(
                        C.TRADE_RETCODE_CONNECTION,
                        0,
                        0,
                        0.0,
                        0.0,
                        0.0,
                        0.0,
                        f"No answer: {error[1]}",
                        0,
                        0,
                        req,
                    )
                reconnects -= 1
                continue
            if res.retcode in RETRY and retries > 0:
                self._record(req, sid, res, None, "requote")
                retries -= 1
                req = req._replace(price=0.0)  # the new price at the next try
                continue
            self._record(req, sid, res, None, "done" if res.retcode in SENT else "refused")
            self.journal.deals()
            return res

    def _filling(self, symbol: str) -> int:
        """A filling the symbol allows for market orders (spec 4.4): FOK, else IOC, else RETURN; brokers
        refuse the others with TRADE_RETCODE_INVALID_FILL."""
        info = self.mt5.symbol_info(symbol)
        mode = int(getattr(info, "filling_mode", C.SYMBOL_FILLING_FOK)) if info is not None else 1
        if mode & C.SYMBOL_FILLING_FOK:
            return C.ORDER_FILLING_FOK
        return C.ORDER_FILLING_IOC if mode & C.SYMBOL_FILLING_IOC else C.ORDER_FILLING_RETURN

    def _found(self, req: TradeRequest, found: Any) -> OrderSendResult:
        """The result of a request already sent, read back from the order or position it made."""
        price = float(getattr(found, "price_open", getattr(found, "price", 0.0)))
        order = int(getattr(found, "order", 0) or getattr(found, "ticket", 0))
        return OrderSendResult(
            C.TRADE_RETCODE_DONE, 0, order, req.volume, price, 0.0, 0.0, f"already sent (#{order})", 0, 0, req
        )

    def _record(self, req: TradeRequest, sid: int | None, res: Any, error: Any, outcome: str) -> None:
        result = None if res is None else {k: v for k, v in res._asdict().items() if k != "request"}
        self.journal.request(
            {
                "time": self.now,
                "signal_id": sid,
                "strategy": self.magics.get(req.magic, ""),
                "symbol": req.symbol,
                "magic": req.magic,
                "comment": req.comment,
                "request": req._asdict(),
                "retcode": None if res is None else int(res.retcode),
                "result": result,
                "last_error": None if error is None else list(error),
                "outcome": outcome,
            }
        )
