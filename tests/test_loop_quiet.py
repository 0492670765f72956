"""The loop's quiet horizon: the trade server replays only from ``quiet_until()`` on, and the horizon is
asked again after anything that may change the book (issue 14, driver a)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mt5tester.model import constants as C
from mt5tester.model.structs import TradeRequest
from mt5tester.terminal.server import rollover_schedule
from test_loop import _run, flat_bars, scenario_config, write_m1
from test_server import MIN, T0, bars, buy, flat, server

OWN_SL = '''
from mt5tester.model import constants as C
from mt5tester.model.signal import Signal
from mt5tester.strategy.base import Strategy


class SetsOwnSl(Strategy):
    """Buys on its first call (no SL); on its fifth sets the position's SL itself (TRADE_ACTION_SLTP)."""

    def on_start(self, ctx):
        self.n, self.seen = 0, []

    def generate_signals(self, symbol, timeframe, df):
        self.n += 1
        self.seen.append(self.ctx.mt5.positions_total())
        if self.n == 1:
            return [Signal(symbol=symbol, direction="buy", volume=1.0)]
        if self.n == 5:
            (p,) = self.ctx.mt5.positions_get(symbol=symbol)
            res = self.ctx.mt5.order_send(
                {"action": C.TRADE_ACTION_SLTP, "symbol": symbol, "position": p.ticket, "sl": 1.09950}
            )
            assert res.retcode == C.TRADE_RETCODE_DONE, res
        return []
'''


def test_quiet_until_is_the_next_rollover_for_a_flat_or_quiet_book_else_minus_one() -> None:
    srv = server({"EURUSD": bars("EURUSD", flat(1.1, 60 * 24))}, deposit=10_000.0, leverage=100)
    srv.rollovers, srv.rollover_days = rollover_schedule(T0, pd.Timestamp("2024-01-08").value, "UTC")
    midnight = pd.Timestamp("2024-01-03T00:00Z").value  # the first swap rollover after T0 (server UTC)
    assert srv.quiet_until() == midnight  # flat book, no orders
    assert srv.send(buy("EURUSD", 0.1, sl=1.09)).retcode == C.TRADE_RETCODE_DONE
    assert srv.quiet_until() == -1  # an SL can trigger: replay at every point
    srv.advance(T0 + 5 * MIN)
    assert srv.quiet_until() == -1
    (p,) = srv.positions
    sltp = TradeRequest(action=C.TRADE_ACTION_SLTP, symbol="EURUSD", position=p.ticket, sl=0.0)
    assert srv.send(sltp).retcode == C.TRADE_RETCODE_DONE
    assert srv.quiet_until() == midnight  # no SL/TP, stop-out out of reach (the last replay), no orders
    sltp = TradeRequest(action=C.TRADE_ACTION_SLTP, symbol="EURUSD", position=p.ticket, tp=1.2)
    assert srv.send(sltp).retcode == C.TRADE_RETCODE_DONE
    assert srv.quiet_until() == -1  # a request changed the book: a TP can trigger
    sltp = TradeRequest(action=C.TRADE_ACTION_SLTP, symbol="EURUSD", position=p.ticket, tp=0.0)
    assert srv.send(sltp).retcode == C.TRADE_RETCODE_DONE
    srv.advance(T0 + 6 * MIN)
    assert srv.quiet_until() == midnight
    assert srv.advance(midnight - 1) == [] and srv.now == midnight - 1


def test_sl_a_strategy_sets_itself_on_a_quiet_book_triggers_at_its_minute(tmp_path: Path) -> None:
    """The book is quiet (one position, no SL: the points at 00:10 and 00:15 skip the replay) when the
    strategy sets an SL through its terminal at 00:20: the loop must ask the horizon again, or the SL hit
    at 00:22 would be replayed only at the end (the strategy would still see the position at 00:25)."""
    data = tmp_path / "data"
    rows = flat_bars("2024-01-01T23:50", 32, 1.10000, spread=0)  # closes seen at 00:00, 00:05, ...
    rows += [("2024-01-02T00:22", 1.10000, 1.10000, 1.09900, 1.09920, 0)]  # bid low below the SL
    rows += flat_bars("2024-01-02T00:23", 40, 1.09920, spread=0)
    write_m1(data, "EURUSD", rows)
    (tmp_path / "own_sl.py").write_text(OWN_SL)
    raw = scenario_config(data, tmp_path, [])
    raw["strategies"] = [{"class": f"{tmp_path / 'own_sl.py'}:SetsOwnSl", "name": "own"}]
    runner = _run(raw, tmp_path)
    d = runner.c.server.deals
    assert [(x.type, x.entry, x.reason) for x in d] == [(2, 0, 0), (0, 0, 3), (1, 1, C.DEAL_REASON_SL)]
    # bought at the ask (the config's fixed 10-point spread) at 00:00; the SL hit on the bid at 00:22
    assert d[1].time == pd.Timestamp("2024-01-02T00:00Z").value and d[1].price == pytest.approx(1.1001)
    assert d[2].time == pd.Timestamp("2024-01-02T00:22Z").value and d[2].price == pytest.approx(1.0995)
    assert d[2].profit == pytest.approx(-60.0)
    assert runner.funnel.order_sends == 1 and runner.funnel.closed["sl"] == 1
    # open positions each call saw: 00:00 (before its buy), 00:05 .. 00:20, then none from 00:25
    assert runner.c.strategies[0].strategy.seen[:7] == [0, 1, 1, 1, 1, 0, 0]  # type: ignore[attr-defined]
