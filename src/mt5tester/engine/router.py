"""The router: every order of a run goes through it. Approved signals become MT5 trading requests
(TradeRequest -> order_send); orders a strategy sends itself through its terminal meet the coordinator
per ``backtest.strategy_orders``; the circuit breaker and the end of the run close positions here.
Each request's deals are journaled as soon as the server makes them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mt5tester.engine.build import Components
from mt5tester.engine.host import Host
from mt5tester.engine.journal import Funnel, Journal, magic_of
from mt5tester.engine.modes import ModeSwitch
from mt5tester.errors import StrategyRuntimeError
from mt5tester.model import constants as C
from mt5tester.model.signal import OrderKind, Signal
from mt5tester.model.structs import OrderSendResult, TradeRequest
from mt5tester.results.rows import signal_row
from mt5tester.risk.coordinator import Coordinator, ReviewContext, SignalContext
from mt5tester.risk.decision import Decision, reject


def decided_row(
    sid: int, t: int, s: Any, symbol: str, sig: Signal, decision: Decision, mode: str | None = None
) -> dict[str, Any]:
    """The signals-table row of a reviewed signal, with the coordinator's decision and the trading mode."""
    return signal_row(
        *(sid, t, s, symbol, sig),
        status=decision.status,
        rule=decision.rule,
        reason=decision.reason,
        details=decision.details,
        volume=decision.volume,
        trading_mode=mode,
    )


BUY_PENDING = (C.ORDER_TYPE_BUY_LIMIT, C.ORDER_TYPE_BUY_STOP, C.ORDER_TYPE_BUY_STOP_LIMIT)
LIMITS = (C.ORDER_TYPE_BUY_LIMIT, C.ORDER_TYPE_SELL_LIMIT)
PENDING_KINDS = {
    ("limit", True): C.ORDER_TYPE_BUY_LIMIT,
    ("limit", False): C.ORDER_TYPE_SELL_LIMIT,
    ("stop", True): C.ORDER_TYPE_BUY_STOP,
    ("stop", False): C.ORDER_TYPE_SELL_STOP,
}
SENT = (C.TRADE_RETCODE_DONE, C.TRADE_RETCODE_PLACED)
# Requests that make a new order ticket (the others change or remove an existing one)
NEW_ORDER_ACTIONS = (C.TRADE_ACTION_DEAL, C.TRADE_ACTION_PENDING, C.TRADE_ACTION_CLOSE_BY)


def describe(req: TradeRequest) -> str:
    """A trading request in a few words, for messages: 'TRADE_ACTION_DEAL ORDER_TYPE_BUY 0.1 EURUSD'."""
    action = next((k for k in dir(C) if k.startswith("TRADE_ACTION_") and getattr(C, k) == req.action), "")
    kind = next((k for k in dir(C) if k.startswith("ORDER_TYPE_") and getattr(C, k) == req.type), "")
    return " ".join(x for x in (action or str(req.action), kind, f"{req.volume:g}", req.symbol) if x)


