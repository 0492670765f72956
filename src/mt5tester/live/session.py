"""The session driver: a backtest's host, coordinator, router decisions and journal, driven by a clock
through a MetaTrader5-API module (README "Live and paper trading").

Each strategy is called when its bar closes on the server clock, on the first tick after the close, with
the same closed bars a backtest hands it: the last ``warmup_bars`` bars before the forming one
(``copy_rates_from_pos(symbol, timeframe, 1, n)``), with its ``prepare()`` columns computed on the last
``live.history_bars`` closed bars. The state a restart needs (signal numbering, the last bar each
strategy saw) is saved after every point, so a restart repeats at most the point it died in, and the
router's idempotency check keeps that from sending any order twice.
"""

from __future__ import annotations

import base64
import logging
import pickle
import signal as _signal
import time as _time
import types
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select, update

from mt5tester.data.resample import bar_close
from mt5tester.engine import checkpoint
from mt5tester.engine.build import Components
from mt5tester.engine.feed import StrategyFeed, prepared_columns
from mt5tester.engine.host import Host
from mt5tester.engine.journal import magic_of
from mt5tester.errors import StorageError, StrategyRuntimeError
from mt5tester.live.clock import Clock, ReplayClock, WallClock
from mt5tester.live.journal import LiveJournal
from mt5tester.live.preflight import PreflightReport, preflight
from mt5tester.live.router import LiveRouter
from mt5tester.live.terminal import ServerClock, rates_to_bars
from mt5tester.model.structs import trade_request_from_dict
from mt5tester.regime.detectors import RegimeParams, RegimeTracker
from mt5tester.results import db
from mt5tester.results.recorder import Recorder
from mt5tester.strategy.base import FusionStrategy, StrategyContext

log = logging.getLogger(__name__)
Pair = tuple[int, str]


@dataclass
class SessionResult:
    run_id: str
    status: str  # completed (a replay reached its end) / stopped (kill switch or signal)
    stopped_by: str | None
    funnel: dict[str, Any]
    preflight: PreflightReport
    database: str = ""  # the results database (password hidden)


