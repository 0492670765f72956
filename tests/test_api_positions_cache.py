"""positions_get hands out a position's structure once per time while the position is unchanged
(terminal/api.py ``SimTerminal._position``): every change of the position or of the time gives a new one
with the new values, never a stale one."""

from __future__ import annotations

from mt5tester.model import constants as C
from test_risk_world import world


def _rising(n: int) -> list[tuple[float, float, float, float]]:
    """Flat bars at 1.10000 for 10 minutes, then +1 point a minute (the profit moves with the time)."""
    rows = [(1.1, 1.1, 1.1, 1.1)] * 10
    for k in range(n - 10):
        p = round(1.1 + (k + 1) * 1e-5, 5)
        rows.append((p, p, p, p))
    return rows


def test_same_time_same_position_is_one_structure_and_each_change_is_seen() -> None:
    w = world({"EURUSD": _rising(40)}, minute=5)
    mt5 = w.mt5
    res = mt5.order_send(
        {"action": C.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 1.0, "type": C.ORDER_TYPE_BUY}
    )
    assert res.retcode == C.TRADE_RETCODE_DONE
    (a,) = mt5.positions_get()
    (b,) = mt5.positions_get(symbol="EURUSD")
    assert a is b and (a.sl, a.tp, a.volume, a.profit) == (0.0, 0.0, 1.0, 0.0)

    # A change of SL/TP at the same time: a new structure with the new levels.
    res = mt5.order_send(
        {"action": C.TRADE_ACTION_SLTP, "symbol": "EURUSD", "position": a.ticket, "sl": 1.09, "tp": 1.2}
    )
    assert res.retcode == C.TRADE_RETCODE_DONE
    (c,) = mt5.positions_get(ticket=a.ticket)
    assert c is not a and (c.sl, c.tp) == (1.09, 1.2)

    # A partial close at the same time: the new volume.
    res = mt5.order_send(
        {
            "action": C.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.4, "type": C.ORDER_TYPE_SELL,
            "position": a.ticket,
        }
    )  # fmt: skip
    assert res.retcode == C.TRADE_RETCODE_DONE
    (d,) = mt5.positions_get()
    assert d.volume == 0.6 and d.ticket == a.ticket

    # A later time: the current price and profit move (the bar opening at minute 15 is 6 points up: the
    # bid 1.10006, +6 points on 0.6 lots at 1 USD a point a 0.1 lot = 3.60).
    w.at(15)
    (e,) = mt5.positions_get()
    assert e is not d and e.price_current == 1.10006 and e.profit == 3.6
    assert mt5.positions_get()[0] is e

    # Closed: gone, and a new position with another ticket is built afresh.
    res = mt5.order_send(
        {
            "action": C.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": 0.6, "type": C.ORDER_TYPE_SELL,
            "position": a.ticket,
        }
    )  # fmt: skip
    assert res.retcode == C.TRADE_RETCODE_DONE
    assert mt5.positions_get() == ()