class Router:
    def __init__(self, c: Components, host: Host, journal: Journal) -> None:
        self.c = c
        self.host = host
        self.journal = journal
        self.capture: list[tuple[int, str, str, Signal]] | None = None  # (t, strategy, symbol, signal)
        self.mt5 = host.ctx.mt5  # the strategies' MetaTrader5 module: the engine's orders go through it too
        self._own = False  # True while the engine itself sends through order_send (already reviewed)
        c.terminal.router = self.route  # every order_send on the terminal comes here
        journal.mode_at = self.mode_at  # fusion members' signals carry the trading mode too

    @property
    def funnel(self) -> Funnel:
        return self.journal.funnel  # a property: a resumed run replaces the journal's funnel

    def regime(self, symbol: str, t: int) -> str | None:
        tracker = self.c.regimes
        return None if tracker is None else tracker.label_at(symbol, t)

    def mode_at(self, symbol: str, t: int) -> str | None:
        """The trading mode in force for ``symbol`` at ``t`` (engine/modes.py)."""
        if self.c.modes is None:
            return self.c.cfg.trading_mode
        return self.c.modes.active(self.c.terminal.market.to_server_s(t), self.regime(symbol, t)).name

    def observe(self, t: int) -> None:
        """Equity for the coordinators' circuit breakers (each trading mode's keeps its own)."""
        for co in self._breakers():
            co.observe(self.c.terminal.market.to_server_s(t))

    def watches_equity(self) -> bool:
        """Whether ``observe`` has anything to do (a coordinator with a circuit breaker): the loop calls
        it only then."""
        return bool(self._breakers())

    def _breakers(self) -> list[Coordinator]:
        coordinators = self.c.modes.coordinators() if self.c.modes is not None else [self.c.coordinator]
        return [co for co in coordinators if co.cfg.daily_loss_limit_pct or co.cfg.max_drawdown_pct]

    def _review(
        self,
        sigs: list[Signal],
        contexts: list[SignalContext],
        t: int,
        coordinator: Coordinator | None = None,
    ) -> list[Any]:
        """One coordinator review of signals of one moment, with the book's owners and the clock."""
        ctx = ReviewContext(
            now=t,
            bar_time=t,
            signals=contexts,
            owners={p.ticket: self.journal.owner(p.identifier)[0] for p in self.c.server.positions},
            server_time=self.c.terminal.market.to_server_s(t),
        )
        return list((coordinator or self.c.coordinator).review(sigs, ctx))

    def _decide(
        self, items: list[tuple[int, str, Signal, int, str | None]], contexts: list[SignalContext], t: int
    ) -> tuple[list[Decision], list[str | None]]:
        """The decisions of one moment's signals and the trading mode each was reviewed under: with a
        trading_mode_switch, each under the mode in force for it (engine/modes.py), by that mode's
        coordinator; an entry the mode does not select is rejected (rule trading_mode)."""
        modes = self.c.modes
        if modes is None:
            return self._review([it[2] for it in items], contexts, t), [self.c.cfg.trading_mode] * len(items)
        server_s = self.c.terminal.market.to_server_s(t)
        return decide_by_mode(
            items, contexts, modes, server_s, self.host.name, lambda g, c, co: self._review(g, c, t, co)
        )

    def _order_send(self, req: TradeRequest) -> OrderSendResult:
        """The engine's own request, sent as an EA sends it: ``order_send`` on the MetaTrader5 module with
        the strategy in ``magic`` and the signal in ``comment``; its deals are journaled."""
        self._own = True
        try:
            res: OrderSendResult | None = self.mt5.order_send(req._asdict())
        finally:
            self._own = False
        if res is None:  # the terminal is not connected (a strategy called shutdown())
            _, text = self.mt5.last_error()
            res = OrderSendResult(C.TRADE_RETCODE_CONNECTION, 0, 0, 0.0, 0.0, 0.0, 0.0, text, 0, 0, req)
        self.journal.deals()
        return res

    def _send(self, req: TradeRequest, strategy: str, sid: int | None = None) -> OrderSendResult:
        """A strategy's own request: the journal notes the order as the strategy's (whatever its magic
        and comment say, as an EA knows its own tickets); its deals are journaled."""
        res = self.c.server.send(req)
        if res.retcode in SENT and req.action in NEW_ORDER_ACTIONS:
            self.journal.owners.note(res.order, strategy, sid)
        self.journal.deals()
        return res

    def _position_id(self, res: OrderSendResult) -> int | None:
        """The position a filled request opened or changed: its deal's position id (in netting mode an
        entry adds to the symbol's position, whose id is not the order's ticket). A placed pending order
        has no position yet: its ticket stands for it, as the position it opens will carry it."""
        if res.deal:
            deals = self.c.server.deals
            # the newest deal, unless an on_trade hook has traded since: then among the newest
            deal = deals[-1] if deals and deals[-1].ticket == res.deal else None
            if deal is None:
                deal = next((d for d in reversed(deals) if d.ticket == res.deal), None)
            if deal is not None:
                return int(deal.position_id)
        return res.order or None

    def _counted(self, res: OrderSendResult) -> None:
        if res.retcode in SENT:
            self.funnel.executed += 1
        else:
            self.funnel.order_failed[res.comment] += 1

    # ------------------------------------------------------------------------------ signals
    def process(self, batch: list[tuple[int, str, Signal]], t: int) -> None:
        """All trading signals of one decision point: exits first (a reversal frees its slot), then one
        coordinator review of every entry together (conflicts, limits and risk see the whole bar),
        then execution of what was approved or resized."""
        if not batch:
            return
        items = []
        for si, symbol, sig in batch:
            if self.capture is not None:
                self.capture.append((t, sig.strategy, symbol, sig))
            sid = self.journal.next_signal()
            regime = self.regime(symbol, t)
            if regime is not None:
                sig = sig.model_copy(update={"tags": {**sig.tags, "regime": regime}})
            items.append((si, symbol, sig, sid, regime))
            if sig.direction == "flat" or sig.exit_opposite:
                self._close_strategy_positions(si, symbol, sig, sid)
        contexts, stops = [], []
        for si, symbol, sig, _, regime in items:
            s = self.host.slots[si][0]
            sl, tp, ref = self._stops(sig, symbol)
            stops.append((sl, tp))  # the quote does not move before the execution: sent as computed
            risk = abs(ref - sl) if sl and ref else None
            contexts.append(SignalContext(s.name, sig.volume or s.volume, risk, regime))
        decisions, modes = self._decide(items, contexts, t)
        close_all = False
        for (si, symbol, sig, sid, _), decision, mode, (sl, tp) in zip(
            items, decisions, modes, stops, strict=True
        ):
            s = self.host.slots[si][0]
            row = decided_row(sid, t, s, symbol, sig, decision, mode)
            close_all = close_all or bool(decision.details.get("close_all"))
            if decision.status in ("approved", "resized"):
                self.funnel.approved += 1
                if decision.status == "resized":
                    self.funnel.resized += 1
                if sig.direction != "flat":
                    row.update(self._execute(sig, symbol, decision.volume, sid, si, sl, tp))
            else:
                self.funnel.rejected[decision.reason or "unknown"] += 1
            self.journal.signal(row)
        if close_all:
            self._close_all_breaker(t)

    def _close_strategy_positions(self, si: int, symbol: str, sig: Signal, sid: int) -> None:
        name = self.host.name(si)
        opposite = {"buy": 1, "sell": 0, "flat": -1}[sig.direction]
        for p in list(self.c.server.positions):
            # the owner is looked up only for the symbol's positions on the side to close
            side = p.symbol == symbol and opposite in (-1, p.type)
            if side and self.journal.owner(p.identifier)[0] == name:
                res = self._order_send(close_request(p, f"signal {sid}", magic_of(si)))
                if res.retcode != C.TRADE_RETCODE_DONE:
                    self.funnel.order_failed[f"close: {res.comment}"] += 1

    def _stops(self, sig: Signal, symbol: str) -> tuple[float, float, float]:
        """(SL price, TP price, reference price) of a signal at the current quote; 0 = none."""
        spec = self.c.specs[symbol]
        quote = self.c.server.quote(symbol)
        if quote is None:
            return 0.0, 0.0, 0.0
        bid, ask, _ = quote
        is_buy = sig.direction == "buy"
        ref = sig.price if sig.order_type != "market" and sig.price else (ask if is_buy else bid)
        sign = 1 if is_buy else -1
        sl = sig.sl or (round(ref - sign * sig.sl_points * spec.point, spec.digits) if sig.sl_points else 0.0)
        tp = sig.tp or (round(ref + sign * sig.tp_points * spec.point, spec.digits) if sig.tp_points else 0.0)
        return float(sl), float(tp), float(ref)

    def _execute(
        self, sig: Signal, symbol: str, volume: float, sid: int, si: int, sl: float, tp: float
    ) -> dict[str, Any]:
        """Send the approved signal as an MT5 request with its SL/TP prices (``_stops`` at this quote);
        return the execution columns of its row."""
        if self.c.server.quote(symbol) is None:
            self.funnel.order_failed["Market closed"] += 1
            return {"retcode": C.TRADE_RETCODE_MARKET_CLOSED}
        req = signal_request(sig, symbol, volume, sl, tp, si, sid)
        res = self._order_send(req)
        self._counted(res)
        return {
            "order_ticket": res.order or None,
            "retcode": res.retcode,
            "sl": sl or None,
            "tp": tp or None,
            "position_id": self._position_id(res),
        }

    # -------------------------------------------------------------------------------- closes
    def _close_all_breaker(self, t: int) -> None:
        server = self.c.server
        self.funnel.circuit_breaker_closes += len(server.positions)
        for p in sorted(server.positions, key=lambda p: p.ticket):
            res = self._order_send(close_request(p, "circuit breaker", p.magic))
            if res.retcode != C.TRADE_RETCODE_DONE:
                self.funnel.order_failed[f"close: {res.comment}"] += 1

    def close_all_at_end(self, end: int, inclusive: bool = False) -> None:
        """``backtest.close_at_end``: close what is open with ``order_send`` (comment "end of run", the
        position's magic), each at its symbol's last tick before ``end`` (the tester's last tick; with
        ``inclusive``, at or before ``end``: a script that returned closes at its current quote). The
        tester closes even when the strategy or script has disconnected its terminal."""
        server, terminal = self.c.server, self.c.terminal
        connected, terminal.connected = terminal.connected, True
        try:
            for p in sorted(server.positions, key=lambda p: p.ticket):
                bars = self.c.m1[p.symbol]
                last = int(np.searchsorted(bars.time, end, "right" if inclusive else "left")) - 1
                server.now = min(end, int(bars.time[max(last, 0)]) + 59_000_000_000)
                res = self._order_send(close_request(p, "end of run", p.magic))
                if res.retcode != C.TRADE_RETCODE_DONE:
                    self.funnel.order_failed[f"close: {res.comment}"] += 1
        finally:
            server.now, terminal.connected = end, connected

    # ------------------------------------------------------------------ orders a strategy sends itself
    def route(self, req: TradeRequest) -> OrderSendResult:
        """``order_send`` of a strategy through ``self.ctx.mt5`` (also ``Buy``, ``Sell``, ``Close``).

        Never around the coordinator or the records: the request is attributed to the strategy being
        called; with ``backtest.strategy_orders: review`` an entry is reviewed and recorded like a
        signal (a rejection returns TRADE_RETCODE_REJECT) while exits and order changes pass, as a
        signal's exits do; with ``refuse`` any request is a strategy error. Every deal is recorded.
        """
        if self._own:  # the engine's own request (reviewed already): straight to the server
            self._own = False
            return self.c.server.send(req)  # attributed from its magic and comment by the journal
        si = self.host.active
        name = self.host.name(si) if si is not None else ""
        self.funnel.order_sends += 1
        if self.c.cfg.backtest.strategy_orders == "refuse":
            raise StrategyRuntimeError(
                f"strategy {name or '?'} sent an order through self.ctx.mt5 ({describe(req)}) and "
                "backtest.strategy_orders is 'refuse'. Return Signals instead, or set "
                "backtest.strategy_orders: review to have such orders reviewed like signals."
            )
        entry = self._entry_volume(req)
        if entry is None:
            return self._send(req, name)
        if si is None:  # no strategy is being called: nobody the coordinator could review it for
            raise StrategyRuntimeError(
                f"an order was sent through the terminal outside any strategy call ({describe(req)}); "
                "send orders from generate_signals, on_start, on_trade or on_stop"
            )
        return self._review_request(req, entry, si)

    def _entry_volume(self, req: TradeRequest) -> float | None:
        """The volume of ``req`` that opens or adds exposure (what the coordinator gates), or None for an
        exit, a change of SL/TP or orders, or a request the server refuses anyway."""
        server = self.c.server
        if req.action == C.TRADE_ACTION_PENDING:
            return req.volume if req.volume > 0 else None
        buy = req.type == C.ORDER_TYPE_BUY
        if req.action != C.TRADE_ACTION_DEAL or req.type not in (C.ORDER_TYPE_BUY, C.ORDER_TYPE_SELL):
            return None
        if req.position or not req.volume > 0:
            return None
        if server.settings.hedging:
            return req.volume
        held = next((p for p in server.positions if p.symbol == req.symbol), None)
        if held is None or (held.type == C.POSITION_TYPE_BUY) == buy:
            return req.volume
        rest = round(req.volume - held.volume, 8)  # netting: only a reversal's new part is an entry
        return rest if rest > 1e-9 else None

    def _review_request(self, req: TradeRequest, volume: float, si: int) -> OrderSendResult:
        """One coordinator review of a strategy's own entry, stored as a signal row with its decision and
        execution; approved (maybe resized) it is sent as the strategy wrote it."""
        server, s = self.c.server, self.host.slots[si][0]
        t = server.now
        sig = request_signal(req, volume, s.name)
        if self.capture is not None:
            self.capture.append((t, s.name, req.symbol, sig))
        sid = self.journal.next_signal()
        regime = self.regime(req.symbol, t)
        if regime is not None:
            sig = sig.model_copy(update={"tags": {**sig.tags, "regime": regime}})
        quote = server.quote(req.symbol)
        bid, ask = (quote[0], quote[1]) if quote else (0.0, 0.0)
        ref = req.price if sig.order_type != "market" else (ask if sig.direction == "buy" else bid)
        risk = abs(ref - req.sl) if req.sl and ref else None
        decided, modes = self._decide(
            [(si, req.symbol, sig, sid, regime)], [SignalContext(s.name, volume, risk, regime)], t
        )
        decision = decided[0]
        row = decided_row(sid, t, s, req.symbol, sig, decision, modes[0])
        if decision.status in ("approved", "resized"):
            self.funnel.approved += 1
            self.funnel.resized += decision.status == "resized"
            res = self._send(
                req._replace(volume=round(req.volume - volume + decision.volume, 8)), s.name, sid
            )
            self._counted(res)
            row.update(
                order_ticket=res.order or None, retcode=res.retcode, position_id=self._position_id(res)
            )
        else:
            self.funnel.rejected[decision.reason or "unknown"] += 1
            comment = f"Request rejected by the risk coordinator: {decision.reason}"
            res = OrderSendResult(C.TRADE_RETCODE_REJECT, 0, 0, 0.0, 0.0, bid, ask, comment, 0, 0, req)
            row.update(retcode=C.TRADE_RETCODE_REJECT)
        self.journal.signal(row)
        if decision.details.get("close_all"):
            self._close_all_breaker(t)
        return res