class StopSwitch:
    """Why the session should stop: the stop file appeared, or SIGINT/SIGTERM arrived."""

    def __init__(self, stop_file: Path) -> None:
        self.stop_file = stop_file
        self.reason: str | None = None

    def clear(self) -> None:
        """A stop file left by an earlier ``live stop`` does not stop the session starting now."""
        if self.stop_file.exists():
            log.warning("removing the stop file %s of an earlier session", self.stop_file)
            self.stop_file.unlink()

    def __call__(self) -> bool:
        if self.reason is None and self.stop_file.exists():
            self.reason = f"stop file {self.stop_file}"
        return self.reason is not None

    @contextmanager
    def signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM ask for a graceful stop (main thread only; elsewhere the stop file does)."""

        def handler(signum: int, _frame: Any) -> None:
            self.reason = _signal.Signals(signum).name

        try:
            old = {s: _signal.signal(s, handler) for s in (_signal.SIGINT, _signal.SIGTERM)}
        except ValueError:  # not the main thread
            yield
            return
        try:
            yield
        finally:
            for s, h in old.items():
                _signal.signal(s, h)


class Session:
    def __init__(
        self,
        c: Components,
        mt5: Any,
        clock: Clock,
        mode: str,
        regimes: RegimeTracker | None = None,
        end_ns: int | None = None,
        stop: StopSwitch | None = None,
    ) -> None:
        self.c, self.cfg, self.mt5, self.mode = c, c.cfg, mt5, mode
        self.server_clock = ServerClock(c.cfg.backtest.server_timezone)
        self._clock_arg = clock
        self.end_ns = end_ns
        self.regimes = regimes
        self.stop = stop or StopSwitch(c.base_dir / c.cfg.live.stop_file)
        self.names = [ls.strategy.name for ls in c.strategies]
        self.magics = {magic_of(si): n for si, n in enumerate(self.names)}
        self.pairs: list[Pair] = [(si, s) for si, ls in enumerate(c.strategies) for s in ls.strategy.symbols]
        self.last: dict[Pair, int] = {}  # UTC ns label of the last closed bar each strategy saw
        self.next_close: dict[Pair, int] = {}

    # ------------------------------------------------------------------------------- setup
    def _resume_id(self) -> tuple[str, dict[str, Any] | None]:
        """An unfinished session of this config and mode continues (same numbering, so no order twice)."""
        s, r = db.live_sessions, db.runs
        with self.c.db.connect() as conn:
            row = conn.execute(
                select(s.c.run_id, s.c.state)
                .join(r, r.c.run_id == s.c.run_id)
                .where(
                    s.c.mode == self.mode,
                    r.c.config_hash == self.cfg.config_hash(),
                    r.c.status.in_(("running", "failed", "interrupted")),  # died: not stopped or completed
                )
                .order_by(s.c.updated_at.desc())
            ).first()
        return (row[0], row[1]) if row else (uuid.uuid4().hex[:12], None)

    def _restore(self, run_id: str, state: dict[str, Any]) -> None:
        j = self.journal
        j.signal_seq, j.error_seq = int(state["signal_seq"]), int(state["error_seq"])
        j.last_equity = int(state.get("time", -1))
        kept = pickle.loads(base64.b64decode(state["kept"]))  # written by this package (_state)
        for ls, saved in zip(self.c.strategies, kept["strategies"], strict=True):
            checkpoint._restore_strategy(ls.strategy, saved)
        vars(self.c.coordinator.breaker).update(kept["breaker"])
        modes = self.c.modes.coordinators() if self.c.modes is not None else []
        for co, saved in zip(modes, kept.get("mode_breakers", []), strict=False):
            vars(co.breaker).update(saved)
        j.funnel, self.host.disabled = kept["funnel"], kept["disabled"]
        self.last = {(int(k.split("|")[0]), k.split("|", 1)[1]): int(v) for k, v in state["last"].items()}
        d, q = db.deals, db.live_requests
        with self.c.db.connect() as conn:
            for ticket, pid, sid, entry, balance in conn.execute(
                select(d.c.ticket, d.c.position_id, d.c.signal_id, d.c.entry, d.c.balance)
                .where(d.c.run_id == run_id)
                .order_by(d.c.time, d.c.ticket)
            ):
                j.seen.add(int(ticket))
                j.balance = float(balance)
                if entry == 0:
                    j.signal_of_position[int(pid)] = sid
            j.requests = int(
                conn.execute(
                    select(func.coalesce(func.max(q.c.seq), 0)).where(q.c.run_id == run_id)
                ).scalar_one()
            )
        # Rows of the point the session died in are written again when it is repeated; the book is
        # rebuilt at the end; the run is running again.
        with self.c.db.begin() as conn:
            for table, cut in (
                (db.signals, db.signals.c.signal_id > j.signal_seq),
                (db.strategy_errors, db.strategy_errors.c.seq > j.error_seq),
                (db.equity, db.equity.c.time > int(state.get("time", 0))),
                (db.positions, db.positions.c.run_id == run_id),
                (db.orders, db.orders.c.run_id == run_id),
                (db.daily_equity, db.daily_equity.c.run_id == run_id),  # folded again below
            ):
                conn.execute(delete(table).where(table.c.run_id == run_id, cut))
            conn.execute(
                update(db.runs).where(db.runs.c.run_id == run_id).values(status="running", error=None)
            )
        self._restore_daily(run_id)

    def _restore_daily(self, run_id: str) -> None:
        """The daily equity folds the equity rows as they are made (results/daily.py): a restarted
        session folds again the rows its earlier process stored (those kept above), so its days continue
        where they were, as if the session had never stopped."""
        e, daily = db.equity, self.journal.daily
        with self.c.db.connect() as conn:
            for t, balance, equity in conn.execute(
                select(e.c.time, e.c.balance, e.c.equity).where(e.c.run_id == run_id).order_by(e.c.time)
            ):
                daily.add(int(t), float(balance), float(equity))

    def _state(self) -> dict[str, Any]:
        """What a restart continues from: numbering, the bars seen, and (pickled, as a checkpoint holds
        them, engine/checkpoint.py) the strategies, the breaker's day start and peak, the funnel."""
        j = self.journal
        self.host.fold_calls()
        kept = {
            "strategies": [checkpoint._strategy_state(ls.strategy) for ls in self.c.strategies],
            "breaker": dict(vars(self.c.coordinator.breaker)),
            "mode_breakers": [dict(vars(co.breaker)) for co in self.c.modes.coordinators()]
            if self.c.modes is not None
            else [],
            "funnel": j.funnel,
            "disabled": self.host.disabled,
        }
        try:
            blob = base64.b64encode(pickle.dumps(kept, protocol=pickle.HIGHEST_PROTOCOL)).decode()
        except Exception as e:  # an unpicklable strategy attribute: say which, fail loudly
            raise StorageError(
                f"cannot save the session state: {type(e).__name__}: {e}. Give the strategy state_dict() "
                "and load_state()"
            ) from e
        return {
            "signal_seq": j.signal_seq,
            "error_seq": j.error_seq,
            "last": {f"{si}|{s}": v for (si, s), v in self.last.items()},
            "since": self.since,
            "time": self.journal.now_ns,
            "kept": blob,
        }

    def _mt5_for_strategies(self) -> Any:
        """The module strategies read as ``self.ctx.mt5``: the terminal's, with its ``order_send`` going
        through the session's router (recorded, attributed to the calling strategy, idempotent)."""
        mod = types.ModuleType("MetaTrader5")
        for name in dir(self.mt5):
            if not name.startswith("__"):
                setattr(mod, name, getattr(self.mt5, name))

        def order_send(request: dict[str, Any]) -> Any:
            si = self.host.active
            if self.cfg.backtest.strategy_orders == "refuse":
                raise StrategyRuntimeError(
                    f"strategy {self.names[si] if si is not None else '?'} sent an order through "
                    "self.ctx.mt5 and backtest.strategy_orders is 'refuse'. Return Signals instead."
                )
            try:
                req = trade_request_from_dict(request)
            except ValueError:
                return self.mt5.order_send(request)  # the terminal answers None with its last_error
            return self.router.route_own(req, si)

        def market(symbol: str, volume: float, type_: int, comment: str | None, ticket: int | None) -> Any:
            """The package's Buy/Sell helpers (spec 1): a DEAL at the current price, deviation 10."""
            tick = mod.symbol_info_tick(symbol)
            if tick is None:
                return None
            req: dict[str, Any] = {"action": self.mt5.TRADE_ACTION_DEAL, "symbol": symbol, "deviation": 10}
            req |= {"volume": float(volume), "type": type_, "price": tick.ask if type_ == 0 else tick.bid}
            if comment is not None:
                req["comment"] = comment
            if ticket is not None:
                req["position"] = ticket
            return order_send(req)

        def close(symbol: str, *, comment: str | None = None, ticket: int | None = None) -> Any:
            found = (
                mod.positions_get(ticket=ticket) if ticket is not None else mod.positions_get(symbol=symbol)
            )
            if found is None:
                return None
            if not found:
                return False
            done = 0
            for p in found:
                r = market(p.symbol, p.volume, 1 - p.type, comment, p.ticket)
                done += int(r is not None and r.retcode == self.mt5.TRADE_RETCODE_DONE)
            return True if done == len(found) else ("Partially" if done else False)

        mod.Buy = lambda symbol, volume, price=None, *, comment=None, ticket=None: market(  # type: ignore[attr-defined]
            symbol, volume, 0, comment, ticket
        )
        mod.Sell = lambda symbol, volume, price=None, *, comment=None, ticket=None: market(  # type: ignore[attr-defined]
            symbol, volume, 1, comment, ticket
        )
        mod.Close = close  # type: ignore[attr-defined]
        mod.order_send = order_send  # type: ignore[attr-defined]
        return mod

    def reconnect(self) -> bool:
        """initialize() again after a lost connection, then reconcile what happened meanwhile."""
        for attempt in range(max(1, self.cfg.live.reconnect_attempts)):
            if self.mt5.initialize() and self.mt5.terminal_info() is not None:
                log.warning("reconnected to the terminal (attempt %d)", attempt + 1)
                self.journal.reconcile()
                return True
            _time.sleep(min(5.0, self.cfg.live.poll_seconds * (attempt + 1)) if self.mode == "live" else 0)
        return False

    # ----------------------------------------------------------------------------- the run
    def run(self) -> SessionResult:
        self.stop.clear()
        if isinstance(self._clock_arg, WallClock):  # the terminal's clock (paper on live quotes: its feed)
            self._clock_arg.start(list(self.cfg.backtest.symbols))
            if self._clock_arg.reconnect is None:
                self._clock_arg.reconnect = self.reconnect
        report = preflight(self.mt5, self.cfg)
        self.account = report.account
        for line in report.differences:
            log.warning("preflight: config differs from the broker: %s", line)
        run_id, state = self._resume_id()
        self.run_id = run_id
        rec = Recorder(self.c.db, run_id)
        self.clock = self._clock_arg
        since = int(state["since"]) if state else self.server_clock.to_server_s(self.clock.now())
        self.since = since
        self.journal = LiveJournal(self.c, rec, self.mt5, self.server_clock, self.magics, since)
        self.journal.now_ns = self.clock.now()
        self.ctx = StrategyContext(run_id, None)
        self.host = Host(self.c, self.journal, self.ctx)
        self.router = LiveRouter(
            self.mt5,
            self.journal,
            self.c.coordinator,
            [ls.strategy for ls in self.c.strategies],
            self.cfg,
            self.regime,
            self.reconnect,
            self.c.modes,
        )
        self.journal.mode_at = self.router.mode_at  # fusion members' signals carry the trading mode too
        self.router.specs = dict(self.c.specs)
        self.ctx.mt5 = self._mt5_for_strategies()
        self.ctx.regime = lambda symbol: self.regime(symbol, self.ctx.now)  # type: ignore[method-assign]
        self.journal.on_trade = self.host.on_trade
        if state is None:
            self.journal.start(run_id)
        else:
            self._restore(run_id, state)
            log.warning("continuing session %s after signal %d", run_id, self.journal.signal_seq)
        self.journal.reconcile()  # what our strategies' magics hold and did while we were not running
        self._init_pairs()
        if state is None:
            self.host.each("on_start", record_each=True)
        self.journal.save_state(self.mode, report.account, self._state())
        status = "completed"
        try:
            with self.stop.signals():
                if state is not None and self._pending():
                    self._point(self.clock.now())  # a bar closed while the session was down (or died in)
                while True:
                    t = self.clock.wait(self._due(), self.stop)
                    if t is None:
                        break
                    self._point(t)
            lost = getattr(self.clock, "lost", None)
            if lost is not None and self.stop.reason is None:
                self.stop.reason = lost  # no terminal: nothing can be closed; the positions stay
                status = "stopped"
                self.journal.equity(self.clock.now())
            elif self.stop.reason is not None:
                status = "stopped"
                self._kill()
            else:
                self._wind_down()
        except BaseException as e:
            self.host.fold_calls()
            self.journal.failed(e)
            raise
        self.host.fold_calls()
        self.journal.complete()
        funnel = self.journal.finish(status, self.stop.reason)
        where = self.c.db.url.render_as_string(hide_password=True)
        return SessionResult(run_id, status, self.stop.reason, funnel, report, where)

    # ----------------------------------------------------------------------- bar closes
    def _closed(self, si: int, symbol: str, count: int) -> Any:
        tf = self.c.strategies[si].strategy.timeframe
        return self.mt5.copy_rates_from_pos(symbol, int(tf), 1, count)

    def _forming_close(self, si: int, symbol: str) -> int | None:
        tf = self.c.strategies[si].strategy.timeframe
        rates = self.mt5.copy_rates_from_pos(symbol, int(tf), 0, 1)
        if rates is None or not len(rates):
            return None
        label = self.server_clock.to_utc_ns(rates["time"])
        return int(bar_close(label, tf, self.cfg.backtest.server_timezone)[0])

    def _init_pairs(self) -> None:
        for si, symbol in self.pairs:
            if (si, symbol) not in self.last:
                rates = self._closed(si, symbol, 1)
                self.last[(si, symbol)] = (
                    int(self.server_clock.to_utc_ns(rates["time"])[-1])
                    if rates is not None and len(rates)
                    else 0
                )
            close = self._forming_close(si, symbol)
            self.next_close[(si, symbol)] = close if close is not None else self.clock.now() + 1

    def _pending(self) -> bool:
        """Whether a strategy has a closed bar it has not seen (after a restart): due at once."""
        pending = False
        for si, symbol in self.pairs:
            rates = self._closed(si, symbol, 1)
            label = (
                int(self.server_clock.to_utc_ns(rates["time"])[-1]) if rates is not None and len(rates) else 0
            )
            if label > self.last[(si, symbol)]:
                self.next_close[(si, symbol)] = self.clock.now()
                pending = True
        return pending

    def _due(self) -> dict[str, int]:
        due: dict[str, int] = {}
        for (_, symbol), close in self.next_close.items():
            due[symbol] = min(due.get(symbol, close), close)
        return due

    def regime(self, symbol: str, t: int) -> str | None:
        if self.regimes is not None:
            return self.regimes.label_at(symbol, t)
        if not self.cfg.regime.enabled:
            return None
        params = RegimeParams(**self.cfg.regime.model_dump(exclude={"enabled"}))
        rates = self.mt5.copy_rates_from_pos(symbol, int(params.tf), 1, self.cfg.live.history_bars)
        if rates is None or not len(rates):
            return None
        tracker = RegimeTracker()
        bars = rates_to_bars(rates, symbol, params.tf, self.server_clock)
        tracker.add(
            symbol,
            bar_close(bars.time, params.tf, self.cfg.backtest.server_timezone),
            tracker.add_bars(bars, params),
        )
        return tracker.label_at(symbol, t)

    def _events(self, t: int) -> list[tuple[int, str, int]]:
        """The strategies whose bar closed by ``t``, in a backtest timeline's order, their views set."""
        events = []
        history = self.cfg.live.history_bars
        for si, symbol in self.pairs:
            if self.next_close[(si, symbol)] > t:
                continue
            strategy = self.c.strategies[si].strategy
            rates = self._closed(si, symbol, max(history, strategy.warmup_bars))
            close = self._forming_close(si, symbol)
            if close is not None:
                self.next_close[(si, symbol)] = close
            if rates is None or not len(rates):
                continue
            bars = rates_to_bars(rates, symbol, strategy.timeframe, self.server_clock)
            label = int(bars.time[-1])
            if label <= self.last[(si, symbol)]:
                continue
            self.last[(si, symbol)] = label
            extra = prepared_columns(strategy, symbol, bars)
            column = strategy.signal_column
            if column is not None and not np.nan_to_num(np.asarray(extra[column][-1:], np.float64)).any():
                continue  # a backtest calls it only where its signal column is non-zero
            self.c.feeds[(si, symbol)] = StrategyFeed(strategy, bars, extra)
            self.c.tf_bars[(symbol, strategy.timeframe)] = bars
            fusion = isinstance(strategy, FusionStrategy)
            events.append((fusion, si, strategy.symbols.index(symbol), symbol, len(bars) - 1))
        return [(si, symbol, i) for _, si, _, symbol, i in sorted(events)]

    def _point(self, t: int) -> None:
        """One decision point, as a backtest's (engine/loop.py ``_step``)."""
        self.ctx.now = self.journal.now_ns = self.router.now = t
        self.journal.deals()
        events = self._events(t)
        for co in self.router.coordinators():  # each trading mode's coordinator keeps its own breaker
            if co.cfg.daily_loss_limit_pct or co.cfg.max_drawdown_pct:
                co.observe(self.server_clock.to_server_s(t))
        if events:
            self.router.process(self.host.decide(events, t), t)
            self.journal.equity(t)
            self.journal.funnel.decision_points += 1
            self.journal.save_state(self.mode, self.account, self._state())

    # ------------------------------------------------------------------------------ the end
    def _kill(self) -> None:
        """The kill switch: close our positions and pending orders, or leave them (``live.kill_switch``)."""
        log.warning(
            "session %s stopping (%s): kill switch %s",
            self.run_id,
            self.stop.reason,
            self.cfg.live.kill_switch,
        )
        if self.cfg.live.kill_switch == "close":
            self.router.now = self.clock.now()
            self.router.close_all("kill switch")
        self.journal.deals()
        self.journal.equity(self.clock.now())
        self.host.each("on_stop", record_each=False)

    def _wind_down(self) -> None:
        """A replay reached its end: as a backtest's end (close what is open at the last quote)."""
        clock = self.clock
        if isinstance(clock, ReplayClock) and self.end_ns is not None:
            # as a backtest ends (engine/loop.py Runner.run): the server reaches `end` (a rollover at
            # `end` is charged), then what is open closes at the tester's last quote before it
            last = clock.last_quote_before(self.end_ns)
            clock.server.advance(self.end_ns)
            clock.terminal.set_time(last)
            self.journal.deals()
            if self.cfg.backtest.close_at_end:
                self.router.now = last
                self.router.close_all("end of run")
            clock.move(max(clock.now(), self.end_ns))
        self.journal.now_ns = clock.now()
        self.journal.deals()
        self.journal.equity(clock.now())
        self.host.each("on_stop", record_each=False)
