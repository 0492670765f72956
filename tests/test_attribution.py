"""Who traded: the trade server knows only MT5's fields (``send(state, request)``); the journal attributes
each order, deal and position to its strategy and signal from magic and comment (engine/attribution.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import mt5tester
from mt5tester.config import parse_config
from mt5tester.engine.attribution import Attribution, magic_of
from mt5tester.model import constants as C
from mt5tester.model.structs import TradeRequest
from mt5tester.results.memory import MemorySink
from mt5tester.terminal.server import TradeServer
from test_loop import flat_bars, write_m1
from test_server import bars, flat, server

from conftest import STRATEGIES_FILE, base_config


def _two_strategies_and_a_sender(tmp: Path, **bt: object) -> dict:
    data = tmp / "data"
    write_m1(data, "EURUSD", flat_bars("2024-01-01T23:50", 60, 1.10000))
    raw = base_config(
        data, tmp, start="2024-01-02", end="2024-01-03", warmup_bars=2, primary_timeframe="M5", **bt
    )
    a = [
        {"at": "2024-01-02T00:10:00Z", "direction": "buy", "volume": 0.1, "exit_opposite": False},
        {"at": "2024-01-02T00:30:00Z", "direction": "flat"},
    ]
    b = [{"at": "2024-01-02T00:10:00Z", "direction": "sell", "volume": 0.2, "exit_opposite": False}]
    raw["strategies"] = [
        {"class": f"{STRATEGIES_FILE}:Scripted", "name": "a", "params": {"script": a}},
        {"class": f"{STRATEGIES_FILE}:Scripted", "name": "b", "params": {"script": b}},
        {"class": f"{STRATEGIES_FILE}:Sender", "name": "sender", "params": {"at": "2024-01-02T00:20:00Z"}},
    ]
    return raw


def test_deals_and_orders_of_a_multi_strategy_run_carry_their_strategy_and_signal(tmp_path: Path) -> None:
    result = mt5tester.run(parse_config(_two_strategies_and_a_sender(tmp_path)), sink=MemorySink())
    deals = result.deals
    got = [
        (
            r.time.strftime("%H:%M"),
            r.entry,
            r.comment,
            r.strategy,
            None if pd.isna(r.signal_id) else r.signal_id,
        )
        for r in deals.iloc[1:].itertuples()
    ]
    assert got == [
        ("00:10", "in", "signal 1", "a", 1),
        ("00:10", "in", "signal 2", "b", 2),
        # the sender's own order: its own comment; reviewed like a signal (signal 3) and attributed to it
        ("00:20", "in", "my own", "sender", 3),
        # a's flat signal (4) closes a's position: the closing deal is the position's (a, signal 1)
        ("00:30", "out", "signal 4", "a", 1),
        # close_at_end: order_send at the last tick (the last bar 00:49); each deal stays with its position
        ("00:49", "out", "end of run", "b", 2),
        ("00:49", "out", "end of run", "sender", 3),
    ]
    orders = result.orders
    assert [(r.comment, r.strategy, r.signal_id) for r in orders.itertuples()] == [
        ("signal 1", "a", 1),
        ("signal 2", "b", 2),
        ("my own", "sender", 3),
        ("signal 4", "a", 4),  # the close order is the flat signal's
        ("end of run", "b", 2),
        ("end of run", "sender", 3),
    ]
    assert [(r.strategy, r.signal_id) for r in result.positions.itertuples()] == [
        ("a", 1),
        ("b", 2),
        ("sender", 3),
    ]
    assert result.funnel["closed"]["end_of_run"] == 2 and result.funnel["closed"]["signal"] == 1


def test_attribution_reads_magic_comment_position_and_foreign_orders() -> None:
    """An order of a magic the run handed out is its strategy's, with the signal in its comment; one of a
    foreign magic is the default owner's (a script run: the script), its comment not read as a signal;
    SL closes are the position's."""
    srv: TradeServer = server({"EURUSD": bars("EURUSD", flat(1.10000, 5), spread=12)})
    owners = Attribution({magic_of(0): "ma"}, default="script:x.py")

    def buy(magic: int, comment: str, **kw: float) -> int:
        req = TradeRequest(
            action=C.TRADE_ACTION_DEAL, symbol="EURUSD", volume=0.1, type=C.ORDER_TYPE_BUY,
            magic=magic, comment=comment, **kw,  # type: ignore[arg-type]
        )  # fmt: skip
        res = srv.send(req)
        assert res.retcode == C.TRADE_RETCODE_DONE, res.comment
        return int(res.order)

    ours = buy(magic_of(0), "signal 7")
    foreign = buy(123456, "signal 9")
    noted = buy(0, "hand made")
    owners.note(noted, "ma", 11)
    state = srv.state
    assert owners.order(state, ours) == ("ma", 7)
    assert owners.order(state, foreign) == ("script:x.py", None)
    assert owners.order(state, noted) == ("ma", 11)
    assert owners.order(state, 999) == ("script:x.py", None)  # unknown ticket: not cached as anything
    close = TradeRequest(
        action=C.TRADE_ACTION_DEAL, symbol="EURUSD", volume=0.1, type=C.ORDER_TYPE_SELL,
        position=ours, magic=123456, comment="circuit breaker",
    )  # fmt: skip
    res = srv.send(close)
    assert owners.order(state, int(res.order)) == ("ma", 7)  # a close the magic does not name: the position's
    out = next(d for d in state.deals if d.order == res.order)
    assert owners.deal(state, out) == ("ma", 7)
    assert owners.deal(state, state.deals[0]) == ("", None)  # the deposit


def test_checkpoint_carries_the_noted_senders_and_the_daily_equity(tmp_path: Path) -> None:
    """What is not in the trade server's records (tickets strategies sent themselves, the daily equity
    folded so far) rides in the checkpoint, so a resumed run attributes and folds as the whole run."""
    import pickle

    from mt5tester.engine import checkpoint
    from mt5tester.engine.build import build
    from mt5tester.engine.loop import Runner

    raw = _two_strategies_and_a_sender(tmp_path)
    raw["strategies"] = [  # one class per file: a checkpoint pickles each strategy by its class
        {"class": "ma_cross", "name": "ma", "params": {"fast": 2, "slow": 3}},
        raw["strategies"][2],
    ]
    cfg = parse_config(raw)
    runner = Runner(build(cfg, tmp_path), sink=MemorySink())
    runner.run()
    assert [owner for owner, _ in runner.journal.owners.sent.values()] == ["sender"]
    state = pickle.loads(checkpoint.snapshot(runner, 5, runner.c.server.now))
    fresh = Runner(build(cfg, tmp_path), sink=MemorySink())
    checkpoint.restore(fresh, state)
    assert fresh.journal.owners.sent == runner.journal.owners.sent
    assert fresh.journal.daily.rows() == runner.journal.daily.rows() != []
    # attributes from the restored state as the original journal did
    fresh_state, old_state = fresh.c.server.state, runner.c.server.state
    assert [fresh.journal.owners.deal(fresh_state, d) for d in fresh_state.deals] == [
        runner.journal.owners.deal(old_state, d) for d in old_state.deals
    ]