def close_request(p: Any, comment: str, magic: int) -> TradeRequest:
    """A market request closing all of position ``p``."""
    return TradeRequest(
        action=C.TRADE_ACTION_DEAL,
        symbol=p.symbol,
        volume=float(p.volume),
        position=p.ticket,
        type=C.ORDER_TYPE_SELL if p.type == C.POSITION_TYPE_BUY else C.ORDER_TYPE_BUY,
        comment=comment,
        magic=magic,
    )


def signal_request(
    sig: Signal, symbol: str, volume: float, sl: float, tp: float, si: int, sid: int
) -> TradeRequest:
    """An approved signal as the MT5 request an EA sends: ``magic`` names its strategy (index ``si``),
    ``comment`` its signal; market orders as deals, the others as pending orders of their kind."""
    is_buy = sig.direction == "buy"
    if sig.order_type == "market":
        action, type_ = C.TRADE_ACTION_DEAL, (C.ORDER_TYPE_BUY if is_buy else C.ORDER_TYPE_SELL)
    else:
        action, type_ = C.TRADE_ACTION_PENDING, PENDING_KINDS[(sig.order_type, is_buy)]
    return TradeRequest(
        action=action,
        symbol=symbol,
        volume=float(volume),
        type=type_,
        price=float(sig.price or 0.0),
        sl=float(sl),
        tp=float(tp),
        magic=magic_of(si),
        comment=f"signal {sid}",
    )


def decide_by_mode(
    items: list[tuple[int, str, Signal, int, str | None]],
    contexts: list[SignalContext],
    modes: ModeSwitch,
    server_s: int,
    name_of: Callable[[int], str],
    review: Callable[[list[Signal], list[SignalContext], Coordinator], list[Decision]],
) -> tuple[list[Decision], list[str | None]]:
    """With a trading_mode_switch: each signal under the mode in force for it (engine/modes.py), reviewed
    by that mode's coordinator; an entry of a strategy or symbol the mode does not select is rejected
    (rule trading_mode). The backtest's and the live session's routers both decide this way."""
    out: list[Decision | None] = [None] * len(items)
    names: list[str | None] = []
    groups: dict[str | None, list[int]] = {}
    for k, (si, symbol, sig, _, regime) in enumerate(items):
        mode = modes.active(server_s, regime)
        names.append(mode.name)
        name = name_of(si)
        if sig.direction != "flat" and (
            name not in mode.strategies or (mode.symbols is not None and symbol not in mode.symbols)
        ):
            out[k] = reject("trading_mode", "not_in_mode", mode=mode.name, strategy=name, symbol=symbol)
        else:
            groups.setdefault(mode.name, []).append(k)
    for mode_name, ks in groups.items():
        got = review([items[k][2] for k in ks], [contexts[k] for k in ks], modes.modes[mode_name].coordinator)
        for k, d in zip(ks, got, strict=True):
            out[k] = d
    return [d if d is not None else reject("coordinator", "internal") for d in out], names


def request_signal(req: TradeRequest, volume: float, strategy: str) -> Signal:
    """A strategy's own entry request as the signal it is, for the coordinator's review and the signals
    table (sent, so not validated again)."""
    buy = req.type in (C.ORDER_TYPE_BUY, *BUY_PENDING)
    kind: OrderKind = (
        "market" if req.action == C.TRADE_ACTION_DEAL else ("limit" if req.type in LIMITS else "stop")
    )
    return Signal.model_construct(
        symbol=req.symbol,
        direction="buy" if buy else "sell",
        order_type=kind,
        price=(req.price or None) if kind != "market" else None,
        sl=req.sl or None,
        tp=req.tp or None,
        volume=volume,
        strategy=strategy,
        exit_opposite=False,
        comment=req.comment,
        tags={"source": "order_send"},
        confidence=1.0,
    )
